//! Each event type produces the right email, once.

use platform_contracts::{
    CancellationReason, LowStock, Money, OrderCancelled, OrderConfirmed, OrderLine, PaymentFailed,
    PaymentFailureReason,
};
use platform_events::Envelope;
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::spawn_app;

fn lines() -> Vec<OrderLine> {
    vec![
        OrderLine {
            sku: "MUG-001".to_owned(),
            name: "Enamel mug".to_owned(),
            quantity: 2,
            unit_price: Money::new(1250, "EUR"),
            line_total: Money::new(2500, "EUR"),
        },
        OrderLine {
            sku: "BOOK-042".to_owned(),
            name: "A field guide to clouds".to_owned(),
            quantity: 1,
            unit_price: Money::new(1999, "EUR"),
            line_total: Money::new(1999, "EUR"),
        },
    ]
}

#[tokio::test]
async fn a_registration_sends_a_welcome() {
    let platform = spawn_app().await;
    let ada = platform.register("Ada").await;

    let mail = platform.mail_to(&ada.email, 1).await;

    assert_eq!(mail[0].subject, "Welcome to the shop, Ada");
    assert!(
        mail[0]
            .text
            .contains(&format!("your account for {} is ready", ada.email))
    );
    assert!(mail[0].html.contains("<p>Hello Ada,</p>"));
    assert!(mail[0].from.contains("no-reply@shop.example"));
}

#[tokio::test]
async fn a_confirmed_order_lists_its_items_and_total_as_money() {
    let platform = spawn_app().await;
    let ada = platform.register("Ada").await;
    platform.mail_to(&ada.email, 1).await;
    let order_id: Uuid = "01936b2e-7c41-7d3a-9f10-2b3c4d5e6f70".parse().unwrap();

    platform
        .publish(&Envelope::new(
            "order-service",
            &order_id,
            OrderConfirmed {
                order_id,
                user_id: ada.id,
                items: lines(),
                total: Money::new(4499, "EUR"),
                payment_id: Uuid::now_v7(),
            },
        ))
        .await;

    let mail = platform.mail_to(&ada.email, 2).await;
    let confirmed = &mail[1];
    assert_eq!(
        confirmed.subject,
        "Your order 4D5E6F70 is confirmed: €44.99"
    );
    assert!(
        confirmed
            .text
            .contains("2 x Enamel mug (MUG-001)   €12.50 each   €25.00"),
        "{}",
        confirmed.text
    );
    assert!(
        confirmed
            .text
            .contains("1 x A field guide to clouds (BOOK-042)   €19.99 each   €19.99")
    );
    assert!(confirmed.text.contains("Total: €44.99"));
    assert!(confirmed.html.contains("<strong>€44.99</strong>"));
}

#[tokio::test]
async fn a_cancelled_order_says_why_in_words_and_what_was_refunded() {
    let platform = spawn_app().await;
    let ada = platform.register("Ada").await;
    platform.mail_to(&ada.email, 1).await;
    let order_id = Uuid::now_v7();

    platform
        .publish(&Envelope::new(
            "order-service",
            &order_id,
            OrderCancelled {
                order_id,
                user_id: ada.id,
                reason: CancellationReason::CustomerRequest,
                detail: "cancelled by the customer".to_owned(),
                items: lines(),
                total: Money::new(4499, "EUR"),
                refunded: Some(Money::new(4499, "EUR")),
            },
        ))
        .await;

    let mail = platform.mail_to(&ada.email, 2).await;
    assert!(
        mail[1].subject.ends_with("was cancelled"),
        "{}",
        mail[1].subject
    );
    assert!(
        mail[1]
            .text
            .contains("was cancelled: you asked us to cancel it."),
        "{}",
        mail[1].text
    );
    assert!(mail[1].text.contains("We refunded €44.99 to your card."));
}

#[tokio::test]
async fn a_failed_payment_names_the_amount_and_the_reason() {
    let platform = spawn_app().await;
    let ada = platform.register("Ada").await;
    platform.mail_to(&ada.email, 1).await;
    let order_id = Uuid::now_v7();

    platform
        .publish(&Envelope::new(
            "payment-service",
            &order_id,
            PaymentFailed {
                payment_id: Uuid::now_v7(),
                order_id,
                user_id: ada.id,
                amount: Money::new(4499, "EUR"),
                reason: PaymentFailureReason::InsufficientFunds,
                message: "insufficient funds".to_owned(),
            },
        ))
        .await;

    let mail = platform.mail_to(&ada.email, 2).await;
    assert_eq!(mail[1].subject, "Your payment of €44.99 did not go through");
    assert!(mail[1].text.contains("the card has insufficient funds."));
}

