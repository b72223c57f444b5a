//! Launch overhead: `arcade launch` of an image to its first mapped window, against the same
//! image started by a bare `podman run`, both timed to the window's MapNotify by an X client of
//! this bench (not by arcade's own report). Runs alternate; medians are compared. First the test
//! xterm image, then each real app (DS9, TOPCAT, Aladin from Debian's packages) in the image the
//! real-app tests build, in the platform's shape (`/skaha/startup.sh` runs the app).
//!
//! `cargo bench --bench launch` (as root, with Xvfb, xterm, podman and mmdebstrap installed, as
//! `.ci/run` installs them; the real-app image is built on first use, about two minutes).
//! `ARCADE_BENCH_RUNS` sets the number of runs of each with xterm (default 15),
//! `ARCADE_BENCH_APP_RUNS` with each real app (default 9). The load average is printed before
//! and after, since the machine may be shared.

#[allow(dead_code)]
#[path = "../tests/it/support/docker.rs"]
mod docker;
#[allow(dead_code)]
#[path = "../tests/it/support/images.rs"]
mod images;
#[allow(dead_code)]
#[path = "../tests/it/support/poll.rs"]
mod poll;
#[allow(dead_code)]
#[path = "../tests/it/support/real_apps.rs"]
mod real_apps;
#[allow(dead_code)]
#[path = "../tests/it/support/xvfb.rs"]
mod xvfb;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use poll::{require_tool, wait_for};
use x11rb::connection::Connection as _;
use x11rb::protocol::Event;
use x11rb::protocol::xproto::{ChangeWindowAttributesAux, ConnectionExt as _, EventMask};

/// Spawns `command` and returns the time until a new top-level window maps on `xvfb`. Windows
/// that bypass the window manager (menus, tooltips, a toolkit's helpers) are not an app's
/// window, for arcade either.
fn time_to_window(xvfb: &xvfb::Xvfb, mut command: Command) -> Duration {
    let conn = xvfb.connect().expect("connect to Xvfb");
    let root = conn.setup().roots[0].root;
    conn.change_window_attributes(
        root,
        &ChangeWindowAttributesAux::new().event_mask(EventMask::SUBSTRUCTURE_NOTIFY),
    )
    .unwrap();
    x11rb::wrapper::ConnectionExt::sync(&conn).unwrap();
    let started = Instant::now();
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    loop {
        match conn.wait_for_event().expect("X event") {
            Event::MapNotify(ev) if ev.event == root && !ev.override_redirect => {
                let elapsed = started.elapsed();
                // arcade returns once the window maps; the bare podman client stays with the app.
                std::thread::spawn(move || {
                    let _ = child.wait();
                });
                return elapsed;
            }
            _ => {}
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no window after 60 s"
        );
    }
}

