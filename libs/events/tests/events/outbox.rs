//! The outbox and its relay, the same scenarios against PostgreSQL and MongoDB.

use std::collections::HashMap;
use std::time::Duration;

use futures::future::join_all;
use platform_events::outbox::PublishOutcome;
use platform_events::{OutboxStore, Relay, RelayConfig};
use platform_testkit::eventually;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::support::{Bus, assert_exactly_once};

/// A store with a business table, in which tests write events the way a service does.
pub trait Fixture: Send + Sync + 'static {
    type Store: OutboxStore;

    fn bus(&self) -> &Bus;

    /// A new handle on the outbox, as another relay (or replica) would have.
    fn store(&self) -> Self::Store;

    /// Writes `count` events, each with a business row, in its own committed transaction.
    fn write(&self, count: usize) -> impl Future<Output = Vec<Uuid>> + Send;

    /// Writes an event with a business row, then rolls the transaction back.
    fn write_rolled_back(&self) -> impl Future<Output = Uuid> + Send;

    /// Per event: publish attempts and whether it is marked published.
    fn outbox_rows(&self) -> impl Future<Output = HashMap<Uuid, (i64, bool)>> + Send;

    /// How many business rows exist.
    fn business_rows(&self) -> impl Future<Output = i64> + Send;
}

fn quick(batch_size: usize, lease: Duration) -> RelayConfig {
    RelayConfig {
        batch_size,
        lease,
        poll_interval: Duration::from_millis(50),
        retry_after: Duration::from_millis(200),
        ..RelayConfig::default()
    }
}

async fn all_published<F: Fixture>(fixture: &F) -> bool {
    fixture
        .outbox_rows()
        .await
        .values()
        .all(|(_, published)| *published)
}

pub async fn committed_events_are_published_and_rolled_back_ones_never_are<F: Fixture>(fixture: F) {
    let committed = fixture.write(3).await;
    let rolled_back = fixture.write_rolled_back().await;
    assert_eq!(
        fixture.business_rows().await,
        3,
        "the rolled-back business row is gone"
    );
    let rows = fixture.outbox_rows().await;
    assert_eq!(
        rows.len(),
        3,
        "the rolled-back event never reached the outbox"
    );
    assert!(!rows.contains_key(&rolled_back));

    let relay = Relay::new(
        fixture.store(),
        fixture.bus().js.clone(),
        quick(10, Duration::from_secs(30)),
    );
    assert_eq!(relay.run_once().await.unwrap(), 3);
    assert_eq!(
        relay.run_once().await.unwrap(),
        0,
        "nothing is left to publish"
    );

    let stored = fixture.bus().stored(&fixture.bus().payments_stream()).await;
    assert_exactly_once(&stored, &committed);
    for message in &stored {
        assert_eq!(
            message.subject.as_str(),
            fixture.bus().namespace.subject("payments.captured")
        );
        let envelope = platform_events::RawEnvelope::from_slice(&message.payload).unwrap();
        assert_eq!(
            message
                .headers
                .get(async_nats::header::NATS_MESSAGE_ID)
                .unwrap()
                .as_str(),
            envelope.id.to_string(),
            "the message id is the event id"
        );
        assert!(committed.contains(&envelope.id));
    }
    assert!(all_published(&fixture).await);
}

