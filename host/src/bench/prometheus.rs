//! Just enough of the Prometheus text format to diff a process's histograms between two
//! scrapes of its `/metrics`, and to estimate quantiles from their buckets as Prometheus'
//! `histogram_quantile` does.

use std::collections::BTreeMap;

/// A series' labels, sorted by name.
pub type Labels = BTreeMap<String, String>;

/// One line of the exposition: `name{labels} value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The metric's name (with its `_bucket`, `_sum` or `_count` suffix).
    pub name: String,
    /// Its labels.
    pub labels: Labels,
    /// Its value.
    pub value: f64,
}

/// Every sample of `text`; comments, blank lines and lines that do not parse are skipped.
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line.find(['{', ' ', '\t']).unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty() {
        return None;
    }
    let mut rest = &line[name_end..];
    let mut labels = Labels::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let (parsed, after) = parse_labels(inner)?;
        labels = parsed;
        rest = after;
    }
    // The value, then an optional timestamp.
    let value = parse_value(rest.split_whitespace().next()?)?;
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// `a="x",b="y\"z"}` → the labels and what follows the `}`.
fn parse_labels(mut text: &str) -> Option<(Labels, &str)> {
    let mut labels = Labels::new();
    loop {
        text = text.trim_start_matches([' ', ',']);
        if let Some(after) = text.strip_prefix('}') {
            return Some((labels, after));
        }
        let (key, after) = text.split_once('=')?;
        let mut chars = after.strip_prefix('"')?.char_indices();
        let mut value = String::new();
        let end = loop {
            match chars.next()? {
                (index, '"') => break index,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                (_, other) => value.push(other),
            }
        };
        labels.insert(key.trim().to_owned(), value);
        text = &after[1 + end + 1..];
    }
}

fn parse_value(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        other => other.parse().ok(),
    }
}

/// A histogram series: cumulative bucket counts by upper bound, the sum and the count.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Histogram {
    /// `(le, cumulative count)`, by increasing `le` (the last is `+Inf`).
    pub buckets: Vec<(f64, f64)>,
    /// The sum of the observations.
    pub sum: f64,
    /// How many observations.
    pub count: f64,
}

impl Histogram {
    /// What was observed after `before` (an earlier scrape of the same series) was taken.
    #[must_use]
    pub fn since(&self, before: Option<&Histogram>) -> Histogram {
        let Some(before) = before else {
            return self.clone();
        };
        let earlier = |le: f64| {
            before
                .buckets
                .iter()
                .find(|(bound, _)| bound.total_cmp(&le).is_eq())
                .map_or(0.0, |(_, count)| *count)
        };
        Histogram {
            buckets: self
                .buckets
                .iter()
                .map(|(le, count)| (*le, count - earlier(*le)))
                .collect(),
            sum: self.sum - before.sum,
            count: self.count - before.count,
        }
    }

    /// The mean observation, if any.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0.0).then(|| self.sum / self.count)
    }

    /// The `q`-quantile (0 to 1) estimated from the buckets like `histogram_quantile`: find the
    /// bucket the rank falls in and interpolate linearly between its bounds (the first bucket's
    /// lower bound is 0; a rank in the `+Inf` bucket gives the highest finite bound).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.buckets.last()?.1;
        if total <= 0.0 || !(0.0..=1.0).contains(&q) {
            return None;
        }
        let rank = q * total;
        let mut lower = (0.0, 0.0);
        for &(le, count) in &self.buckets {
            if count >= rank {
                if le.is_infinite() {
                    return Some(lower.0);
                }
                if count <= lower.1 {
                    // An empty bucket (only a rank of 0 lands in one).
                    return Some(le);
                }
                return Some(lower.0 + (le - lower.0) * (rank - lower.1) / (count - lower.1));
            }
            lower = (le, count);
        }
        Some(lower.0)
    }
}

