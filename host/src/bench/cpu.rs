//! CPU time of the platform's processes and of the stores' servers, from `/proc` (Linux).
//!
//! A process's time is `utime + stime` plus `cutime + cstime` (its children that it waited
//! for), so that a group of processes (PostgreSQL's postmaster and its backends, which come and
//! go) keeps the time of those that exited: summed over the group before and after, the
//! difference is the group's CPU time in between.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A group of processes: a service, the gateway, the bench itself, or a store's server.
pub type Group = String;

/// The stores' servers, found by name: `(group, how to recognise one of its processes)`.
pub const STORES: [&str; 4] = ["postgres", "redis-server", "nats-server", "secantusdb"];

/// CPU time per group at one moment.
#[derive(Clone, Debug)]
pub struct CpuSample {
    at: Instant,
    ticks: BTreeMap<Group, (u64, usize)>,
}

/// CPU time per group between two samples.
#[derive(Clone, Debug, Default)]
pub struct CpuUse {
    /// How long between the samples.
    pub wall: Duration,
    /// Per group: its CPU time, and how many processes it had at the end.
    pub groups: Vec<(Group, Duration, usize)>,
}

/// Clock ticks per second (`getconf CLK_TCK`; 100, Linux's usual value, if that fails).
pub fn clock_ticks() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .filter(|ticks| *ticks > 0)
        .unwrap_or(100)
}

/// `utime + stime + cutime + cstime` of the process whose `/proc/<pid>/stat` is `stat`.
pub fn stat_ticks(stat: &str) -> Option<u64> {
    // The command name, in parentheses, may hold spaces: the fields after it are counted from
    // the last `)`. Then state is field 3, utime 14, stime 15, cutime 16, cstime 17.
    let fields: Vec<&str> = stat
        .get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .collect();
    fields
        .get(11..15)?
        .iter()
        .map(|field| field.parse::<u64>().ok())
        .sum()
}

fn ticks_of(pid: u32) -> Option<u64> {
    stat_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Which store's server the process named `comm` with the command line `cmdline` is, if any.
pub fn store_of(comm: &str, cmdline: &str) -> Option<&'static str> {
    match comm {
        "postgres" => Some(STORES[0]),
        "redis-server" => Some(STORES[1]),
        "nats-server" => Some(STORES[2]),
        _ if (comm.starts_with("secantus") || comm.starts_with("python"))
            && cmdline.contains("secantus") =>
        {
            Some(STORES[3])
        }
        _ => None,
    }
}

/// Every process of the stores' servers on this machine, by store.
fn store_processes() -> BTreeMap<&'static str, Vec<u32>> {
    let mut found: BTreeMap<&'static str, Vec<u32>> = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse().ok())
        else {
            continue;
        };
        let path = entry.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        let cmdline = std::fs::read(path.join("cmdline")).unwrap_or_default();
        if let Some(store) = store_of(comm.trim(), &String::from_utf8_lossy(&cmdline)) {
            found.entry(store).or_default().push(pid);
        }
    }
    found
}

impl CpuSample {
    /// Reads the CPU time of `processes` (`(group, pid)`), of this process (`bench`) and of
    /// every store server's processes.
    pub fn take(processes: &[(Group, u32)]) -> Self {
        let mut ticks: BTreeMap<Group, (u64, usize)> = BTreeMap::new();
        let mut add = |group: &str, pid: u32| {
            if let Some(used) = ticks_of(pid) {
                let entry = ticks.entry(group.to_owned()).or_default();
                entry.0 += used;
                entry.1 += 1;
            }
        };
        for (group, pid) in processes {
            add(group, *pid);
        }
        add("bench (load)", std::process::id());
        for (store, pids) in store_processes() {
            for pid in pids {
                add(store, pid);
            }
        }
        Self {
            at: Instant::now(),
            ticks,
        }
    }

    /// The CPU time each group used since `before`, in the order of `order` (then the rest).
    pub fn since(&self, before: &CpuSample, ticks_per_second: u64, order: &[Group]) -> CpuUse {
        let mut groups: Vec<(Group, Duration, usize)> = self
            .ticks
            .iter()
            .map(|(group, (after, processes))| {
                let earlier = before.ticks.get(group).map_or(0, |(ticks, _)| *ticks);
                let used = after.saturating_sub(earlier);
                (
                    group.clone(),
                    Duration::from_secs_f64(used as f64 / ticks_per_second as f64),
                    *processes,
                )
            })
            .collect();
        groups.sort_by_key(|(group, _, _)| {
            order
                .iter()
                .position(|wanted| wanted == group)
                .unwrap_or(order.len())
        });
        CpuUse {
            wall: self.at.saturating_duration_since(before.at),
            groups,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_counted_after_the_command_name() {
        let stat = "4242 (tokio runtime) S 1 4242 4242 0 -1 4194560 3063 0 0 0 \
                    150 25 7 3 20 0 9 0 123 456 789";
        assert_eq!(stat_ticks(stat), Some(150 + 25 + 7 + 3));
        let odd = "7 (a) b) R 1 7 7 0 -1 0 0 0 0 0 1 2 3 4 20 0 1 0 1 1 1";
        assert_eq!(stat_ticks(odd), Some(10));
        assert_eq!(stat_ticks("7 (short) R 1 2"), None);
    }

    #[test]
    fn store_servers_are_recognised_by_name() {
        assert_eq!(
            store_of("postgres", "postgres: checkpointer"),
            Some("postgres")
        );
        assert_eq!(store_of("redis-server", ""), Some("redis-server"));
        assert_eq!(
            store_of("secantusd-py", "python3\0/x/secantusd-py\0--port\0"),
            Some("secantusdb")
        );
        assert_eq!(
            store_of("python3", "/x/bin/secantusd-py"),
            Some("secantusdb")
        );
        assert_eq!(store_of("bash", "grep secantus"), None);
        assert_eq!(store_of("python", "mailcatcher.py"), None);
    }

    #[test]
    fn use_is_the_growth_per_group_in_the_given_order() {
        let at = Instant::now();
        let sample = |ticks: &[(&str, u64)], later: u64| CpuSample {
            at: at + Duration::from_secs(later),
            ticks: ticks
                .iter()
                .map(|(group, ticks)| ((*group).to_owned(), (*ticks, 1)))
                .collect(),
        };
        let before = sample(&[("order", 100), ("postgres", 50)], 0);
        let after = sample(&[("order", 300), ("postgres", 50), ("gateway", 10)], 2);
        let used = after.since(&before, 100, &["gateway".to_owned(), "order".to_owned()]);
        assert_eq!(used.wall, Duration::from_secs(2));
        let names: Vec<&str> = used.groups.iter().map(|(g, _, _)| g.as_str()).collect();
        assert_eq!(names, ["gateway", "order", "postgres"]);
        assert_eq!(used.groups[0].1, Duration::from_millis(100));
        assert_eq!(used.groups[1].1, Duration::from_secs(2));
        assert_eq!(used.groups[2].1, Duration::ZERO);
    }
}
