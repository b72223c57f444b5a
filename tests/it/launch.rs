//! `arcade launch` end to end: real images run by podman and by a private `dockerd` on a real
//! Xvfb, with the X server as the witness that the window mapped, and the engine's own record of
//! the container (and the kernel's view of the app's process) as the witness of the hardening.
//!
//! What both engines must do is one body run on each ([`on_each_engine!`]); what only podman is
//! asked to do (it is the default engine) stands alone.

use std::path::PathBuf;
use std::time::Duration;

use crate::support;
use crate::support::desk::{Desk, Engine, label_of, on_each_engine};
use crate::support::images::Spec;
use crate::support::xvfb::StartupListener;

/// A field of /proc/PID/status, e.g. `CapEff`.
fn proc_status(pid: &str, field: &str) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
        .trim()
        .to_owned()
}

/// The X server shows the app's window, titled with the app, from the container's host name.
#[track_caller]
fn assert_window_from_the_container(desk: &Desk, image: &str, id: &str) {
    let window = desk
        .xvfb
        .window_titled(&label_of(image))
        .unwrap_or_else(|| {
            panic!(
                "no window titled {}: {:?}",
                label_of(image),
                desk.xvfb.windows()
            )
        });
    assert!(window.class.contains("XTerm"), "{window:?}");
    assert!(
        window.client_machine.ends_with(&format!("-{id}")),
        "{window:?}"
    );
}

/// Hardened as promised, in the engine's own record of launch `id`'s container.
#[track_caller]
fn assert_hardened(desk: &Desk, id: &str) {
    let inspect = |format: &str| desk.inspect(id, format);
    assert_eq!(inspect("{{.Config.User}}"), "1000:1000");
    assert_eq!(inspect("{{.HostConfig.NetworkMode}}"), "none");
    assert_eq!(inspect("{{.HostConfig.AutoRemove}}"), "true");
    assert_eq!(inspect("{{.HostConfig.Init}}"), "true");
    assert_eq!(inspect("{{.HostConfig.CapAdd}}"), "[]");
    assert_eq!(inspect("{{.HostConfig.Privileged}}"), "false");
    // Each engine records the dropped capabilities its own way.
    match desk.engine() {
        Engine::Podman => {
            let caps = inspect("{{.EffectiveCaps}}");
            assert_eq!(caps, "[]", "capabilities left: {caps}");
        }
        Engine::Docker => assert_eq!(inspect("{{.HostConfig.CapDrop}}"), "[ALL]"),
    }
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
}

/// The kernel agrees: PID 1 of the container (the engine's init) runs as the app user, with no
/// capabilities, not even in its bounding set, and cannot gain privileges.
#[track_caller]
fn assert_the_kernel_agrees(desk: &Desk, id: &str) {
    let pid = desk.inspect(id, "{{.State.Pid}}");
    assert!(pid.parse::<u32>().is_ok_and(|pid| pid > 0), "pid {pid:?}");
    assert!(
        proc_status(&pid, "Uid").starts_with("1000\t1000"),
        "{}",
        proc_status(&pid, "Uid")
    );
    assert_eq!(proc_status(&pid, "CapEff"), "0000000000000000");
    assert_eq!(proc_status(&pid, "CapBnd"), "0000000000000000");
    assert_eq!(proc_status(&pid, "NoNewPrivs"), "1");
}

/// The cookie is this launch's own, FamilyWild (0xffff), readable by the app user only; its path.
#[track_caller]
fn assert_own_cookie(desk: &Desk, id: &str) -> PathBuf {
    use std::os::unix::fs::MetadataExt as _;
    let cookie = desk.home.path().join(format!("run/arcade/{id}/Xauthority"));
    let bytes = std::fs::read(&cookie).unwrap();
    assert_eq!(&bytes[..2], &[0xff, 0xff], "not a FamilyWild cookie");
    let meta = std::fs::metadata(&cookie).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o777), (1000, 0o600));
    cookie
}

/// Waits until launch `image`'s window has gone from the display.
#[track_caller]
fn wait_for_the_window_to_close(desk: &Desk, image: &str) {
    support::wait_for("the window to close", Duration::from_secs(15), || {
        desk.xvfb
            .window_titled(&label_of(image))
            .is_none()
            .then_some(())
    });
}

