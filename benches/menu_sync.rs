//! Menu sync at scale: the real `arcade` binary against the fake Harbor with added latency per
//! request and a registry of projects × repositories × labelled, tagged artifacts (by default
//! 100 × 10 × 20, a 20,000-entry menu). Each run uses a fresh throwaway XDG home and times, as
//! separate `arcade` processes:
//!
//! 1. a cold `menu sync --source harbor --url … --json` (empty home);
//! 2. the same again, which must write nothing;
//! 3. `menu sync --offline --json` after the data and config folders were taken away (only the
//!    cached catalog under `$XDG_CACHE_HOME` is left), which rebuilds the whole menu;
//! 4. `menu sync --offline --json` again, which must write nothing.
//!
//! Wall time is measured by this bench from spawn to exit; peak memory is `arcade`'s `ru_maxrss`
//! from `wait4`, taken by a small copy of this bench that runs it (see `measure_child`). The table puts the targets next to the figures and the bench exits non-zero when
//! one is missed, so a run that prints only passes is a run that met them. It is a bench, run by
//! hand, never a timed test.
//!
//! Nothing is deleted while measuring: the taken-away folders are moved aside and every home is
//! removed at the end. On ext4 without a journal (the CI VM's disk), inodes freed in the last
//! minute (up to six while their inode table is not yet written back) make each new file's inode
//! allocation scan past them (`recently_deleted` in ext4's `ialloc.c`), so a rebuild right after
//! deleting 20,000 files measures that scan, not arcade. For the same reason, give the machine a
//! few quiet minutes after a previous run (or a build) deleted many files.
//!
//! `cargo bench --bench menu_sync`. Knobs for a quick try: `ARCADE_BENCH_RUNS` (default 5),
//! `ARCADE_BENCH_PROJECTS` (100), `ARCADE_BENCH_REPOSITORIES` (10), `ARCADE_BENCH_ARTIFACTS` (20),
//! `ARCADE_BENCH_LATENCY_MS` (25), `ARCADE_BENCH_LABELS` (1: every artifact carries the image
//! labels of a well-described app, title to inline icon; 0: none). `ARCADE_BENCH_BIN` runs another `arcade` binary (to compare
//! builds); `TMPDIR` chooses where the homes go. `ARCADE_BENCH_SERVE=1` only starts the fake
//! Harbor and prints its URL, for profiling `arcade` against it by hand.

#[allow(dead_code)]
#[path = "../tests/it/support/contract.rs"]
mod contract;
#[path = "../tests/it/support/fake_http.rs"]
mod fake_http;
#[path = "../tests/it/support/harbor.rs"]
mod harbor;

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harbor::{FakeHarbor, HarborConfig, HarborData};

/// The targets, for the full-size registry.
const COLD_TARGET: Duration = Duration::from_secs(2);
const OFFLINE_TARGET: Duration = Duration::from_secs(1);
const RSS_TARGET_KIB: u64 = 60 * 1024;

/// A throwaway home with its own XDG folders, removed on drop.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        let dir = tempfile::Builder::new()
            .prefix("arcade-bench-")
            .tempdir()
            .expect("create a temporary home");
        let home = Home { dir };
        for sub in [".config", ".local/share", ".cache", ".local/state", "run"] {
            std::fs::create_dir_all(home.path().join(sub)).expect("create XDG folders");
        }
        home
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn data(&self) -> PathBuf {
        self.path().join(".local/share")
    }

    fn config(&self) -> PathBuf {
        self.path().join(".config")
    }

    fn cache(&self) -> PathBuf {
        self.path().join(".cache")
    }

    /// Takes away everything a sync generated but the cached catalog, so the next `--offline`
    /// sync starts from nothing but that cache (the manifest goes too: it lives in the data
    /// folder). The folders are moved aside rather than deleted; see the module documentation.
    fn take_menu_away(&self) {
        let aside = self.path().join("aside");
        for (n, dir) in [self.data(), self.config()].into_iter().enumerate() {
            std::fs::create_dir_all(&aside).expect("make a folder to move the menu into");
            std::fs::rename(&dir, aside.join(n.to_string())).expect("move the menu aside");
            std::fs::create_dir_all(&dir).expect("recreate an XDG folder");
        }
        assert!(
            self.cache().join("arcade/catalog.json").is_file(),
            "the cached catalog is kept"
        );
    }

    /// `arcade` with only this home's environment, like the integration tests run it.
    fn arcade(&self, args: &[&str]) -> Command {
        let binary = std::env::var_os("ARCADE_BENCH_BIN")
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_arcade").into());
        // The bench's own copy runs `arcade` and reports its peak (see `measure_child`).
        let mut command = Command::new(std::env::current_exe().expect("the bench's own path"));
        command
            .arg(MEASURE_CHILD)
            .arg(binary)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path())
            .env("XDG_CONFIG_HOME", self.config())
            .env("XDG_DATA_HOME", self.data())
            .env("XDG_CACHE_HOME", self.cache())
            .env("XDG_STATE_HOME", self.path().join(".local/state"))
            .env("XDG_CONFIG_DIRS", self.path().join("sysconf"))
            .env("XDG_RUNTIME_DIR", self.path().join("run"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }
}

