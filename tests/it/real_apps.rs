//! Real astronomy apps (SAOImage DS9, TOPCAT, Aladin from Debian's packages) in images shaped
//! like the platform's. First the facts arcade builds on: each app's main window maps on a real X
//! server with the class arcade will look for, run by bare podman as an arbitrary uid; and in pods
//! that reach the desktop over TCP, the windows carry the pod's host name only when the toolkit
//! sets one, and no PID. Then the real-app tier on the local engines: `arcade launch` takes each
//! app to its own main window on podman and on docker, and a menu click through the daemon ends
//! the busy cursor on DS9's window; a launch claims no other launch's window and no unrelated
//! client's, Aladin's dialog before its main window is its first window, and an app that maps no
//! window ends its launch with one line naming the image and what was seen.
//!
//! The skaha part of the tier (pods) is `real_apps_skaha.rs`.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::support::dbus::Bus;
use crate::support::desk::{Desk, Engine, catalog_label_of, on_each_engine};
use crate::support::desktop_files::{self, read_entry};
use crate::support::real_apps::{self, App, Images, Kind, Pod, PodDesktop};
use crate::support::xvfb::{Seen, StartupListener, Window, Xvfb};
use crate::support::{self, Run, require_tool};

/// Runs `app` as the platform would run it in the image without a `startup.sh`, and checks its
/// main window: its class, and the host PID the X server knows for it, which must be a process
/// in the container.
fn main_window_maps(app: App) {
    let images = real_apps::podman_images();
    let xvfb = Xvfb::start();
    let folder = tempfile::tempdir().expect("create a folder for the cookie");
    let container = real_apps::run_local(
        &images.reference(Kind::Bare),
        &xvfb,
        folder.path(),
        &[app.command()],
    );
    let window = real_apps::wait_for_main(app, || xvfb.windows(), || container.logs());
    let (instance, class) = app.main_class();
    assert_eq!(window.class, format!("{instance} {class}"), "{window:?}");

    let conn = xvfb.connect().expect("connect to Xvfb");
    let pid = real_apps::client_pid(&conn, window.id)
        .unwrap_or_else(|| panic!("XRes knows no PID for {window:?}"));
    let namespace = |pid: u32| std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
    assert_eq!(
        namespace(pid),
        namespace(container.pid()),
        "the window's client (PID {pid}) is not in the container's PID namespace"
    );
}

#[test]
fn ds9_maps_its_main_window() {
    main_window_maps(App::Ds9);
}

#[test]
fn topcat_maps_its_main_window() {
    main_window_maps(App::Topcat);
}

#[test]
fn aladin_maps_its_main_window() {
    main_window_maps(App::Aladin);
}

