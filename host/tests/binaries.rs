//! Each binary of the platform, started as a deployment starts it: a variable that no setting
//! reads (a typo, or a setting renamed since the deployment was written) is named on stderr
//! rather than ignored in silence.

use std::path::PathBuf;
use std::process::Command;

use platform_host::launcher::Service;

#[test]
fn every_binary_names_a_variable_no_setting_reads() {
    let dir = PathBuf::from(env!("CARGO_BIN_EXE_platform"))
        .parent()
        .expect("the test binary has a directory")
        .to_path_buf();
    for service in Service::all() {
        let binary = dir.join(service.binary());
        let prefix = service.env_prefix();
        // Each service stops at once without its store, named where the misspelt variable
        // meant to set it; the storefront, without its session store; the gateway, without its
        // route table.
        let (misspelt, read, value) = if service.entry().is_some() {
            let read = format!("{prefix}__HTTP__PORT");
            (format!("{prefix}__DATABSE__URL"), read, "8000")
        } else if service == Service::STOREFRONT {
            let read = format!("{prefix}__REDIS__URL");
            (format!("{prefix}__HTPP__PORT"), read, "redis://127.0.0.1:1")
        } else {
            let read = format!("{prefix}__ROUTES__FILE");
            (
                format!("{prefix}__HTPP__PORT"),
                read,
                "/nonexistent/routes.toml",
            )
        };
        let output = Command::new(&binary)
            .env_clear()
            .env(&misspelt, "8000")
            .env(&read, value)
            .output()
            .unwrap_or_else(|error| {
                panic!(
                    "{}: {error} (run `cargo build --bins` first)",
                    binary.display()
                )
            });
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{}: {stderr}", service.binary());
        assert!(
            stderr.contains(&format!(
                "warning: {misspelt} is set, but no setting has that name: ignored"
            )),
            "{}: {stderr}",
            service.binary()
        );
        assert!(
            !stderr.contains(&format!("warning: {read} ")),
            "{}: a variable that is read is not named: {stderr}",
            service.binary()
        );
    }
}
