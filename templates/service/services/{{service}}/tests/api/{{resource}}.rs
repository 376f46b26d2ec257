//! The caller's {{resource}}: created, listed and read back; every bad request answered with a
//! problem.

use platform_testkit::service::assert_problem;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::spawn_app;

#[tokio::test]
async fn a_customer_creates_a_{{record}}_and_reads_it_back() {
    let app = spawn_app().await;
    let ada = app.customer();

    let response = app.create(&ada, &json!({"reference": "  A-1042 "})).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["reference"], "A-1042");
    assert!(created.get("cause").is_none(), "{created}");
    assert_eq!(location, format!("/api/v1/{{resource}}/{}", created["id"].as_str().unwrap()));

    let fetched: Value = app.get(&ada, &location).await.json().await.unwrap();
    assert_eq!(fetched, created);
    let page: Value = app.get(&ada, "/api/v1/{{resource}}").await.json().await.unwrap();
    assert_eq!(page["items"], json!([created]));
{% if emitted_event != "" %}
    let events = app.exactly_events(1).await;
    assert_eq!(events[0].0, "{{emitted_event}}");
    let envelope = &events[0].1;
    assert_eq!(envelope.source, "{{binary}}");
    assert_eq!(envelope.subject, created["id"].as_str().unwrap());
    assert_eq!(envelope.data["{{record}}_id"], created["id"]);
    assert_eq!(envelope.data["user_id"], ada.id.to_string());
    assert_eq!(envelope.data["reference"], "A-1042");
{% endif %}}

#[tokio::test]
async fn customers_see_only_their_own_{{resource}}() {
    let app = spawn_app().await;
    let (ada, grace) = (app.customer(), app.customer());
    let created: Value = app
        .create(&ada, &json!({"reference": "ada's"}))
        .await
        .json()
        .await
        .unwrap();

    let path = format!("/api/v1/{{resource}}/{}", created["id"].as_str().unwrap());
    assert_problem(app.get(&grace, &path).await, StatusCode::NOT_FOUND, "among yours").await;
    let page: Value = app.get(&grace, "/api/v1/{{resource}}").await.json().await.unwrap();
    assert_eq!(page["items"], json!([]));
}

#[tokio::test]
async fn pages_run_newest_first_and_link_to_the_next() {
    let app = spawn_app().await;
    let ada = app.customer();
    for n in 1..=3 {
        let response = app.create(&ada, &json!({"reference": format!("R-{n}")})).await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }

    let first: Value = app.get(&ada, "/api/v1/{{resource}}?limit=2").await.json().await.unwrap();
    let references: Vec<&str> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["reference"].as_str().unwrap())
        .collect();
    assert_eq!(references, ["R-3", "R-2"]);
    let next = first["next_before"].as_str().unwrap();
    let second: Value = app
        .get(&ada, &format!("/api/v1/{{resource}}?limit=2&before={next}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(second["items"].as_array().unwrap().len(), 1);
    assert_eq!(second["items"][0]["reference"], "R-1");
    assert!(second.get("next_before").is_none(), "{second}");
}

#[tokio::test]
async fn bad_requests_get_problems_and_write_nothing() {
    let app = spawn_app().await;
    let ada = app.customer();

    let blank = app.create(&ada, &json!({"reference": "   "})).await;
    let body = assert_problem(blank, StatusCode::UNPROCESSABLE_ENTITY, "").await;
    assert_eq!(body["errors"][0]["field"], "reference", "{body}");
    let long = app.create(&ada, &json!({"reference": "x".repeat(201)})).await;
    assert_problem(long, StatusCode::UNPROCESSABLE_ENTITY, "").await;
    let unknown = app.create(&ada, &json!({"reference": "A", "extra": 1})).await;
    let body = assert_problem(unknown, StatusCode::UNPROCESSABLE_ENTITY, "").await;
    assert!(body["errors"].to_string().contains("extra"), "{body}");
    let missing = app.create(&ada, &json!({})).await;
    let body = assert_problem(missing, StatusCode::UNPROCESSABLE_ENTITY, "").await;
    assert_eq!(body["errors"][0]["field"], "reference", "{body}");
    let anonymous = app
        .http
        .post(app.url("/api/v1/{{resource}}"))
        .json(&json!({"reference": "A"}))
        .send()
        .await
        .unwrap();
    assert_problem(anonymous, StatusCode::UNAUTHORIZED, "").await;
    let not_an_id = app.get(&ada, "/api/v1/{{resource}}/not-a-uuid").await;
    assert_problem(not_an_id, StatusCode::BAD_REQUEST, "").await;
    let bad_limit = app.get(&ada, "/api/v1/{{resource}}?limit=0").await;
    assert_problem(bad_limit, StatusCode::BAD_REQUEST, "").await;

    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM \"{{resource}}\"")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(rows, 0);
}