#[tokio::test]
async fn low_stock_alerts_go_to_the_operators_address() {
    let platform = spawn_app().await;
    let alert = Envelope::new(
        "inventory-service",
        &"product-1",
        LowStock {
            product_id: "product-1".to_owned(),
            sku: "MUG-001".to_owned(),
            name: "Enamel mug".to_owned(),
            available: 2,
            threshold: 5,
        },
    );

    platform.publish(&alert).await;

    let mail = platform.mail_to(&platform.admin_email, 1).await;
    assert_eq!(
        mail[0].subject,
        "Low stock: Enamel mug (MUG-001) has 2 left"
    );
    assert!(
        mail[0]
            .text
            .contains("POST /api/v1/products/product-1/restock")
    );
}

#[tokio::test]
async fn an_event_delivered_twice_sends_one_message() {
    let platform = spawn_app().await;
    let ada = platform.register("Ada").await;
    platform.mail_to(&ada.email, 1).await;
    let order_id = Uuid::now_v7();
    let confirmed = Envelope::new(
        "order-service",
        &order_id,
        OrderConfirmed {
            order_id,
            user_id: ada.id,
            items: lines(),
            total: Money::new(4499, "EUR"),
            payment_id: Uuid::now_v7(),
        },
    );

    platform.publish(&confirmed).await;
    // The same event again under another message id: past the stream's duplicate window.
    platform
        .publish_bytes(
            "orders.confirmed",
            serde_json::to_vec(&confirmed).unwrap(),
            "a-later-republish",
        )
        .await;

    platform.mail_to(&ada.email, 2).await;
    let recorded: i64 =
        sqlx::query_scalar("SELECT count(*) FROM notifications WHERE event_id = $1")
            .bind(confirmed.id)
            .fetch_one(&platform.db.pool)
            .await
            .unwrap();
    assert_eq!(recorded, 1);
}

#[tokio::test]
async fn a_malformed_event_is_dead_lettered_and_the_events_behind_it_are_sent() {
    let platform = spawn_app().await;
    let ada = platform.register("Ada").await;
    platform.mail_to(&ada.email, 1).await;

    platform
        .publish_bytes(
            "orders.confirmed",
            b"{\"not\": \"an envelope\"".to_vec(),
            "garbage",
        )
        .await;
    let order_id = Uuid::now_v7();
    platform
        .publish(&Envelope::new(
            "order-service",
            &order_id,
            OrderConfirmed {
                order_id,
                user_id: ada.id,
                items: lines(),
                total: Money::new(4499, "EUR"),
                payment_id: Uuid::now_v7(),
            },
        ))
        .await;

    platform.mail_to(&ada.email, 2).await;
    let letters = platform.dead_letters().await;
    assert_eq!(letters.len(), 1);
    assert_eq!(
        letters[0].subject.as_str(),
        platform
            .namespace
            .dead_letter_subject("notification-orders", "orders.confirmed")
    );
    assert_eq!(letters[0].payload.as_ref(), b"{\"not\": \"an envelope\"");
}

#[tokio::test]
async fn users_list_their_own_notifications() {
    let platform = spawn_app().await;
    let ada = platform.register("Ada").await;
    let grace = platform.register("Grace").await;
    platform.mail_to(&ada.email, 1).await;
    platform.mail_to(&grace.email, 1).await;

    let page: Value = platform
        .http
        .get(format!(
            "{}/api/v1/notifications",
            platform.notifications_address
        ))
        .bearer_auth(&ada.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "only Ada's: {page}");
    assert_eq!(items[0]["recipient"], ada.email.as_str());
    assert_eq!(items[0]["event_type"], "users.registered");
    assert_eq!(items[0]["status"], "sent");
    let anonymous = platform
        .http
        .get(format!(
            "{}/api/v1/notifications",
            platform.notifications_address
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
}
