//! Administrators' writes: add, change (optimistic concurrency), restock; and who may.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{problem, product, spawn_app};

#[tokio::test]
async fn administrators_add_products_that_everyone_can_read() {
    let app = spawn_app().await;

    let response = app
        .post(
            Some(&app.admin()),
            "/api/v1/products",
            &json!({
                "sku": "kit-enamel-mug",
                "name": "  Enamel mug ",
                "price": {"minor": 1250, "currency": "EUR"},
                "category": "Kitchen",
                "initial_stock": 40
            }),
        )
        .await;

    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = response.json().await.unwrap();
    assert_eq!(
        location,
        format!("/api/v1/products/{}", created["id"].as_str().unwrap())
    );
    assert_eq!(created["sku"], "KIT-ENAMEL-MUG");
    assert_eq!(created["name"], "Enamel mug");
    assert_eq!(created["description"], "");
    assert_eq!(created["category"], "kitchen");
    assert_eq!(created["stock"], json!({"available": 40, "reserved": 0}));
    assert_eq!(created["low_stock_threshold"], 5, "the default threshold");
    assert_eq!(created["version"], 1);
    assert_eq!(created["created_at"], created["updated_at"]);
    assert_eq!(app.get_json(&location).await, created);
    let stored = app.stock("KIT-ENAMEL-MUG").await;
    assert_eq!((stored.available, stored.reserved, stored.sold), (40, 0, 0));
}

#[tokio::test]
async fn writes_need_an_administrator() {
    let app = spawn_app().await;
    let existing = app.stocked("KIT-MUG", 5, 1).await;
    let id = existing["id"].as_str().unwrap();
    let customer = app.customer();
    let new = product("KIT-PAN", "Pan", 4000, 1, 1);
    let change = json!({"version": 1, "name": "Stolen"});
    let restock = json!({"quantity": 1000});

    problem(app.post(None, "/api/v1/products", &new).await, 401).await;
    problem(
        app.post(Some(&customer), "/api/v1/products", &new).await,
        403,
    )
    .await;
    let path = format!("/api/v1/products/{id}");
    problem(app.patch(None, &path, &change).await, 401).await;
    problem(app.patch(Some(&customer), &path, &change).await, 403).await;
    let path = format!("/api/v1/products/{id}/restock");
    problem(app.post(None, &path, &restock).await, 401).await;
    problem(app.post(Some(&customer), &path, &restock).await, 403).await;
    let mut forged = app.admin();
    forged.token.push('x');
    problem(app.post(Some(&forged), &path, &restock).await, 401).await;

    assert_eq!(app.get_json("/api/v1/products").await["total"], 1);
    let stored = app.stored("KIT-MUG").await;
    assert_eq!(
        (stored.name.as_str(), stored.stock.available),
        ("Product KIT-MUG", 5)
    );
}

#[tokio::test]
async fn a_duplicate_sku_is_a_conflict_whatever_its_case() {
    let app = spawn_app().await;
    app.stocked("KIT-MUG", 5, 1).await;

    let body = problem(
        app.post(
            Some(&app.admin()),
            "/api/v1/products",
            &product("kit-mug", "Another mug", 900, 1, 1),
        )
        .await,
        409,
    )
    .await;

    assert!(body["detail"].as_str().unwrap().contains("KIT-MUG"));
    assert_eq!(app.get_json("/api/v1/products").await["total"], 1);
}

#[tokio::test]
async fn invalid_products_are_refused_naming_each_field() {
    let app = spawn_app().await;
    let admin = app.admin();

    let body = problem(
        app.post(
            Some(&admin),
            "/api/v1/products",
            &json!({
                "sku": "mug 1",
                "name": " ",
                "price": {"minor": -5, "currency": "eur"},
                "category": "kitchen & dining",
                "initial_stock": -1,
                "low_stock_threshold": -2
            }),
        )
        .await,
        422,
    )
    .await;
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| error["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "sku",
            "name",
            "price.minor",
            "price.currency",
            "category",
            "initial_stock",
            "low_stock_threshold"
        ]
    );

    let mut missing = product("KIT-MUG", "Mug", 100, 1, 1);
    missing.as_object_mut().unwrap().remove("price");
    let body = problem(
        app.post(Some(&admin), "/api/v1/products", &missing).await,
        422,
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "price");
    let mut unknown = product("KIT-MUG", "Mug", 100, 1, 1);
    unknown["colour"] = json!("red");
    problem(
        app.post(Some(&admin), "/api/v1/products", &unknown).await,
        422,
    )
    .await;
    let mut wrong_type = product("KIT-MUG", "Mug", 100, 1, 1);
    wrong_type["initial_stock"] = json!("lots");
    problem(
        app.post(Some(&admin), "/api/v1/products", &wrong_type)
            .await,
        422,
    )
    .await;
    assert_eq!(app.get_json("/api/v1/products").await["total"], 0);
}

