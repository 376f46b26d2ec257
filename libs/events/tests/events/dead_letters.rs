//! Reading, filtering, counting and discarding dead letters in the real stream.

use async_nats::HeaderMap;
use async_nats::jetstream::message::PublishMessage;
use platform_events::DeadLetters;
use platform_events::consumer::dead_letter_headers as dlq;
use platform_events::dead_letters::{DeadLetterError, Filter};

use crate::support::Bus;

/// Stores a dead letter as a consumer would; returns its sequence.
async fn dead_letter(bus: &Bus, consumer: &str, event_type: &str, error: &str) -> u64 {
    let mut headers = HeaderMap::new();
    headers.insert(dlq::CONSUMER, consumer);
    headers.insert(dlq::ERROR, error);
    headers.insert(
        dlq::ORIGINAL_SUBJECT,
        bus.namespace.subject(event_type).as_str(),
    );
    headers.insert(dlq::STREAM_SEQUENCE, "7");
    headers.insert(dlq::DELIVERIES, "5");
    bus.js
        .send_publish(
            bus.namespace.dead_letter_subject(consumer, event_type),
            PublishMessage::build()
                .payload(format!("{{\"type\":\"{event_type}\"}}").into())
                .headers(headers),
        )
        .await
        .unwrap()
        .await
        .unwrap()
        .sequence
}

