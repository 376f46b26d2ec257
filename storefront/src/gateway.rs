//! The platform's public API, as the storefront sees it: typed calls through the gateway, the
//! only thing the storefront talks to besides its session store.
//!
//! A failed call is a [`GatewayError`]: the gateway's answer (its status and problem+json, whose
//! `detail` and field `errors` the pages turn into messages) or no answer at all.

use std::time::Duration;

use reqwest::{Method, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::config::GatewaySettings;

/// Amounts in minor units.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Money {
    /// Minor units (cents).
    pub minor: i64,
    /// ISO 4217 code.
    pub currency: String,
}

/// Stock of a product.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Stock {
    /// Units that can be ordered.
    pub available: i64,
    /// Units held for orders in progress.
    pub reserved: i64,
}

/// A product of the catalogue.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Product {
    /// Id.
    pub id: Uuid,
    /// SKU.
    pub sku: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Unit price.
    pub price: Money,
    /// Category.
    pub category: String,
    /// Stock.
    pub stock: Stock,
}

/// A page of the catalogue.
#[derive(Clone, Debug, Deserialize)]
pub struct ProductPage {
    /// The products.
    pub items: Vec<Product>,
    /// 1-based page number.
    pub page: u64,
    /// Products per page.
    pub page_size: u64,
    /// Products matching, in all.
    pub total: u64,
}

/// Tokens of a signed-in customer.
#[derive(Clone, Debug, Deserialize)]
pub struct Tokens {
    /// The bearer token.
    pub access_token: String,
    /// Its lifetime, seconds.
    pub expires_in: u64,
    /// Trades for a new pair.
    pub refresh_token: String,
}

/// The signed-in customer.
#[derive(Clone, Debug, Deserialize)]
pub struct Me {
    /// Id.
    pub id: Uuid,
    /// E-mail.
    pub email: String,
    /// Name shown.
    pub display_name: String,
    /// Roles (`admin`).
    pub roles: Vec<String>,
}

/// A saved card.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Card {
    /// Id.
    pub id: Uuid,
    /// Brand.
    pub brand: String,
    /// Last four digits.
    pub last4: String,
    /// Expiry month.
    pub exp_month: u8,
    /// Expiry year.
    pub exp_year: u16,
}

#[derive(Deserialize)]
struct Items<T> {
    items: Vec<T>,
}

/// One line of an order.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct OrderLine {
    /// SKU.
    pub sku: String,
    /// Name at the time of the order.
    pub name: String,
    /// Units.
    pub quantity: i32,
    /// Price of one unit.
    pub unit_price: Money,
    /// Units times price.
    pub line_total: Money,
}

/// Why an order was cancelled.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Cancellation {
    /// The code (`out_of_stock`, `payment_declined`, ...).
    pub reason: String,
    /// The platform's words.
    pub detail: String,
}

/// An order.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Order {
    /// Id.
    pub id: Uuid,
    /// `PENDING` ... `CONFIRMED` or `CANCELLED`.
    pub status: String,
    /// Lines.
    pub items: Vec<OrderLine>,
    /// Total.
    pub total: Money,
    /// Money given back, if any.
    #[serde(default)]
    pub refunded: Option<Money>,
    /// Why it was cancelled, if it was.
    #[serde(default)]
    pub cancellation: Option<Cancellation>,
    /// When it was placed.
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// An e-mail the platform sent.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Notification {
    /// Subject.
    pub subject: String,
    /// `pending`, `sent`, `failed`.
    pub status: String,
    /// When it was made.
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// A field the platform refused, and why.
#[derive(Clone, Debug, Deserialize)]
pub struct FieldProblem {
    /// The field (`email`, `items[0].quantity`).
    pub field: String,
    /// Why.
    pub message: String,
}

/// The gateway's problem+json, what the storefront reads of it.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Problem {
    /// Short, per status.
    #[serde(default)]
    pub title: String,
    /// This occurrence, in words.
    #[serde(default)]
    pub detail: String,
    /// Field errors.
    #[serde(default)]
    pub errors: Vec<FieldProblem>,
}

/// A call that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The gateway answered with an error.
    #[error("the gateway answered {status}: {}", problem.detail)]
    Answered {
        /// Its status.
        status: StatusCode,
        /// Its problem (empty if the body was not one).
        problem: Problem,
    },
    /// No usable answer: unreachable, timed out, or a body that is not what the API promises.
    #[error("the gateway could not be reached: {0}")]
    Unavailable(String),
}

