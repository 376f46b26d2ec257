//! The notification service and the user service, each on port 0 with its own database, on one
//! NATS namespace; the mail catcher for what was sent.

use std::time::Duration;

use async_nats::jetstream::{self, message::PublishMessage};
use notification_service::{Config, Settings};
use platform_auth::TokenSigner;
use platform_config::{JwtSettings, Secret};
use platform_events::outbox::postgres::PgOutbox;
use platform_events::{Envelope, Event, Namespace};
use platform_testkit::mail::{CapturedMail, wait_for_mail};
use platform_testkit::service::{
    Identities, Identity, PASSWORD, Running, events, http_client, localise,
};
use platform_testkit::{
    Server, TestDatabase, eventually, fresh_pg_database, stream_messages, unique_name, url,
};
use serde::Serialize;
use serde_json::{Value, json};

pub struct TestApp {
    pub users_address: String,
    pub notifications_address: String,
    pub db: TestDatabase,
    /// The user service's database, where its outbox is.
    pub users_db: TestDatabase,
    pub namespace: Namespace,
    pub jetstream: jetstream::Context,
    pub admin_email: String,
    pub http: reqwest::Client,
    /// Mints tokens the services accept (with the user service's key), e.g. administrators'.
    pub identities: Identities,
    /// Both services, stopped when the app is dropped.
    _services: [Running; 2],
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Both services, the notification service's configuration adjusted by `customise`.
pub async fn spawn_app_with(customise: impl FnOnce(&mut Settings)) -> TestApp {
    platform_telemetry::init_for_tests();
    platform_http::install_crypto_provider();

    let user_db = fresh_pg_database().await.unwrap();
    let mut users =
        user_service::Settings::new(user_service::Config::with_database(user_db.url.clone()));
    // It verifies its own tokens with the keys it preloads: the JWKS URL keeps its default.
    localise(&mut users.common, &JwtSettings::default().jwks_url)
        .await
        .unwrap();
    let signing_key = TokenSigner::generate_pkcs8_pem();
    let identities = Identities::with_signer(
        TokenSigner::from_pkcs8_pem(users.own.tokens.signing_key_id.clone(), &signing_key).unwrap(),
    );
    users.own.tokens.signing_key_pem = Some(Secret::new(signing_key));
    let user_service = Running::start(user_service::build(users.clone()).await.unwrap());
    let (users_address, users_grpc) = (user_service.url(), user_service.grpc_url());

    let db = fresh_pg_database().await.unwrap();
    let admin_email = format!("{}@example.com", unique_name("ops"));
    let mut config = Settings::new(Config::with_database(db.url.clone()));
    localise(
        &mut config.common,
        &format!("{users_address}/.well-known/jwks.json"),
    )
    .await
    .unwrap();
    // One bus for both services.
    config.common.nats = users.common.nats.clone();
    config
        .common
        .jwt
        .issuer
        .clone_from(&users.own.tokens.issuer);
    config
        .common
        .jwt
        .audience
        .clone_from(&users.own.tokens.audience);
    config.own.user.url = Some(users_grpc);
    config.own.smtp.url = Secret::new(url(Server::Smtp).await.unwrap());
    config.own.delivery.admin_email.clone_from(&admin_email);
    config.own.delivery.retry_base_ms = 100;
    config.own.delivery.poll_interval_ms = 50;
    customise(&mut config);
    let notifications = Running::start(notification_service::build(config).await.unwrap());
    let notifications_address = notifications.url();

    let nats = async_nats::connect(&users.common.nats.url).await.unwrap();
    TestApp {
        users_address,
        notifications_address,
        db,
        users_db: user_db,
        namespace: Namespace::from_prefix(users.common.nats.subject_prefix.as_deref()).unwrap(),
        jetstream: jetstream::new(nats),
        admin_email,
        http: http_client(),
        identities,
        _services: [user_service, notifications],
    }
}

impl TestApp {
    /// Registers a user with the user service (which emits `users.registered`) and logs in.
    pub async fn register(&self, display_name: &str) -> Identity {
        self.register_with_email(
            &format!("{}@example.com", unique_name("user")),
            display_name,
        )
        .await
    }

