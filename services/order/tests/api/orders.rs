//! Placing and reading orders over HTTP: idempotency, validation, ownership.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Options, SUCCEEDS, order_body, problem, spawn_app, spawn_app_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placing_an_order_answers_201_with_the_order_and_where_to_follow_it() {
    let shop = spawn_app().await;
    let sku = shop.product(1250, 10).await;
    let ada = shop.customer();
    let card = shop.card(&ada, SUCCEEDS).await;

    let response = shop
        .place(&ada, "key-1", &order_body(&[(&sku, 2)], card))
        .await;

    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let order: Value = response.json().await.unwrap();
    assert_eq!(
        location,
        format!("/api/v1/orders/{}", order["id"].as_str().unwrap())
    );
    assert_eq!(order["status_url"], location.as_str());
    assert_eq!(order["status"], "PENDING");
    assert_eq!(order["items"][0]["sku"], sku.as_str());
    assert_eq!(order["items"][0]["line_total"]["minor"], 2500);
}

/// The answer to placing is built from what was written, not read back: it must be exactly
/// what reading the order gives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_order_placing_answers_with_is_the_order_as_stored() {
    let shop = spawn_app_with(Options {
        saga: false,
        ..Options::default()
    })
    .await;
    let mug = shop.product(1250, 10).await;
    let pan = shop.product(3999, 10).await;
    let ada = shop.customer();
    let card = shop.card(&ada, SUCCEEDS).await;

    let placed: Value = shop
        .place(&ada, "key-1", &order_body(&[(&mug, 2), (&pan, 1)], card))
        .await
        .json()
        .await
        .unwrap();
    let id: Uuid = placed["id"].as_str().unwrap().parse().unwrap();
    let stored: Value = shop.get_order(&ada, id).await.json().await.unwrap();

    assert_eq!(placed, stored);
    assert_eq!(placed["items"].as_array().unwrap().len(), 2);
    assert_eq!(placed["history"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_key_and_body_return_the_same_order_and_another_body_is_refused() {
    let shop = spawn_app().await;
    let sku = shop.product(1250, 10).await;
    let ada = shop.customer();
    let card = shop.card(&ada, SUCCEEDS).await;
    let body = order_body(&[(&sku, 2)], card);

    let first: Value = shop.place(&ada, "key-1", &body).await.json().await.unwrap();
    let repeat = shop.place(&ada, "key-1", &body).await;
    assert_eq!(repeat.status(), 200);
    let repeat: Value = repeat.json().await.unwrap();
    assert_eq!(repeat["id"], first["id"]);

    let different = shop
        .place(&ada, "key-1", &order_body(&[(&sku, 3)], card))
        .await;
    let problem = problem(different, 422).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("Idempotency-Key"),
        "{problem}"
    );
    let orders: i64 = sqlx::query_scalar("SELECT count(*) FROM orders")
        .fetch_one(&shop.order_pool)
        .await
        .unwrap();
    assert_eq!(orders, 1);
    // Another user may use the same key for their own order.
    let grace = shop.customer();
    let graces_card = shop.card(&grace, SUCCEEDS).await;
    let theirs = shop
        .place(&grace, "key-1", &order_body(&[(&sku, 1)], graces_card))
        .await;
    assert_eq!(theirs.status(), 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_needs_an_idempotency_key() {
    let shop = spawn_app().await;
    let ada = shop.customer();
    let response = shop
        .http
        .post(format!("{}/api/v1/orders", shop.orders_url))
        .bearer_auth(&ada.token)
        .json(&order_body(&[("SKU-1", 1)], Uuid::now_v7()))
        .send()
        .await
        .unwrap();
    let body = problem(response, 400).await;
    assert_eq!(body["detail"], "the Idempotency-Key header is required");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_lines_unknown_products_and_foreign_cards_are_422() {
    let shop = spawn_app().await;
    let sku = shop.product(1250, 10).await;
    let ada = shop.customer();
    let grace = shop.customer();
    let card = shop.card(&ada, SUCCEEDS).await;
    let graces_card = shop.card(&grace, SUCCEEDS).await;
    let key = || Uuid::now_v7().to_string();

    let empty = problem(
        shop.place(
            &ada,
            &key(),
            &json!({"items": [], "payment_method_id": card}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(empty["errors"][0]["field"], "items");
    let zero = problem(
        shop.place(&ada, &key(), &order_body(&[(&sku, 0)], card))
            .await,
        422,
    )
    .await;
    assert_eq!(zero["errors"][0]["field"], "items[0].quantity");
    let unknown = problem(
        shop.place(
            &ada,
            &key(),
            &order_body(&[(&sku, 1), ("NO-SUCH-SKU", 1)], card),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(unknown["errors"][0]["field"], "items[1].sku");
    let foreign = problem(
        shop.place(&ada, &key(), &order_body(&[(&sku, 1)], graces_card))
            .await,
        422,
    )
    .await;
    assert_eq!(foreign["errors"][0]["field"], "payment_method_id");
    // The card and the lines are checked at once, and both are reported.
    let both = problem(
        shop.place(
            &ada,
            &key(),
            &order_body(&[("NO-SUCH-SKU", 1)], graces_card),
        )
        .await,
        422,
    )
    .await;
    let fields: Vec<&str> = both["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| error["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["payment_method_id", "items[0].sku"], "{both}");
    let negative = problem(
        shop.place(&ada, &key(), &order_body(&[(&sku, -2)], card))
            .await,
        422,
    )
    .await;
    assert_eq!(negative["errors"][0]["field"], "items[0].quantity");

    let orders: i64 = sqlx::query_scalar("SELECT count(*) FROM orders")
        .fetch_one(&shop.order_pool)
        .await
        .unwrap();
    assert_eq!(orders, 0, "nothing was stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_see_only_their_own_orders() {
    let shop = spawn_app().await;
    let sku = shop.product(1250, 10).await;
    let ada = shop.customer();
    let grace = shop.customer();
    let card = shop.card(&ada, SUCCEEDS).await;
    let id = shop.order(&ada, &[(&sku, 1)], card).await;

    problem(shop.get_order(&grace, id).await, 404).await;
    let cancel = shop
        .http
        .post(format!("{}/api/v1/orders/{id}/cancel", shop.orders_url))
        .bearer_auth(&grace.token)
        .send()
        .await
        .unwrap();
    problem(cancel, 404).await;
    let theirs: Value = shop
        .http
        .get(format!("{}/api/v1/orders", shop.orders_url))
        .bearer_auth(&grace.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(theirs["items"], json!([]));
    let mine: Value = shop
        .http
        .get(format!("{}/api/v1/orders", shop.orders_url))
        .bearer_auth(&ada.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(mine["items"][0]["id"], id.to_string());

    let malformed = shop
        .http
        .get(format!("{}/api/v1/orders/not-a-uuid", shop.orders_url))
        .bearer_auth(&ada.token)
        .send()
        .await
        .unwrap();
    problem(malformed, 400).await;
    let anonymous = shop
        .http
        .get(format!("{}/api/v1/orders/{id}", shop.orders_url))
        .send()
        .await
        .unwrap();
    problem(anonymous, 401).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_orders_pages_newest_first_each_with_its_own_lines_and_history() {
    let shop = spawn_app().await;
    let mug = shop.product(1250, 10).await;
    let tee = shop.product(2000, 1).await;
    let ada = shop.customer();
    let card = shop.card(&ada, SUCCEEDS).await;
    // One after the other, so that the first takes the only tee and the second finds none.
    let confirmed = shop.order(&ada, &[(&mug, 1), (&tee, 1)], card).await;
    shop.finished(&ada, confirmed).await;
    let cancelled = shop.order(&ada, &[(&tee, 1)], card).await;
    shop.finished(&ada, cancelled).await;
    let newest = shop.order(&ada, &[(&mug, 3)], card).await;
    shop.finished(&ada, newest).await;
    let list = |query: String| {
        let request = shop
            .http
            .get(format!("{}/api/v1/orders?{query}", shop.orders_url))
            .bearer_auth(&ada.token);
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.unwrap()
        }
    };

    let first = list("limit=2".to_owned()).await;
    let next = first["next_before"].as_str().unwrap().to_owned();
    let second = list(format!("limit=2&before={next}")).await;

    let pages = [&first, &second];
    let ids: Vec<&str> = pages
        .iter()
        .flat_map(|page| page["items"].as_array().unwrap())
        .map(|order| order["id"].as_str().unwrap())
        .collect();
    let expected = [newest, cancelled, confirmed].map(|id| id.to_string());
    assert_eq!(ids, expected, "newest first, over two pages");
    assert!(second.get("next_before").is_none(), "{second}");
    for order in pages
        .iter()
        .flat_map(|page| page["items"].as_array().unwrap())
    {
        let id: Uuid = order["id"].as_str().unwrap().parse().unwrap();
        let alone: Value = shop.get_order(&ada, id).await.json().await.unwrap();
        assert_eq!(order, &alone, "a listed order reads as it does alone");
    }
    let both_lines = &second["items"][0];
    let skus: Vec<&str> = both_lines["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| line["sku"].as_str().unwrap())
        .collect();
    assert_eq!(skus, [mug.as_str(), tee.as_str()], "lines in their order");
    let statuses = |order: &Value| -> Vec<String> {
        order["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|entry| entry["status"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        statuses(both_lines),
        ["PENDING", "STOCK_RESERVED", "PAID", "CONFIRMED"]
    );
    assert_eq!(first["items"][1]["status"], "CANCELLED");
    assert_eq!(statuses(&first["items"][1]), ["PENDING", "CANCELLED"]);
}
