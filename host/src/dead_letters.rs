//! `platform dead-letters`: the operators' dead-letter API of a service, through the gateway.
//!
//! ```text
//! platform dead-letters list [--consumer C] [--stream S] [--reason R] [--after SEQ] [--limit N] [--json]
//! platform dead-letters show SEQ
//! platform dead-letters replay SEQ
//! platform dead-letters discard SEQ
//! ```
//!
//! It signs in as an administrator (`--email`/`--password`, or `PLATFORM_ADMIN_EMAIL` /
//! `PLATFORM_ADMIN_PASSWORD`) at the gateway (`--gateway`, or `PLATFORM_GATEWAY_URL`, default
//! `http://127.0.0.1:8080`), and calls `{api}/admin/dead-letters` (`--api`, default the
//! notification service's `/api/v1/notifications`).

use std::fmt::Write as _;

use anyhow::Context as _;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::Client;

/// The gateway when neither `--gateway` nor `PLATFORM_GATEWAY_URL` says.
pub const DEFAULT_GATEWAY: &str = "http://127.0.0.1:8080";

/// `platform dead-letters ...`.
#[derive(Clone, Debug, clap::Args)]
pub struct DeadLetterOptions {
    /// The gateway's URL (default: `PLATFORM_GATEWAY_URL`, else http://127.0.0.1:8080).
    #[arg(long, global = true)]
    pub gateway: Option<String>,
    /// An administrator's email (default: `PLATFORM_ADMIN_EMAIL`).
    #[arg(long, global = true)]
    pub email: Option<String>,
    /// Their password (default: `PLATFORM_ADMIN_PASSWORD`).
    #[arg(long, global = true)]
    pub password: Option<String>,
    /// The public path of the service whose dead letters these are.
    #[arg(long, global = true, default_value = "/api/v1/notifications")]
    pub api: String,
    /// What to do.
    #[command(subcommand)]
    pub command: DeadLetterCommand,
}

