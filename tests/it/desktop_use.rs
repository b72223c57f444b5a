//! What a user meets on a real desktop (issue 11), one test or a few per point of the issue,
//! each through the real binary: the menu's busy cursor, a read-only `ps`, closed pipes, launch
//! ids, the daemon's health and log, versions and names, error lines, the CLI's completions and
//! manual, and the operator section of README.
//!
//! Tests are named `r11_<point>_…` after the point they show. The busy cursor is watched as a
//! desktop's launcher would see it: a real Xvfb with a startup-notification listener, and the
//! argv of the generated entry's `Exec` run with `DESKTOP_STARTUP_ID`, the daemon on a private
//! session bus.
// See: issue 11, "What a user meets on a real desktop".

use std::collections::BTreeMap;
use std::os::fd::{FromRawFd as _, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::dbus::Bus;
use crate::support::desk::{Desk, Engine, catalog_label_of, label_of};
use crate::support::desktop_files::{self, read_entry};
use crate::support::harbor::{
    Artifact, FakeHarbor, HarborConfig, HarborData, Label, Project, Repository,
};
use crate::support::images::{self, Spec};
use crate::support::xvfb::{Seen, StartupListener};
use crate::support::{self, Arcade, Home, KillOnDrop, Run};

// ---------------------------------------------------------------------------------------------
// Fixtures of this file.

/// A desktop as a user meets it: a podman desk whose menu comes from a catalog file, and a
/// private session bus with arcade installed as a D-Bus service, so the daemon starts on first
/// use as it does on a real desktop.
struct Desktop {
    desk: Desk,
    bus: Bus,
}

impl Desktop {
    /// A desktop whose catalog file lists `entries`, with `extra` appended to its config.
    fn new(entries: &[Value], extra: &str) -> Desktop {
        let desk = Desk::new(Engine::Podman);
        write_catalog(&desk.home, "catalog.json", entries);
        let bus = Bus::start(&desk.home, &desk.env());
        let desktop = Desktop { desk, bus };
        desktop.configure(extra);
        desktop
    }

    /// Writes the desktop's config: the menu from its catalog file, apps on podman, and `extra`
    /// last (its keys before any table header of its own are launch settings).
    fn configure(&self, extra: &str) {
        let home = &self.desk.home;
        home.write_config(&format!(
            "source = \"file\"\ncatalog = \"{}\"\n[launch]\nbackend = \"podman\"\n\
             wait_secs = 30\n{extra}\n",
            home.path().join("catalog.json").display()
        ));
    }

    /// Adds desktop shortcuts for `apps` on `~/Desktop` to the config.
    fn with_shortcuts(&self, apps: &[&str]) {
        let names: Vec<String> = apps.iter().map(|app| format!("{app:?}")).collect();
        self.configure(&format!(
            "[menu]\nshortcuts = [{}]\ndesktop_dir = \"{}\"",
            names.join(", "),
            self.desk.home.desktop().display()
        ));
    }

    /// The images the desktop shortcuts launch, by file.
    fn shortcut_images(&self) -> Vec<String> {
        desktop_files::generated(&self.desk.home)
            .into_iter()
            .filter(|path| path.starts_with(self.desk.home.desktop()))
            .map(|path| {
                read_entry(&path)
                    .desktop_entry("X-Arcade-Image")
                    .expect("a shortcut names its image")
                    .to_owned()
            })
            .collect()
    }

    /// `arcade` on this desktop: its display, engine and session bus.
    fn arcade(&self) -> Arcade {
        self.desk
            .arcade()
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus.address)
    }

    /// Has the bus start the daemon and waits for its first sync.
    fn activate(&self) {
        let (ok, out) = self.bus.call("List", &[]);
        assert!(ok, "List failed: {out}");
        support::wait_for("the daemon's first sync", Duration::from_secs(20), || {
            let result = self.bus.property("LastSyncResult");
            (result.contains("ok:") || result.contains("error:")).then_some(())
        });
    }
}

/// A catalog entry as skaha lists it, labelled a desktop app.
fn entry(id: &str) -> Value {
    json!({"id": id, "types": ["desktop-app"]})
}

/// A catalog entry with the digest a registry reports for it.
fn entry_with_digest(id: &str, digest: &str) -> Value {
    json!({"id": id, "types": ["desktop-app"], "digest": digest})
}

fn write_catalog(home: &Home, name: &str, entries: &[Value]) -> PathBuf {
    home.write(name, &serde_json::to_string_pretty(entries).unwrap())
}

/// `arcade menu sync --catalog PATH` (the flag alone means the file source).
fn sync(home: &Home, catalog: &Path) -> Arcade {
    home.arcade()
        .args(["menu", "sync", "--catalog"])
        .args([catalog])
}

/// Gives a test image another name in podman (an app and tag the tests choose); the new name.
fn tag(image: &str, name: &str) -> String {
    let status = images::podman()
        .args(["tag", image, name])
        .status()
        .expect("run podman tag");
    assert!(status.success(), "podman tag {image} {name} failed");
    name.to_owned()
}

/// The digest podman knows for a local image.
fn digest_of(image: &str) -> String {
    let output = images::podman()
        .args(["image", "inspect", "--format", "{{.Digest}}", image])
        .output()
        .expect("run podman image inspect");
    let digest = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    assert!(
        output.status.success() && digest.starts_with("sha256:"),
        "no digest for {image}: {digest}"
    );
    digest
}

/// The argv of the `Exec` of the generated menu entry that launches `image`, as a launcher reads
/// it (the `freedesktop-desktop-entry` crate).
#[track_caller]
fn menu_exec(home: &Home, image: &str) -> Vec<String> {
    desktop_files::generated(home)
        .iter()
        .filter(|path| path.starts_with(home.applications()))
        .map(|path| read_entry(path))
        .find(|entry| entry.desktop_entry("X-Arcade-Image") == Some(image))
        .unwrap_or_else(|| panic!("no menu entry for {image}:\n{}", home.listing()))
        .parse_exec()
        .expect("Exec parses")
}

/// What a launcher runs for an entry: its `Exec` argv with the session's environment (that of
/// `arcade`) and the startup ID it announced.
fn as_launcher_runs(arcade: Arcade, argv: &[String], startup_id: &str) -> Command {
    let mut command = Command::new(&argv[0]);
    command.env_clear().args(&argv[1..]);
    for (key, value) in arcade.command.get_envs() {
        if let Some(value) = value {
            command.env(key, value);
        }
    }
    command
        .env("DESKTOP_STARTUP_ID", startup_id)
        .stdin(Stdio::null());
    command
}

/// Runs a command to its end, as a launcher waits for the process it started.
fn run_to_end(mut command: Command) -> Run {
    let args = format!("{:?}", command.get_args().collect::<Vec<_>>());
    let output = command.output().expect("run the entry's Exec");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        args,
    }
}

