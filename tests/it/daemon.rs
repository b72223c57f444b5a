//! The daemon on a real session bus: activation, one instance, launches and their signals, live
//! config and credential changes, refreshes that fail, and the end of the session. Driven with
//! independent clients (`busctl`, `dbus-monitor`) as well as `arcade` itself.

use std::ffi::OsString;
use std::sync::Arc;
use std::time::Duration;

use crate::support::dbus::Bus;
use crate::support::desk::{Desk, Engine, catalog_label_of, launch_id};
use crate::support::desktop_files;
use crate::support::fake_http::{Fault, FaultKind};
use crate::support::harbor::{
    Artifact, FakeHarbor, HarborConfig, HarborData, Label, Project, Repository, User,
};
use crate::support::images::{self, Spec};
use crate::support::real_apps::PodDesktop;
use crate::support::skaha::{self, AppScript, FakeSkaha, SkahaConfig};
use crate::support::xvfb::{Screen, Xvfb};
use crate::support::{self, Arcade, Home, KillOnDrop};

/// A desktop session: a podman desk (or, on a platform desktop, a desk whose display skaha's
/// pods reach), and a private session bus whose activated services (the daemon) see the same
/// display, engine and home.
struct Session<S: Screen = Xvfb> {
    desk: Desk<S>,
    bus: Bus,
}

impl Session {
    fn new(config: &str) -> Session {
        Session::with_env(config, &[])
    }

    /// A session whose menu comes from a catalog file of `ids`, its apps on podman.
    fn with_catalog(ids: &[&str]) -> Session {
        let session = Session::new("");
        session
            .desk
            .home
            .write_config(&file_source(&session.desk.home, ids));
        session
    }

    fn with_env(config: &str, extra: &[(&str, OsString)]) -> Session {
        Session::at(Desk::new(Engine::Podman), config, extra)
    }

    /// A session whose daemon has launched the test xterm image, with its window up; returns
    /// the launch id too.
    fn with_an_app_up() -> (Session, String) {
        let image = Engine::Podman.build(&Spec::new("xterm"));
        let session = Session::with_catalog(&[&image]);
        session.activate();
        let id = session.launch(&image);
        support::wait_for("the window", Duration::from_secs(30), || {
            session.desk.xvfb.window_titled(&catalog_label_of(&image))
        });
        (session, id)
    }
}

impl Session<Arc<PodDesktop>> {
    /// A platform desktop's session: its display is a pod desktop, which skaha's pods reach
    /// over TCP; no local engine. `extra` goes into the environment of the bus's services.
    fn on_pods(extra: &[(&str, OsString)]) -> Session<Arc<PodDesktop>> {
        Session::at(Desk::on_pods(), "", extra)
    }
}

impl<S: Screen> Session<S> {
    fn at(desk: Desk<S>, config: &str, extra: &[(&str, OsString)]) -> Session<S> {
        desk.home.write_config(config);
        let mut env = desk.env();
        env.push(("RUST_LOG", "arcade=debug".into()));
        env.extend(extra.iter().cloned());
        let bus = Bus::start(&desk.home, &env);
        Session { desk, bus }
    }

    fn arcade(&self) -> Arcade {
        self.desk
            .arcade()
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus.address)
    }

    /// Starts the daemon through bus activation and waits for its first sync.
    fn activate(&self) {
        let (ok, out) = self.bus.call("List", &[]);
        assert!(ok, "List failed: {out}");
        self.wait_synced();
    }

    fn wait_synced(&self) {
        support::wait_for("the daemon's first sync", Duration::from_secs(20), || {
            let result = self.property("LastSyncResult");
            (result.contains("ok:") || result.contains("error:")).then_some(())
        });
    }

    fn property(&self, name: &str) -> String {
        self.bus.property(name)
    }

    fn daemon_pid(&self) -> u32 {
        self.bus.owner_pid("net.canfar.Arcade1")
    }

    /// `busctl call … Launch sa{sv} IMAGE 0`; returns the launch id.
    fn launch(&self, image: &str) -> String {
        let (ok, out) = self.bus.call("Launch", &["sa{sv}", image, "0"]);
        assert!(ok, "Launch failed: {out}");
        parse_string(&out)
    }

    /// Asserts that `List()` answers with launch `id` and the state `state`; returns the answer.
    #[track_caller]
    fn assert_listed(&self, id: &str, state: &str) -> String {
        let (ok, out) = self.bus.call("List", &[]);
        assert!(
            ok && out.contains(&format!("\"{id}\"")) && out.contains(&format!("\"{state}\"")),
            "{out}"
        );
        out
    }

    fn entry_names(&self) -> Vec<String> {
        let tree = self.arcade().args(["menu", "list", "--json"]).run();
        if tree.code != Some(0) {
            return Vec::new();
        }
        let mut names = Vec::new();
        fn walk(value: &serde_json::Value, names: &mut Vec<String>) {
            for entry in value["entries"].as_array().into_iter().flatten() {
                names.push(entry["name"].as_str().unwrap().to_owned());
            }
            for menu in value["menus"].as_array().into_iter().flatten() {
                walk(menu, names);
            }
        }
        walk(&tree.json(), &mut names);
        names.sort();
        names
    }
}