impl GatewayError {
    /// The status the gateway answered, if it answered.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Answered { status, .. } => Some(*status),
            Self::Unavailable(_) => None,
        }
    }

    /// The problem's `detail`, or a sentence for no answer.
    pub fn detail(&self) -> String {
        match self {
            Self::Answered { problem, status } if problem.detail.is_empty() => {
                format!(
                    "the shop's back end answered {}",
                    status.canonical_reason().unwrap_or("an error")
                )
            }
            Self::Answered { problem, .. } => problem.detail.clone(),
            Self::Unavailable(_) => {
                "the shop cannot reach its back end just now; try again in a moment".to_owned()
            }
        }
    }

    /// The field errors of a 422.
    pub fn field_errors(&self) -> &[FieldProblem] {
        match self {
            Self::Answered { problem, .. } => &problem.errors,
            Self::Unavailable(_) => &[],
        }
    }
}

/// What a call is made on behalf of: the visitor's address (for the gateway's rate limits,
/// which it trusts only when configured to) and their access token, if signed in.
#[derive(Clone, Debug, Default)]
pub struct Caller {
    /// `X-Forwarded-For`.
    pub address: Option<String>,
    /// Bearer token.
    pub token: Option<String>,
}

/// The gateway's client.
#[derive(Clone, Debug)]
pub struct Gateway {
    http: reqwest::Client,
    base: String,
}