    pub async fn register_with_email(&self, email: &str, display_name: &str) -> Identity {
        let response = self
            .http
            .post(format!("{}/api/v1/auth/register", self.users_address))
            .json(&json!({"email": email, "password": PASSWORD, "display_name": display_name}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        let user: Value = response.json().await.unwrap();
        let tokens: Value = self
            .http
            .post(format!("{}/api/v1/auth/login", self.users_address))
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Identity {
            id: user["id"].as_str().unwrap().parse().unwrap(),
            email: email.to_owned(),
            token: tokens["access_token"].as_str().unwrap().to_owned(),
        }
    }

    /// Publishes an event as its producer's relay would (message id = event id).
    pub async fn publish<T: Event + Serialize>(&self, event: &Envelope<T>) {
        self.publish_bytes(
            &event.event_type,
            serde_json::to_vec(event).unwrap(),
            &event.id.to_string(),
        )
        .await;
    }

    pub async fn publish_bytes(&self, event_type: &str, payload: Vec<u8>, message_id: &str) {
        platform_testkit::eventually(Duration::from_secs(10), "the streams", || async {
            self.jetstream
                .get_stream(
                    self.namespace
                        .domain_stream(event_type.split('.').next().unwrap()),
                )
                .await
                .ok()
                .map(|_| ())
        })
        .await
        .unwrap();
        self.jetstream
            .send_publish(
                self.namespace.subject(event_type),
                PublishMessage::build()
                    .payload(payload.into())
                    .message_id(message_id),
            )
            .await
            .unwrap()
            .await
            .unwrap();
    }

    /// Dead letters stored so far (subject, payload, headers).
    pub async fn dead_letters(&self) -> Vec<async_nats::jetstream::message::StreamMessage> {
        stream_messages(&self.jetstream, &self.namespace.dead_letter_stream())
            .await
            .unwrap()
    }

    /// Waits for `count` messages to `address`, then until nothing more can be sent (see
    /// [`TestApp::settled`]), and asserts there are exactly `count`.
    pub async fn mail_to(&self, address: &str, count: usize) -> Vec<CapturedMail> {
        wait_for_mail(address, count, Duration::from_secs(20))
            .await
            .unwrap();
        self.settled().await;
        let mail = platform_testkit::mail::messages_to(address).await.unwrap();
        assert_eq!(mail.len(), count, "messages to {address}: {mail:#?}");
        mail
    }

    /// Waits until nothing more will be sent: the user service has published every event it
    /// wrote, every consumer of this test's streams has handled everything published to it
    /// (so each event has its notification rows), and no notification waits for delivery.
    pub async fn settled(&self) {
        let outbox = PgOutbox::new(self.users_db.pool.clone(), self.namespace.clone());
        let users = self.namespace.domain_stream("users");
        events::settled(&outbox, &self.jetstream, &users)
            .await
            .unwrap();
        events::all_drained(&self.jetstream, &self.namespace)
            .await
            .unwrap();
        eventually(
            Duration::from_secs(20),
            "every notification sent or given up",
            || async {
                let pending: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM notifications WHERE status = 'pending'",
                )
                .fetch_one(&self.db.pool)
                .await
                .unwrap();
                (pending == 0).then_some(())
            },
        )
        .await
        .unwrap();
    }

    /// Delivery attempts of the notifications to `recipient`, oldest first.
    pub async fn attempts_to(&self, recipient: &str) -> Vec<(i32, String)> {
        sqlx::query_as(
            "SELECT a.attempt, a.outcome FROM delivery_attempts a \
             JOIN notifications n ON n.id = a.notification_id \
             WHERE n.recipient = $1 ORDER BY a.at, a.attempt",
        )
        .bind(recipient)
        .fetch_all(&self.db.pool)
        .await
        .unwrap()
    }
}