/// The string of a busctl reply like `s "abc123"`.
fn parse_string(out: &str) -> String {
    out.trim()
        .strip_prefix("s \"")
        .and_then(|rest| rest.strip_suffix('"'))
        .unwrap_or_else(|| panic!("not a string reply: {out}"))
        .to_owned()
}

fn file_source(home: &Home, ids: &[&str]) -> String {
    let catalog = write_catalog(home, "catalog.json", ids);
    format!(
        "source = \"file\"\ncatalog = \"{}\"\n[launch]\nbackend = \"podman\"\nwait_secs = 30\n",
        catalog.display()
    )
}

fn write_catalog(home: &Home, name: &str, ids: &[&str]) -> std::path::PathBuf {
    let entries: Vec<String> = ids
        .iter()
        .map(|id| format!(r#"{{"id": "{id}", "types": ["desktop-app"]}}"#))
        .collect();
    home.write(name, &format!("[{}]", entries.join(",")))
}

#[test]
fn the_bus_starts_the_daemon_on_first_use_and_it_syncs() {
    let session = Session::with_catalog(&["h/skaha/terminal:1.0", "h/skaha/casa:6.5"]);
    assert!(!session.bus.has_owner("net.canfar.Arcade1"));
    let (ok, out) = session.bus.call("List", &[]);
    assert!(ok, "{out}");
    assert!(out.starts_with("a(sssssxs)"), "{out}");
    assert!(session.bus.has_owner("net.canfar.Arcade1"));
    session.wait_synced();
    assert!(session.property("LastSyncResult").contains("ok: 2 entries"));
    assert_eq!(session.entry_names(), ["casa:6.5", "terminal:1.0"]);
}

#[test]
fn there_is_one_daemon_per_session() {
    let session = Session::with_catalog(&["h/skaha/terminal:1.0"]);
    session.activate();
    let run = session.arcade().args(["daemon"]).run();
    assert!(run.code.is_some_and(|code| code != 0), "{run}");
    assert!(
        run.error_line().contains("already owns net.canfar.Arcade1"),
        "{run}"
    );
    assert!(session.bus.has_owner("net.canfar.Arcade1"));
}

#[test]
fn launch_over_the_bus_maps_a_window_and_signals_it() {
    let image = Engine::Podman.build(&Spec::new("xterm"));
    let session = Session::with_catalog(&[&image]);
    session.activate();
    let monitor = session.bus.monitor();

    let id = session.launch(&image);
    support::wait_for("the window", Duration::from_secs(30), || {
        session.desk.xvfb.window_titled(&catalog_label_of(&image))
    });
    support::wait_for("AppWindowMapped", Duration::from_secs(10), || {
        let text = monitor.text();
        (text.contains("member=AppStarting") && text.contains("member=AppWindowMapped"))
            .then_some(())
    });
    assert!(monitor.text().contains(&format!("string \"{id}\"")));

    session.assert_listed(&id, "running");

    let (ok, out) = session.bus.call("Stop", &["s", &id]);
    assert!(ok, "{out}");
    support::wait_for("the window to close", Duration::from_secs(20), || {
        session
            .desk
            .xvfb
            .window_titled(&catalog_label_of(&image))
            .is_none()
            .then_some(())
    });
    support::wait_for("AppExited", Duration::from_secs(10), || {
        monitor.text().contains("member=AppExited").then_some(())
    });
    let (ok, out) = session.bus.gdbus_call("Stop", &["'nosuchid'"]);
    assert!(
        !ok && out.contains("net.canfar.Arcade1.Error.NotFound"),
        "{out}"
    );
}

#[test]
fn concurrent_launches_all_get_their_window() {
    let image = Engine::Podman.build(&Spec::new("xterm"));
    let session = Session::with_catalog(&[&image]);
    session.activate();
    let titles = ["first window", "second window", "third window"];
    let ids: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = titles
            .iter()
            .map(|title| {
                let session = &session;
                let image = &image;
                scope.spawn(move || {
                    let (ok, out) = session.bus.call(
                        "Launch",
                        &[
                            "sa{sv}", image, "1", "command", "as", "3", "xterm", "-title", title,
                        ],
                    );
                    assert!(ok, "{out}");
                    parse_string(&out)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap())
            .collect()
    });
    assert_eq!(
        ids.iter().collect::<std::collections::BTreeSet<_>>().len(),
        3,
        "{ids:?}"
    );
    for title in titles {
        support::wait_for(title, Duration::from_secs(40), || {
            session.desk.xvfb.window_titled(title)
        });
    }
}

#[test]
fn arcade_launch_goes_through_the_daemon_when_there_is_one() {
    let image = Engine::Podman.build(&Spec::new("xterm"));
    let session = Session::with_catalog(&[&image]);
    // No daemon yet: `arcade launch` itself has the bus start it.
    assert!(!session.bus.has_owner("net.canfar.Arcade1"));
    let run = session.arcade().args(["launch", &image]).run();
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stdout.contains("by the arcade daemon"), "{run}");
    assert!(run.stdout.contains("first window after"), "{run}");
    // The daemon names the app as the menu does once it has read the catalog, and as typed
    // before its first sync.
    assert!(
        session
            .desk
            .xvfb
            .window_titled(&catalog_label_of(&image))
            .or_else(|| session.desk.xvfb.window_titled(&image))
            .is_some(),
        "{:?}",
        session.desk.xvfb.windows()
    );
    assert!(session.bus.has_owner("net.canfar.Arcade1"));
    session.wait_synced();

    // A failure comes back as the command's one error line.
    let run = session
        .arcade()
        .args(["launch", "localhost/arcade-test/nothing-here:1"])
        .run();
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.error_line().contains("nothing-here"), "{run}");

    // What does not exist is status 1, through the daemon as without it.
    let run = session.arcade().args(["launch", "no-such-app"]).run();
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.error_line().contains("no app named"), "{run}");
}

