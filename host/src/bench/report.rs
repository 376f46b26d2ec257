//! The printed figures: one block per phase, goals beside the figures, and a summary.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use super::burst::Burst;
use super::ceiling::Ceiling;
use super::checkout::Checkout;
use super::cpu::CpuUse;
use super::prometheus::{Histogram, Labels};
use super::signin::SignIns;
use super::stats::{ms, or_not_measured, p50_p95_p99, per};
use super::stores::{OPCOUNTERS, RoundTrip, StoreUse};
use super::{Memory, Summary};
use crate::launcher::Service;

/// Idle resident memory per service and gateway, at most (MiB).
pub const GOAL_IDLE_MIB: f64 = 12.0;
/// The user service's peak under sign-in load, at most (MiB).
pub const GOAL_USER_SIGN_IN_MIB: f64 = 48.0;
/// Any process's peak under load, at most (MiB).
pub const GOAL_LOAD_MIB: f64 = 50.0;
/// Start-up to ready, under (s).
pub const GOAL_STARTUP: Duration = Duration::from_secs(1);
/// Checkout throughput over the inventory ceiling, at least.
pub const GOAL_CEILING_RATIO: f64 = 0.80;
/// Checkout p50 over the sum of its store round trips, at most.
pub const GOAL_STORE_MULTIPLE: f64 = 2.0;
/// Emails after the last order of a burst settled, at most (s).
pub const GOAL_MAIL_AFTER: Duration = Duration::from_secs(30);

/// The order in which saga steps happen (others follow, by name).
const STEP_ORDER: [&str; 7] = [
    "reserve",
    "charge",
    "resolve_payment",
    "commit",
    "close",
    "release",
    "refund",
];

fn heading(title: &str) {
    println!();
    println!("{title}");
}

fn errors(errors: &BTreeMap<String, usize>) -> String {
    let total: usize = errors.values().sum();
    if total == 0 {
        return "0".to_owned();
    }
    let kinds: Vec<String> = errors
        .iter()
        .map(|(kind, count)| format!("{count} × {kind}"))
        .collect();
    format!("{total}   ({})", kinds.join("; "))
}

