//! Service-to-service credentials for internal gRPC: a short-lived HS256 JWT, minted by the
//! caller with a shared secret and checked by the callee.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::service::Interceptor;
use tonic::{Request, Status};

use crate::error::KeyError;
use crate::extract::parse_bearer;

/// The shared secret every service uses in development. Production must configure its own.
pub const DEV_ONLY_INSECURE_SERVICE_SECRET: &str =
    "dev-only-insecure-service-secret-never-use-in-production";

/// The shortest accepted shared secret, in bytes: HS256 wants a key at least as long as its hash.
pub const MIN_SERVICE_SECRET_LEN: usize = 32;

/// The metadata key the credential travels in.
const AUTHORIZATION: &str = "authorization";

/// The secret shared by the services; `Debug` prints `[REDACTED]`.
#[derive(Clone, PartialEq, Eq)]
pub struct ServiceSecret(String);

impl ServiceSecret {
    /// A secret of at least [`MIN_SERVICE_SECRET_LEN`] bytes.
    pub fn new(secret: impl Into<String>) -> Result<Self, KeyError> {
        let secret = secret.into();
        if secret.len() < MIN_SERVICE_SECRET_LEN {
            return Err(KeyError::SecretTooShort {
                min: MIN_SERVICE_SECRET_LEN,
            });
        }
        Ok(Self(secret))
    }

    /// The secret itself; only for signing and verifying.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ServiceSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

/// Who this service is, and the secret it shares with the others.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceCredentials {
    /// This service's name (`order`, `user` ...): the `iss`/`sub` of what it mints, the `aud`
    /// of what it accepts.
    pub service_name: String,
    /// The shared secret.
    pub secret: ServiceSecret,
}

impl ServiceCredentials {
    /// Credentials for `service_name` with a configured secret.
    pub fn new(service_name: impl Into<String>, secret: ServiceSecret) -> Self {
        Self {
            service_name: service_name.into(),
            secret,
        }
    }
    /// Credentials for `service_name` from a configured secret, or, when none is configured,
    /// the development secret with a loud warning naming `variable` (the setting to fill in).
    pub fn configured(
        service_name: impl Into<String>,
        secret: Option<&str>,
        variable: &str,
    ) -> Result<Self, KeyError> {
        match secret {
            Some(secret) => Ok(Self::new(service_name, ServiceSecret::new(secret)?)),
            None => {
                tracing::warn!(
                    "DEVELOPMENT ONLY: no service credential secret configured ({variable}); \
                     using the insecure development secret"
                );
                Ok(Self::dev_only_insecure(service_name))
            }
        }
    }

    /// Credentials with [`DEV_ONLY_INSECURE_SERVICE_SECRET`]: for local runs and tests only.
    pub fn dev_only_insecure(service_name: impl Into<String>) -> Self {
        Self::new(
            service_name,
            ServiceSecret(DEV_ONLY_INSECURE_SERVICE_SECRET.to_owned()),
        )
    }

    /// Mints a credential for calling `audience` (the target service's name), valid for `ttl`.
    pub fn mint_token(&self, audience: &str, ttl: Duration) -> Result<String, KeyError> {
        let claims = ServiceClaims::new(&self.service_name, audience, ttl);
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(self.secret.expose().as_bytes()),
        )
        .map_err(KeyError::Signing)
    }
}

/// The claims of a service credential, as they travel in the JWT payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceClaims {
    /// The calling service.
    pub iss: String,
    /// The calling service (again: the subject the callee acts for).
    pub sub: String,
    /// The service being called.
    pub aud: String,
    /// Issued at, in whole seconds since the epoch on the wire.
    #[serde(with = "chrono::serde::ts_seconds")]
    pub iat: DateTime<Utc>,
    /// Expires at, in whole seconds since the epoch on the wire.
    #[serde(with = "chrono::serde::ts_seconds")]
    pub exp: DateTime<Utc>,
}

impl ServiceClaims {
    /// Claims for `caller` calling `audience`, issued now and valid for `ttl`.
    pub fn new(caller: &str, audience: &str, ttl: Duration) -> Self {
        let issued_at = Utc::now().trunc_subsecs(0);
        let lifetime = TimeDelta::from_std(ttl).unwrap_or(TimeDelta::MAX);
        Self {
            iss: caller.to_owned(),
            sub: caller.to_owned(),
            aud: audience.to_owned(),
            iat: issued_at,
            exp: issued_at
                .checked_add_signed(lifetime)
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        }
    }
}

/// Client side: attaches `authorization: Bearer <jwt>` to every call to one target service.
///
/// The token is minted once and reused until shortly before it expires. Cheap to clone.
#[derive(Clone)]
pub struct ServiceTokenInterceptor {
    inner: Arc<TokenSource>,
}

