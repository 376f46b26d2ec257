//! The operators' dead-letter API: administrators only, filters, errors, replay and discard.

use std::time::Duration;

use platform_config::Secret;
use platform_testkit::service::assert_problem;
use platform_testkit::{Server, TcpProxy, eventually, url};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::{TestApp, spawn_app, spawn_app_with};

const PATH: &str = "/api/v1/notifications/admin/dead-letters";

impl TestApp {
    async fn admin_call(&self, method: Method, path: &str) -> reqwest::Response {
        let admin = self.identities.admin();
        self.call(method, path, Some(&admin.token)).await
    }

    async fn call(&self, method: Method, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.notifications_address));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    /// The dead letters the API lists with `query`, once there are `count`.
    async fn listed(&self, query: &str, count: usize) -> Vec<Value> {
        eventually(Duration::from_secs(20), "the dead letters", || async {
            let response = self
                .admin_call(Method::GET, &format!("{PATH}{query}"))
                .await;
            // 503 until the service's NATS connection is up (it connects in the background).
            if response.status() == StatusCode::SERVICE_UNAVAILABLE {
                return None;
            }
            assert_eq!(response.status(), StatusCode::OK);
            let page: Value = response.json().await.unwrap();
            let items = page["items"].as_array().unwrap().clone();
            (items.len() == count).then_some(items)
        })
        .await
        .unwrap()
    }

    /// The value of the dead-letter gauge for `consumer` and `stream` on `/metrics`.
    async fn dead_letter_gauge(&self, consumer: &str, stream: &str) -> Option<f64> {
        let text = self
            .http
            .get(format!("{}/metrics", self.notifications_address))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let series = format!(
            "{}{{consumer=\"{consumer}\",stream=\"{stream}\"}}",
            platform_events::dead_letters::DEAD_LETTERS_GAUGE
        );
        text.lines()
            .find_map(|line| line.strip_prefix(&series))
            .and_then(|value| value.trim().parse().ok())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dead_letter_api_is_for_administrators_only() {
    let app = spawn_app().await;
    let customer = app.identities.customer();
    for (method, path) in [
        (Method::GET, PATH.to_owned()),
        (Method::GET, format!("{PATH}/1")),
        (Method::POST, format!("{PATH}/1/replay")),
        (Method::DELETE, format!("{PATH}/1")),
    ] {
        assert_problem(
            app.call(method.clone(), &path, None).await,
            StatusCode::UNAUTHORIZED,
            "",
        )
        .await;
        assert_problem(
            app.call(method, &path, Some(&customer.token)).await,
            StatusCode::FORBIDDEN,
            "",
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_dead_letters_are_404_and_bad_queries_400() {
    let app = spawn_app().await;
    app.listed("", 0).await;
    for (method, path) in [
        (Method::GET, format!("{PATH}/999999")),
        (Method::POST, format!("{PATH}/999999/replay")),
        (Method::DELETE, format!("{PATH}/999999")),
    ] {
        assert_problem(
            app.admin_call(method, &path).await,
            StatusCode::NOT_FOUND,
            "no dead letter 999999",
        )
        .await;
    }
    for (query, detail) in [
        ("?limit=0", "`limit` must be between 1 and 100"),
        ("?limit=many", "limit"),
        ("?after=-1", "after"),
        ("?stream=SHIPPING", "`stream` must be one of"),
        ("?consumer=someone-else", "notification-delivery"),
        ("?reason=", "`reason` must be 1 to 200 characters"),
        ("?colour=red", "colour"),
    ] {
        assert_problem(
            app.admin_call(Method::GET, &format!("{PATH}{query}")).await,
            StatusCode::BAD_REQUEST,
            detail,
        )
        .await;
    }
    assert_problem(
        app.admin_call(Method::GET, &format!("{PATH}/abc")).await,
        StatusCode::BAD_REQUEST,
        "",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_listed_by_stream_and_reason_read_and_discarded() {
    let app = spawn_app().await;
    // A delivery refused for good (the catcher bounces `.invalid` addresses with a 550)...
    let bounced = format!("{}@bounce.invalid", platform_testkit::unique_name("gone"));
    app.register_with_email(&bounced, "Gone").await;
    // ...and an event the orders consumer cannot read.
    app.publish_bytes("orders.confirmed", b"not an event".to_vec(), "broken-1")
        .await;

    let all = app.listed("", 2).await;
    let delivery = all
        .iter()
        .find(|letter| letter["consumer"] == "notification-delivery")
        .unwrap();
    assert_eq!(delivery["event_type"], "users.registered");
    assert_eq!(delivery["stream"], "USERS");
    assert!(delivery["error"].as_str().unwrap().contains("550"));
    let intake = all
        .iter()
        .find(|letter| letter["consumer"] == "notification-orders")
        .unwrap();
    assert_eq!(intake["stream"], "ORDERS");

    let by_stream = app.listed("?stream=users", 1).await;
    assert_eq!(by_stream[0]["sequence"], delivery["sequence"]);
    let by_reason = app.listed("?reason=NOT%20AN%20EVENT", 1).await;
    assert_eq!(by_reason[0]["sequence"], intake["sequence"]);
    let by_consumer = app.listed("?consumer=notification-delivery", 1).await;
    assert_eq!(by_consumer[0]["sequence"], delivery["sequence"]);
    let page = app.listed("?limit=1", 1).await;
    assert_eq!(page[0]["sequence"], all[0]["sequence"]);
    let after = app
        .listed(&format!("?after={}", all[0]["sequence"]), 1)
        .await;
    assert_eq!(after[0]["sequence"], all[1]["sequence"]);

    let sequence = intake["sequence"].as_u64().unwrap();
    let shown: Value = app
        .admin_call(Method::GET, &format!("{PATH}/{sequence}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(shown["payload"], "not an event");
    assert_eq!(shown["headers"]["Dlq-Consumer"], "notification-orders");

    // It cannot be replayed (it is not an event): it stays.
    assert_problem(
        app.admin_call(Method::POST, &format!("{PATH}/{sequence}/replay"))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "failed again, and it is kept",
    )
    .await;
    assert_eq!(
        app.admin_call(Method::GET, &format!("{PATH}/{sequence}"))
            .await
            .status(),
        StatusCode::OK
    );

    let discarded = app
        .admin_call(Method::DELETE, &format!("{PATH}/{sequence}"))
        .await;
    assert_eq!(discarded.status(), StatusCode::NO_CONTENT);
    assert_problem(
        app.admin_call(Method::GET, &format!("{PATH}/{sequence}"))
            .await,
        StatusCode::NOT_FOUND,
        "",
    )
    .await;
    assert_problem(
        app.admin_call(Method::DELETE, &format!("{PATH}/{sequence}"))
            .await,
        StatusCode::NOT_FOUND,
        "",
    )
    .await;
    app.listed("", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_delivery_replayed_twice_at_once_once_smtp_is_back_sends_one_message() {
    let smtp = url(Server::Smtp).await.unwrap();
    let proxy = TcpProxy::start(&smtp).await.unwrap();
    proxy.cut();
    let through_proxy = proxy.url_for(&smtp);
    let app = spawn_app_with(|config| {
        config.own.smtp.url = Secret::new(through_proxy);
        config.own.delivery.max_attempts = 2;
    })
    .await;

    let ada = app.register("Ada").await;
    let letters = app.listed("?consumer=notification-delivery", 1).await;
    let sequence = letters[0]["sequence"].as_u64().unwrap();
    let gauge = eventually(Duration::from_secs(20), "the gauge", || async {
        app.dead_letter_gauge("notification-delivery", "USERS")
            .await
            .filter(|value| *value >= 1.0)
    })
    .await
    .unwrap();
    assert!((gauge - 1.0).abs() < f64::EPSILON);

    proxy.restore();
    let replay = format!("{PATH}/{sequence}/replay");
    let (first, second) = tokio::join!(
        app.admin_call(Method::POST, &replay),
        app.admin_call(Method::POST, &replay)
    );
    let mut outcomes = Vec::new();
    for response in [first, second] {
        match response.status() {
            StatusCode::OK => {
                let body: Value = response.json().await.unwrap();
                outcomes.push(body["outcome"].as_str().unwrap().to_owned());
            }
            StatusCode::NOT_FOUND => outcomes.push("not_found".to_owned()),
            other => panic!(
                "replay answered {other}: {}",
                response.text().await.unwrap()
            ),
        }
    }
    outcomes.sort();
    assert!(
        outcomes == ["already_done", "processed"] || outcomes == ["not_found", "processed"],
        "{outcomes:?}"
    );
    app.mail_to(&ada.email, 1).await;
    assert_problem(
        app.admin_call(Method::POST, &replay).await,
        StatusCode::NOT_FOUND,
        "",
    )
    .await;
    assert_eq!(app.attempts_to(&ada.email).await.last().unwrap().1, "sent");
    eventually(Duration::from_secs(20), "the gauge back to 0", || async {
        (app.dead_letter_gauge("notification-delivery", "USERS")
            .await
            == Some(0.0))
        .then_some(())
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_nats_is_down_the_api_answers_503_and_says_why() {
    let nats = url(Server::Nats).await.unwrap();
    let proxy = TcpProxy::start(&nats).await.unwrap();
    let through_proxy = proxy.url_for(&nats);
    let app = spawn_app_with(|config| config.common.nats.url = through_proxy).await;
    app.listed("", 0).await;

    proxy.cut();
    for (method, path) in [
        (Method::GET, PATH.to_owned()),
        (Method::GET, format!("{PATH}/1")),
        (Method::POST, format!("{PATH}/1/replay")),
        (Method::DELETE, format!("{PATH}/1")),
    ] {
        assert_problem(
            app.admin_call(method, &path).await,
            StatusCode::SERVICE_UNAVAILABLE,
            "the event bus (NATS JetStream) is unavailable",
        )
        .await;
    }
    proxy.restore();
    app.listed("", 0).await;
}
