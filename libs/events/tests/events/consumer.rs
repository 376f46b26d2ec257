//! Idempotent consumers: inbox, retries, dead letters, graceful stop.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::consumer::pull;
use async_nats::jetstream::message::PublishMessage;
use platform_events::consumer::dead_letter_headers as dlq;
use platform_events::consumer::postgres::PgInbox;
use platform_events::{
    Consumer, ConsumerConfig, Envelope, EventHandler, HandlerError, Inbox, ReceivedEvent,
};
use platform_testkit::{TestDatabase, eventually, fresh_pg_database};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::support::{Bus, PaymentCaptured, captured_payment};

/// What the test handler does on the n-th call for an event.
#[derive(Clone, Copy, Debug)]
pub enum Decision {
    Succeed,
    SleepThenSucceed(Duration),
    Transient,
    Permanent,
}

type Decide = dyn Fn(Uuid, u32) -> Decision + Send + Sync;

/// Counts handler calls per event and lets the test decide each call's fate.
pub struct Script {
    decide: Box<Decide>,
    calls: Mutex<HashMap<Uuid, u32>>,
    started: Notify,
}

impl Script {
    pub fn new(decide: impl Fn(Uuid, u32) -> Decision + Send + Sync + 'static) -> Arc<Self> {
        Arc::new(Self {
            decide: Box::new(decide),
            calls: Mutex::new(HashMap::new()),
            started: Notify::new(),
        })
    }

    pub fn always_succeed() -> Arc<Self> {
        Self::new(|_, _| Decision::Succeed)
    }

    pub fn calls(&self, event_id: Uuid) -> u32 {
        self.calls
            .lock()
            .unwrap()
            .get(&event_id)
            .copied()
            .unwrap_or(0)
    }

    pub fn total_calls(&self) -> u32 {
        self.calls.lock().unwrap().values().sum()
    }

    async fn run(&self, event: &ReceivedEvent) -> Result<Envelope<PaymentCaptured>, HandlerError> {
        let id = event.envelope.id;
        let call = {
            let mut calls = self.calls.lock().unwrap();
            let count = calls.entry(id).or_default();
            *count += 1;
            *count
        };
        self.started.notify_one();
        let payment = event.decode::<PaymentCaptured>()?;
        match (self.decide)(id, call) {
            Decision::Succeed => {}
            Decision::SleepThenSucceed(pause) => tokio::time::sleep(pause).await,
            Decision::Transient => {
                return Err(HandlerError::Transient(anyhow::anyhow!(
                    "still broken (call {call})"
                )));
            }
            Decision::Permanent => {
                return Err(HandlerError::Permanent(anyhow::anyhow!("cannot ever work")));
            }
        }
        Ok(payment)
    }
}

/// Counts inbox look-ups, to see how many deliveries reached the consumer.
pub struct CountingInbox<I> {
    inner: I,
    records: Arc<Mutex<u32>>,
}

impl<I: Inbox> Inbox for CountingInbox<I> {
    type Tx = I::Tx;

    async fn begin(&self) -> anyhow::Result<Self::Tx> {
        self.inner.begin().await
    }

    async fn record(
        &self,
        tx: &mut Self::Tx,
        consumer: &str,
        event_id: Uuid,
    ) -> anyhow::Result<bool> {
        *self.records.lock().unwrap() += 1;
        self.inner.record(tx, consumer, event_id).await
    }

    async fn commit(&self, tx: Self::Tx) -> anyhow::Result<()> {
        self.inner.commit(tx).await
    }

    async fn abort(&self, tx: Self::Tx) {
        self.inner.abort(tx).await;
    }

    async fn purge(&self, consumer: &str, older_than: Duration) -> anyhow::Result<u64> {
        self.inner.purge(consumer, older_than).await
    }
}

/// Writes one `effects` row per processed payment, in the inbox transaction.
struct PgEffects(Arc<Script>);

impl<I: Inbox<Tx = sqlx::Transaction<'static, sqlx::Postgres>>> EventHandler<I> for PgEffects {
    async fn handle(&self, event: &ReceivedEvent, tx: &mut I::Tx) -> Result<(), HandlerError> {
        let payment = self.0.run(event).await?;
        sqlx::query("INSERT INTO effects (event_id, amount) VALUES ($1, $2)")
            .bind(payment.id)
            .bind(payment.data.amount.minor)
            .execute(&mut **tx)
            .await
            .map_err(|error| HandlerError::Transient(error.into()))?;
        Ok(())
    }
}

