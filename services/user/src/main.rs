//! `user-service`: serve, `user-service create-admin --email ...` (password on stdin), or
//! `user-service healthcheck` (the container probe).

use std::io::BufRead as _;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use platform_health::probe::{self, Probe};
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
    /// Ask the running service for its readiness (`/health/ready`, or `/health/live` with
    /// `--live`) on the port of USER_SERVICE__HTTP__PORT; exit 0 when it answers 200. For
    /// container healthchecks: the images have no curl.
    Healthcheck {
        /// Ask for liveness instead of readiness.
        #[arg(long)]
        live: bool,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let entry = platform_kit::registry::service(SERVICE_NAME);
    match cli.command {
        Some(Command::GenerateSigningKey) => {
            print!("{}", platform_auth::TokenSigner::generate_pkcs8_pem());
            return ExitCode::SUCCESS;
        }
        Some(Command::Healthcheck { live }) => {
            let probe = if live { Probe::Live } else { Probe::Ready };
            return probe::report(probe::check(&entry.env_prefix, entry.http_port, probe));
        }
        _ => {}
    }
    let prefix = &entry.env_prefix;
    platform_kit::run_main(
        SERVICE_NAME,
        Settings::load(prefix),
        |settings| async move {
            match cli.command.unwrap_or(Command::Serve) {
                Command::Serve => serve(settings).await,
                Command::CreateAdmin { email } => create_admin(&settings, &email).await,
                Command::GenerateSigningKey | Command::Healthcheck { .. } => {
                    unreachable!("handled before configuration is read")
                }
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