/// A query string's pairs.
pub type QueryPairs<'a> = &'a [(&'a str, String)];

impl Gateway {
    /// A client of the gateway at `settings.url`.
    pub fn new(settings: &GatewaySettings) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout())
            .connect_timeout(Duration::from_secs(2))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()?;
        Ok(Self {
            http,
            base: settings.url.trim_end_matches('/').to_owned(),
        })
    }

    fn request(&self, method: Method, path: &str, caller: &Caller) -> RequestBuilder {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(address) = &caller.address {
            request = request.header("x-forwarded-for", address);
        }
        if let Some(token) = &caller.token {
            request = request.bearer_auth(token);
        }
        if let Some(traceparent) = platform_telemetry::propagation::current_traceparent() {
            request = request.header(platform_telemetry::propagation::TRACEPARENT, traceparent);
        }
        request
    }

    async fn send<T: DeserializeOwned>(request: RequestBuilder) -> Result<T, GatewayError> {
        let response = request
            .send()
            .await
            .map_err(|error| GatewayError::Unavailable(error.to_string()))?;
        let status = response.status();
        if status.is_success() {
            return response.json().await.map_err(|error| {
                GatewayError::Unavailable(format!("a malformed answer: {error}"))
            });
        }
        let problem = response.json::<Problem>().await.unwrap_or_default();
        Err(GatewayError::Answered { status, problem })
    }

    async fn send_empty(request: RequestBuilder) -> Result<(), GatewayError> {
        Self::send::<Value>(request)
            .await
            .map(drop)
            .or_else(|error| {
                // 204 and other bodiless successes are not JSON.
                match error {
                    GatewayError::Unavailable(message) if message.starts_with("a malformed") => {
                        Ok(())
                    }
                    other => Err(other),
                }
            })
    }

    /// A page of the catalogue.
    pub async fn products(
        &self,
        caller: &Caller,
        query: QueryPairs<'_>,
    ) -> Result<ProductPage, GatewayError> {
        Self::send(self.request(
            Method::GET,
            &with_query(
                "/api/v1/products",
                query.iter().map(|(k, v)| (*k, v.as_str())),
            ),
            caller,
        ))
        .await
    }

    /// A product by SKU or id.
    pub async fn product(&self, caller: &Caller, key: &str) -> Result<Product, GatewayError> {
        let path = format!("/api/v1/products/{}", crate::views::urlencode(key));
        Self::send(self.request(Method::GET, &path, caller)).await
    }

    /// Registers an account.
    pub async fn register(
        &self,
        caller: &Caller,
        email: &str,
        password: &str,
        display_name: &str,
    ) -> Result<(), GatewayError> {
        let body = serde_json::json!({
            "email": email, "password": password,
            "display_name": (!display_name.is_empty()).then_some(display_name),
        });
        Self::send_empty(
            self.request(Method::POST, "/api/v1/auth/register", caller)
                .json(&body),
        )
        .await
    }

    /// Signs in.
    pub async fn login(
        &self,
        caller: &Caller,
        email: &str,
        password: &str,
    ) -> Result<Tokens, GatewayError> {
        let body = serde_json::json!({ "email": email, "password": password });
        Self::send(
            self.request(Method::POST, "/api/v1/auth/login", caller)
                .json(&body),
        )
        .await
    }

    /// Trades a refresh token for a new pair.
    pub async fn refresh(
        &self,
        caller: &Caller,
        refresh_token: &str,
    ) -> Result<Tokens, GatewayError> {
        let body = serde_json::json!({ "refresh_token": refresh_token });
        Self::send(
            self.request(Method::POST, "/api/v1/auth/refresh", caller)
                .json(&body),
        )
        .await
    }

    /// Revokes a refresh token.
    pub async fn logout(&self, caller: &Caller, refresh_token: &str) -> Result<(), GatewayError> {
        let body = serde_json::json!({ "refresh_token": refresh_token });
        Self::send_empty(
            self.request(Method::POST, "/api/v1/auth/logout", caller)
                .json(&body),
        )
        .await
    }

    /// The signed-in customer.
    pub async fn me(&self, caller: &Caller) -> Result<Me, GatewayError> {
        Self::send(self.request(Method::GET, "/api/v1/users/me", caller)).await
    }

    /// Saved cards.
    pub async fn cards(&self, caller: &Caller) -> Result<Vec<Card>, GatewayError> {
        Self::send::<Items<Card>>(self.request(Method::GET, "/api/v1/payment-methods", caller))
            .await
            .map(|list| list.items)
    }

    /// Saves a card.
    pub async fn add_card(
        &self,
        caller: &Caller,
        card_number: &str,
        exp_month: i64,
        exp_year: i64,
        cvc: &str,
    ) -> Result<Card, GatewayError> {
        let body = serde_json::json!({
            "card_number": card_number, "exp_month": exp_month, "exp_year": exp_year, "cvc": cvc,
        });
        Self::send(
            self.request(Method::POST, "/api/v1/payment-methods", caller)
                .json(&body),
        )
        .await
    }

    /// Places an order; `attempt` is its idempotency key, so a repeat is the same order.
    pub async fn place_order(
        &self,
        caller: &Caller,
        attempt: Uuid,
        lines: &[(String, i64)],
        payment_method_id: Uuid,
    ) -> Result<Order, GatewayError> {
        let items: Vec<Value> = lines
            .iter()
            .map(|(sku, quantity)| serde_json::json!({ "sku": sku, "quantity": quantity }))
            .collect();
        let body = serde_json::json!({ "items": items, "payment_method_id": payment_method_id });
        Self::send(
            self.request(Method::POST, "/api/v1/orders", caller)
                .header("idempotency-key", attempt.to_string())
                .json(&body),
        )
        .await
    }

    /// An order; with `wait`, the gateway holds the answer up to that many seconds for a change
    /// from a status still in progress.
    pub async fn order(
        &self,
        caller: &Caller,
        id: Uuid,
        wait: Option<u64>,
    ) -> Result<Order, GatewayError> {
        let path = format!("/api/v1/orders/{id}");
        let path = match wait {
            Some(wait) => with_query(&path, [("wait", wait.to_string().as_str())]),
            None => path,
        };
        Self::send(self.request(Method::GET, &path, caller)).await
    }

    /// The customer's orders, newest first.
    pub async fn orders(&self, caller: &Caller) -> Result<Vec<Order>, GatewayError> {
        Self::send::<Items<Order>>(self.request(Method::GET, "/api/v1/orders?limit=50", caller))
            .await
            .map(|list| list.items)
    }

    /// Cancels a confirmed order.
    pub async fn cancel_order(&self, caller: &Caller, id: Uuid) -> Result<Order, GatewayError> {
        Self::send(self.request(Method::POST, &format!("/api/v1/orders/{id}/cancel"), caller)).await
    }

    /// The e-mails sent to the customer, newest first.
    pub async fn notifications(&self, caller: &Caller) -> Result<Vec<Notification>, GatewayError> {
        Self::send::<Items<Notification>>(self.request(
            Method::GET,
            "/api/v1/notifications?limit=50",
            caller,
        ))
        .await
        .map(|list| list.items)
    }

    /// Adds a product (administrators).
    pub async fn create_product(
        &self,
        caller: &Caller,
        product: &Value,
    ) -> Result<Product, GatewayError> {
        Self::send(
            self.request(Method::POST, "/api/v1/products", caller)
                .json(product),
        )
        .await
    }

    /// Puts units on the shelf (administrators).
    pub async fn restock(
        &self,
        caller: &Caller,
        id: Uuid,
        quantity: i64,
    ) -> Result<Product, GatewayError> {
        Self::send(
            self.request(
                Method::POST,
                &format!("/api/v1/products/{id}/restock"),
                caller,
            )
            .json(&serde_json::json!({ "quantity": quantity })),
        )
        .await
    }
}

/// `path?key=value&...`, encoded.
fn with_query<'a>(path: &str, pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{query}")
    }
}
