//! A client of the platform, as an application would use it: everything through the gateway.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

/// A password the platform accepts.
pub const PASSWORD: &str = "correct horse battery staple";

/// A signed-in customer.
#[derive(Clone, Debug)]
pub struct Customer {
    /// Their address.
    pub email: String,
    /// Their access token.
    pub token: String,
    /// Their refresh token.
    pub refresh_token: String,
}

/// The platform's public API, through the gateway.
///
/// Clones share their connections and their [`Client::forwarded_for`] address.
#[derive(Clone, Debug)]
pub struct Client {
    base: String,
    http: reqwest::Client,
    forwarded_for: Option<IpAddr>,
}

impl Client {
    /// A client of the gateway at `base` (`http://127.0.0.1:8080`).
    pub fn new(base: impl Into<String>) -> Self {
        platform_http::install_crypto_provider();
        Self {
            base: base.into(),
            http: http_client(None),
            forwarded_for: None,
        }
    }

    /// The same client, sending `X-Forwarded-For: {address}` on every request (also those made
    /// through [`Client::http`]). A gateway that trusts the header
    /// (`GATEWAY__RATE_LIMIT__TRUST_FORWARDED_FOR=true`) counts this client's requests against
    /// `address`'s quotas instead of its peer's.
    #[must_use]
    pub fn forwarded_for(self, address: IpAddr) -> Self {
        Self {
            base: self.base,
            http: http_client(Some(address)),
            forwarded_for: Some(address),
        }
    }

    /// The same client, as if from an address of its own: [`Client::forwarded_for`] a random
    /// `10.x.y.z` (only ever written in the header, never connected to). Clients made this way
    /// get separate rate-limit quotas from a gateway that trusts the header.
    #[must_use]
    pub fn with_random_address(self) -> Self {
        let [a, b, c, ..] = *Uuid::new_v4().as_bytes();
        self.forwarded_for(IpAddr::V4(Ipv4Addr::new(10, a, b, c)))
    }

    /// The address it sends in `X-Forwarded-For`, if any.
    pub fn forwarded_address(&self) -> Option<IpAddr> {
        self.forwarded_for
    }