fn latency_line(label: &str, latencies: &[Duration]) {
    let [p50, p95, p99] = p50_p95_p99(latencies);
    println!("  {label:<22} p50 {p50:>7.1} ms   p95 {p95:>7.1} ms   p99 {p99:>7.1} ms");
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The checkout phase.
pub fn checkout(concurrency: usize, results: &Checkout) {
    let seconds = results.elapsed.as_secs_f64();
    heading(&format!(
        "checkout through the gateway: {concurrency} customers, {seconds:.1} s"
    ));
    println!(
        "  orders confirmed     {:>8}   ({:.1} per second)",
        results.confirmed,
        results.confirmed as f64 / seconds
    );
    println!("  orders cancelled     {:>8}", results.cancelled);
    println!("  errors               {:>8}", errors(&results.errors));
    latency_line("placed -> CONFIRMED", &results.latencies);
}

/// The saga's steps during the checkout phase, from the order service's histogram.
pub fn saga_steps(steps: Option<&BTreeMap<Labels, Histogram>>, results: &Checkout) {
    heading("time to CONFIRMED by saga step (order service, orders_saga_step_duration_seconds)");
    let Some(steps) = steps.filter(|steps| !steps.is_empty()) else {
        println!("  not measured (no saga step histogram in the order service's /metrics)");
        return;
    };
    let mut rows: Vec<(&Labels, &Histogram)> = steps.iter().collect();
    let rank = |labels: &Labels| {
        let step = labels.get("step").map_or("", String::as_str);
        let position = STEP_ORDER
            .iter()
            .position(|known| *known == step)
            .unwrap_or(STEP_ORDER.len());
        (position, step.to_owned(), labels.get("result").cloned())
    };
    rows.sort_by_key(|(labels, _)| rank(labels));
    let total: f64 = rows.iter().map(|(_, histogram)| histogram.sum).sum();
    println!(
        "  {:<16} {:<7} {:>7} {:>9} {:>9} {:>9} {:>10} {:>7}",
        "step", "result", "count", "mean ms", "p50 ms", "p99 ms", "per order", "share"
    );
    let confirmed = results.confirmed as f64;
    let mut per_order_ms = 0.0;
    for (labels, histogram) in rows {
        let field =
            |value: Option<f64>| value.map_or("-".to_owned(), |v| format!("{:.1}", v * 1e3));
        let spent = per(histogram.sum * 1e3, confirmed);
        per_order_ms += spent.unwrap_or(0.0);
        println!(
            "  {:<16} {:<7} {:>7} {:>9} {:>9} {:>9} {:>10} {:>5.0} %",
            labels.get("step").map_or("?", String::as_str),
            labels.get("result").map_or("?", String::as_str),
            histogram.count,
            field(histogram.mean()),
            field(histogram.quantile(0.5)),
            field(histogram.quantile(0.99)),
            spent.map_or("-".to_owned(), |spent| format!("{spent:.1} ms")),
            per(histogram.sum * 100.0, total).unwrap_or(0.0),
        );
    }
    let mean = per(
        results.latencies.iter().map(|l| ms(*l)).sum(),
        results.latencies.len() as f64,
    );
    println!(
        "  the steps take {per_order_ms:.1} ms per confirmed order, of a mean {} ms from placed to \
         CONFIRMED seen; the rest is placing the order (pricing, the payment method), the saga's \
         queueing between steps and HTTP through the gateway",
        or_not_measured(mean, 1)
    );
}

/// The inventory ceiling and the ratio.
pub fn ceiling(concurrency: usize, ceiling: &Ceiling, checkout: &Checkout, summary: &mut Summary) {
    let seconds = ceiling.elapsed.as_secs_f64();
    heading(&format!(
        "inventory ceiling: Reserve + Commit over gRPC, {concurrency} workers, {seconds:.1} s"
    ));
    let rate = per(ceiling.pairs as f64, seconds);
    let orders = per(checkout.confirmed as f64, checkout.elapsed.as_secs_f64());
    println!(
        "  pairs committed      {:>8}   ({} per second)",
        ceiling.pairs,
        or_not_measured(rate, 1)
    );
    println!("  errors               {:>8}", errors(&ceiling.errors));
    latency_line("Reserve + Commit", &ceiling.latencies);
    summary.ceiling_ratio = orders
        .zip(rate)
        .and_then(|(orders, rate)| per(orders, rate));
    println!(
        "  checkout / inventory ceiling = {}   (goal >= {GOAL_CEILING_RATIO:.2})",
        or_not_measured(summary.ceiling_ratio, 2)
    );
}

/// Round trips to each store per confirmed order and per ceiling pair.
pub fn stores(
    rtt: &RoundTrip,
    phases: [(&str, Option<&StoreUse>, usize); 2],
    checkout_p50_ms: f64,
    summary: &mut Summary,
) {
    heading("store round trips (count × idle round trip ≈ time on the wire)");
    print!("  {:<12} {:>10}", "store", "idle RTT");
    for (label, _, _) in &phases {
        print!("   {:>24}", format!("per {label}"));
    }
    println!();
    let mut sums = [Some(0.0_f64), Some(0.0_f64)];
    for store in ["MongoDB", "PostgreSQL", "Redis"] {
        let round_trip = rtt.of(store);
        print!(
            "  {store:<12} {:>10}",
            round_trip.map_or("-".to_owned(), |rtt| format!("{:.3} ms", ms(rtt)))
        );
        for (index, (_, used, unit)) in phases.iter().enumerate() {
            let found = used.and_then(|used| {
                let (_, count, lower) = used
                    .round_trips()
                    .into_iter()
                    .find(|(name, _, _)| *name == store)?;
                Some((per(count?, *unit as f64)?, lower))
            });
            let cell = match (found, round_trip) {
                (Some((count, lower)), Some(rtt)) => {
                    let time = count * ms(rtt);
                    sums[index] = sums[index].map(|sum| sum + time);
                    format!("{}{count:.1} ≈ {time:.2} ms", if lower { ">=" } else { "" })
                }
                _ => {
                    sums[index] = None;
                    "not measured".to_owned()
                }
            };
            print!("   {cell:>24}");
        }
        println!();
    }
    print!("  {:<23}", "sum");
    for sum in sums {
        print!(
            "   {:>24}",
            sum.map_or("not measured".to_owned(), |sum| format!("≈ {sum:.2} ms"))
        );
    }
    println!();
    store_details(&phases);
    summary.store_multiple = sums[0]
        .filter(|sum| *sum > 0.0)
        .map(|sum| checkout_p50_ms / sum);
    println!(
        "  sum of store round trips per order ≈ {} ms; checkout p50 {:.1} ms = {}x that   (goal <= {GOAL_STORE_MULTIPLE:.0}x)",
        or_not_measured(sums[0], 2),
        checkout_p50_ms,
        or_not_measured(summary.store_multiple, 1)
    );
}

/// MongoDB's operations by kind and in the bench's database, PostgreSQL's statements and
/// transactions.
fn store_details(phases: &[(&str, Option<&StoreUse>, usize); 2]) {
    for (label, used, unit) in phases {
        let Some(used) = used else { continue };
        let unit = *unit as f64;
        let mut line = format!("  per {label}: MongoDB");
        for name in OPCOUNTERS {
            let value = used.mongo_ops.get(name).and_then(|count| per(*count, unit));
            let _ = write!(line, " {name} {}", or_not_measured(value, 1));
        }
        if let Some((ops, time)) = used.mongo_own {
            let _ = write!(
                line,
                "; in the bench's database (top) {} ops, {} ms server time",
                or_not_measured(per(ops, unit), 1),
                or_not_measured(per(ms(time), unit), 2)
            );
        }
        println!("{line}");
        let statements = match &used.pg_statements {
            Ok(count) => or_not_measured(per(*count, unit), 1),
            Err(why) => format!("not available ({why})"),
        };
        println!(
            "  per {label}: PostgreSQL statements {statements}; transactions {}",
            or_not_measured(used.pg_transactions.and_then(|count| per(count, unit)), 1)
        );
    }
}

/// CPU time per unit of work in each phase, per process.
pub fn cpu(phases: [(&str, Option<&CpuUse>, usize); 2], cores: usize) {
    heading("CPU time (from /proc: utime + stime, with reaped children)");
    print!("  {:<22}", "process");
    for (label, used, _) in &phases {
        let seconds = used.map_or(0.0, |used| used.wall.as_secs_f64());
        print!("   {:>26}", format!("ms per {label} ({seconds:.0} s)"));
    }
    println!();
    let mut groups: Vec<(String, usize)> = Vec::new();
    for (_, used, _) in &phases {
        for (group, _, processes) in used.iter().flat_map(|used| &used.groups) {
            if !groups.iter().any(|(known, _)| known == group) {
                groups.push((group.clone(), *processes));
            }
        }
    }
    let mut totals = [0.0_f64; 2];
    for (group, processes) in &groups {
        let name = if *processes > 1 {
            format!("{group} ({processes})")
        } else {
            group.clone()
        };
        print!("  {name:<22}");
        for (index, (_, used, unit)) in phases.iter().enumerate() {
            let cell = used
                .and_then(|used| {
                    let (_, time, _) = used.groups.iter().find(|(g, _, _)| g == group)?;
                    totals[index] += time.as_secs_f64();
                    let core = time.as_secs_f64() * 100.0 / used.wall.as_secs_f64();
                    Some(format!(
                        "{} ms  {core:>5.1} % core",
                        or_not_measured(per(ms(*time), *unit as f64), 2)
                    ))
                })
                .unwrap_or_else(|| "-".to_owned());
            print!("   {cell:>26}");
        }
        println!();
    }
    print!("  {:<22}", "all of the above");
    for (index, (_, used, unit)) in phases.iter().enumerate() {
        let cell = used.map_or("-".to_owned(), |used| {
            format!(
                "{} ms  {:>5.0} % of {}",
                or_not_measured(per(totals[index] * 1e3, *unit as f64), 2),
                totals[index] * 100.0 / used.wall.as_secs_f64(),
                cores * 100
            )
        });
        print!("   {cell:>26}");
    }
    println!();
}

/// The sign-in phase.
pub fn sign_ins(results: &SignIns, concurrency: usize, summary: &mut Summary) {
    let seconds = results.elapsed.as_secs_f64();
    heading(&format!(
        "sign-in: {concurrency} at once, {seconds:.1} s (Argon2id per sign-in)"
    ));
    println!(
        "  signed in            {:>8}   ({:.1} per second)",
        results.succeeded,
        results.succeeded as f64 / seconds
    );
    println!("  errors               {:>8}", errors(&results.errors));
    if results.skipped > 0 {
        println!(
            "  not attempted        {:>8}   (the time limit ran out)",
            results.skipped
        );
    }
    latency_line("login", &results.latencies);
    let user = results.peak.get(&Service::named("user")).copied();
    summary.user_sign_in_peak = user;
    println!(
        "  user service peak RSS {}   (goal <= {GOAL_USER_SIGN_IN_MIB:.0} MiB)",
        user.map_or("not measured".to_owned(), |kib| format!(
            "{:.1} MiB",
            mib(kib)
        ))
    );
}

/// The burst and its emails; `lag` is the consumers' lag histograms, or why there are none.
pub fn burst(
    burst: &Burst,
    asked: usize,
    lag: &Result<BTreeMap<Labels, Histogram>, String>,
    summary: &mut Summary,
) {
    heading(&format!(
        "burst: {asked} orders by {} customers, {} at once",
        burst.customers,
        super::burst::PLACING_CONCURRENCY
    ));
    let placing = burst.placing.as_secs_f64();
    println!(
        "  orders placed        {:>8}   in {placing:.1} s ({:.1} per second)",
        burst.placed,
        burst.placed as f64 / placing
    );
    println!("  errors               {:>8}", errors(&burst.errors));
    let settled = &burst.settled;
    println!(
        "  settled              {:>8}   ({} CONFIRMED, {} CANCELLED, {} not within {} s)",
        settled.confirmed + settled.cancelled,
        settled.confirmed,
        settled.cancelled,
        settled.unsettled,
        super::burst::WAIT_LIMIT.as_secs()
    );
    let span = burst
        .first_at
        .zip(settled.last_at)
        .and_then(|(first, last)| (last - first).to_std().ok());
    println!(
        "  first order -> last settled   {} s   ({} orders per second through the saga)",
        or_not_measured(span.map(|span| span.as_secs_f64()), 1),
        or_not_measured(
            span.and_then(|span| per(
                (settled.confirmed + settled.cancelled) as f64,
                span.as_secs_f64()
            )),
            1
        )
    );
    mail(burst, summary);
    match lag {
        Ok(lag) if !lag.is_empty() => {
            for (labels, histogram) in lag {
                let field = |q: f64| or_not_measured(histogram.quantile(q).map(|s| s * 1e3), 1);
                println!(
                    "  commit -> consumer lag ({}): {} events, p50 {} ms, p99 {} ms",
                    labels.get("consumer").map_or("?", String::as_str),
                    histogram.count,
                    field(0.5),
                    field(0.99)
                );
            }
        }
        Ok(_) => println!("  commit -> consumer lag: no events consumed during the burst"),
        Err(why) => println!("  commit -> consumer lag: {why}"),
    }
}

fn mail(burst: &Burst, summary: &mut Summary) {
    let mail = &burst.mail;
    let last_settled = burst.settled.last_at;
    let after = |at: Option<chrono::DateTime<chrono::Utc>>| {
        at.zip(last_settled)
            .map(|(at, settled)| (at - settled).num_milliseconds() as f64 / 1e3)
    };
    if let Some(why) = &mail.unreadable {
        println!("  emails: the mail catcher could not be read ({why})");
    } else if mail.all_seen_at.is_some() {
        summary.mail_after = after(mail.all_seen_at);
        println!(
            "  emails: all {} sent {} s after the last order settled   (goal <= {} s; mail catcher, polled every 0.5 s)",
            mail.expected,
            or_not_measured(summary.mail_after, 1),
            GOAL_MAIL_AFTER.as_secs()
        );
    } else {
        println!(
            "  emails: {} of {} received within {} s of the last order settling   (goal <= {} s)",
            mail.received,
            mail.expected,
            super::burst::WAIT_LIMIT.as_secs(),
            GOAL_MAIL_AFTER.as_secs()
        );
    }
    println!(
        "  emails: the notification service marked {} sent, the last {} s after the last order settled; \
         besides: {} welcome, {} other",
        burst.notifications.sent,
        or_not_measured(after(burst.notifications.last_sent_at), 2),
        mail.welcome,
        mail.other
    );
}

/// Each process's start-up and memory, with the goals.
pub fn memory(
    ready_after: &BTreeMap<Service, Duration>,
    idle: &Memory,
    phases: &[(&str, &Memory)],
    summary: &mut Summary,
) {
    heading("start-up and resident memory (MiB)");
    print!("  {:<14} {:>9} {:>7}", "process", "ready", "idle");
    for (label, _) in phases {
        print!(" {label:>9}");
    }
    println!("   goals missed");
    for service in Service::all() {
        let ready = ready_after.get(&service).copied();
        let idle_kib = idle.get(&service).copied();
        let peaks: Vec<Option<u64>> = phases
            .iter()
            .map(|(_, peak)| peak.get(&service).copied())
            .collect();
        let under_load = peaks.iter().flatten().copied().max();
        let mut missed = Vec::new();
        if ready.is_some_and(|ready| ready >= GOAL_STARTUP) {
            missed.push("startup".to_owned());
        }
        if idle_kib.is_some_and(|kib| mib(kib) > GOAL_IDLE_MIB) {
            missed.push(format!("idle > {GOAL_IDLE_MIB:.0}"));
        }
        if under_load.is_some_and(|kib| mib(kib) > GOAL_LOAD_MIB) {
            missed.push(format!("load > {GOAL_LOAD_MIB:.0}"));
        }
        if service == Service::named("user")
            && summary
                .user_sign_in_peak
                .is_some_and(|kib| mib(kib) > GOAL_USER_SIGN_IN_MIB)
        {
            missed.push(format!("sign-in > {GOAL_USER_SIGN_IN_MIB:.0}"));
        }
        let cell = |kib: Option<u64>| kib.map_or("-".to_owned(), |kib| format!("{:.1}", mib(kib)));
        print!(
            "  {:<14} {:>9} {:>7}",
            service.name(),
            ready.map_or("-".to_owned(), |ready| format!(
                "{:.2} s",
                ready.as_secs_f64()
            )),
            cell(idle_kib)
        );
        for peak in peaks {
            print!(" {:>9}", cell(peak));
        }
        println!(
            "   {}",
            if missed.is_empty() {
                "-".to_owned()
            } else {
                missed.join(", ")
            }
        );
        summary.slowest_start = summary
            .slowest_start
            .max(ready.map(|ready| (ready, service)));
        summary.largest_idle = summary.largest_idle.max(idle_kib.map(|kib| (kib, service)));
        summary.largest_load = summary
            .largest_load
            .max(under_load.map(|kib| (kib, service)));
    }
    println!(
        "  goals: ready < {} s; idle <= {GOAL_IDLE_MIB:.0} MiB per service and gateway; user <= \
         {GOAL_USER_SIGN_IN_MIB:.0} MiB under sign-in; every process <= {GOAL_LOAD_MIB:.0} MiB under load",
        GOAL_STARTUP.as_secs()
    );
}

fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "met",
        Some(false) => "MISSED",
        None => "not measured",
    }
}

