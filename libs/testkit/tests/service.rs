//! The service-level test kit: identities against its JWKS stand-in, localised settings,
//! problem assertions, and event assertions that settle on the system's state.

use std::time::Duration;

use axum::routing::get;
use platform_auth::{JwksVerifier, Role, ServiceSecret, TokenSigner};
use platform_config::CommonSettings;
use platform_events::outbox::postgres::{PgOutbox, migrate};
use platform_events::{Envelope, Event, Namespace, Relay, RelayConfig, ensure_streams};
use platform_http::ApiError;
use platform_testkit::fresh_pg_database;
use platform_testkit::service::{
    Identities, JwksStandIn, SERVICE_SECRET, SIGNING_KEY_ID, assert_problem, events, http_client,
    localise,
};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn identities_carry_tokens_that_a_verifier_of_the_stand_in_accepts() {
    let identities = Identities::new();
    assert_eq!(identities.signer().kid(), SIGNING_KEY_ID);
    let jwks = identities.serve_jwks().await;
    let verifier = JwksVerifier::from_settings(&jwks.settings()).unwrap();

    let customer = identities.customer();
    let user = verifier.verify(&customer.token).await.unwrap();
    assert_eq!(user.user_id, customer.id);
    assert_eq!(user.email, customer.email);
    assert_eq!(user.roles, vec![Role::Customer]);

    let admin = identities.admin();
    let user = verifier.verify(&admin.token).await.unwrap();
    assert!(user.is_admin());
    assert_ne!(admin.id, customer.id, "each identity is a new user");
    assert_eq!(jwks.fetches(), 1, "the key was fetched once and cached");
}

#[tokio::test]
async fn the_jwks_stand_in_serves_the_keys_it_is_told_until_it_is_stopped() {
    let first = TokenSigner::generate("first");
    let second = TokenSigner::generate("second");
    let mut jwks = JwksStandIn::serving(&[&first]).await;
    let client = http_client();
    let kids = || async {
        let set: serde_json::Value = client
            .get(jwks.url())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        set["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|key| key["kid"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(kids().await, ["first"]);
    jwks.publish(&[&first, &second]);
    assert_eq!(kids().await, ["first", "second"]);
    assert_eq!(jwks.fetches(), 2);

    let url = jwks.url().to_owned();
    jwks.stop().await;
    assert!(
        client.get(url).send().await.is_err(),
        "refused once stopped"
    );
}

#[tokio::test]
async fn localised_settings_bind_loopback_port_zero_on_a_bus_of_their_own() {
    let mut first = CommonSettings::default();
    let mut second = CommonSettings::default();
    localise(&mut first, "http://127.0.0.1:9/jwks")
        .await
        .unwrap();
    localise(&mut second, "http://127.0.0.1:9/jwks")
        .await
        .unwrap();

    assert_eq!(
        (first.http.host.as_str(), first.http.port),
        ("127.0.0.1", Some(0))
    );
    assert_eq!(
        (first.grpc.host.as_str(), first.grpc.port),
        ("127.0.0.1", Some(0))
    );
    assert_eq!(
        first.nats.url,
        platform_testkit::url(platform_testkit::Server::Nats)
            .await
            .unwrap()
    );
    assert!(first.nats.subject_prefix.is_some());
    assert_ne!(
        first.nats.subject_prefix, second.nats.subject_prefix,
        "each test has its own subjects and streams"
    );
    assert_eq!(first.jwt.jwks_url, "http://127.0.0.1:9/jwks");
    let defaults = platform_config::JwtSettings::default();
    assert_eq!(
        (first.jwt.issuer.as_str(), first.jwt.audience.as_str()),
        (defaults.issuer.as_str(), defaults.audience.as_str()),
        "the issuer and audience Identities mint for"
    );
    let secret = first.service_auth.secret.unwrap();
    assert_eq!(secret.expose(), SERVICE_SECRET);
    ServiceSecret::new(SERVICE_SECRET).expect("long enough for the platform");
}

/// Serves `/not-found` (a platform problem) and `/plain` (a plain-text 404).
async fn problem_server() -> String {
    let app = axum::Router::new()
        .route(
            "/not-found",
            get(|| async { ApiError::NotFound("no order 42".into()) }),
        )
        .route(
            "/plain",
            get(|| async { (StatusCode::NOT_FOUND, "no order 42") }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}")
}

#[tokio::test]
async fn a_platform_problem_passes_and_comes_back_as_json() {
    let base = problem_server().await;
    let response = http_client()
        .get(format!("{base}/not-found"))
        .send()
        .await
        .unwrap();
    let body = assert_problem(response, StatusCode::NOT_FOUND, "order 42").await;
    assert_eq!(body["detail"], "no order 42");
}

#[tokio::test]
#[should_panic(expected = "does not contain `order 43`")]
async fn a_problem_with_another_detail_fails() {
    let base = problem_server().await;
    let response = http_client()
        .get(format!("{base}/not-found"))
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::NOT_FOUND, "order 43").await;
}

#[tokio::test]
#[should_panic(expected = "the status from /not-found")]
async fn a_problem_with_another_status_fails() {
    let base = problem_server().await;
    let response = http_client()
        .get(format!("{base}/not-found"))
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::GONE, "").await;
}

#[tokio::test]
#[should_panic(expected = "the content type of the 404 Not Found from /plain")]
async fn a_plain_text_error_is_no_problem() {
    let base = problem_server().await;
    let response = http_client()
        .get(format!("{base}/plain"))
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::NOT_FOUND, "").await;
}

