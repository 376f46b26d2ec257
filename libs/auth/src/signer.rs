//! Issuing user tokens: an Ed25519 private key with its key id, and the public JWK to serve.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::DecodePrivateKey as _;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm,
    OctetKeyPairParameters, OctetKeyPairType, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

use crate::error::KeyError;

/// The DER of a PKCS#8 v1 `PrivateKeyInfo` for Ed25519 (RFC 8410) up to the 32-byte seed.
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// Signs tokens with an Ed25519 private key (EdDSA) under a key id (`kid`).
///
/// The user service holds one (or two while rotating) and serves [`TokenSigner::jwk_set`] as
/// its JWKS; tests use one to mint tokens.
#[derive(Clone)]
pub struct TokenSigner {
    kid: String,
    encoding_key: EncodingKey,
    public_jwk: Jwk,
}

impl fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSigner")
            .field("kid", &self.kid)
            .field("encoding_key", &"[REDACTED]")
            .field("public_jwk", &self.public_jwk)
            .finish()
    }
}

impl TokenSigner {
    /// A signer with a fresh random key: for development and tests (tokens die with the process).
    pub fn generate(kid: impl Into<String>) -> Self {
        let seed: [u8; 32] = rand::random();
        Self::from_signing_key(kid.into(), &SigningKey::from_bytes(&seed))
    }

    /// A signer from a PEM-encoded PKCS#8 Ed25519 private key (`openssl genpkey -algorithm ed25519`).
    pub fn from_pkcs8_pem(kid: impl Into<String>, pem: &str) -> Result<Self, KeyError> {
        let der =
            EncodingKey::from_ed_pem(pem.as_bytes()).map_err(|_| KeyError::InvalidPrivateKey)?;
        let signing_key =
            SigningKey::from_pkcs8_der(der.as_bytes()).map_err(|_| KeyError::InvalidPrivateKey)?;
        Ok(Self::from_signing_key(kid.into(), &signing_key))
    }

    /// A new random Ed25519 private key as PKCS#8 PEM, for configuration (what
    /// `openssl genpkey -algorithm ed25519` prints).
    pub fn generate_pkcs8_pem() -> String {
        let seed: [u8; 32] = rand::random();
        let mut der = PKCS8_ED25519_PREFIX.to_vec();
        der.extend_from_slice(&seed);
        let body = base64::engine::general_purpose::STANDARD.encode(der);
        format!("-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n")
    }

    fn from_signing_key(kid: String, signing_key: &SigningKey) -> Self {
        let mut der = PKCS8_ED25519_PREFIX.to_vec();
        der.extend_from_slice(signing_key.as_bytes());
        let encoding_key = EncodingKey::from_ed_der(&der);
        let public_jwk = Jwk {
            common: CommonParameters {
                public_key_use: Some(PublicKeyUse::Signature),
                key_algorithm: Some(KeyAlgorithm::EdDSA),
                key_id: Some(kid.clone()),
                ..CommonParameters::default()
            },
            algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                key_type: OctetKeyPairType::OctetKeyPair,
                curve: EllipticCurve::Ed25519,
                x: URL_SAFE_NO_PAD.encode(signing_key.verifying_key().as_bytes()),
            }),
        };
        Self {
            kid,
            encoding_key,
            public_jwk,
        }
    }

    /// The key id written in the header of every token this signer signs.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Signs `claims` as an EdDSA JWT whose header names this signer's `kid`.
    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<String, KeyError> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding_key).map_err(KeyError::Signing)
    }

    /// The public half of the key as a JWK (`kty: OKP`, `crv: Ed25519`, `alg: EdDSA`, `use: sig`).
    pub fn public_jwk(&self) -> &Jwk {
        &self.public_jwk
    }

    /// A key set holding only this signer's public key, ready to serve as JSON.
    pub fn jwk_set(&self) -> JwkSet {
        JwkSet {
            keys: vec![self.public_jwk.clone()],
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_public_jwk_is_an_ed25519_signing_key_with_the_kid() {
        let signer = TokenSigner::generate("key-1");
        let jwk = serde_json::to_value(signer.public_jwk()).unwrap();
        assert_eq!(jwk["kty"], json!("OKP"));
        assert_eq!(jwk["crv"], json!("Ed25519"));
        assert_eq!(jwk["alg"], json!("EdDSA"));
        assert_eq!(jwk["use"], json!("sig"));
        assert_eq!(jwk["kid"], json!("key-1"));
        assert_eq!(jwk.as_object().unwrap().len(), 6, "no private part: {jwk}");
    }

    #[test]
    fn a_generated_pem_key_loads_and_signs_with_the_same_key_every_time() {
        let pem = TokenSigner::generate_pkcs8_pem();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let first = TokenSigner::from_pkcs8_pem("k", &pem).unwrap();
        let second = TokenSigner::from_pkcs8_pem("k", &pem).unwrap();
        assert_eq!(first.public_jwk(), second.public_jwk());
        assert_ne!(
            TokenSigner::from_pkcs8_pem("k", &TokenSigner::generate_pkcs8_pem())
                .unwrap()
                .public_jwk(),
            first.public_jwk()
        );
    }

    #[test]
    fn two_generated_signers_have_different_keys() {
        let a = TokenSigner::generate("k");
        let b = TokenSigner::generate("k");
        assert_ne!(a.public_jwk(), b.public_jwk());
    }

    #[test]
    fn a_pem_that_is_not_an_ed25519_private_key_is_refused() {
        assert!(matches!(
            TokenSigner::from_pkcs8_pem("k", "not a pem"),
            Err(KeyError::InvalidPrivateKey)
        ));
    }
}
