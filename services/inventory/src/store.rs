//! The service's MongoDB database: its collections, their indexes, the documents in them, and
//! the transactions stock changes run in.
//!
//! Functions that take a [`ClientSession`] run inside the caller's transaction, so the caller
//! decides what commits together (a stock change, its reservation and its events).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use anyhow::Context as _;
use bson::{Document, doc};
use futures::TryStreamExt as _;
use mongodb::options::ReturnDocument;
use mongodb::{Client, ClientSession, Collection, Database, IndexModel};
use rand::Rng as _;
use serde::{Deserialize, Serialize};

use crate::error::{InventoryError, is_namespace_exists, is_transient};

/// The products collection.
pub const PRODUCTS: &str = "products";
/// The reservations collection (one document per order id).
pub const RESERVATIONS: &str = "reservations";

/// A price as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceDoc {
    /// Minor units.
    pub minor: i64,
    /// ISO 4217 code.
    pub currency: String,
}

/// A product's stock counters. Every unit ever stocked is in exactly one of them, so
/// `initial + restocked = available + reserved + sold` always holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockDoc {
    /// Units on the shelf, free to reserve.
    pub available: i64,
    /// Units held by reservations that are not committed yet.
    pub reserved: i64,
    /// Units sold (committed reservations).
    pub sold: i64,
}

/// A document of `products`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProductDoc {
    /// UUID v7.
    #[serde(rename = "_id")]
    pub id: String,
    /// Upper-case SKU (unique).
    pub sku: String,
    /// Display name.
    pub name: String,
    /// Lower-case name, the sort key.
    pub name_key: String,
    /// Description.
    pub description: String,
    /// Price of one unit.
    pub price: PriceDoc,
    /// Lower-case category.
    pub category: String,
    /// Stock counters.
    pub stock: StockDoc,
    /// `inventory.low_stock` is emitted when `available` falls below this.
    pub low_stock_threshold: i64,
    /// Incremented by every update of the product's details (optimistic concurrency).
    pub version: i64,
    /// When it was created.
    pub created_at: bson::DateTime,
    /// When it last changed (details or stock).
    pub updated_at: bson::DateTime,
}

/// Where a reservation stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReservationState {
    /// Stock is held until `expires_at`.
    Reserved,
    /// The stock was sold.
    Committed,
    /// The order gave the stock back (before or after committing it).
    Released,
    /// Its time ran out and the stock went back on the shelf.
    Expired,
}

impl ReservationState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reserved => "reserved",
            Self::Committed => "committed",
            Self::Released => "released",
            Self::Expired => "expired",
        }
    }
}

/// One line of a reservation as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservedLine {
    /// Upper-case SKU.
    pub sku: String,
    /// Units.
    pub quantity: i64,
}

/// A document of `reservations`: its `_id` is the order id, so there is one per order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReservationDoc {
    /// The order id.
    #[serde(rename = "_id")]
    pub order_id: String,
    /// Where it stands.
    pub status: ReservationState,
    /// What is (or was) held, sorted by SKU. Empty for a release that came before any
    /// reservation.
    pub items: Vec<ReservedLine>,
    /// When an uncommitted reservation lapses.
    #[serde(default)]
    pub expires_at: Option<bson::DateTime>,
    /// When it was created.
    pub created_at: bson::DateTime,
    /// When it was committed, if it was.
    #[serde(default)]
    pub committed_at: Option<bson::DateTime>,
    /// When it was released, if it was.
    #[serde(default)]
    pub released_at: Option<bson::DateTime>,
    /// When it expired, if it did.
    #[serde(default)]
    pub expired_at: Option<bson::DateTime>,
}

/// Why a transaction body stopped: worth retrying the whole transaction, or not.
#[derive(Debug)]
pub enum TxError {
    /// A concurrent change got in the way (a write conflict, a document that changed between
    /// a read and a conditional update): the whole transaction may be retried.
    Retry(String),
    /// The outcome is final.
    Fail(InventoryError),
}

impl From<mongodb::error::Error> for TxError {
    fn from(error: mongodb::error::Error) -> Self {
        if is_transient(&error) {
            Self::Retry(error.kind.to_string())
        } else {
            Self::Fail(error.into())
        }
    }
}

impl From<InventoryError> for TxError {
    fn from(error: InventoryError) -> Self {
        Self::Fail(error)
    }
}

impl From<anyhow::Error> for TxError {
    fn from(error: anyhow::Error) -> Self {
        Self::Fail(InventoryError::Unexpected(error))
    }
}

