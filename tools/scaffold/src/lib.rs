//! What `cargo generate` runs in its hooks.
//!
//! - [`rename`]: the platform template's post-hook turns every name of the platform into the
//!   team's (crates, binaries, image names, compose project, Kubernetes namespace and labels).
//! - [`service`], [`wire`], [`deploy`]: the service template's hooks check the answers against
//!   the workspace (`plan`, before anything is written) and make the edits in existing files
//!   that a new service needs (`apply`), all or nothing through [`Edits`].

pub mod deploy;
pub mod edits;
pub mod rename;
pub mod service;
pub mod wire;

pub use edits::Edits;
pub use service::{Answers, EventType, NewService};

/// Every edit a new service needs in existing files, planned (nothing is written).
pub fn service_edits(root: &std::path::Path, service: &NewService) -> anyhow::Result<Edits> {
    let mut edits = Edits::new(root);
    wire::plan(&mut edits, service)?;
    deploy::plan(&mut edits, service)?;
    Ok(edits)
}
