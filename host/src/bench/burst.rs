//! The burst phase: the event pipeline under a backlog. Fresh customers place many orders at
//! once through the gateway; the bench waits until every order is CONFIRMED or CANCELLED, then
//! until the mail catcher holds one email per order for each customer, and reports how long
//! each took.
//!
//! Times are the platform's own where it records them (each order's move to its final status,
//! each notification's `sent_at`), so they do not depend on how often the bench polls; the
//! mail catcher's arrival is observed by polling every [`POLL`].

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

use super::checkout::Worker;
use crate::client::{Client, Customer};

/// Orders placed at once.
pub const PLACING_CONCURRENCY: usize = 50;
/// At most this many customers share the burst.
pub const MAX_CUSTOMERS: usize = 50;
/// How long the bench waits for the orders to settle, and then for the emails.
pub const WAIT_LIMIT: Duration = Duration::from_secs(300);
/// How often it looks.
const POLL: Duration = Duration::from_millis(500);

/// An order of the burst: whose it is, and its id once placed.
#[derive(Clone, Debug)]
struct Placed {
    customer: usize,
    id: Option<Uuid>,
}

/// What became of the orders.
#[derive(Debug, Default)]
pub struct Settled {
    /// CONFIRMED.
    pub confirmed: usize,
    /// CANCELLED.
    pub cancelled: usize,
    /// Neither within [`WAIT_LIMIT`].
    pub unsettled: usize,
    /// When the last one reached its final status (the platform's clock).
    pub last_at: Option<DateTime<Utc>>,
    /// Per customer, their orders that settled.
    pub per_customer: Vec<usize>,
}

/// What the mail catcher received, and when.
#[derive(Debug, Default)]
pub struct Mail {
    /// Order emails (confirmation or cancellation) expected: one per settled order.
    pub expected: usize,
    /// Order emails received.
    pub received: usize,
    /// Welcome emails received (from the customers' registration).
    pub welcome: usize,
    /// Other emails received (e.g. a failed payment).
    pub other: usize,
    /// When the last expected one was seen (the bench's clock), if all arrived in time.
    pub all_seen_at: Option<DateTime<Utc>>,
    /// Why the mail catcher could not be read, if it could not.
    pub unreadable: Option<String>,
}

/// What the notification service says it sent.
#[derive(Debug, Default)]
pub struct Notifications {
    /// Order notifications marked sent.
    pub sent: usize,
    /// The latest `sent_at` among them.
    pub last_sent_at: Option<DateTime<Utc>>,
}

/// The burst's figures (without the consumers' lag, which the caller scrapes).
#[derive(Debug, Default)]
pub struct Burst {
    /// Customers sharing the orders.
    pub customers: usize,
    /// Orders placed (201 or 200).
    pub placed: usize,
    /// Orders that could not be placed, by kind.
    pub errors: BTreeMap<String, usize>,
    /// When the first order was sent.
    pub first_at: Option<DateTime<Utc>>,
    /// How long placing them all took.
    pub placing: Duration,
    /// What became of them.
    pub settled: Settled,
    /// The emails.
    pub mail: Mail,
    /// The notification service's account.
    pub notifications: Notifications,
}

