//! Password hashing with argon2id at 12 MiB and 3 passes, one of the configurations OWASP's
//! password storage guidance lists as equal in strength (with 19 MiB and 2 passes, the
//! `argon2` crate's default), off the async runtime because each hash takes tens of
//! milliseconds. A stored hash carries its own parameters, so hashes made with others still
//! verify.
//!
//! At most one hash per core runs at a time; the others wait their turn. Each maps 12 MiB while
//! it runs and unmaps it when done (see `platform_http::memory`), so the user service's peak
//! memory is its idle memory plus 12 MiB per core, however many sign in at once.

use std::sync::LazyLock;

use anyhow::Context as _;
use argon2::Argon2;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};

/// Hashes and verifies passwords.
#[derive(Clone)]
pub struct Passwords {
    /// A hash of a random password, verified against when an email is unknown so that a
    /// failed login takes as long whether or not the account exists.
    decoy: String,
}

impl Passwords {
    /// Prepares the hasher (computes the decoy hash).
    pub async fn new() -> anyhow::Result<Self> {
        let random: [u8; 24] = rand::random();
        let decoy = hash(base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            random,
        ))
        .await?;
        Ok(Self { decoy })
    }

    /// The PHC string (`$argon2id$v=19$...`) of `password`, with a fresh salt.
    pub async fn hash(&self, password: &str) -> anyhow::Result<String> {
        hash(password.to_owned()).await
    }

    /// Whether `password` matches `stored`; with `None` (no such account) it checks against
    /// the decoy and says no, taking the same time.
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> anyhow::Result<bool> {
        let exists = stored.is_some();
        let stored = stored.unwrap_or(&self.decoy).to_owned();
        let password = password.to_owned();
        let _turn = turn().await?;
        let matches = tokio::task::spawn_blocking(move || {
            hasher()
                .verify_password(password.as_bytes(), stored.as_str())
                .is_ok()
        })
        .await
        .context("verifying a password")?;
        Ok(exists && matches)
    }
}

/// Memory per hash, in KiB.
const MEMORY_KIB: u32 = 12 * 1024;
/// Passes over that memory.
const PASSES: u32 = 3;

/// Argon2id with this service's parameters (one lane).
fn hasher() -> Argon2<'static> {
    let params = argon2::Params::new(MEMORY_KIB, PASSES, 1, None)
        .expect("constant parameters within argon2's bounds");
    Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
}

/// Hashes running at once: one per core.
static HASHING: LazyLock<tokio::sync::Semaphore> = LazyLock::new(|| {
    tokio::sync::Semaphore::new(
        std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
    )
});

/// A turn to hash, held until the hash is done.
async fn turn() -> anyhow::Result<tokio::sync::SemaphorePermit<'static>> {
    HASHING
        .acquire()
        .await
        .context("the password hasher is closed")
}

async fn hash(password: String) -> anyhow::Result<String> {
    let _turn = turn().await?;
    tokio::task::spawn_blocking(move || {
        hasher()
            .hash_password(password.as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|error| anyhow::anyhow!("hashing a password: {error}"))
    })
    .await
    .context("hashing a password")?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_password_verifies_against_its_own_hash_only() {
        let passwords = Passwords::new().await.unwrap();
        let stored = passwords
            .hash("correct horse battery staple")
            .await
            .unwrap();
        assert!(
            stored.starts_with("$argon2id$v=19$m=12288,t=3,p=1$"),
            "{stored}"
        );
        assert!(
            passwords
                .verify("correct horse battery staple", Some(&stored))
                .await
                .unwrap()
        );
        assert!(
            !passwords
                .verify("Correct horse battery staple", Some(&stored))
                .await
                .unwrap()
        );
        assert!(
            !passwords
                .verify("correct horse battery staple", None)
                .await
                .unwrap()
        );
        let again = passwords
            .hash("correct horse battery staple")
            .await
            .unwrap();
        assert_ne!(stored, again, "each hash has its own salt");
    }

    #[tokio::test]
    async fn a_hash_made_with_other_parameters_still_verifies() {
        let passwords = Passwords::new().await.unwrap();
        let stored = Argon2::default()
            .hash_password(b"correct horse battery staple")
            .unwrap()
            .to_string();
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(
            passwords
                .verify("correct horse battery staple", Some(&stored))
                .await
                .unwrap()
        );
        assert!(!passwords.verify("wrong", Some(&stored)).await.unwrap());
    }
}