/// The future a transaction body returns: it borrows only the session.
pub type TxFuture<'s, T> = Pin<Box<dyn Future<Output = Result<T, TxError>> + Send + 's>>;

/// How many times a transaction is tried before the caller is told to retry later.
pub const MAX_TRANSACTION_ATTEMPTS: u32 = 12;

/// The service's database.
#[derive(Clone, Debug)]
pub struct Store {
    client: Client,
    database: Database,
    products: Collection<ProductDoc>,
    reservations: Collection<ReservationDoc>,
}

impl Store {
    /// The store in `database` (connected by the service kit).
    pub fn new(database: Database) -> Self {
        let client = database.client().clone();
        Self {
            products: database.collection(PRODUCTS),
            reservations: database.collection(RESERVATIONS),
            database,
            client,
        }
    }

    /// The database handle (for the outbox and health checks).
    pub fn database(&self) -> &Database {
        &self.database
    }

    /// Creates the collections (transactions cannot write to a collection that does not exist
    /// yet) and the indexes. Idempotent: every replica runs it at start-up.
    pub async fn ensure_schema(&self) -> anyhow::Result<()> {
        for name in [
            PRODUCTS,
            RESERVATIONS,
            platform_events::outbox::mongo::COLLECTION,
        ] {
            match self.database.create_collection(name).await {
                Ok(()) => {}
                Err(error) if is_namespace_exists(&error) => {}
                Err(error) => {
                    return Err(error).with_context(|| format!("creating the {name} collection"));
                }
            }
        }
        let unique = mongodb::options::IndexOptions::builder()
            .unique(true)
            .name("sku_unique".to_owned())
            .build();
        self.products
            .create_indexes([
                IndexModel::builder()
                    .keys(doc! { "sku": 1 })
                    .options(unique)
                    .build(),
                IndexModel::builder()
                    .keys(doc! { "category": 1, "name_key": 1, "_id": 1 })
                    .build(),
                IndexModel::builder()
                    .keys(doc! { "name_key": 1, "_id": 1 })
                    .build(),
                IndexModel::builder()
                    .keys(doc! { "price.minor": 1, "_id": 1 })
                    .build(),
                IndexModel::builder()
                    .keys(doc! { "created_at": -1, "_id": -1 })
                    .build(),
            ])
            .await
            .context("creating the product indexes")?;
        self.reservations
            .create_index(
                IndexModel::builder()
                    .keys(doc! { "status": 1, "expires_at": 1 })
                    .build(),
            )
            .await
            .context("creating the reservation index")?;
        Ok(())
    }

