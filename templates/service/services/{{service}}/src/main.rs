//! `{{binary}}`: configuration from `{{env_prefix}}__...` variables, then serve.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    platform_kit::main({{crate_ident}}::SERVICE_NAME, {{crate_ident}}::build).await
}
