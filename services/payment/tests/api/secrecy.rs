//! A card number is never stored or logged beyond its last four digits.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use platform_testkit::eventually;
use platform_testkit::service::{Identities, http_client};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::helpers::{SUCCEEDS, card, spawn_app, test_config};

const NUMBER: &str = "4242424242424242";

#[tokio::test]
async fn no_table_holds_a_full_card_number() {
    let app = spawn_app().await;
    let ada = app.user();
    let method = app.card(&ada, SUCCEEDS).await;
    app.charge(Uuid::now_v7(), &ada, method, 100).await.unwrap();
    app.exactly_payment_events(1).await;

    let columns: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns \
         WHERE table_schema = 'public'",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert!(
        columns.len() > 40,
        "every column of every table: {}",
        columns.len()
    );
    for (table, column) in columns {
        let hits: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            r#"SELECT count(*) FROM "{table}" WHERE "{column}"::text LIKE '%{NUMBER}%'"#
        )))
        .fetch_one(&app.pool)
        .await
        .unwrap();
        assert_eq!(hits, 0, "{table}.{column} holds the card number");
    }
}

/// The service binary with trace logging, its output collected line by line.
struct LoggedService {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    log: Vec<String>,
}

impl LoggedService {
    fn start(config: &payment_service::Settings) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_payment-service"))
            .env(
                "PAYMENT_SERVICE__DATABASE__URL",
                config.own.database.url.expose(),
            )
            .env("PAYMENT_SERVICE__HTTP__HOST", "127.0.0.1")
            .env("PAYMENT_SERVICE__HTTP__PORT", "0")
            .env("PAYMENT_SERVICE__GRPC__HOST", "127.0.0.1")
            .env("PAYMENT_SERVICE__GRPC__PORT", "0")
            .env("PAYMENT_SERVICE__NATS__URL", &config.common.nats.url)
            .env(
                "PAYMENT_SERVICE__NATS__SUBJECT_PREFIX",
                config.common.nats.subject_prefix.as_deref().unwrap(),
            )
            .env(
                "PAYMENT_SERVICE__JWT__JWKS_URL",
                &config.common.jwt.jwks_url,
            )
            .env("RUST_LOG", "trace")
            .env("LOG_FORMAT", "json")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (sender, lines) = mpsc::unbounded_channel::<String>();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let sender = sender.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = sender.send(line);
                }
            });
        }
        Self {
            child,
            lines,
            log: Vec::new(),
        }
    }

    fn collect(&mut self) {
        while let Ok(line) = self.lines.try_recv() {
            self.log.push(line);
        }
    }

    /// The HTTP address from the `listening` log line.
    async fn address(&mut self) -> String {
        eventually(Duration::from_secs(20), "the service to listen", || {
            self.collect();
            let address = self.log.iter().find_map(|line| {
                let line: serde_json::Value = serde_json::from_str(line).ok()?;
                (line["message"] == "listening")
                    .then(|| line["http"].as_str().map(str::to_owned))?
            });
            async move { address }
        })
        .await
        .unwrap()
    }

    /// Stops the service and returns everything it logged.
    async fn stop(mut self) -> Vec<String> {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _ = self.child.kill();
        let _ = self.child.wait();
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.collect();
        self.log
    }
}

#[tokio::test]
async fn the_logs_never_hold_a_full_card_number_even_at_trace_level() {
    let identities = Identities::new();
    let jwks = identities.serve_jwks().await;
    let config = test_config(jwks.url()).await;
    let mut service = LoggedService::start(&config);
    let address = service.address().await;

    let ada = identities.customer();
    let client = http_client();
    let url = format!("http://{address}/api/v1/payment-methods");
    let add = |number: &str| {
        client
            .post(&url)
            .bearer_auth(&ada.token)
            .json(&card(number))
            .send()
    };
    for number in [SUCCEEDS, NUMBER, "4242-4242-4242-4242"] {
        assert_eq!(add(number).await.unwrap().status(), 201);
    }
    // A refused card's number goes no further than the validation either.
    assert_eq!(add("4242 4242 4242 4241").await.unwrap().status(), 422);

    let log = service.stop().await;
    assert!(
        log.len() > 20,
        "trace logging produced the log searched: {} lines",
        log.len()
    );
    assert!(log.iter().any(|line| line.contains("payment method added")));
    let forms = [
        NUMBER,
        SUCCEEDS,
        "4242-4242-4242-4242",
        "4242424242424241",
        "4242 4242 4242 4241",
    ];
    for line in &log {
        for form in forms {
            assert!(!line.contains(form), "logged: {line}");
        }
    }
}