/// In a platform desktop, a menu click hands the launch to the daemon with the caller's backend
/// and skaha service (the daemon's own settings name neither) and returns at once; the daemon
/// follows the app on skaha to its window and then to its end, which it records and signals.
#[test]
fn a_menu_click_hands_a_skaha_launch_to_the_daemon_which_follows_it_to_its_end() {
    const TOKEN: &str = "ZGFlbW9uLXNrYWhhLXRva2Vu";
    const IMAGE: &str = "images.canfar.net/skaha/terminal:1.0";
    const POD_HOST: &str = "terminal-1-0";
    let session_id = SkahaConfig::default().sessions[0].clone();
    let session = Session::on_pods(&[
        ("DESKTOP_SESSION_APP_TOKEN", TOKEN.into()),
        ("ARCADE_SESSION_ID", session_id.clone().into()),
    ]);
    let xterm = images::build(&Spec::new("xterm"));
    let skaha = FakeSkaha::start(SkahaConfig {
        session_tokens: vec![TOKEN.to_owned()],
        app_script: AppScript::RunningAfter(1),
        runner: Some(skaha::pods_on(
            Arc::clone(&session.desk.xvfb),
            &[(IMAGE, xterm)],
        )),
        ..SkahaConfig::default()
    });
    // The daemon's own settings: the menu from a file, apps on podman, skaha asked every second.
    let config = file_source(&session.desk.home, &[IMAGE]);
    session
        .desk
        .home
        .write_config(&format!("{config}[skaha]\nwatch_secs = 1\n"));
    session.activate();
    let monitor = session.bus.monitor();

    let run = session
        .arcade()
        .env("DESKTOP_SESSION_APP_TOKEN", TOKEN)
        .env("ARCADE_SESSION_ID", &session_id)
        .env("ARCADE_BACKEND", "skaha")
        .env("DESKTOP_STARTUP_ID", "menu-click-7_TIME99")
        .args(["launch", "--from-menu", "--url", &skaha.root_url(), IMAGE])
        .ok();
    assert!(run.stdout.contains("by the arcade daemon"), "{run}");
    // The menu's process stays until the window maps, so the menu's busy cursor lasts as long.
    assert!(run.stdout.contains("is up: first window after"), "{run}");
    let id = launch_id(&run);

    // The daemon followed it to the pod's window on this desktop.
    assert!(session.desk.xvfb.window_titled(POD_HOST).is_some());
    support::wait_for("AppWindowMapped", Duration::from_secs(10), || {
        monitor
            .text()
            .contains("member=AppWindowMapped")
            .then_some(())
    });
    let apps = skaha.apps();
    assert_eq!(apps.len(), 1, "{apps:#?}");
    assert_eq!(apps[0].field("image"), Some(IMAGE));
    session.assert_listed(&id, "running");

    // The user closes the app; skaha reports it Completed and the daemon records its end.
    skaha.set_app_status(&apps[0].app_id, "Completed");
    support::wait_for("AppExited", Duration::from_secs(20), || {
        monitor.text().contains("member=AppExited").then_some(())
    });
    session.assert_listed(&id, "exited");
    support::wait_for("the pod's window to go", Duration::from_secs(10), || {
        session
            .desk
            .xvfb
            .window_titled(POD_HOST)
            .is_none()
            .then_some(())
    });

    // Launched over the bus, then stopped: its end is signalled once, by Stop, not again by the
    // follower that then finds it gone.
    let url = skaha.root_url();
    let launch_on_skaha = || {
        let (ok, out) = session.bus.call(
            "Launch",
            &[
                "sa{sv}",
                IMAGE,
                "2",
                "backend",
                "s",
                "skaha",
                "skaha-url",
                "s",
                &url,
            ],
        );
        assert!(ok, "Launch failed: {out}");
        let id = parse_string(&out);
        support::wait_for("the pod's window", Duration::from_secs(30), || {
            session.desk.xvfb.window_titled(POD_HOST)
        });
        id
    };
    let exits = || monitor.text().matches("member=AppExited").count();
    let second = launch_on_skaha();
    let (ok, out) = session.bus.call("Stop", &["s", &second]);
    assert!(ok, "{out}");
    support::wait_for(
        "AppExited for the stopped app",
        Duration::from_secs(10),
        || (exits() == 2).then_some(()),
    );
    // Three of the follower's checks later, still one signal for it.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(exits(), 2, "{}", monitor.text());

    // An app skaha reports Failed after it ran is signalled as failed, with skaha's word.
    let third = launch_on_skaha();
    let app_id = skaha.apps().last().unwrap().app_id.clone();
    skaha.set_app_status(&app_id, "Failed");
    support::wait_for("AppFailed", Duration::from_secs(20), || {
        monitor.text().contains("member=AppFailed").then_some(())
    });
    let out = session.assert_listed(&third, "failed");
    assert!(
        out.contains(&format!("reports app {app_id} failed")),
        "{out}"
    );
    skaha.assert_requests_in_contract();
}

