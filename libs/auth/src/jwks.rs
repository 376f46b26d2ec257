//! Verifying user access tokens against the issuer's published key set (JWKS).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, Validation};
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::claims::{AuthenticatedUser, Claims};
use crate::error::{AuthError, JwksError};

/// How soon a verifier fetches the JWKS again after a fetch failed.
const RETRY_AFTER_FAILED_FETCH: Duration = Duration::from_millis(250);

/// Longer than any token we issue; longer input is refused before any parsing.
const MAX_TOKEN_LEN: usize = 8 * 1024;

/// RSA keys shorter than this are refused (NIST SP 800-131A).
const MIN_RSA_MODULUS_BITS: usize = 2048;

/// Where the keys come from and what a valid token must say.
#[derive(Clone, Debug)]
pub struct JwksVerifierConfig {
    /// The issuer's JWKS endpoint, e.g. `http://user:8081/.well-known/jwks.json`.
    pub jwks_url: String,
    /// The only accepted `iss`.
    pub issuer: String,
    /// The only accepted `aud`.
    pub audience: String,
    /// Clock skew tolerated on `exp` and `nbf`.
    pub leeway: Duration,
    /// Unknown `kid`s trigger at most one fetch per interval, so garbage cannot hammer the issuer.
    pub min_refresh_interval: Duration,
    /// How long one JWKS fetch may take.
    pub fetch_timeout: Duration,
}

impl JwksVerifierConfig {
    /// Default clock leeway.
    pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
    /// Default minimum interval between two fetches of the key set.
    pub const DEFAULT_MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(10);
    /// Default timeout of one fetch.
    pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(5);

    /// A configuration with the default leeway, refresh interval and timeout.
    pub fn new(
        jwks_url: impl Into<String>,
        issuer: impl Into<String>,
        audience: impl Into<String>,
    ) -> Self {
        Self {
            jwks_url: jwks_url.into(),
            issuer: issuer.into(),
            audience: audience.into(),
            leeway: Self::DEFAULT_LEEWAY,
            min_refresh_interval: Self::DEFAULT_MIN_REFRESH_INTERVAL,
            fetch_timeout: Self::DEFAULT_FETCH_TIMEOUT,
        }
    }

    /// Sets the clock leeway.
    #[must_use]
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Sets the minimum interval between two fetches.
    #[must_use]
    pub fn with_min_refresh_interval(mut self, interval: Duration) -> Self {
        self.min_refresh_interval = interval;
        self
    }

    /// Sets the timeout of one fetch.
    #[must_use]
    pub fn with_fetch_timeout(mut self, timeout: Duration) -> Self {
        self.fetch_timeout = timeout;
        self
    }
}

/// Verifies user access tokens with keys fetched from the issuer's JWKS; cheap to clone.
///
/// Keys are cached by `kid`. A token naming an unknown `kid` triggers a refresh; concurrent
/// verifications share that one fetch, and fetches are at most one per
/// [`min_refresh_interval`](JwksVerifierConfig::min_refresh_interval). When the endpoint is down
/// the cached keys keep working. The algorithm is the key's (EdDSA for Ed25519, the JWK's `alg`
/// or RS256 for RSA): a token whose header says otherwise is refused, as are `none` and HS*.
///
/// Rotation: publish the new key in the JWKS before signing with it, and keep the old one
/// published until the last token it signed has expired.
#[derive(Clone)]
pub struct JwksVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    config: JwksVerifierConfig,
    http: reqwest::Client,
    keys: RwLock<HashMap<String, Arc<VerificationKey>>>,
    /// Held for the whole of a fetch: this is what makes refreshes single-flight.
    refresh: Mutex<RefreshState>,
}

#[derive(Default)]
struct RefreshState {
    /// When the last fetch finished, and whether it succeeded.
    last: Option<(Instant, bool)>,
}

struct VerificationKey {
    algorithm: Algorithm,
    key: DecodingKey,
    validation: Validation,
}

#[derive(Deserialize)]
struct JwksDocument {
    keys: Vec<serde_json::Value>,
}

