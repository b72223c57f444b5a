//! `arcade launch` end to end: real images run by podman on a real Xvfb, with the X server as the
//! witness that the window mapped.

use std::time::Duration;

use crate::support::images::{self, Spec};
use crate::support::xvfb::{StartupListener, Xvfb};
use crate::support::{self, Arcade, Home, Run};

/// A desk: a home, a display, and arcade pointed at both; removes its containers on drop.
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
        self.home
            .arcade()
            .env("DISPLAY", self.xvfb.display())
            .env("XAUTHORITY", &self.xvfb.auth)
            .env("CONTAINERS_CONF", images::containers_conf())
    }

    fn launch(&self, args: &[&str]) -> Run {
        self.arcade().args(["launch"]).args(args).run()
    }

    /// The launch id from "… (launch abc123, podman)".
    fn launch_id(run: &Run) -> String {
        run.stdout
            .split("(launch ")
            .nth(1)
            .and_then(|rest| rest.split(',').next())
            .unwrap_or_else(|| panic!("no launch id in:\n{run}"))
            .to_owned()
    }

    fn podman_inspect(&self, id: &str, format: &str) -> String {
        let output = images::podman()
            .args(["inspect", "--format", format, &format!("arcade-{id}")])
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }
}

impl Drop for Desk {
    fn drop(&mut self) {
        images::remove_containers_on(&self.xvfb.display());
    }
}

fn label_of(reference: &str) -> String {
    // localhost/arcade-test/<name>:<tag> shows as <name>:<tag>.
    reference.rsplit('/').next().unwrap().to_owned()
}

#[test]
fn launches_xterm_and_the_window_maps() {
    let desk = Desk::new();
    let image = images::build(&Spec::new("xterm"));
    let run = desk.launch(&[&image]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stdout.contains("is up: first window after"), "{run}");
    let id = Desk::launch_id(&run);

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

    // Hardened as promised.
    assert_eq!(desk.podman_inspect(&id, "{{.Config.User}}"), "1000:1000");
    assert_eq!(
        desk.podman_inspect(&id, "{{.HostConfig.NetworkMode}}"),
        "none"
    );
    assert_eq!(
        desk.podman_inspect(&id, "{{.HostConfig.AutoRemove}}"),
        "true"
    );
    assert_eq!(desk.podman_inspect(&id, "{{.HostConfig.Init}}"), "true");
    let caps = desk.podman_inspect(&id, "{{.EffectiveCaps}}");
    assert_eq!(caps, "[]", "capabilities left: {caps}");
    let security = desk.podman_inspect(&id, "{{.HostConfig.SecurityOpt}}");
    assert!(security.contains("no-new-privileges"), "{security}");
    let mounts = desk.podman_inspect(&id, "{{range .Mounts}}{{.Destination}}={{.RW}} {{end}}");
    let socket = format!("/tmp/.X11-unix/X{}=false", desk.xvfb.number);
    assert!(
        mounts.contains(&socket),
        "display socket not mounted read-only: {mounts}"
    );
    assert!(
        !mounts.contains("/tmp/.X11-unix="),
        "whole socket folder mounted: {mounts}"
    );

    // ps lists it; stop ends it and the window goes away.
    let ps = desk.arcade().args(["ps", "--json"]).ok().json();
    let row = ps
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["id"] == id.as_str())
        .unwrap_or_else(|| panic!("{id} not in ps: {ps}"));
    assert_eq!(row["state"], "running");
    assert_eq!(row["backend"], "podman");
    desk.arcade().args(["stop", &id]).ok();
    support::wait_for("the window to close", Duration::from_secs(15), || {
        desk.xvfb
            .window_titled(&label_of(&image))
            .is_none()
            .then_some(())
    });
    let ps = desk.arcade().args(["ps"]).ok();
    assert!(
        ps.stdout.contains(&id) && ps.stdout.contains("stopped"),
        "{ps}"
    );
}

