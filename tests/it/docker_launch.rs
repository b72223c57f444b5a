//! `arcade launch --backend docker` end to end: real images run by a private `dockerd` on a real
//! Xvfb, with the X server as the witness that the window mapped and `docker inspect` (and the
//! kernel's view of the app's process) as the witness of the hardening.
//!
//! The configured backend stays podman: `--backend docker` must win for the launch, and `ps` and
//! `stop` must find the container through the launch's record alone.

use std::time::Duration;

use crate::support::docker;
use crate::support::images::Spec;
use crate::support::xvfb::Xvfb;
use crate::support::{self, Arcade, Home, Run};

/// A desk: a home, a display, and arcade pointed at both and at the test daemon; removes its
/// containers on drop.
struct Desk {
    home: Home,
    xvfb: Xvfb,
}

impl Desk {
    fn new() -> Desk {
        let desk = Desk {
            home: Home::new(),
            xvfb: Xvfb::start(),
        };
        desk.home
            .write_config("[launch]\nbackend = \"podman\"\nwait_secs = 30\n");
        desk
    }

    fn arcade(&self) -> Arcade {
        let daemon = docker::daemon();
        self.home
            .arcade()
            .env("DISPLAY", self.xvfb.display())
            .env("XAUTHORITY", &self.xvfb.auth)
            .env("DOCKER_HOST", &daemon.host)
            .env("PATH", &daemon.path)
    }

    fn launch(&self, args: &[&str]) -> Run {
        self.arcade()
            .args(["launch", "--backend", "docker"])
            .args(args)
            .run()
    }

    /// The launch id from "… (launch abc123, docker)".
    #[track_caller]
    fn launch_id(run: &Run) -> String {
        let rest = run
            .stdout
            .split("(launch ")
            .nth(1)
            .unwrap_or_else(|| panic!("no launch id in:\n{run}"));
        let (id, backend) = rest.split_once(", ").unwrap();
        assert!(
            backend.starts_with("docker)"),
            "not launched by docker:\n{run}"
        );
        id.to_owned()
    }

    fn ps_row(&self, id: &str) -> serde_json::Value {
        let ps = self.arcade().args(["ps", "--json"]).ok().json();
        ps.as_array()
            .unwrap()
            .iter()
            .find(|row| row["id"] == id)
            .unwrap_or_else(|| panic!("{id} not in ps: {ps}"))
            .clone()
    }
}

impl Drop for Desk {
    fn drop(&mut self) {
        docker::remove_containers_on(&self.xvfb.display());
    }
}

fn label_of(reference: &str) -> String {
    // localhost/arcade-test/<name>:<tag> shows as <name>:<tag>.
    reference.rsplit('/').next().unwrap().to_owned()
}

/// A field of /proc/PID/status, e.g. `CapEff`.
fn proc_status(pid: &str, field: &str) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
        .trim()
        .to_owned()
}