#[test]
fn a_missing_backend_is_a_typed_error() {
    let empty = tempfile::tempdir().unwrap();
    let session = Session::with_env("", &[("PATH", empty.path().as_os_str().to_owned())]);
    session
        .desk
        .home
        .write_config(&file_source(&session.desk.home, &["h/skaha/terminal:1.0"]));
    session.activate();
    let (ok, out) = session
        .bus
        .gdbus_call("Launch", &["'terminal'", "@a{sv} {}"]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("net.canfar.Arcade1.Error.BackendFailed"),
        "{out}"
    );
    assert!(out.contains("podman is not installed"), "{out}");

    let (ok, out) = session
        .bus
        .gdbus_call("Launch", &["'no-such-app'", "@a{sv} {}"]);
    assert!(
        !ok && out.contains("net.canfar.Arcade1.Error.NotFound"),
        "{out}"
    );
    let (ok, out) = session
        .bus
        .gdbus_call("Launch", &["'terminal'", "{'cores': <'two'>}"]);
    assert!(
        !ok && out.contains("net.canfar.Arcade1.Error.InvalidArgs"),
        "{out}"
    );
}

#[test]
fn a_failed_launch_is_signalled_and_notified() {
    let session = Session::new("");
    session.desk.home.write_config(&format!(
        "{}pull = \"never\"\n",
        file_source(&session.desk.home, &["localhost/arcade-test/absent:1"])
    ));
    session.activate();
    let monitor = session.bus.monitor();
    let id = session.launch("absent");
    support::wait_for("AppFailed", Duration::from_secs(20), || {
        let text = monitor.text();
        text.contains("member=AppFailed").then_some(())
    });
    let text = monitor.text();
    assert!(text.contains(&format!("string \"{id}\"")), "{text}");
    assert!(text.contains("not available"), "{text}");
    // The desktop notification is asked for, and its failure (no notification server here) is
    // quiet: the daemon still answers.
    support::wait_for("the Notify call", Duration::from_secs(10), || {
        monitor.text().contains("member=Notify").then_some(())
    });
    assert!(monitor.text().contains("absent:1 did not start"));
    let (ok, _) = session.bus.call("List", &[]);
    assert!(ok);

    // A display that cannot be opened fails before any container starts: the launch failed,
    // and nothing is followed that could later report it exited.
    let (ok, out) = session
        .bus
        .call("Launch", &["sa{sv}", "absent", "1", "display", "s", ":97"]);
    assert!(ok, "{out}");
    support::wait_for("AppFailed for the display", Duration::from_secs(20), || {
        (monitor.text().matches("member=AppFailed").count() == 2).then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    let text = monitor.text();
    assert!(text.contains(":97"), "{text}");
    assert!(!text.contains("member=AppExited"), "{text}");
}

#[test]
fn a_notification_server_shows_the_failure() {
    let session = Session::new("");
    session.desk.home.write_config(&format!(
        "{}pull = \"never\"\n",
        file_source(&session.desk.home, &["localhost/arcade-test/absent:1"])
    ));
    let dunst = std::process::Command::new(support::require_tool("dunst", "dunst"))
        .env("DISPLAY", session.desk.xvfb.display())
        .env("XAUTHORITY", &session.desk.xvfb.auth)
        .env("DBUS_SESSION_BUS_ADDRESS", &session.bus.address)
        .env("HOME", session.desk.home.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _dunst = KillOnDrop(dunst);
    support::wait_for("dunst on the bus", Duration::from_secs(10), || {
        session
            .bus
            .has_owner("org.freedesktop.Notifications")
            .then_some(())
    });
    session.activate();
    session.launch("absent");
    let history = support::wait_for("the notification", Duration::from_secs(20), || {
        let output = std::process::Command::new(support::require_tool("dunstctl", "dunst"))
            .arg("history")
            .env("DBUS_SESSION_BUS_ADDRESS", &session.bus.address)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let displayed = std::process::Command::new(support::require_tool("dunstctl", "dunst"))
            .args(["count", "displayed"])
            .env("DBUS_SESSION_BUS_ADDRESS", &session.bus.address)
            .output()
            .unwrap();
        let count = String::from_utf8_lossy(&displayed.stdout).trim().to_owned();
        (text.contains("did not start") || count != "0").then_some(format!("{text} {count}"))
    });
    assert!(!history.is_empty());
}

#[test]
fn a_config_change_is_picked_up_live() {
    let session = Session::with_catalog(&["h/skaha/terminal:1.0"]);
    session.activate();
    assert_eq!(session.entry_names(), ["terminal:1.0"]);
    let monitor = session.bus.monitor();

    let other = write_catalog(
        &session.desk.home,
        "other.json",
        &["h/skaha/topcat:4.9", "h/skaha/ds9:8.5"],
    );
    session.desk.home.write_config(&format!(
        "source = \"file\"\ncatalog = \"{}\"\n",
        other.display()
    ));
    support::wait_for("the new catalog's menu", Duration::from_secs(20), || {
        (session.entry_names() == ["ds9:8.5", "topcat:4.9"]).then_some(())
    });
    support::wait_for("MenuChanged", Duration::from_secs(10), || {
        monitor.text().contains("member=MenuChanged").then_some(())
    });

    // A broken config keeps the working one, says why, and the daemon keeps serving.
    session
        .desk
        .home
        .write_config("source = \"file\"\ncatalgo = \"typo\"\n");
    support::wait_for(
        "the Notify about the config",
        Duration::from_secs(20),
        || {
            monitor
                .text()
                .contains("arcade kept its previous configuration")
                .then_some(())
        },
    );
    let (ok, out) = session.bus.call("Refresh", &[]);
    assert!(ok, "{out}");
    assert_eq!(out.trim(), "uuu 0 0 2");
    // `arcade menu list` itself now refuses the broken config; a menu reader shows the menu.
    let menu = support::menu_as_read_by_pyxdg(&session.desk.home);
    assert!(
        menu.contains("ds9:8.5") && menu.contains("topcat:4.9"),
        "{menu}"
    );
    assert!(!menu.contains("terminal:1.0"), "{menu}");
}

#[test]
fn a_replaced_credential_file_is_picked_up_live() {
    let mut data = HarborData::default();
    data.labels.push(Label::global(7, "desktop-app"));
    data.users.push(User::local("astro", "right-secret"));
    data.projects.push(
        Project::private("private")
            .member("astro")
            .repository(Repository::new("casa").artifact(Artifact::new(&["6.5"], &[7]))),
    );
    let harbor = FakeHarbor::start(HarborConfig::new(data));
    let session = Session::new("");
    let secrets = session.desk.home.path().join("secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    let secret = secrets.join("harbor");
    std::fs::write(&secret, "wrong-secret\n").unwrap();
    session.desk.home.write_config(&format!(
        "source = \"harbor\"\nurl = \"{}\"\n[harbor]\nusername = \"astro\"\nsecret_file = \"{}\"\n",
        harbor.url(),
        secret.display()
    ));
    session.activate();
    assert!(
        session.property("LastSyncResult").contains("credentials"),
        "{}",
        session.property("LastSyncResult")
    );
    assert!(session.entry_names().is_empty());

    // Replace the file the way secret managers do: write aside, rename over.
    let fresh = secrets.join(".harbor.new");
    std::fs::write(&fresh, "right-secret\n").unwrap();
    std::fs::rename(&fresh, &secret).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while session.entry_names() != ["casa:6.5"] {
        assert!(
            std::time::Instant::now() < deadline,
            "no sync with the new secret; daemon log:\n{}",
            session.bus.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let logs = harbor.requests_to("/systeminfo");
    assert!(logs.len() >= 2, "{logs:?}");
}

#[test]
fn a_failing_refresh_keeps_the_menu() {
    let session = Session::new("");
    let config = file_source(
        &session.desk.home,
        &["h/skaha/terminal:1.0", "h/skaha/casa:6.5"],
    );
    session.desk.home.write_config(&config);
    session.activate();
    let before = std::fs::read(session.desk.home.merged_menu()).unwrap();

    // One more image: Refresh reports it.
    write_catalog(
        &session.desk.home,
        "catalog.json",
        &[
            "h/skaha/terminal:1.0",
            "h/skaha/casa:6.5",
            "h/skaha/casa:6.6",
        ],
    );
    let (ok, out) = session.bus.call("Refresh", &[]);
    assert!(ok, "{out}");
    assert_eq!(out.trim(), "uuu 1 0 2");
    let good = std::fs::read(session.desk.home.merged_menu()).unwrap();
    assert_ne!(before, good);

    session
        .desk
        .home
        .write("catalog.json", "{ this is not json");
    let (ok, out) = session.bus.gdbus_call("Refresh", &[]);
    assert!(!ok, "{out}");
    assert!(out.contains("net.canfar.Arcade1.Error.SyncFailed"), "{out}");
    assert_eq!(
        std::fs::read(session.desk.home.merged_menu()).unwrap(),
        good
    );
    assert!(session.property("LastSyncResult").contains("error:"));
    assert_eq!(
        session.entry_names(),
        ["casa:6.5", "casa:6.6", "terminal:1.0"]
    );
}

/// A refresh that waits on a slow registry holds up no other call: `List`, a property and a
/// `Launch` all answer while it is still running, and it then finishes as usual.
#[test]
fn a_slow_refresh_holds_up_no_other_call() {
    let fake = FakeHarbor::start(HarborConfig::new(HarborData {
        labels: vec![Label::global(1, "desktop-app")],
        projects: vec![
            Project::public("skaha")
                .repository(Repository::new("terminal").artifact(Artifact::new(&["1.0"], &[1]))),
        ],
        ..HarborData::default()
    }));
    let session = Session::new(&format!(
        "source = \"harbor\"\nurl = \"{}\"\n[launch]\nbackend = \"podman\"\n",
        fake.url()
    ));
    session.activate();
    assert!(session.property("LastSyncResult").contains("ok:"));

    // Every label lookup now takes five seconds: the refresh is stuck on them.
    fake.add_fault(Fault::always(FaultKind::Delay(Duration::from_secs(5))).on("/labels"));
    fake.reset_stats();
    let mut refresh = session.bus.busctl();
    refresh.args([
        "--timeout=60",
        "call",
        "net.canfar.Arcade1",
        "/net/canfar/Arcade1",
        "net.canfar.Arcade1.Launcher",
        "Refresh",
    ]);
    let refresh = std::thread::spawn(move || refresh.output().expect("run busctl"));
    support::wait_for("the refresh to ask Harbor", Duration::from_secs(10), || {
        (!fake.requests_to("/labels").is_empty()).then_some(())
    });

    let (ok, out) = session.bus.call("List", &[]);
    assert!(ok, "{out}");
    assert!(
        session.property("LastSync").starts_with('t'),
        "a uint64 answer"
    );
    let (ok, out) = session
        .bus
        .gdbus_call("Launch", &["'no-such-app'", "@a{sv} {}"]);
    assert!(!ok && out.contains("Error.NotFound"), "{out}");
    assert!(
        !refresh.is_finished(),
        "the other calls were answered only once the refresh had ended"
    );

    let output = refresh.join().unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    assert_eq!(text.trim(), "uuu 0 0 1");
}

fn container_running(id: &str) -> bool {
    let output = images::podman()
        .args(["ps", "--quiet", "--filter", &format!("name=arcade-{id}")])
        .output()
        .unwrap();
    !output.stdout.is_empty()
}

#[test]
fn the_end_of_the_session_stops_the_apps() {
    let (session, id) = Session::with_an_app_up();
    assert!(container_running(&id));
    let pid = session.daemon_pid();
    // SAFETY: kill only sends a signal to the daemon this test started.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    support::wait_for("the app to stop", Duration::from_secs(30), || {
        (!container_running(&id)).then_some(())
    });
    support::wait_for("the daemon to exit", Duration::from_secs(10), || {
        (!session.bus.has_owner("net.canfar.Arcade1")).then_some(())
    });
}

#[test]
fn the_bus_going_away_stops_the_apps() {
    let (session, id) = Session::with_an_app_up();
    let pid = session.daemon_pid();
    let mut session = session;
    session.bus.kill();
    support::wait_for("the app to stop", Duration::from_secs(30), || {
        (!container_running(&id)).then_some(())
    });
    support::wait_for("the daemon to exit", Duration::from_secs(10), || {
        // SAFETY: signal 0 only asks whether the process exists.
        (unsafe { libc::kill(pid as i32, 0) } != 0).then_some(())
    });
}

#[test]
fn a_restarted_daemon_finds_running_apps_by_their_labels() {
    let (session, id) = Session::with_an_app_up();
    // A crash: no chance to stop anything.
    let pid = session.daemon_pid();
    // SAFETY: kill only sends a signal to the daemon this test started.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    support::wait_for("the name to be free", Duration::from_secs(10), || {
        (!session.bus.has_owner("net.canfar.Arcade1")).then_some(())
    });
    assert!(container_running(&id));

    session.activate();
    session.assert_listed(&id, "running");
    let pid = session.daemon_pid();
    // SAFETY: as above.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    support::wait_for("the adopted app to stop", Duration::from_secs(30), || {
        (!container_running(&id)).then_some(())
    });
}

