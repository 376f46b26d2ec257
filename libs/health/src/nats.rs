//! NATS: connected, and the server answers.

use async_nats::connection::State;
use async_nats::{Client, RequestErrorKind};

use crate::check::{CheckFuture, HealthCheck};

/// Checks that the client is connected and that the server answers a round trip; named `nats`
/// unless renamed.
///
/// The round trip is a request to a fresh inbox subject nobody listens on: the server itself
/// answers "no responders" at once. `flush` would not do: it only writes the client's buffer to
/// the socket, which succeeds on a connection the server no longer serves.
///
/// While the client is disconnected the check fails at once without queueing anything, so probes
/// during an outage do not pile requests up in the client for when it reconnects.
#[derive(Clone, Debug)]
pub struct NatsCheck {
    client: Client,
    name: String,
}

impl NatsCheck {
    /// Checks through `client` (a clone of the service's: they share one connection).
    pub fn new(client: Client) -> Self {
        Self {
            client,
            name: "nats".to_owned(),
        }
    }

    /// Reports under `name` instead.
    #[must_use]
    pub fn named(self, name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..self
        }
    }
}

impl HealthCheck for NatsCheck {
    fn name(&self) -> &str {
        &self.name
    }

    fn check(&self) -> CheckFuture<'_> {
        Box::pin(async move {
            let state = self.client.connection_state();
            if state != State::Connected {
                return Err(format!("not connected to NATS (connection {state})"));
            }
            let subject = self.client.new_inbox();
            match self.client.request(subject, "".into()).await {
                Ok(_) => Ok(()),
                Err(error) if error.kind() == RequestErrorKind::NoResponders => Ok(()),
                Err(error) => Err(format!("NATS round trip failed: {error}")),
            }
        })
    }
}