struct TokenSource {
    credentials: ServiceCredentials,
    audience: String,
    ttl: Duration,
    cached: Mutex<Option<CachedToken>>,
}

struct CachedToken {
    value: AsciiMetadataValue,
    renew_at: Instant,
}

impl fmt::Debug for ServiceTokenInterceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceTokenInterceptor")
            .field("caller", &self.inner.credentials.service_name)
            .field("audience", &self.inner.audience)
            .field("ttl", &self.inner.ttl)
            .finish_non_exhaustive()
    }
}

impl ServiceTokenInterceptor {
    /// How long a minted credential lives by default.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(5 * 60);

    /// An interceptor for calls to `target_service`, minting credentials of [`Self::DEFAULT_TTL`].
    pub fn new(credentials: ServiceCredentials, target_service: impl Into<String>) -> Self {
        Self::with_ttl(credentials, target_service, Self::DEFAULT_TTL)
    }

    /// An interceptor for calls to `target_service`, minting credentials that live for `ttl`.
    pub fn with_ttl(
        credentials: ServiceCredentials,
        target_service: impl Into<String>,
        ttl: Duration,
    ) -> Self {
        Self {
            inner: Arc::new(TokenSource {
                credentials,
                audience: target_service.into(),
                ttl,
                cached: Mutex::new(None),
            }),
        }
    }

    /// The `authorization` metadata value: the cached credential, or a fresh one when it is
    /// about to expire.
    fn authorization(&self) -> Result<AsciiMetadataValue, Status> {
        let source = &*self.inner;
        let mut cached = source.cached.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if let Some(token) = cached.as_ref().filter(|token| now < token.renew_at) {
            return Ok(token.value.clone());
        }
        let value = source
            .credentials
            .mint_token(&source.audience, source.ttl)
            .map_err(|error| error.to_string())
            .and_then(|token| {
                MetadataValue::try_from(format!("Bearer {token}"))
                    .map_err(|error| error.to_string())
            })
            .map_err(|error| {
                tracing::error!(error, "cannot mint the service credential");
                Status::internal("cannot mint the service credential")
            })?;
        // Renew a fifth of the lifetime (at most a minute) before expiry, so that a credential
        // never arrives expired at a callee whose clock is a little ahead.
        let margin = (source.ttl / 5).min(Duration::from_secs(60));
        *cached = Some(CachedToken {
            value: value.clone(),
            renew_at: now
                .checked_add(source.ttl.saturating_sub(margin))
                .unwrap_or(now),
        });
        Ok(value)
    }
}

impl Interceptor for ServiceTokenInterceptor {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let value = self.authorization()?;
        request.metadata_mut().insert(AUTHORIZATION, value);
        Ok(request)
    }
}

/// The service that made a gRPC call, put in the request extensions by
/// [`ServiceAuthInterceptor`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CallerService(pub String);

impl CallerService {
    /// The calling service's name.
    pub fn name(&self) -> &str {
        &self.0
    }

    /// The caller of `request`; `INTERNAL` if the service is not behind [`ServiceAuthInterceptor`].
    pub fn of<T>(request: &Request<T>) -> Result<&Self, Status> {
        request.extensions().get::<Self>().ok_or_else(|| {
            tracing::error!("no caller identity: the service is not behind ServiceAuthInterceptor");
            Status::internal("the caller's identity is unknown")
        })
    }
}

/// Server side: refuses calls without a valid credential for this service
/// (`UNAUTHENTICATED`), and tells the handler who called ([`CallerService`]).
///
/// Cheap to clone. The credential is removed from the metadata once checked, so a handler
/// cannot log or forward it by mistake.
#[derive(Clone)]
pub struct ServiceAuthInterceptor {
    inner: Arc<ServiceVerifier>,
}

struct ServiceVerifier {
    service_name: String,
    key: DecodingKey,
    validation: Validation,
}

impl fmt::Debug for ServiceAuthInterceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAuthInterceptor")
            .field("service_name", &self.inner.service_name)
            .finish_non_exhaustive()
    }
}

impl ServiceAuthInterceptor {
    /// Clock skew tolerated on `exp`.
    pub const LEEWAY: Duration = Duration::from_secs(30);

