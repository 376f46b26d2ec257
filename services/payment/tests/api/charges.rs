//! `Charge` over gRPC: each test card's outcome and event, idempotency, ownership, validation.

use std::time::Duration;

use platform_contracts::{PaymentCaptured, PaymentFailed, PaymentFailureReason};
use platform_proto::payment::v1::{GetPaymentMethodRequest, PaymentStatus};
use platform_testkit::eventually;
use serde_json::Value;
use tonic::Code;
use uuid::Uuid;

use crate::helpers::{
    DECLINED, FAILS_ONCE, INSUFFICIENT_FUNDS, SLOW, SUCCEEDS, charge_request, problem, spawn_app,
};

#[tokio::test]
async fn a_good_card_is_captured_and_announced() {
    let app = spawn_app().await;
    let ada = app.user();
    let card = app.card(&ada, SUCCEEDS).await;
    let order = Uuid::now_v7();

    let charged = app.charge(order, &ada, card, 4998).await.unwrap();

    assert_eq!(charged.status(), PaymentStatus::Captured);
    assert_eq!(charged.failure_reason, "");
    let events = app.exactly_payment_events(1).await;
    assert_eq!(events[0].0, "payments.captured");
    let captured = events[0].1.decode::<PaymentCaptured>().unwrap();
    assert_eq!(captured.data.order_id, order);
    assert_eq!(captured.data.user_id, ada.id);
    assert_eq!(captured.data.payment_id.to_string(), charged.payment_id);
    assert_eq!(captured.data.amount.minor, 4998);
    assert_eq!(captured.subject, order.to_string());
    let payment: Value = app
        .get(&ada, &format!("/api/v1/payments/{}", charged.payment_id))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(payment["status"], "captured");
    assert_eq!(payment["amount"]["minor"], 4998);
}

#[tokio::test]
async fn declining_cards_fail_with_their_reason_and_an_event() {
    let app = spawn_app().await;
    let ada = app.user();
    for (number, code) in [
        (DECLINED, "declined"),
        (INSUFFICIENT_FUNDS, "insufficient_funds"),
    ] {
        let card = app.card(&ada, number).await;
        let charged = app.charge(Uuid::now_v7(), &ada, card, 1000).await.unwrap();
        assert_eq!(charged.status(), PaymentStatus::Failed, "{number}");
        assert_eq!(charged.failure_reason, code);
    }
    let events = app.exactly_payment_events(2).await;
    let reasons: Vec<PaymentFailureReason> = events
        .iter()
        .map(|(kind, envelope)| {
            assert_eq!(kind, "payments.failed");
            envelope.decode::<PaymentFailed>().unwrap().data.reason
        })
        .collect();
    assert_eq!(
        reasons,
        [
            PaymentFailureReason::Declined,
            PaymentFailureReason::InsufficientFunds
        ]
    );
    assert_eq!(app.provider_captures().await, 0, "no money moved");
}

#[tokio::test]
async fn a_card_that_fails_once_is_unavailable_then_captured_on_retry() {
    let app = spawn_app().await;
    let ada = app.user();
    let card = app.card(&ada, FAILS_ONCE).await;
    let order = Uuid::now_v7();

    let first = app.charge(order, &ada, card, 1500).await.unwrap_err();
    assert_eq!(first.code(), Code::Unavailable, "{first:?}");
    let retried = app.charge(order, &ada, card, 1500).await.unwrap();

    assert_eq!(retried.status(), PaymentStatus::Captured);
    assert_eq!(app.provider_captures().await, 1);
    let attempts: i32 = sqlx::query_scalar("SELECT attempts FROM test_provider_charges")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(attempts, 2, "the retry reused the idempotency key");
    assert_eq!(
        app.exactly_payment_events(1).await[0].0,
        "payments.captured"
    );
}

#[tokio::test]
async fn a_slow_card_outlives_the_callers_deadline_and_still_settles_once() {
    let app = spawn_app().await;
    let ada = app.user();
    let card = app.card(&ada, SLOW).await;
    let order = Uuid::now_v7();
    let mut client = app.client().await;
    let mut request = tonic::Request::new(charge_request(order, ada.id, card, 2000, "EUR"));
    request.set_timeout(Duration::from_millis(300));

    let status = client.charge(request).await.unwrap_err();
    assert_eq!(
        status.code(),
        Code::Cancelled,
        "the caller gave up: {status:?}"
    );

    // The charge was not abandoned half-way: it settles, and a repeat reads that outcome.
    eventually(
        Duration::from_secs(10),
        "the slow charge to settle",
        || async {
            let status: String =
                sqlx::query_scalar("SELECT status FROM payments WHERE order_id = $1")
                    .bind(order)
                    .fetch_one(&app.pool)
                    .await
                    .ok()?;
            (status == "captured").then_some(())
        },
    )
    .await
    .unwrap();
    let repeat = app.charge(order, &ada, card, 2000).await.unwrap();
    assert_eq!(repeat.status(), PaymentStatus::Captured);
    assert_eq!(app.provider_captures().await, 1);
}

