//! Stock reservations for the checkout saga: reserve, release, commit, and the expiry of
//! reservations nobody committed.
//!
//! Every change runs in one MongoDB transaction with the events it emits (through the
//! outbox): the stock counters, the reservation and the events commit together or not at all.
//! Stock moves with conditional updates (`available >= q`), never read-then-write, and the
//! transaction makes a multi-item reservation all-or-nothing. Commit and release read the
//! reservation first and do nothing when it is already where the call would take it; reserve
//! inserts it first, and a duplicate key means a repeat, answered with the stored one. Either
//! way repeats are no-ops and retrying a whole transaction is safe.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use mongodb::ClientSession;
use platform_contracts::{
    LowStock, ReleaseReason, StockCommitted, StockLine, StockReleased, StockReserved,
};
use platform_events::Envelope;
use platform_events::outbox::mongo::MongoOutbox;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use uuid::Uuid;

use crate::cache::ReadCache;
use crate::domain::{ReservationLine, falls_below};
use crate::error::{InventoryError, is_duplicate_key};
use crate::store::{ReservationDoc, ReservationState, ReservedLine, Store, TxError};

/// The `source` of the events this service emits.
pub const SOURCE: &str = crate::SERVICE_NAME;

/// How many due reservations one sweep round expires at most.
const SWEEP_BATCH: i64 = 100;

/// Where a reservation stands after a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReservationOutcome {
    /// Its state.
    pub status: ReservationState,
    /// When it lapses, while it is held.
    pub expires_at: Option<DateTime<Utc>>,
}

impl From<&ReservationDoc> for ReservationOutcome {
    fn from(reservation: &ReservationDoc) -> Self {
        Self {
            status: reservation.status,
            expires_at: (reservation.status == ReservationState::Reserved)
                .then(|| reservation.expires_at.map(bson::DateTime::to_chrono))
                .flatten(),
        }
    }
}

/// What a transaction body did: changed something (so cached reads are stale) or not.
struct Changed<T> {
    value: T,
    changed: bool,
}

impl<T> Changed<T> {
    fn yes(value: T) -> Self {
        Self {
            value,
            changed: true,
        }
    }

    fn no(value: T) -> Self {
        Self {
            value,
            changed: false,
        }
    }
}

/// The outcome of a commit attempt.
enum Committing {
    /// The reservation is committed (now or before).
    Committed,
    /// It had outlived its time: it was expired instead (its stock returned).
    ExpiredNow(Option<bson::DateTime>),
}

/// The stock operations, over the store, the read cache and the outbox.
#[derive(Clone)]
pub struct Stock {
    store: Store,
    cache: ReadCache,
    outbox: Arc<MongoOutbox>,
    reservation_ttl: Duration,
}

impl Stock {
    /// The operations over `store`, invalidating `cache`, emitting into `outbox`; reservations
    /// are held for `reservation_ttl`.
    pub fn new(
        store: Store,
        cache: ReadCache,
        outbox: Arc<MongoOutbox>,
        reservation_ttl: Duration,
    ) -> Self {
        Self {
            store,
            cache,
            outbox,
            reservation_ttl,
        }
    }

    /// Reserves every line for the order, or nothing. A repeat returns the reservation as it
    /// stands and changes nothing.
    #[tracing::instrument(skip_all, fields(order_id = %order_id))]
    pub async fn reserve(
        &self,
        order_id: Uuid,
        lines: &[ReservationLine],
    ) -> Result<ReservationOutcome, InventoryError> {
        let this = self.clone();
        let lines = lines.to_vec();
        detached(async move { this.reserve_now(order_id, &lines).await }).await
    }

