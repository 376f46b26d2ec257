//! What an operator sees of a checkout: one trace from the client's request to the email,
//! received by a real OTLP collector, and dashboards and alerts that use only what the
//! processes export.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::common::v1::{AnyValue as Any, KeyValue};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use platform_host::{Client, Customer, Service};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tonic::transport::server::TcpIncoming;
use uuid::Uuid;

use crate::helpers::{customer_with_card, mail, own_platform};
use crate::journeys::browse_the_catalogue;

const GOOD: &str = "4242 4242 4242 4242";
const DECLINED: &str = "4000 0000 0000 0002";

/// An OTLP/gRPC trace collector: what it receives goes to the channel.
struct Collector(mpsc::UnboundedSender<ExportTraceServiceRequest>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let _ = self.0.send(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// Starts a collector on a free port: its endpoint, and what it receives.
async fn collector() -> (String, mpsc::UnboundedReceiver<ExportTraceServiceRequest>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let (exports, received) = mpsc::unbounded_channel();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Collector(exports)))
            .serve_with_incoming(TcpIncoming::from(listener)),
    );
    (endpoint, received)
}

/// A span as the collector received it, with the `service.name` of the process that sent it.
#[derive(Clone, Debug)]
struct Received {
    service: String,
    trace_id: String,
    span_id: String,
    parent: String,
    name: String,
    kind: SpanKind,
    attributes: BTreeMap<String, String>,
}

impl Received {
    fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut text, byte| {
        let _ = write!(text, "{byte:02x}");
        text
    })
}

fn text(value: Option<&Any>) -> String {
    match value.and_then(|value| value.value.as_ref()) {
        Some(AnyValue::StringValue(text)) => text.clone(),
        Some(AnyValue::IntValue(number)) => number.to_string(),
        Some(AnyValue::BoolValue(flag)) => flag.to_string(),
        Some(AnyValue::DoubleValue(number)) => number.to_string(),
        other => format!("{other:?}"),
    }
}

fn attributes(pairs: &[KeyValue]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|pair| (pair.key.clone(), text(pair.value.as_ref())))
        .collect()
}

fn spans_of(request: ExportTraceServiceRequest) -> Vec<Received> {
    let mut spans = Vec::new();
    for resource in request.resource_spans {
        let service = resource
            .resource
            .as_ref()
            .map(|resource| attributes(&resource.attributes))
            .and_then(|attributes| attributes.get("service.name").cloned())
            .unwrap_or_default();
        for scope in resource.scope_spans {
            for span in scope.spans {
                spans.push(Received {
                    service: service.clone(),
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent: hex(&span.parent_span_id),
                    kind: SpanKind::try_from(span.kind).unwrap_or(SpanKind::Unspecified),
                    attributes: attributes(&span.attributes),
                    name: span.name,
                });
            }
        }
    }
    spans
}

/// The checkout's trace as far as it has arrived: the spans named in the checks, or what is
/// still missing.
struct Checkout<'a> {
    spans: &'a [Received],
}

impl<'a> Checkout<'a> {
    fn find(
        &self,
        what: &str,
        service: &str,
        kind: SpanKind,
        name: &str,
    ) -> Result<&'a Received, String> {
        self.spans
            .iter()
            .find(|span| span.service == service && span.kind == kind && span.name == name)
            .ok_or_else(|| format!("{what}: no {kind:?} span `{name}` from {service}"))
    }

    /// The gRPC server span of `service` for a call the order service made, with the client
    /// span it is a child of.
    fn grpc_call(&self, service: &str) -> Result<(&'a Received, &'a Received), String> {
        self.spans
            .iter()
            .filter(|span| span.service == service && span.kind == SpanKind::Server)
            .filter(|span| span.attribute("rpc.system") == Some("grpc"))
            .find_map(|server| {
                let client = self.spans.iter().find(|client| {
                    client.span_id == server.parent
                        && client.service == "order-service"
                        && client.kind == SpanKind::Client
                })?;
                Some((server, client))
            })
            .ok_or_else(|| {
                format!(
                    "no gRPC server span in {service} whose parent is an order-service client span"
                )
            })
    }

    /// Whether `ancestor` is `span`'s parent, or its parent's, and so on.
    fn descends(&self, span: &Received, ancestor: &Received) -> bool {
        let mut current = span;
        for _ in 0..64 {
            if current.parent == ancestor.span_id {
                return true;
            }
            match self
                .spans
                .iter()
                .find(|span| span.span_id == current.parent)
            {
                Some(parent) => current = parent,
                None => return false,
            }
        }
        false
    }
}