fn filter(configure: impl FnOnce(&mut Filter)) -> Filter {
    let mut filter = Filter {
        limit: 100,
        ..Filter::default()
    };
    configure(&mut filter);
    filter
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_listed_filtered_paged_read_and_discarded() {
    let bus = Bus::new().await;
    let letters = DeadLetters::new(bus.js.clone(), bus.namespace.clone());
    let a = dead_letter(
        &bus,
        "mail-orders",
        "orders.confirmed",
        "SMTP down: connection refused",
    )
    .await;
    let b = dead_letter(&bus, "mail-users", "users.registered", "no such user").await;
    let c = dead_letter(&bus, "mail-orders", "orders.cancelled", "template broken").await;

    let all = letters.list(&filter(|_| {})).await.unwrap();
    let sequences: Vec<u64> = all.items.iter().map(|letter| letter.sequence).collect();
    assert_eq!(sequences, [a, b, c]);
    assert_eq!(all.next_after, None);
    let first = &all.items[0];
    assert_eq!(first.consumer, "mail-orders");
    assert_eq!(first.event_type, "orders.confirmed");
    assert_eq!(first.stream, "ORDERS");
    assert_eq!(first.error, "SMTP down: connection refused");
    assert_eq!(first.original_sequence, Some(7));
    assert_eq!(first.deliveries, Some(5));

    let by_consumer = letters
        .list(&filter(|f| f.consumer = Some("mail-orders".to_owned())))
        .await
        .unwrap();
    assert_eq!(by_consumer.items.len(), 2);
    let by_stream = letters
        .list(&filter(|f| f.stream = Some("users".to_owned())))
        .await
        .unwrap();
    assert_eq!(by_stream.items.len(), 1);
    assert_eq!(by_stream.items[0].sequence, b);
    let by_reason = letters
        .list(&filter(|f| f.reason = Some("smtp DOWN".to_owned())))
        .await
        .unwrap();
    assert_eq!(by_reason.items.len(), 1);
    assert_eq!(by_reason.items[0].sequence, a);

    // Pages of one, each continuing after the last.
    let page = letters.list(&filter(|f| f.limit = 1)).await.unwrap();
    assert_eq!(page.items[0].sequence, a);
    let next = letters
        .list(&filter(|f| {
            f.limit = 1;
            f.after = page.next_after.unwrap();
        }))
        .await
        .unwrap();
    assert_eq!(next.items[0].sequence, b);
    let last = letters
        .list(&filter(|f| {
            f.limit = 1;
            f.after = next.next_after.unwrap();
        }))
        .await
        .unwrap();
    assert_eq!(last.items[0].sequence, c);
    assert_eq!(last.next_after, None, "nothing follows the last letter");

    let read = letters.get(c).await.unwrap();
    assert_eq!(&read.payload[..], br#"{"type":"orders.cancelled"}"#);
    assert_eq!(read.header(dlq::ERROR), Some("template broken"));

    let counts = letters.counts().await.unwrap();
    assert_eq!(counts[&("mail-orders".to_owned(), "ORDERS".to_owned())], 2);
    assert_eq!(counts[&("mail-users".to_owned(), "USERS".to_owned())], 1);

    letters.discard(b).await.unwrap();
    assert!(matches!(letters.get(b).await, Err(DeadLetterError::NotFound(s)) if s == b));
    assert!(matches!(
        letters.discard(b).await,
        Err(DeadLetterError::NotFound(_))
    ));
    assert!(matches!(
        letters.get(9_999).await,
        Err(DeadLetterError::NotFound(_))
    ));
    assert!(matches!(
        letters.get(0).await,
        Err(DeadLetterError::NotFound(_))
    ));
    let left: Vec<u64> = letters
        .list(&filter(|_| {}))
        .await
        .unwrap()
        .items
        .iter()
        .map(|letter| letter.sequence)
        .collect();
    assert_eq!(left, [a, c]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_letters_of_consumers_with_a_replay_are_in_scope() {
    struct Nothing;
    #[async_trait::async_trait]
    impl platform_events::Replay for Nothing {
        async fn replay(
            &self,
            _: &platform_events::DeadLetter,
        ) -> Result<platform_events::Replayed, platform_events::ReplayError> {
            Ok(platform_events::Replayed::AlreadyDone)
        }
    }
    let bus = Bus::new().await;
    let mine = dead_letter(&bus, "mine", "orders.confirmed", "x").await;
    let theirs = dead_letter(&bus, "theirs", "orders.confirmed", "x").await;
    let mut letters = DeadLetters::new(bus.js.clone(), bus.namespace.clone());
    letters.add_replay("mine", std::sync::Arc::new(Nothing));

    let listed = letters.list(&filter(|_| {})).await.unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.items[0].sequence, mine);
    assert!(matches!(
        letters.get(theirs).await,
        Err(DeadLetterError::NotFound(_))
    ));
    assert_eq!(letters.counts().await.unwrap().len(), 1);
    assert_eq!(
        letters.replay(mine).await.unwrap(),
        platform_events::Replayed::AlreadyDone
    );
    assert!(matches!(
        letters.get(mine).await,
        Err(DeadLetterError::NotFound(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_or_missing_stream_lists_nothing_or_says_it_is_unavailable() {
    let bus = Bus::new().await;
    let letters = DeadLetters::new(bus.js.clone(), bus.namespace.clone());
    let page = letters.list(&filter(|_| {})).await.unwrap();
    assert!(page.items.is_empty());
    assert_eq!(page.next_after, None);

    let elsewhere =
        platform_events::Namespace::prefixed(&platform_testkit::unique_name("none")).unwrap();
    let missing = DeadLetters::new(bus.js.clone(), elsewhere);
    assert!(matches!(
        missing.list(&filter(|_| {})).await,
        Err(DeadLetterError::Unavailable(_))
    ));
}

#[test]
fn the_dead_letter_alert_watches_the_gauge_the_code_exports() {
    use yaml_rust2::YamlLoader;

    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/prometheus/alerts.yml"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let documents = YamlLoader::load_from_str(&text).unwrap();
    let rule = documents[0]["groups"]
        .as_vec()
        .unwrap()
        .iter()
        .flat_map(|group| group["rules"].as_vec().unwrap())
        .find(|rule| rule["alert"].as_str() == Some("DeadLettersPresent"))
        .expect("an alert named DeadLettersPresent");
    let expr = rule["expr"].as_str().unwrap();
    let gauge = platform_events::dead_letters::DEAD_LETTERS_GAUGE;
    // The gauge's name as a whole word of the expression, not a prefix of another metric.
    let mentions = expr.match_indices(gauge).any(|(at, _)| {
        let after = expr[at + gauge.len()..].chars().next();
        let before = expr[..at].chars().next_back();
        let word = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        !word(before) && !word(after)
    });
    assert!(
        mentions,
        "the alert's expression `{expr}` does not use `{gauge}`"
    );
    assert!(expr.contains("> 0"), "{expr}");
    assert_eq!(rule["for"].as_str(), Some("5m"));
    // The labels the annotations name are the gauge's.
    let summary = rule["annotations"]["summary"].as_str().unwrap();
    for label in ["consumer", "stream"] {
        assert!(summary.contains(&format!("$labels.{label}")), "{summary}");
    }
}
