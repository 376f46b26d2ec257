//! Administrators: created by configuration or by the `create-admin` command, never by an
//! open endpoint.

use std::io::Write as _;
use std::process::{Command, Stdio};

use platform_auth::Role;
use platform_config::Secret;
use platform_testkit::unique_name;

use crate::helpers::{PASSWORD, spawn_app, spawn_app_with, test_config};
use user_service::config::BootstrapAdmin;

#[tokio::test]
async fn a_bootstrap_admin_from_configuration_logs_in_with_the_admin_role() {
    let email = format!("{}@example.com", unique_name("root"));
    let app = spawn_app_with(|config| {
        config.own.bootstrap_admin = Some(BootstrapAdmin {
            email: email.clone(),
            password: Secret::new(PASSWORD),
        });
    })
    .await;

    let tokens = app.tokens(&email).await;
    let user = app.verifier().verify(&tokens.access_token).await.unwrap();
    assert_eq!(user.roles, vec![Role::Customer, Role::Admin]);
}

#[tokio::test]
async fn bootstrapping_an_existing_account_promotes_it_and_keeps_its_password() {
    let first = spawn_app().await;
    let email = first.registered().await;
    let database = first.config.own.database.clone();
    let nats = first.config.common.nats.clone();
    first.stop().await;

    let restarted = spawn_app_with(|config| {
        config.own.database = database;
        config.common.nats = nats;
        config.own.bootstrap_admin = Some(BootstrapAdmin {
            email: email.clone(),
            password: Secret::new("this password is ignored"),
        });
    })
    .await;

    let tokens = restarted.tokens(&email).await;
    let user = restarted
        .verifier()
        .verify(&tokens.access_token)
        .await
        .unwrap();
    assert!(user.roles.contains(&Role::Admin));
}

#[tokio::test]
async fn the_create_admin_command_creates_an_administrator() {
    let (config, _) = test_config().await;
    let email = format!("{}@example.com", unique_name("ops"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_user-service"))
        .args(["create-admin", "--email", &email])
        .env(
            "USER_SERVICE__DATABASE__URL",
            config.own.database.url.expose(),
        )
        .env("USER_SERVICE__NATS__URL", &config.common.nats.url)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("created administrator"));

    let app = spawn_app_with(|c| c.own.database = config.own.database.clone()).await;
    let tokens = app.tokens(&email).await;
    let user = app.verifier().verify(&tokens.access_token).await.unwrap();
    assert!(user.roles.contains(&Role::Admin));
}

#[tokio::test]
async fn the_service_refuses_to_start_without_its_database_url() {
    let output = Command::new(env!("CARGO_BIN_EXE_user-service"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("USER_SERVICE__DATABASE__* settings are required, but none is set"),
        "{stderr}"
    );
}

#[tokio::test]
async fn generate_signing_key_prints_a_key_the_service_accepts() {
    let output = Command::new(env!("CARGO_BIN_EXE_user-service"))
        .arg("generate-signing-key")
        .output()
        .unwrap();
    assert!(output.status.success());
    let pem = String::from_utf8(output.stdout).unwrap();
    assert!(platform_auth::TokenSigner::from_pkcs8_pem("k", &pem).is_ok());
}
