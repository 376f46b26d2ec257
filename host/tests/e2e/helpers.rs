//! Starting a platform of its own for a test.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use platform_host::{Client, Customer, Infra, Platform, PlatformConfig, Ports, Service};
use platform_testkit::{Server, unique_name, url};

pub const ADMIN: (&str, &str) = ("operator@e2e.example", "correct horse battery staple");

/// The directory of the services' and the gateway's binaries. This crate links none of them:
/// `cargo nextest run --workspace` (`make test`) builds them with the tests, beside this
/// crate's own binary; alone, build them first (`cargo build --bins`).
fn service_binaries() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_BIN_EXE_platform"))
        .parent()
        .expect("the test binary has a directory")
        .to_path_buf();
    for service in Service::all() {
        let binary = dir.join(service.binary());
        assert!(
            binary.is_file(),
            "{} is missing: run the workspace's tests (`make test`) or `cargo build --bins` first",
            binary.display()
        );
    }
    dir
}

/// A platform of its own: databases, NATS namespace and Redis keys under a unique prefix.
pub async fn platform(customise: impl FnOnce(&mut PlatformConfig)) -> (Platform, Client) {
    platform_http::install_crypto_provider();
    let namespace = unique_name("e2e");
    let mut config = PlatformConfig {
        bin_dir: service_binaries(),
        infra: Infra {
            postgres: url(Server::Postgres).await.unwrap(),
            mongodb: url(Server::Mongo).await.unwrap(),
            redis: url(Server::Redis).await.unwrap(),
            nats: url(Server::Nats).await.unwrap(),
            smtp: url(Server::Smtp).await.unwrap(),
        },
        ports: Ports::free().unwrap(),
        namespace: namespace.clone(),
        log_dir: std::env::temp_dir().join("platform-e2e").join(&namespace),
        signing_key_pem: platform_auth::TokenSigner::generate_pkcs8_pem(),
        service_secret: format!("e2e-service-secret-{}", uuid::Uuid::new_v4().simple()),
        admin: (ADMIN.0.to_owned(), ADMIN.1.to_owned()),
        operations_email: format!("{}@e2e.example", unique_name("ops")),
        seed_demo: true,
        extra_env: BTreeMap::new(),
    };
    // Tests sign in many customers from one address and poll orders hard; the rate-limit test
    // sets its own limit.
    for class in ["AUTH", "READ", "WRITE"] {
        config.set(
            Service::GATEWAY,
            &format!("RATE_LIMIT__{class}__LIMIT"),
            &100_000,
        );
    }
    // Deliveries retried quickly when a test breaks something.
    config.set(
        Service::named("notification"),
        "DELIVERY__RETRY_BASE_MS",
        &200,
    );
    customise(&mut config);
    let platform = Platform::start(config)
        .await
        .unwrap_or_else(|error| panic!("the platform did not start: {error:#}"));
    let client = Client::new(platform.gateway_url());
    (platform, client)
}

/// A new customer with a card.
pub async fn customer_with_card(client: &Client, card: &str) -> (Customer, uuid::Uuid) {
    let email = format!("{}@example.com", unique_name("shopper"));
    let customer = client.customer(&email, "Shopper").await.unwrap();
    let method = client.add_card(&customer, card).await.unwrap();
    (customer, method)
}

/// Waits for the mail to `address` (`count` messages).
pub async fn mail(address: &str, count: usize) -> Vec<platform_testkit::mail::CapturedMail> {
    platform_testkit::mail::wait_for_mail(address, count, Duration::from_secs(30))
        .await
        .unwrap()
}
