//! Spawning the service on port 0 with its own database and NATS namespace, and a stand-in for
//! the user service's JWKS.

use async_nats::jetstream;
{% if consumes != "" %}use async_nats::jetstream::message::PublishMessage;
{% endif %}use platform_events::Namespace;
{% if emitted_event != "" %}use platform_events::RawEnvelope;
use platform_events::outbox::postgres::PgOutbox;
use platform_testkit::service::events;
{% endif %}use platform_testkit::fresh_pg_database;
use platform_testkit::service::{Identities, Identity, JwksStandIn, Running, http_client, localise};
use reqwest::Response;
{% if consumes != "" %}use serde_json::Value;
{% endif %}use sqlx::PgPool;
use {{crate_ident}}::{Config, Settings};

pub struct TestApp {
    pub address: String,
    pub http: reqwest::Client,
    pub pool: PgPool,
    pub namespace: Namespace,
    pub jetstream: jetstream::Context,
    /// Mints users' access tokens, as the user service would.
    pub identities: Identities,
    /// Serves the user service's key set for as long as the app runs.
    _jwks: JwksStandIn,
    /// The service, stopped when the app is dropped.
    _service: Running,
}

pub async fn spawn_app() -> TestApp {
    platform_telemetry::init_for_tests();
    platform_http::install_crypto_provider();
    let identities = Identities::new();
    let jwks = identities.serve_jwks().await;
    let db = fresh_pg_database().await.unwrap();
    let mut config = Settings::new(Config::with_database(db.url.clone()));
    localise(&mut config.common, jwks.url()).await.unwrap();
    let service = Running::start({{crate_ident}}::build(config.clone()).await.unwrap());
    let pool = PgPool::connect(config.own.database.url.expose())
        .await
        .unwrap();
    let namespace =
        Namespace::prefixed(config.common.nats.subject_prefix.as_deref().unwrap()).unwrap();
    let nats = async_nats::connect(&config.common.nats.url).await.unwrap();
    TestApp {
        address: service.url(),
        http: http_client(),
        pool,
        namespace,
        jetstream: jetstream::new(nats),
        identities,
        _jwks: jwks,
        _service: service,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// A new customer with a valid access token.
    pub fn customer(&self) -> Identity {
        self.identities.customer()
    }

    pub async fn get(&self, user: &Identity, path: &str) -> Response {
        self.http
            .get(self.url(path))
            .bearer_auth(&user.token)
            .send()
            .await
            .unwrap()
    }

    pub async fn create(&self, user: &Identity, body: &serde_json::Value) -> Response {
        self.http
            .post(self.url("/api/v1/{{resource}}"))
            .bearer_auth(&user.token)
            .json(body)
            .send()
            .await
            .unwrap()
    }
{% if emitted_event != "" %}
    /// Waits until `count` events are in the `{{events_domain}}` stream and the service's outbox
    /// has nothing left to publish, then asserts that the stream holds exactly `count`.
    pub async fn exactly_events(&self, count: usize) -> Vec<(String, RawEnvelope)> {
        let outbox = PgOutbox::new(self.pool.clone(), self.namespace.clone());
        let stream = self.namespace.domain_stream("{{events_domain}}");
        events::exactly(&outbox, &self.jetstream, &stream, count)
            .await
            .unwrap()
    }
{% endif %}{% if consumes != "" %}
    /// Publishes `payload` as an event of `event_type` (`Nats-Msg-Id` = `message_id`), once
    /// the stream exists (the service provisions it when it starts consuming).
    pub async fn publish(&self, event_type: &str, payload: Vec<u8>, message_id: &str) {
        let stream = self
            .namespace
            .domain_stream(event_type.split('.').next().unwrap());
        platform_testkit::eventually(std::time::Duration::from_secs(10), "the stream", || async {
            self.jetstream.get_stream(&stream).await.ok().map(|_| ())
        })
        .await
        .unwrap();
        self.jetstream
            .send_publish(
                self.namespace.subject(event_type),
                PublishMessage::build().payload(payload.into()).message_id(message_id),
            )
            .await
            .unwrap()
            .await
            .unwrap();
    }

    /// An envelope of `event_type` about `subject`, with `data`.
    pub fn envelope(event_type: &str, subject: &str, data: &Value) -> (String, Vec<u8>) {
        let id = uuid::Uuid::now_v7().to_string();
        let envelope = serde_json::json!({
            "id": id,
            "type": event_type,
            "source": "test",
            "time": chrono::Utc::now(),
            "subject": subject,
            "schema_version": 1,
            "data": data,
        });
        (id, serde_json::to_vec(&envelope).unwrap())
    }

    /// Waits until the service's consumers exist (it creates them once running) and have
    /// handled everything published to them.
    pub async fn drained(&self) {
        for (name, domain, _) in {{crate_ident}}::intake::SUBSCRIPTIONS {
            let stream = self.namespace.domain_stream(domain);
            platform_testkit::eventually(std::time::Duration::from_secs(10), name, || async {
                platform_testkit::service::events::consumer_info(&self.jetstream, &stream, name)
                    .await
                    .map(|_| ())
            })
            .await
            .unwrap();
        }
        platform_testkit::service::events::all_drained(&self.jetstream, &self.namespace)
            .await
            .unwrap();
    }

    /// Dead letters stored so far.
    pub async fn dead_letters(&self) -> Vec<async_nats::jetstream::message::StreamMessage> {
        platform_testkit::stream_messages(&self.jetstream, &self.namespace.dead_letter_stream())
            .await
            .unwrap()
    }
{% endif %}}