/// What to do with dead letters.
#[derive(Clone, Debug, clap::Subcommand)]
pub enum DeadLetterCommand {
    /// List dead letters, oldest first.
    List {
        /// Only this consumer's (e.g. `notification-delivery`).
        #[arg(long)]
        consumer: Option<String>,
        /// Only events of this stream (`USERS`, `ORDERS`, ...).
        #[arg(long)]
        stream: Option<String>,
        /// Only those whose error contains this (ignoring case).
        #[arg(long)]
        reason: Option<String>,
        /// Only those after this sequence (the `next` a previous page printed).
        #[arg(long)]
        after: Option<u64>,
        /// At most this many (1 to 100).
        #[arg(long)]
        limit: Option<u32>,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one dead letter, with its headers and payload (JSON).
    Show {
        /// Its sequence.
        seq: u64,
    },
    /// Replay one through its consumer (idempotent), then delete it.
    Replay {
        /// Its sequence.
        seq: u64,
    },
    /// Delete one without replaying it.
    Discard {
        /// Its sequence.
        seq: u64,
    },
}

/// Runs the command; returns what to print.
pub async fn run(options: DeadLetterOptions) -> anyhow::Result<String> {
    let gateway = options
        .gateway
        .clone()
        .or_else(|| std::env::var("PLATFORM_GATEWAY_URL").ok())
        .unwrap_or_else(|| DEFAULT_GATEWAY.to_owned());
    let email = options
        .email
        .clone()
        .or_else(|| std::env::var("PLATFORM_ADMIN_EMAIL").ok())
        .context("no administrator: pass --email or set PLATFORM_ADMIN_EMAIL")?;
    let password = options
        .password
        .clone()
        .or_else(|| std::env::var("PLATFORM_ADMIN_PASSWORD").ok())
        .context("no password: pass --password or set PLATFORM_ADMIN_PASSWORD")?;
    let client = Client::new(gateway.trim_end_matches('/'));
    let token = sign_in(&client, &gateway, &email, &password).await?;
    let base = format!("{}/admin/dead-letters", options.api.trim_end_matches('/'));
    match options.command {
        DeadLetterCommand::List {
            consumer,
            stream,
            reason,
            after,
            limit,
            json,
        } => {
            let mut query = Vec::new();
            let mut add = |name: &str, value: Option<String>| {
                if let Some(value) = value {
                    query.push((name.to_owned(), value));
                }
            };
            add("consumer", consumer);
            add("stream", stream);
            add("reason", reason);
            add("after", after.map(|after| after.to_string()));
            add("limit", limit.map(|limit| limit.to_string()));
            let mut url = reqwest::Url::parse(&client.url(&base))
                .with_context(|| format!("`{gateway}` is not a URL"))?;
            if !query.is_empty() {
                url.query_pairs_mut().extend_pairs(&query);
            }
            let request = client.http().get(url).bearer_auth(&token);
            let page = send(request, "listing dead letters").await?;
            if json {
                Ok(serde_json::to_string_pretty(&page)? + "\n")
            } else {
                Ok(table(&page))
            }
        }
        DeadLetterCommand::Show { seq } => {
            let request = client
                .http()
                .get(client.url(&format!("{base}/{seq}")))
                .bearer_auth(&token);
            let letter = send(request, &format!("dead letter {seq}")).await?;
            Ok(serde_json::to_string_pretty(&letter)? + "\n")
        }
        DeadLetterCommand::Replay { seq } => {
            let request = client
                .http()
                .request(Method::POST, client.url(&format!("{base}/{seq}/replay")))
                .bearer_auth(&token);
            let replayed = send(request, &format!("replaying dead letter {seq}")).await?;
            let outcome = replayed["outcome"].as_str().unwrap_or("done");
            Ok(match outcome {
                "processed" => format!("dead letter {seq} replayed: processed, and removed\n"),
                "already_done" => format!(
                    "dead letter {seq} replayed: it had been done already, nothing was repeated; removed\n"
                ),
                other => format!("dead letter {seq} replayed: {other}\n"),
            })
        }
        DeadLetterCommand::Discard { seq } => {
            let request = client
                .http()
                .request(Method::DELETE, client.url(&format!("{base}/{seq}")))
                .bearer_auth(&token);
            send(request, &format!("discarding dead letter {seq}")).await?;
            Ok(format!("dead letter {seq} discarded\n"))
        }
    }
}

async fn sign_in(
    client: &Client,
    gateway: &str,
    email: &str,
    password: &str,
) -> anyhow::Result<String> {
    let response = client
        .login(email, password)
        .await
        .with_context(|| format!("cannot reach the gateway at {gateway}"))?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    anyhow::ensure!(
        status == StatusCode::OK,
        "signing in as {email} at {gateway}: {}",
        problem(status, &body)
    );
    body["access_token"]
        .as_str()
        .map(str::to_owned)
        .context("the sign-in answer has no access token")
}

/// Sends `request`; the JSON body of a success (`null` when empty), or an error that says
/// what the API said.
async fn send(request: reqwest::RequestBuilder, what: &str) -> anyhow::Result<Value> {
    let response = request
        .send()
        .await
        .with_context(|| format!("{what}: the gateway cannot be reached"))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let body: Value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    anyhow::ensure!(status.is_success(), "{what}: {}", problem(status, &body));
    Ok(body)
}

/// `404 Not Found: <detail>`, from a problem+json body when there is one.
fn problem(status: StatusCode, body: &Value) -> String {
    let reason = status.canonical_reason().unwrap_or("error");
    match body["detail"].as_str().or(body.as_str()) {
        Some(detail) if !detail.is_empty() => format!("{} {reason}: {detail}", status.as_u16()),
        _ => format!("{} {reason}", status.as_u16()),
    }
}

/// A page as an aligned table, with the cursor of the next page.
fn table(page: &Value) -> String {
    let items = page["items"].as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        return "no dead letters\n".to_owned();
    }
    let header = ["SEQ", "CONSUMER", "EVENT", "STREAM", "TRIES", "AT", "ERROR"];
    let rows: Vec<[String; 7]> = items
        .iter()
        .map(|letter| {
            let text = |key: &str| match &letter[key] {
                Value::String(text) => text.clone(),
                Value::Null => "-".to_owned(),
                other => other.to_string(),
            };
            let mut error = text("error");
            if error.chars().count() > 60 {
                error = error.chars().take(59).collect::<String>() + "…";
            }
            [
                text("sequence"),
                text("consumer"),
                text("event_type"),
                text("stream"),
                text("deliveries"),
                text("dead_lettered_at"),
                error,
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        let mut text = String::new();
        for (cell, width) in cells.iter().zip(widths) {
            let _ = write!(text, "{cell:<width$}  ");
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&header.map(str::to_owned));
    for row in &rows {
        line(row);
    }
    if let Some(next) = page["next_after"].as_u64() {
        let _ = writeln!(out, "more: --after {next}");
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_page_prints_as_an_aligned_table_with_the_next_cursor() {
        let page = json!({
            "items": [
                {"sequence": 3, "consumer": "notification-delivery", "event_type": "users.registered",
                 "stream": "USERS", "deliveries": 8, "dead_lettered_at": "2026-12-06T09:00:00Z",
                 "error": "connection refused"},
                {"sequence": 12, "consumer": "notification-orders", "event_type": "orders.confirmed",
                 "stream": "ORDERS", "dead_lettered_at": "2026-12-06T09:01:00Z", "error": "x"}
            ],
            "next_after": 12
        });
        let printed = table(&page);
        let lines: Vec<&str> = printed.lines().collect();
        assert!(lines[0].starts_with("SEQ  CONSUMER"), "{printed}");
        assert!(
            lines[1].starts_with("3    notification-delivery  users.registered"),
            "{printed}"
        );
        assert!(lines[2].contains("ORDERS  -"), "{printed}");
        assert_eq!(lines[3], "more: --after 12");
        assert_eq!(table(&json!({"items": []})), "no dead letters\n");
    }

    #[test]
    fn errors_quote_the_problem_detail() {
        let body = json!({"status": 404, "detail": "no dead letter 9 here"});
        assert_eq!(
            problem(StatusCode::NOT_FOUND, &body),
            "404 Not Found: no dead letter 9 here"
        );
        assert_eq!(
            problem(StatusCode::FORBIDDEN, &Value::Null),
            "403 Forbidden"
        );
    }
}