#[tokio::test]
async fn concurrent_charges_for_one_order_capture_once() {
    let app = spawn_app().await;
    let ada = app.user();
    let card = app.card(&ada, SUCCEEDS).await;
    let order = Uuid::now_v7();

    let attempts =
        futures::future::join_all((0..8).map(|_| app.charge(order, &ada, card, 3000))).await;

    let mut payment_ids = Vec::new();
    for attempt in attempts {
        match attempt {
            Ok(charged) => payment_ids.push(charged.payment_id),
            // Retryable: another call holds the charge right now.
            Err(status) => assert_eq!(status.code(), Code::Aborted, "{status:?}"),
        }
    }
    let settled = app.charge(order, &ada, card, 3000).await.unwrap();
    payment_ids.push(settled.payment_id.clone());
    payment_ids.dedup();
    assert_eq!(
        payment_ids,
        [settled.payment_id],
        "every answer names one payment"
    );
    assert_eq!(app.provider_captures().await, 1, "money moved once");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM payments")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(rows, 1);
    assert_eq!(app.exactly_payment_events(1).await.len(), 1);
}

#[tokio::test]
async fn a_repeated_order_with_other_details_is_refused() {
    let app = spawn_app().await;
    let ada = app.user();
    let card = app.card(&ada, SUCCEEDS).await;
    let order = Uuid::now_v7();
    app.charge(order, &ada, card, 3000).await.unwrap();

    let status = app.charge(order, &ada, card, 3001).await.unwrap_err();

    assert_eq!(status.code(), Code::AlreadyExists);
    assert_eq!(app.provider_captures().await, 1);
}

#[tokio::test]
async fn another_users_card_can_be_neither_charged_nor_seen() {
    let app = spawn_app().await;
    let ada = app.user();
    let eve = app.user();
    let adas_card = app.card(&ada, SUCCEEDS).await;

    let status = app
        .charge(Uuid::now_v7(), &eve, adas_card, 100)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = app
        .client()
        .await
        .get_payment_method(GetPaymentMethodRequest {
            user_id: eve.id.to_string(),
            payment_method_id: adas_card.to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let own = app
        .client()
        .await
        .get_payment_method(GetPaymentMethodRequest {
            user_id: ada.id.to_string(),
            payment_method_id: adas_card.to_string(),
        })
        .await
        .unwrap()
        .into_inner()
        .payment_method
        .unwrap();
    assert_eq!(own.last4, "4242");
    assert_eq!(app.provider_captures().await, 0);
}

#[tokio::test]
async fn invalid_amounts_currencies_and_ids_are_invalid_arguments() {
    let app = spawn_app().await;
    let ada = app.user();
    let card = app.card(&ada, SUCCEEDS).await;
    let cases = [
        (
            charge_request(Uuid::now_v7(), ada.id, card, 0, "EUR"),
            "amount.minor",
        ),
        (
            charge_request(Uuid::now_v7(), ada.id, card, -100, "EUR"),
            "amount.minor",
        ),
        (
            charge_request(Uuid::now_v7(), ada.id, card, 100, "eur"),
            "amount.currency",
        ),
        (
            charge_request(Uuid::now_v7(), ada.id, card, 100, "XYZ"),
            "amount.currency",
        ),
        (
            charge_request(Uuid::now_v7(), ada.id, card, 2_000_000_000, "EUR"),
            "amount.minor",
        ),
    ];
    for (request, field) in cases {
        let status = app.client().await.charge(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().starts_with(field), "{}", status.message());
    }
    let mut malformed = charge_request(Uuid::now_v7(), ada.id, card, 100, "EUR");
    malformed.order_id = "order-1".to_owned();
    let status = app.client().await.charge(malformed).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("order_id"));
    assert_eq!(app.provider_captures().await, 0);
}

#[tokio::test]
async fn calls_without_a_service_credential_are_refused() {
    let app = spawn_app().await;
    let channel = tonic::transport::Channel::from_shared(app.grpc_address.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut anonymous =
        platform_proto::payment::v1::payment_service_client::PaymentServiceClient::new(channel);
    let status = anonymous
        .charge(charge_request(
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
            100,
            "EUR",
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn users_list_their_own_payments_page_by_page_and_cannot_see_others() {
    let app = spawn_app().await;
    let ada = app.user();
    let eve = app.user();
    let card = app.card(&ada, SUCCEEDS).await;
    let mut charged = Vec::new();
    for minor in [100, 200, 300] {
        charged.push(
            app.charge(Uuid::now_v7(), &ada, card, minor)
                .await
                .unwrap()
                .payment_id,
        );
    }

    let first: Value = app
        .get(&ada, "/api/v1/payments?limit=2")
        .await
        .json()
        .await
        .unwrap();
    let ids = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        ids(&first),
        [charged[2].clone(), charged[1].clone()],
        "newest first"
    );
    let next = first["next_before"].as_str().unwrap();
    let second: Value = app
        .get(&ada, &format!("/api/v1/payments?limit=2&before={next}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ids(&second), [charged[0].clone()]);
    assert!(second.get("next_before").is_none());

    let theirs: Value = app
        .get(&eve, "/api/v1/payments")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(theirs["items"].as_array().unwrap().len(), 0);
    problem(
        app.get(&eve, &format!("/api/v1/payments/{}", charged[0]))
            .await,
        404,
    )
    .await;
    problem(app.get(&ada, "/api/v1/payments?limit=101").await, 400).await;
    problem(app.get(&ada, "/api/v1/payments?limit=ten").await, 400).await;
}
