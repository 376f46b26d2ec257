//! An operator acts on dead letters: a welcome that failed for good while the mail server was
//! down is replayed through the gateway once it is back, and the customer gets one email.

use std::process::Command;
use std::time::Duration;

use platform_host::{Client, Platform, Service};
use platform_testkit::{Server, TcpProxy, eventually, unique_name, url};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{ADMIN, mail, own_platform};

const DEAD_LETTERS: &str = "/api/v1/notifications/admin/dead-letters";

/// The notification service's dead-letter gauge for `consumer` and `stream`, read from its
/// `/metrics` (the gateway does not forward it).
async fn gauge(platform: &Platform, consumer: &str, stream: &str) -> Option<f64> {
    let text = reqwest::get(format!(
        "{}/metrics",
        platform.url(Service::named("notification"))
    ))
    .await
    .ok()?
    .text()
    .await
    .ok()?;
    let series = format!("events_dead_letters{{consumer=\"{consumer}\",stream=\"{stream}\"}}");
    text.lines()
        .find_map(|line| line.strip_prefix(&series))
        .and_then(|value| value.trim().parse().ok())
}

/// Runs `platform dead-letters ...` against `gateway` as the administrator.
fn cli(gateway: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_platform"))
        .arg("dead-letters")
        .args(["--gateway", gateway])
        .args(args)
        .env("PLATFORM_ADMIN_EMAIL", ADMIN.0)
        .env("PLATFORM_ADMIN_PASSWORD", ADMIN.1)
        .output()
        .unwrap()
}

/// The dead-lettered welcomes, found by consumer and stream: the sequence of `email`'s, and
/// the others'.
async fn welcome_letters(client: &Client, token: &str, email: &str) -> (u64, Vec<u64>) {
    let letters = eventually(Duration::from_secs(30), "the dead letters", || async {
        let page: Value = client
            .get(
                &format!("{DEAD_LETTERS}?consumer=notification-delivery&stream=USERS"),
                Some(token),
            )
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let items = page["items"].as_array()?.clone();
        (items.len() == 2).then_some(items)
    })
    .await
    .unwrap();
    let mut customers = None;
    let mut others = Vec::new();
    for letter in &letters {
        assert_eq!(letter["event_type"], "users.registered");
        let sequence = letter["sequence"].as_u64().unwrap();
        let shown: Value = client
            .get(&format!("{DEAD_LETTERS}/{sequence}"), Some(token))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if shown["payload"]["data"]["email"] == email {
            customers = Some(sequence);
        } else {
            others.push(sequence);
        }
    }
    (
        customers.expect("the customer's welcome is dead-lettered"),
        others,
    )
}

/// Two replays of one letter at the same moment: their outcomes, sorted (`processed`,
/// `already_done`, or `not_found` when the other had already removed it).
async fn replay_twice_at_once(client: &Client, token: &str, replay: &str) -> Vec<String> {
    let (first, second) = tokio::join!(
        client.post(replay, Some(token), &Value::Null),
        client.post(replay, Some(token), &Value::Null)
    );
    let mut outcomes = Vec::new();
    for response in [first.unwrap(), second.unwrap()] {
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        outcomes.push(match status {
            StatusCode::OK => body["outcome"].as_str().unwrap().to_owned(),
            StatusCode::NOT_FOUND => "not_found".to_owned(),
            other => panic!("a replay answered {other}: {body}"),
        });
    }
    outcomes.sort();
    outcomes
}

/// The status of the notification to `email`, in the notification service's store.
async fn notification_status(platform: &Platform, email: &str) -> String {
    let pool = sqlx::PgPool::connect(&platform.config().postgres_url("notifications"))
        .await
        .unwrap();
    sqlx::query_scalar("SELECT status FROM notifications WHERE recipient = $1")
        .bind(email)
        .fetch_one(&pool)
        .await
        .unwrap()
}