/// The histograms named `name` (the base name, without `_bucket`), by their labels (without
/// `le`).
pub fn histograms(samples: &[Sample], name: &str) -> BTreeMap<Labels, Histogram> {
    let bucket = format!("{name}_bucket");
    let sum = format!("{name}_sum");
    let count = format!("{name}_count");
    let mut found: BTreeMap<Labels, Histogram> = BTreeMap::new();
    for sample in samples {
        let mut labels = sample.labels.clone();
        if sample.name == bucket {
            let Some(le) = labels.remove("le").as_deref().and_then(parse_value) else {
                continue;
            };
            found
                .entry(labels)
                .or_default()
                .buckets
                .push((le, sample.value));
        } else if sample.name == sum {
            found.entry(labels).or_default().sum = sample.value;
        } else if sample.name == count {
            found.entry(labels).or_default().count = sample.value;
        }
    }
    for histogram in found.values_mut() {
        histogram.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    found.retain(|_, histogram| !histogram.buckets.is_empty());
    found
}

/// Each series of `after` since `before` (earlier scrapes), without the series that saw nothing.
pub fn diff(
    after: &BTreeMap<Labels, Histogram>,
    before: &BTreeMap<Labels, Histogram>,
) -> BTreeMap<Labels, Histogram> {
    after
        .iter()
        .map(|(labels, histogram)| (labels.clone(), histogram.since(before.get(labels))))
        .filter(|(_, histogram)| histogram.count > 0.0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRAPE: &str = r#"# HELP orders_saga_step_duration_seconds Saga step time.
# TYPE orders_saga_step_duration_seconds histogram
orders_saga_step_duration_seconds_bucket{step="reserve",result="ok",le="0.005"} 1
orders_saga_step_duration_seconds_bucket{step="reserve",result="ok",le="0.01"} 3
orders_saga_step_duration_seconds_bucket{step="reserve",result="ok",le="+Inf"} 4
orders_saga_step_duration_seconds_sum{step="reserve",result="ok"} 0.05
orders_saga_step_duration_seconds_count{step="reserve",result="ok"} 4
orders_saga_step_duration_seconds_bucket{le="0.005",result="ok",step="charge"} 0
orders_saga_step_duration_seconds_bucket{result="ok",step="charge",le="0.01"} 2
orders_saga_step_duration_seconds_bucket{step="charge",result="ok",le="+Inf"} 2
orders_saga_step_duration_seconds_sum{step="charge",result="ok"} 0.016
orders_saga_step_duration_seconds_count{step="charge",result="ok"} 2

http_server_requests_total{method="GET",route="/a \"b\", c"} 7 1700000000000
process_up 1
"#;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn lines_parse_into_names_labels_and_values() {
        let samples = parse(SCRAPE);
        assert_eq!(samples.len(), 12, "comments and blank lines are skipped");
        let requests = &samples[10];
        assert_eq!(requests.name, "http_server_requests_total");
        assert_eq!(
            requests.labels,
            labels(&[("method", "GET"), ("route", "/a \"b\", c")])
        );
        assert!(
            (requests.value - 7.0).abs() < f64::EPSILON,
            "the timestamp is not the value"
        );
        assert_eq!(samples[11].name, "process_up");
        assert!(samples[11].labels.is_empty());
        assert!(samples[2].labels["le"] == "+Inf");
        assert!(parse("broken{a=\"x} 1\nno_value{a=\"x\"}\n").is_empty());
    }

    #[test]
    fn histograms_group_by_labels_without_le_and_sort_buckets() {
        let found = histograms(&parse(SCRAPE), "orders_saga_step_duration_seconds");
        assert_eq!(found.len(), 2);
        let charge = &found[&labels(&[("result", "ok"), ("step", "charge")])];
        assert_eq!(
            charge.buckets,
            vec![(0.005, 0.0), (0.01, 2.0), (f64::INFINITY, 2.0)]
        );
        assert!((charge.count - 2.0).abs() < f64::EPSILON);
        assert!((charge.mean().unwrap() - 0.008).abs() < 1e-12);
        assert!(histograms(&parse(SCRAPE), "http_server_requests").is_empty());
    }

    #[test]
    fn a_diff_keeps_only_what_happened_between_scrapes() {
        let before = histograms(&parse(SCRAPE), "orders_saga_step_duration_seconds");
        let later = SCRAPE
            .replace(r#"le="0.01"} 3"#, r#"le="0.01"} 9"#)
            .replace(r#"le="+Inf"} 4"#, r#"le="+Inf"} 10"#)
            .replace("0.05\n", "0.11\n")
            .replace(r#"result="ok"} 4"#, r#"result="ok"} 10"#);
        let after = histograms(&parse(&later), "orders_saga_step_duration_seconds");
        let changed = diff(&after, &before);
        assert_eq!(changed.len(), 1, "charge saw nothing new");
        let reserve = &changed[&labels(&[("result", "ok"), ("step", "reserve")])];
        assert_eq!(
            reserve.buckets,
            vec![(0.005, 0.0), (0.01, 6.0), (f64::INFINITY, 6.0)]
        );
        assert!((reserve.count - 6.0).abs() < f64::EPSILON);
        assert!((reserve.sum - 0.06).abs() < 1e-12);
    }

    #[test]
    fn quantiles_interpolate_inside_the_bucket_like_prometheus() {
        let histogram = Histogram {
            buckets: vec![(0.1, 10.0), (0.2, 30.0), (0.5, 40.0), (f64::INFINITY, 40.0)],
            sum: 0.0,
            count: 40.0,
        };
        let close = |a: Option<f64>, b: f64| (a.unwrap() - b).abs() < 1e-9;
        // Rank 20 is halfway through the (0.1, 0.2] bucket's 20 observations.
        assert!(close(histogram.quantile(0.5), 0.15));
        // Rank 4 is 40 % into the first bucket, whose lower bound is 0.
        assert!(close(histogram.quantile(0.1), 0.04));
        // Rank 39.6: 96 % through the (0.2, 0.5] bucket.
        assert!(close(histogram.quantile(0.99), 0.2 + 0.3 * 0.96));
        assert!(close(histogram.quantile(1.0), 0.5));
        assert!(histogram.quantile(1.5).is_none());
        assert!(Histogram::default().quantile(0.5).is_none());
    }

    #[test]
    fn a_rank_in_the_infinite_bucket_gives_the_highest_finite_bound() {
        let histogram = Histogram {
            buckets: vec![(0.1, 1.0), (1.0, 2.0), (f64::INFINITY, 10.0)],
            sum: 0.0,
            count: 10.0,
        };
        assert!((histogram.quantile(0.99).unwrap() - 1.0).abs() < f64::EPSILON);
    }
}
