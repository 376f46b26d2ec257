//! Refresh tokens: random, opaque to clients, and stored only as a hash.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};

/// The prefix that makes a refresh token recognisable (in logs, in secret scanners).
const PREFIX: &str = "rt_";

/// A new refresh token: 256 random bits.
pub fn new_refresh_token() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// What is stored for a token. A fast hash is enough: the token has 256 bits of entropy, so
/// there is nothing to brute-force, unlike a password.
pub fn hash_refresh_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Whether `token` has the shape of a refresh token (saves a database round trip for garbage).
pub fn looks_like_refresh_token(token: &str) -> bool {
    token
        .strip_prefix(PREFIX)
        .is_some_and(|rest| rest.len() == 43 && URL_SAFE_NO_PAD.decode(rest).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_recognisable_and_hashed() {
        let one = new_refresh_token();
        let two = new_refresh_token();
        assert_ne!(one, two);
        assert!(looks_like_refresh_token(&one));
        assert!(!looks_like_refresh_token("rt_short"));
        assert!(!looks_like_refresh_token("eyJhbGciOiJFZERTQSJ9.e30.sig"));
        assert_eq!(hash_refresh_token(&one).len(), 32);
        assert_eq!(hash_refresh_token(&one), hash_refresh_token(&one));
        assert_ne!(hash_refresh_token(&one), hash_refresh_token(&two));
    }
}
