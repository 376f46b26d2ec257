//! Sessions: what the storefront remembers of a visitor, kept in Redis under an unguessable id
//! that the browser holds in an `HttpOnly` cookie. Tokens never reach the browser.
//!
//! A session holds the CSRF token its forms carry, the cart, the signed-in customer's tokens
//! (and when the access token expires, so it is refreshed before it does), and the messages
//! ("flash") shown once on the next page. It is written back only when it changed, and lives
//! `ttl` after its last write.
//!
//! The customer (who, and their tokens) is kept under a key of its own, written only when
//! someone signs in or out or the tokens are refreshed: a request that changes the cart while
//! another refreshes the tokens does not write the old tokens back (refresh tokens rotate, and
//! an old one presented again ends every session of the account). One request at a time
//! refreshes a session's tokens ([`Sessions::lock_refresh`]); the others wait for its result.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use redis::AsyncCommands as _;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};

/// The cookie's name.
pub const COOKIE: &str = "storefront_session";

/// Most distinct products a cart holds.
pub const MAX_CART_LINES: usize = 50;

/// Most units of one product in a cart.
pub const MAX_QUANTITY: i64 = 99;

/// How long one request may hold the right to refresh a session's tokens.
pub const REFRESH_LOCK: Duration = Duration::from_secs(5);

/// A signed-in customer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Customer {
    /// E-mail.
    pub email: String,
    /// Name shown.
    pub display_name: String,
    /// An administrator.
    pub admin: bool,
    /// Bearer token.
    pub access_token: String,
    /// When it expires (Unix seconds).
    pub access_expires_at: i64,
    /// Trades for a new pair.
    pub refresh_token: String,
}

/// A message for the next page.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Flash {
    /// `info` or `error`.
    pub kind: String,
    /// The text.
    pub text: String,
}

/// One line of the cart.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct CartLine {
    /// SKU.
    pub sku: String,
    /// Units.
    pub quantity: i64,
}

/// What is kept of a visitor.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SessionData {
    /// The token every form of this session carries.
    pub csrf: String,
    /// Signed in as (stored under its own key).
    #[serde(skip)]
    pub customer: Option<Customer>,
    /// The cart.
    #[serde(default)]
    pub cart: Vec<CartLine>,
    /// Messages for the next page.
    #[serde(default)]
    pub flash: Vec<Flash>,
}

impl SessionData {
    fn fresh() -> Self {
        Self {
            csrf: random_token(),
            customer: None,
            cart: Vec::new(),
            flash: Vec::new(),
        }
    }

    /// Units in the cart.
    pub fn cart_count(&self) -> i64 {
        self.cart.iter().map(|line| line.quantity).sum()
    }

    /// Adds units of a product (capped at [`MAX_QUANTITY`]); false when the cart is full.
    pub fn add_to_cart(&mut self, sku: &str, quantity: i64) -> bool {
        if let Some(line) = self.cart.iter_mut().find(|line| line.sku == sku) {
            line.quantity = (line.quantity + quantity).min(MAX_QUANTITY);
            return true;
        }
        if self.cart.len() >= MAX_CART_LINES {
            return false;
        }
        self.cart.push(CartLine {
            sku: sku.to_owned(),
            quantity: quantity.min(MAX_QUANTITY),
        });
        true
    }

    /// Sets a line's quantity; 0 removes it.
    pub fn set_quantity(&mut self, sku: &str, quantity: i64) {
        if quantity <= 0 {
            self.cart.retain(|line| line.sku != sku);
        } else if let Some(line) = self.cart.iter_mut().find(|line| line.sku == sku) {
            line.quantity = quantity.min(MAX_QUANTITY);
        }
    }

    /// Takes what was ordered out of the cart (what was added since stays).
    pub fn remove_ordered(&mut self, ordered: &[(String, i64)]) {
        for (sku, quantity) in ordered {
            if let Some(line) = self.cart.iter_mut().find(|line| &line.sku == sku) {
                line.quantity -= quantity;
            }
        }
        self.cart.retain(|line| line.quantity > 0);
    }

    /// A message for the next page.
    pub fn flash(&mut self, kind: &str, text: impl Into<String>) {
        self.flash.push(Flash {
            kind: kind.to_owned(),
            text: text.into(),
        });
    }
}

