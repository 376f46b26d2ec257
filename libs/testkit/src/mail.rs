//! Reading what the test SMTP server (`scripts/mailcatcher.py`) received.

use std::time::Duration;

use anyhow::Context as _;
use serde::Deserialize;

use crate::{Server, eventually, url};

/// A message the SMTP server accepted.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct CapturedMail {
    /// The catcher's id for it.
    pub id: String,
    /// Envelope sender.
    pub from: String,
    /// Envelope recipients.
    pub to: Vec<String>,
    /// The `Message-ID` header.
    pub message_id: String,
    /// The `Subject` header, decoded.
    pub subject: String,
    /// The plain-text part.
    pub text: String,
    /// The HTML part.
    pub html: String,
}

/// Every message received for `address` so far, oldest first.
pub async fn messages_to(address: &str) -> anyhow::Result<Vec<CapturedMail>> {
    let api = url(Server::MailApi).await?;
    let client = reqwest::Client::builder()
        .build()
        .context("building an HTTP client for the mail catcher")?;
    client
        .get(format!("{api}/messages?to={}", encode(address)))
        .send()
        .await
        .with_context(|| format!("asking the mail catcher at {api}"))?
        .error_for_status()?
        .json()
        .await
        .context("reading the mail catcher's answer")
}

/// Waits (up to `timeout`) until at least `count` messages for `address` arrived; returns them.
pub async fn wait_for_mail(
    address: &str,
    count: usize,
    timeout: Duration,
) -> anyhow::Result<Vec<CapturedMail>> {
    eventually(
        timeout,
        &format!("{count} message(s) to {address}"),
        || async {
            messages_to(address)
                .await
                .ok()
                .filter(|messages| messages.len() >= count)
        },
    )
    .await
}

/// Percent-encodes a query value.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'@' => {
                char::from(byte).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}