#[test]
fn launches_xterm_hardened_and_ps_and_stop_find_it() {
    let desk = Desk::new();
    let image = docker::build(&Spec::new("xterm"));
    let run = desk.launch(&[&image]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stdout.contains("is up: first window after"), "{run}");
    let id = Desk::launch_id(&run);
    let container = format!("arcade-{id}");

    // The X server itself shows the window, titled with the app, from the container's host name.
    let window = desk
        .xvfb
        .window_titled(&label_of(&image))
        .unwrap_or_else(|| {
            panic!(
                "no window titled {}: {:?}",
                label_of(&image),
                desk.xvfb.windows()
            )
        });
    assert!(window.class.contains("XTerm"), "{window:?}");
    assert!(
        window.client_machine.ends_with(&format!("-{id}")),
        "{window:?}"
    );

    // Hardened as promised, in the daemon's own record of the container.
    let inspect = |format: &str| docker::inspect(&container, format);
    assert_eq!(inspect("{{.Config.User}}"), "1000:1000");
    assert_eq!(inspect("{{.HostConfig.NetworkMode}}"), "none");
    assert_eq!(inspect("{{.HostConfig.AutoRemove}}"), "true");
    assert_eq!(inspect("{{.HostConfig.Init}}"), "true");
    assert_eq!(inspect("{{.HostConfig.CapDrop}}"), "[ALL]");
    assert_eq!(inspect("{{.HostConfig.CapAdd}}"), "[]");
    assert_eq!(inspect("{{.HostConfig.Privileged}}"), "false");
    let security = inspect("{{.HostConfig.SecurityOpt}}");
    assert!(security.contains("no-new-privileges"), "{security}");
    assert_eq!(
        inspect("{{index .Config.Labels \"net.canfar.arcade.id\"}}"),
        id
    );
    let mounts = inspect("{{range .Mounts}}{{.Destination}}={{.RW}} {{end}}");
    let socket = format!("/tmp/.X11-unix/X{}=false", desk.xvfb.number);
    assert!(
        mounts.contains(&socket),
        "display socket not mounted read-only: {mounts}"
    );
    assert!(
        !mounts.contains("/tmp/.X11-unix="),
        "whole socket folder mounted: {mounts}"
    );
    assert!(
        mounts.contains("/run/arcade=false"),
        "launch folder not mounted read-only: {mounts}"
    );
    let env = inspect("{{range .Config.Env}}{{println .}}{{end}}");
    for expected in [
        "QT_X11_NO_MITSHM=1",
        "XAUTHORITY=/run/arcade/Xauthority",
        &format!("DISPLAY={}", desk.xvfb.display()),
        &format!("ARCADE_LAUNCH_ID={id}"),
    ] {
        assert!(
            env.lines().any(|line| line == expected),
            "{expected}: {env}"
        );
    }

    // The kernel agrees: PID 1 of the container (docker's init) runs as the app user, with no
    // capabilities, not even in its bounding set, and cannot gain privileges.
    let pid = inspect("{{.State.Pid}}");
    assert!(pid.parse::<u32>().is_ok_and(|pid| pid > 0), "pid {pid:?}");
    assert!(
        proc_status(&pid, "Uid").starts_with("1000\t1000"),
        "{}",
        proc_status(&pid, "Uid")
    );
    assert_eq!(proc_status(&pid, "CapEff"), "0000000000000000");
    assert_eq!(proc_status(&pid, "CapBnd"), "0000000000000000");
    assert_eq!(proc_status(&pid, "NoNewPrivs"), "1");

    // The cookie is this launch's own, FamilyWild (0xffff), readable by the app user only.
    let cookie = desk.home.path().join(format!("run/arcade/{id}/Xauthority"));
    let bytes = std::fs::read(&cookie).unwrap();
    assert_eq!(&bytes[..2], &[0xff, 0xff], "not a FamilyWild cookie");
    {
        use std::os::unix::fs::MetadataExt as _;
        let meta = std::fs::metadata(&cookie).unwrap();
        assert_eq!((meta.uid(), meta.mode() & 0o777), (1000, 0o600));
    }

    // ps lists it as a running docker launch; stop ends it, the window goes, and --rm removes the
    // container.
    let row = desk.ps_row(&id);
    assert_eq!(row["state"], "running", "{row}");
    assert_eq!(row["backend"], "docker", "{row}");
    assert_eq!(row["live_state"], "running", "{row}");
    assert_eq!(row["container"], container.as_str(), "{row}");
    desk.arcade().args(["stop", &id]).ok();
    support::wait_for("the window to close", Duration::from_secs(15), || {
        desk.xvfb
            .window_titled(&label_of(&image))
            .is_none()
            .then_some(())
    });
    support::wait_for("the container to go", Duration::from_secs(15), || {
        docker::containers_on(&desk.xvfb.display())
            .is_empty()
            .then_some(())
    });
    let row = desk.ps_row(&id);
    assert_eq!(row["state"], "stopped", "{row}");
    assert!(!cookie.exists(), "the launch folder outlived the launch");

    // Stopping it again is not an error: it is already what the user wanted.
    desk.arcade().args(["stop", &id]).ok();
}