    async fn reserve_now(
        &self,
        order_id: Uuid,
        lines: &[ReservationLine],
    ) -> Result<ReservationOutcome, InventoryError> {
        let outcome = self
            .store
            .transaction("reserving stock", |session| {
                let this = self.clone();
                let lines = lines.to_vec();
                Box::pin(async move { this.reserve_in(session, order_id, &lines).await })
            })
            .await;
        let outcome = match outcome {
            Ok(outcome) => outcome,
            // A repeat: the order's reservation (or release marker) is there already; it is
            // answered as it stands.
            Err(InventoryError::Conflict(_)) => {
                let existing = self
                    .store
                    .reservation(&order_id.to_string())
                    .await?
                    .ok_or_else(|| {
                        InventoryError::Contended(format!(
                            "the reservation for order {order_id} changed meanwhile; retry shortly"
                        ))
                    })?;
                return Ok(ReservationOutcome::from(&existing));
            }
            Err(error) => {
                let label = match &error {
                    InventoryError::Precondition(_) => "short",
                    InventoryError::NotFound(_) => "unknown_sku",
                    InventoryError::Contended(_) => "contended",
                    _ => "error",
                };
                metrics::counter!("inventory_reservations_total", "outcome" => label).increment(1);
                return Err(error);
            }
        };
        if outcome.changed {
            metrics::counter!("inventory_reservations_total", "outcome" => "reserved").increment(1);
            self.cache.invalidate().await;
            tracing::info!(lines = lines.len(), "stock reserved");
        }
        Ok(outcome.value)
    }

    async fn reserve_in(
        &self,
        session: &mut ClientSession,
        order_id: Uuid,
        lines: &[ReservationLine],
    ) -> Result<Changed<ReservationOutcome>, TxError> {
        let key = order_id.to_string();
        let now = Utc::now();
        let expires_at =
            now + chrono::Duration::from_std(self.reservation_ttl).unwrap_or(chrono::Duration::MAX);
        let reservation = ReservationDoc {
            order_id: key.clone(),
            status: ReservationState::Reserved,
            items: lines
                .iter()
                .map(|line| ReservedLine {
                    sku: line.sku.as_str().to_owned(),
                    quantity: line.quantity.get(),
                })
                .collect(),
            expires_at: Some(bson::DateTime::from_chrono(expires_at)),
            created_at: bson::DateTime::from_chrono(now),
            committed_at: None,
            released_at: None,
            expired_at: None,
        };
        // Inserted first, so that the common case reads nothing: a duplicate means an earlier
        // call for the order got there first, and the caller answers with what it left.
        match self.store.insert_reservation(session, &reservation).await {
            Ok(()) => {}
            Err(error) if is_duplicate_key(&error) => {
                return Err(InventoryError::Conflict(format!(
                    "order {order_id} has a reservation already"
                ))
                .into());
            }
            Err(error) => return Err(error.into()),
        }
        let mut alerts = Vec::new();
        // Lines come sorted by SKU, so concurrent reservations take products in one order.
        for line in lines {
            let (sku, quantity) = (line.sku.as_str(), line.quantity.get());
            let Some(after) = self.store.take_available(session, sku, quantity).await? else {
                // Nothing was taken for this line; aborting the transaction returns what the
                // earlier lines took.
                let error = match self.store.product_by_sku_in(session, sku).await? {
                    None => InventoryError::NotFound(format!("unknown SKU {sku}")),
                    Some(product) => InventoryError::Precondition(format!(
                        "not enough stock of {sku}: {quantity} requested, {} available",
                        product.stock.available
                    )),
                };
                return Err(error.into());
            };
            let available = after.stock.available;
            if falls_below(available + quantity, available, after.low_stock_threshold) {
                alerts.push(LowStock {
                    product_id: after.id.clone(),
                    sku: after.sku.clone(),
                    // A name stored before control characters were refused must not break the
                    // services that store this event.
                    name: platform_http::text::without_control_characters(&after.name).into_owned(),
                    available,
                    threshold: after.low_stock_threshold,
                });
            }
        }
        let reserved = Envelope::new(
            SOURCE,
            &order_id,
            StockReserved {
                order_id,
                items: stock_lines(&reservation.items),
                expires_at,
            },
        );
        self.outbox.enqueue(session, &reserved).await?;
        for alert in alerts {
            let product_id = alert.product_id.clone();
            tracing::info!(sku = %alert.sku, available = alert.available, threshold = alert.threshold, "stock is low");
            self.outbox
                .enqueue(session, &Envelope::new(SOURCE, &product_id, alert))
                .await?;
        }
        Ok(Changed::yes(ReservationOutcome::from(&reservation)))
    }

