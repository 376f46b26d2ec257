//! The events the service consumes ({{consumes}}): each records one {{record}} for its user,
//! however often it is delivered; a malformed one is dead-lettered and the stream moves on.

use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, spawn_app};

{% assign first = consumes | split: "," | first %}const CONSUMED: &str = "{{first}}";
{% assign parts = first | split: "." %}const CONSUMER: &str = "{{service}}-{{parts[0]}}";

#[tokio::test]
async fn an_event_records_a_{{record}}_for_its_user_once() {
    let app = spawn_app().await;
    let ada = app.customer();
    let about = Uuid::now_v7().to_string();
    let (id, payload) = TestApp::envelope(CONSUMED, &about, &json!({"user_id": ada.id}));

    // Delivered twice (a redelivery, or a re-publish JetStream did not drop): recorded once.
    app.publish(CONSUMED, payload.clone(), &id).await;
    app.publish(CONSUMED, payload, &format!("{id}-again")).await;
    app.drained().await;

    let page: Value = app.get(&ada, "/api/v1/{{resource}}").await.json().await.unwrap();
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{page}");
    assert_eq!(items[0]["reference"], about.as_str());
    assert_eq!(items[0]["cause"], CONSUMED);
{% if emitted_event != "" %}
    let events = app.exactly_events(1).await;
    assert_eq!(events[0].0, "{{emitted_event}}");
    assert_eq!(events[0].1.data["user_id"], ada.id.to_string());
    assert_eq!(events[0].1.data["reference"], about.as_str());
    assert_eq!(events[0].1.data["cause"], CONSUMED);
{% endif %}}

#[tokio::test]
async fn an_event_without_a_user_is_dead_lettered_and_the_next_is_recorded() {
    let app = spawn_app().await;
    let ada = app.customer();
    let (bad_id, bad) = TestApp::envelope(CONSUMED, "no-user", &json!({"something": "else"}));
    let (good_id, good) = TestApp::envelope(CONSUMED, "with-user", &json!({"user_id": ada.id}));

    app.publish(CONSUMED, bad, &bad_id).await;
    app.publish(CONSUMED, good, &good_id).await;
    app.drained().await;

    let letters = app.dead_letters().await;
    assert_eq!(letters.len(), 1);
    assert_eq!(
        letters[0].subject.as_str(),
        app.namespace.dead_letter_subject(CONSUMER, CONSUMED)
    );
    let response = app.get(&ada, "/api/v1/{{resource}}").await;
    assert_eq!(response.status(), StatusCode::OK);
    let page: Value = response.json().await.unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "{page}");
    assert_eq!(page["items"][0]["reference"], "with-user");
}