    /// Accepts credentials minted with `credentials.secret` for `credentials.service_name`.
    pub fn new(credentials: &ServiceCredentials) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = Self::LEEWAY.as_secs();
        validation.validate_nbf = true;
        validation.set_audience(&[&credentials.service_name]);
        validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
        Self {
            inner: Arc::new(ServiceVerifier {
                service_name: credentials.service_name.clone(),
                key: DecodingKey::from_secret(credentials.secret.expose().as_bytes()),
                validation,
            }),
        }
    }

    /// Checks a credential (the JWT itself, without `Bearer `) and returns who minted it.
    pub fn verify(&self, token: &str) -> Result<CallerService, Status> {
        let claims =
            jsonwebtoken::decode::<ServiceClaims>(token, &self.inner.key, &self.inner.validation)
                .map_err(|error| {
                    let message = match error.kind() {
                        ErrorKind::ExpiredSignature => "the service credential has expired",
                        ErrorKind::ImmatureSignature => "the service credential is not valid yet",
                        ErrorKind::InvalidAudience => {
                            "the service credential was issued for another service"
                        }
                        ErrorKind::InvalidSignature => {
                            "the service credential's signature is invalid"
                        }
                        ErrorKind::InvalidAlgorithm => {
                            "the service credential must be signed with HS256"
                        }
                        _ => "the service credential is malformed",
                    };
                    Status::unauthenticated(message)
                })?
                .claims;
        if claims.iss != claims.sub {
            return Err(Status::unauthenticated(
                "the service credential is malformed",
            ));
        }
        Ok(CallerService(claims.sub))
    }
}

impl Interceptor for ServiceAuthInterceptor {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let caller = {
            let value = request.metadata().get(AUTHORIZATION).ok_or_else(|| {
                Status::unauthenticated(
                    "missing service credential: expected `authorization: Bearer <token>`",
                )
            })?;
            let token = value.to_str().ok().and_then(parse_bearer).ok_or_else(|| {
                Status::unauthenticated(
                    "the authorization metadata must be of the form `Bearer <token>`",
                )
            })?;
            self.verify(token)
        };
        let caller = caller.inspect_err(|status| {
            tracing::warn!(
                service = %self.inner.service_name,
                reason = status.message(),
                "refused a call without a valid service credential"
            );
        })?;
        request.metadata_mut().remove(AUTHORIZATION);
        request.extensions_mut().insert(caller);
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_secret_never_shows_in_debug_output() {
        let credentials = ServiceCredentials::dev_only_insecure("order");
        let printed = format!("{credentials:?}");
        assert!(printed.contains("[REDACTED]"), "{printed}");
        assert!(
            !printed.contains(DEV_ONLY_INSECURE_SERVICE_SECRET),
            "{printed}"
        );
    }

    #[test]
    fn a_short_secret_is_refused() {
        assert!(matches!(
            ServiceSecret::new("too short"),
            Err(KeyError::SecretTooShort { min: 32 })
        ));
        assert!(ServiceSecret::new("x".repeat(32)).is_ok());
    }

    #[test]
    fn service_claims_have_a_pinned_json_form() {
        let claims = ServiceClaims {
            iss: "order".to_owned(),
            sub: "order".to_owned(),
            aud: "user".to_owned(),
            iat: DateTime::from_timestamp(1_750_000_000, 0).unwrap(),
            exp: DateTime::from_timestamp(1_750_000_300, 0).unwrap(),
        };
        let expected = json!({
            "iss": "order", "sub": "order", "aud": "user", "iat": 1_750_000_000, "exp": 1_750_000_300,
        });
        assert_eq!(serde_json::to_value(&claims).unwrap(), expected);
        assert_eq!(
            serde_json::from_value::<ServiceClaims>(expected).unwrap(),
            claims
        );
    }

    #[test]
    fn the_client_reuses_its_credential_until_it_nears_expiry() {
        let credentials = ServiceCredentials::dev_only_insecure("order");
        let interceptor = ServiceTokenInterceptor::new(credentials.clone(), "user");
        let first = interceptor.authorization().unwrap();
        std::thread::sleep(Duration::from_millis(1100)); // a fresh mint would have a later iat
        assert_eq!(interceptor.authorization().unwrap(), first);

        // With a lifetime shorter than the renewal margin's floor, every call renews.
        let short = ServiceTokenInterceptor::with_ttl(credentials, "user", Duration::ZERO);
        let first = short.authorization().unwrap();
        std::thread::sleep(Duration::from_millis(1100));
        assert_ne!(short.authorization().unwrap(), first);
    }

    #[test]
    fn a_minted_credential_verifies_for_its_audience_only() {
        let order = ServiceCredentials::dev_only_insecure("order");
        let token = order.mint_token("user", Duration::from_secs(60)).unwrap();
        let user_side = ServiceAuthInterceptor::new(&ServiceCredentials::dev_only_insecure("user"));
        assert_eq!(
            user_side.verify(&token).unwrap(),
            CallerService("order".to_owned())
        );
        let payment_side =
            ServiceAuthInterceptor::new(&ServiceCredentials::dev_only_insecure("payment"));
        assert_eq!(
            payment_side.verify(&token).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
    }
}