fn quick_config(bus: &Bus, name: &str) -> ConsumerConfig {
    let mut config = ConsumerConfig::new(
        name,
        &bus.payments_stream(),
        vec![bus.namespace.subject("payments.captured")],
    );
    config.max_attempts = 3;
    config.backoff = vec![Duration::from_millis(50), Duration::from_millis(100)];
    config.ack_wait = Duration::from_secs(5);
    config
}

async fn publish_bytes(bus: &Bus, payload: Vec<u8>, message_id: &str) {
    bus.js
        .send_publish(
            bus.namespace.subject("payments.captured"),
            PublishMessage::build()
                .payload(payload.into())
                .message_id(message_id),
        )
        .await
        .unwrap()
        .await
        .unwrap();
}

async fn publish(bus: &Bus, event: &Envelope<PaymentCaptured>) {
    publish_bytes(
        bus,
        serde_json::to_vec(event).unwrap(),
        &event.id.to_string(),
    )
    .await;
}

/// Waits until the durable consumer has nothing pending or unacknowledged.
async fn drained(bus: &Bus, name: &str) {
    eventually(Duration::from_secs(20), "the consumer to drain", || async {
        let mut consumer = bus
            .js
            .get_stream(bus.payments_stream())
            .await
            .ok()?
            .get_consumer::<pull::Config>(name)
            .await
            .ok()?;
        let info = consumer.info().await.ok()?;
        (info.num_pending == 0 && info.num_ack_pending == 0).then_some(())
    })
    .await
    .unwrap();
}

struct PgConsumerFixture {
    bus: Bus,
    db: TestDatabase,
    stop: CancellationToken,
    records: Arc<Mutex<u32>>,
    name: String,
    replayer: Arc<dyn platform_events::Replay>,
}

impl PgConsumerFixture {
    async fn start(script: &Arc<Script>, configure: impl FnOnce(&mut ConsumerConfig)) -> Self {
        let bus = Bus::new().await;
        let db = fresh_pg_database().await.unwrap();
        platform_events::outbox::postgres::migrate(&db.pool)
            .await
            .unwrap();
        sqlx::query("CREATE TABLE effects (id bigserial PRIMARY KEY, event_id uuid NOT NULL, amount bigint NOT NULL)")
            .execute(&db.pool)
            .await
            .unwrap();
        let name = "payments-ledger".to_owned();
        let mut config = quick_config(&bus, &name);
        configure(&mut config);
        let records = Arc::new(Mutex::new(0));
        let inbox = CountingInbox {
            inner: PgInbox::new(db.pool.clone()),
            records: Arc::clone(&records),
        };
        let consumer = Consumer::new(
            bus.js.clone(),
            bus.namespace.clone(),
            config,
            inbox,
            PgEffects(Arc::clone(script)),
        );
        consumer.provision().await.unwrap();
        let replayer = consumer.replayer();
        let stop = CancellationToken::new();
        tokio::spawn(consumer.run(stop.clone()));
        Self {
            bus,
            db,
            stop,
            records,
            name,
            replayer,
        }
    }

    async fn effects(&self, event_id: Uuid) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM effects WHERE event_id = $1")
            .bind(event_id)
            .fetch_one(&self.db.pool)
            .await
            .unwrap()
    }

    async fn inbox_rows(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM event_inbox WHERE consumer = $1")
            .bind(&self.name)
            .fetch_one(&self.db.pool)
            .await
            .unwrap()
    }

    async fn wait_for_effect(&self, event_id: Uuid) {
        eventually(Duration::from_secs(20), "the event's effect", || async {
            (self.effects(event_id).await > 0).then_some(())
        })
        .await
        .unwrap();
    }

    fn deliveries(&self) -> u32 {
        *self.records.lock().unwrap()
    }
}

impl Drop for PgConsumerFixture {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_published_twice_is_processed_once() {
    let script = Script::always_succeed();
    let fixture = PgConsumerFixture::start(&script, |_| {}).await;
    let event = captured_payment();
    // The same event under two message ids: what a re-publish after the duplicate window
    // looks like to a consumer.
    publish(&fixture.bus, &event).await;
    publish_bytes(
        &fixture.bus,
        serde_json::to_vec(&event).unwrap(),
        "another-message-id",
    )
    .await;