/// `count` fresh customers with a card (addresses unique to `run`), `concurrency` registering
/// at once.
pub async fn set_up(
    client: impl Fn() -> Client,
    count: usize,
    run: &str,
    concurrency: usize,
) -> anyhow::Result<Vec<Worker>> {
    let registrations = futures::stream::iter((0..count).map(|index| {
        let client = client();
        async move {
            let customer = client
                .customer(&format!("burst-{index}-{run}@bench.example"), "Burst")
                .await?;
            let card = client.add_card(&customer, "4242 4242 4242 4242").await?;
            anyhow::Ok((client, customer, card))
        }
    }))
    .buffered(concurrency.max(1));
    registrations
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// Places `count` orders for `customers` in turn (one item of `skus` each),
/// [`PLACING_CONCURRENCY`] at once, each with its own idempotency key (a retry after a lost
/// answer or a 5xx reuses it: one order).
pub async fn place(
    customers: &[Worker],
    skus: &[String],
    count: usize,
    burst: &mut Burst,
) -> Vec<(usize, Uuid)> {
    burst.customers = customers.len();
    burst.first_at = Some(Utc::now());
    let started = Instant::now();
    let placed: Vec<Placed> = futures::stream::iter((0..count).map(|index| {
        let customer = index % customers.len();
        let (client, who, card) = &customers[customer];
        let sku = skus[index % skus.len()].as_str();
        async move {
            let key = Uuid::now_v7().to_string();
            let mut id = None;
            let mut last_error = String::new();
            for _attempt in 0..3 {
                match client
                    .place_order_with_key(who, &key, &[(sku, 1)], *card)
                    .await
                {
                    Ok(response)
                        if matches!(response.status(), StatusCode::CREATED | StatusCode::OK) =>
                    {
                        id = order_id(response).await;
                        break;
                    }
                    Ok(response) if response.status().is_server_error() => {
                        last_error = format!("answered {}", response.status());
                    }
                    Ok(response) => {
                        last_error = format!("answered {}", response.status());
                        break;
                    }
                    Err(_) => "no answer".clone_into(&mut last_error),
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            (Placed { customer, id }, last_error)
        }
    }))
    .buffer_unordered(PLACING_CONCURRENCY)
    .map(|(placed, error)| {
        if placed.id.is_none() {
            *burst.errors.entry(error).or_default() += 1;
        }
        placed
    })
    .collect()
    .await;
    burst.placing = started.elapsed();
    let placed: Vec<(usize, Uuid)> = placed
        .into_iter()
        .filter_map(|order| Some((order.customer, order.id?)))
        .collect();
    burst.placed = placed.len();
    placed
}

async fn order_id(response: reqwest::Response) -> Option<Uuid> {
    let body: Value = response.json().await.ok()?;
    body["id"].as_str()?.parse().ok()
}

/// Every page of `path` (a list with `items` and `next_before`) as `customer`, up to 20 pages.
async fn all_pages(client: &Client, customer: &Customer, path: &str) -> anyhow::Result<Vec<Value>> {
    let mut items = Vec::new();
    let mut before: Option<String> = None;
    for _page in 0..20 {
        let url = match &before {
            Some(before) => format!("{path}?limit=100&before={before}"),
            None => format!("{path}?limit=100"),
        };
        let response = client.get(&url, Some(&customer.token)).await?;
        anyhow::ensure!(
            response.status() == StatusCode::OK,
            "{url}: {}",
            response.status()
        );
        let mut page: Value = response.json().await?;
        if let Some(found) = page["items"].as_array_mut() {
            items.append(found);
        }
        match page["next_before"].as_str() {
            Some(next) => before = Some(next.to_owned()),
            None => break,
        }
    }
    Ok(items)
}

/// When an order (as the API shows it) reached its final status, if it has.
fn settled_at(order: &Value) -> Option<(String, DateTime<Utc>)> {
    let status = order["status"].as_str()?;
    if !matches!(status, "CONFIRMED" | "CANCELLED") {
        return None;
    }
    let at = order["history"]
        .as_array()
        .and_then(|history| {
            history
                .iter()
                .rev()
                .find(|entry| entry["status"].as_str() == Some(status))
        })
        .and_then(|entry| entry["at"].as_str())
        .or_else(|| order["updated_at"].as_str())?;
    Some((status.to_owned(), at.parse().ok()?))
}

/// Polls the customers' orders until every placed one is CONFIRMED or CANCELLED, for at most
/// [`WAIT_LIMIT`].
pub async fn settle(customers: &[Worker], placed: &[(usize, Uuid)]) -> Settled {
    let mut open: BTreeMap<Uuid, usize> = placed.iter().map(|(c, id)| (*id, *c)).collect();
    let mut settled = Settled {
        per_customer: vec![0; customers.len()],
        ..Settled::default()
    };
    let deadline = Instant::now() + WAIT_LIMIT;
    while !open.is_empty() && Instant::now() < deadline {
        let waiting: std::collections::BTreeSet<usize> = open.values().copied().collect();
        let pages: Vec<Vec<Value>> = futures::stream::iter(waiting.into_iter().map(|index| {
            let (client, customer, _) = &customers[index];
            async move {
                all_pages(client, customer, "/api/v1/orders")
                    .await
                    .unwrap_or_default()
            }
        }))
        .buffer_unordered(10)
        .collect()
        .await;
        for order in pages.iter().flatten() {
            let Some(id) = order["id"].as_str().and_then(|id| id.parse::<Uuid>().ok()) else {
                continue;
            };
            if let Some(customer) = open.get(&id).copied()
                && let Some((status, at)) = settled_at(order)
            {
                open.remove(&id);
                settled.per_customer[customer] += 1;
                if status == "CONFIRMED" {
                    settled.confirmed += 1;
                } else {
                    settled.cancelled += 1;
                }
                settled.last_at = settled.last_at.max(Some(at));
            }
        }
        if !open.is_empty() {
            tokio::time::sleep(POLL).await;
        }
    }
    settled.unsettled = open.len();
    settled
}

/// The kind of an email, by its subject (the notification service's templates).
fn kind(subject: &str) -> &'static str {
    if subject.starts_with("Your order ") {
        "order"
    } else if subject.starts_with("Welcome") {
        "welcome"
    } else {
        "other"
    }
}

/// Polls the mail catcher at `api` until each customer has one order email per settled order
/// of theirs, for at most [`WAIT_LIMIT`].
pub async fn mail(api: &str, customers: &[Worker], settled: &Settled) -> Mail {
    let http = reqwest::Client::new();
    let expected: Vec<(String, usize)> = customers
        .iter()
        .zip(&settled.per_customer)
        .map(|((_, customer, _), count)| (customer.email.to_ascii_lowercase(), *count))
        .collect();
    let mut found = Mail {
        expected: expected.iter().map(|(_, count)| count).sum(),
        ..Mail::default()
    };
    let deadline = Instant::now() + WAIT_LIMIT;
    loop {
        match mail_by_kind(&http, api, &expected).await {
            Ok(counts) => {
                found.unreadable = None;
                let order = |address: &str| counts.get(&(address.to_owned(), "order"));
                found.received = expected
                    .iter()
                    .map(|(address, _)| order(address).copied().unwrap_or(0))
                    .sum();
                found.welcome = counts
                    .iter()
                    .filter(|((_, k), _)| *k == "welcome")
                    .map(|(_, n)| n)
                    .sum();
                found.other = counts
                    .iter()
                    .filter(|((_, k), _)| *k == "other")
                    .map(|(_, n)| n)
                    .sum();
                if expected
                    .iter()
                    .all(|(address, count)| order(address).copied().unwrap_or(0) >= *count)
                {
                    found.all_seen_at = Some(Utc::now());
                    return found;
                }
            }
            Err(error) => found.unreadable = Some(format!("{error:#}")),
        }
        if Instant::now() >= deadline {
            return found;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// How many emails of each kind the mail catcher holds for each of `addresses`.
async fn mail_by_kind(
    http: &reqwest::Client,
    api: &str,
    addresses: &[(String, usize)],
) -> anyhow::Result<BTreeMap<(String, &'static str), usize>> {
    let mut url = reqwest::Url::parse(&format!("{api}/messages"))?;
    for (address, _) in addresses {
        url.query_pairs_mut().append_pair("to", address);
    }
    let messages: Vec<Value> = http
        .get(url)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .with_context(|| format!("asking the mail catcher at {api}"))?
        .error_for_status()?
        .json()
        .await?;
    let mut counts = BTreeMap::new();
    for message in &messages {
        let kind = kind(message["subject"].as_str().unwrap_or_default());
        for to in message["to"].as_array().into_iter().flatten() {
            let to = to.as_str().unwrap_or_default().to_ascii_lowercase();
            if addresses.iter().any(|(address, _)| *address == to) {
                *counts.entry((to, kind)).or_insert(0) += 1;
            }
        }
    }
    Ok(counts)
}

/// What the notification service says it sent the customers about their orders.
pub async fn notifications(customers: &[Worker]) -> Notifications {
    let lists: Vec<Vec<Value>> =
        futures::stream::iter(customers.iter().map(|(client, customer, _)| async move {
            all_pages(client, customer, "/api/v1/notifications")
                .await
                .unwrap_or_default()
        }))
        .buffer_unordered(10)
        .collect()
        .await;
    let mut found = Notifications::default();
    for item in lists.iter().flatten() {
        let about_an_order = item["event_type"]
            .as_str()
            .is_some_and(|kind| kind.starts_with("orders."));
        if about_an_order && item["status"].as_str() == Some("sent") {
            found.sent += 1;
            let sent_at = item["sent_at"].as_str().and_then(|at| at.parse().ok());
            found.last_sent_at = found.last_sent_at.max(sent_at);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_order_settles_when_it_enters_its_final_status() {
        let order = json!({
            "status": "CANCELLED",
            "history": [
                {"status": "PENDING", "at": "2026-01-01T10:00:00Z"},
                {"status": "CANCELLED", "at": "2026-01-01T10:00:01.250Z"},
            ],
            "updated_at": "2026-01-01T10:00:05Z",
        });
        let (status, at) = settled_at(&order).unwrap();
        assert_eq!(status, "CANCELLED");
        assert_eq!(at.to_rfc3339(), "2026-01-01T10:00:01.250+00:00");
        let no_history = json!({"status": "CONFIRMED", "updated_at": "2026-01-01T10:00:05Z"});
        assert_eq!(
            settled_at(&no_history).unwrap().1.to_rfc3339(),
            "2026-01-01T10:00:05+00:00"
        );
        assert!(settled_at(&json!({"status": "PAID", "history": []})).is_none());
    }

    #[test]
    fn emails_are_told_apart_by_subject() {
        assert_eq!(kind("Your order 4D5E6F70 is confirmed: €49.98"), "order");
        assert_eq!(kind("Your order 4D5E6F70 was cancelled"), "order");
        assert_eq!(kind("Welcome to the shop, Ada"), "welcome");
        assert_eq!(kind("Your payment of €5.00 did not go through"), "other");
    }
}