/// Every span the checkout must have produced, linked as it must be; `Err` says what is
/// missing or wrong.
fn check_checkout(spans: &[Received], client_span: &str) -> Result<(), String> {
    let trace = Checkout { spans };
    let edge = trace.find(
        "the gateway",
        "gateway",
        SpanKind::Server,
        "POST /api/v1/orders",
    )?;
    if edge.parent != client_span {
        return Err(format!(
            "the gateway's span is not the client's child: {edge:?}"
        ));
    }
    let placed = trace.find(
        "the order service",
        "order-service",
        SpanKind::Server,
        "POST /api/v1/orders",
    )?;
    if placed.parent != edge.span_id {
        return Err(format!(
            "the order service's span is not the gateway's child: {placed:?}"
        ));
    }
    for step in ["saga reserve", "saga charge", "saga commit"] {
        let span = trace.find("the saga", "order-service", SpanKind::Internal, step)?;
        if !trace.descends(span, placed) {
            return Err(format!(
                "`{step}` does not descend from the request that placed the order"
            ));
        }
    }
    let (reserved, _) = trace.grpc_call("inventory-service")?;
    let (charged, _) = trace.grpc_call("payment-service")?;
    let created = trace.find(
        "the event",
        "order-service",
        SpanKind::Producer,
        "create orders.confirmed",
    )?;
    let processed = trace.find(
        "the notification service",
        "notification-service",
        SpanKind::Consumer,
        "process orders.confirmed",
    )?;
    if processed.parent != created.span_id {
        return Err(format!(
            "the consumer's span is not the producer's child: {processed:?}"
        ));
    }
    let sent = trace.find(
        "the email",
        "notification-service",
        SpanKind::Client,
        "send email",
    )?;
    if !trace.descends(sent, processed) {
        return Err(format!(
            "the email was not sent in the event's trace: {sent:?}"
        ));
    }
    // One trace: every span's parent is in it, but the first, whose parent is the client's.
    let ids: BTreeSet<&str> = spans.iter().map(|span| span.span_id.as_str()).collect();
    if let Some(orphan) = spans
        .iter()
        .find(|span| span.parent != client_span && !ids.contains(span.parent.as_str()))
    {
        return Err(format!(
            "a span whose parent is not in the trace: {orphan:?}"
        ));
    }

    conventional(edge, placed, (reserved, charged), (created, processed))
}

