//! How messages leave: a [`Channel`] trait, and email over SMTP.

use std::time::Duration;

use async_trait::async_trait;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};
use uuid::Uuid;

/// A message ready to go.
#[derive(Clone, Debug)]
pub struct OutgoingMessage {
    /// Its id, sent as the `Message-ID`, so a re-send after a crash can be recognised.
    pub id: Uuid,
    /// Where to.
    pub recipient: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text part.
    pub text: String,
    /// HTML part.
    pub html: String,
}

/// Why a delivery failed.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// Worth retrying later: the server was unreachable, busy, or said "try again" (4xx).
    #[error("transient: {0}")]
    Transient(String),
    /// Retrying cannot help: the address is invalid or the server refused it for good (5xx).
    #[error("permanent: {0}")]
    Permanent(String),
}

/// A way to reach a person.
#[async_trait]
pub trait Channel: Send + Sync + 'static {
    /// The channel's name, recorded with each notification (`email`).
    fn name(&self) -> &'static str;

    /// Delivers one message.
    async fn send(&self, message: &OutgoingMessage) -> Result<(), ChannelError>;
}

/// Email over SMTP.
pub struct SmtpChannel {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    message_id_domain: String,
}

impl SmtpChannel {
    /// A channel to the server at `url` (`smtp://host:port` for plain SMTP, `smtp://...?tls=required`
    /// for STARTTLS, `smtps://` for TLS; credentials as `user:password@`), sending as `from`.
    pub fn new(url: &str, from: &str, timeout: Duration) -> anyhow::Result<Self> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|error| anyhow::anyhow!("the SMTP URL is not valid: {error}"))?
            .timeout(Some(timeout))
            .build();
        let from: Mailbox = from.parse().map_err(|error| {
            anyhow::anyhow!("the sender `{from}` is not a valid address: {error}")
        })?;
        let message_id_domain = from.email.domain().to_owned();
        Ok(Self {
            transport,
            from,
            message_id_domain,
        })
    }
}

#[async_trait]
impl Channel for SmtpChannel {
    fn name(&self) -> &'static str {
        "email"
    }

    async fn send(&self, message: &OutgoingMessage) -> Result<(), ChannelError> {
        let to: Mailbox = message.recipient.parse().map_err(|error| {
            ChannelError::Permanent(format!(
                "`{}` is not a valid address: {error}",
                message.recipient
            ))
        })?;
        let email = Message::builder()
            .message_id(Some(format!("<{}@{}>", message.id, self.message_id_domain)))
            .from(self.from.clone())
            .to(to)
            .subject(message.subject.clone())
            .multipart(MultiPart::alternative_plain_html(
                message.text.clone(),
                message.html.clone(),
            ))
            .map_err(|error| {
                ChannelError::Permanent(format!("the message cannot be built: {error}"))
            })?;
        match self.transport.send(email).await {
            Ok(_) => Ok(()),
            Err(error) if error.is_permanent() => Err(ChannelError::Permanent(error.to_string())),
            // Refused connections, time-outs and 4xx answers: the server may take it later.
            Err(error) => Err(ChannelError::Transient(error.to_string())),
        }
    }
}
