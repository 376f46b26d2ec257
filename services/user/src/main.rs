//! `user-service`: serve, or `user-service create-admin --email ...` (password on stdin).

use std::io::BufRead as _;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use user_service::{SERVICE_NAME, Settings};

/// The user service. Configuration comes from `USER_SERVICE__...` environment variables.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP and gRPC APIs (the default).
    Serve,
    /// Create an administrator, or give an existing account the admin role. The password of a
    /// new account is read from the first line of standard input.
    CreateAdmin {
        /// The administrator's email.
        #[arg(long)]
        email: String,
    },
    /// Print a new Ed25519 signing key (PKCS#8 PEM) for USER_SERVICE__TOKENS__SIGNING_KEY_PEM.
    GenerateSigningKey,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::GenerateSigningKey) = cli.command {
        print!("{}", platform_auth::TokenSigner::generate_pkcs8_pem());
        return ExitCode::SUCCESS;
    }
    let prefix = &platform_kit::registry::service(SERVICE_NAME).env_prefix;
    platform_kit::run_main(
        SERVICE_NAME,
        Settings::load(prefix),
        |settings| async move {
            match cli.command.unwrap_or(Command::Serve) {
                Command::Serve => serve(settings).await,
                Command::CreateAdmin { email } => create_admin(&settings, &email).await,
                Command::GenerateSigningKey => unreachable!("handled before configuration is read"),
            }
        },
    )
    .await
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    platform_kit::serve(user_service::build(settings).await?).await
}

async fn create_admin(settings: &Settings, email: &str) -> anyhow::Result<()> {
    let mut password = String::new();
    std::io::stdin().lock().read_line(&mut password)?;
    let password = password.trim_end_matches(['\r', '\n']);
    let (user, created) = user_service::create_admin(settings, email, password).await?;
    if created {
        println!("created administrator {} ({})", user.email, user.id);
    } else {
        println!("granted the admin role to {} ({})", user.email, user.id);
    }
    Ok(())
}