#[test]
fn session_start_builds_the_menu_at_once_and_starts_the_daemon() {
    let session = Session::with_catalog(&["h/skaha/terminal:1.0"]);
    // A first sync leaves a last good catalog; then the menu files go (a fresh desktop).
    session.arcade().args(["menu", "sync"]).ok();
    session.arcade().args(["menu", "clean"]).ok();
    session.arcade().args(["menu", "sync"]).ok();
    std::fs::remove_dir_all(session.desk.home.config().join("menus")).unwrap();
    std::fs::remove_dir_all(session.desk.home.applications()).unwrap();

    let run = session.arcade().args(["session-start"]).run();
    assert_eq!(run.code, Some(0), "{run}");
    assert!(
        session.desk.home.merged_menu().is_file(),
        "{}",
        session.desk.home.listing()
    );
    assert!(
        run.stdout.contains("daemon: started by the session bus"),
        "{run}"
    );
    support::wait_for("the daemon", Duration::from_secs(10), || {
        session.bus.has_owner("net.canfar.Arcade1").then_some(())
    });
    let run = session.arcade().args(["session-start"]).run();
    assert!(
        run.stdout.contains("asked the running daemon to refresh"),
        "{run}"
    );

    // A bus on which arcade is not an installed service: it starts the daemon itself, and says
    // so once the daemon answers there.
    let plain = Home::new();
    plain.write_config(&file_source(&plain, &["h/skaha/terminal:1.0"]));
    let bus = crate::support::dbus::Bus::start_without_service(&plain);
    let run = plain
        .arcade()
        .env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
        .args(["session-start"])
        .run();
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stdout.contains("daemon: started (pid"), "{run}");
    assert!(bus.has_owner("net.canfar.Arcade1"), "{run}");
    stop_started_daemon(&run);

    // Without a bus at all it still builds the menu folder, starts no daemon that would die at
    // once, and says why, with a pointer to the fix; it exits 0 all the same.
    let lonely = Home::new();
    lonely.write_config(&file_source(&lonely, &["h/skaha/terminal:1.0"]));
    let run = lonely.arcade().args(["session-start"]).run();
    assert_eq!(run.code, Some(0), "{run}");
    assert!(lonely.config().join("menus/applications-merged").is_dir());
    assert!(!run.stdout.contains("daemon: started"), "{run}");
    assert!(
        run.stderr.contains("no session bus") && run.stderr.contains("dbus-launch"),
        "{run}"
    );

    // A bus that never answers (a socket nobody serves) is given up on after a bound: the
    // desktop is not held up.
    let silent = lonely.path().join("silent-bus");
    let _listener = std::os::unix::net::UnixListener::bind(&silent).unwrap();
    let run = lonely
        .arcade()
        .env(
            "DBUS_SESSION_BUS_ADDRESS",
            format!("unix:path={}", silent.display()),
        )
        .args(["session-start"])
        .run();
    assert_eq!(run.code, Some(0), "{run}");
    assert!(
        run.stderr.contains("set but nothing answers there"),
        "{run}"
    );
}