impl fmt::Debug for JwksVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwksVerifier")
            .field("config", &self.inner.config)
            .field("cached_kids", &self.cached_kids())
            .finish_non_exhaustive()
    }
}

impl JwksVerifier {
    /// A verifier with an empty cache: keys are fetched on first use (or call [`Self::refresh`]).
    pub fn new(config: JwksVerifierConfig) -> Result<Self, JwksError> {
        // reqwest is built without a rustls crypto provider and panics if none is installed.
        platform_http::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(config.fetch_timeout)
            .build()
            .map_err(JwksError::Client)?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                http,
                keys: RwLock::new(HashMap::new()),
                refresh: Mutex::new(RefreshState::default()),
            }),
        })
    }

    /// A verifier for the tokens described by a service's `JWT` settings.
    pub fn from_settings(settings: &platform_config::JwtSettings) -> Result<Self, JwksError> {
        Self::new(JwksVerifierConfig::new(
            settings.jwks_url.clone(),
            settings.issuer.clone(),
            settings.audience.clone(),
        ))
    }

    /// The configuration this verifier was built with.
    pub fn config(&self) -> &JwksVerifierConfig {
        &self.inner.config
    }

    /// The key ids currently cached, sorted.
    pub fn cached_kids(&self) -> Vec<String> {
        let keys = self
            .inner
            .keys
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let mut kids: Vec<String> = keys.keys().cloned().collect();
        kids.sort();
        kids
    }

    /// Verifies `token` (the part after `Bearer `) and returns who it identifies.
    pub async fn verify(&self, token: &str) -> Result<AuthenticatedUser, AuthError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(AuthError::Malformed);
        }
        // An `alg` that is not a known algorithm, `none` included, fails here.
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Malformed)?;
        if !matches!(
            header.alg.family(),
            AlgorithmFamily::Ed | AlgorithmFamily::Rsa
        ) {
            return Err(AuthError::DisallowedAlgorithm);
        }
        if header.crit.is_some() {
            // We understand no extension, so one that must be understood cannot be.
            return Err(AuthError::Malformed);
        }
        let kid = header.kid.as_deref().ok_or(AuthError::Malformed)?;
        let key = self.key_for(kid).await?;
        if header.alg != key.algorithm {
            return Err(AuthError::DisallowedAlgorithm);
        }
        let data = jsonwebtoken::decode::<Claims>(token, &key.key, &key.validation)
            .map_err(|error| auth_error_from(error.kind()))?;
        Ok(data.claims.into())
    }

    /// Fetches the key set now (waiting for a fetch already under way) and replaces the cache;
    /// returns the number of usable keys. On failure the cache is left as it was.
    pub async fn refresh(&self) -> Result<usize, JwksError> {
        let mut state = self.inner.refresh.lock().await;
        self.fetch_and_store(&mut state).await
    }

    /// Adds the keys of `set` to the cache, without fetching anything: how the issuer of the
    /// tokens verifies its own. Returns how many keys were usable.
    pub fn preload(&self, set: &JwkSet) -> Result<usize, JwksError> {
        let keys = self.usable_keys(set.keys.iter().cloned().map(Ok));
        if keys.is_empty() {
            return Err(JwksError::NoUsableKeys);
        }
        let count = keys.len();
        self.inner
            .keys
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(keys);
        Ok(count)
    }

    /// Refreshes the key set every `period` in a background task (the first time at once),
    /// so that rotated keys are known before the first token that needs them arrives.
    ///
    /// The task ends by itself once every clone of this verifier is dropped.
    pub fn spawn_refresh(&self, period: Duration) -> JoinHandle<()> {
        let inner = Arc::downgrade(&self.inner);
        let period = period.max(Duration::from_secs(1));
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(period);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let Some(inner) = inner.upgrade() else {
                    break;
                };
                // Errors are logged by the fetch; the cached keys stay in use.
                let _ = Self { inner }.refresh().await;
            }
        })
    }

    fn cached(&self, kid: &str) -> Option<Arc<VerificationKey>> {
        let keys = self
            .inner
            .keys
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        keys.get(kid).cloned()
    }

    async fn key_for(&self, kid: &str) -> Result<Arc<VerificationKey>, AuthError> {
        if let Some(key) = self.cached(kid) {
            return Ok(key);
        }
        let mut state = self.inner.refresh.lock().await;
        // Whoever held the lock before us may just have fetched the key we need.
        if let Some(key) = self.cached(kid) {
            return Ok(key);
        }
        let min_interval = self.inner.config.min_refresh_interval;
        // After a failed fetch (the user service was starting, or briefly away) try again
        // sooner: the interval protects the user service from floods of bad kids, not from
        // the one retry that gets a starting platform going.
        let wait = |succeeded: bool| {
            if succeeded {
                min_interval
            } else {
                min_interval.min(RETRY_AFTER_FAILED_FETCH)
            }
        };
        let fetched_ok = match state.last {
            Some((at, succeeded)) if at.elapsed() < wait(succeeded) => {
                tracing::debug!(
                    kid,
                    "unknown key id; the JWKS was fetched too recently to fetch it again"
                );
                succeeded
            }
            _ => {
                tracing::info!(kid, "unknown key id; fetching the JWKS");
                self.fetch_and_store(&mut state).await.is_ok()
            }
        };
        drop(state);
        match self.cached(kid) {
            Some(key) => Ok(key),
            None if fetched_ok => Err(AuthError::UnknownKey),
            None => Err(AuthError::KeysUnavailable),
        }
    }

    /// The caller holds the refresh lock (`state` is its guard's content).
    async fn fetch_and_store(&self, state: &mut RefreshState) -> Result<usize, JwksError> {
        let result = self.fetch().await;
        // Stamped when the fetch ends, so a cancelled fetch does not count as one.
        state.last = Some((Instant::now(), result.is_ok()));
        match result {
            Ok(keys) => {
                let count = keys.len();
                let mut kids: Vec<&String> = keys.keys().collect();
                kids.sort();
                tracing::info!(url = %self.inner.config.jwks_url, ?kids, "fetched the JWKS");
                *self
                    .inner
                    .keys
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = keys;
                Ok(count)
            }
            Err(error) => {
                tracing::warn!(
                    url = %self.inner.config.jwks_url,
                    error = %error,
                    cause = ?std::error::Error::source(&error).map(ToString::to_string),
                    "fetching the JWKS failed; keeping the cached keys"
                );
                Err(error)
            }
        }
    }

    async fn fetch(&self) -> Result<HashMap<String, Arc<VerificationKey>>, JwksError> {
        let document: JwksDocument = self
            .inner
            .http
            .get(&self.inner.config.jwks_url)
            .header(http::header::ACCEPT, "application/json")
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(JwksError::Fetch)?
            .json()
            .await
            .map_err(JwksError::Fetch)?;
        let keys = self.usable_keys(
            document
                .keys
                .into_iter()
                .map(|value| serde_json::from_value::<Jwk>(value).map_err(|_| "it is not a JWK")),
        );
        if keys.is_empty() {
            return Err(JwksError::NoUsableKeys);
        }
        Ok(keys)
    }

    /// The keys this verifier can use, by kid; the others are logged and skipped.
    fn usable_keys(
        &self,
        jwks: impl Iterator<Item = Result<Jwk, &'static str>>,
    ) -> HashMap<String, Arc<VerificationKey>> {
        let mut keys = HashMap::new();
        for jwk in jwks {
            match jwk.and_then(|jwk| verification_key(&jwk, &self.inner.config)) {
                Ok((kid, key)) => {
                    keys.insert(kid, Arc::new(key));
                }
                Err(reason) => tracing::warn!(reason, "ignoring a key of the JWKS"),
            }
        }
        keys
    }
}