/// The `new:` message a launcher sends before it runs an entry.
fn new_message(startup_id: &str, name: &str) -> String {
    format!("new: ID=\"{startup_id}\" NAME=\"{name}\" SCREEN=0 BIN=arcade WMCLASS=\"XTerm\"")
}

/// The names of the menu's entries, from `arcade menu list --json`, depth first.
fn entry_names(arcade: Arcade) -> Vec<String> {
    fn walk(value: &Value, names: &mut Vec<String>) {
        for entry in value["entries"].as_array().into_iter().flatten() {
            names.push(entry["name"].as_str().unwrap().to_owned());
        }
        for menu in value["menus"].as_array().into_iter().flatten() {
            walk(menu, names);
        }
    }
    let mut names = Vec::new();
    walk(
        &arcade.args(["menu", "list", "--json"]).ok().json(),
        &mut names,
    );
    names
}

/// Windows titled `title` that are on screen.
fn windows_titled(desk: &Desk, title: &str) -> usize {
    desk.xvfb
        .windows()
        .iter()
        .filter(|window| window.viewable && window.title == title)
        .count()
}

// ---------------------------------------------------------------------------------------------
// 1. The busy cursor lasts until the window maps, with the daemon running.

/// An app that exits at once, before any window.
fn quitting_app() -> Spec {
    Spec::new("quits-at-once").without_xterm().file(
        "/skaha/startup.sh",
        "#!/bin/sh\necho 'cannot open the display (simulated)' >&2\nexit 3\n",
        0o755,
    )
}

/// A menu click, as XFCE makes it: the launcher sends `new:` for an ID, runs the entry's `Exec`
/// with that ID in `DESKTOP_STARTUP_ID`, and ends the sequence itself when that process exits.
/// So the process must last until the window maps: it does, through the daemon, and exits 0
/// once the X server shows the window; the daemon's `remove:` comes after the map.
#[test]
fn r11_1_the_menus_process_lasts_until_the_window_maps() {
    let image = Engine::Podman.build(&Spec::new("xterm"));
    let label = catalog_label_of(&image);
    let desktop = Desktop::new(&[entry(&image)], "");
    desktop.arcade().args(["menu", "sync"]).ok();
    let argv = menu_exec(&desktop.desk.home, &image);
    assert!(!desktop.bus.has_owner("net.canfar.Arcade1"));

    let listener = StartupListener::start(&desktop.desk.xvfb);
    let startup_id = "xfce4-panel-click-1_TIME4242";
    desktop
        .desk
        .xvfb
        .send_startup(&new_message(startup_id, &label));
    let run = run_to_end(as_launcher_runs(desktop.arcade(), &argv, startup_id));

    // Asked right after the process ended: a window not yet mapped now was mapped after it.
    let window = desktop.desk.xvfb.window_titled(&label).unwrap_or_else(|| {
        panic!(
            "the menu's process exited before the window mapped: {:?}\n{run}",
            desktop.desk.xvfb.windows()
        )
    });
    assert_eq!(run.code, Some(0), "{run}");
    // The daemon took it, and the line names the version it picked.
    assert!(
        run.stdout
            .starts_with(&format!("{label} is up: first window after"))
            && run.stdout.contains("by the arcade daemon"),
        "{run}"
    );
    assert!(desktop.bus.has_owner("net.canfar.Arcade1"));

    let remove = format!("remove: ID=\"{startup_id}\"");
    support::wait_for("the daemon's remove:", Duration::from_secs(10), || {
        listener.messages().contains(&remove).then_some(())
    });
    let timeline = listener.timeline();
    let at = |seen: &Seen| timeline.iter().position(|item| item == seen);
    let mapped = at(&Seen::Mapped(window.id)).unwrap_or_else(|| panic!("{timeline:?}"));
    let removed = at(&Seen::Startup(remove.clone())).unwrap();
    assert!(mapped < removed, "remove: before the map: {timeline:?}");
    // The menu's sequence is the only one: the daemon started none of its own.
    let news = listener.messages();
    let news: Vec<&String> = news.iter().filter(|m| m.starts_with("new:")).collect();
    assert_eq!(news.len(), 1, "{timeline:?}");

    // A desktop shortcut runs the same line, so it behaves the same way.
    desktop.with_shortcuts(&["xterm"]);
    desktop.arcade().args(["menu", "sync"]).ok();
    let shortcuts: Vec<PathBuf> = desktop_files::generated(&desktop.desk.home)
        .into_iter()
        .filter(|path| path.starts_with(desktop.desk.home.desktop()))
        .collect();
    assert_eq!(shortcuts.len(), 1, "{}", desktop.desk.home.listing());
    assert_eq!(read_entry(&shortcuts[0]).parse_exec().unwrap(), argv);
}

/// A launch that fails from the menu ends its process with a failure status and its sequence
/// with `remove:`, so the busy cursor stops and the launcher can tell.
#[test]
fn r11_1_a_failing_launch_from_the_menu_ends_with_its_status_and_remove() {
    let image = Engine::Podman.build(&quitting_app());
    let label = catalog_label_of(&image);
    let desktop = Desktop::new(&[entry(&image)], "");
    desktop.arcade().args(["menu", "sync"]).ok();
    let argv = menu_exec(&desktop.desk.home, &image);

    let listener = StartupListener::start(&desktop.desk.xvfb);
    let startup_id = "xfce4-panel-click-2_TIME4243";
    desktop
        .desk
        .xvfb
        .send_startup(&new_message(startup_id, &label));
    let run = run_to_end(as_launcher_runs(desktop.arcade(), &argv, startup_id));
    assert!(run.code.is_some_and(|code| code != 0), "{run}");
    assert!(run.error_line().contains("exited with code 3"), "{run}");
    // It went through the daemon, which the bus started for it.
    assert!(desktop.bus.has_owner("net.canfar.Arcade1"), "{run}");

    let remove = format!("remove: ID=\"{startup_id}\"");
    support::wait_for(
        "remove: for the failed launch",
        Duration::from_secs(10),
        || listener.messages().contains(&remove).then_some(()),
    );
    assert!(
        !listener
            .timeline()
            .iter()
            .any(|seen| matches!(seen, Seen::Mapped(_))),
        "{:?}",
        listener.timeline()
    );
}

// ---------------------------------------------------------------------------------------------
// 2. `ps` is read-only.