    fixture.wait_for_effect(event.id).await;
    drained(&fixture.bus, &fixture.name).await;
    assert_eq!(fixture.deliveries(), 2, "both copies reached the consumer");
    assert_eq!(fixture.effects(event.id).await, 1);
    assert_eq!(script.calls(event.id), 1, "the handler ran once");
    assert_eq!(fixture.inbox_rows().await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivery_while_the_first_delivery_is_still_running_changes_nothing() {
    // The first call outlasts the ack wait, so JetStream redelivers the event to the other
    // worker while the first still holds its inbox row.
    let script = Script::new(|_, call| {
        if call == 1 {
            Decision::SleepThenSucceed(Duration::from_millis(1800))
        } else {
            Decision::Succeed
        }
    });
    let fixture = PgConsumerFixture::start(&script, |config| {
        config.ack_wait = Duration::from_secs(1);
        config.concurrency = 2;
    })
    .await;
    let event = captured_payment();
    publish(&fixture.bus, &event).await;

    drained(&fixture.bus, &fixture.name).await;
    fixture.wait_for_effect(event.id).await;
    assert!(
        fixture.deliveries() >= 2,
        "the event was redelivered ({} deliveries)",
        fixture.deliveries()
    );
    assert_eq!(fixture.effects(event.id).await, 1, "processed once");
    assert_eq!(script.calls(event.id), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_failure_is_retried_with_backoff_and_then_processed_once() {
    let script = Script::new(|_, call| {
        if call < 3 {
            Decision::Transient
        } else {
            Decision::Succeed
        }
    });
    let fixture = PgConsumerFixture::start(&script, |_| {}).await;
    let event = captured_payment();
    publish(&fixture.bus, &event).await;

    fixture.wait_for_effect(event.id).await;
    drained(&fixture.bus, &fixture.name).await;
    assert_eq!(script.calls(event.id), 3, "two failures, then success");
    assert_eq!(
        fixture.effects(event.id).await,
        1,
        "the failed attempts left nothing behind"
    );
    assert!(
        fixture
            .bus
            .stored(&fixture.bus.dead_letters_stream())
            .await
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_event_is_dead_lettered_after_max_attempts_and_the_events_behind_it_are_processed()
{
    let poison = captured_payment();
    let poison_id = poison.id;
    let script = Script::new(move |id, _| {
        if id == poison_id {
            Decision::Transient
        } else {
            Decision::Succeed
        }
    });
    let fixture = PgConsumerFixture::start(&script, |_| {}).await;
    let healthy = captured_payment();
    publish(&fixture.bus, &poison).await;
    publish(&fixture.bus, &healthy).await;

    fixture.wait_for_effect(healthy.id).await;
    drained(&fixture.bus, &fixture.name).await;
    assert_eq!(
        script.calls(poison.id),
        3,
        "max_attempts deliveries, no more"
    );
    assert_eq!(fixture.effects(poison.id).await, 0);

    let dead = fixture.bus.stored(&fixture.bus.dead_letters_stream()).await;
    assert_eq!(dead.len(), 1);
    let letter = &dead[0];
    assert_eq!(
        letter.subject.as_str(),
        fixture
            .bus
            .namespace
            .dead_letter_subject(&fixture.name, "payments.captured")
    );
    assert_eq!(
        letter.payload.as_ref(),
        serde_json::to_vec(&poison).unwrap().as_slice(),
        "the event is kept whole"
    );
    let header = |name: &str| {
        letter
            .headers
            .get(name)
            .map(ToString::to_string)
            .unwrap_or_default()
    };
    assert_eq!(header(dlq::CONSUMER), fixture.name);
    assert_eq!(header(dlq::DELIVERIES), "3");
    assert_eq!(
        header(dlq::ORIGINAL_SUBJECT),
        fixture.bus.namespace.subject("payments.captured")
    );
    assert!(
        header(dlq::ERROR).contains("still broken (call 3)"),
        "{}",
        header(dlq::ERROR)
    );
    // Nothing is lost: the original stays in its stream as well.
    assert_eq!(
        fixture
            .bus
            .stored(&fixture.bus.payments_stream())
            .await
            .len(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_message_is_dead_lettered_at_once_and_does_not_block_the_stream() {
    let script = Script::always_succeed();
    let fixture = PgConsumerFixture::start(&script, |_| {}).await;
    publish_bytes(
        &fixture.bus,
        b"{\"this\": is not json".to_vec(),
        "garbage-1",
    )
    .await;
    let healthy = captured_payment();
    publish(&fixture.bus, &healthy).await;

    fixture.wait_for_effect(healthy.id).await;
    drained(&fixture.bus, &fixture.name).await;
    assert_eq!(script.total_calls(), 1, "the handler never saw the garbage");
    let dead = fixture.bus.stored(&fixture.bus.dead_letters_stream()).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].payload.as_ref(), b"{\"this\": is not json");
    assert_eq!(dead[0].headers.get(dlq::DELIVERIES).unwrap().as_str(), "1");
    assert!(
        dead[0]
            .headers
            .get(dlq::ERROR)
            .unwrap()
            .as_str()
            .contains("not an event envelope")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_error_is_dead_lettered_without_retries() {
    let script = Script::new(|_, _| Decision::Permanent);
    let fixture = PgConsumerFixture::start(&script, |_| {}).await;
    let event = captured_payment();
    publish(&fixture.bus, &event).await;

    drained(&fixture.bus, &fixture.name).await;
    eventually(Duration::from_secs(10), "the dead letter", || async {
        (fixture
            .bus
            .stored(&fixture.bus.dead_letters_stream())
            .await
            .len()
            == 1)
            .then_some(())
    })
    .await
    .unwrap();
    assert_eq!(script.calls(event.id), 1);
    assert_eq!(fixture.effects(event.id).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_dead_letter_goes_through_the_handler_once_and_is_then_gone() {
    // Refused the first time, fine afterwards (the cause was fixed).
    let script = Script::new(|_, call| {
        if call == 1 {
            Decision::Permanent
        } else {
            Decision::Succeed
        }
    });
    let fixture = PgConsumerFixture::start(&script, |_| {}).await;
    let event = captured_payment();
    publish(&fixture.bus, &event).await;
    drained(&fixture.bus, &fixture.name).await;
    let mut letters =
        platform_events::DeadLetters::new(fixture.bus.js.clone(), fixture.bus.namespace.clone());
    letters.add_replay(&fixture.name, Arc::clone(&fixture.replayer));
    let page = eventually(Duration::from_secs(10), "the dead letter", || async {
        let page = letters
            .list(&platform_events::dead_letters::Filter {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        (page.items.len() == 1).then_some(page)
    })
    .await
    .unwrap();
    let sequence = page.items[0].sequence;
    assert_eq!(page.items[0].stream, "PAYMENTS");
    assert_eq!(fixture.effects(event.id).await, 0);

    // Two operators replay it at once: the handler's effect happens once.
    let (first, second) = tokio::join!(letters.replay(sequence), letters.replay(sequence));
    let outcomes = [first, second];
    let processed = outcomes
        .iter()
        .filter(|outcome| matches!(outcome, Ok(platform_events::Replayed::Processed)))
        .count();
    assert_eq!(processed, 1, "{outcomes:?}");
    assert!(
        outcomes.iter().all(|outcome| matches!(
            outcome,
            Ok(_) | Err(platform_events::dead_letters::DeadLetterError::NotFound(_))
        )),
        "{outcomes:?}"
    );
    assert_eq!(fixture.effects(event.id).await, 1);
    // Deleted once replayed.
    assert!(matches!(
        letters.replay(sequence).await,
        Err(platform_events::dead_letters::DeadLetterError::NotFound(_))
    ));
    assert!(
        fixture
            .bus
            .stored(&fixture.bus.dead_letters_stream())
            .await
            .is_empty()
    );

    // Replaying a copy of an event processed meanwhile does nothing more.
    let copy = platform_events::DeadLetter {
        sequence: 0,
        consumer: fixture.name.clone(),
        event_type: "payments.captured".to_owned(),
        stream: "PAYMENTS".to_owned(),
        error: String::new(),
        original_subject: None,
        original_sequence: None,
        deliveries: None,
        time: chrono::Utc::now(),
        headers: std::collections::BTreeMap::new(),
        payload: serde_json::to_vec(&event).unwrap().into(),
    };
    assert_eq!(
        fixture.replayer.replay(&copy).await.unwrap(),
        platform_events::Replayed::AlreadyDone
    );
    assert_eq!(fixture.effects(event.id).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_that_cannot_be_dead_lettered_stays_in_its_stream_until_it_can() {
    let script = Script::new(|_, _| Decision::Transient);
    let fixture = PgConsumerFixture::start(&script, |_| {}).await;
    let dead_letters = fixture.bus.dead_letters_stream();
    fixture.bus.js.delete_stream(&dead_letters).await.unwrap();
    let event = captured_payment();
    publish(&fixture.bus, &event).await;

    // Attempts run out, the dead-letter copy cannot be stored, so the event is nak'ed, not acked.
    eventually(
        Duration::from_secs(10),
        "attempts beyond the maximum",
        || async { (script.calls(event.id) >= 5).then_some(()) },
    )
    .await
    .unwrap();

    platform_events::ensure_streams(
        &fixture.bus.js,
        &platform_events::platform_streams(&fixture.bus.namespace),
    )
    .await
    .unwrap();
    drained(&fixture.bus, &fixture.name).await;
    let dead = fixture.bus.stored(&dead_letters).await;
    assert_eq!(dead.len(), 1, "dead-lettered once the stream was back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_consumer_finishes_the_event_in_hand() {
    let script = Script::new(|_, _| Decision::SleepThenSucceed(Duration::from_millis(700)));
    let bus = Bus::new().await;
    let db = fresh_pg_database().await.unwrap();
    platform_events::outbox::postgres::migrate(&db.pool)
        .await
        .unwrap();
    sqlx::query("CREATE TABLE effects (id bigserial PRIMARY KEY, event_id uuid NOT NULL, amount bigint NOT NULL)")
        .execute(&db.pool)
        .await
        .unwrap();
    let consumer = Consumer::new(
        bus.js.clone(),
        bus.namespace.clone(),
        quick_config(&bus, "stopper"),
        PgInbox::new(db.pool.clone()),
        PgEffects(Arc::clone(&script)),
    );
    let stop = CancellationToken::new();
    let running = tokio::spawn(consumer.run(stop.clone()));
    let event = captured_payment();
    publish(&bus, &event).await;

    script.started.notified().await;
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the consumer stops once the event in hand is done")
        .unwrap()
        .unwrap();

    let effects: i64 = sqlx::query_scalar("SELECT count(*) FROM effects")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(effects, 1, "the event in hand was finished");
    drained(&bus, "stopper").await;

    // Stopped means stopped: the consumer has let go of its handler, so nothing can call it any
    // more, and a later event waits in the durable consumer for the next run.
    assert_eq!(
        Arc::strong_count(&script),
        1,
        "the stopped consumer dropped its handler"
    );
    let later = captured_payment();
    publish(&bus, &later).await;
    eventually(
        Duration::from_secs(10),
        "the later event to wait in the consumer",
        || async {
            let info = bus
                .js
                .get_stream(bus.payments_stream())
                .await
                .ok()?
                .get_consumer::<pull::Config>("stopper")
                .await
                .ok()?
                .info()
                .await
                .ok()?
                .clone();
            (info.num_pending + info.num_ack_pending as u64 == 1).then_some(())
        },
    )
    .await
    .unwrap();
    assert_eq!(script.calls(later.id), 0);
}

mod mongo {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use bson::{Document, doc};
    use mongodb::ClientSession;
    use platform_events::consumer::mongo::MongoInbox;
    use platform_events::{Consumer, EventHandler, HandlerError, Inbox, ReceivedEvent};
    use platform_testkit::eventually;
    use tokio_util::sync::CancellationToken;

    use super::{CountingInbox, Decision, Script, drained, publish, publish_bytes, quick_config};
    use crate::support::{Bus, captured_payment};

    /// Writes one `effects` document per processed payment, in the inbox transaction.
    struct MongoEffects {
        script: Arc<Script>,
        db: mongodb::Database,
    }

    impl<I: Inbox<Tx = ClientSession>> EventHandler<I> for MongoEffects {
        async fn handle(
            &self,
            event: &ReceivedEvent,
            tx: &mut ClientSession,
        ) -> Result<(), HandlerError> {
            let payment = self.script.run(event).await?;
            self.db
                .collection::<Document>("effects")
                .insert_one(doc! { "event_id": payment.id.to_string(), "amount": payment.data.amount.minor })
                .session(&mut *tx)
                .await
                .map_err(|error| HandlerError::Transient(error.into()))?;
            Ok(())
        }
    }

    struct Fixture {
        bus: Bus,
        db: mongodb::Database,
        stop: CancellationToken,
        records: Arc<Mutex<u32>>,
    }

    impl Fixture {
        async fn start(
            script: &Arc<Script>,
            configure: impl FnOnce(&mut platform_events::ConsumerConfig),
        ) -> Self {
            let bus = Bus::new().await;
            let client = platform_testkit::mongo_client().await.unwrap();
            let db = client.database(&platform_testkit::unique_name("test"));
            db.create_collection("effects").await.unwrap();
            db.create_collection(platform_events::consumer::mongo::COLLECTION)
                .await
                .unwrap();
            let inbox = MongoInbox::new(client, &db);
            inbox.ensure_indexes().await.unwrap();
            let records = Arc::new(Mutex::new(0));
            let mut config = quick_config(&bus, "payments-ledger");
            configure(&mut config);
            let consumer = Consumer::new(
                bus.js.clone(),
                bus.namespace.clone(),
                config,
                CountingInbox {
                    inner: inbox,
                    records: Arc::clone(&records),
                },
                MongoEffects {
                    script: Arc::clone(script),
                    db: db.clone(),
                },
            );
            consumer.provision().await.unwrap();
            let stop = CancellationToken::new();
            tokio::spawn(consumer.run(stop.clone()));
            Self {
                bus,
                db,
                stop,
                records,
            }
        }

        async fn effects(&self, event_id: uuid::Uuid) -> u64 {
            self.db
                .collection::<Document>("effects")
                .count_documents(doc! { "event_id": event_id.to_string() })
                .await
                .unwrap()
        }

        async fn wait_for_effect(&self, event_id: uuid::Uuid) {
            eventually(Duration::from_secs(20), "the event's effect", || async {
                (self.effects(event_id).await > 0).then_some(())
            })
            .await
            .unwrap();
        }
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            self.stop.cancel();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_event_published_twice_is_processed_once() {
        let script = Script::always_succeed();
        let fixture = Fixture::start(&script, |_| {}).await;
        let event = captured_payment();
        publish(&fixture.bus, &event).await;
        publish_bytes(
            &fixture.bus,
            serde_json::to_vec(&event).unwrap(),
            "another-message-id",
        )
        .await;

        fixture.wait_for_effect(event.id).await;
        drained(&fixture.bus, "payments-ledger").await;
        assert_eq!(
            *fixture.records.lock().unwrap(),
            2,
            "both copies reached the consumer"
        );
        assert_eq!(fixture.effects(event.id).await, 1);
        assert_eq!(script.calls(event.id), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_redelivery_while_the_first_delivery_is_still_running_changes_nothing() {
        let script = Script::new(|_, call| {
            if call == 1 {
                Decision::SleepThenSucceed(Duration::from_millis(1800))
            } else {
                Decision::Succeed
            }
        });
        let fixture = Fixture::start(&script, |config| {
            config.ack_wait = Duration::from_secs(1);
            config.concurrency = 2;
        })
        .await;
        let event = captured_payment();
        publish(&fixture.bus, &event).await;

        drained(&fixture.bus, "payments-ledger").await;
        fixture.wait_for_effect(event.id).await;
        assert!(
            *fixture.records.lock().unwrap() >= 2,
            "the event was redelivered"
        );
        assert_eq!(fixture.effects(event.id).await, 1, "processed once");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_transient_failure_rolls_back_and_is_retried() {
        let script = Script::new(|_, call| {
            if call < 2 {
                Decision::Transient
            } else {
                Decision::Succeed
            }
        });
        let fixture = Fixture::start(&script, |_| {}).await;
        let event = captured_payment();
        publish(&fixture.bus, &event).await;

        fixture.wait_for_effect(event.id).await;
        drained(&fixture.bus, "payments-ledger").await;
        assert_eq!(script.calls(event.id), 2);
        assert_eq!(fixture.effects(event.id).await, 1);
    }

    /// Every event fails once and is redelivered, one message at a time: each redelivery must
    /// reach the consumer's next pull. (A long-lived pull whose count of pending messages drifts
    /// leaves the consumer waiting for the pull's expiry, tens of seconds, now and then.)
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_consumer_taking_one_message_at_a_time_never_stalls_between_redeliveries() {
        let script = Script::new(|_, call| {
            if call < 2 {
                Decision::Transient
            } else {
                Decision::Succeed
            }
        });
        let fixture = Fixture::start(&script, |_| {}).await;
        let events: Vec<_> = (0..100).map(|_| captured_payment()).collect();
        for event in &events {
            publish(&fixture.bus, event).await;
        }
        let effects = fixture.db.collection::<Document>("effects");
        eventually(Duration::from_secs(20), "every event's effect", || async {
            let count = effects.count_documents(doc! {}).await.ok()?;
            (count == events.len() as u64).then_some(())
        })
        .await
        .unwrap();
        drained(&fixture.bus, "payments-ledger").await;
        for event in &events {
            assert_eq!(script.calls(event.id), 2, "failed once, then processed");
        }
    }
}