    /// The URL of a path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The underlying HTTP client, for requests this type does not wrap.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// `POST` JSON.
    pub async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> anyhow::Result<Response> {
        let mut request = self.http.post(self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        Ok(request.send().await?)
    }

    /// `GET`.
    pub async fn get(&self, path: &str, token: Option<&str>) -> anyhow::Result<Response> {
        let mut request = self.http.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        Ok(request.send().await?)
    }

    /// Registers an account.
    pub async fn register(&self, email: &str, display_name: &str) -> anyhow::Result<Response> {
        self.post(
            "/api/v1/auth/register",
            None,
            &json!({"email": email, "password": PASSWORD, "display_name": display_name}),
        )
        .await
    }

    /// Logs in.
    pub async fn login(&self, email: &str, password: &str) -> anyhow::Result<Response> {
        self.post(
            "/api/v1/auth/login",
            None,
            &json!({"email": email, "password": password}),
        )
        .await
    }

    /// Registers an account at `email` and signs in.
    pub async fn customer(&self, email: &str, display_name: &str) -> anyhow::Result<Customer> {
        let registered = self.register(email, display_name).await?;
        anyhow::ensure!(
            registered.status() == StatusCode::CREATED,
            "registering {email}: {} {}",
            registered.status(),
            registered.text().await.unwrap_or_default()
        );
        self.sign_in(email, PASSWORD).await
    }

    /// Signs in an existing account.
    pub async fn sign_in(&self, email: &str, password: &str) -> anyhow::Result<Customer> {
        let response = self.login(email, password).await?;
        anyhow::ensure!(
            response.status() == StatusCode::OK,
            "logging in {email}: {}",
            response.status()
        );
        let tokens: Value = response.json().await?;
        Ok(Customer {
            email: email.to_owned(),
            token: tokens["access_token"]
                .as_str()
                .context("no access token")?
                .to_owned(),
            refresh_token: tokens["refresh_token"]
                .as_str()
                .context("no refresh token")?
                .to_owned(),
        })
    }

    /// Adds a card; returns the payment method id.
    pub async fn add_card(&self, customer: &Customer, number: &str) -> anyhow::Result<Uuid> {
        let response = self
            .post(
                "/api/v1/payment-methods",
                Some(&customer.token),
                &json!({"card_number": number, "exp_month": 12, "exp_year": 2031, "cvc": "123"}),
            )
            .await?;
        anyhow::ensure!(
            response.status() == StatusCode::CREATED,
            "adding a card: {}",
            response.status()
        );
        let body: Value = response.json().await?;
        body["id"]
            .as_str()
            .context("no id")?
            .parse()
            .context("a malformed id")
    }

    /// Creates a product (needs an administrator's token); returns its SKU.
    pub async fn create_product(
        &self,
        admin: &Customer,
        sku: &str,
        price: i64,
        stock: i64,
    ) -> anyhow::Result<String> {
        let response = self
            .post(
                "/api/v1/products",
                Some(&admin.token),
                &json!({
                    "sku": sku,
                    "name": format!("Test product {sku}"),
                    "price": {"minor": price, "currency": "EUR"},
                    "category": "test",
                    "initial_stock": stock,
                    "low_stock_threshold": 0
                }),
            )
            .await?;
        anyhow::ensure!(
            response.status() == StatusCode::CREATED,
            "creating {sku}: {} {}",
            response.status(),
            response.text().await.unwrap_or_default()
        );
        Ok(sku.to_owned())
    }

    /// Places an order with a fresh idempotency key.
    pub async fn place_order(
        &self,
        customer: &Customer,
        items: &[(&str, i64)],
        card: Uuid,
    ) -> anyhow::Result<Response> {
        self.place_order_with_key(customer, &Uuid::now_v7().to_string(), items, card)
            .await
    }

    /// Places an order with the given idempotency key (retry with the same key: one order).
    pub async fn place_order_with_key(
        &self,
        customer: &Customer,
        key: &str,
        items: &[(&str, i64)],
        card: Uuid,
    ) -> anyhow::Result<Response> {
        let body = json!({
            "items": items.iter().map(|(sku, quantity)| json!({"sku": sku, "quantity": quantity})).collect::<Vec<_>>(),
            "payment_method_id": card,
        });
        Ok(self
            .http
            .post(self.url("/api/v1/orders"))
            .bearer_auth(&customer.token)
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
            .await?)
    }

    /// Places an order and returns its id.
    pub async fn order_id(
        &self,
        customer: &Customer,
        items: &[(&str, i64)],
        card: Uuid,
    ) -> anyhow::Result<Uuid> {
        let response = self.place_order(customer, items, card).await?;
        anyhow::ensure!(
            response.status() == StatusCode::CREATED,
            "placing an order: {} {}",
            response.status(),
            response.text().await.unwrap_or_default()
        );
        let body: Value = response.json().await?;
        body["id"]
            .as_str()
            .context("no id")?
            .parse()
            .context("a malformed id")
    }

    /// Reads the order until it is CONFIRMED or CANCELLED (or `timeout` passes): each read
    /// waits up to 5 s for the outcome (`?wait=5`), so it is known as soon as it is written.
    pub async fn finished(
        &self,
        customer: &Customer,
        id: Uuid,
        timeout: Duration,
    ) -> anyhow::Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let response = self
                .get(
                    &format!("/api/v1/orders/{id}?wait=5"),
                    Some(&customer.token),
                )
                .await;
            let answered = match response {
                Ok(response) if response.status() == StatusCode::OK => {
                    let order: Value = response.json().await?;
                    if matches!(order["status"].as_str(), Some("CONFIRMED" | "CANCELLED")) {
                        return Ok(order);
                    }
                    true
                }
                _ => false,
            };
            anyhow::ensure!(
                Instant::now() < deadline,
                "order {id} did not finish within {timeout:?}"
            );
            if !answered {
                // Not an answer that waited (an error, a 429): do not hammer.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// The HTTP client under a [`Client`]: `X-Forwarded-For` on every request if `forwarded_for`.
fn http_client(forwarded_for: Option<IpAddr>) -> reqwest::Client {
    let mut headers = HeaderMap::new();
    if let Some(address) = forwarded_for {
        headers.insert(
            "x-forwarded-for",
            HeaderValue::try_from(address.to_string()).expect("an address is a valid header"),
        );
    }
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(64)
        .default_headers(headers)
        .build()
        .expect("building the HTTP client")
}