/// A launch's files as arcade keeps them: its record and its launch folder (the cookie and
/// scripts the container mounts), each with its content. The log, which the engine's client
/// writes as the app runs, is left out.
fn launch_files(home: &Home, id: &str) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let record = home.state().join(format!("arcade/launches/{id}.json"));
    files.insert(
        record.clone(),
        std::fs::read(&record).unwrap_or_else(|err| panic!("{}: {err}", record.display())),
    );
    let folder = home.path().join("run/arcade").join(id);
    let entries = std::fs::read_dir(&folder)
        .unwrap_or_else(|err| panic!("the launch folder {}: {err}", folder.display()));
    for entry in entries.flatten() {
        let path = entry.path();
        let content = std::fs::read(&path).unwrap_or_default();
        files.insert(path, content);
    }
    files
}

/// Right after `launch --no-wait --local`, the engine may not list the container yet. `ps` then
/// must neither end the launch's record nor remove its folder (which the container mounts):
/// each of three `ps` leaves every file as it was, and the app comes up.
#[test]
fn r11_2_ps_changes_nothing_while_an_app_starts() {
    let desk = Desk::new(Engine::Podman);
    let image = desk.build(&Spec::new("xterm"));
    let run = desk.launch(&["--no-wait", "--local", &image]);
    assert_eq!(run.code, Some(0), "{run}");
    let id = desk.launch_id(&run);
    let before = launch_files(&desk.home, &id);
    for _ in 0..3 {
        let ps = desk.arcade().args(["ps"]).ok();
        assert!(ps.stdout.contains(&id), "{ps}");
        assert_eq!(
            launch_files(&desk.home, &id),
            before,
            "ps changed the launch's files:\n{ps}"
        );
    }
    desk.window(&label_of(&image), &id);
    assert_eq!(desk.ps_row(&id)["state"], "running");
    assert_eq!(launch_files(&desk.home, &id), before);
}

// ---------------------------------------------------------------------------------------------
// 3. A closed pipe is a quiet success.

/// A pipe whose read end is already closed: every write to the other end fails (EPIPE).
fn closed_pipe() -> OwnedFd {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe2(2) to fill.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2 failed");
    // SAFETY: the read end is ours and nothing else uses it; closing it is the point.
    unsafe { libc::close(fds[0]) };
    // SAFETY: the write end is an open descriptor owned by nothing else.
    unsafe { OwnedFd::from_raw_fd(fds[1]) }
}

/// `arcade … | true`, for sure: stdout is a pipe nobody reads. Each command has output to write
/// (shown by the same command on an open pipe), and with the reader gone it exits 0 and says
/// nothing, as ripgrep does.
#[test]
fn r11_3_a_closed_pipe_is_a_quiet_success() {
    let home = Home::new();
    sync(&home, &support::sample_catalog()).ok();
    let commands: [&[&str]; 10] = [
        &["config"],
        &["config", "--json"],
        &["ps"],
        &["ps", "--json"],
        &["menu", "list"],
        &["menu", "list", "--json"],
        &["menu", "sync", "--dry-run", "--offline"],
        &["completions", "bash"],
        &["man"],
        &["--help"],
    ];
    for args in commands {
        let open = home.arcade().args(args).ok();
        assert!(!open.stdout.is_empty(), "nothing to write: {open}");
        let mut closed = home.arcade().args(args);
        closed.command.stdout(Stdio::from(closed_pipe()));
        let run = closed.run();
        assert_eq!(run.code, Some(0), "arcade {args:?} | true:\n{run}");
        assert_eq!(run.stderr, "", "arcade {args:?} | true:\n{run}");
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Launch ids: an ambiguous prefix, and apps that have already ended.

/// Whether launch `id`'s container runs.
fn container_runs(desk: &Desk, id: &str) -> bool {
    desk.inspect(id, "{{.State.Running}}") == "true"
}

/// Two running apps whose ids share a first digit: `stop` of that digit stops neither and names
/// both, as git does for a short SHA. Stopping an app again, or one that ended unseen, says it
/// has already ended, with status 1.
#[test]
fn r11_4_stop_refuses_an_ambiguous_prefix_and_says_when_an_app_has_ended() {
    let desk = Desk::new(Engine::Podman);
    let image = desk.build(&Spec::new("xterm"));
    let label = label_of(&image);
    // Ids are random hex: among 17 launches two share a first digit, usually within five.
    let mut ids: Vec<String> = Vec::new();
    let (first, second) = loop {
        let run = desk.launch(&["--no-wait", &image]);
        assert_eq!(run.code, Some(0), "{run}");
        let id = desk.launch_id(&run);
        if let Some(twin) = ids.iter().find(|other| other[..1] == id[..1]) {
            break (twin.clone(), id);
        }
        ids.push(id);
        assert!(
            ids.len() <= 16,
            "17 hex ids without a shared first digit: {ids:?}"
        );
    };
    for id in [&first, &second] {
        support::wait_for("the app's container", Duration::from_secs(30), || {
            container_runs(&desk, id).then_some(())
        });
    }

    let prefix = &first[..1];
    let run = desk.arcade().args(["stop", prefix]).run();
    assert_eq!(run.code, Some(2), "{run}");
    let line = run.error_line();
    assert!(
        line.contains(&format!("launch id \"{prefix}\" is ambiguous; it could be")),
        "{line}"
    );
    for id in [&first, &second] {
        assert!(line.contains(&format!("{id} ({label}, running)")), "{line}");
        assert!(
            container_runs(&desk, id),
            "{id} was stopped by `stop {prefix}`"
        );
    }

    // Stopped once, then again: the second time says it has ended already.
    let run = desk.arcade().args(["stop", &first]).ok();
    assert!(run.stdout.contains(&first), "{run}");
    let run = desk.arcade().args(["stop", &first]).run();
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.error_line().contains(&format!(
            "launch {first} ({label}) has already stopped; there is nothing to stop"
        )),
        "{run}"
    );
    assert!(!run.stdout.contains("stopped"), "{run}");

    // The user closed the other app: nobody saw it end, and stop says it has ended.
    let status = images::podman()
        .args(["rm", "--force", "--time", "0", &format!("arcade-{second}")])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let run = desk.arcade().args(["stop", &second]).run();
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.error_line().contains(&format!(
            "launch {second} ({label}) has already exited; there is nothing to stop"
        )),
        "{run}"
    );
}

// ---------------------------------------------------------------------------------------------
// 5. The daemon's health and log.

/// A config every command refuses: an unknown key.
const BROKEN_CONFIG: &str = "colour = \"blue\"\n";

