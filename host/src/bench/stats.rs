//! Small arithmetic the report shares: percentiles of measured latencies, rates, differences
//! of counters.

use std::time::Duration;

/// The nearest-rank percentile of `sorted` (ascending): the smallest value with at least
/// `fraction` of the values at or below it. Zero when there are none.
pub fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (sorted.len() as f64 * fraction).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// p50, p95 and p99 of `latencies` (in any order), in milliseconds.
pub fn p50_p95_p99(latencies: &[Duration]) -> [f64; 3] {
    let mut sorted = latencies.to_vec();
    sorted.sort();
    [0.50, 0.95, 0.99].map(|fraction| ms(percentile(&sorted, fraction)))
}

/// Milliseconds.
pub fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// `count` per `unit` of something; `None` when there was none of it.
pub fn per(count: f64, unit: f64) -> Option<f64> {
    (unit > 0.0).then(|| count / unit)
}

/// `after - before` of two readings of a counter that only grows; `None` if either is
/// missing, or if it went backwards (the process restarted).
pub fn growth(before: Option<f64>, after: Option<f64>) -> Option<f64> {
    let (before, after) = (before?, after?);
    (after >= before).then_some(after - before)
}

/// `value` with `decimals`, or `not measured`.
pub fn or_not_measured(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(
        || "not measured".to_owned(),
        |value| format!("{value:.decimals$}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn millis(values: &[u64]) -> Vec<Duration> {
        values.iter().copied().map(Duration::from_millis).collect()
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let sorted = millis(&(1..=100).collect::<Vec<_>>());
        assert_eq!(percentile(&sorted, 0.50), Duration::from_millis(50));
        assert_eq!(percentile(&sorted, 0.95), Duration::from_millis(95));
        assert_eq!(percentile(&sorted, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&sorted, 1.0), Duration::from_millis(100));
        assert_eq!(percentile(&sorted, 0.0), Duration::from_millis(1));
        let few = millis(&[10, 20, 30]);
        assert_eq!(percentile(&few, 0.50), Duration::from_millis(20));
        assert_eq!(percentile(&few, 0.99), Duration::from_millis(30));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }

    #[test]
    fn p50_p95_p99_sorts_first() {
        let mut values = millis(&(1..=200).collect::<Vec<_>>());
        values.reverse();
        let found = p50_p95_p99(&values);
        for (found, expected) in found.iter().zip([100.0, 190.0, 198.0]) {
            assert!((found - expected).abs() < 1e-9, "{found} is not {expected}");
        }
    }

    #[test]
    fn counters_grow_or_are_unknown() {
        assert_eq!(growth(Some(5.0), Some(12.0)), Some(7.0));
        assert_eq!(growth(Some(12.0), Some(5.0)), None);
        assert_eq!(growth(None, Some(5.0)), None);
        assert_eq!(per(10.0, 4.0), Some(2.5));
        assert_eq!(per(10.0, 0.0), None);
        assert_eq!(or_not_measured(Some(1.234), 1), "1.2");
        assert_eq!(or_not_measured(None, 1), "not measured");
    }
}