#[test]
fn a_crashing_app_reports_its_exit_code_and_output() {
    let desk = Desk::new();
    let image = docker::build(&Spec::new("crashing").file(
        "/skaha/startup.sh",
        "#!/bin/sh\necho 'segmentation fault (simulated)' >&2\nexit 3\n",
        0o755,
    ));
    let run = desk.launch(&[&image]);
    assert!(run.code.is_some_and(|code| code != 0), "{run}");
    let line = run.error_line();
    assert!(line.contains("exited with code 3"), "{line}");
    assert!(line.contains("segmentation fault (simulated)"), "{line}");
    let ps = desk.arcade().args(["ps", "--json"]).ok().json();
    assert_eq!(ps[0]["state"], "failed", "{ps}");
    assert_eq!(ps[0]["exit_code"], 3, "{ps}");
    assert_eq!(ps[0]["backend"], "docker", "{ps}");
    support::wait_for("the container to go", Duration::from_secs(15), || {
        docker::containers_on(&desk.xvfb.display())
            .is_empty()
            .then_some(())
    });
}

#[test]
fn a_missing_image_is_a_clear_error() {
    let desk = Desk::new();
    desk.home
        .write_config("[launch]\nbackend = \"podman\"\npull = \"never\"\nwait_secs = 30\n");
    let run = desk.launch(&["localhost/arcade-test/does-not-exist:1"]);
    assert!(run.code.is_some_and(|code| code != 0), "{run}");
    let line = run.error_line();
    assert!(
        line.contains("image localhost/arcade-test/does-not-exist:1 is not available to docker"),
        "{line}"
    );
    assert!(docker::containers_on(&desk.xvfb.display()).is_empty());
}

#[test]
fn the_startup_script_runs_and_logs_reach_arcade() {
    let desk = Desk::new();
    let image = docker::build(&Spec::new("with-startup").file(
        "/skaha/startup.sh",
        "#!/bin/sh\necho \"startup.sh got: $*\"\nexec $@\n",
        0o755,
    ));
    let run = desk.launch(&[&image]);
    assert_eq!(run.code, Some(0), "{run}");
    let id = Desk::launch_id(&run);
    assert!(desk.xvfb.window_titled(&label_of(&image)).is_some());
    let logs = desk.arcade().args(["logs", &id]).ok();
    assert!(
        logs.stdout
            .contains("startup.sh got: /run/arcade/command.sh"),
        "{logs}"
    );
}

#[test]
fn cores_and_memory_reach_the_container() {
    let desk = Desk::new();
    let image = docker::build(&Spec::new("xterm"));
    let run = desk.launch(&["--cores", "1", "--ram", "1", &image]);
    assert_eq!(run.code, Some(0), "{run}");
    let container = format!("arcade-{}", Desk::launch_id(&run));
    let inspect = |format: &str| docker::inspect(&container, format);
    assert_eq!(inspect("{{.HostConfig.NanoCpus}}"), "1000000000");
    assert_eq!(inspect("{{.HostConfig.Memory}}"), (1u64 << 30).to_string());
    let env = inspect("{{range .Config.Env}}{{println .}}{{end}}");
    assert!(env.lines().any(|line| line == "OMP_NUM_THREADS=1"), "{env}");
}

#[test]
fn no_wait_returns_before_the_window() {
    let desk = Desk::new();
    let image = docker::build(&Spec::new("xterm"));
    let run = desk.launch(&["--no-wait", &image]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stdout.contains("started (launch"), "{run}");
    let id = Desk::launch_id(&run);
    // The app outlives the `arcade launch` that started it.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while desk.xvfb.window_titled(&label_of(&image)).is_none() {
        if std::time::Instant::now() > deadline {
            let logs = desk.arcade().args(["logs", &id]).run();
            let ps = desk.arcade().args(["ps", "--json"]).run();
            panic!(
                "no window after 30 s: {:?}\nlogs: {logs}\nps: {ps}\ncontainers: {:?}",
                desk.xvfb.windows(),
                docker::containers_on(&desk.xvfb.display())
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(desk.ps_row(&id)["state"], "running");
}
