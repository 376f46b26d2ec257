//! The gateway's own endpoints: the merged OpenAPI document, the docs UI, readiness, metrics.

use std::time::Duration;

use serde_json::Value;

use platform_auth::TokenSigner;

use platform_testkit::service::JwksStandIn;

use crate::helpers::{StandIn, config, echo_setup, metric, route, spawn_app};

fn two_services() -> String {
    route("orders", "/api/v1/orders", "order", "user", "read", "")
        + &route(
            "products",
            "/api/v1/products",
            "inventory",
            "public",
            "read",
            "",
        )
}

#[tokio::test]
async fn openapi_json_merges_the_documents_of_the_upstreams_it_routes_to() {
    let orders = StandIn::start_documenting(
        "order",
        &["/api/v1/orders", "/api/v1/orders/{id}", "/internal/sweep"],
    )
    .await;
    let products = StandIn::start_documenting("inventory", &["/api/v1/products/{id}"]).await;
    let gateway = spawn_app(
        config(
            &two_services(),
            &[("order", &orders.url), ("inventory", &products.url)],
            "http://127.0.0.1:9/j",
        )
        .await,
    )
    .await;

    let response = gateway.get("/openapi.json").send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let document: Value = response.json().await.unwrap();
    assert_eq!(document["info"]["title"], "Platform API");
    let mut paths: Vec<&String> = document["paths"].as_object().unwrap().keys().collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            "/api/v1/orders",
            "/api/v1/orders/{id}",
            "/api/v1/products/{id}"
        ]
    );
    assert_eq!(
        document["paths"]["/api/v1/products/{id}"]["get"]["operationId"],
        "inventory/api/v1/products/{id}"
    );
    let schemas = document["components"]["schemas"].as_object().unwrap();
    assert!(schemas.contains_key("orderThing") && schemas.contains_key("inventoryThing"));
}

#[tokio::test]
async fn an_upstream_that_goes_down_keeps_its_last_document() {
    let orders = StandIn::start_documenting("order", &["/api/v1/orders"]).await;
    let mut products = StandIn::start_documenting("inventory", &["/api/v1/products"]).await;
    let mut config = config(
        &two_services(),
        &[("order", &orders.url), ("inventory", &products.url)],
        "http://127.0.0.1:9/j",
    )
    .await;
    config.openapi.refresh_secs = 1;
    let gateway = spawn_app(config).await;
    products.shut_down();
    tokio::time::sleep(Duration::from_millis(2500)).await;

    let document: Value = gateway
        .get("/openapi.json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        document["paths"].get("/api/v1/products").is_some(),
        "{document}"
    );
    assert!(document["paths"].get("/api/v1/orders").is_some());
}

#[tokio::test]
async fn the_docs_ui_is_served_from_compiled_in_assets() {
    let setup = echo_setup(|_| {}).await;
    let response = setup.gateway.get("/docs").send().await.unwrap();
    assert_eq!(response.status(), 200, "redirected to /docs/");
    let page = response.text().await.unwrap();
    assert!(page.contains("swagger-ui"), "{page}");

    let initializer = setup
        .gateway
        .get("/docs/swagger-initializer.js")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(initializer.contains("/openapi.json"), "{initializer}");

    let bundle = setup
        .gateway
        .get("/docs/swagger-ui-bundle.js")
        .send()
        .await
        .unwrap();
    assert_eq!(bundle.status(), 200);
    assert!(bundle.bytes().await.unwrap().len() > 100_000);
}