    /// Returns the order's stock: held stock goes back on the shelf (`released`), and so does
    /// sold stock of a committed order (`restocked`: a confirmed order was cancelled). A no-op
    /// when already released or expired. Without any reservation, a marker is stored so that a
    /// `Reserve` arriving late for the order (a retry that lost the race with the cancellation)
    /// reserves nothing.
    #[tracing::instrument(skip_all, fields(order_id = %order_id))]
    pub async fn release(&self, order_id: Uuid) -> Result<ReservationState, InventoryError> {
        let this = self.clone();
        detached(async move { this.release_now(order_id).await }).await
    }

    async fn release_now(&self, order_id: Uuid) -> Result<ReservationState, InventoryError> {
        let outcome = self
            .store
            .transaction("releasing stock", |session| {
                let this = self.clone();
                Box::pin(async move { this.release_in(session, order_id).await })
            })
            .await?;
        if outcome.changed {
            metrics::counter!("inventory_reservations_total", "outcome" => "released").increment(1);
            self.cache.invalidate().await;
            tracing::info!("stock released");
        }
        Ok(outcome.value)
    }

    async fn release_in(
        &self,
        session: &mut ClientSession,
        order_id: Uuid,
    ) -> Result<Changed<ReservationState>, TxError> {
        let key = order_id.to_string();
        let Some(reservation) = self.store.reservation_in(session, &key).await? else {
            let now = bson::DateTime::now();
            let marker = ReservationDoc {
                order_id: key,
                status: ReservationState::Released,
                items: Vec::new(),
                expires_at: None,
                created_at: now,
                committed_at: None,
                released_at: Some(now),
                expired_at: None,
            };
            return match self.store.insert_reservation(session, &marker).await {
                Ok(()) => Ok(Changed::no(ReservationState::Released)),
                Err(error) if is_duplicate_key(&error) => Err(TxError::Retry(
                    "a concurrent reservation for the order".to_owned(),
                )),
                Err(error) => Err(error.into()),
            };
        };
        let (reason, source) = match reservation.status {
            ReservationState::Reserved => (ReleaseReason::Released, "reserved"),
            ReservationState::Committed => (ReleaseReason::Restocked, "sold"),
            ReservationState::Released | ReservationState::Expired => {
                return Ok(Changed::no(reservation.status));
            }
        };
        self.end_reservation(
            session,
            &reservation,
            ReservationState::Released,
            source,
            reason,
        )
        .await?;
        Ok(Changed::yes(ReservationState::Released))
    }

    /// Turns the order's reservation into a sale. A no-op when already committed; a
    /// reservation that was released, or that outlived its time, cannot be committed.
    #[tracing::instrument(skip_all, fields(order_id = %order_id))]
    pub async fn commit(&self, order_id: Uuid) -> Result<ReservationState, InventoryError> {
        let this = self.clone();
        detached(async move { this.commit_now(order_id).await }).await
    }

    async fn commit_now(&self, order_id: Uuid) -> Result<ReservationState, InventoryError> {
        let outcome = self
            .store
            .transaction("committing stock", |session| {
                let this = self.clone();
                Box::pin(async move { this.commit_in(session, order_id).await })
            })
            .await?;
        if outcome.changed {
            self.cache.invalidate().await;
        }
        match outcome.value {
            Committing::Committed => {
                if outcome.changed {
                    metrics::counter!("inventory_reservations_total", "outcome" => "committed")
                        .increment(1);
                    tracing::info!("stock committed");
                }
                Ok(ReservationState::Committed)
            }
            Committing::ExpiredNow(expires_at) => {
                metrics::counter!("inventory_reservations_total", "outcome" => "expired")
                    .increment(1);
                tracing::info!("a reservation committed after its expiry was expired instead");
                Err(expired(order_id, expires_at))
            }
        }
    }