/// `session-start` says "started" only for a daemon that answered on the bus. Without a bus it
/// starts none; with one where the daemon dies at once (it refuses the config) it says so and
/// where to read why. Either way the desktop's startup goes on: exit 0.
#[test]
fn r11_5_session_start_reports_only_a_daemon_that_answered() {
    let home = Home::new();
    let run = home.arcade().args(["session-start"]).run();
    assert_eq!(run.code, Some(0), "{run}");
    assert!(!run.stdout.contains("daemon: started"), "{run}");
    assert!(run.stderr.contains("no session bus"), "{run}");

    home.write_config(BROKEN_CONFIG);
    let bus = Bus::start_without_service(&home);
    let run = home
        .arcade()
        .env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
        .args(["session-start"])
        .run();
    assert_eq!(run.code, Some(0), "{run}");
    assert!(!run.stdout.contains("daemon: started"), "{run}");
    let log = home.state().join("arcade/daemon.log");
    assert!(
        run.stderr.contains("the daemon exited at once")
            && run.stderr.contains(&log.display().to_string()),
        "{run}"
    );
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        text.contains("colour"),
        "the daemon's log does not say why:\n{text}"
    );
    assert!(!bus.has_owner("net.canfar.Arcade1"));
}

/// A daemon the bus starts has nobody reading its stderr: it logs to
/// `$XDG_STATE_HOME/arcade/daemon.log`, without colour codes; under systemd (`JOURNAL_STREAM`)
/// it logs to stderr, which is the journal.
#[test]
fn r11_5_an_activated_daemon_logs_to_its_file_and_under_systemd_to_the_journal() {
    let desktop = Desktop::new(&[entry("images.example.org/skaha/terminal:1.0")], "");
    desktop.activate();
    let log = desktop.desk.home.state().join("arcade/daemon.log");
    let text = support::wait_for("the daemon's log", Duration::from_secs(10), || {
        std::fs::read_to_string(&log)
            .ok()
            .filter(|text| text.contains("menu synced"))
    });
    assert!(text.contains("serving on the session bus"), "{text}");
    assert!(!text.contains('\u{1b}'), "colour codes in a file: {text:?}");
    assert!(!desktop.bus.log().contains("serving on the session bus"));

    // Under systemd the daemon's stderr is the journal, and systemd says so in
    // JOURNAL_STREAM: it logs there. (D-Bus activation here hands it /dev/null, so it is run
    // directly, its stderr a file standing where the journal would.)
    let home = Home::new();
    let catalog = write_catalog(&home, "catalog.json", &[entry("h/skaha/terminal:1.0")]);
    home.write_config(&format!(
        "source = \"file\"\ncatalog = \"{}\"\n",
        catalog.display()
    ));
    let bus = Bus::start_without_service(&home);
    let journal = home.path().join("journal");
    let mut daemon = home
        .arcade()
        .env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
        .env("JOURNAL_STREAM", "8:424242")
        .args(["daemon"])
        .command;
    let child = daemon
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&journal).unwrap())
        .spawn()
        .expect("start arcade daemon");
    let _daemon = KillOnDrop(child);
    let text = support::wait_for(
        "the daemon's log on stderr",
        Duration::from_secs(10),
        || {
            std::fs::read_to_string(&journal)
                .ok()
                .filter(|text| text.contains("serving on the session bus"))
        },
    );
    assert!(!text.contains('\u{1b}'), "{text:?}");
    assert!(!home.state().join("arcade/daemon.log").exists());
}

/// `ARCADE_CONFIG=` (set, empty) is unset, as every other variable: commands work, and
/// `session-start` builds the menu. A variable naming a missing file is still an error.
#[test]
fn r11_5_an_empty_arcade_config_is_unset() {
    let home = Home::new();
    let catalog = write_catalog(&home, "catalog.json", &[entry("h/skaha/terminal:1.0")]);
    home.write_config(&format!(
        "source = \"file\"\ncatalog = \"{}\"\n",
        catalog.display()
    ));
    let arcade = || home.arcade().env("ARCADE_CONFIG", "");
    arcade().args(["config"]).ok();
    arcade().args(["menu", "sync"]).ok();
    arcade().args(["ps"]).ok();
    std::fs::remove_dir_all(home.config().join("menus")).unwrap();
    let run = arcade().args(["session-start"]).run();
    assert_eq!(run.code, Some(0), "{run}");
    assert!(home.merged_menu().is_file(), "{run}\n{}", home.listing());

    let missing = home.path().join("no-such-config.toml");
    let run = home
        .arcade()
        .env("ARCADE_CONFIG", &missing)
        .args(["config"])
        .fails();
    assert!(
        run.error_line().contains(&missing.display().to_string()),
        "{run}"
    );
}

// ---------------------------------------------------------------------------------------------
// 6. Versions and names.