#[tokio::test]
async fn readiness_reports_each_upstream_and_names_the_one_that_is_down() {
    let orders = StandIn::start("order").await;
    let products = StandIn::start("inventory").await;
    let signer = TokenSigner::generate("k1");
    let jwks = JwksStandIn::serving(&[&signer]).await;
    let gateway = spawn_app(
        config(
            &two_services(),
            &[("order", &orders.url), ("inventory", &products.url)],
            jwks.url(),
        )
        .await,
    )
    .await;

    let response = gateway.get("/health/ready").send().await.unwrap();
    assert_eq!(response.status(), 200);
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["status"], "ready");
    let names: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|check| check["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["signing-keys", "openapi", "order", "inventory"]);
    assert!(report["checks"][0]["latency_ms"].is_number());

    products
        .state
        .unready
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let response = gateway.get("/health/ready").send().await.unwrap();
    assert_eq!(response.status(), 503);
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["status"], "unready");
    let check = |name: &str| {
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|check| check["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(check("signing-keys")["status"], "up");
    assert_eq!(check("order")["status"], "up");
    assert_eq!(check("inventory")["status"], "down");
    let error = check("inventory")["error"].as_str().unwrap().to_owned();
    assert!(
        error.contains("503") && error.contains("postgres (connection refused)"),
        "{error}"
    );

    let live = gateway.get("/health/live").send().await.unwrap();
    assert_eq!(live.status(), 200, "liveness does not depend on upstreams");
}

#[tokio::test]
async fn readiness_fails_when_an_upstream_is_not_running() {
    let orders = StandIn::start("order").await;
    let gateway = spawn_app(
        config(
            &two_services(),
            &[("order", &orders.url), ("inventory", "http://127.0.0.1:9")],
            "http://127.0.0.1:9/j",
        )
        .await,
    )
    .await;
    let response = gateway.get("/health/ready").send().await.unwrap();
    assert_eq!(response.status(), 503);
    let report: Value = response.json().await.unwrap();
    let down: Vec<&Value> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|check| check["status"] == "down")
        .collect();
    let names: Vec<&str> = down
        .iter()
        .map(|check| check["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["signing-keys", "openapi", "inventory"], "{report}");
}

#[tokio::test]
async fn readiness_can_leave_the_upstreams_to_their_own_probes() {
    let signer = TokenSigner::generate("k1");
    let jwks = JwksStandIn::serving(&[&signer]).await;
    let mut config = config(
        &two_services(),
        &[
            ("order", "http://127.0.0.1:9"),
            ("inventory", "http://127.0.0.1:9"),
        ],
        jwks.url(),
    )
    .await;
    config.health.upstreams = false;
    let gateway = spawn_app(config).await;
    let response = gateway.get("/health/ready").send().await.unwrap();
    assert_eq!(
        response.status(),
        200,
        "no upstream is running, none is asked"
    );
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["checks"].as_array().unwrap().len(), 1, "{report}");
    assert_eq!(report["checks"][0]["name"], "signing-keys");
}

#[tokio::test]
async fn readiness_waits_for_the_signing_keys() {
    let orders = StandIn::start("order").await;
    let products = StandIn::start("inventory").await;
    // The key set answers with no usable key at first, as a user service that is not up yet.
    let jwks = JwksStandIn::serving(&[]).await;
    let gateway = spawn_app(
        config(
            &two_services(),
            &[("order", &orders.url), ("inventory", &products.url)],
            jwks.url(),
        )
        .await,
    )
    .await;
    let response = gateway.get("/health/ready").send().await.unwrap();
    assert_eq!(response.status(), 503, "no key to verify a token with");
    let report: Value = response.json().await.unwrap();
    let keys = &report["checks"][0];
    assert_eq!(keys["name"], "signing-keys");
    assert_eq!(keys["status"], "down");
    assert!(
        keys["error"]
            .as_str()
            .unwrap()
            .contains("no signing keys yet"),
        "{keys}"
    );

    let signer = TokenSigner::generate("k1");
    jwks.publish(&[&signer]);
    let response = gateway.get("/health/ready").send().await.unwrap();
    assert_eq!(response.status(), 200, "the check fetched the keys itself");
}

/// `make run` used to say "ready" before the gateway had its upstreams' OpenAPI documents:
/// readiness waits for every document, in every worker.
#[tokio::test]
async fn readiness_waits_for_every_upstreams_document_in_every_worker() {
    let orders = StandIn::start("order").await;
    let products = StandIn::start("inventory").await;
    products
        .state
        .undocumented
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let signer = TokenSigner::generate("k1");
    let jwks = JwksStandIn::serving(&[&signer]).await;
    let gateway = spawn_app(
        config(
            &two_services(),
            &[("order", &orders.url), ("inventory", &products.url)],
            jwks.url(),
        )
        .await,
    )
    .await;
    let response = gateway.get("/health/ready").send().await.unwrap();
    assert_eq!(response.status(), 503);
    let report: Value = response.json().await.unwrap();
    let openapi = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|check| check["name"] == "openapi")
        .unwrap();
    assert_eq!(openapi["status"], "down");
    assert!(
        openapi["error"]
            .as_str()
            .unwrap()
            .contains("no OpenAPI document yet from inventory"),
        "{report}"
    );

    products
        .state
        .undocumented
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let response = gateway.get("/health/ready").send().await.unwrap();
    assert_eq!(
        response.status(),
        200,
        "the check fetched the document itself"
    );

    // A worker answers for all of them: one of two started is not ready.
    let workers = gateway::readiness::Workers::new(2);
    let first = gateway::Application::build_worker(
        config(
            &two_services(),
            &[("order", &orders.url), ("inventory", &products.url)],
            jwks.url(),
        )
        .await,
        false,
        &workers,
        None,
    )
    .await
    .unwrap();
    let url = format!("http://{}/health/ready", first.http_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(first.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let response = reqwest::get(&url).await.unwrap();
    assert_eq!(response.status(), 503);
    let report = response.text().await.unwrap();
    assert!(report.contains("1 of 2 workers started"), "{report}");
    let _ = stop.send(());
}

#[tokio::test]
async fn metrics_count_requests_by_route_upstream_and_status() {
    // Names of its own: the recorder is global to the test process.
    let upstream = StandIn::start("counted").await;
    let routes = route(
        "counted-public",
        "/api/v1/echo",
        "counted",
        "public",
        "read",
        "",
    ) + &route(
        "counted-private",
        "/api/v1/private",
        "counted",
        "user",
        "read",
        "",
    );
    let gateway = spawn_app(
        config(
            &routes,
            &[("counted", &upstream.url)],
            "http://127.0.0.1:9/j",
        )
        .await,
    )
    .await;
    for _ in 0..3 {
        gateway.get("/api/v1/echo").send().await.unwrap();
    }
    gateway.get("/api/v1/private").send().await.unwrap();
    gateway.get("/nowhere").send().await.unwrap();

    let metrics = gateway.metrics().await;
    let value = |series: &str| metric::<u64>(&metrics, series);
    assert_eq!(
        value(r#"gateway_requests_total{route="counted-public",upstream="counted",status="200"}"#),
        3
    );
    assert_eq!(
        value(r#"gateway_requests_total{route="counted-private",upstream="counted",status="401"}"#),
        1
    );
    assert_eq!(
        value(
            r#"gateway_upstream_duration_seconds_count{route="counted-public",upstream="counted"}"#
        ),
        3
    );
    // Shared with other tests of the process: at least ours.
    assert!(
        value(r#"gateway_requests_total{route="unmatched",upstream="none",status="404"}"#) >= 1
    );
    assert!(value(r#"gateway_rate_limit_decisions_total{class="read",decision="allowed"}"#) >= 3);
}

#[tokio::test]
async fn an_upstream_that_starts_after_the_gateway_is_documented_soon_after() {
    let orders = StandIn::start_documenting("order", &["/api/v1/orders"]).await;
    // The inventory's address is known but nothing listens there yet, as when every process
    // of the platform starts at once.
    let vacant = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let late_addr = vacant.local_addr().unwrap();
    drop(vacant);
    let gateway = spawn_app(
        config(
            &two_services(),
            &[
                ("order", &orders.url),
                ("inventory", &format!("http://{late_addr}")),
            ],
            "http://127.0.0.1:9/j",
        )
        .await,
    )
    .await;
    let document: Value = gateway
        .get("/openapi.json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(document["paths"].get("/api/v1/products").is_none());

    let listener = tokio::net::TcpListener::bind(late_addr).await.unwrap();
    let _products = StandIn::start_on(listener, "inventory", &["/api/v1/products"]);
    // The regular refresh is a minute away (the default); a missing document is asked for
    // again much sooner.
    platform_testkit::eventually(
        Duration::from_secs(10),
        "the late upstream's document",
        || async {
            let document: Value = gateway
                .get("/openapi.json")
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            document["paths"].get("/api/v1/products").map(|_| ())
        },
    )
    .await
    .unwrap();
}