/// The key, its one algorithm and the validation rules for tokens it signed.
fn verification_key(
    jwk: &Jwk,
    config: &JwksVerifierConfig,
) -> Result<(String, VerificationKey), &'static str> {
    let kid = jwk.common.key_id.clone().ok_or("it has no kid")?;
    if matches!(
        jwk.common.public_key_use,
        Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
    ) {
        return Err("it is not a signature key");
    }
    let declared = jwk.common.key_algorithm;
    let (algorithm, key) = match &jwk.algorithm {
        AlgorithmParameters::OctetKeyPair(params) => {
            if params.curve != EllipticCurve::Ed25519 {
                return Err("its curve is not Ed25519");
            }
            if declared.is_some_and(|alg| alg != KeyAlgorithm::EdDSA) {
                return Err("its alg is not EdDSA");
            }
            // Checked here because the verifier slices the key without checking its length.
            let x = URL_SAFE_NO_PAD
                .decode(&params.x)
                .map_err(|_| "its x is not base64url")?;
            let x: [u8; 32] = x.try_into().map_err(|_| "its x is not 32 bytes")?;
            ed25519_dalek::VerifyingKey::from_bytes(&x)
                .map_err(|_| "its x is not an Ed25519 public key")?;
            (Algorithm::EdDSA, DecodingKey::from_ed_der(&x))
        }
        AlgorithmParameters::RSA(params) => {
            let algorithm = match declared {
                None | Some(KeyAlgorithm::RS256) => Algorithm::RS256,
                Some(KeyAlgorithm::RS384) => Algorithm::RS384,
                Some(KeyAlgorithm::RS512) => Algorithm::RS512,
                Some(KeyAlgorithm::PS256) => Algorithm::PS256,
                Some(KeyAlgorithm::PS384) => Algorithm::PS384,
                Some(KeyAlgorithm::PS512) => Algorithm::PS512,
                Some(_) => return Err("its alg is not an RSA signature algorithm"),
            };
            let modulus = URL_SAFE_NO_PAD
                .decode(&params.n)
                .map_err(|_| "its n is not base64url")?;
            if significant_bits(&modulus) < MIN_RSA_MODULUS_BITS {
                return Err("its modulus is shorter than 2048 bits");
            }
            let key = DecodingKey::from_rsa_components(&params.n, &params.e)
                .map_err(|_| "its e is not base64url")?;
            (algorithm, key)
        }
        _ => return Err("only Ed25519 (OKP) and RSA keys are accepted"),
    };
    Ok((
        kid,
        VerificationKey {
            algorithm,
            key,
            validation: validation(algorithm, config),
        },
    ))
}

