//! Finished spans kept in memory, for tests that assert on trace structure (enabled by the
//! `testing` feature; [`crate::init_for_tests`] wires the exporter in).

use std::sync::OnceLock;

use opentelemetry_sdk::trace::InMemorySpanExporter;
pub use opentelemetry_sdk::trace::SpanData;

/// The process-wide in-memory exporter behind [`crate::init_for_tests`].
pub fn exporter() -> &'static InMemorySpanExporter {
    static EXPORTER: OnceLock<InMemorySpanExporter> = OnceLock::new();
    EXPORTER.get_or_init(InMemorySpanExporter::default)
}

/// Every span finished so far in this process.
pub fn finished_spans() -> Vec<SpanData> {
    exporter().get_finished_spans().unwrap_or_default()
}