fn remove_all(display: &str) {
    images::remove_containers_on(display);
    let _ = images::podman()
        .args(["rm", "--force", "--time", "0", "arcade-bench-bare"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn median(values: &mut [Duration]) -> Duration {
    values.sort();
    values[values.len() / 2]
}

/// The number in environment variable `name`, or `default`.
fn runs_from(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|n| n.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

/// The machine's load average over 1, 5 and 15 minutes.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// Times `arcade` and `bare` to their first window, alternating, after one warm-up of each (so
/// neither pays for a cold page cache), and prints the medians and the overhead under `title`.
fn compare(
    title: &str,
    runs: usize,
    xvfb: &xvfb::Xvfb,
    arcade: &dyn Fn() -> Command,
    bare: &dyn Fn() -> Command,
) {
    let display = xvfb.display();
    for _ in 0..2 {
        time_to_window(xvfb, arcade());
        remove_all(&display);
        time_to_window(xvfb, bare());
        remove_all(&display);
    }
    let (mut with_arcade, mut with_podman) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        with_arcade.push(time_to_window(xvfb, arcade()));
        remove_all(&display);
        with_podman.push(time_to_window(xvfb, bare()));
        remove_all(&display);
    }
    // Each arcade run and the bare run after it met about the same load: on a shared machine
    // the median of their differences drifts less than the difference of the medians.
    let mut paired: Vec<f64> = with_arcade
        .iter()
        .zip(&with_podman)
        .map(|(a, p)| ms(*a) - ms(*p))
        .collect();
    paired.sort_by(f64::total_cmp);
    let (a, p) = (median(&mut with_arcade), median(&mut with_podman));
    println!("{title}, {runs} runs each (median, min, max):");
    println!(
        "  arcade launch : {:7.1} ms  ({:.1} … {:.1})",
        ms(a),
        ms(with_arcade[0]),
        ms(with_arcade[runs - 1])
    );
    println!(
        "  podman run    : {:7.1} ms  ({:.1} … {:.1})",
        ms(p),
        ms(with_podman[0]),
        ms(with_podman[runs - 1])
    );
    let overhead = ms(a) - ms(p);
    println!("  overhead      : {overhead:7.1} ms at the median (target ≤ 50 ms)");
    println!(
        "  paired        : {:7.1} ms, the median of the {runs} runs' differences",
        paired[runs / 2]
    );
}

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    let runs = runs_from("ARCADE_BENCH_RUNS", 15);
    let app_runs = runs_from("ARCADE_BENCH_APP_RUNS", 9);
    println!("load average before: {}", load());
    let image = images::build(&images::Spec::new("xterm"));
    let apps = real_apps::podman_images();
    let xvfb = xvfb::Xvfb::start();
    let display = xvfb.display();
    let home = tempfile::tempdir().unwrap();
    let cookie_dir = tempfile::tempdir().unwrap();
    let wild_cookie = wildcard_cookie(&xvfb, cookie_dir.path());

    let arcade = |image: &str| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_arcade"));
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home.path())
            .env("XDG_RUNTIME_DIR", home.path())
            .env("DISPLAY", &display)
            .env("XAUTHORITY", &xvfb.auth)
            .env("CONTAINERS_CONF", images::containers_conf())
            .args(["launch", "--backend", "podman", image]);
        command
    };
    // The same image, same display socket and cookie, same unprivileged user: the least a bare
    // `podman run` needs to show a window. The real apps also get a writable home (the JVM
    // keeps its settings there) and are started as the platform starts them.
    let bare = |image: &str, command: &[&str]| {
        let mut podman = images::podman();
        podman.args([
            "run",
            "--rm",
            "--name=arcade-bench-bare",
            "--network=none",
            "--user=1000:1000",
            &format!("--env=DISPLAY={display}"),
            "--env=XAUTHORITY=/cookie",
            &format!("--volume={}:/cookie:ro", wild_cookie.display()),
            &format!(
                "--volume=/tmp/.X11-unix/X{0}:/tmp/.X11-unix/X{0}:ro",
                xvfb.number
            ),
        ]);
        if command[0] != "/usr/bin/xterm" {
            podman.args([
                "--tmpfs=/home/app:rw,mode=1777",
                "--workdir=/home/app",
                "--env=HOME=/home/app",
            ]);
        }
        podman.arg(image).args(command);
        podman
    };

    compare(
        "xterm: launch to mapped window",
        runs,
        &xvfb,
        &|| arcade(&image),
        &|| bare(&image, &["/usr/bin/xterm"]),
    );
    for app in real_apps::App::ALL {
        let image = apps.reference(real_apps::Kind::Runs(app));
        compare(
            &format!("{}: launch to its first mapped window", app.command()),
            app_runs,
            &xvfb,
            &|| arcade(&image),
            &|| bare(&image, &["/skaha/startup.sh"]),
        );
    }
    println!("load average after: {}", load());
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// The display's cookie as a FamilyWild entry, readable by uid 1000.
fn wildcard_cookie(xvfb: &xvfb::Xvfb, dir: &Path) -> PathBuf {
    let path = dir.join("cookie");
    let output = Command::new(require_tool("xauth", "xauth"))
        .arg("-f")
        .arg(&xvfb.auth)
        .args(["nlist", &xvfb.display()])
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&output.stdout);
    let wild = format!("ffff{}", &line.trim()[4..]);
    let mut merge = Command::new(require_tool("xauth", "xauth"))
        .arg("-f")
        .arg(&path)
        .args(["nmerge", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    merge
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{wild}\n").as_bytes())
        .unwrap();
    merge.wait().unwrap();
    std::os::unix::fs::chown(&path, Some(1000), Some(1000)).unwrap();
    path
}