/// Whether the checkout's spans carry what OpenTelemetry's semantic conventions say they
/// should: HTTP server, gRPC server, and messaging producer and consumer attributes.
fn conventional(
    edge: &Received,
    placed: &Received,
    (reserved, charged): (&Received, &Received),
    (created, processed): (&Received, &Received),
) -> Result<(), String> {
    for (span, status) in [(edge, "201"), (placed, "201")] {
        let expected = [
            ("http.request.method", "POST"),
            ("http.route", "/api/v1/orders"),
            ("http.response.status_code", status),
            ("url.path", "/api/v1/orders"),
        ];
        for (key, value) in expected {
            if span.attribute(key) != Some(value) {
                return Err(format!(
                    "{}'s span: {key} is not {value}: {span:?}",
                    span.service
                ));
            }
        }
    }
    for (span, service) in [
        (reserved, "platform.inventory.v1.InventoryService"),
        (charged, "platform.payment.v1.PaymentService"),
    ] {
        let method = span.attribute("rpc.method").unwrap_or_default();
        let conventional = span.attribute("rpc.system") == Some("grpc")
            && span.attribute("rpc.service") == Some(service)
            && !method.is_empty()
            && span.name == format!("{service}/{method}")
            && span.attribute("rpc.grpc.status_code") == Some("0");
        if !conventional {
            return Err(format!("a gRPC span off the conventions: {span:?}"));
        }
    }
    let consumer = [
        ("messaging.system", "nats"),
        ("messaging.operation.type", "process"),
    ];
    for (key, value) in consumer {
        if processed.attribute(key) != Some(value) {
            return Err(format!(
                "the consumer's span: {key} is not {value}: {processed:?}"
            ));
        }
    }
    let destination = processed
        .attribute("messaging.destination.name")
        .unwrap_or_default();
    if !destination.ends_with("orders.confirmed")
        || processed.attribute("messaging.message.id").is_none()
        || created.attribute("messaging.message.id") != processed.attribute("messaging.message.id")
    {
        return Err(format!(
            "the event's spans do not name its subject and id: {created:?} {processed:?}"
        ));
    }
    Ok(())
}

