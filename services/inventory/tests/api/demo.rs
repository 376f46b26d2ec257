//! The demo catalogue: loaded into an empty store (once, even when replicas start together),
//! and not when switched off.

use std::collections::BTreeSet;

use futures::future::join;

use crate::helpers::{TestApp, spawn_app_with, start};

async fn categories(app: &TestApp) -> BTreeSet<String> {
    let page = app.get_json("/api/v1/products?page_size=100").await;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["category"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn an_empty_store_gets_the_demo_catalogue_once_even_when_replicas_start_together() {
    let app = spawn_app_with(|config| config.own.catalogue.seed_demo = true).await;
    // Two more replicas on a second, empty database, starting at the same moment.
    let mut other = crate::helpers::test_config(app.jwks.url()).await;
    other.own.catalogue.seed_demo = true;
    let (first, second) = join(
        Box::pin(inventory_service::build(other.clone())),
        Box::pin(inventory_service::build(other.clone())),
    )
    .await;
    drop((first.unwrap(), second.unwrap()));
    let restarted = start(other.clone()).await;

    let page = app.get_json("/api/v1/products?page_size=100").await;
    assert_eq!(page["total"], 24);
    assert_eq!(
        categories(&app).await,
        BTreeSet::from(["audio", "books", "kitchen", "outdoors"].map(str::to_owned))
    );
    assert!(
        page["items"].as_array().unwrap().iter().any(|item| {
            item["stock"]["available"].as_i64().unwrap()
                < item["low_stock_threshold"].as_i64().unwrap()
        }),
        "some products are low on stock"
    );
    let mug = app.get_json("/api/v1/products/KIT-ENAMEL-MUG").await;
    assert_eq!(mug["price"]["currency"], "EUR");
    let other_db = mongodb::Client::with_uri_str(other.own.mongo.url.expose())
        .await
        .unwrap()
        .database(other.own.mongo.database.as_deref().unwrap());
    let count = other_db
        .collection::<bson::Document>("products")
        .count_documents(bson::doc! {})
        .await
        .unwrap();
    assert_eq!(
        count, 24,
        "two replicas starting together, then a restart: one catalogue"
    );
    drop(restarted);
}

#[tokio::test]
async fn the_demo_catalogue_is_not_loaded_when_switched_off() {
    let app = spawn_app_with(|config| config.own.catalogue.seed_demo = false).await;

    assert_eq!(app.get_json("/api/v1/products").await["total"], 0);
}