/// Ends the daemon `session-start` started directly (it printed its pid).
fn stop_started_daemon(run: &crate::support::Run) {
    let pid = run
        .stdout
        .split("started (pid ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_else(|| panic!("no daemon pid in:\n{run}"));
    let _ = std::process::Command::new("kill").arg(pid).status();
}

/// Operators may mount the config from a Kubernetes ConfigMap: `config.toml` is a symlink
/// through `..data`, which is swapped atomically to a new folder. The daemon follows the swap.
#[test]
fn a_config_swapped_behind_symlinks_is_picked_up_live() {
    use std::os::unix::fs::symlink;
    let session = Session::new("");
    let dir = session.desk.home.config().join("arcade");
    let first = file_source(&session.desk.home, &["h/skaha/terminal:1.0"]);
    let other = write_catalog(&session.desk.home, "other.json", &["h/skaha/ds9:8.5"]);
    let second = format!("source = \"file\"\ncatalog = \"{}\"\n", other.display());
    for (version, text) in [("..v1", &first), ("..v2", &second)] {
        std::fs::create_dir_all(dir.join(version)).unwrap();
        std::fs::write(dir.join(version).join("config.toml"), text).unwrap();
    }
    std::fs::remove_file(dir.join("config.toml")).unwrap();
    symlink("..v1", dir.join("..data")).unwrap();
    symlink("..data/config.toml", dir.join("config.toml")).unwrap();
    session.activate();
    assert_eq!(session.entry_names(), ["terminal:1.0"]);

    // The swap, as the kubelet makes it: a new link renamed over `..data`.
    symlink("..v2", dir.join("..data_tmp")).unwrap();
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    support::wait_for("the swapped config's menu", Duration::from_secs(20), || {
        (session.entry_names() == ["ds9:8.5"]).then_some(())
    });
}

#[test]
fn shipped_session_files_are_valid() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("xdg");
    desktop_files::validate(&[root.join("autostart/arcade-session.desktop")]);
    let service =
        std::fs::read_to_string(root.join("dbus-1/services/net.canfar.Arcade1.service")).unwrap();
    assert!(service.contains("Name=net.canfar.Arcade1"));
    let unit = std::fs::read_to_string(root.join("systemd/user/arcade.service")).unwrap();
    assert!(unit.contains("BusName=net.canfar.Arcade1") && unit.contains("Type=dbus"));
}