pub async fn pending_counts_every_committed_event_until_it_is_marked_published<F: Fixture>(
    fixture: F,
) {
    let store = fixture.store();
    assert_eq!(store.pending().await.unwrap(), 0, "an empty outbox");
    let written = fixture.write(3).await;
    fixture.write_rolled_back().await;
    assert_eq!(
        store.pending().await.unwrap(),
        3,
        "committed events count, a rolled-back one does not"
    );

    let claimed = store.claim(2, Duration::from_secs(30)).await.unwrap();
    assert_eq!(claimed.len(), 2);
    assert_eq!(
        store.pending().await.unwrap(),
        3,
        "a claimed event is pending until it is marked published"
    );
    store
        .release(
            &[claimed[1].id],
            "no acknowledgement",
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    assert_eq!(
        store.pending().await.unwrap(),
        3,
        "so is one waiting to be retried"
    );
    store.mark_published(&[claimed[0].id]).await.unwrap();
    assert_eq!(store.pending().await.unwrap(), 2);
    store.mark_published(&written).await.unwrap();
    assert_eq!(store.pending().await.unwrap(), 0, "everything is published");
}

pub async fn two_concurrent_relays_store_every_event_exactly_once<F: Fixture>(fixture: F) {
    let stop = CancellationToken::new();
    let relays: Vec<_> = (0..2)
        .map(|_| {
            let relay = Relay::new(
                fixture.store(),
                fixture.bus().js.clone(),
                quick(7, Duration::from_secs(30)),
            );
            tokio::spawn(relay.run(stop.clone()))
        })
        .collect();

    // Writers and relays race: events arrive while both relays are claiming.
    let batches = join_all((0..10).map(|_| fixture.write(12))).await;
    let written: Vec<Uuid> = batches.into_iter().flatten().collect();
    assert_eq!(written.len(), 120);

    eventually(Duration::from_secs(30), "every event published", || async {
        all_published(&fixture).await.then_some(())
    })
    .await
    .unwrap();
    stop.cancel();
    for relay in relays {
        relay.await.unwrap();
    }

    assert_exactly_once(
        &fixture.bus().stored(&fixture.bus().payments_stream()).await,
        &written,
    );
    let rows = fixture.outbox_rows().await;
    let claimed_twice: Vec<_> = rows
        .iter()
        .filter(|(_, (attempts, _))| *attempts != 1)
        .collect();
    assert!(
        claimed_twice.is_empty(),
        "the relays claimed disjoint batches, so each event was published once: {claimed_twice:?}"
    );
}

pub async fn a_relay_that_dies_after_publishing_and_before_marking_causes_no_duplicate<
    F: Fixture,
>(
    fixture: F,
) {
    let written = fixture.write(25).await;
    let lease = Duration::from_millis(800);

    // The first relay claims and publishes, then dies: it never records the outcome.
    let doomed = Relay::new(fixture.store(), fixture.bus().js.clone(), quick(100, lease));
    let claimed = doomed.store().claim(100, lease).await.unwrap();
    assert_eq!(claimed.len(), 25);
    let outcomes = doomed.publish(&claimed).await;
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, PublishOutcome::Acked { duplicate: false }))
    );
    drop(doomed);

    // While the dead relay's lease runs, nobody else takes its events.
    let survivor = Relay::new(fixture.store(), fixture.bus().js.clone(), quick(100, lease));
    assert_eq!(
        survivor.run_once().await.unwrap(),
        0,
        "the lease still holds"
    );

    // Once it lapses, the survivor publishes them again; JetStream drops every copy.
    tokio::time::sleep(lease + Duration::from_millis(200)).await;
    let again = survivor.store().claim(100, lease).await.unwrap();
    assert_eq!(again.len(), 25, "the expired lease frees the events");
    let outcomes = survivor.publish(&again).await;
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, PublishOutcome::Acked { duplicate: true })),
        "JetStream recognised every re-publish as a duplicate: {outcomes:?}"
    );
    survivor.store().mark_published(&written).await.unwrap();

    assert_exactly_once(
        &fixture.bus().stored(&fixture.bus().payments_stream()).await,
        &written,
    );
    assert!(all_published(&fixture).await);
}

pub async fn relays_killed_at_random_moments_lose_and_duplicate_nothing<F: Fixture>(fixture: F) {
    let lease = Duration::from_millis(300);
    let writer = async {
        let mut written = Vec::new();
        for _ in 0..20 {
            written.extend(fixture.write(5).await);
        }
        written
    };
    let killer = async {
        // Start a relay, let it work for a few milliseconds, abort it wherever it is: in a
        // claim, between publishing and acks, or between acks and marking.
        for round in 0..12_u64 {
            let relay = Relay::new(fixture.store(), fixture.bus().js.clone(), quick(8, lease));
            let handle = tokio::spawn(relay.run(CancellationToken::new()));
            tokio::time::sleep(Duration::from_millis(5 + (round * 7) % 23)).await;
            handle.abort();
            let _ = handle.await;
        }
    };
    let (written, ()) = tokio::join!(writer, killer);

    let stop = CancellationToken::new();
    let finisher = Relay::new(fixture.store(), fixture.bus().js.clone(), quick(50, lease));
    let finisher = tokio::spawn(finisher.run(stop.clone()));
    eventually(Duration::from_secs(30), "every event published", || async {
        all_published(&fixture).await.then_some(())
    })
    .await
    .unwrap();
    stop.cancel();
    finisher.await.unwrap();

    assert_exactly_once(
        &fixture.bus().stored(&fixture.bus().payments_stream()).await,
        &written,
    );
}

mod postgres {
    use std::collections::HashMap;

    use platform_events::outbox::postgres::{PgOutbox, migrate};
    use platform_testkit::{TestDatabase, fresh_pg_database};
    use uuid::Uuid;

    use super::Fixture;
    use crate::support::{Bus, captured_payment};

    pub struct Pg {
        bus: Bus,
        db: TestDatabase,
    }

    impl Pg {
        pub async fn new() -> Self {
            Self::with_bus(Bus::new().await).await
        }

