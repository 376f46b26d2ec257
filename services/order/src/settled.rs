//! Waiting for an order to finish its checkout: `GET /api/v1/orders/{id}?wait=N` answers once
//! the order is CONFIRMED or CANCELLED, or when N seconds have passed, with the order as it then
//! is. A client learns the outcome the moment it is written, instead of polling for it.
//!
//! The saga announces each order it finishes with `pg_notify` in the transaction that finishes
//! it ([`announce`]), so PostgreSQL delivers the news when, and only if, that commits, to every
//! replica: the saga may have run on another one than the replica holding the request. One
//! listener per process ([`listen`]) hands the news to the requests waiting for that order. A
//! notification can still be missed (the listener reconnecting), so a waiter also reads the
//! order again now and then (`ORDER_SERVICE__ORDERS__WAIT_RECHECK_MS`, default 1 s).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The channel a finished order's id is announced on.
pub const CHANNEL: &str = "orders_settled";

/// The longest `wait` a request may ask for: under the service's and the gateway's request
/// timeouts (10 s by default), so a wait ends with the order, never with a 503 or a 504.
pub const MAX_WAIT_SECS: u64 = 5;

/// The requests waiting for orders to finish, by order id.
#[derive(Clone, Default)]
pub struct Settlements {
    waiting: Arc<Mutex<HashMap<Uuid, Waiters>>>,
}

struct Waiters {
    notify: Arc<Notify>,
    count: usize,
}

impl Settlements {
    /// Registers interest in `order`; the watch wakes when the order is announced finished.
    pub fn watch(&self, order: Uuid) -> Watch {
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        let waiters = waiting.entry(order).or_insert_with(|| Waiters {
            notify: Arc::new(Notify::new()),
            count: 0,
        });
        waiters.count += 1;
        Watch {
            notify: Arc::clone(&waiters.notify),
            order,
            settlements: self.clone(),
        }
    }

    /// Wakes the requests waiting for `order`.
    pub fn settled(&self, order: Uuid) {
        let waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(waiters) = waiting.get(&order) {
            waiters.notify.notify_waiters();
        }
    }

    /// How many orders have a request waiting for them.
    pub fn watched(&self) -> usize {
        self.waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// A request's interest in one order; dropping it withdraws the interest.
pub struct Watch {
    notify: Arc<Notify>,
    order: Uuid,
    settlements: Settlements,
}

impl Watch {
    /// The notifier to wait on. Create and `enable` its `notified()` future before reading the
    /// order, so news arriving between the read and the wait is not missed.
    pub fn notify(&self) -> &Notify {
        &self.notify
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut waiting = self
            .settlements
            .waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(waiters) = waiting.get_mut(&self.order) {
            waiters.count -= 1;
            if waiters.count == 0 {
                waiting.remove(&self.order);
            }
        }
    }
}

/// Announces that `order` is finished, delivered on commit of the transaction `tx` belongs to.
pub async fn announce(order: Uuid, tx: &mut sqlx::PgConnection) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(order.to_string())
        .execute(tx)
        .await?;
    Ok(())
}

/// Listens for finished orders until `stop`, waking the requests waiting for them. Reconnects
/// after a lost connection (waiters read their orders again meanwhile).
pub async fn listen(pool: PgPool, settlements: Settlements, stop: CancellationToken) {
    let mut failures: u32 = 0;
    while !stop.is_cancelled() {
        let listener = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let mut listener = tokio::select! {
            () = stop.cancelled() => return,
            listener = listener => match listener {
                Ok(listener) => listener,
                Err(error) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(%error, "cannot listen for finished orders; waiting requests poll");
                    let pause = Duration::from_secs(u64::from(failures.min(30)));
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(pause) => continue,
                    }
                }
            },
        };
        failures = 0;
        loop {
            let notification = tokio::select! {
                () = stop.cancelled() => return,
                notification = listener.recv() => notification,
            };
            match notification {
                Ok(notification) => match notification.payload().parse::<Uuid>() {
                    Ok(order) => settlements.settled(order),
                    Err(_) => tracing::debug!(
                        payload = notification.payload(),
                        "a finished-order notification without an order id"
                    ),
                },
                Err(error) => {
                    tracing::warn!(%error, "lost the finished-orders listener; reconnecting");
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_watch_wakes_on_its_order_and_is_withdrawn_when_dropped() {
        let settlements = Settlements::default();
        let (mine, other) = (Uuid::now_v7(), Uuid::now_v7());
        let first = settlements.watch(mine);
        let second = settlements.watch(mine);
        assert_eq!(settlements.watched(), 1);

        {
            let notified = first.notify().notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            settlements.settled(other);
            assert!(
                tokio::time::timeout(Duration::from_millis(50), notified.as_mut())
                    .await
                    .is_err(),
                "another order's news woke the watch"
            );
            // Enabled before the news: not missed even though nobody was polling it yet.
            settlements.settled(mine);
            tokio::time::timeout(Duration::from_secs(1), notified)
                .await
                .expect("the order's news woke the watch");
        }

        drop(first);
        assert_eq!(settlements.watched(), 1, "the second request still waits");
        drop(second);
        assert_eq!(settlements.watched(), 0);
    }
}