// ---------------------------------------------------------------------------------------------
// Issue 12: apps that never escape.

/// The PIDs of the engine clients (`podman run`) of launch `id`.
fn engine_clients(id: &str) -> Vec<i32> {
    let name = format!("--name=arcade-{id}");
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| {
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            let is_client = args.first().is_some_and(|arg0| arg0.ends_with(b"podman"))
                && args.contains(&name.as_bytes());
            is_client.then_some(pid)
        })
        .collect()
}

/// The state a launch's record holds on disk.
fn recorded_state(home: &Home, id: &str) -> String {
    let path = home.state().join(format!("arcade/launches/{id}.json"));
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap_or_default()).unwrap_or_default();
    record["state"].as_str().unwrap_or_default().to_owned()
}

/// Kill -9 of the engine client leaves the container running: the daemon follows the container,
/// signals no end, and still stops it when the session ends.
#[test]
fn r12_5_killing_the_engine_client_does_not_orphan_the_app() {
    let (session, id) = Session::with_an_app_up();
    let monitor = session.bus.monitor();
    let clients = engine_clients(&id);
    assert!(!clients.is_empty(), "no podman client for {id}");
    for pid in &clients {
        // SAFETY: kill only sends a signal to a process of this test's.
        unsafe { libc::kill(*pid, libc::SIGKILL) };
    }
    std::thread::sleep(Duration::from_secs(3));
    assert!(container_running(&id), "the container went with its client");
    assert!(
        !monitor.text().contains("member=AppExited"),
        "an end was signalled while the app runs: {}",
        monitor.text()
    );
    session.assert_listed(&id, "running");
    assert!(
        session
            .desk
            .home
            .path()
            .join(format!("run/arcade/{id}"))
            .is_dir()
    );

    // The end of the session stops it, and records that.
    // SAFETY: as above.
    unsafe { libc::kill(session.daemon_pid() as i32, libc::SIGTERM) };
    support::wait_for("the app to stop", Duration::from_secs(30), || {
        (!container_running(&id)).then_some(())
    });
    support::wait_for("its end recorded", Duration::from_secs(10), || {
        (recorded_state(&session.desk.home, &id) != "running").then_some(())
    });
    assert!(
        !session
            .desk
            .home
            .path()
            .join(format!("run/arcade/{id}"))
            .exists()
    );
}