#[derive(Debug, Serialize, Deserialize)]
struct Pinged {
    n: u32,
}

impl Event for Pinged {
    const TYPE: &'static str = "users.pinged";
}

/// A producer: an outbox in a database of its own, publishing into a namespace of its own.
struct Producer {
    outbox: PgOutbox,
    namespace: Namespace,
    jetstream: async_nats::jetstream::Context,
    pool: sqlx::PgPool,
}

impl Producer {
    async fn new() -> Self {
        let db = fresh_pg_database().await.unwrap();
        migrate(&db.pool).await.unwrap();
        let namespace = Namespace::prefixed(&platform_testkit::unique_name("t")).unwrap();
        let jetstream = async_nats::jetstream::new(platform_testkit::nats_client().await.unwrap());
        ensure_streams(&jetstream, &platform_events::platform_streams(&namespace))
            .await
            .unwrap();
        Self {
            outbox: PgOutbox::new(db.pool.clone(), namespace.clone()),
            namespace,
            jetstream,
            pool: db.pool,
        }
    }

    fn stream(&self) -> String {
        self.namespace.domain_stream("users")
    }

    /// Writes `count` events to the outbox, committed.
    async fn write(&self, count: u32) {
        for n in 0..count {
            let event = Envelope::new("test", &n, Pinged { n });
            self.outbox.enqueue(&self.pool, &event).await.unwrap();
        }
    }

    /// Runs a relay until it is stopped.
    fn relay(&self) -> RunningRelay {
        let stop = CancellationToken::new();
        let relay = Relay::new(
            PgOutbox::new(self.pool.clone(), self.namespace.clone()),
            self.jetstream.clone(),
            RelayConfig {
                poll_interval: Duration::from_millis(50),
                ..RelayConfig::default()
            },
        );
        let task = tokio::spawn(relay.run(stop.clone()));
        RunningRelay { stop, task }
    }
}