/// Places an order for one of `sku` in a trace the client starts (as an instrumented browser
/// would); returns the order's id.
async fn place_in_trace(
    client: &Client,
    customer: &Customer,
    card: Uuid,
    sku: &str,
    traceparent: &str,
) -> Uuid {
    let response = client
        .http()
        .post(client.url("/api/v1/orders"))
        .bearer_auth(&customer.token)
        .header("Idempotency-Key", Uuid::now_v7().to_string())
        .header("traceparent", traceparent)
        .json(&json!({"items": [{"sku": sku, "quantity": 1}], "payment_method_id": card}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let order: Value = response.json().await.unwrap();
    order["id"].as_str().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_checkout_is_one_trace_from_the_gateway_to_the_email() {
    let (endpoint, mut exports) = collector().await;
    let (platform, client) = own_platform(|config| {
        for service in Service::all() {
            config.extra_env.entry(service).or_default().extend([
                ("OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(), endpoint.clone()),
                // Export every tenth of a second rather than every five.
                ("OTEL_BSP_SCHEDULE_DELAY".to_owned(), "100".to_owned()),
            ]);
        }
    })
    .await;
    let found = browse_the_catalogue(&client).await;
    let sku = found["items"][0]["sku"].as_str().unwrap().to_owned();
    let (customer, card) = customer_with_card(&client, GOOD).await;

    let trace_id = format!("{:032x}", Uuid::new_v4().as_u128());
    let client_span = "00f067aa0ba902b7";
    let id = place_in_trace(
        &client,
        &customer,
        card,
        &sku,
        &format!("00-{trace_id}-{client_span}-01"),
    )
    .await;
    let order = client
        .finished(&customer, id, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(order["status"], "CONFIRMED", "{order}");
    // The welcome, then the confirmation.
    mail(&customer.email, 2).await;

    let mut spans: Vec<Received> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let missing = match check_checkout(&spans, client_span) {
            Ok(()) => break,
            Err(missing) => missing,
        };
        match tokio::time::timeout_at(deadline, exports.recv()).await {
            Ok(Some(request)) => spans.extend(
                spans_of(request)
                    .into_iter()
                    .filter(|span| span.trace_id == trace_id),
            ),
            _ => {
                let names: Vec<String> = spans
                    .iter()
                    .map(|span| format!("{} {:?} {}", span.service, span.kind, span.name))
                    .collect();
                panic!("the checkout's trace is incomplete: {missing}\nreceived: {names:#?}");
            }
        }
    }
    let services: BTreeSet<&str> = spans.iter().map(|span| span.service.as_str()).collect();
    for service in [
        "gateway",
        "order-service",
        "inventory-service",
        "payment-service",
        "notification-service",
    ] {
        assert!(
            services.contains(service),
            "{service} is missing: {services:?}"
        );
    }
    platform.shutdown().await.unwrap();
}

/// The metric names and label names a process exports, from its `/metrics`.
fn exported(exposition: &str, into: &mut BTreeMap<String, BTreeSet<String>>) {
    for line in exposition.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let end = line.find(['{', ' ']).unwrap_or(line.len());
        let labels = into.entry(line[..end].to_owned()).or_default();
        if let Some(inside) = line[end..]
            .strip_prefix('{')
            .and_then(|rest| rest.split_once('}'))
            .map(|(inside, _)| inside)
        {
            // Label values here are metric-safe (routes, codes, names): no `,` or `=` inside.
            for pair in inside.split(',') {
                if let Some((name, _)) = pair.split_once('=') {
                    labels.insert(name.trim().to_owned());
                }
            }
        }
    }
}

/// PromQL words that are not metric names.
const KEYWORDS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "inf",
    "nan",
];

/// Labels Prometheus attaches itself.
const TARGET_LABELS: &[&str] = &["job", "instance"];

/// What an expression uses: metric names (with the labels its selector matches on), and the
/// label names of its `by`/`without`/`on`/`ignoring`/`group_*` clauses.
#[derive(Debug, Default)]
struct Uses {
    metrics: Vec<(String, Vec<String>)>,
    grouping: Vec<String>,
}

fn identifier_at(chars: &[char], start: usize) -> usize {
    let mut end = start;
    while end < chars.len()
        && (chars[end].is_ascii_alphanumeric() || matches!(chars[end], '_' | ':'))
    {
        end += 1;
    }
    end
}

fn skip_spaces(chars: &[char], mut at: usize) -> usize {
    while at < chars.len() && chars[at].is_whitespace() {
        at += 1;
    }
    at
}

/// The label names of a `{...}` matcher list or a `(...)` label list starting at `open`, and
/// where it ends.
fn label_list(chars: &[char], open: usize, close: char) -> (Vec<String>, usize) {
    let mut labels = Vec::new();
    let mut at = open + 1;
    let mut expect_name = true;
    while at < chars.len() && chars[at] != close {
        let c = chars[at];
        if c == '"' || c == '\'' {
            at += 1;
            while at < chars.len() && chars[at] != c {
                at += if chars[at] == '\\' { 2 } else { 1 };
            }
            at += 1;
            continue;
        }
        if c == ',' {
            expect_name = true;
        } else if expect_name && (c.is_ascii_alphabetic() || c == '_') {
            let end = identifier_at(chars, at);
            labels.push(chars[at..end].iter().collect());
            expect_name = false;
            at = end;
            continue;
        }
        at += 1;
    }
    (labels, at + 1)
}

fn uses(expression: &str) -> Uses {
    let chars: Vec<char> = expression.chars().collect();
    let mut found = Uses::default();
    let mut at = 0;
    while at < chars.len() {
        let c = chars[at];
        if c == '"' || c == '\'' || c == '`' {
            // A string (a label_replace argument, say): not a name.
            at += 1;
            while at < chars.len() && chars[at] != c {
                at += 1;
            }
            at += 1;
        } else if c == '[' {
            // A range or a subquery's step: durations and Grafana's `$__rate_interval`.
            while at < chars.len() && chars[at] != ']' {
                at += 1;
            }
            at += 1;
        } else if c == '$' {
            // A Grafana variable.
            at = identifier_at(&chars, at + 1);
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(at + 1).is_some_and(char::is_ascii_digit))
        {
            while at < chars.len() && (chars[at].is_ascii_alphanumeric() || chars[at] == '.') {
                at += 1;
            }
        } else if c == '{' {
            // A selector without a name: `{__name__=~"..."}` is not used here.
            let (_, end) = label_list(&chars, at, '}');
            at = end;
        } else if c.is_ascii_alphabetic() || c == '_' {
            let end = identifier_at(&chars, at);
            let word: String = chars[at..end].iter().collect();
            let next = skip_spaces(&chars, end);
            if matches!(
                word.as_str(),
                "by" | "without" | "on" | "ignoring" | "group_left" | "group_right"
            ) && chars.get(next) == Some(&'(')
            {
                let (labels, after) = label_list(&chars, next, ')');
                found.grouping.extend(labels);
                at = after;
            } else if chars.get(next) == Some(&'(') || KEYWORDS.contains(&word.as_str()) {
                // A function or an operator.
                at = end;
            } else {
                let labels = if chars.get(next) == Some(&'{') {
                    let (labels, after) = label_list(&chars, next, '}');
                    at = after;
                    labels
                } else {
                    at = end;
                    Vec::new()
                };
                found.metrics.push((word, labels));
            }
        } else {
            at += 1;
        }
    }
    found
}

/// Every `expr` of every Grafana dashboard (targets), and every `label_values(metric, label)`
/// of their variables.
fn dashboard_expressions(root: &Path) -> Vec<(String, String)> {
    fn walk(value: &Value, file: &str, out: &mut Vec<(String, String)>) {
        match value {
            Value::Object(map) => {
                for (key, value) in map {
                    match (key.as_str(), value) {
                        ("expr", Value::String(expression)) => {
                            out.push((file.to_owned(), expression.clone()));
                        }
                        ("query" | "definition", Value::String(query))
                            if query.starts_with("label_values(") =>
                        {
                            let inner = query
                                .trim_start_matches("label_values(")
                                .trim_end_matches(')');
                            let (metric, label) = inner.rsplit_once(',').unwrap_or((inner, ""));
                            out.push((
                                file.to_owned(),
                                format!("count by ({}) ({})", label.trim(), metric.trim()),
                            ));
                        }
                        _ => walk(value, file, out),
                    }
                }
            }
            Value::Array(items) => {
                for item in items {
                    walk(item, file, out);
                }
            }
            _ => {}
        }
    }
    let dir = root.join("deploy/observability/grafana/dashboards");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "json")
        })
        .collect();
    files.sort();
    assert!(files.len() >= 5, "the dashboards: {files:?}");
    let mut out = Vec::new();
    for file in files {
        let dashboard: Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        walk(&dashboard, &name, &mut out);
    }
    out
}

