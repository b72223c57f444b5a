//! The daemon's footprint and responsiveness: CPU time and wake-ups over 60 s idle, resident
//! memory, and the `Launch` round trip over a real session bus (the reply comes before the
//! container starts).
//!
//! `cargo bench --bench daemon` (dbus-daemon installed, as `.ci/run` installs it).
//! `ARCADE_BENCH_IDLE_SECS` (default 60) and `ARCADE_BENCH_CALLS` (default 200) scale it.

#[allow(dead_code)]
#[path = "../tests/it/support/poll.rs"]
mod poll;

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use poll::KillOnDrop;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// utime + stime of a process, in clock ticks, from /proc.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc stat");
    // The command name may hold spaces; the fields after its closing parenthesis do not.
    let after = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// A field of /proc/<pid>/status summed over the process's threads where it is per thread.
fn status_field(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0)
}

/// Context switches of every thread, by thread id: each one is a wake-up.
fn wakeups(pid: u32) -> std::collections::HashMap<String, u64> {
    let mut by_thread = std::collections::HashMap::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
    {
        let status = std::fs::read_to_string(entry.path().join("status")).unwrap_or_default();
        let total: u64 = status
            .lines()
            .filter_map(|line| {
                line.strip_prefix("voluntary_ctxt_switches:")
                    .or_else(|| line.strip_prefix("nonvoluntary_ctxt_switches:"))
            })
            .filter_map(|rest| rest.trim().parse::<u64>().ok())
            .sum();
        by_thread.insert(entry.file_name().to_string_lossy().into_owned(), total);
    }
    by_thread
}

/// Wake-ups between two samples, counting threads that appeared in between from zero (threads
/// that ended in between are not counted after their end).
fn wakeups_between(
    before: &std::collections::HashMap<String, u64>,
    after: &std::collections::HashMap<String, u64>,
) -> u64 {
    after
        .iter()
        .map(|(tid, n)| n.saturating_sub(before.get(tid).copied().unwrap_or(0)))
        .sum()
}

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    let idle = Duration::from_secs(env_number("ARCADE_BENCH_IDLE_SECS", 60));
    let calls = env_number("ARCADE_BENCH_CALLS", 200) as usize;
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    std::fs::create_dir_all(home.join(".config/arcade")).unwrap();
    let catalog = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/sample-catalog.json");
    std::fs::write(
        home.join(".config/arcade/config.toml"),
        format!(
            "source = \"file\"\ncatalog = \"{}\"\n[launch]\nbackend = \"podman\"\npull = \"never\"\n",
            catalog.display()
        ),
    )
    .unwrap();

    let socket = home.join("bus");
    let mut bus = Command::new("dbus-daemon")
        .args(["--session", "--nofork", "--print-address=1"])
        .arg(format!("--address=unix:path={}", socket.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start dbus-daemon (apt-get install dbus)");
    let mut address = String::new();
    BufReader::new(bus.stdout.take().unwrap())
        .read_line(&mut address)
        .unwrap();
    let _bus = KillOnDrop(bus);
    let address = address.trim().to_owned();

    let daemon = Command::new(env!("CARGO_BIN_EXE_arcade"))
        .arg("daemon")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("XDG_RUNTIME_DIR", home)
        .env("DBUS_SESSION_BUS_ADDRESS", &address)
        .env("DISPLAY", ":0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start arcade daemon");
    let pid = daemon.id();
    let _daemon = KillOnDrop(daemon);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let connection = zbus::connection::Builder::address(address.as_str())
            .unwrap()
            .build()
            .await
            .expect("connect to the bench bus");
        // Ask the daemon each time: a cached property may predate its first sync.
        let proxy = arcade::bus::LauncherProxy::builder(&connection)
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await
            .unwrap();
        // Wait for the name and the first sync.
        let started = Instant::now();
        loop {
            if let Ok(result) = proxy.last_sync_result().await
                && result.starts_with("ok")
            {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the daemon did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;

        let (ticks, switches) = (cpu_ticks(pid), wakeups(pid));
        tokio::time::sleep(idle).await;
        let idle_ticks = cpu_ticks(pid) - ticks;
        let idle_switches = wakeups_between(&switches, &wakeups(pid));
        // SAFETY: sysconf only reads a system constant.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        let rss_kb = status_field(pid, "VmRSS:");

        let mut times = Vec::with_capacity(calls);
        for _ in 0..calls {
            let options = std::collections::HashMap::new();
            let started = Instant::now();
            let id = proxy
                .launch("images.canfar.net/skaha/terminal:1.1.2", options)
                .await
                .expect("Launch");
            times.push(started.elapsed());
            assert_eq!(id.len(), 6);
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let peak_kb = status_field(pid, "VmHWM:");

        println!(
            "arcade daemon, idle {} s then {calls} Launch calls:",
            idle.as_secs()
        );
        println!(
            "  CPU time while idle  : {:8.1} ms   ({idle_switches} thread wake-ups) (target ≈ 0)",
            idle_ticks as f64 / hz * 1000.0
        );
        println!(
            "  resident memory idle : {:8.1} MB   (peak {:.1} MB after the calls) (target ≤ 20 MB)",
            rss_kb as f64 / 1024.0,
            peak_kb as f64 / 1024.0
        );
        println!(
            "  Launch round trip    : {:8.2} ms median, {:.2} ms p90, {:.2} ms max (target ≤ 5 ms)",
            ms(times[calls / 2]),
            ms(times[calls * 9 / 10]),
            ms(times[calls - 1])
        );
    });
}