        pub async fn with_bus(bus: Bus) -> Self {
            let db = fresh_pg_database().await.unwrap();
            migrate(&db.pool).await.unwrap();
            // Running them twice is harmless (every replica runs them at start).
            migrate(&db.pool).await.unwrap();
            sqlx::query("CREATE TABLE payments (id uuid PRIMARY KEY, amount bigint NOT NULL)")
                .execute(&db.pool)
                .await
                .unwrap();
            Self { bus, db }
        }

        pub fn pool(&self) -> &sqlx::PgPool {
            &self.db.pool
        }
    }

    impl Fixture for Pg {
        type Store = PgOutbox;

        fn bus(&self) -> &Bus {
            &self.bus
        }

        fn store(&self) -> PgOutbox {
            PgOutbox::new(self.db.pool.clone(), self.bus.namespace.clone())
        }

        async fn write(&self, count: usize) -> Vec<Uuid> {
            let outbox = self.store();
            let mut ids = Vec::new();
            for _ in 0..count {
                let event = captured_payment();
                let mut tx = self.db.pool.begin().await.unwrap();
                sqlx::query("INSERT INTO payments (id, amount) VALUES ($1, $2)")
                    .bind(event.data.payment_id)
                    .bind(event.data.amount.minor)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                outbox.enqueue(&mut *tx, &event).await.unwrap();
                tx.commit().await.unwrap();
                ids.push(event.id);
            }
            ids
        }

        async fn write_rolled_back(&self) -> Uuid {
            let event = captured_payment();
            let mut tx = self.db.pool.begin().await.unwrap();
            sqlx::query("INSERT INTO payments (id, amount) VALUES ($1, $2)")
                .bind(event.data.payment_id)
                .bind(event.data.amount.minor)
                .execute(&mut *tx)
                .await
                .unwrap();
            self.store().enqueue(&mut *tx, &event).await.unwrap();
            tx.rollback().await.unwrap();
            event.id
        }

        async fn outbox_rows(&self) -> HashMap<Uuid, (i64, bool)> {
            let rows: Vec<(Uuid, i32, bool)> =
                sqlx::query_as("SELECT id, attempts, published_at IS NOT NULL FROM event_outbox")
                    .fetch_all(&self.db.pool)
                    .await
                    .unwrap();
            rows.into_iter()
                .map(|(id, attempts, published)| (id, (i64::from(attempts), published)))
                .collect()
        }