/// The ratios and goals, once more, together.
pub fn summary(summary: &Summary) {
    heading("summary");
    let row = |name: &str, figure: String, goal: &str, met: Option<bool>| {
        println!("  {name:<42} {figure:>12}   {goal:<14} {}", verdict(met));
    };
    let ratio = summary.ceiling_ratio;
    row(
        "checkout / inventory ceiling",
        or_not_measured(ratio, 2),
        &format!(">= {GOAL_CEILING_RATIO:.2}"),
        ratio.map(|ratio| ratio >= GOAL_CEILING_RATIO),
    );
    let multiple = summary.store_multiple;
    row(
        "checkout p50 / its store round trips",
        multiple.map_or("not measured".to_owned(), |m| format!("{m:.1}x")),
        &format!("<= {GOAL_STORE_MULTIPLE:.0}x"),
        multiple.map(|multiple| multiple <= GOAL_STORE_MULTIPLE),
    );
    let start = summary.slowest_start;
    row(
        &format!("slowest start-up to ready{}", who(start.map(|(_, s)| s))),
        start.map_or("not measured".to_owned(), |(ready, _)| {
            format!("{:.2} s", ready.as_secs_f64())
        }),
        &format!("< {} s", GOAL_STARTUP.as_secs()),
        start.map(|(ready, _)| ready < GOAL_STARTUP),
    );
    let memory_row = |name: &str, found: Option<(u64, Option<Service>)>, goal: f64| {
        row(
            &format!("{name}{}", who(found.and_then(|(_, s)| s))),
            found.map_or("not measured".to_owned(), |(kib, _)| {
                format!("{:.1} MiB", mib(kib))
            }),
            &format!("<= {goal:.0} MiB"),
            found.map(|(kib, _)| mib(kib) <= goal),
        );
    };
    memory_row(
        "largest idle RSS",
        summary.largest_idle.map(|(k, s)| (k, Some(s))),
        GOAL_IDLE_MIB,
    );
    memory_row(
        "user peak RSS under sign-in",
        summary.user_sign_in_peak.map(|k| (k, None)),
        GOAL_USER_SIGN_IN_MIB,
    );
    memory_row(
        "largest RSS under load",
        summary.largest_load.map(|(k, s)| (k, Some(s))),
        GOAL_LOAD_MIB,
    );
    row(
        "burst emails after the last order settled",
        summary
            .mail_after
            .map_or("not measured".to_owned(), |s| format!("{s:.1} s")),
        &format!("<= {} s", GOAL_MAIL_AFTER.as_secs()),
        summary
            .mail_after
            .map(|after| after <= GOAL_MAIL_AFTER.as_secs_f64()),
    );
}

fn who(service: Option<Service>) -> String {
    service.map_or_else(String::new, |service| format!(" ({service})"))
}
