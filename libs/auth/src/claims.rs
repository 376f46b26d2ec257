//! What a user access token says, and the identity a handler gets once it has been verified.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::AuthError;

/// What a user may do; carried in the token's `roles` claim, lower-case on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Shops: browses products, places and sees their own orders.
    Customer,
    /// Runs the shop: manages the catalogue and stock.
    Admin,
}

impl Role {
    /// The role's wire name (`customer`, `admin`), as in tokens and gRPC messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is not one of [`Role`]'s.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a role (expected `customer` or `admin`)")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "customer" => Ok(Self::Customer),
            "admin" => Ok(Self::Admin),
            other => Err(UnknownRole(other.to_owned())),
        }
    }
}

/// The claims of a user access token, exactly as they travel in the JWT payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer: who minted the token (the user service).
    pub iss: String,
    /// Subject: the user's id.
    pub sub: Uuid,
    /// Audience: who the token is for (the platform's public API).
    pub aud: String,
    /// Issued at, in whole seconds since the epoch on the wire.
    #[serde(with = "chrono::serde::ts_seconds")]
    pub iat: DateTime<Utc>,
    /// Expires at, in whole seconds since the epoch on the wire.
    #[serde(with = "chrono::serde::ts_seconds")]
    pub exp: DateTime<Utc>,
    /// The token's own id, for logs and audits.
    pub jti: Uuid,
    /// The user's (normalised) email address.
    pub email: String,
    /// What the user may do.
    pub roles: Vec<Role>,
}

impl Claims {
    /// Claims for a token issued now that lives for `ttl`, with a fresh `jti`.
    pub fn new(
        user_id: Uuid,
        email: impl Into<String>,
        roles: Vec<Role>,
        issuer: impl Into<String>,
        audience: impl Into<String>,
        ttl: Duration,
    ) -> Self {
        let issued_at = Utc::now().trunc_subsecs(0);
        let lifetime = TimeDelta::from_std(ttl).unwrap_or(TimeDelta::MAX);
        Self {
            iss: issuer.into(),
            sub: user_id,
            aud: audience.into(),
            iat: issued_at,
            exp: issued_at
                .checked_add_signed(lifetime)
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
            jti: Uuid::now_v7(),
            email: email.into(),
            roles,
        }
    }
}

/// The user a request was made by, known from a verified access token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthenticatedUser {
    /// The user's id.
    pub user_id: Uuid,
    /// The user's email address.
    pub email: String,
    /// What the user may do.
    pub roles: Vec<Role>,
    /// When the token this identity came from expires.
    pub expires_at: DateTime<Utc>,
    /// The id (`jti`) of that token.
    pub token_id: Uuid,
}

impl AuthenticatedUser {
    /// Whether the user holds `role` (roles are independent: `admin` does not imply `customer`).
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Whether the user is an administrator.
    pub fn is_admin(&self) -> bool {
        self.has_role(Role::Admin)
    }

    /// `Ok` if the user holds `role`, otherwise [`AuthError::MissingRole`] (a 403 over HTTP).
    pub fn require_role(&self, role: Role) -> Result<(), AuthError> {
        if self.has_role(role) {
            Ok(())
        } else {
            Err(AuthError::MissingRole(role))
        }
    }
}

impl From<Claims> for AuthenticatedUser {
    fn from(claims: Claims) -> Self {
        Self {
            user_id: claims.sub,
            email: claims.email,
            roles: claims.roles,
            expires_at: claims.exp,
            token_id: claims.jti,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn sample() -> Claims {
        Claims {
            iss: "platform-user".to_owned(),
            sub: Uuid::parse_str("0195b4d2-8a3e-7c1f-9d2a-3b4c5d6e7f80").unwrap(),
            aud: "platform-api".to_owned(),
            iat: DateTime::from_timestamp(1_750_000_000, 0).unwrap(),
            exp: DateTime::from_timestamp(1_750_000_900, 0).unwrap(),
            jti: Uuid::parse_str("0195b4d2-8a3e-7c1f-9d2a-000000000001").unwrap(),
            email: "ada@example.com".to_owned(),
            roles: vec![Role::Customer, Role::Admin],
        }
    }

    #[test]
    fn claims_have_a_pinned_json_form() {
        let expected = json!({
            "iss": "platform-user",
            "sub": "0195b4d2-8a3e-7c1f-9d2a-3b4c5d6e7f80",
            "aud": "platform-api",
            "iat": 1_750_000_000,
            "exp": 1_750_000_900,
            "jti": "0195b4d2-8a3e-7c1f-9d2a-000000000001",
            "email": "ada@example.com",
            "roles": ["customer", "admin"],
        });
        assert_eq!(serde_json::to_value(sample()).unwrap(), expected);
        assert_eq!(
            serde_json::from_value::<Claims>(expected).unwrap(),
            sample()
        );
    }

    #[test]
    fn an_unknown_role_does_not_deserialise() {
        let mut value = serde_json::to_value(sample()).unwrap();
        value["roles"] = json!(["superuser"]);
        assert!(serde_json::from_value::<Claims>(value).is_err());
    }

    #[test]
    fn roles_parse_from_and_print_as_their_wire_names() {
        for role in [Role::Customer, Role::Admin] {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
            assert_eq!(role.to_string(), role.as_str());
        }
        assert_eq!(
            "Admin".parse::<Role>(),
            Err(UnknownRole("Admin".to_owned()))
        );
    }

    #[test]
    fn new_claims_expire_ttl_after_they_are_issued() {
        let claims = Claims::new(
            Uuid::new_v4(),
            "ada@example.com",
            vec![Role::Customer],
            "iss",
            "aud",
            Duration::from_secs(900),
        );
        assert_eq!(claims.exp - claims.iat, TimeDelta::seconds(900));
        assert_eq!(claims.iat.timestamp_subsec_nanos(), 0);
    }

    #[test]
    fn a_user_without_the_role_is_refused_it() {
        let user = AuthenticatedUser::from(Claims {
            roles: vec![Role::Customer],
            ..sample()
        });
        assert_eq!(user.require_role(Role::Customer), Ok(()));
        assert_eq!(
            user.require_role(Role::Admin),
            Err(AuthError::MissingRole(Role::Admin))
        );
        assert!(!user.is_admin());
    }
}
