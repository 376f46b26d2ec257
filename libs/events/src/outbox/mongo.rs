//! The outbox in MongoDB: the `event_outbox` collection, written in the caller's session
//! transaction. The same contract as the PostgreSQL outbox; claims are leases taken with
//! conditional updates, which MongoDB applies atomically per document.

use std::time::Duration;

use anyhow::Context as _;
use bson::{Document, doc};
use bytes::Bytes;
use futures::TryStreamExt as _;
use mongodb::{ClientSession, Collection, Database, IndexModel};
use serde::Serialize;
use uuid::Uuid;

use super::{OutboxStore, PendingEvent};
use crate::envelope::Envelope;
use crate::mongo::{after, before};
use crate::streams::Namespace;

/// The collection's name.
pub const COLLECTION: &str = "event_outbox";

/// A service's outbox in MongoDB: [`MongoOutbox::enqueue`] for writers, [`OutboxStore`] for
/// the relay.
pub struct MongoOutbox {
    collection: Collection<Document>,
    namespace: Namespace,
}

impl MongoOutbox {
    /// The outbox in `database`, publishing into `namespace`.
    pub fn new(database: &Database, namespace: Namespace) -> Self {
        Self {
            collection: database.collection(COLLECTION),
            namespace,
        }
    }

    /// Creates the indexes the relay needs. Idempotent; run at start-up.
    pub async fn ensure_indexes(&self) -> anyhow::Result<()> {
        self.collection
            .create_indexes([
                IndexModel::builder()
                    .keys(doc! { "published_at": 1, "lease_until": 1, "_id": 1 })
                    .build(),
                IndexModel::builder()
                    .keys(doc! { "lease_owner": 1 })
                    .build(),
            ])
            .await
            .context("creating the outbox indexes")?;
        Ok(())
    }

    /// Writes `event` to the outbox in `session`'s transaction: start the transaction that
    /// makes the state change the event describes, and commit it after this, so both are
    /// stored or neither is.
    pub async fn enqueue<T: Serialize>(
        &self,
        session: &mut ClientSession,
        event: &Envelope<T>,
    ) -> anyhow::Result<()> {
        let payload = serde_json::to_string(event).context("serialising the event")?;
        let document = doc! {
            "_id": event.id.to_string(),
            "subject": self.namespace.subject(&event.event_type),
            "payload": payload,
            "traceparent": event.traceparent.clone(),
            "created_at": bson::DateTime::now(),
            "published_at": bson::Bson::Null,
            "lease_until": bson::Bson::Null,
            "lease_owner": bson::Bson::Null,
            "attempts": 0_i32,
            "last_error": bson::Bson::Null,
        };
        self.collection
            .insert_one(document)
            .session(session)
            .await
            .with_context(|| {
                format!(
                    "writing event {} ({}) to the outbox",
                    event.id, event.event_type
                )
            })?;
        Ok(())
    }
}

/// Not published yet, and not leased (or the lease lapsed). `$not: {$gte}` matches a null
/// lease as well as a past one in a single condition: with an `$or`, a server may scan the
/// whole collection, published events included, on every claim.
fn pending_and_free(now: bson::DateTime) -> Document {
    doc! {
        "published_at": bson::Bson::Null,
        "lease_until": { "$not": { "$gte": now } },
    }
}

fn ids_filter(ids: &[Uuid]) -> Document {
    let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
    doc! { "_id": { "$in": ids } }
}