/// One `arcade` process: how long it ran, how much memory it peaked at, what it reported.
struct Measured {
    wall: Duration,
    max_rss_kib: u64,
    written: u64,
    unchanged: u64,
    removed: u64,
    entries: u64,
}

/// Runs `command` to its end, timing it and taking its peak RSS from `wait4`.
// The child is reaped by `wait4`, which std's `wait` cannot do while also giving its rusage.
#[allow(clippy::zombie_processes)]
fn measure(mut command: Command) -> Measured {
    let started = Instant::now();
    let mut child = command.spawn().expect("spawn arcade");
    let pid = libc::pid_t::try_from(child.id()).expect("a pid fits pid_t");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    // Both pipes are drained at once so that neither can fill up and stall the child.
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let mut output = String::new();
    stdout.read_to_string(&mut output).expect("read stdout");
    let mut status = 0;
    // SAFETY: rusage is plain old data, for which all zeroes is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the pointers are to live locals; the child is ours and not yet reaped (std only
    // reaps in `wait`, which is never called on it).
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = started.elapsed();
    assert_eq!(rc, pid, "wait4: {}", std::io::Error::last_os_error());
    let mut errors = errors.join().expect("stderr reader");
    let peak = errors
        .rfind(PEAK_LINE)
        .and_then(|at| {
            let kib = errors[at + PEAK_LINE.len()..].trim().parse::<u64>().ok();
            errors.truncate(at);
            kib
        })
        .unwrap_or_else(|| panic!("the measuring process said no peak:\n{errors}"));
    let exited_ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    assert!(
        exited_ok,
        "arcade {:?} failed (wait status {status}):\n--- stdout\n{output}\n--- stderr\n{errors}",
        command.get_args().collect::<Vec<_>>()
    );
    let json: serde_json::Value = serde_json::from_str(&output)
        .unwrap_or_else(|err| panic!("arcade printed no JSON ({err}):\n{output}\n{errors}"));
    let count = |key: &str| {
        json[key]
            .as_u64()
            .unwrap_or_else(|| panic!("no {key} in {json:#}"))
    };
    Measured {
        wall,
        max_rss_kib: peak,
        written: count("written"),
        unchanged: count("unchanged"),
        removed: count("removed"),
        entries: count("entries"),
    }
}

/// The first argument that makes this bench a measuring process for one `arcade` run.
const MEASURE_CHILD: &str = "--measure-child";
/// How the measuring process ends its stderr: this, then the peak in KiB.
const PEAK_LINE: &str = "\narcade-bench-peak-kib=";

/// The measuring process: runs `program args…` with this process's stdio and environment, waits
/// for it with `wait4`, writes its peak RSS as the last line of stderr and exits as it did.
///
/// `arcade` is not run by the bench itself because Linux counts a child's peak from the memory
/// it was started from: `posix_spawn` shares the parent's memory until `exec`, whose peak the
/// kernel then keeps as the child's (`setmax_mm_hiwater_rss` in `exec_mmap`). The bench holds the
/// whole fake registry; this process holds almost nothing, so the figure is `arcade`'s own.
#[allow(clippy::zombie_processes)]
fn measure_child(program: &std::ffi::OsStr, args: &[std::ffi::OsString]) -> i32 {
    let child = Command::new(program)
        .args(args)
        .spawn()
        .unwrap_or_else(|err| panic!("spawn {}: {err}", Path::new(program).display()));
    let pid = libc::pid_t::try_from(child.id()).expect("a pid fits pid_t");
    let mut status = 0;
    // SAFETY: as in `measure`: plain old data, pointers to live locals, our unreaped child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(rc, pid, "wait4: {}", std::io::Error::last_os_error());
    // Linux reports ru_maxrss in KiB.
    eprint!("{PEAK_LINE}{}", usage.ru_maxrss);
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    }
}