/// A relay running in the background.
struct RunningRelay {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl RunningRelay {
    /// Stops it and waits until it has: a round it was in (a claim racing a new event's
    /// commit) is over, so nothing written afterwards is published by it.
    async fn stop(self) {
        self.stop.cancel();
        self.task.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_is_not_settled_while_its_producer_has_events_to_publish() {
    let producer = Producer::new().await;
    producer.write(3).await;

    let error = events::settled_within(
        Duration::from_millis(300),
        &producer.outbox,
        &producer.jetstream,
        &producer.stream(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("the outbox still has 3 events to publish"),
        "{error}"
    );

    let relay = producer.relay();
    let stored = events::settled(&producer.outbox, &producer.jetstream, &producer.stream())
        .await
        .unwrap();
    assert_eq!(stored.len(), 3, "every event written, once");
    assert!(
        stored
            .iter()
            .all(|message| events::event_type(message).as_deref() == Some("users.pinged"))
    );
    relay.stop().await;

    // A later event unsettles the stream again until it is out too.
    producer.write(1).await;
    let error = events::settled_within(
        Duration::from_millis(300),
        &producer.outbox,
        &producer.jetstream,
        &producer.stream(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("the outbox still has 1 events to publish"),
        "{error}"
    );
    let _relay = producer.relay();
    let stored = events::settled(&producer.outbox, &producer.jetstream, &producer.stream())
        .await
        .unwrap();
    assert_eq!(stored.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_holds_only_when_no_further_event_is_coming() {
    let producer = Producer::new().await;
    let _relay = producer.relay();
    producer.write(2).await;
    let events = events::exactly(&producer.outbox, &producer.jetstream, &producer.stream(), 2)
        .await
        .unwrap();
    let types: Vec<&str> = events.iter().map(|(kind, _)| kind.as_str()).collect();
    assert_eq!(types, ["users.pinged", "users.pinged"]);

    // One more, published after the count was first reached, is not missed.
    producer.write(1).await;
    let error = events::exactly(&producer.outbox, &producer.jetstream, &producer.stream(), 2)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("holds 3 events, not 2"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_that_wrote_nothing_is_settled_with_nothing() {
    let producer = Producer::new().await;
    let stored = events::settled(&producer.outbox, &producer.jetstream, "NO_SUCH_STREAM")
        .await
        .unwrap();
    assert!(stored.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_events_counts_those_of_the_type_asked_for() {
    let producer = Producer::new().await;
    let _relay = producer.relay();
    producer.write(2).await;
    let other = Envelope::new("test", &"x", Pinged { n: 9 });
    let mut other = other.to_raw().unwrap();
    "users.other".clone_into(&mut other.event_type);
    producer
        .outbox
        .enqueue(&producer.pool, &other)
        .await
        .unwrap();

    let stored = events::wait_for(&producer.jetstream, &producer.stream(), "users.pinged", 2)
        .await
        .unwrap();
    assert!(stored.len() >= 2);
    let stored = events::wait_for(&producer.jetstream, &producer.stream(), "users.other", 1)
        .await
        .unwrap();
    assert_eq!(
        stored
            .iter()
            .filter(|message| events::event_type(message).as_deref() == Some("users.other"))
            .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_is_drained_once_it_has_acknowledged_everything() {
    use async_nats::jetstream::consumer::pull;
    use futures::StreamExt as _;

    let producer = Producer::new().await;
    let _relay = producer.relay();
    producer.write(1).await;
    let stream = producer
        .jetstream
        .get_stream(producer.stream())
        .await
        .unwrap();
    let consumer = stream
        .create_consumer(pull::Config {
            durable_name: Some("reader".to_owned()),
            ..pull::Config::default()
        })
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let message = messages.next().await.unwrap().unwrap();
    let mut info = stream.get_consumer::<pull::Config>("reader").await.unwrap();
    assert_eq!(
        info.info().await.unwrap().num_ack_pending,
        1,
        "delivered, not acknowledged yet"
    );

    message.ack().await.unwrap();
    events::drained(&producer.jetstream, &producer.stream(), "reader")
        .await
        .unwrap();
    events::all_drained(&producer.jetstream, &producer.namespace)
        .await
        .unwrap();
}