/// Every rule's `expr` in the alerting rules, and the names its recording rules define.
fn rule_expressions(root: &Path) -> (Vec<(String, String)>, BTreeSet<String>) {
    let file = root.join("deploy/prometheus/alerts.yml");
    let text = std::fs::read_to_string(&file).unwrap();
    let documents = yaml_rust2::YamlLoader::load_from_str(&text).unwrap();
    let mut expressions = Vec::new();
    let mut recorded = BTreeSet::new();
    for group in documents[0]["groups"].as_vec().unwrap() {
        for rule in group["rules"].as_vec().unwrap() {
            let name = rule["alert"]
                .as_str()
                .or_else(|| rule["record"].as_str())
                .unwrap()
                .to_owned();
            if let Some(record) = rule["record"].as_str() {
                recorded.insert(record.to_owned());
            }
            expressions.push((
                format!("alerts.yml {name}"),
                rule["expr"].as_str().unwrap().to_owned(),
            ));
        }
    }
    (expressions, recorded)
}

/// Series that exist only while something is wrong, with the labels they carry: the scrape of
/// a healthy platform cannot show them.
const WHILE_SOMETHING_IS_WRONG: &[(&str, &[&str])] = &[
    // One series per consumer and stream while dead letters wait.
    ("events_dead_letters", &["consumer", "stream"]),
];