        async fn business_rows(&self) -> i64 {
            sqlx::query_scalar("SELECT count(*) FROM payments")
                .fetch_one(&self.db.pool)
                .await
                .unwrap()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn committed_events_are_published_and_rolled_back_ones_never_are() {
        super::committed_events_are_published_and_rolled_back_ones_never_are(Pg::new().await).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pending_counts_every_committed_event_until_it_is_marked_published() {
        super::pending_counts_every_committed_event_until_it_is_marked_published(Pg::new().await)
            .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_concurrent_relays_store_every_event_exactly_once() {
        super::two_concurrent_relays_store_every_event_exactly_once(Pg::new().await).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_relay_that_dies_after_publishing_and_before_marking_causes_no_duplicate() {
        super::a_relay_that_dies_after_publishing_and_before_marking_causes_no_duplicate(
            Pg::new().await,
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn relays_killed_at_random_moments_lose_and_duplicate_nothing() {
        super::relays_killed_at_random_moments_lose_and_duplicate_nothing(Pg::new().await).await;
    }
}

mod mongo {
    use std::collections::HashMap;

    use bson::{Document, doc};
    use futures::TryStreamExt as _;
    use platform_events::outbox::mongo::MongoOutbox;
    use uuid::Uuid;

    use super::Fixture;
    use crate::support::{Bus, captured_payment};

    pub struct Mongo {
        bus: Bus,
        client: mongodb::Client,
        db: mongodb::Database,
    }

    impl Mongo {
        pub async fn new() -> Self {
            let bus = Bus::new().await;
            let client = platform_testkit::mongo_client().await.unwrap();
            let db = client.database(&platform_testkit::unique_name("test"));
            // Collections must exist before a transaction writes to them.
            db.create_collection("payments").await.unwrap();
            db.create_collection(platform_events::outbox::mongo::COLLECTION)
                .await
                .unwrap();
            let outbox = MongoOutbox::new(&db, bus.namespace.clone());
            outbox.ensure_indexes().await.unwrap();
            outbox.ensure_indexes().await.unwrap();
            Self { bus, client, db }
        }

        async fn write_one(&self, commit: bool) -> Uuid {
            let event = captured_payment();
            let mut session = self.client.start_session().await.unwrap();
            session.start_transaction().await.unwrap();
            self.db
                .collection::<Document>("payments")
                .insert_one(doc! { "_id": event.data.payment_id.to_string(), "amount": event.data.amount.minor })
                .session(&mut session)
                .await
                .unwrap();
            self.store().enqueue(&mut session, &event).await.unwrap();
            if commit {
                session.commit_transaction().await.unwrap();
            } else {
                session.abort_transaction().await.unwrap();
            }
            event.id
        }
    }

    impl Fixture for Mongo {
        type Store = MongoOutbox;

        fn bus(&self) -> &Bus {
            &self.bus
        }

        fn store(&self) -> MongoOutbox {
            MongoOutbox::new(&self.db, self.bus.namespace.clone())
        }

        async fn write(&self, count: usize) -> Vec<Uuid> {
            let mut ids = Vec::new();
            for _ in 0..count {
                ids.push(self.write_one(true).await);
            }
            ids
        }

        async fn write_rolled_back(&self) -> Uuid {
            self.write_one(false).await
        }

        async fn outbox_rows(&self) -> HashMap<Uuid, (i64, bool)> {
            let documents: Vec<Document> = self
                .db
                .collection::<Document>(platform_events::outbox::mongo::COLLECTION)
                .find(doc! {})
                .await
                .unwrap()
                .try_collect()
                .await
                .unwrap();
            documents
                .into_iter()
                .map(|document| {
                    let id = document.get_str("_id").unwrap().parse().unwrap();
                    let attempts = match document.get("attempts") {
                        Some(bson::Bson::Int32(n)) => i64::from(*n),
                        Some(bson::Bson::Int64(n)) => *n,
                        other => panic!("attempts: {other:?}"),
                    };
                    let published =
                        !matches!(document.get("published_at"), None | Some(bson::Bson::Null));
                    (id, (attempts, published))
                })
                .collect()
        }

        async fn business_rows(&self) -> i64 {
            let count = self
                .db
                .collection::<Document>("payments")
                .count_documents(doc! {})
                .await
                .unwrap();
            i64::try_from(count).unwrap()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn committed_events_are_published_and_rolled_back_ones_never_are() {
        super::committed_events_are_published_and_rolled_back_ones_never_are(Mongo::new().await)
            .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pending_counts_every_committed_event_until_it_is_marked_published() {
        super::pending_counts_every_committed_event_until_it_is_marked_published(
            Mongo::new().await,
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_concurrent_relays_store_every_event_exactly_once() {
        super::two_concurrent_relays_store_every_event_exactly_once(Mongo::new().await).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_relay_that_dies_after_publishing_and_before_marking_causes_no_duplicate() {
        super::a_relay_that_dies_after_publishing_and_before_marking_causes_no_duplicate(
            Mongo::new().await,
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn relays_killed_at_random_moments_lose_and_duplicate_nothing() {
        super::relays_killed_at_random_moments_lose_and_duplicate_nothing(Mongo::new().await).await;
    }
}

pub use postgres::Pg;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_wait_in_the_outbox_while_nats_is_down_and_go_out_once_it_is_back() {
    let nats_url = platform_testkit::url(platform_testkit::Server::Nats)
        .await
        .unwrap();
    let proxy = platform_testkit::TcpProxy::start(&nats_url).await.unwrap();
    let client = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .reconnect_delay_callback(|attempts| Duration::from_millis(50 * attempts.min(10) as u64))
        .connect(proxy.url_for(&nats_url))
        .await
        .unwrap();
    let fixture = Pg::with_bus(Bus::with_client(client).await).await;

    proxy.cut();
    let written = fixture.write(10).await;
    let relay = Relay::new(
        fixture.store(),
        fixture.bus().js.clone(),
        quick(100, Duration::from_secs(30)),
    );
    assert_eq!(
        relay.run_once().await.unwrap(),
        0,
        "nothing can be published while NATS is down"
    );
    let errors: Vec<Option<String>> =
        sqlx::query_scalar("SELECT last_error FROM event_outbox WHERE published_at IS NULL")
            .fetch_all(fixture.pool())
            .await
            .unwrap();
    assert_eq!(errors.len(), 10, "every event is still pending");
    assert!(
        errors.iter().all(Option::is_some),
        "each records why it is not out yet"
    );

    proxy.restore();
    let stop = CancellationToken::new();
    let running = tokio::spawn(relay.run(stop.clone()));
    eventually(Duration::from_secs(30), "the backlog published", || async {
        all_published(&fixture).await.then_some(())
    })
    .await
    .unwrap();
    stop.cancel();
    running.await.unwrap();

    // The publishes buffered while the connection was down may have reached the server too;
    // the stream still holds each event once.
    let stored = fixture.bus().stored(&fixture.bus().payments_stream()).await;
    assert_exactly_once(&stored, &written);
}