/// Waits until the engine has removed the desk's containers (`--rm`).
#[track_caller]
fn wait_for_the_containers_to_go(desk: &Desk) {
    support::wait_for("the container to go", Duration::from_secs(15), || {
        desk.containers().is_empty().then_some(())
    });
}

on_each_engine! {
    fn launches_xterm_hardened_and_ps_and_stop_find_it(desk) {
        let image = desk.build(&Spec::new("xterm"));
        let run = desk.launch(&[&image]);
        assert_eq!(run.code, Some(0), "{run}");
        assert!(run.stdout.contains("is up: first window after"), "{run}");
        let id = desk.launch_id(&run);
        assert_window_from_the_container(&desk, &image, &id);
        assert_hardened(&desk, &id);
        assert_the_kernel_agrees(&desk, &id);
        let cookie = assert_own_cookie(&desk, &id);

        // ps lists it as a running launch of the engine; stop ends it, the window goes, and
        // --rm removes the container.
        let row = desk.ps_row(&id);
        assert_eq!(row["state"], "running", "{row}");
        assert_eq!(row["backend"], desk.engine().name(), "{row}");
        assert_eq!(row["live_state"], "running", "{row}");
        assert_eq!(row["container"], format!("arcade-{id}").as_str(), "{row}");
        desk.arcade().args(["stop", &id]).ok();
        wait_for_the_window_to_close(&desk, &image);
        wait_for_the_containers_to_go(&desk);
        assert_eq!(desk.ps_row(&id)["state"], "stopped");
        let ps = desk.arcade().args(["ps"]).ok();
        assert!(
            ps.stdout.contains(&id) && ps.stdout.contains("stopped"),
            "{ps}"
        );
        assert!(!cookie.exists(), "the launch folder outlived the launch");

        // Stopping it again says it has already stopped (exit 1), and stops nothing.
        let again = desk.arcade().args(["stop", &id]).run();
        assert_eq!(again.code, Some(1), "{again}");
        assert!(
            again.error_line().contains("has already stopped"),
            "{again}"
        );
    }

    fn a_crashing_app_reports_its_exit_code_and_output(desk) {
        let image = desk.build(&Spec::new("crashing").file(
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
        assert_eq!(ps[0]["backend"], desk.engine().name(), "{ps}");
        wait_for_the_containers_to_go(&desk);
    }

    fn a_missing_image_is_a_clear_error(desk) {
        desk.home
            .write_config("[launch]\nbackend = \"podman\"\npull = \"never\"\nwait_secs = 30\n");
        let run = desk.launch(&["localhost/arcade-test/does-not-exist:1"]);
        assert!(run.code.is_some_and(|code| code != 0), "{run}");
        let line = run.error_line();
        let expected = format!(
            "image localhost/arcade-test/does-not-exist:1 is not available to {}",
            desk.engine().name()
        );
        assert!(line.contains(&expected), "{line}");
        assert!(desk.containers().is_empty());
    }

    fn the_startup_script_gets_the_launcher_path_and_logs_reach_arcade(desk) {
        let image = desk.build(&Spec::new("with-startup").file(
            "/skaha/startup.sh",
            "#!/bin/sh\necho \"startup.sh got: $*\"\nexec $@\n",
            0o755,
        ));
        let run = desk.launch(&[&image]);
        assert_eq!(run.code, Some(0), "{run}");
        let id = desk.launch_id(&run);
        assert!(desk.xvfb.window_titled(&label_of(&image)).is_some());
        let logs = desk.arcade().args(["logs", &id]).ok();
        assert!(
            logs.stdout
                .contains("startup.sh got: /run/arcade/command.sh"),
            "{logs}"
        );
    }

    fn cores_and_memory_reach_the_container(desk) {
        let image = desk.build(&Spec::new("xterm"));
        let run = desk.launch(&["--cores", "1", "--ram", "1", &image]);
        assert_eq!(run.code, Some(0), "{run}");
        let id = desk.launch_id(&run);
        assert_eq!(desk.inspect(&id, "{{.HostConfig.NanoCpus}}"), "1000000000");
        assert_eq!(
            desk.inspect(&id, "{{.HostConfig.Memory}}"),
            (1u64 << 30).to_string()
        );
        let env = desk.inspect(&id, "{{range .Config.Env}}{{println .}}{{end}}");
        assert!(env.lines().any(|line| line == "OMP_NUM_THREADS=1"), "{env}");
    }

    fn no_wait_returns_before_the_window(desk) {
        let image = desk.build(&Spec::new("xterm"));
        let run = desk.launch(&["--no-wait", &image]);
        assert_eq!(run.code, Some(0), "{run}");
        assert!(run.stdout.contains("started (launch"), "{run}");
        let id = desk.launch_id(&run);
        // The app outlives the `arcade launch` that started it.
        desk.window(&label_of(&image), &id);
        assert_eq!(desk.ps_row(&id)["state"], "running");

        // With its record gone, the container is still found by its labels (of the configured
        // engine), listed and stopped.
        std::fs::remove_dir_all(desk.home.state().join("arcade/launches")).unwrap();
        let ps = desk
            .arcade()
            .env("ARCADE_BACKEND", desk.engine().name())
            .args(["ps", "--json"])
            .ok()
            .json();
        assert!(
            ps.as_array()
                .unwrap()
                .iter()
                .any(|row| row["id"] == id.as_str() && row["live_state"] == "running"),
            "{ps:#}"
        );
        let stopped = desk.arcade().args(["stop", &id]).ok();
        assert!(stopped.stdout.contains(&id), "{stopped}");
        wait_for_the_window_to_close(&desk, &image);
        let run = desk.arcade().args(["stop", &id]).run();
        assert_eq!(run.code, Some(1), "an unknown id once it is gone: {run}");
    }
}

// ---------------------------------------------------------------------------------------------
// Podman only.

#[test]
fn init_script_runs_first() {
    let desk = Desk::new(Engine::Podman);
    let image = desk.build(&Spec::new("with-init").file(
        "/skaha/init.sh",
        "#!/bin/sh\necho \"init.sh ran in $PWD as $SHELL, OMP_NUM_THREADS=$OMP_NUM_THREADS \
         GDK_SYNCHRONIZE=$GDK_SYNCHRONIZE\"\n",
        0o755,
    ));
    let run = desk.launch(&["--cores", "3", &image]);
    assert_eq!(run.code, Some(0), "{run}");
    let id = desk.launch_id(&run);
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
fn a_command_after_dashes_replaces_xterm() {
    let desk = Desk::new(Engine::Podman);
    let image = desk.build(&Spec::new("xterm"));
    let run = desk.launch(&[&image, "--", "xterm", "-title", "given title; $(not run)"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(desk.xvfb.window_titled("given title; $(not run)").is_some());
}

#[test]
fn an_unauthorised_display_is_refused_before_anything_starts() {
    let desk = Desk::new(Engine::Podman);
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
    let image = desk.build(&Spec::new("xterm"));
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
    assert!(desk.containers().is_empty(), "a container was started");
}

#[test]
fn no_display_and_no_engine_are_clear_errors() {
    let desk = Desk::new(Engine::Podman);
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
    let desk = Desk::new(Engine::Podman);
    let image = desk.build(&Spec::new("xterm"));
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
    let desk = Desk::new(Engine::Podman);
    let image = desk.build(&Spec::new("xterm"));

    let listener = StartupListener::start(&desk.xvfb);
    let run = desk.launch(&[&image]);
    assert_eq!(run.code, Some(0), "{run}");
    let id = desk.launch_id(&run);
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

// ---------------------------------------------------------------------------------------------
// Issue 12: what the app is given of the display and of arcade's secrets.

/// Connects to `desk`'s display with the cookie in the FamilyWild file `path` (as an app would,
/// or anyone holding a saved copy of it).
fn connect_with_cookie_file(desk: &Desk, path: &std::path::Path) -> Result<(), String> {
    let bytes = std::fs::read(path).map_err(|err| err.to_string())?;
    // family, then four length-prefixed fields: address, number, name, data.
    let mut at = 2;
    let mut field = || {
        let len = u16::from_be_bytes([bytes[at], bytes[at + 1]]) as usize;
        let value = bytes[at + 2..at + 2 + len].to_vec();
        at += 2 + len;
        value
    };
    let (_, _, name, data) = (field(), field(), field(), field());
    let display = desk.xvfb.display();
    let number: u32 = display.trim_start_matches(':').parse().unwrap();
    let stream = std::os::unix::net::UnixStream::connect(format!("/tmp/.X11-unix/X{number}"))
        .map_err(|err| err.to_string())?;
    let stream = x11rb::rust_connection::DefaultStream::from_unix_stream(stream)
        .map_err(|err| err.to_string())?
        .0;
    x11rb::rust_connection::RustConnection::connect_to_stream_with_auth_info(stream, 0, name, data)
        .map(drop)
        .map_err(|err| err.to_string())
}

/// The app gets an authorization of its own (SECURITY extension), not a copy of the display's
/// master cookie, and it is revoked when the app ends: a saved copy opens the display no more.
#[test]
fn r12_9_the_app_gets_its_own_x_authorization_revoked_at_its_end() {
    let desk = Desk::new(Engine::Podman);
    let image = desk.build(&Spec::new("xterm"));
    let run = desk.launch(&[&image]);
    assert_eq!(run.code, Some(0), "{run}");
    let id = desk.launch_id(&run);
    let cookie = desk.home.path().join(format!("run/arcade/{id}/Xauthority"));
    let saved = desk.home.path().join("saved-cookie");
    std::fs::copy(&cookie, &saved).unwrap();
    let master = std::fs::read(&desk.xvfb.auth).unwrap();
    let own = std::fs::read(&saved).unwrap();
    let data = &own[own.len() - 16..];
    assert!(
        !master.windows(16).any(|window| window == data),
        "the app was given the display's master cookie"
    );
    connect_with_cookie_file(&desk, &saved).expect("the app's cookie opens the display");

    desk.arcade().args(["stop", &id]).ok();
    let refused = connect_with_cookie_file(&desk, &saved);
    assert!(
        refused.is_err(),
        "a saved copy of the app's cookie still opens the display after it ended"
    );
}

/// arcade's secrets never reach the engine's environment, and no configured variable's value
/// reaches its command line (where any local user can read it); the app still gets them.
#[test]
fn r12_10_secrets_stay_out_of_the_engine() {
    let desk = Desk::new(Engine::Podman);
    let image = desk.build(&Spec::new("xterm"));
    desk.home.write_config(
        "[launch]\nenv = { XDG_TOKEN = \"s3cret-xdg-value\", DOCKER_HINT = \"s3cret-docker\", \
         TZ = \"UTC\" }\n",
    );
    let run = desk
        .arcade()
        .env("ARCADE_HARBOR_USERNAME", "robot$astro")
        .env("ARCADE_HARBOR_SECRET", "s3cret-harbor")
        .env("ARCADE_SKAHA_TOKEN", "s3cret-skaha")
        .env("DESKTOP_SESSION_APP_TOKEN", "s3cret-session")
        .args(["launch", "--no-wait", &image])
        .ok();
    let id = desk.launch_id(&run);
    let name = format!("--name=arcade-{id}");
    let clients: Vec<std::path::PathBuf> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            std::fs::read(path.join("cmdline"))
                .is_ok_and(|cmdline| cmdline.split(|b| *b == 0).any(|arg| arg == name.as_bytes()))
        })
        .collect();
    assert!(!clients.is_empty(), "no engine client for {id}");
    for client in &clients {
        let cmdline = String::from_utf8_lossy(&std::fs::read(client.join("cmdline")).unwrap())
            .replace('\0', " ");
        let environ = String::from_utf8_lossy(&std::fs::read(client.join("environ")).unwrap())
            .replace('\0', " ");
        for secret in [
            "s3cret-xdg-value",
            "s3cret-docker",
            "s3cret-harbor",
            "s3cret-skaha",
            "s3cret-session",
        ] {
            assert!(
                !cmdline.contains(secret),
                "{secret} on the command line: {cmdline}"
            );
            assert!(
                !environ.contains(secret),
                "{secret} in the environment: {environ}"
            );
        }
    }
    // The app has them all the same.
    let env = support::wait_for("the container", Duration::from_secs(30), || {
        let env = desk.inspect(&id, "{{range .Config.Env}}{{println .}}{{end}}");
        (!env.is_empty()).then_some(env)
    });
    for wanted in [
        "XDG_TOKEN=s3cret-xdg-value",
        "DOCKER_HINT=s3cret-docker",
        "TZ=UTC",
    ] {
        assert!(
            env.lines().any(|line| line == wanted),
            "{wanted} missing: {env}"
        );
    }
    desk.arcade().args(["stop", &id]).ok();
}