/// The gateway's merged document shows the operators' routes.
async fn the_gateway_documents_the_dead_letter_routes(client: &Client) {
    let document: Value = client
        .get("/openapi.json", None)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for path in [
        DEAD_LETTERS.to_owned(),
        format!("{DEAD_LETTERS}/{{seq}}"),
        format!("{DEAD_LETTERS}/{{seq}}/replay"),
    ] {
        assert!(
            document["paths"][&path].is_object(),
            "{path} is not in the gateway's document"
        );
    }
    assert!(document["paths"][format!("{DEAD_LETTERS}/{{seq}}")]["delete"].is_object());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_welcome_dead_lettered_while_smtp_was_down_is_replayed_once_and_sent_once() {
    let smtp = url(Server::Smtp).await.unwrap();
    let proxy = TcpProxy::start(&smtp).await.unwrap();
    proxy.cut();
    let through_proxy = proxy.url_for(&smtp);
    let (platform, client) = own_platform(|config| {
        config.infra.smtp = through_proxy;
        // Two attempts (200 ms apart), then the delivery is given up and dead-lettered.
        config.set(Service::named("notification"), "DELIVERY__MAX_ATTEMPTS", &2);
    })
    .await;

    let email = format!("{}@example.com", unique_name("dlq"));
    client.customer(&email, "Ada").await.unwrap();
    let admin = client.sign_in(ADMIN.0, ADMIN.1).await.unwrap();
    let customer = client
        .sign_in(&email, platform_host::client::PASSWORD)
        .await
        .unwrap();

    // Customers may not see the dead letters; the gateway wants a token at all.
    let refused = client
        .get(DEAD_LETTERS, Some(&customer.token))
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let anonymous = client.get(DEAD_LETTERS, None).await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    // The welcomes (the customer's, and the administrator's own, created at start) are given
    // up, and the operator finds them by consumer and stream.
    let (sequence, others) = welcome_letters(&client, &admin.token, &email).await;
    assert!(
        platform_testkit::mail::messages_to(&email)
            .await
            .unwrap()
            .is_empty()
    );
    let alerting = eventually(Duration::from_secs(30), "the gauge", || async {
        gauge(&platform, "notification-delivery", "USERS")
            .await
            .filter(|count| *count >= 1.0)
    })
    .await
    .unwrap();
    assert!((alerting - 2.0).abs() < f64::EPSILON, "{alerting}");

    // The CLI lists and shows it.
    let gateway = platform.gateway_url();
    let listed = cli(&gateway, &["list", "--stream", "users"]);
    let listed_text = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.status.success(), "{listed:?}");
    assert!(
        listed_text.contains("notification-delivery"),
        "{listed_text}"
    );
    assert!(listed_text.contains(&sequence.to_string()), "{listed_text}");
    let shown = cli(&gateway, &["show", &sequence.to_string()]);
    let letter: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(letter["headers"]["Dlq-Consumer"], "notification-delivery");
    // The administrator's own welcome is not worth sending late: discarded.
    for other in &others {
        let discarded = cli(&gateway, &["discard", &other.to_string()]);
        assert!(discarded.status.success(), "{discarded:?}");
    }

    // The mail server is back; two operators replay it at the same moment.
    proxy.restore();
    let replay = format!("{DEAD_LETTERS}/{sequence}/replay");
    let outcomes = replay_twice_at_once(&client, &admin.token, &replay).await;
    assert!(
        outcomes == ["already_done", "processed"] || outcomes == ["not_found", "processed"],
        "{outcomes:?}"
    );

    let received = mail(&email, 1).await;
    assert!(
        received[0].subject.starts_with("Welcome"),
        "{:?}",
        received[0].subject
    );

    // Replayed letters are gone: the API says 404, the CLI says so and fails.
    let again = client
        .post(&replay, Some(&admin.token), &Value::Null)
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    let cli_again = cli(&gateway, &["replay", &sequence.to_string()]);
    assert!(!cli_again.status.success());
    let complaint = String::from_utf8_lossy(&cli_again.stderr);
    assert!(complaint.contains("404"), "{complaint}");
    let empty = cli(&gateway, &["list"]);
    assert_eq!(String::from_utf8_lossy(&empty.stdout), "no dead letters\n");

    // Still one message after the worker has had time to send a second (it polls every
    // 250 ms), and the gauge is back to 0.
    eventually(Duration::from_secs(30), "the gauge back to 0", || async {
        (gauge(&platform, "notification-delivery", "USERS").await == Some(0.0)).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(notification_status(&platform, &email).await, "sent");
    assert_eq!(
        platform_testkit::mail::messages_to(&email)
            .await
            .unwrap()
            .len(),
        1
    );

    the_gateway_documents_the_dead_letter_routes(&client).await;
    platform.shutdown().await.unwrap();
}