/// The kind of file system `path` is on, for the report: file creation costs differ a lot.
fn file_system(path: &Path) -> String {
    let Ok(text) = std::fs::read_to_string("/proc/self/mounts") else {
        return "an unknown file system".to_owned();
    };
    // The mount with the longest mount point that contains the path is the one it is on.
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let (device, point, kind) = (fields.first()?, fields.get(1)?, fields.get(2)?);
            path.starts_with(point)
                .then(|| (point.len(), format!("{kind} ({device} at {point})")))
        })
        .max()
        .map_or_else(|| "an unknown file system".to_owned(), |(_, found)| found)
}

/// The one-minute load average, as `/proc/loadavg` gives it.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split(' ').next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(text) => text
            .parse()
            .unwrap_or_else(|_| panic!("{name}={text:?} is not a number")),
        Err(_) => default,
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// The figures of one step over every run.
struct Step {
    name: &'static str,
    runs: Vec<Measured>,
}

impl Step {
    fn walls(&self) -> Vec<Duration> {
        let mut walls: Vec<Duration> = self.runs.iter().map(|run| run.wall).collect();
        walls.sort();
        walls
    }

    fn median(&self) -> Duration {
        let walls = self.walls();
        walls[walls.len() / 2]
    }

    fn max_rss_kib(&self) -> u64 {
        self.runs
            .iter()
            .map(|run| run.max_rss_kib)
            .max()
            .unwrap_or(0)
    }