    /// Runs `body` in a transaction and commits it; retries the whole transaction (with a
    /// jittered, growing pause) when it fails for a reason worth retrying, up to
    /// [`MAX_TRANSACTION_ATTEMPTS`] times. Every failed attempt is aborted explicitly, so that
    /// nothing it touched stays locked. `what` names the operation in errors.
    ///
    /// The bodies are idempotent (they read what they are about to change), so a retry after a
    /// commit whose outcome was unknown finds the work done and does nothing twice.
    pub async fn transaction<T, F>(&self, what: &str, mut body: F) -> Result<T, InventoryError>
    where
        F: for<'s> FnMut(&'s mut ClientSession) -> TxFuture<'s, T>,
    {
        let mut last_reason = String::new();
        for attempt in 1..=MAX_TRANSACTION_ATTEMPTS {
            if attempt > 1 {
                metrics::counter!("inventory_transaction_retries_total").increment(1);
                tokio::time::sleep(retry_pause(attempt)).await;
            }
            let mut session = self.client.start_session().await?;
            session.start_transaction().await?;
            let outcome = match body(&mut session).await {
                Ok(value) => match session.commit_transaction().await {
                    Ok(()) => return Ok(value),
                    Err(error) => {
                        // A failed commit has ended the transaction on the server already;
                        // an abort makes sure of it and costs nothing.
                        abort(&mut session).await;
                        TxError::from(error)
                    }
                },
                Err(error) => {
                    abort(&mut session).await;
                    error
                }
            };
            match outcome {
                TxError::Retry(reason) => {
                    tracing::debug!(attempt, %reason, "{what}: transaction conflicted; retrying");
                    last_reason = reason;
                }
                TxError::Fail(error) => return Err(error),
            }
        }
        tracing::warn!(reason = %last_reason, "{what}: transaction still conflicting after {MAX_TRANSACTION_ATTEMPTS} attempts");
        Err(InventoryError::Contended(format!(
            "{what} conflicted with concurrent changes {MAX_TRANSACTION_ATTEMPTS} times; retry shortly"
        )))
    }

    // ---------------------------------------------------------------- products

    /// Stores a new product (a duplicate SKU fails with the driver's duplicate-key error).
    pub async fn insert_product(&self, product: &ProductDoc) -> mongodb::error::Result<()> {
        self.products.insert_one(product).await?;
        Ok(())
    }

    /// Stores many products, skipping SKUs that exist; returns how many were inserted.
    pub async fn insert_products_skipping_duplicates(
        &self,
        products: &[ProductDoc],
    ) -> anyhow::Result<usize> {
        let mut inserted = 0;
        for product in products {
            match self.products.insert_one(product).await {
                Ok(_) => inserted += 1,
                Err(error) if crate::error::is_duplicate_key(&error) => {}
                Err(error) => {
                    return Err(error)
                        .with_context(|| format!("inserting product {}", product.sku));
                }
            }
        }
        Ok(inserted)
    }

    /// Whether there is any product at all.
    pub async fn has_products(&self) -> mongodb::error::Result<bool> {
        Ok(self.products.find_one(doc! {}).await?.is_some())
    }

    /// The product with this id.
    pub async fn product_by_id(&self, id: &str) -> mongodb::error::Result<Option<ProductDoc>> {
        self.products.find_one(doc! { "_id": id }).await
    }

    /// The product with this (upper-case) SKU.
    pub async fn product_by_sku(&self, sku: &str) -> mongodb::error::Result<Option<ProductDoc>> {
        self.products.find_one(doc! { "sku": sku }).await
    }

    /// The products with these SKUs (in no particular order; unknown ones are missing).
    pub async fn products_by_skus(&self, skus: &[&str]) -> mongodb::error::Result<Vec<ProductDoc>> {
        self.products
            .find(doc! { "sku": { "$in": skus } })
            .await?
            .try_collect()
            .await
    }

    /// A page of the products matching `filter`, in `sort` order.
    pub async fn list_products(
        &self,
        filter: Document,
        sort: Document,
        skip: u64,
        limit: i64,
    ) -> mongodb::error::Result<Vec<ProductDoc>> {
        self.products
            .find(filter)
            .sort(sort)
            .skip(skip)
            .limit(limit)
            .await?
            .try_collect()
            .await
    }

    /// How many products match `filter`.
    pub async fn count_products(&self, filter: Document) -> mongodb::error::Result<u64> {
        self.products.count_documents(filter).await
    }

    /// Applies `set` to the product if its version is still `version`, and increments the
    /// version; `None` if the product is missing or its version moved on.
    pub async fn update_product_if_version(
        &self,
        id: &str,
        version: i64,
        mut set: Document,
    ) -> mongodb::error::Result<Option<ProductDoc>> {
        set.insert("updated_at", bson::DateTime::now());
        self.products
            .find_one_and_update(
                doc! { "_id": id, "version": version },
                doc! { "$set": set, "$inc": { "version": 1_i64 } },
            )
            .return_document(ReturnDocument::After)
            .await
    }

    /// Adds units to a product's available stock; `None` if there is no such product.
    pub async fn restock(
        &self,
        id: &str,
        quantity: i64,
    ) -> mongodb::error::Result<Option<ProductDoc>> {
        self.products
            .find_one_and_update(
                doc! { "_id": id },
                doc! {
                    "$inc": { "stock.available": quantity },
                    "$set": { "updated_at": bson::DateTime::now() },
                },
            )
            .return_document(ReturnDocument::After)
            .await
    }

    /// In `session`'s transaction: moves `quantity` units of `sku` from available to reserved
    /// if at least that many are available (one conditional update: never read-then-write);
    /// the product as it is afterwards, or `None` if it is unknown or short.
    pub async fn take_available(
        &self,
        session: &mut ClientSession,
        sku: &str,
        quantity: i64,
    ) -> mongodb::error::Result<Option<ProductDoc>> {
        self.products
            .find_one_and_update(
                doc! { "sku": sku, "stock.available": { "$gte": quantity } },
                doc! {
                    "$inc": { "stock.available": -quantity, "stock.reserved": quantity },
                    "$set": { "updated_at": bson::DateTime::now() },
                },
            )
            .return_document(ReturnDocument::After)
            .session(session)
            .await
    }

    /// In `session`'s transaction: the product with this SKU.
    pub async fn product_by_sku_in(
        &self,
        session: &mut ClientSession,
        sku: &str,
    ) -> mongodb::error::Result<Option<ProductDoc>> {
        self.products
            .find_one(doc! { "sku": sku })
            .session(session)
            .await
    }

    /// In `session`'s transaction: moves `quantity` units of `sku` from one counter to another
    /// (`available`, `reserved`, `sold`), if the source holds that many; `false` if it does not.
    pub async fn move_stock(
        &self,
        session: &mut ClientSession,
        sku: &str,
        from: &str,
        to: &str,
        quantity: i64,
    ) -> mongodb::error::Result<bool> {
        let source = format!("stock.{from}");
        let target = format!("stock.{to}");
        let result = self
            .products
            .update_one(
                doc! { "sku": sku, &source: { "$gte": quantity } },
                doc! {
                    "$inc": { &source: -quantity, &target: quantity },
                    "$set": { "updated_at": bson::DateTime::now() },
                },
            )
            .session(session)
            .await?;
        Ok(result.matched_count == 1)
    }

    // ------------------------------------------------------------ reservations

    /// The reservation of an order.
    pub async fn reservation(
        &self,
        order_id: &str,
    ) -> mongodb::error::Result<Option<ReservationDoc>> {
        self.reservations.find_one(doc! { "_id": order_id }).await
    }

    /// In `session`'s transaction: the reservation of an order.
    pub async fn reservation_in(
        &self,
        session: &mut ClientSession,
        order_id: &str,
    ) -> mongodb::error::Result<Option<ReservationDoc>> {
        self.reservations
            .find_one(doc! { "_id": order_id })
            .session(session)
            .await
    }

    /// In `session`'s transaction: stores a reservation (a second one for the same order
    /// fails with a duplicate-key error).
    pub async fn insert_reservation(
        &self,
        session: &mut ClientSession,
        reservation: &ReservationDoc,
    ) -> mongodb::error::Result<()> {
        self.reservations
            .insert_one(reservation)
            .session(session)
            .await?;
        Ok(())
    }

    /// In `session`'s transaction: moves a reservation from `from` to `to`, stamping
    /// `stamp` (e.g. `committed_at`); `false` if it was no longer in `from` (someone else moved
    /// it first).
    pub async fn transition_reservation(
        &self,
        session: &mut ClientSession,
        order_id: &str,
        from: ReservationState,
        to: ReservationState,
        stamp: &str,
    ) -> mongodb::error::Result<bool> {
        let result = self
            .reservations
            .update_one(
                doc! { "_id": order_id, "status": from.as_str() },
                doc! { "$set": { "status": to.as_str(), stamp: bson::DateTime::now() } },
            )
            .session(session)
            .await?;
        Ok(result.matched_count == 1)
    }

    /// The order ids of up to `limit` reservations still held past their expiry.
    pub async fn due_reservations(&self, limit: i64) -> mongodb::error::Result<Vec<String>> {
        let due: Vec<ReservationDoc> = self
            .reservations
            .find(doc! { "status": "reserved", "expires_at": { "$lte": bson::DateTime::now() } })
            .sort(doc! { "expires_at": 1 })
            .limit(limit)
            .await?
            .try_collect()
            .await?;
        Ok(due
            .into_iter()
            .map(|reservation| reservation.order_id)
            .collect())
    }
}

/// Aborts a transaction, ignoring the error a transaction the server already ended gives.
async fn abort(session: &mut ClientSession) {
    if let Err(error) = session.abort_transaction().await {
        tracing::debug!(error = %error.kind, "aborting a transaction");
    }
}

/// The pause before attempt `attempt` (2, 3, ...): growing from ~5 ms to ~250 ms, jittered so
/// that transactions that collided do not collide again in step.
fn retry_pause(attempt: u32) -> Duration {
    let base = 5u64
        .saturating_mul(1 << attempt.saturating_sub(2).min(6))
        .min(250);
    let jittered = rand::rng().random_range(base / 2..=base + base / 2);
    Duration::from_millis(jittered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_pauses_grow_and_stay_bounded() {
        for _ in 0..100 {
            let first = retry_pause(2);
            assert!(first >= Duration::from_millis(2) && first <= Duration::from_millis(8));
            assert!(retry_pause(40) <= Duration::from_millis(375));
        }
    }

    #[test]
    fn reservation_states_are_stored_by_name() {
        let stored = bson::to_bson(&ReservationState::Committed).unwrap();
        assert_eq!(stored, bson::Bson::String("committed".to_owned()));
        assert_eq!(ReservationState::Expired.as_str(), "expired");
    }
}
