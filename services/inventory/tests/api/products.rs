//! Public reads: listing with pagination, filters, search and sort; one product by id or SKU;
//! bad parameters.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, names, problem, product, spawn_app};

/// Five products in two categories, added in this order.
async fn shelf(app: &TestApp) {
    for (sku, name, price, category) in [
        ("KIT-MUG", "Enamel mug", 1250, "kitchen"),
        ("KIT-MUG-XL", "Mug (large)", 1450, "kitchen"),
        ("KIT-PAN", "cast-iron pan", 4490, "kitchen"),
        ("BOOK-RUST", "Programming Rust", 4990, "books"),
        ("BOOK-BIRDS", "Birds of Europe", 2450, "books"),
    ] {
        let mut body = product(sku, name, price, 10, 2);
        body["category"] = json!(category);
        app.add_product(&body).await;
    }
}

#[tokio::test]
async fn the_catalogue_is_listed_a_bounded_page_at_a_time_with_the_total() {
    let app = spawn_app().await;
    shelf(&app).await;

    let first = app.get_json("/api/v1/products?page_size=2").await;
    let second = app.get_json("/api/v1/products?page_size=2&page=2").await;
    let third = app.get_json("/api/v1/products?page_size=2&page=3").await;
    let beyond = app.get_json("/api/v1/products?page_size=2&page=4").await;

    assert_eq!(first["total"], 5);
    assert_eq!(
        (first["page"].clone(), first["page_size"].clone()),
        (json!(1), json!(2))
    );
    assert_eq!(
        names(&first),
        ["Birds of Europe", "cast-iron pan"],
        "by name, ignoring case"
    );
    assert_eq!(names(&second), ["Enamel mug", "Mug (large)"]);
    assert_eq!(names(&third), ["Programming Rust"]);
    assert!(names(&beyond).is_empty());
    assert_eq!(beyond["total"], 5);
    let default = app.get_json("/api/v1/products").await;
    assert_eq!(default["page_size"], 20);
    assert_eq!(names(&default).len(), 5);
    let mug = &first["items"][1];
    assert_eq!(mug["sku"], "KIT-PAN");
    assert_eq!(mug["price"], json!({"minor": 4490, "currency": "EUR"}));
    assert_eq!(mug["stock"], json!({"available": 10, "reserved": 0}));
    assert_eq!(mug["version"], 1);
    assert!(mug.get("sold").is_none() && mug["stock"].get("sold").is_none());
}

#[tokio::test]
async fn products_are_filtered_by_category_and_searched_by_name_literally_ignoring_case() {
    let app = spawn_app().await;
    shelf(&app).await;

    let books = app.get_json("/api/v1/products?category=books").await;
    assert_eq!(names(&books), ["Birds of Europe", "Programming Rust"]);
    assert_eq!(books["total"], 2);
    let mugs = app.get_json("/api/v1/products?q=MUG").await;
    assert_eq!(names(&mugs), ["Enamel mug", "Mug (large)"]);
    let kitchen_rust = app
        .get_json("/api/v1/products?q=rust&category=kitchen")
        .await;
    assert_eq!(kitchen_rust["total"], 0);
    // Regular expression metacharacters match themselves.
    let parenthesis = app.get_json("/api/v1/products?q=%28large").await;
    assert_eq!(names(&parenthesis), ["Mug (large)"]);
    let dot = app.get_json("/api/v1/products?q=.").await;
    assert_eq!(dot["total"], 0, "`.` is a dot, not any character");
    let star = app.get_json("/api/v1/products?q=.*").await;
    assert_eq!(star["total"], 0);
}

#[tokio::test]
async fn products_sort_by_name_price_or_newest() {
    let app = spawn_app().await;
    shelf(&app).await;
    let order = |sort: &'static str| {
        let app = &app;
        async move { names(&app.get_json(&format!("/api/v1/products?sort={sort}")).await) }
    };

    assert_eq!(
        order("-name").await,
        [
            "Programming Rust",
            "Mug (large)",
            "Enamel mug",
            "cast-iron pan",
            "Birds of Europe"
        ]
    );
    assert_eq!(
        order("price").await,
        [
            "Enamel mug",
            "Mug (large)",
            "Birds of Europe",
            "cast-iron pan",
            "Programming Rust"
        ]
    );
    assert_eq!(
        order("-price").await,
        [
            "Programming Rust",
            "cast-iron pan",
            "Birds of Europe",
            "Mug (large)",
            "Enamel mug"
        ]
    );
    assert_eq!(
        order("newest").await,
        [
            "Birds of Europe",
            "Programming Rust",
            "cast-iron pan",
            "Mug (large)",
            "Enamel mug"
        ]
    );
}

#[tokio::test]
async fn a_product_is_found_by_id_or_by_sku_in_any_case() {
    let app = spawn_app().await;
    let created = app
        .add_product(&product("KIT-MUG", "Enamel mug", 1250, 7, 2))
        .await;
    let id = created["id"].as_str().unwrap();

    let by_id = app.get_json(&format!("/api/v1/products/{id}")).await;
    let by_sku = app.get_json("/api/v1/products/kit-mug").await;

    assert_eq!(by_id, created);
    assert_eq!(by_sku, created);
    assert_eq!(by_id["name"], "Enamel mug");
}

#[tokio::test]
async fn bad_parameters_and_unknown_products_are_problems() {
    let app = spawn_app().await;
    app.add_product(&product("KIT-MUG", "Enamel mug", 1250, 7, 2))
        .await;

    for query in [
        "page_size=101",
        "page_size=0",
        "page=0",
        "page=-1",
        "page=two",
        "sort=cheapest",
        "category=not%20a%20category",
        "colour=red",
    ] {
        let body = problem(app.get(&format!("/api/v1/products?{query}")).await, 400).await;
        assert!(body["detail"].is_string(), "{query}: {body}");
    }
    let body = problem(app.get("/api/v1/products?page_size=101").await, 400).await;
    assert!(body["detail"].as_str().unwrap().contains("page_size"));

    let malformed = problem(app.get("/api/v1/products/not%20a%20sku!").await, 400).await;
    assert!(
        malformed["detail"]
            .as_str()
            .unwrap()
            .contains("neither a product id")
    );
    problem(app.get("/api/v1/products/NO-SUCH-SKU").await, 404).await;
    problem(
        app.get(&format!("/api/v1/products/{}", Uuid::now_v7()))
            .await,
        404,
    )
    .await;
}

#[tokio::test]
async fn the_service_reports_ready_and_documents_its_api() {
    let app = spawn_app().await;

    let ready = app.get("/health/ready").await;
    assert_eq!(ready.status(), 200);
    let ready: Value = ready.json().await.unwrap();
    let checks: Vec<&str> = ready["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|check| check["name"].as_str().unwrap())
        .collect();
    assert_eq!(checks, ["mongodb", "nats"]);
    let openapi = app.get_json("/openapi.json").await;
    for path in [
        "/api/v1/products",
        "/api/v1/products/{id_or_sku}",
        "/api/v1/products/{id}/restock",
    ] {
        assert!(openapi["paths"].get(path).is_some(), "{path}");
    }
}