/// A visitor's session, as loaded for one request.
#[derive(Debug)]
pub struct Session {
    /// Its id (the cookie's value).
    pub id: String,
    /// Its data.
    pub data: SessionData,
    /// Made for this request: the cookie must be set.
    pub is_new: bool,
    /// Changed: it must be written back.
    pub dirty: bool,
    /// The customer changed: it must be written back.
    pub customer_dirty: bool,
}

impl Session {
    /// Changes the data, marking the session for writing back.
    pub fn data_mut(&mut self) -> &mut SessionData {
        self.dirty = true;
        &mut self.data
    }

    /// Signs a customer in or (with `None`) out.
    pub fn set_customer(&mut self, customer: Option<Customer>) {
        self.data.customer = customer;
        self.customer_dirty = true;
    }

    /// Takes the messages for this page.
    pub fn take_flash(&mut self) -> Vec<Flash> {
        if self.data.flash.is_empty() {
            return Vec::new();
        }
        self.dirty = true;
        std::mem::take(&mut self.data.flash)
    }

    /// Whether `token` is this session's CSRF token (compared in constant time).
    pub fn csrf_matches(&self, token: &str) -> bool {
        let (a, b) = (self.data.csrf.as_bytes(), token.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

/// The session store.
#[derive(Clone)]
pub struct Sessions {
    redis: ConnectionManager,
    prefix: String,
    ttl: Duration,
    secure: bool,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl Sessions {
    /// A store in Redis under `prefix`.
    pub fn new(redis: ConnectionManager, prefix: &str, ttl: Duration, secure: bool) -> Self {
        Self {
            redis,
            prefix: prefix.to_owned(),
            ttl,
            secure,
        }
    }

    fn key(&self, id: &str) -> String {
        format!("{}:session:{id}", self.prefix)
    }

    fn customer_key(&self, id: &str) -> String {
        format!("{}:session:{id}:customer", self.prefix)
    }

    /// The session the cookie names, or a new one when there is none (or it expired).
    pub async fn load(&self, cookie: Option<&str>) -> redis::RedisResult<Session> {
        if let Some(id) = cookie.filter(|id| well_formed(id)) {
            let mut redis = self.redis.clone();
            let (stored, customer): (Option<String>, Option<String>) =
                redis.mget(&[self.key(id), self.customer_key(id)]).await?;
            if let Some(mut data) =
                stored.and_then(|json| serde_json::from_str::<SessionData>(&json).ok())
            {
                data.customer = customer.and_then(|json| serde_json::from_str(&json).ok());
                return Ok(Session {
                    id: id.to_owned(),
                    data,
                    is_new: false,
                    dirty: false,
                    customer_dirty: false,
                });
            }
        }
        Ok(Session {
            id: random_token(),
            data: SessionData::fresh(),
            is_new: true,
            dirty: true,
            customer_dirty: false,
        })
    }

    /// The customer stored now (what another request may have refreshed since this one
    /// loaded the session).
    pub async fn stored_customer(&self, session: &Session) -> redis::RedisResult<Option<Customer>> {
        let mut redis = self.redis.clone();
        let json: Option<String> = redis.get(self.customer_key(&session.id)).await?;
        Ok(json.and_then(|json| serde_json::from_str(&json).ok()))
    }

    /// Writes back what changed. Writing the session keeps the customer's key alive as long.
    pub async fn save(&self, session: &mut Session) -> redis::RedisResult<()> {
        if !session.dirty && !session.customer_dirty {
            return Ok(());
        }
        let ttl = self.ttl.as_secs().max(1);
        let customer_key = self.customer_key(&session.id);
        let mut pipe = redis::pipe();
        if session.customer_dirty {
            match &session.data.customer {
                Some(customer) => {
                    let json = serde_json::to_string(customer).expect("a customer serialises");
                    pipe.set_ex(&customer_key, json, ttl).ignore();
                }
                None => {
                    pipe.del(&customer_key).ignore();
                }
            }
        }
        if session.dirty {
            let json = serde_json::to_string(&session.data).expect("session data serialises");
            pipe.set_ex(self.key(&session.id), json, ttl).ignore();
            pipe.expire(&customer_key, ttl as i64).ignore();
        }
        let mut redis = self.redis.clone();
        pipe.query_async::<()>(&mut redis).await?;
        session.dirty = false;
        session.customer_dirty = false;
        Ok(())
    }

    /// Ends a session: its data goes, and the visitor gets a new one (sign-in and sign-out
    /// change the id, so a session id seen before cannot ride on a new sign-in). What the
    /// session holds moves to the new id.
    pub async fn renew(&self, session: &mut Session) -> redis::RedisResult<()> {
        let mut redis = self.redis.clone();
        redis
            .del::<_, ()>(&[self.key(&session.id), self.customer_key(&session.id)])
            .await?;
        session.id = random_token();
        session.data.csrf = random_token();
        session.is_new = true;
        session.dirty = true;
        session.customer_dirty = true;
        Ok(())
    }

    /// Takes the right to refresh this session's tokens for a few seconds: false when another
    /// request holds it.
    pub async fn lock_refresh(&self, session: &Session) -> redis::RedisResult<bool> {
        let mut redis = self.redis.clone();
        let taken: Option<String> = redis::cmd("SET")
            .arg(format!("{}:session:{}:refreshing", self.prefix, session.id))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(REFRESH_LOCK.as_millis() as u64)
            .query_async(&mut redis)
            .await?;
        Ok(taken.is_some())
    }

    /// Gives the right back.
    pub async fn unlock_refresh(&self, session: &Session) -> redis::RedisResult<()> {
        let mut redis = self.redis.clone();
        redis
            .del::<_, ()>(format!("{}:session:{}:refreshing", self.prefix, session.id))
            .await
    }

    /// The `Set-Cookie` value for a session.
    pub fn cookie(&self, session: &Session) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!(
            "{COOKIE}={}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
            session.id,
            self.ttl.as_secs()
        )
    }
}

/// The session cookie's value among a request's `Cookie` headers.
pub fn cookie_value<'a>(headers: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    headers
        .flat_map(|header| header.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

/// 32 random bytes, base64url: a session id or a CSRF token.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn well_formed(id: &str) -> bool {
    id.len() == 43
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_found_among_others() {
        let headers = ["a=1; storefront_session=abc", "b=2"];
        assert_eq!(cookie_value(headers.into_iter()), Some("abc"));
        assert_eq!(cookie_value(["x=1"].into_iter()), None);
    }

    #[test]
    fn ids_are_long_random_and_url_safe() {
        let (a, b) = (random_token(), random_token());
        assert_ne!(a, b);
        assert!(well_formed(&a));
        assert!(!well_formed("../../etc"));
        assert!(!well_formed(""));
    }

    #[test]
    fn the_cart_caps_quantities_and_lines() {
        let mut data = SessionData::fresh();
        assert!(data.add_to_cart("A", 60));
        assert!(data.add_to_cart("A", 60));
        assert_eq!(data.cart[0].quantity, MAX_QUANTITY);
        for n in 1..MAX_CART_LINES {
            assert!(data.add_to_cart(&format!("S{n}"), 1));
        }
        assert!(!data.add_to_cart("ONE-TOO-MANY", 1));
        data.set_quantity("A", 0);
        assert!(data.cart.iter().all(|line| line.sku != "A"));
    }

    #[test]
    fn ordering_takes_only_what_was_ordered() {
        let mut data = SessionData::fresh();
        data.add_to_cart("A", 3);
        data.add_to_cart("B", 1);
        data.remove_ordered(&[("A".to_owned(), 2), ("B".to_owned(), 1)]);
        assert_eq!(
            data.cart,
            [CartLine {
                sku: "A".to_owned(),
                quantity: 1
            }]
        );
    }

    #[test]
    fn csrf_tokens_compare_exactly() {
        let session = Session {
            id: random_token(),
            data: SessionData::fresh(),
            is_new: true,
            dirty: true,
            customer_dirty: false,
        };
        let token = session.data.csrf.clone();
        assert!(session.csrf_matches(&token));
        assert!(!session.csrf_matches(&token[1..]));
        assert!(!session.csrf_matches(""));
    }
}