/// Traffic that makes every kind of series appear: a sale and its cancellation (a refund), a
/// declined card, a failed sign-in.
async fn traffic_of_every_kind(client: &Client) {
    let found = browse_the_catalogue(client).await;
    let sku = found["items"][0]["sku"].as_str().unwrap().to_owned();
    let (customer, card) = customer_with_card(client, GOOD).await;
    let id = client
        .order_id(&customer, &[(&sku, 1)], card)
        .await
        .unwrap();
    let order = client
        .finished(&customer, id, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(order["status"], "CONFIRMED", "{order}");
    let cancel = client
        .post(
            &format!("/api/v1/orders/{id}/cancel"),
            Some(&customer.token),
            &Value::Null,
        )
        .await
        .unwrap();
    assert_eq!(cancel.status(), StatusCode::ACCEPTED);
    let (declined, declined_card) = customer_with_card(client, DECLINED).await;
    let refused = client
        .order_id(&declined, &[(&sku, 1)], declined_card)
        .await
        .unwrap();
    for (who, id) in [(&customer, id), (&declined, refused)] {
        let order = client
            .finished(who, id, Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(order["status"], "CANCELLED", "{order}");
    }
    let wrong = client
        .login(&customer.email, "not the password")
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    mail(&customer.email, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboards_and_alerts_use_only_metrics_the_platform_exports() {
    let (platform, client) = own_platform(|_| {}).await;
    traffic_of_every_kind(&client).await;

    let mut metrics: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for service in Service::all() {
        let url = format!("{}/metrics", platform.url(service));
        let body = client
            .http()
            .get(&url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        exported(&body, &mut metrics);
    }
    metrics.insert("up".to_owned(), BTreeSet::new());
    for (name, labels) in WHILE_SOMETHING_IS_WRONG {
        metrics
            .entry((*name).to_owned())
            .or_default()
            .extend(labels.iter().map(|label| (*label).to_owned()));
    }

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let (rules, recorded) = rule_expressions(&root);
    let mut expressions = dashboard_expressions(&root);
    expressions.extend(rules);
    let mut problems = Vec::new();
    for (place, expression) in &expressions {
        let used = uses(expression);
        let mut labels: BTreeSet<&str> = TARGET_LABELS.iter().copied().collect();
        for (metric, matched) in &used.metrics {
            if recorded.contains(metric) {
                // A recording rule's labels are its expression's, checked there.
                labels.extend(matched.iter().map(String::as_str));
                continue;
            }
            let Some(exported) = metrics.get(metric) else {
                problems.push(format!(
                    "{place}: `{metric}` is exported by no process ({expression})"
                ));
                continue;
            };
            labels.extend(exported.iter().map(String::as_str));
            for label in matched {
                if !exported.contains(label) && !TARGET_LABELS.contains(&label.as_str()) {
                    problems.push(format!(
                        "{place}: `{metric}` has no label `{label}` ({expression})"
                    ));
                }
            }
        }
        if used
            .metrics
            .iter()
            .any(|(metric, _)| recorded.contains(metric))
        {
            continue;
        }
        for label in &used.grouping {
            if !labels.contains(label.as_str()) {
                problems.push(format!(
                    "{place}: groups by `{label}`, which none of its metrics has ({expression})"
                ));
            }
        }
    }
    assert!(
        expressions.len() > 50,
        "the dashboards and rules hold {} expressions",
        expressions.len()
    );
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}\n\nexported: {metrics:#?}",
        problems.len(),
        problems.join("\n")
    );
    platform.shutdown().await.unwrap();
}

#[test]
fn the_expression_reader_finds_metrics_labels_and_groupings() {
    let used = uses(
        "histogram_quantile(0.95, sum by (le, job) (rate(http_server_request_duration_seconds_bucket{route=~\"/api.*\", job=\"$job\"}[$__rate_interval]))) > 0.5 and on (job) up == 1",
    );
    assert_eq!(
        used.metrics,
        vec![
            (
                "http_server_request_duration_seconds_bucket".to_owned(),
                vec!["route".to_owned(), "job".to_owned()]
            ),
            ("up".to_owned(), vec![]),
        ]
    );
    assert_eq!(used.grouping, vec!["le", "job", "job"]);
    let recording = uses("checkout:saga_error_ratio:rate1h > (14.4 * 0.005)");
    assert_eq!(
        recording.metrics,
        vec![("checkout:saga_error_ratio:rate1h".to_owned(), vec![])]
    );
}