/// A Stop that arrives while the app still starts stops it: the launch is "stopped", never
/// "failed", and no failure is signalled or shown.
#[test]
fn r12_7_a_stop_during_start_is_a_stop() {
    let image = Engine::Podman.build(&Spec::new("xterm"));
    let session = Session::with_catalog(&[&image]);
    session.activate();
    let monitor = session.bus.monitor();
    let mut ids = Vec::new();
    for _ in 0..8 {
        let id = session.launch(&image);
        let (ok, out) = session.bus.call("Stop", &["s", &id]);
        assert!(ok, "Stop failed: {out}");
        ids.push(id);
    }
    for id in &ids {
        support::wait_for("the stop recorded", Duration::from_secs(30), || {
            let state = recorded_state(&session.desk.home, id);
            (!state.is_empty() && state != "starting" && state != "running").then_some(state)
        });
        assert_eq!(
            recorded_state(&session.desk.home, id),
            "stopped",
            "launch {id}: {}",
            session.bus.log()
        );
        assert!(!container_running(id));
        assert!(
            !session
                .desk
                .home
                .path()
                .join(format!("run/arcade/{id}"))
                .exists()
        );
    }
    assert!(
        !monitor.text().contains("member=AppFailed"),
        "{}",
        monitor.text()
    );
}

/// When the session bus dies, the daemon stops its apps and records their ends: no folder (and
/// its cookie) and no "running" record outlive the session.
#[test]
fn r12_8_the_bus_going_away_leaves_no_traces() {
    let image = Engine::Podman.build(&Spec::new("xterm"));
    let session = Session::with_catalog(&[&image]);
    session.activate();
    let first = session.launch(&image);
    let second = session.launch(&image);
    for id in [&first, &second] {
        support::wait_for("the app", Duration::from_secs(30), || {
            container_running(id).then_some(())
        });
    }
    let pid = session.daemon_pid();
    let home = session.desk.home.path().to_owned();
    let mut session = session;
    session.bus.kill();
    support::wait_for("the daemon to exit", Duration::from_secs(30), || {
        // SAFETY: signal 0 only asks whether the process exists.
        (unsafe { libc::kill(pid as i32, 0) } != 0).then_some(())
    });
    for id in [&first, &second] {
        assert!(!container_running(id), "{id} still runs");
        assert!(
            !home.join(format!("run/arcade/{id}")).exists(),
            "the folder of {id} (with its cookie) outlived the session"
        );
        let state = recorded_state(&session.desk.home, id);
        assert!(
            state == "stopped" || state == "exited",
            "{id} is recorded {state:?}"
        );
    }
}

/// The daemon adopts, and at the session's end stops, only the apps of its own session (its
/// display): an app of the same user on another display is left alone, while one on its own
/// display, launched before it started, is adopted and stopped.
#[test]
fn r12_6_only_this_sessions_apps_are_adopted_and_stopped() {
    let image = Engine::Podman.build(&Spec::new("xterm"));
    let session = Session::with_catalog(&[&image]);
    let other = crate::support::xvfb::Xvfb::start();
    let launch_on = |display: String, auth: &std::path::Path| {
        let run = session
            .arcade()
            .env("DISPLAY", display)
            .env("XAUTHORITY", auth)
            .args(["launch", "--local", &image])
            .ok();
        launch_id(&run)
    };
    let theirs = launch_on(other.display(), &other.auth);
    let ours = launch_on(session.desk.xvfb.display(), &session.desk.xvfb.auth);
    assert!(container_running(&theirs) && container_running(&ours));

    session.activate();
    // SAFETY: kill only sends a signal to a process of this test's.
    unsafe { libc::kill(session.daemon_pid() as i32, libc::SIGTERM) };
    support::wait_for("its own app to stop", Duration::from_secs(30), || {
        (!container_running(&ours)).then_some(())
    });
    assert!(
        container_running(&theirs),
        "another session's app was stopped"
    );
}