    /// `a` when every run reported the same number, else `min–max`.
    fn span(&self, field: impl Fn(&Measured) -> u64) -> String {
        let min = self.runs.iter().map(&field).min().unwrap_or(0);
        let max = self.runs.iter().map(&field).max().unwrap_or(0);
        if min == max {
            min.to_string()
        } else {
            format!("{min}–{max}")
        }
    }
}

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let [_, flag, program, rest @ ..] = args.as_slice()
        && flag == MEASURE_CHILD
    {
        std::process::exit(measure_child(program, rest));
    }
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    let runs = env_number("ARCADE_BENCH_RUNS", 5).max(1) as usize;
    let projects = env_number("ARCADE_BENCH_PROJECTS", 100) as usize;
    let repositories = env_number("ARCADE_BENCH_REPOSITORIES", 10) as usize;
    let artifacts = env_number("ARCADE_BENCH_ARTIFACTS", 20) as usize;
    let latency = Duration::from_millis(env_number("ARCADE_BENCH_LATENCY_MS", 25));
    let mut data = HarborData::synthetic(projects, repositories, artifacts);
    if env_number("ARCADE_BENCH_LABELS", 1) != 0 {
        data = data.with_image_labels();
    }
    let expected_entries = data.count_tags_labelled("desktop-app") as u64;
    let fake = FakeHarbor::start(HarborConfig {
        data,
        latency,
        ..HarborConfig::default()
    });
    let url = fake.url();
    if std::env::var_os("ARCADE_BENCH_SERVE").is_some() {
        println!("{url}");
        loop {
            std::thread::park();
        }
    }

    let mut cold = Step {
        name: "cold sync",
        runs: Vec::new(),
    };
    let mut resync = Step {
        name: "no-op re-sync",
        runs: Vec::new(),
    };
    let mut offline = Step {
        name: "--offline rebuild",
        runs: Vec::new(),
    };
    let mut offline_noop = Step {
        name: "--offline no-op",
        runs: Vec::new(),
    };
    let (mut requests, mut in_flight, mut spans) = (Vec::new(), Vec::new(), Vec::new());
    let online = [
        "menu", "sync", "--source", "harbor", "--url", &url, "--json",
    ];
    let cached = ["menu", "sync", "--offline", "--json"];
    let load_before = load_average();
    // Kept to the end, so that no run creates files just after another deleted its own.
    let mut homes = Vec::new();
    for run in 0..runs {
        eprint!("\rrun {}/{runs}", run + 1);
        homes.push(Home::new());
        let home = &homes[run];
        fake.reset_stats();
        cold.runs.push(measure(home.arcade(&online)));
        let log = fake.requests();
        requests.push(log.len());
        in_flight.push(fake.max_in_flight());
        // From the first request's arrival to the last one's answer (one latency after it).
        if let (Some(first), Some(last)) = (log.first(), log.last()) {
            spans.push(last.at.duration_since(first.at) + latency);
        }
        resync.runs.push(measure(home.arcade(&online)));
        home.take_menu_away();
        offline.runs.push(measure(home.arcade(&cached)));
        offline_noop.runs.push(measure(home.arcade(&cached)));
    }
    eprintln!();
    let file_system = file_system(homes[0].path());
    drop(homes);

    println!(
        "menu sync: {projects} projects × {repositories} repositories × {artifacts} artifacts \
         = {expected_entries} entries, {} ms latency per request, {runs} runs",
        latency.as_millis()
    );
    println!(
        "  arcade: {}; homes on {file_system}",
        std::env::var("ARCADE_BENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_arcade").into())
    );
    // Other work on the machine shows in every figure; the load says how much there was.
    println!(
        "  load average before and after: {load_before} / {}",
        load_average()
    );
    spans.sort();
    let span = spans.get(spans.len() / 2).copied().unwrap_or_default();
    let n_requests = requests.iter().max().copied().unwrap_or(0);
    // Each request is held `latency` by the fake, so this is how many were answered at once.
    let average = n_requests as f64 * latency.as_secs_f64() / span.as_secs_f64().max(1e-9);
    println!(
        "  cold sync: {n_requests} HTTP requests over {:.0} ms (median), at most {} and on \
         average {average:.1} in flight",
        ms(span),
        in_flight.iter().max().copied().unwrap_or(0)
    );
    println!();
    println!(
        "  {:<18} {:>10} {:>10} {:>10} {:>8} {:>9} {:>7} {:>9}   target",
        "step", "median ms", "min ms", "max ms", "written", "unchanged", "removed", "peak MiB"
    );
    let mut missed = Vec::new();
    let steps = [
        (&cold, Some(COLD_TARGET), None),
        (&resync, None, Some(0)),
        (&offline, Some(OFFLINE_TARGET), None),
        (&offline_noop, None, Some(0)),
    ];
    for (step, time_target, written_target) in steps {
        let walls = step.walls();
        let mut target = Vec::new();
        if let Some(limit) = time_target {
            target.push(format!("median ≤ {} ms", limit.as_millis()));
            if step.median() > limit {
                missed.push(format!(
                    "{}: median {:.0} ms > {} ms",
                    step.name,
                    ms(step.median()),
                    limit.as_millis()
                ));
            }
        }
        if let Some(written) = written_target {
            target.push(format!("written = {written}"));
            if let Some(bad) = step.runs.iter().find(|run| run.written != written) {
                missed.push(format!("{}: wrote {} files", step.name, bad.written));
            }
        }
        target.push(format!("peak ≤ {} MiB", RSS_TARGET_KIB / 1024));
        if step.max_rss_kib() > RSS_TARGET_KIB {
            missed.push(format!(
                "{}: peak RSS {:.1} MiB > {} MiB",
                step.name,
                step.max_rss_kib() as f64 / 1024.0,
                RSS_TARGET_KIB / 1024
            ));
        }
        if let Some(bad) = step.runs.iter().find(|run| run.entries != expected_entries) {
            missed.push(format!(
                "{}: {} entries instead of {expected_entries}",
                step.name, bad.entries
            ));
        }
        println!(
            "  {:<18} {:>10.0} {:>10.0} {:>10.0} {:>8} {:>9} {:>7} {:>9.1}   {}",
            step.name,
            ms(step.median()),
            ms(walls[0]),
            ms(walls[walls.len() - 1]),
            step.span(|run| run.written),
            step.span(|run| run.unchanged),
            step.span(|run| run.removed),
            step.max_rss_kib() as f64 / 1024.0,
            target.join(", ")
        );
    }
    println!();
    if missed.is_empty() {
        println!("  every target met");
    } else {
        for miss in &missed {
            println!("  MISSED: {miss}");
        }
        std::process::exit(1);
    }
}