#[test]
fn init_script_runs_first() {
    let desk = Desk::new();
    let image = images::build(&Spec::new("with-init").file(
        "/skaha/init.sh",
        "#!/bin/sh\necho \"init.sh ran in $PWD as $SHELL, OMP_NUM_THREADS=$OMP_NUM_THREADS \
         GDK_SYNCHRONIZE=$GDK_SYNCHRONIZE\"\n",
        0o755,
    ));
    let run = desk.launch(&["--cores", "3", &image]);
    assert_eq!(run.code, Some(0), "{run}");
    let id = Desk::launch_id(&run);
    assert!(desk.xvfb.window_titled(&label_of(&image)).is_some());
    // It runs with the environment the platform's Job gives every desktop-app.
    let logs = desk.arcade().args(["logs", &id]).ok();
    assert!(
        logs.stdout.contains(
            "init.sh ran in /home/arcade as /bin/bash, OMP_NUM_THREADS=3 GDK_SYNCHRONIZE=1"
        ),
        "{logs}"
    );
}

#[test]
fn startup_script_gets_the_launcher_path() {
    let desk = Desk::new();
    let image = images::build(&Spec::new("with-startup").file(
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
fn a_command_after_dashes_replaces_xterm() {
    let desk = Desk::new();
    let image = images::build(&Spec::new("xterm"));
    let run = desk.launch(&[&image, "--", "xterm", "-title", "given title; $(not run)"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(desk.xvfb.window_titled("given title; $(not run)").is_some());
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
        line.contains("localhost/arcade-test/does-not-exist:1"),
        "{line}"
    );
    assert!(line.contains("not available"), "{line}");
}

#[test]
fn a_crashing_app_reports_its_exit_code_and_output() {
    let desk = Desk::new();
    let image = images::build(&Spec::new("crashing").file(
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
}

#[test]
fn an_unauthorised_display_is_refused_before_anything_starts() {
    let desk = Desk::new();
    let wrong = desk.home.path().join("wrong-cookie");
    let status = std::process::Command::new(support::require_tool("xauth", "xauth"))
        .arg("-f")
        .arg(&wrong)
        .args([
            "-q",
            "add",
            &desk.xvfb.display(),
            "MIT-MAGIC-COOKIE-1",
            "00112233445566778899aabbccddeeff",
        ])
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let image = images::build(&Spec::new("xterm"));
    let run = desk
        .arcade()
        .env("XAUTHORITY", &wrong)
        .args(["launch", &image])
        .run();
    assert!(run.code.is_some_and(|code| code != 0), "{run}");
    let line = run.error_line();
    assert!(line.contains("refused the connection"), "{line}");
    assert!(line.contains(&desk.xvfb.display()), "{line}");
    // Nothing was started.
    let ps = images::podman()
        .args([
            "ps",
            "--all",
            "--quiet",
            "--filter",
            &format!("label=net.canfar.arcade.display={}", desk.xvfb.display()),
        ])
        .output()
        .unwrap();
    assert!(ps.stdout.is_empty(), "a container was started");
}

#[test]
fn no_display_and_no_engine_are_clear_errors() {
    let desk = Desk::new();
    let run = desk
        .home
        .arcade()
        .args(["launch", "localhost/arcade-test/xterm:1"])
        .run();
    assert!(run.error_line().contains("DISPLAY is not set"), "{run}");

    let run = desk
        .arcade()
        .env("PATH", "/nonexistent")
        .args(["launch", "localhost/arcade-test/xterm:1"])
        .run();
    let line = run.error_line();
    assert!(line.contains("podman is not installed"), "{line}");
}

#[test]
fn names_resolve_through_the_catalog() {
    let desk = Desk::new();
    let image = images::build(&Spec::new("xterm"));
    let tag = image.rsplit(':').next().unwrap();
    let catalog = desk.home.write(
        "catalog.json",
        &format!(
            r#"[{{"id": "{image}", "types": ["desktop-app"]}},
                {{"id": "localhost/arcade-test/xterm:0.1", "types": ["desktop-app"]}},
                {{"id": "localhost/other/twin:1", "types": ["desktop-app"]}},
                {{"id": "localhost/arcade-test/twin:1", "types": ["desktop-app"]}}]"#
        ),
    );
    desk.arcade()
        .args(["menu", "sync", "--source", "file", "--catalog"])
        .args([&catalog])
        .ok();

    // A bare name is the newest version in the catalog ("0.1" is older than the hex tag only if
    // the tag reads as a bigger version, so ask for the exact tag to stay independent of it).
    let run = desk.launch(&[&format!("xterm:{tag}")]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(desk.xvfb.window_titled(&format!("xterm:{tag}")).is_some());

    let run = desk.launch(&["twin"]);
    assert_eq!(run.code, Some(2), "{run}");
    let line = run.error_line();
    assert!(
        line.contains("other/twin") && line.contains("arcade-test/twin"),
        "{line}"
    );

    let run = desk.launch(&["nothing-like-this"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.error_line().contains("no app named"), "{run}");
}

#[test]
fn startup_notification_brackets_the_launch() {
    let desk = Desk::new();
    let image = images::build(&Spec::new("xterm"));

    let listener = StartupListener::start(&desk.xvfb);
    let run = desk.launch(&[&image]);
    assert_eq!(run.code, Some(0), "{run}");
    let id = Desk::launch_id(&run);
    std::thread::sleep(Duration::from_millis(300));
    let messages = listener.messages();
    assert_eq!(messages.len(), 2, "{messages:?} {run}");
    assert!(messages[0].starts_with("new: ID=\"arcade-"), "{messages:?}");
    assert!(messages[0].contains(&id), "{messages:?}");
    assert!(messages[0].contains("WMCLASS=\"XTerm\""), "{messages:?}");
    let sequence = messages[0].split('"').nth(1).unwrap();
    assert_eq!(messages[1], format!("remove: ID=\"{sequence}\""));
    drop(listener);

    // With an ID from the menu, arcade does not start a sequence of its own, it ends the menu's.
    // Without a daemon, a menu entry's launch runs here and waits for the window to do so.
    let listener = StartupListener::start(&desk.xvfb);
    let run = desk
        .arcade()
        .env("DESKTOP_STARTUP_ID", "menu-click-42_TIME1234")
        .args(["launch", "--from-menu", &image])
        .run();
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stdout.contains("is up: first window after"), "{run}");
    std::thread::sleep(Duration::from_millis(300));
    let messages = listener.messages();
    assert_eq!(messages, ["remove: ID=\"menu-click-42_TIME1234\""], "{run}");
}

#[test]
fn no_wait_returns_before_the_window() {
    let desk = Desk::new();
    let image = images::build(&Spec::new("xterm"));
    let run = desk.launch(&["--no-wait", &image]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stdout.contains("started (launch"), "{run}");
    let id = Desk::launch_id(&run);
    support::wait_for("the window", Duration::from_secs(20), || {
        desk.xvfb.window_titled(&label_of(&image))
    });

    // With its record gone, the container is still found by its labels, listed and stopped.
    std::fs::remove_dir_all(desk.home.state().join("arcade/launches")).unwrap();
    let ps = desk.arcade().args(["ps", "--json"]).ok().json();
    assert!(
        ps.as_array()
            .unwrap()
            .iter()
            .any(|row| row["id"] == id.as_str() && row["live_state"] == "running"),
        "{ps:#}"
    );
    let stopped = desk.arcade().args(["stop", &id]).ok();
    assert!(stopped.stdout.contains(&id), "{stopped}");
    support::wait_for("the window to close", Duration::from_secs(15), || {
        desk.xvfb
            .window_titled(&label_of(&image))
            .is_none()
            .then_some(())
    });
    let run = desk.arcade().args(["stop", &id]).run();
    assert_eq!(run.code, Some(1), "an unknown id once it is gone: {run}");
}
