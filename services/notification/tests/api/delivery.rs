//! Delivery failures: retried while transient, recorded and dead-lettered when permanent.

use std::time::Duration;

use platform_config::Secret;
use platform_testkit::{Server, TcpProxy, eventually, url};

use crate::helpers::spawn_app_with;

#[tokio::test]
async fn mail_waits_while_smtp_is_down_and_goes_out_once_it_is_back() {
    let smtp = url(Server::Smtp).await.unwrap();
    let proxy = TcpProxy::start(&smtp).await.unwrap();
    proxy.cut();
    let through_proxy = proxy.url_for(&smtp);
    let platform = spawn_app_with(|config| config.own.smtp.url = Secret::new(through_proxy)).await;

    let ada = platform.register("Ada").await;
    let failures = eventually(Duration::from_secs(20), "failed attempts", || async {
        let attempts = platform.attempts_to(&ada.email).await;
        (attempts.len() >= 2).then_some(attempts)
    })
    .await
    .unwrap();
    assert!(
        failures
            .iter()
            .all(|(_, outcome)| outcome == "transient_failure"),
        "{failures:?}"
    );
    assert!(platform::mail_is_empty(&ada.email).await);

    proxy.restore();
    let mail = platform.mail_to(&ada.email, 1).await;
    assert!(mail[0].subject.starts_with("Welcome"));
    let attempts = platform.attempts_to(&ada.email).await;
    let (last, outcome) = attempts.last().unwrap();
    assert_eq!(outcome, "sent");
    assert_eq!(
        usize::try_from(*last).unwrap(),
        attempts.len(),
        "numbered in order: {attempts:?}"
    );
}

#[tokio::test]
async fn a_permanently_refused_address_is_recorded_and_dead_lettered() {
    let platform = spawn_app_with(|_| {}).await;
    let email = format!("{}@bounce.invalid", platform_testkit::unique_name("gone"));

    platform.register_with_email(&email, "Gone").await;

    let letters = eventually(Duration::from_secs(20), "the dead letter", || async {
        let letters = platform.dead_letters().await;
        (!letters.is_empty()).then_some(letters)
    })
    .await
    .unwrap();
    assert_eq!(
        letters[0].subject.as_str(),
        platform
            .namespace
            .dead_letter_subject("notification-delivery", "users.registered")
    );
    let error = letters[0].headers.get("Dlq-Error").unwrap().to_string();
    assert!(error.contains("550"), "{error}");
    assert_eq!(
        platform.attempts_to(&email).await,
        [(1, "permanent_failure".to_owned())]
    );
    let status: String =
        sqlx::query_scalar("SELECT status FROM notifications WHERE recipient = $1")
            .bind(&email)
            .fetch_one(&platform.db.pool)
            .await
            .unwrap();
    assert_eq!(status, "failed");
}

mod platform {
    /// Whether nothing has been received for `address` yet.
    pub async fn mail_is_empty(address: &str) -> bool {
        platform_testkit::mail::messages_to(address)
            .await
            .unwrap()
            .is_empty()
    }
}
