//! The inbox in MongoDB: the `event_inbox` collection, written in a session transaction.

use std::time::Duration;

use anyhow::Context as _;
use bson::{Document, doc};
use mongodb::{Client, ClientSession, Collection, Database};
use uuid::Uuid;

use super::Inbox;
use crate::mongo::{before, is_duplicate_key};

/// The collection's name.
pub const COLLECTION: &str = "event_inbox";

/// An inbox in a service's MongoDB database; handlers get a [`ClientSession`] with a
/// transaction started.
#[derive(Clone, Debug)]
pub struct MongoInbox {
    client: Client,
    collection: Collection<Document>,
}

impl MongoInbox {
    /// The inbox in `database` (which must belong to `client`).
    pub fn new(client: Client, database: &Database) -> Self {
        Self {
            client,
            collection: database.collection(COLLECTION),
        }
    }

    /// Creates the index the purge needs. Idempotent; run at start-up.
    pub async fn ensure_indexes(&self) -> anyhow::Result<()> {
        self.collection
            .create_index(
                mongodb::IndexModel::builder()
                    .keys(doc! { "consumer": 1, "processed_at": 1 })
                    .build(),
            )
            .await
            .context("creating the inbox index")?;
        Ok(())
    }
}

impl Inbox for MongoInbox {
    type Tx = ClientSession;

    async fn begin(&self) -> anyhow::Result<Self::Tx> {
        let mut session = self
            .client
            .start_session()
            .await
            .context("starting a session for the inbox")?;
        session
            .start_transaction()
            .await
            .context("starting the inbox transaction")?;
        Ok(session)
    }

    async fn record(
        &self,
        tx: &mut Self::Tx,
        consumer: &str,
        event_id: Uuid,
    ) -> anyhow::Result<bool> {
        let document = doc! {
            "_id": format!("{consumer}:{event_id}"),
            "consumer": consumer,
            "event_id": event_id.to_string(),
            "processed_at": bson::DateTime::now(),
        };
        match self.collection.insert_one(document).session(&mut *tx).await {
            Ok(_) => Ok(true),
            Err(error) if is_duplicate_key(&error) => Ok(false),
            Err(error) => Err(error).context("recording the event in the inbox"),
        }
    }

    async fn commit(&self, mut tx: Self::Tx) -> anyhow::Result<()> {
        tx.commit_transaction()
            .await
            .context("committing the inbox transaction")
    }

    async fn abort(&self, mut tx: Self::Tx) {
        // A failed write may already have ended the transaction on the server; then there is
        // nothing to abort and the error says so.
        if let Err(error) = tx.abort_transaction().await {
            tracing::debug!(%error, "aborting the inbox transaction");
        }
    }

    async fn purge(&self, consumer: &str, older_than: Duration) -> anyhow::Result<u64> {
        let cutoff = before(bson::DateTime::now(), older_than);
        let result = self
            .collection
            .delete_many(doc! { "consumer": consumer, "processed_at": { "$lt": cutoff } })
            .await
            .context("purging the inbox")?;
        Ok(result.deleted_count)
    }
}
