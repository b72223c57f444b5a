//! A soak of the daemon: many launches of the test xterm image over the bus, with `Stop` (some
//! while the app still starts) and `List` interleaved, and what the daemon holds before and
//! after: open file descriptors and resident memory. Nothing may leak.
//!
//! `cargo bench --bench soak` (as root, with Xvfb, xterm, podman and dbus installed, as
//! `.ci/run` installs them). `ARCADE_BENCH_LAUNCHES` sets the number of launches (default 150).

#[allow(dead_code)]
#[path = "../tests/it/support/images.rs"]
mod images;
#[path = "../tests/it/support/poll.rs"]
mod poll;
#[allow(dead_code)]
#[path = "../tests/it/support/xvfb.rs"]
mod xvfb;

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use poll::{KillOnDrop, require_tool, wait_for};
use zbus::zvariant::{OwnedValue, Value};

/// Open file descriptors and resident memory (kB) of a process.
fn footprint(pid: u32) -> (usize, u64) {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |dir| dir.count());
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0);
    (fds, rss)
}

fn start_bus(dir: &Path) -> (KillOnDrop, String) {
    let mut bus = Command::new(require_tool("dbus-daemon", "dbus"))
        .args(["--session", "--nofork", "--print-address=1"])
        .arg(format!("--address=unix:path={}", dir.join("bus").display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start dbus-daemon");
    let mut address = String::new();
    BufReader::new(bus.stdout.take().unwrap())
        .read_line(&mut address)
        .unwrap();
    (KillOnDrop(bus), address.trim().to_owned())
}

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    let launches: usize = std::env::var("ARCADE_BENCH_LAUNCHES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(150);
    let image = images::build(&images::Spec::new("xterm"));
    let xvfb = xvfb::Xvfb::start();
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    std::fs::create_dir_all(home.join(".config/arcade")).unwrap();
    std::fs::write(
        home.join(".config/arcade/config.toml"),
        "[launch]\nbackend = \"podman\"\npull = \"never\"\n[daemon]\nrefresh_minutes = 600\n",
    )
    .unwrap();
    let (_bus, address) = start_bus(home);
    let daemon = Command::new(env!("CARGO_BIN_EXE_arcade"))
        .arg("daemon")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("XDG_RUNTIME_DIR", home)
        .env("DBUS_SESSION_BUS_ADDRESS", &address)
        .env("DISPLAY", xvfb.display())
        .env("CONTAINERS_CONF", images::containers_conf())
        .env("ARCADE_SOURCE", "file")
        .env(
            "ARCADE_CATALOG",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/sample-catalog.json"),
        )
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
        let proxy = arcade::bus::LauncherProxy::builder(&connection)
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await
            .unwrap();
        let started = Instant::now();
        while proxy.last_sync().await.unwrap_or(0) == 0 {
            assert!(started.elapsed() < Duration::from_secs(30), "no daemon");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let options = || -> HashMap<String, OwnedValue> {
            let mut options = HashMap::new();
            for (key, value) in [
                ("display", xvfb.display()),
                ("xauthority", xvfb.auth.display().to_string()),
            ] {
                options.insert(key.to_owned(), Value::from(value).try_into().unwrap());
            }
            options
        };
        // One launch to warm the daemon up (its first container, its first X connection).
        let first = proxy.launch(&image, options()).await.expect("Launch");
        proxy.stop(&first).await.expect("Stop");
        tokio::time::sleep(Duration::from_secs(2)).await;
        let before = footprint(pid);

        let soak = Instant::now();
        let mut stopped_while_starting = 0;
        for round in 0..launches {
            let id = proxy.launch(&image, options()).await.expect("Launch");
            if round % 3 == 0 {
                stopped_while_starting += 1;
            } else {
                // Up first: until List says it runs (its window mapped).
                let deadline = Instant::now() + Duration::from_secs(60);
                loop {
                    let rows = proxy.list().await.expect("List");
                    if rows.iter().any(|row| row.0 == id && row.4 == "running") {
                        break;
                    }
                    assert!(Instant::now() < deadline, "launch {id} did not run");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            let _ = proxy.list().await.expect("List");
            proxy.stop(&id).await.expect("Stop");
        }
        let took = soak.elapsed();
        // Let the last ends settle.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let after = footprint(pid);
        let leftover = images::podman()
            .args([
                "ps",
                "--all",
                "--quiet",
                "--filter",
                "label=net.canfar.arcade",
            ])
            .output()
            .map(|output| String::from_utf8_lossy(&output.stdout).lines().count())
            .unwrap_or(0);
        let folders = std::fs::read_dir(home.join("arcade")).map_or(0, |dir| dir.count());

        println!(
            "arcade daemon soak: {launches} launches ({stopped_while_starting} stopped while \
             starting), Stop and List interleaved, in {:.0} s:",
            took.as_secs_f64()
        );
        println!("  open file descriptors : {} → {}", before.0, after.0);
        println!(
            "  resident memory       : {:.1} MB → {:.1} MB ({:+.1} MB)",
            before.1 as f64 / 1024.0,
            after.1 as f64 / 1024.0,
            (after.1 as f64 - before.1 as f64) / 1024.0
        );
        println!("  containers left       : {leftover}");
        println!("  launch folders left   : {folders}");
    });
}
