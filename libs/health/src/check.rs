//! What a dependency check is.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

/// The future a [`HealthCheck`] returns: `Ok(())` when the dependency answered, else why not.
pub type CheckFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// One dependency a service needs to serve traffic, asked whether it answers.
///
/// Object safe, so a [`crate::Health`] holds checks of any kind side by side. The check need not
/// bound its own duration: [`crate::Health`] runs it under a timeout and reports it down when the
/// timeout passes first (the future is dropped then, so it must be cancel safe).
///
/// ```
/// use platform_health::{CheckFuture, HealthCheck};
///
/// struct Upstream(String);
///
/// impl HealthCheck for Upstream {
///     fn name(&self) -> &str {
///         "catalogue"
///     }
///
///     fn check(&self) -> CheckFuture<'_> {
///         Box::pin(async move {
///             if self.0.is_empty() { Err("no upstream configured".to_owned()) } else { Ok(()) }
///         })
///     }
/// }
/// ```
pub trait HealthCheck: Send + Sync {
    /// The name the readiness report shows, e.g. `postgres`.
    fn name(&self) -> &str;

    /// Asks the dependency whether it answers; `Err` carries a message saying why not.
    fn check(&self) -> CheckFuture<'_>;
}

/// A [`HealthCheck`] made of a name and an async closure; see [`check_fn`].
pub struct FnCheck<F> {
    name: String,
    probe: F,
}

/// Makes a [`HealthCheck`] from a name and a closure returning the check's future, for a
/// dependency without a built-in check (an upstream service, a file, a licence server).
///
/// ```
/// use platform_health::{Health, check_fn};
///
/// let health = Health::new().with_check(check_fn("scratch-dir", || async {
///     tokio::fs::metadata("/tmp").await.map(|_| ()).map_err(|error| error.to_string())
/// }));
/// # let _ = health;
/// ```
pub fn check_fn<F, Fut>(name: impl Into<String>, probe: F) -> FnCheck<F>
where
    F: Fn() -> Fut + Send + Sync,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    FnCheck {
        name: name.into(),
        probe,
    }
}

impl<F, Fut> HealthCheck for FnCheck<F>
where
    F: Fn() -> Fut + Send + Sync,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }

    fn check(&self) -> CheckFuture<'_> {
        Box::pin((self.probe)())
    }
}

impl<F> fmt::Debug for FnCheck<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnCheck")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}