impl OutboxStore for MongoOutbox {
    async fn claim(&self, limit: usize, lease: Duration) -> anyhow::Result<Vec<PendingEvent>> {
        let now = bson::DateTime::now();
        let candidates: Vec<Document> = self
            .collection
            .find(pending_and_free(now))
            .sort(doc! { "_id": 1 })
            .limit(i64::try_from(limit).unwrap_or(i64::MAX))
            .projection(doc! { "_id": 1 })
            .await
            .context("finding pending outbox events")?
            .try_collect()
            .await
            .context("reading pending outbox events")?;
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<&str> = candidates
            .iter()
            .filter_map(|candidate| candidate.get_str("_id").ok())
            .collect();
        // The lease condition is repeated in the update: per document it either still holds
        // and this relay takes the event, or another relay got there first and this one skips it.
        let owner = Uuid::now_v7().to_string();
        let mut filter = pending_and_free(now);
        filter.insert("_id", doc! { "$in": ids });
        self.collection
            .update_many(
                filter,
                doc! {
                    "$set": { "lease_owner": &owner, "lease_until": after(now, lease) },
                    "$inc": { "attempts": 1 },
                },
            )
            .await
            .context("claiming outbox events")?;
        let claimed: Vec<Document> = self
            .collection
            .find(doc! { "lease_owner": &owner })
            .sort(doc! { "_id": 1 })
            .await
            .context("reading claimed outbox events")?
            .try_collect()
            .await
            .context("reading claimed outbox events")?;
        claimed
            .into_iter()
            .map(|document| {
                let id = document
                    .get_str("_id")
                    .context("outbox document without _id")?;
                Ok(PendingEvent {
                    id: id
                        .parse()
                        .with_context(|| format!("outbox _id `{id}` is not a UUID"))?,
                    subject: document
                        .get_str("subject")
                        .context("outbox document without subject")?
                        .to_owned(),
                    payload: Bytes::from(
                        document
                            .get_str("payload")
                            .context("outbox document without payload")?
                            .to_owned(),
                    ),
                    traceparent: document.get_str("traceparent").ok().map(str::to_owned),
                })
            })
            .collect()
    }

    async fn mark_published(&self, ids: &[Uuid]) -> anyhow::Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.collection
            .update_many(
                ids_filter(ids),
                doc! { "$set": {
                    "published_at": bson::DateTime::now(),
                    "lease_until": bson::Bson::Null,
                    "lease_owner": bson::Bson::Null,
                    "last_error": bson::Bson::Null,
                } },
            )
            .await
            .context("marking outbox events published")?;
        Ok(())
    }

    async fn release(
        &self,
        ids: &[Uuid],
        error: &str,
        retry_after: Duration,
    ) -> anyhow::Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut filter = ids_filter(ids);
        filter.insert("published_at", bson::Bson::Null);
        self.collection
            .update_many(
                filter,
                doc! { "$set": {
                    "lease_until": after(bson::DateTime::now(), retry_after),
                    "lease_owner": bson::Bson::Null,
                    "last_error": error,
                } },
            )
            .await
            .context("recording failed outbox publishes")?;
        Ok(())
    }

    async fn pending(&self) -> anyhow::Result<u64> {
        self.collection
            .count_documents(doc! { "published_at": bson::Bson::Null })
            .await
            .context("counting pending outbox events")
    }

    async fn oldest_pending(&self) -> anyhow::Result<Option<Uuid>> {
        // `_id` is the id's hyphenated text, which sorts as a UUIDv7 does: by time.
        let oldest = self
            .collection
            .find_one(doc! { "published_at": bson::Bson::Null })
            .sort(doc! { "_id": 1 })
            .projection(doc! { "_id": 1 })
            .await
            .context("reading the oldest pending outbox event")?;
        oldest
            .map(|document| {
                let id = document
                    .get_str("_id")
                    .context("an outbox `_id` that is not text")?;
                Uuid::parse_str(id).context("an outbox `_id` that is not a UUID")
            })
            .transpose()
    }

    async fn purge_published(&self, older_than: Duration) -> anyhow::Result<u64> {
        let cutoff = before(bson::DateTime::now(), older_than);
        let result = self
            .collection
            .delete_many(doc! { "published_at": { "$ne": bson::Bson::Null, "$lt": cutoff } })
            .await
            .context("purging published outbox events")?;
        Ok(result.deleted_count)
    }
}