/// A NUL in a product name once made every order for the product fail (PostgreSQL refuses the
/// byte in the order line): control characters are refused in every text, line breaks and tabs
/// only in the description.
#[tokio::test]
async fn control_characters_are_refused_in_every_text() {
    let app = spawn_app().await;
    let admin = app.admin();
    let existing = app.stocked("KIT-MUG", 5, 1).await;
    let id = existing["id"].as_str().unwrap();

    for (field, value, code) in [
        ("name", "Mug\u{0}", "U+0000"),
        ("name", "\u{1b}[31mRed mug", "U+001B"),
        ("name", "Two\nlines", "U+000A"),
        ("description", "Nul\u{0}", "U+0000"),
        ("description", "Next line\u{85}", "U+0085"),
        ("sku", "KIT-PAN\u{0}", "U+0000"),
        ("category", "kitchen\u{7}", "U+0007"),
    ] {
        let mut new = product("KIT-PAN", "Pan", 4000, 1, 1);
        new[field] = json!(value);
        let body = problem(app.post(Some(&admin), "/api/v1/products", &new).await, 422).await;
        assert_eq!(body["errors"][0]["field"], field, "{value:?}");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains(code),
            "{value:?}: {body}"
        );
    }
    let change = json!({"version": 1, "name": "Mug\u{0}"});
    problem(
        app.patch(Some(&admin), &format!("/api/v1/products/{id}"), &change)
            .await,
        422,
    )
    .await;
    let body = problem(app.get("/api/v1/products?search=mug%00").await, 400).await;
    assert!(
        body["detail"].as_str().unwrap().contains("`search`"),
        "{body}"
    );
    problem(app.get("/api/v1/products/KIT%00MUG").await, 400).await;
    assert_eq!(app.get_json("/api/v1/products").await["total"], 1);

    // A description is free text: line breaks and tabs are kept.
    let mut new = product("KIT-PAN", "Pan", 4000, 1, 1);
    new["description"] = json!("Cast iron.\n\tOven safe.");
    let response = app.post(Some(&admin), "/api/v1/products", &new).await;
    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn an_update_based_on_a_stale_version_is_a_conflict() {
    let app = spawn_app().await;
    let admin = app.admin();
    let created = app.stocked("KIT-MUG", 5, 1).await;
    let path = format!("/api/v1/products/{}", created["id"].as_str().unwrap());

    let first = app
        .patch(
            Some(&admin),
            &path,
            &json!({"version": 1, "name": "Blue mug", "price": {"minor": 1100, "currency": "EUR"}}),
        )
        .await;
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["version"], 2);
    assert_eq!(first["name"], "Blue mug");
    assert_eq!(first["price"]["minor"], 1100);
    assert_eq!(first["sku"], "KIT-MUG");
    assert_eq!(first["stock"], created["stock"]);

    // A second administrator, still looking at version 1.
    let stale = problem(
        app.patch(
            Some(&admin),
            &path,
            &json!({"version": 1, "name": "Red mug"}),
        )
        .await,
        409,
    )
    .await;
    assert!(
        stale["detail"].as_str().unwrap().contains("version 2"),
        "{stale}"
    );
    assert_eq!(app.get_json(&path).await["name"], "Blue mug");

    let second = app
        .patch(
            Some(&admin),
            &path,
            &json!({"version": 2, "low_stock_threshold": 3}),
        )
        .await;
    assert_eq!(second.status(), 200);
    let second: Value = second.json().await.unwrap();
    assert_eq!(
        (
            second["version"].clone(),
            second["low_stock_threshold"].clone()
        ),
        (json!(3), json!(3))
    );
    assert_eq!(second["name"], "Blue mug");

    problem(
        app.patch(
            Some(&admin),
            &format!("/api/v1/products/{}", Uuid::now_v7()),
            &json!({"version": 1, "name": "X"}),
        )
        .await,
        404,
    )
    .await;
    problem(
        app.patch(
            Some(&admin),
            "/api/v1/products/not-a-uuid",
            &json!({"version": 1, "name": "X"}),
        )
        .await,
        400,
    )
    .await;
    problem(
        app.patch(Some(&admin), &path, &json!({"version": 3})).await,
        422,
    )
    .await;
    let body = problem(
        app.patch(Some(&admin), &path, &json!({"version": 3, "sku": "OTHER"}))
            .await,
        422,
    )
    .await;
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("sku")
    );
}

#[tokio::test]
async fn restocking_puts_units_on_the_shelf() {
    let app = spawn_app().await;
    let admin = app.admin();
    let created = app.stocked("KIT-MUG", 5, 1).await;
    let path = format!(
        "/api/v1/products/{}/restock",
        created["id"].as_str().unwrap()
    );

    let restocked = app
        .post(Some(&admin), &path, &json!({"quantity": 20}))
        .await;

    assert_eq!(restocked.status(), 200);
    let restocked: Value = restocked.json().await.unwrap();
    assert_eq!(restocked["stock"], json!({"available": 25, "reserved": 0}));
    assert_eq!(app.stock("KIT-MUG").await.available, 25);
    for quantity in [0, -3] {
        let body = problem(
            app.post(Some(&admin), &path, &json!({"quantity": quantity}))
                .await,
            422,
        )
        .await;
        assert_eq!(body["errors"][0]["field"], "quantity");
    }
    problem(
        app.post(
            Some(&admin),
            "/api/v1/products/123/restock",
            &json!({"quantity": 1}),
        )
        .await,
        400,
    )
    .await;
    problem(
        app.post(
            Some(&admin),
            &format!("/api/v1/products/{}/restock", Uuid::now_v7()),
            &json!({"quantity": 1}),
        )
        .await,
        404,
    )
    .await;
    assert_eq!(app.stock("KIT-MUG").await.available, 25);
}
