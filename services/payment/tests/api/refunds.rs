//! `Refund` over gRPC: within what was captured, once per key.

use std::time::Duration;

use platform_contracts::PaymentRefunded;
use platform_proto::payment::v1::RefundRequest;
use platform_testkit::eventually;
use tonic::Code;
use uuid::Uuid;

use crate::helpers::{DECLINED, SUCCEEDS, eur, spawn_app, spawn_app_with};

#[tokio::test]
async fn partial_refunds_add_up_to_the_capture_and_no_further() {
    let app = spawn_app().await;
    let ada = app.user();
    let card = app.card(&ada, SUCCEEDS).await;
    let order = Uuid::now_v7();
    let charged = app.charge(order, &ada, card, 5000).await.unwrap();

    let first = app.refund(order, 3000, "first").await.unwrap();
    assert_eq!(first.refunded_total, Some(eur(3000)));
    assert_eq!(first.payment_id, charged.payment_id);
    let too_much = app.refund(order, 2001, "second").await.unwrap_err();
    assert_eq!(too_much.code(), Code::FailedPrecondition);
    assert!(
        too_much.message().contains("2000"),
        "{}",
        too_much.message()
    );
    let rest = app.refund(order, 2000, "second").await.unwrap();
    assert_eq!(rest.refunded_total, Some(eur(5000)));

    assert_eq!(app.provider_refunded().await, 5000);
    let events = app.exactly_payment_events(3).await;
    let refunded: Vec<PaymentRefunded> = events[1..]
        .iter()
        .map(|(kind, envelope)| {
            assert_eq!(kind, "payments.refunded");
            envelope.decode::<PaymentRefunded>().unwrap().data
        })
        .collect();
    assert_eq!(refunded[0].amount.minor, 3000);
    assert_eq!(refunded[1].refunded_total.minor, 5000);
}

#[tokio::test]
async fn a_repeated_refund_is_a_no_op() {
    let app = spawn_app().await;
    let ada = app.user();
    let card = app.card(&ada, SUCCEEDS).await;
    let order = Uuid::now_v7();
    app.charge(order, &ada, card, 5000).await.unwrap();

    // No key: at most one refund per order.
    let first = app.refund(order, 5000, "").await.unwrap();
    let repeat = app.refund(order, 5000, "").await.unwrap();

    assert_eq!(repeat.refund_id, first.refund_id);
    assert_eq!(repeat.refunded_total, Some(eur(5000)));
    assert_eq!(app.provider_refunded().await, 5000, "money moved back once");
    assert_eq!(
        app.exactly_payment_events(2).await[1].0,
        "payments.refunded"
    );
    let other_amount = app.refund(order, 10, "").await.unwrap_err();
    assert_eq!(other_amount.code(), Code::AlreadyExists);
}

#[tokio::test]
async fn concurrent_refunds_never_exceed_the_capture() {
    let app = spawn_app().await;
    let ada = app.user();
    let card = app.card(&ada, SUCCEEDS).await;
    let order = Uuid::now_v7();
    app.charge(order, &ada, card, 1000).await.unwrap();

    let keys: Vec<String> = (0..6).map(|i| format!("refund-{i}")).collect();
    let results =
        futures::future::join_all(keys.iter().map(|key| app.refund(order, 400, key))).await;

    let succeeded = results.iter().filter(|result| result.is_ok()).count();
    assert_eq!(succeeded, 2, "400 + 400 fit in 1000; a third would not");
    assert_eq!(app.provider_refunded().await, 800);
}

#[tokio::test]
async fn refunds_of_failed_unknown_or_mismatched_payments_are_refused() {
    let app = spawn_app().await;
    let ada = app.user();
    let declined = app.card(&ada, DECLINED).await;
    let failed_order = Uuid::now_v7();
    app.charge(failed_order, &ada, declined, 1000)
        .await
        .unwrap();

    let status = app.refund(failed_order, 1000, "").await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    let status = app.refund(Uuid::now_v7(), 1000, "").await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);

    let good = app.card(&ada, SUCCEEDS).await;
    let order = Uuid::now_v7();
    app.charge(order, &ada, good, 1000).await.unwrap();
    let mut client = app.client().await;
    let status = client
        .refund(platform_proto::payment::v1::RefundRequest {
            order_id: order.to_string(),
            amount: Some(platform_proto::common::v1::Money {
                minor: 100,
                currency: "USD".to_owned(),
            }),
            idempotency_key: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("EUR"), "{}", status.message());
    let status = app.refund(order, 0, "").await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(app.provider_refunded().await, 0);
}

#[tokio::test]
async fn a_refund_outliving_the_callers_deadline_is_still_made_and_a_retry_finds_it() {
    // Every charge and refund takes 600 ms at the provider; the caller waits 200 ms.
    let app = spawn_app_with(|config| config.own.provider.latency_ms = 600).await;
    let ada = app.user();
    let card = app.card(&ada, SUCCEEDS).await;
    let order = Uuid::now_v7();
    app.charge(order, &ada, card, 5000).await.unwrap();
    let mut client = app.client().await;
    let mut request = tonic::Request::new(RefundRequest {
        order_id: order.to_string(),
        amount: Some(eur(5000)),
        idempotency_key: "cancel".to_owned(),
    });
    request.set_timeout(Duration::from_millis(200));

    let status = client.refund(request).await.unwrap_err();
    assert_eq!(
        status.code(),
        Code::Cancelled,
        "the caller gave up: {status:?}"
    );

    // The refund was not undone with the abandoned call: it is recorded, and a retry (which
    // would time out the same way for ever if it had to ask the provider again) finds it.
    eventually(
        Duration::from_secs(10),
        "the refund to be recorded",
        || async {
            let refunded: i64 =
                sqlx::query_scalar("SELECT refunded_minor FROM payments WHERE order_id = $1")
                    .bind(order)
                    .fetch_one(&app.pool)
                    .await
                    .ok()?;
            (refunded == 5000).then_some(())
        },
    )
    .await
    .unwrap();
    let mut request = tonic::Request::new(RefundRequest {
        order_id: order.to_string(),
        amount: Some(eur(5000)),
        idempotency_key: "cancel".to_owned(),
    });
    request.set_timeout(Duration::from_millis(200));
    let retry = client.refund(request).await.unwrap().into_inner();
    assert_eq!(retry.refunded_total, Some(eur(5000)));
    assert_eq!(app.provider_refunded().await, 5000, "money moved back once");
    assert_eq!(
        app.exactly_payment_events(2).await[1].0,
        "payments.refunded"
    );
}
