//! How the platform's processes hold memory: glibc's allocator with settings that give freed
//! memory back.
//!
//! By default glibc raises its mmap threshold to the size of the largest block freed so far,
//! so that after one 12 MiB password hash every later one is carved from a heap arena and kept
//! there; and it opens up to eight arenas per core, each keeping what it once held. A fixed
//! threshold maps every large block for its use alone and unmaps it when freed; two arenas are
//! enough for a service's few threads.
//!
//! The gateway allocates with mimalloc instead, which asks for transparent huge pages on its
//! arenas where the kernel leaves that to the program (`madvise`, Debian's default): every
//! 2 MiB page it touches is then resident whole, 16 of the idle gateway's 28 MiB. Without them
//! it idles at 17.5 MiB, and `make bench-gateway` serves as much.

/// The allocators' settings (environment variables glibc and mimalloc read when a process
/// starts; each ignores the other's).
pub const ALLOCATOR_SETTINGS: [(&str, &str); 3] = [
    ("MALLOC_MMAP_THRESHOLD_", "131072"),
    ("MALLOC_ARENA_MAX", "2"),
    ("MIMALLOC_ALLOW_THP", "0"),
];

/// Makes sure this process runs with [`ALLOCATOR_SETTINGS`]: returns at once when they are in
/// its environment (set by an operator, or by this call before), otherwise runs this program
/// again in place (same pid, arguments and environment, plus the missing settings). Call it
/// first in `main`. If the program cannot be run again it says so and returns, and the process
/// goes on with the allocator's defaults.
pub fn with_allocator_settings() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt as _;

        let missing: Vec<_> = ALLOCATOR_SETTINGS
            .iter()
            .filter(|(name, _)| std::env::var_os(name).is_none())
            .collect();
        if missing.is_empty() {
            return;
        }
        let Ok(program) = std::env::current_exe() else {
            return;
        };
        let mut args = std::env::args_os();
        let mut command = std::process::Command::new(program);
        if let Some(arg0) = args.next() {
            command.arg0(arg0);
        }
        command.args(args);
        for (name, value) in missing {
            command.env(name, value);
        }
        let error = command.exec();
        eprintln!("cannot apply the allocator settings ({error}); going on with its defaults");
    }
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::*;

    const CHILD: &str = "PLATFORM_MEMORY_TEST_CHILD";

    /// Run by `a_process_started_without_the_settings_runs_again_with_them` as a child of its
    /// own: applies the settings and prints what it runs with. Does nothing otherwise.
    #[test]
    fn child_applying_the_settings() {
        if std::env::var_os(CHILD).is_none() {
            return;
        }
        with_allocator_settings();
        for (name, _) in ALLOCATOR_SETTINGS {
            println!("{name}={}", std::env::var(name).unwrap_or_default());
        }
        println!("pid={}", std::process::id());
    }

    #[test]
    fn a_process_started_without_the_settings_runs_again_with_them() {
        let mut command = std::process::Command::new(std::env::current_exe().unwrap());
        command
            .args([
                "memory::tests::child_applying_the_settings",
                "--exact",
                "--nocapture",
            ])
            .env(CHILD, "1")
            .env("MALLOC_ARENA_MAX", "3")
            .env_remove("MALLOC_MMAP_THRESHOLD_")
            .stdout(std::process::Stdio::piped());
        let child = command.spawn().unwrap();
        let pid = child.id();
        let output = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{stdout}");
        assert!(
            stdout.contains("MALLOC_MMAP_THRESHOLD_=131072\n"),
            "the missing one was added: {stdout}"
        );
        assert!(
            stdout.contains("MALLOC_ARENA_MAX=3\n"),
            "an operator's own value is kept: {stdout}"
        );
        assert!(
            stdout.contains(&format!("pid={pid}\n")),
            "the same process, run again in place: {stdout}"
        );
    }
}