    async fn commit_in(
        &self,
        session: &mut ClientSession,
        order_id: Uuid,
    ) -> Result<Changed<Committing>, TxError> {
        let reservation = self
            .store
            .reservation_in(session, &order_id.to_string())
            .await?
            .ok_or_else(|| {
                InventoryError::NotFound(format!("no reservation for order {order_id}"))
            })?;
        match reservation.status {
            ReservationState::Committed => Ok(Changed::no(Committing::Committed)),
            ReservationState::Released => Err(InventoryError::Precondition(format!(
                "the reservation for order {order_id} was released; it cannot be committed"
            ))
            .into()),
            ReservationState::Expired => Err(expired(order_id, reservation.expires_at).into()),
            ReservationState::Reserved if is_due(&reservation) => {
                // Past its time, the stock is no longer the order's, whether or not the sweep
                // has run yet: expire it now, so the answer does not depend on the sweep's timing.
                self.expire_reservation(session, &reservation).await?;
                Ok(Changed::yes(Committing::ExpiredNow(reservation.expires_at)))
            }
            ReservationState::Reserved => {
                // Read, then moved on the condition it was read in: a find and an update each
                // take a fraction of what one findAndModify takes on the local MongoDB-wire
                // server (which scans the collection for it).
                if !self
                    .store
                    .transition_reservation(
                        session,
                        &reservation.order_id,
                        ReservationState::Reserved,
                        ReservationState::Committed,
                        "committed_at",
                    )
                    .await?
                {
                    return Err(TxError::Retry("the reservation changed".to_owned()));
                }
                for line in &reservation.items {
                    self.move_stock(session, line, "reserved", "sold").await?;
                }
                let committed = StockCommitted {
                    order_id,
                    items: stock_lines(&reservation.items),
                };
                self.outbox
                    .enqueue(session, &Envelope::new(SOURCE, &order_id, committed))
                    .await?;
                Ok(Changed::yes(Committing::Committed))
            }
        }
    }

    /// Expires reservations past their time, up to one batch; returns how many this call
    /// expired. Safe with several replicas sweeping at once: each reservation is expired by
    /// one of them (a conditional update on its state, in the transaction that returns its
    /// stock).
    pub async fn expire_due(&self) -> Result<usize, InventoryError> {
        let due = self.store.due_reservations(SWEEP_BATCH).await?;
        let mut expired = 0;
        for order_id in due {
            let outcome = self
                .store
                .transaction("expiring a reservation", |session| {
                    let this = self.clone();
                    let order_id = order_id.clone();
                    Box::pin(async move {
                        match this.store.reservation_in(session, &order_id).await? {
                            Some(reservation)
                                if reservation.status == ReservationState::Reserved
                                    && is_due(&reservation) =>
                            {
                                this.expire_reservation(session, &reservation).await?;
                                Ok(true)
                            }
                            // Committed, released, or expired by another replica meanwhile.
                            _ => Ok(false),
                        }
                    })
                })
                .await?;
            if outcome {
                expired += 1;
                metrics::counter!("inventory_reservations_total", "outcome" => "expired")
                    .increment(1);
                tracing::info!(order_id = %order_id, "reservation expired; its stock is back");
            }
        }
        if expired > 0 {
            self.cache.invalidate().await;
        }
        Ok(expired)
    }

    async fn expire_reservation(
        &self,
        session: &mut ClientSession,
        reservation: &ReservationDoc,
    ) -> Result<(), TxError> {
        self.end_reservation(
            session,
            reservation,
            ReservationState::Expired,
            "reserved",
            ReleaseReason::Expired,
        )
        .await
    }