/// `launch carta` with 4.1 and 5.0-beta picks 4.1, through the daemon (which says so) as in a
/// desktop shortcut; an app with only pre-releases gets its newest one.
#[test]
fn r11_6_a_pre_release_is_never_the_default_choice() {
    let xterm = Engine::Podman.build(&Spec::new("xterm"));
    let ids = [
        tag(&xterm, "localhost/arcade-desk/carta:4.1"),
        tag(&xterm, "localhost/arcade-desk/carta:5.0-beta"),
        tag(&xterm, "localhost/arcade-desk/nightly:1.0-rc1"),
        tag(&xterm, "localhost/arcade-desk/nightly:2.0-beta"),
    ];
    let desktop = Desktop::new(&ids.iter().map(|id| entry(id)).collect::<Vec<_>>(), "");
    desktop.with_shortcuts(&["carta", "nightly"]);
    desktop.arcade().args(["menu", "sync"]).ok();
    let mut shortcuts = desktop.shortcut_images();
    shortcuts.sort();
    assert_eq!(shortcuts, [ids[0].as_str(), ids[3].as_str()]);

    // Through the daemon: the line names the version picked.
    let run = desktop.arcade().args(["launch", "carta"]).ok();
    assert!(
        run.stdout
            .starts_with("carta:4.1 is up: first window after")
            && run.stdout.contains("by the arcade daemon"),
        "{run}"
    );
    assert!(desktop.desk.xvfb.window_titled("carta:4.1").is_some());

    // Here, without the daemon: the same choice rule.
    let run = desktop.desk.launch(&["--local", "nightly"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stdout.starts_with("nightly:2.0-beta is up"), "{run}");
    assert!(
        desktop
            .desk
            .xvfb
            .window_titled("nightly:2.0-beta")
            .is_some()
    );
}

/// `terminal:latest` with the digest of 1.1 is one entry, "terminal:1.1 (latest)", not one
/// more after 1.0.
#[test]
fn r11_6_tags_of_one_digest_fold_into_one_entry() {
    let home = Home::new();
    let (old, new) = (
        "sha256:".to_owned() + &"1".repeat(64),
        "sha256:".to_owned() + &"2".repeat(64),
    );
    let catalog = write_catalog(
        &home,
        "catalog.json",
        &[
            entry_with_digest("images.example.org/skaha/terminal:1.0", &old),
            entry_with_digest("images.example.org/skaha/terminal:1.1", &new),
            entry_with_digest("images.example.org/skaha/terminal:latest", &new),
        ],
    );
    sync(&home, &catalog).ok();
    assert_eq!(
        home.arcade().args(["menu", "list"]).ok().stdout,
        "Astro Software\n\
         └── skaha\n\
         \x20   ├── terminal:1.1 (latest)\n\
         \x20   └── terminal:1.0\n"
    );
    let menu = support::menu_as_read_by_pyxdg(&home);
    assert!(menu.contains("terminal:1.1 (latest)\t"), "{menu}");
    assert_eq!(menu.matches("\t").count(), 2, "{menu}");
    desktop_files::validate_home(&home);
}

/// A project that holds one app lists its versions right under the project, even above the
/// submenu threshold; a project with several apps keeps the app's submenu.
#[test]
fn r11_6_a_one_app_project_has_no_app_level() {
    let home = Home::new();
    let tags = ["7.0.0", "6.6.5", "6.6.4", "6.5", "6.4", "6.3", "6.2"];
    let mut entries: Vec<Value> = tags
        .iter()
        .map(|tag| entry(&format!("images.example.org/casa/casa:{tag}")))
        .collect();
    entries.extend(
        tags.iter()
            .map(|tag| entry(&format!("images.example.org/skaha/casa:{tag}"))),
    );
    entries.push(entry("images.example.org/skaha/terminal:1.0"));
    let catalog = write_catalog(&home, "catalog.json", &entries);
    sync(&home, &catalog).ok();
    let menu = support::menu_as_read_by_pyxdg(&home);
    let versions = |indent: &str| -> String {
        tags.iter()
            .map(|tag| format!("{indent}casa:{tag}\n"))
            .collect()
    };
    let names: String = menu
        .lines()
        .map(|line| line.split('\t').next().unwrap().to_owned() + "\n")
        .collect();
    assert_eq!(
        names,
        format!(
            "[Astro Software]\n  [casa]\n{}  [skaha]\n    [casa]\n{}    terminal:1.0\n",
            versions("    "),
            versions("      ")
        )
    );
    desktop_files::validate_home(&home);
}

/// A tag of 128 characters (the longest the OCI grammar allows) shows capped at 64 characters
/// in the menu, and the entry's Comment keeps the whole reference.
#[test]
fn r11_6_a_long_name_is_capped_and_the_comment_keeps_the_reference() {
    let home = Home::new();
    let long = format!("images.example.org/skaha/terminal:1.0-{}", "x".repeat(124));
    let catalog = write_catalog(&home, "catalog.json", &[entry(&long)]);
    sync(&home, &catalog).ok();
    let entries: Vec<PathBuf> = desktop_files::generated(&home)
        .into_iter()
        .filter(|path| path.starts_with(home.applications()))
        .collect();
    assert_eq!(entries.len(), 1, "{}", home.listing());
    let read = read_entry(&entries[0]);
    let name = read.name(&[] as &[&str]).unwrap().into_owned();
    assert_eq!(name.chars().count(), 64, "{name}");
    assert!(
        name.starts_with("terminal:1.0-xxx") && name.ends_with('…'),
        "{name}"
    );
    let comment = read.comment(&[] as &[&str]).unwrap().into_owned();
    assert!(comment.contains(&long), "{comment}");
    desktop_files::validate_home(&home);
    let names = entry_names(home.arcade());
    assert_eq!(names, [name]);
}

/// Tags outside the OCI grammar (`[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`) are left out, whatever
/// the character, and the sync says which and why; valid tags stay.
#[test]
fn r11_6_tags_outside_the_oci_grammar_are_left_out_with_the_reason() {
    let home = Home::new();
    let too_long = "y".repeat(129);
    let bad = [
        "$(reboot)",
        "a;b",
        "50%",
        "über",
        "-lead",
        ".hidden",
        too_long.as_str(),
    ];
    let mut entries = vec![entry("images.example.org/skaha/terminal:1.0_rc-2.x")];
    entries.extend(
        bad.iter()
            .map(|tag| entry(&format!("images.example.org/skaha/terminal:{tag}"))),
    );
    let catalog = write_catalog(&home, "catalog.json", &entries);
    let run = sync(&home, &catalog).ok();
    assert!(
        run.stderr.contains("left out 7 images the source listed"),
        "{run}"
    );
    let left_out: Vec<&str> = run
        .stderr
        .lines()
        .filter(|line| line.starts_with("  "))
        .collect();
    assert_eq!(left_out.len(), bad.len(), "{run}");
    for tag in bad {
        let line = left_out
            .iter()
            .find(|line| line.contains(&format!("terminal:{tag}\"")))
            .unwrap_or_else(|| panic!("{tag:?} is not reported:\n{run}"));
        // Each says why: the grammar, or a character no image name holds.
        assert!(
            line.contains("not a valid OCI tag") || line.contains("which no image name holds"),
            "{line}"
        );
    }
    assert_eq!(entry_names(home.arcade()), ["terminal:1.0_rc-2.x"]);
    let summary = sync(&home, &catalog).args(["--json"]).ok().json();
    assert_eq!(
        summary["skipped"].as_array().unwrap().len(),
        bad.len(),
        "{summary}"
    );
}

/// A test image whose xterm is titled `title`, so its window says which image ran.
fn titled_image(name: &'static str, title: &str) -> String {
    Engine::Podman.build(&Spec::new(name).file(
        "/skaha/startup.sh",
        &format!("#!/bin/sh\nexec xterm -title '{title}'\n"),
        0o755,
    ))
}

/// `REF_A@DIGEST_B` runs B, as `podman run` does, on every path: the command line, the menu's
/// `launch --from-menu` through the daemon, D-Bus `Launch`, and a menu entry of a catalog that
/// lists the pinned reference. The reference is named as typed.
#[test]
fn r11_6_a_digest_pins_the_image_on_every_path() {
    let a = titled_image("pin-a", "image a");
    let b = titled_image("pin-b", "image b");
    let pinned = format!("{a}@{}", digest_of(&b));
    let desktop = Desktop::new(&[entry(&pinned)], "");
    let desk = &desktop.desk;
    // Each path adds a window of image b, and none of image a ever shows.
    let b_windows = |n: usize, what: &str| {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while windows_titled(desk, "image b") < n && windows_titled(desk, "image a") == 0 {
            assert!(std::time::Instant::now() < deadline, "no window for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(
            (
                windows_titled(desk, "image a"),
                windows_titled(desk, "image b")
            ),
            (0, n),
            "{what} ran the wrong image: {:?}",
            desk.xvfb.windows()
        );
    };

    // The command line, without the daemon.
    let run = desk.launch(&[&pinned]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stdout.starts_with(&format!("{pinned} is up")), "{run}");
    b_windows(1, "the command line");

    // A menu's `launch --from-menu`, which the daemon takes.
    let run = desktop
        .arcade()
        .args(["launch", "--from-menu", &pinned])
        .ok();
    assert!(run.stdout.contains("by the arcade daemon"), "{run}");
    b_windows(2, "launch --from-menu");

    // D-Bus `Launch`.
    let (ok, out) = desktop.bus.call("Launch", &["sa{sv}", &pinned, "0"]);
    assert!(ok, "{out}");
    b_windows(3, "D-Bus Launch");

    // The menu entry of a catalog that lists the pinned reference.
    desktop.arcade().args(["menu", "sync"]).ok();
    let exec = desktop_files::generated(&desk.home)
        .iter()
        .filter(|path| path.starts_with(desk.home.applications()))
        .map(|path| read_entry(path).parse_exec().unwrap())
        .next()
        .unwrap_or_else(|| panic!("no menu entry:\n{}", desk.home.listing()));
    let run = run_to_end(as_launcher_runs(desktop.arcade(), &exec, "pin-click_TIME1"));
    assert_eq!(run.code, Some(0), "{exec:?}:\n{run}");
    b_windows(4, &format!("the menu entry {exec:?}"));
}

/// A reference with control characters is refused, and what is shown of it is escaped: no
/// escape sequence reaches the terminal, now or in a later `ps`. A reference the catalog does
/// not know is named as typed, not by its last path segment.
#[test]
fn r11_6_references_are_shown_escaped_and_named_as_typed() {
    let desk = Desk::new(Engine::Podman);
    desk.home
        .write_config("[launch]\nbackend = \"podman\"\npull = \"never\"\nwait_secs = 30\n");
    let hostile = "localhost/arcade-test/evil\u{1b}]0;owned\u{7}\u{1b}[2J:1";
    let run = desk.arcade().args(["launch", hostile]).run();
    assert_eq!(run.code, Some(2), "{run}");
    let line = run.error_line();
    assert!(
        !line.contains('\u{1b}') && !line.contains('\u{7}'),
        "{line:?}"
    );
    assert!(
        line.contains(r"evil\u{1b}]0;owned\u{7}\u{1b}[2J:1"),
        "{line}"
    );
    let ps = desk.arcade().args(["ps"]).ok();
    assert!(
        !ps.stdout.contains('\u{1b}') && !ps.stdout.contains('\u{7}'),
        "{ps:?}"
    );

    let typed = "localhost/arcade-test/nothing-here:1";
    let run = desk.arcade().args(["launch", typed]).run();
    assert!(run.code.is_some_and(|code| code != 0), "{run}");
    assert!(
        run.error_line()
            .contains(&format!("image {typed} is not available")),
        "{run}"
    );
    let ps = desk.arcade().args(["ps", "--json"]).ok().json();
    assert_eq!(ps[0]["app"], typed, "{ps:#}");
}

// ---------------------------------------------------------------------------------------------
// 7. Errors: one line, the cause said once.

/// A missing catalog or config is one error line that names the file and says the cause once.
#[test]
fn r11_7_a_missing_file_is_one_line_with_its_cause_once() {
    let home = Home::new();
    let catalog = home.path().join("no-such-catalog.json");
    let run = sync(&home, &catalog).fails();
    assert_eq!(
        run.error_line(),
        format!(
            "arcade: error: failed to read catalog {}: No such file or directory (os error 2)",
            catalog.display()
        ),
        "{run}"
    );
    let config = home.path().join("no-such-config.toml");
    let run = home
        .arcade()
        .args(["--config"])
        .args([&config])
        .args(["config"])
        .fails();
    let line = run.error_line();
    assert!(line.contains(&config.display().to_string()), "{line}");
    assert_eq!(line.matches("os error 2").count(), 1, "{line}");
    assert_eq!(
        line.matches("No such file or directory").count(),
        1,
        "{line}"
    );
}

/// Counts agree with their nouns: "1 entry in 1 project", "left out 1 image".
#[test]
fn r11_7_counts_agree_with_their_nouns() {
    let home = Home::new();
    let catalog = write_catalog(
        &home,
        "catalog.json",
        &[
            entry("images.example.org/skaha/terminal:1.0"),
            entry("images.example.org/skaha/terminal:bad;tag"),
        ],
    );
    let run = sync(&home, &catalog).ok();
    assert!(
        run.stdout
            .starts_with("menu: 1 entry in 1 project from file"),
        "{run}"
    );
    assert!(
        run.stderr.contains("left out 1 image the source listed"),
        "{run}"
    );
    for wrong in ["1 entries", "1 projects", "1 images"] {
        assert!(
            !run.stdout.contains(wrong) && !run.stderr.contains(wrong),
            "{run}"
        );
    }
}

/// A Harbor stand-in with one app (skaha/casa:6.5), and a home whose config syncs from it.
fn home_on_a_registry() -> (FakeHarbor, Home) {
    let harbor = FakeHarbor::start(HarborConfig::new(HarborData {
        labels: vec![Label::global(1, "desktop-app")],
        projects: vec![
            Project::public("skaha")
                .repository(Repository::new("casa").artifact(Artifact::new(&["6.5"], &[1]))),
        ],
        ..HarborData::default()
    }));
    let home = Home::new();
    home.write_config(&format!(
        "source = \"harbor\"\nurl = \"{}\"\n",
        harbor.url()
    ));
    (harbor, home)
}

/// `--catalog FILE` alone syncs that file, even where the config names a registry: the
/// registry is not asked at all.
#[test]
fn r11_7_a_catalog_flag_alone_means_the_file_source() {
    let (harbor, home) = home_on_a_registry();
    let catalog = write_catalog(&home, "catalog.json", &[entry("h/skaha/terminal:1.0")]);
    let run = sync(&home, &catalog).ok();
    assert!(
        run.stdout
            .contains(&format!("from file {}", catalog.display())),
        "{run}"
    );
    assert_eq!(harbor.requests().len(), 0, "{:?}", harbor.requests());
    assert_eq!(entry_names(home.arcade()), ["terminal:1.0"]);
}

/// `image try` of an image that is not there says to build or pull it, and pulls nothing.
#[test]
fn r11_7_image_try_of_a_missing_image_says_build_or_pull_it_first() {
    let desk = Desk::new(Engine::Podman);
    let run = desk
        .arcade()
        .args(["image", "try", "localhost/arcade-test/never-built:1"])
        .run();
    assert_eq!(run.code, Some(1), "{run}");
    let line = run.error_line();
    assert!(
        line.contains("localhost/arcade-test/never-built:1")
            && line.contains("build or pull it first"),
        "{line}"
    );
    assert!(!run.stderr.contains("/v2/"), "it tried a registry:\n{run}");
    assert!(desk.containers().is_empty());
}

/// The bodies of the `Notify` calls a `dbus-monitor` log shows (the fifth argument).
fn notification_bodies(monitor: &str) -> Vec<String> {
    monitor
        .split("member=Notify")
        .skip(1)
        .filter_map(|call| {
            let strings: Vec<&str> = call.split("\n   string \"").skip(1).collect();
            // App name, icon, summary, body: the body ends where the actions array starts; a
            // call dbus-monitor has not written out yet is not taken.
            let (body, _) = strings.get(3)?.split_once("\"\n   array [")?;
            Some(body.to_owned())
        })
        .collect()
}

/// A failure notification is short: the first clause of the reason, then where to read the
/// rest, "arcade logs ID". From the daemon, and from a menu click that launched here.
#[test]
fn r11_7_failure_notifications_are_short_and_end_with_arcade_logs() {
    let absent = "localhost/arcade-test/absent:1";
    let desktop = Desktop::new(&[entry(absent)], "");
    desktop.configure("pull = \"never\"");
    let monitor = desktop.bus.monitor();
    let run = desktop
        .arcade()
        .args(["launch", "--from-menu", absent])
        .run();
    assert!(run.code.is_some_and(|code| code != 0), "{run}");
    let check = |what: &str| -> String {
        let bodies = support::wait_for("the Notify call", Duration::from_secs(20), || {
            Some(notification_bodies(&monitor.text())).filter(|bodies| !bodies.is_empty())
        });
        let body = bodies.last().unwrap().clone();
        let lines: Vec<&str> = body.lines().collect();
        assert_eq!(lines.len(), 2, "{what}: {body:?}");
        assert!(lines[0].chars().count() <= 121, "{what}: {body:?}");
        assert!(lines[0].contains("not available"), "{what}: {body:?}");
        assert!(lines[1].starts_with("arcade logs "), "{what}: {body:?}");
        lines[1].trim_start_matches("arcade logs ").to_owned()
    };
    let id = check("through the daemon");
    let logs = desktop.arcade().args(["logs", &id]).ok();
    assert!(logs.stdout.contains("absent"), "{logs}");

    // A desktop whose bus has no arcade service: the menu's process launches here and
    // notifies itself.
    let home = Home::new();
    home.write_config("[launch]\nbackend = \"podman\"\npull = \"never\"\n");
    let bus = Bus::start_without_service(&home);
    let monitor = bus.monitor();
    let desk_env = desktop.desk.env();
    let mut arcade = home.arcade().env("DBUS_SESSION_BUS_ADDRESS", &bus.address);
    for (key, value) in desk_env {
        arcade = arcade.env(key, value);
    }
    let run = arcade.args(["launch", "--from-menu", absent]).run();
    assert!(run.code.is_some_and(|code| code != 0), "{run}");
    let bodies = support::wait_for("the Notify call", Duration::from_secs(20), || {
        Some(notification_bodies(&monitor.text())).filter(|bodies| !bodies.is_empty())
    });
    let body = &bodies[0];
    let lines: Vec<&str> = body.lines().collect();
    assert!(
        lines.len() == 2 && lines[0].chars().count() <= 121 && lines[1].starts_with("arcade logs "),
        "launched here: {body:?}"
    );
}

/// An unknown app name gets a suggestion from the menu's catalog.
#[test]
fn r11_7_an_unknown_name_gets_did_you_mean() {
    let home = Home::new();
    let catalog = write_catalog(&home, "catalog.json", &[entry("h/skaha/casa:6.5")]);
    sync(&home, &catalog).ok();
    let run = home.arcade().args(["launch", "csaa"]).run();
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.error_line().contains("did you mean casa?"), "{run}");
}

/// A registry that cannot be reached leaves the menu as it was, and the error points at
/// `--offline`, which then rebuilds the menu from the last good catalog.
#[test]
fn r11_7_an_unreachable_registry_points_at_offline() {
    let (harbor, home) = home_on_a_registry();
    home.arcade().args(["menu", "sync"]).ok();
    drop(harbor);
    let run = home.arcade().args(["menu", "sync"]).fails();
    let line = run.error_line();
    assert!(
        line.ends_with(
            "the menu stays as it was (`arcade menu sync --offline` rebuilds it from the last \
             good catalog)"
        ),
        "{line}"
    );
    assert_eq!(entry_names(home.arcade()), ["casa:6.5"]);
    home.arcade().args(["menu", "sync", "--offline"]).ok();
}

// ---------------------------------------------------------------------------------------------
// 8. What a CLI in this ecosystem is expected to have.

/// `arcade completions bash` completes in a real bash: subcommands, and options of one; zsh
/// and fish get scripts of their own form from the same definitions.
#[test]
fn r11_8_completions_complete_in_a_real_shell() {
    let home = Home::new();
    let script = home.path().join("arcade.bash");
    std::fs::write(
        &script,
        home.arcade().args(["completions", "bash"]).ok().stdout,
    )
    .unwrap();
    // What bash offers after `arcade se` and after `arcade menu sync --d`, as a user's Tab would.
    let complete = |words: &str| -> Vec<String> {
        let line = format!(
            "source {script}; COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); \
             COMP_LINE=\"${{COMP_WORDS[*]}}\"; COMP_POINT=${{#COMP_LINE}}; \
             $(complete -p arcade | sed -n 's/.*-F \\([^ ]*\\).*/\\1/p') arcade \
             \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; \
             printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script = script.display()
        );
        let output = Command::new(support::require_tool("bash", "bash"))
            .args(["--norc", "--noprofile", "-c", &line])
            .output()
            .expect("run bash");
        assert!(
            output.status.success(),
            "bash: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout)
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(complete("arcade se"), ["session-start"]);
    assert_eq!(complete("arcade menu sync --d"), ["--dry-run"]);
    assert!(complete("arcade ''").contains(&"completions".to_owned()));

    let zsh = home.arcade().args(["completions", "zsh"]).ok().stdout;
    assert!(zsh.starts_with("#compdef arcade"), "{zsh}");
    let fish = home.arcade().args(["completions", "fish"]).ok().stdout;
    assert!(fish.contains("complete -c arcade"), "{fish}");
    for script in [&zsh, &fish] {
        assert!(script.contains("session-start") && script.contains("dry-run"));
    }
    let run = home.arcade().args(["completions", "tcsh"]).run();
    assert_eq!(run.code, Some(2), "{run}");
}

/// `arcade man` is a manual page that `man` renders without warnings, generated from the same
/// definitions as `--help`.
#[test]
fn r11_8_man_renders_a_manual_page() {
    let home = Home::new();
    let page = home.path().join("arcade.1");
    std::fs::write(&page, home.arcade().args(["man"]).ok().stdout).unwrap();
    let output = Command::new(support::require_tool("man", "man-db"))
        .arg("--local-file")
        .arg(&page)
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .env("MAN_KEEP_FORMATTING", "")
        // groff's own checks: a page that does not parse cleanly warns on stderr.
        .env("MANROFFOPT", "-ww")
        .output()
        .expect("run man");
    let text = String::from_utf8_lossy(&output.stdout);
    let warnings = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success() && warnings.is_empty(), "{warnings}");
    let help = home.arcade().args(["--help"]).ok().stdout;
    let about = help.lines().next().unwrap();
    assert!(text.contains("NAME") && text.contains("arcade"), "{text}");
    assert!(text.contains(about), "{text}");
    for command in ["launch", "session-start", "completions", "man"] {
        assert!(text.contains(command), "{command} not in the page:\n{text}");
    }
}

/// `arcade logs -f ID` prints what the app writes as it writes it, and ends when the app does.
#[test]
fn r11_8_logs_follow_until_the_app_ends() {
    let desk = Desk::new(Engine::Podman);
    let image = desk.build(&Spec::new("ticking").file(
        "/skaha/startup.sh",
        "#!/bin/sh\n(i=0; while :; do echo \"tick $i\"; i=$((i+1)); sleep 0.2; done) &\n\
         exec xterm -title ticking\n",
        0o755,
    ));
    let run = desk.launch(&[&image]);
    assert_eq!(run.code, Some(0), "{run}");
    let id = desk.launch_id(&run);
    let followed = desk.home.path().join("followed.log");
    let mut logs = desk.arcade().args(["logs", "--follow", &id]);
    logs.command
        .stdout(std::fs::File::create(&followed).unwrap())
        .stderr(Stdio::null());
    let child = KillOnDrop(logs.command.spawn().expect("start arcade logs -f"));
    // Ticks written after `logs -f` began: the one it printed first is followed by later ones.
    let first = support::wait_for("the first tick", Duration::from_secs(10), || {
        last_tick(&std::fs::read_to_string(&followed).unwrap_or_default())
    });
    support::wait_for("later ticks", Duration::from_secs(10), || {
        last_tick(&std::fs::read_to_string(&followed).unwrap_or_default())
            .filter(|tick| *tick >= first + 5)
    });

    desk.arcade().args(["stop", &id]).ok();
    let mut child = child;
    let status = support::wait_for("logs -f to end", Duration::from_secs(20), || {
        child.0.try_wait().unwrap()
    });
    assert!(status.success(), "{status}");
    let text = std::fs::read_to_string(&followed).unwrap();
    let all = desk.arcade().args(["logs", &id]).ok().stdout;
    assert!(
        all.starts_with(&text) || text.starts_with(&all),
        "{text}\n---\n{all}"
    );
}

/// The number of the last complete "tick N" line.
fn last_tick(text: &str) -> Option<u64> {
    text.lines()
        .filter_map(|line| line.strip_prefix("tick ")?.parse().ok())
        .next_back()
}

/// `menu sync --dry-run` lists the entries it would add and remove, and writes nothing.
#[test]
fn r11_8_a_dry_run_lists_what_it_would_add_and_remove() {
    let home = Home::new();
    let catalog = write_catalog(
        &home,
        "catalog.json",
        &[entry("h/skaha/casa:6.5"), entry("h/skaha/terminal:1.0")],
    );
    sync(&home, &catalog).ok();
    write_catalog(
        &home,
        "catalog.json",
        &[entry("h/skaha/terminal:1.0"), entry("h/skaha/topcat:4.9")],
    );
    let before = home.listing();
    let run = sync(&home, &catalog).args(["--dry-run"]).ok();
    let changes: Vec<&str> = run.stdout.lines().skip(1).collect();
    assert_eq!(
        changes,
        ["  + h/skaha/topcat:4.9", "  - h/skaha/casa:6.5"],
        "{run}"
    );
    assert_eq!(home.listing(), before);
    assert_eq!(entry_names(home.arcade()), ["casa:6.5", "terminal:1.0"]);
}

/// The subcommands under `command` (a list of words), as its `--help` lists them.
fn subcommands(home: &Home, command: &[String]) -> Vec<String> {
    let help = home.arcade().args(command).args(["--help"]).ok().stdout;
    help.split("Commands:\n")
        .nth(1)
        .map(|rest| {
            rest.lines()
                .take_while(|line| line.starts_with("  "))
                .filter_map(|line| line.split_whitespace().next())
                .filter(|name| *name != "help")
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Every command that takes `--json` says in its help what the JSON holds.
#[test]
fn r11_8_every_json_flag_has_help() {
    let home = Home::new();
    let mut pending: Vec<Vec<String>> = vec![Vec::new()];
    let mut with_json = Vec::new();
    while let Some(command) = pending.pop() {
        for sub in subcommands(&home, &command) {
            let mut child = command.clone();
            child.push(sub);
            pending.push(child);
        }
        let help = home.arcade().args(&command).args(["--help"]).ok().stdout;
        let Some(at) = help.find("--json") else {
            continue;
        };
        // clap puts the help after the flag, on its line or the next one.
        let text: String = help[at + "--json".len()..]
            .lines()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            text.split_whitespace().count() >= 3 && !text.trim_start().starts_with("--"),
            "arcade {} --json has no help:\n{help}",
            command.join(" ")
        );
        with_json.push(command.join(" "));
    }
    with_json.sort();
    assert_eq!(
        with_json,
        [
            "config",
            "image check",
            "menu clean",
            "menu list",
            "menu sync",
            "ps",
            "samp"
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// 9. The operator section of README.

/// README's operator section says what a desktop image needs beyond the files: the session
/// bus before `session-start` (and how, under `dbus-launch startxfce4`), the autostart entry
/// *or* the startup script, the systemd activation environment, and where the completions and
/// the manual page go, made by the binary's own commands, which work as written there.
#[test]
fn r11_9_readme_tells_operators_the_session_bus_order_and_the_cli_files() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("read README.md");
    let operators = readme
        .split("## For operators")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("README has a section \"For operators\"");
    for needed in [
        "dbus-launch",
        "startxfce4",
        "session bus",
        "dbus-update-activation-environment --systemd",
        "arcade completions bash",
        "arcade man",
    ] {
        assert!(
            operators.contains(needed),
            "README's operator section does not say {needed:?}:\n{operators}"
        );
    }
    assert!(
        operators.contains("autostart entry *or*") || operators.contains("autostart entry or"),
        "README's operator section does not say to use the autostart entry or the script:\n\
         {operators}"
    );
    // The commands it names produce what it installs.
    let home = Home::new();
    for shell in ["bash", "zsh", "fish"] {
        assert!(
            operators.contains(&format!("arcade completions {shell}")),
            "{shell}: {operators}"
        );
        home.arcade().args(["completions", shell]).ok();
    }
    home.arcade().args(["man"]).ok();
}