fn validation(algorithm: Algorithm, config: &JwksVerifierConfig) -> Validation {
    let mut validation = Validation::new(algorithm);
    validation.leeway = config.leeway.as_secs();
    validation.validate_nbf = true;
    validation.set_issuer(&[&config.issuer]);
    validation.set_audience(&[&config.audience]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation
}

fn significant_bits(big_endian: &[u8]) -> usize {
    let mut bytes = big_endian.iter().skip_while(|byte| **byte == 0);
    match bytes.next() {
        Some(first) => (8 - first.leading_zeros() as usize) + 8 * bytes.count(),
        None => 0,
    }
}

fn auth_error_from(kind: &ErrorKind) -> AuthError {
    match kind {
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        ErrorKind::InvalidAlgorithm => AuthError::DisallowedAlgorithm,
        ErrorKind::InvalidEddsaKey | ErrorKind::InvalidRsaKey(_) | ErrorKind::InvalidKeyFormat => {
            tracing::warn!(?kind, "a key of the JWKS cannot verify tokens");
            AuthError::BadSignature
        }
        _ => AuthError::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn significant_bits_ignore_leading_zeros() {
        assert_eq!(significant_bits(&[]), 0);
        assert_eq!(significant_bits(&[0, 0]), 0);
        assert_eq!(significant_bits(&[0, 1]), 1);
        assert_eq!(significant_bits(&[0x80, 0]), 16);
        assert_eq!(significant_bits(&[0, 0x7f, 0xff]), 15);
    }
}