    /// Moves a reservation to `to` (from the state it was read in), puts its units from the
    /// `source` counter back to `available`, and emits `inventory.stock_released`.
    async fn end_reservation(
        &self,
        session: &mut ClientSession,
        reservation: &ReservationDoc,
        to: ReservationState,
        source: &str,
        reason: ReleaseReason,
    ) -> Result<(), TxError> {
        let stamp = match to {
            ReservationState::Expired => "expired_at",
            _ => "released_at",
        };
        if !self
            .store
            .transition_reservation(
                session,
                &reservation.order_id,
                reservation.status,
                to,
                stamp,
            )
            .await?
        {
            return Err(TxError::Retry("the reservation changed".to_owned()));
        }
        for line in &reservation.items {
            self.move_stock(session, line, source, "available").await?;
        }
        let order_id: Uuid = reservation.order_id.parse().map_err(|_| {
            anyhow::anyhow!("reservation _id `{}` is not a UUID", reservation.order_id)
        })?;
        let released = StockReleased {
            order_id,
            items: stock_lines(&reservation.items),
            reason,
        };
        self.outbox
            .enqueue(session, &Envelope::new(SOURCE, &order_id, released))
            .await?;
        Ok(())
    }

    async fn move_stock(
        &self,
        session: &mut ClientSession,
        line: &ReservedLine,
        from: &str,
        to: &str,
    ) -> Result<(), TxError> {
        if self
            .store
            .move_stock(session, &line.sku, from, to, line.quantity)
            .await?
        {
            Ok(())
        } else {
            // The counters always cover the reservations; if they do not, stop rather than
            // make them worse.
            Err(anyhow::anyhow!(
                "the {from} stock of {} does not cover the {} units of a reservation",
                line.sku,
                line.quantity
            )
            .into())
        }
    }
}

/// Runs a stock operation in a task of its own, so that a caller who stops waiting (a gRPC
/// deadline drops the handler) does not abandon a transaction half-way: a session dropped
/// mid-transaction is aborted only later, in the background, and meanwhile keeps the documents
/// it wrote locked against every other reservation of those products.
async fn detached<T: Send + 'static>(
    operation: impl Future<Output = Result<T, InventoryError>> + Send + 'static,
) -> Result<T, InventoryError> {
    tokio::spawn(operation.instrument(tracing::Span::current()))
        .await
        .map_err(|error| {
            InventoryError::Unexpected(
                anyhow::Error::new(error).context("a stock operation's task failed"),
            )
        })?
}

/// Expires due reservations every `interval` until `stop` is cancelled.
pub async fn run_expiry_sweep(stock: Stock, interval: Duration, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(interval) => {}
        }
        if let Err(error) = stock.expire_due().await {
            tracing::warn!(
                error = format!("{error:#}"),
                "the reservation expiry sweep failed; it runs again shortly"
            );
        }
    }
    tracing::debug!("reservation expiry sweep stopped");
}

fn is_due(reservation: &ReservationDoc) -> bool {
    reservation
        .expires_at
        .is_some_and(|expires_at| expires_at <= bson::DateTime::now())
}

fn expired(order_id: Uuid, expires_at: Option<bson::DateTime>) -> InventoryError {
    let when = expires_at.map_or_else(String::new, |at| {
        format!(
            " at {}",
            at.to_chrono()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )
    });
    InventoryError::Precondition(format!(
        "the reservation for order {order_id} expired{when}; its stock was returned"
    ))
}

fn stock_lines(lines: &[ReservedLine]) -> Vec<StockLine> {
    lines
        .iter()
        .map(|line| StockLine {
            sku: line.sku.clone(),
            quantity: u32::try_from(line.quantity).unwrap_or(u32::MAX),
        })
        .collect()
}