/// Three pods on one desktop, one per kind of image: DS9's window (Tk) carries no client machine,
/// so only its class and title tell it apart; the platform's xterm, run by a `startup.sh` that
/// execs it or by the platform itself, carries the pod's host name. Over TCP the X server knows
/// no PID for any of them.
#[test]
fn pods_reach_the_desktop_over_tcp_under_their_host_names() {
    let images = real_apps::podman_images();
    let desktop = PodDesktop::start();
    let ds9 = Pod::run(&images.reference(Kind::Runs(App::Ds9)), "ds9-8-4", &desktop);
    let execs = Pod::run(&images.reference(Kind::Execs), "terminal-1-0", &desktop);
    let bare = Pod::run(&images.reference(Kind::Bare), "astro-apps-1-0", &desktop);

    let window = real_apps::wait_for_main(App::Ds9, || desktop.windows(), || ds9.logs());
    assert_eq!(window.client_machine, "", "{window:?}");
    let conn = desktop.connect().expect("connect to the pod desktop");
    assert_eq!(real_apps::client_pid(&conn, window.id), None, "{window:?}");

    for pod in [&execs, &bare] {
        let window = real_apps::wait_for_window(
            &format!("the xterm of pod {}", pod.host_name),
            || desktop.windows(),
            || pod.logs(),
            |window| window.viewable && window.title == pod.host_name,
        );
        assert_eq!(window.class, "xterm XTerm", "{window:?}");
        assert_eq!(window.client_machine, pod.host_name, "{window:?}");
        assert_eq!(real_apps::client_pid(&conn, window.id), None, "{window:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// The real-app tier on the local engines.

/// How long a real app's launch waits for its first window. A JVM maps its first window in 2 to
/// 5 s here, but the tests share two cores with builds and with each other.
const REAL_APP_WAIT_SECS: u64 = 120;

/// The real-app images in the engine of `desk`.
fn images_on(desk: &Desk) -> &'static Images {
    match desk.engine() {
        Engine::Podman => real_apps::podman_images(),
        Engine::Docker => real_apps::docker_images(),
    }
}

/// Gives the launches at `desk` `seconds` for their first window (on the desk's engine, as
/// [`Desk::new`] sets it up).
fn wait_for_windows(desk: &Desk, seconds: u64) {
    desk.home.write_config(&format!(
        "[launch]\nbackend = \"podman\"\nwait_secs = {seconds}\n"
    ));
}

/// Launch `id`'s log, for failure messages.
fn launch_log(desk: &Desk, id: &str) -> String {
    desk.arcade().args(["logs", id]).run().to_string()
}

/// The PID namespace of a host process: which container it lives in.
#[track_caller]
fn pid_namespace(pid: u32) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/pid"))
        .unwrap_or_else(|err| panic!("read /proc/{pid}/ns/pid: {err}"))
        .display()
        .to_string()
}

/// The PID namespace of the process that draws `window`, which the X server knows (XRes) for a
/// client on the display's socket.
#[track_caller]
fn namespace_of_window(desk: &Desk, window: &Window) -> String {
    let conn = desk.xvfb.connect().expect("connect to Xvfb");
    let pid = real_apps::client_pid(&conn, window.id)
        .unwrap_or_else(|| panic!("XRes knows no PID for {window:?}"));
    pid_namespace(pid)
}

/// The PID namespace of launch `id`'s container.
#[track_caller]
fn namespace_of_launch(desk: &Desk, id: &str) -> String {
    let pid = desk.inspect(id, "{{.State.Pid}}");
    pid_namespace(
        pid.parse()
            .unwrap_or_else(|_| panic!("no PID for launch {id}'s container: {pid:?}")),
    )
}

/// `arcade launch` of `app`'s image in the platform's shape (its `startup.sh` runs the app and
/// ignores the launcher it is given) reports the app up, and the app's main window is on the
/// display, drawn by a process of the launch's own container.
fn launches_to_its_main_window(desk: &Desk, app: App) {
    wait_for_windows(desk, REAL_APP_WAIT_SECS);
    let image = images_on(desk).reference(Kind::Runs(app));
    let run = desk.launch(&[&image]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(
        run.stdout
            .starts_with(&format!("{image} is up: first window after")),
        "{run}"
    );
    let id = desk.launch_id(&run);
    let window = real_apps::wait_for_main(app, || desk.xvfb.windows(), || launch_log(desk, &id));
    assert_eq!(
        namespace_of_window(desk, &window),
        namespace_of_launch(desk, &id),
        "{app:?}'s main window {window:?} is not drawn from launch {id}'s container"
    );
    assert_eq!(desk.ps_row(&id)["state"], "running");
}

on_each_engine! {
    fn ds9_launches_to_its_main_window(desk) {
        launches_to_its_main_window(&desk, App::Ds9);
    }

    fn topcat_launches_to_its_main_window(desk) {
        launches_to_its_main_window(&desk, App::Topcat);
    }

    fn aladin_launches_to_its_main_window(desk) {
        launches_to_its_main_window(&desk, App::Aladin);
    }
}

/// The `StartupWMClass` and the `Exec` argv of the menu entry that launches `image`, as a
/// desktop's launcher reads them.
#[track_caller]
fn menu_entry(home: &support::Home, image: &str) -> (String, Vec<String>) {
    let entry = desktop_files::generated(home)
        .iter()
        .filter(|path| path.starts_with(home.applications()))
        .map(|path| read_entry(path))
        .find(|entry| entry.desktop_entry("X-Arcade-Image") == Some(image))
        .unwrap_or_else(|| panic!("no menu entry for {image}:\n{}", home.listing()));
    let class = entry
        .desktop_entry("StartupWMClass")
        .unwrap_or_else(|| panic!("the entry for {image} has no StartupWMClass"))
        .to_owned();
    (class, entry.parse_exec().expect("Exec parses"))
}

/// Runs a menu entry's `Exec` argv to its end as a desktop's launcher does: with the session's
/// environment (that of `arcade`) and the startup ID it announced.
fn run_as_launcher(arcade: support::Arcade, argv: &[String], startup_id: &str) -> Run {
    let mut command = Command::new(&argv[0]);
    command.env_clear().args(&argv[1..]);
    for (key, value) in arcade.command.get_envs() {
        if let Some(value) = value {
            command.env(key, value);
        }
    }
    let output = command
        .env("DESKTOP_STARTUP_ID", startup_id)
        .stdin(Stdio::null())
        .output()
        .expect("run the entry's Exec");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        args: format!("{argv:?}"),
    }
}

/// A window manager ends a menu's busy cursor by itself when a window of the entry's
/// `StartupWMClass` maps: the entries of DS9, TOPCAT and Aladin name the class their real main
/// windows carry (the tests above see it on the windows, through [`App::is_main`]).
#[test]
fn the_menu_names_each_real_apps_window_class() {
    let home = support::Home::new();
    let images: Vec<String> = App::ALL
        .iter()
        .map(|app| format!("images.canfar.net/skaha/{}:1.0", app.command()))
        .collect();
    let entries: Vec<_> = images
        .iter()
        .map(|id| json!({"id": id, "types": ["desktop-app"]}))
        .collect();
    let catalog = home.write("catalog.json", &json!(entries).to_string());
    home.arcade()
        .args(["menu", "sync", "--catalog"])
        .args([&catalog])
        .ok();
    for (app, image) in App::ALL.iter().zip(&images) {
        let (class, _) = menu_entry(&home, image);
        assert_eq!(class, app.main_class().1, "{app:?}");
    }
}

/// A click on DS9's menu entry, as a desktop's launcher makes it: it announces the launch
/// (`new:`), runs the entry's `Exec` with `DESKTOP_STARTUP_ID`, and shows the busy cursor until
/// the sequence's `remove:`. The bus starts the daemon, which launches DS9; the entry's process
/// lasts until DS9's main window maps, `remove:` comes after the map, and the window's class is
/// the entry's `StartupWMClass`.
#[test]
fn a_menu_click_on_ds9_lasts_until_its_window_maps() {
    let image = real_apps::podman_images().as_app(App::Ds9);
    let label = catalog_label_of(&image);
    let desk = Desk::new(Engine::Podman);
    let catalog = desk.home.write(
        "catalog.json",
        &json!([{"id": image, "types": ["desktop-app"]}]).to_string(),
    );
    desk.home.write_config(&format!(
        "source = \"file\"\ncatalog = \"{}\"\n[launch]\nbackend = \"podman\"\n\
         wait_secs = {REAL_APP_WAIT_SECS}\n",
        catalog.display()
    ));
    let bus = Bus::start(&desk.home, &desk.env());
    let arcade = || desk.arcade().env("DBUS_SESSION_BUS_ADDRESS", &bus.address);
    arcade().args(["menu", "sync"]).ok();
    let (wm_class, argv) = menu_entry(&desk.home, &image);
    assert!(!bus.has_owner("net.canfar.Arcade1"), "a daemon ran early");

    let listener = StartupListener::start(&desk.xvfb);
    let startup_id = "xfce4-panel-click-ds9_TIME4244";
    desk.xvfb.send_startup(&format!(
        "new: ID=\"{startup_id}\" NAME=\"{label}\" SCREEN=0 BIN=arcade WMCLASS=\"{wm_class}\""
    ));
    let run = run_as_launcher(arcade(), &argv, startup_id);

    // Asked right after the entry's process ended: a window not mapped now mapped after it.
    let window = desk
        .xvfb
        .windows()
        .into_iter()
        .find(|window| App::Ds9.is_main(window))
        .unwrap_or_else(|| {
            panic!(
                "the entry's process ended before DS9's window mapped: {:?}\n{run}",
                desk.xvfb.windows()
            )
        });
    assert_eq!(run.code, Some(0), "{run}");
    assert!(
        run.stdout
            .starts_with(&format!("{label} is up: first window after"))
            && run.stdout.contains("by the arcade daemon"),
        "{run}"
    );
    assert!(bus.has_owner("net.canfar.Arcade1"), "{run}");
    assert_eq!(
        window.class.rsplit(' ').next(),
        Some(wm_class.as_str()),
        "{window:?}"
    );

    let remove = format!("remove: ID=\"{startup_id}\"");
    support::wait_for("the daemon's remove:", Duration::from_secs(10), || {
        listener.messages().contains(&remove).then_some(())
    });
    let timeline = listener.timeline();
    let at = |seen: &Seen| timeline.iter().position(|item| item == seen);
    let mapped = at(&Seen::Mapped(window.id)).unwrap_or_else(|| panic!("{timeline:?}"));
    let removed = at(&Seen::Startup(remove)).unwrap();
    assert!(mapped < removed, "remove: before the map: {timeline:?}");
}

/// A client on the host that dresses its window as DS9's (the same class, instance and title),
/// as another app or a copy of DS9 started by hand would. Killed on drop.
struct Impostor(Child);

impl Impostor {
    /// Starts the host's xterm so dressed on `xvfb`; its window, once mapped.
    fn start(xvfb: &Xvfb) -> (Impostor, Window) {
        let impostor = Impostor(
            Command::new(require_tool("xterm", "xterm"))
                .args([
                    "-name",
                    "ds9.tcl",
                    "-class",
                    "Ds9.tcl",
                    "-title",
                    "SAOImage ds9",
                ])
                .env("DISPLAY", xvfb.display())
                .env("XAUTHORITY", &xvfb.auth)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start xterm"),
        );
        // Unlike DS9 (Tk), xterm names its host, which tells the impostor apart here.
        let window = real_apps::wait_for_window(
            "the impostor's window",
            || xvfb.windows(),
            String::new,
            |window| App::Ds9.is_main(window) && !window.client_machine.is_empty(),
        );
        (impostor, window)
    }
}

impl Drop for Impostor {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether `window` is a main window of `app`, whichever copy of the app on the display drew it:
/// Tk names the instance of the second DS9 on a display `ds9.tcl #2` (its application name,
/// made unique on the display), and only the class stays `Ds9.tcl`.
fn is_a_main_window(app: App, window: &Window) -> bool {
    window.viewable
        && window.title.starts_with(app.main_title())
        && window.class.rsplit(' ').next() == Some(app.main_class().1)
}

/// Evidence that is not unique must not hand a window to the wrong launch. Three launches of one
/// image at once (its `startup.sh` runs what it is given): two run DS9 and one an app that maps
/// no window, while an unrelated client on the host maps a window dressed as DS9's. Each DS9
/// launch reports its window, and the two DS9 windows are drawn from the two launches'
/// containers, one each; the silent launch claims none of the three windows, and is still
/// waiting when the test stops it after all of them mapped.
#[test]
fn launches_of_one_image_at_once_each_get_their_own_window_and_no_other() {
    let desk = Desk::new(Engine::Podman);
    wait_for_windows(&desk, REAL_APP_WAIT_SECS);
    let image = real_apps::podman_images().reference(Kind::Execs);
    std::thread::scope(|scope| {
        let silent = scope.spawn(|| desk.launch(&[&image, "--", "sleep", "600"]));
        // arcade watches the display before it starts the container: once the container is
        // there, the silent launch sees every window that maps.
        let container = support::wait_for(
            "the silent launch's container",
            Duration::from_secs(60),
            || desk.containers().into_iter().next(),
        );
        let silent_id = desk.engine().inspect(
            &container,
            "{{index .Config.Labels \"net.canfar.arcade.id\"}}",
        );
        let (_impostor, impostor_window) = Impostor::start(&desk.xvfb);
        let ds9 = [(); 2].map(|()| scope.spawn(|| desk.launch(&[&image, "--", "ds9"])));
        let ids: Vec<String> = ds9
            .into_iter()
            .map(|launch| {
                let run = launch.join().expect("a DS9 launch");
                assert_eq!(
                    run.code,
                    Some(0),
                    "{run}\nps: {}",
                    desk.arcade().args(["ps"]).run()
                );
                assert!(run.stdout.contains("is up: first window after"), "{run}");
                desk.launch_id(&run)
            })
            .collect();
        assert_ne!(ids[0], ids[1]);

        let windows = support::wait_for("two DS9 windows", Duration::from_secs(60), || {
            let windows: Vec<Window> = desk
                .xvfb
                .windows()
                .into_iter()
                .filter(|window| is_a_main_window(App::Ds9, window))
                .filter(|window| window.id != impostor_window.id)
                .collect();
            (windows.len() == 2).then_some(windows)
        });
        let mut drawn_by: Vec<String> = windows
            .iter()
            .map(|window| namespace_of_window(&desk, window))
            .collect();
        let mut launched: Vec<String> = ids
            .iter()
            .map(|id| namespace_of_launch(&desk, id))
            .collect();
        drawn_by.sort();
        launched.sort();
        assert_eq!(drawn_by, launched, "{windows:?}");
        assert!(
            desk.xvfb
                .windows()
                .iter()
                .any(|window| window.id == impostor_window.id && window.viewable),
            "the impostor's window went"
        );

        // Every window has mapped; the silent launch must have taken none of them.
        let row = desk.ps_row(&silent_id);
        assert!(row["window_ms"].is_null(), "{row}");
        desk.arcade().args(["stop", &silent_id]).ok();
        let run = silent.join().expect("the silent launch");
        assert!(run.code.is_some_and(|code| code != 0), "{run}");
        assert!(!run.stdout.contains("is up"), "{run}");
        let row = desk.ps_row(&silent_id);
        assert!(row["window_ms"].is_null(), "{row}");
    });
}

/// Aladin cannot reach its servers (app containers have no network), so it maps an
/// "Information" dialog of its own class a second or so before its main window. arcade's first
/// window is the first top-level window the app maps that is neither override-redirect (menus,
/// tooltips) nor a splash screen: a dialog counts, since the user sees the app answer. So the
/// launch is up at the dialog: its `remove:` comes between the dialog's map and the main
/// window's, and the app runs on to its main window.
#[test]
fn aladins_dialog_before_its_main_window_is_its_first_window() {
    let desk = Desk::new(Engine::Podman);
    wait_for_windows(&desk, REAL_APP_WAIT_SECS);
    let image = real_apps::podman_images().reference(Kind::Runs(App::Aladin));
    let listener = StartupListener::start(&desk.xvfb);
    let run = desk.launch(&[&image]);
    assert_eq!(run.code, Some(0), "{run}");
    let id = desk.launch_id(&run);
    let main = real_apps::wait_for_main(
        App::Aladin,
        || desk.xvfb.windows(),
        || launch_log(&desk, &id),
    );
    let (_, class) = App::Aladin.main_class();
    let dialog = desk
        .xvfb
        .windows()
        .into_iter()
        .find(|window| window.title == "Information" && window.class.ends_with(class))
        .unwrap_or_else(|| panic!("no Information dialog: {:?}", desk.xvfb.windows()));

    let timeline = listener.timeline();
    let mapped: Vec<u32> = timeline
        .iter()
        .filter_map(|seen| match seen {
            Seen::Mapped(window) => Some(*window),
            Seen::Startup(_) => None,
        })
        .collect();
    assert_eq!(mapped.first(), Some(&dialog.id), "{timeline:?}");
    let at = |wanted: &dyn Fn(&Seen) -> bool| {
        timeline
            .iter()
            .position(wanted)
            .unwrap_or_else(|| panic!("{timeline:?}"))
    };
    let dialog_at = at(&|seen| *seen == Seen::Mapped(dialog.id));
    let removed_at = at(&|seen| matches!(seen, Seen::Startup(text) if text.starts_with("remove:")));
    let main_at = at(&|seen| *seen == Seen::Mapped(main.id));
    assert!(
        dialog_at < removed_at && removed_at < main_at,
        "the launch was not up at the dialog: {timeline:?}"
    );
    assert_eq!(desk.ps_row(&id)["state"], "running");
}

on_each_engine! {
    /// An image whose app never maps a window ends its launch within `launch.wait` with one
    /// line that names the image and what was seen: the app still running (and how to reach
    /// it), or its exit code and last output.
    fn an_app_that_maps_no_window_ends_its_launch_with_one_line(desk) {
        let image = images_on(&desk).reference(Kind::Execs);
        wait_for_windows(&desk, 5);
        let run = desk.launch(&[&image, "--", "sleep", "600"]);
        assert!(run.code.is_some_and(|code| code != 0), "{run}");
        let line = run.error_line();
        let expected = format!(
            "{image} opened no window within 5 s; it is still running as launch "
        );
        assert!(line.contains(&expected), "{line}");
        assert!(run.stdout.is_empty(), "{run}");
        let id = line[line.find(&expected).unwrap() + expected.len()..]
            .split(' ')
            .next()
            .unwrap()
            .to_owned();
        assert_eq!(desk.ps_row(&id)["live_state"], "running");

        // A Java app pointed at a class that is not there ends before any window.
        wait_for_windows(&desk, REAL_APP_WAIT_SECS);
        let run = desk.launch(&[&image, "--", "java", "-cp", "/nowhere", "Nothing"]);
        assert!(run.code.is_some_and(|code| code != 0), "{run}");
        let line = run.error_line();
        assert!(
            line.contains(&format!("{image} exited with code 1 before opening a window")),
            "{line}"
        );
        assert!(line.contains("Could not find or load main class Nothing"), "{line}");
    }
}
