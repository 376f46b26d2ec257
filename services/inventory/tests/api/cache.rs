//! The read cache and ETags: reads come from Redis, every write invalidates them, a matching
//! `If-None-Match` answers 304, and reads still answer when Redis is gone.

use bson::doc;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{names, spawn_app, spawn_app_behind_a_redis_proxy};

#[tokio::test]
async fn reads_are_served_from_the_cache() {
    let app = spawn_app().await;
    let created = app.stocked("KIT-MUG", 5, 1).await;
    let path = format!("/api/v1/products/{}", created["id"].as_str().unwrap());
    app.get_json(&path).await;
    app.get_json("/api/v1/products").await;

    // Changed behind the service's back (no invalidation): the cached answers stay.
    app.db
        .collection::<bson::Document>("products")
        .update_one(
            doc! { "sku": "KIT-MUG" },
            doc! { "$set": { "name": "Changed in the database" } },
        )
        .await
        .unwrap();

    assert_eq!(app.get_json(&path).await["name"], "Product KIT-MUG");
    assert_eq!(
        names(&app.get_json("/api/v1/products").await),
        ["Product KIT-MUG"]
    );
    assert_eq!(
        app.get_json("/api/v1/products/KIT-MUG").await["name"],
        "Changed in the database",
        "a read not cached yet comes from the database"
    );
}

#[tokio::test]
async fn a_read_after_an_update_sees_the_update() {
    let app = spawn_app().await;
    let created = app.stocked("KIT-MUG", 5, 1).await;
    let path = format!("/api/v1/products/{}", created["id"].as_str().unwrap());
    assert_eq!(app.get_json(&path).await["name"], "Product KIT-MUG");
    assert_eq!(app.get_json("/api/v1/products/kit-mug").await["version"], 1);
    assert_eq!(
        names(&app.get_json("/api/v1/products?q=mug").await),
        ["Product KIT-MUG"]
    );

    let response = app
        .patch(
            Some(&app.admin()),
            &path,
            &json!({"version": 1, "name": "Blue mug"}),
        )
        .await;
    assert_eq!(response.status(), 200);

    assert_eq!(app.get_json(&path).await["name"], "Blue mug");
    assert_eq!(app.get_json("/api/v1/products/kit-mug").await["version"], 2);
    assert_eq!(
        names(&app.get_json("/api/v1/products?q=mug").await),
        ["Blue mug"]
    );
}

#[tokio::test]
async fn reads_after_a_restock_a_new_product_or_a_reservation_see_the_new_stock() {
    let app = spawn_app().await;
    let created = app.stocked("KIT-MUG", 5, 1).await;
    let path = format!("/api/v1/products/{}", created["id"].as_str().unwrap());
    assert_eq!(app.get_json(&path).await["stock"]["available"], 5);
    assert_eq!(app.get_json("/api/v1/products").await["total"], 1);

    app.post(
        Some(&app.admin()),
        &format!("{path}/restock"),
        &json!({"quantity": 3}),
    )
    .await;
    assert_eq!(app.get_json(&path).await["stock"]["available"], 8);

    app.stocked("KIT-PAN", 1, 0).await;
    assert_eq!(app.get_json("/api/v1/products").await["total"], 2);

    let order = Uuid::now_v7();
    app.reserve(order, &[("KIT-MUG", 2)]).await.unwrap();
    assert_eq!(
        app.get_json(&path).await["stock"],
        json!({"available": 6, "reserved": 2})
    );
    app.release(order).await.unwrap();
    assert_eq!(
        app.get_json("/api/v1/products/KIT-MUG").await["stock"],
        json!({"available": 8, "reserved": 0})
    );
}

#[tokio::test]
async fn a_matching_etag_gets_304_and_a_change_gets_a_new_etag() {
    let app = spawn_app().await;
    let created = app.stocked("KIT-MUG", 5, 1).await;
    let path = format!("/api/v1/products/{}", created["id"].as_str().unwrap());

    for read in [path.as_str(), "/api/v1/products?sort=price"] {
        let first = app.get(read).await;
        assert_eq!(first.status(), 200);
        assert_eq!(first.headers()["cache-control"], "no-cache");
        let etag = first.headers()["etag"].to_str().unwrap().to_owned();
        assert!(
            etag.starts_with('"') && etag.ends_with('"'),
            "a strong tag: {etag}"
        );

        let again = app.get_if_none_match(read, &etag).await;
        assert_eq!(again.status(), 304, "{read}");
        assert_eq!(again.headers()["etag"].to_str().unwrap(), etag);
        assert!(again.bytes().await.unwrap().is_empty());
        let listed = app
            .get_if_none_match(read, &format!("\"something-else\", W/{etag}"))
            .await;
        assert_eq!(listed.status(), 304);
        let other = app.get_if_none_match(read, "\"something-else\"").await;
        assert_eq!(other.status(), 200);
        assert_eq!(other.headers()["etag"].to_str().unwrap(), etag);
    }

    let before = app.get(&path).await.headers()["etag"]
        .to_str()
        .unwrap()
        .to_owned();
    app.patch(
        Some(&app.admin()),
        &path,
        &json!({"version": 1, "name": "Blue mug"}),
    )
    .await;
    let after = app.get_if_none_match(&path, &before).await;
    assert_eq!(after.status(), 200, "the old tag no longer matches");
    assert_ne!(after.headers()["etag"].to_str().unwrap(), before);
    let body: Value = after.json().await.unwrap();
    assert_eq!(body["name"], "Blue mug");
}

#[tokio::test]
async fn without_redis_reads_still_answer_from_mongodb_with_etags() {
    let app = spawn_app_behind_a_redis_proxy().await;
    let proxy = app.redis_proxy.as_ref().unwrap();
    let created = app.stocked("KIT-MUG", 5, 1).await;
    let path = format!("/api/v1/products/{}", created["id"].as_str().unwrap());
    let cached_etag = app.get(&path).await.headers()["etag"]
        .to_str()
        .unwrap()
        .to_owned();

    proxy.cut();

    let started = std::time::Instant::now();
    let response = app.get(&path).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["etag"].to_str().unwrap(),
        cached_etag,
        "same body, same tag"
    );
    assert_eq!(
        app.get_if_none_match(&path, &cached_etag).await.status(),
        304
    );
    assert_eq!(app.get_json("/api/v1/products?q=mug").await["total"], 1);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "Redis is given up on quickly: {:?}",
        started.elapsed()
    );
    // Writes go on, and reads see them.
    let response = app
        .patch(
            Some(&app.admin()),
            &path,
            &json!({"version": 1, "name": "Blue mug"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.get_json(&path).await["name"], "Blue mug");
    app.reserve(Uuid::now_v7(), &[("KIT-MUG", 1)])
        .await
        .unwrap();
    assert_eq!(app.get_json(&path).await["stock"]["available"], 4);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics
            .lines()
            .any(|line| line.starts_with("inventory_cache_requests_total{outcome=\"error\"}")),
        "{metrics}"
    );

    proxy.restore();
    crate::helpers::eventually_json(&app, &path, |body| body["name"] == "Blue mug").await;
}
