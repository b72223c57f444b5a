//! The real astronomy apps (SAOImage DS9, TOPCAT, Aladin from Debian's packages) launched through
//! skaha, as on the platform: `arcade launch --backend skaha` against the skaha stand-in, whose
//! pods run the apps' images (shaped like the platform's: `startup.sh` runs the app and ignores
//! its argument) in containers with their own host names, reaching the desktop's X server over
//! TCP. A pod's window carries no PID, and DS9's (Tk) no host name either: these tests check that
//! arcade still finds each launch's own window by the evidence a pod gives, never another
//! launch's or an unrelated client's, and that a menu's busy cursor lasts until it maps.
//!
//! What each app's windows carry was measured on this machine; see `notes/real-apps.md` beside
//! the checkout.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use x11rb::connection::Connection as _;

use crate::support::dbus::Bus;
use crate::support::desk::{Desk, launch_id};
use crate::support::desktop_files::{self, read_entry};
use crate::support::real_apps::{self, App, Kind, Pod, PodDesktop};
use crate::support::skaha::{self, AppScript, FakeSkaha, SkahaConfig};
use crate::support::xvfb::{Screen as _, Seen, StartupListener, Window};
use crate::support::{self, Arcade, Run, require_tool};

const TOKEN: &str = "cmVhbC1hcHBzLW9uLXNrYWhh~c2lnbmF0dXJl";

/// The platform's reference for `app`, which skaha is asked to launch.
fn platform_image(app: App) -> &'static str {
    match app {
        App::Ds9 => "images.canfar.net/skaha/ds9:8.4.1",
        App::Topcat => "images.canfar.net/skaha/topcat:4.8.7",
        App::Aladin => "images.canfar.net/skaha/aladin:12.0",
    }
}

/// The host name skaha gives `app`'s pod (`getImageName` of its reference).
fn pod_host(app: App) -> &'static str {
    match app {
        App::Ds9 => "ds9-8-4-1",
        App::Topcat => "topcat-4-8-7",
        App::Aladin => "aladin-12-0",
    }
}

/// A platform desktop: skaha (first, so that its pods end before their display does), optionally
/// a session bus on which arcade's daemon starts on first use, and a desk whose display skaha's
/// pods reach over TCP. Its menu comes from a catalog file of the three apps.
struct Platform {
    skaha: FakeSkaha,
    bus: Option<Bus>,
    desk: Desk<Arc<PodDesktop>>,
}

impl Platform {
    /// A desktop where `arcade launch` launches in-process (there is no daemon). Each app's
    /// platform reference runs the real image whose `startup.sh` runs that app.
    fn new(script: AppScript) -> Platform {
        let images = real_apps::podman_images();
        let desk = Desk::on_pods();
        let stand_ins: Vec<(&str, String)> = App::ALL
            .iter()
            .map(|&app| (platform_image(app), images.reference(Kind::Runs(app))))
            .collect();
        let skaha = FakeSkaha::start(SkahaConfig {
            session_tokens: vec![TOKEN.to_owned()],
            app_script: script,
            runner: Some(skaha::pods_on(Arc::clone(&desk.xvfb), &stand_ins)),
            ..SkahaConfig::default()
        });
        let entries: Vec<String> = App::ALL
            .iter()
            .map(|&app| {
                format!(
                    r#"{{"id": "{}", "types": ["desktop-app"]}}"#,
                    platform_image(app)
                )
            })
            .collect();
        let catalog = desk
            .home
            .write("catalog.json", &format!("[{}]", entries.join(",")));
        // A JVM's first window takes seconds on an idle machine, and the tests share two cores:
        // the waits are generous, and only a broken launch reaches them.
        desk.home.write_config(&format!(
            "source = \"file\"\ncatalog = \"{}\"\n[launch]\nbackend = \"skaha\"\nwait_secs = 120\n\
             [skaha]\npoll_timeout_secs = 120\n",
            catalog.display()
        ));
        Platform {
            skaha,
            bus: None,
            desk,
        }
    }

    /// A desktop with a session bus, whose daemon (started by the first `arcade launch`) takes
    /// the launches, as on a platform desktop where the session starts it.
    fn with_daemon(script: AppScript) -> Platform {
        let mut platform = Platform::new(script);
        let mut env = platform.desk.env();
        env.extend(platform.session_env());
        platform.bus = Some(Bus::start(&platform.desk.home, &env));
        platform
    }

    /// What the platform's desktop session sets: the session id, its token and the skaha
    /// service; and a log that names each launch's window (`window mapped … window=ID`).
    fn session_env(&self) -> Vec<(&'static str, std::ffi::OsString)> {
        vec![
            ("DESKTOP_SESSION_APP_TOKEN", TOKEN.into()),
            (
                "ARCADE_SESSION_ID",
                SkahaConfig::default().sessions[0].clone().into(),
            ),
            ("ARCADE_URL", self.skaha.root_url().into()),
            ("RUST_LOG", "arcade=info".into()),
        ]
    }

    /// arcade inside the desktop session.
    fn arcade(&self) -> Arcade {
        let arcade = self
            .session_env()
            .into_iter()
            .fold(self.desk.arcade(), |arcade, (key, value)| {
                arcade.env(key, value)
            });
        match &self.bus {
            Some(bus) => arcade.env("DBUS_SESSION_BUS_ADDRESS", &bus.address),
            None => arcade,
        }
    }

    /// `arcade launch --backend skaha APP` started, not waited for.
    fn spawn_launch(&self, app: App) -> Child {
        let arcade = self.arcade();
        let mut command = arcade
            .args(["launch", "--backend", "skaha", platform_image(app)])
            .command;
        command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start arcade launch")
    }

    /// The window launch `id` took as its first, from the `window mapped` line in the log of the
    /// process that launched it: `run`'s, or the daemon's.
    #[track_caller]
    fn launch_window(&self, run: &Run) -> u32 {
        let id = launch_id(run);
        let daemon_log = self.desk.home.state().join("arcade/daemon.log");
        let log = match &self.bus {
            Some(_) => std::fs::read_to_string(&daemon_log).unwrap_or_default(),
            None => run.stderr.clone(),
        };
        log.lines()
            .filter(|line| line.contains("window mapped") && line.contains(&format!("\"{id}\"")))
            .find_map(|line| {
                let value = line.split("window=").nth(1)?;
                value.split_whitespace().next()?.parse().ok()
            })
            .unwrap_or_else(|| panic!("no window for launch {id} in the log:\n{log}\n{run}"))
    }

    /// The desktop's windows, and the one with id `id`.
    #[track_caller]
    fn window(&self, id: u32) -> (Window, Vec<Window>) {
        let windows = self.desk.xvfb.windows();
        let window = windows
            .iter()
            .find(|window| window.id == id)
            .unwrap_or_else(|| panic!("window {id} is not on the desktop: {windows:#?}"))
            .clone();
        (window, windows)
    }
}

/// What a finished `arcade` child printed.
fn finish(child: Child, args: &str) -> Run {
    let output = child.wait_with_output().expect("wait for arcade");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        args: args.to_owned(),
    }
}

/// The X client that created `window`: its resource-id base.
fn client_of(desktop: &PodDesktop, window: u32) -> u32 {
    let conn = desktop.connect().expect("connect to the pod desktop");
    window & !conn.setup().resource_id_mask
}

/// A local client of the desktop that arcade did not launch: the host's xterm with a class and
/// title of our choosing. Killed on drop.
struct LocalClient(Child);

impl LocalClient {
    fn xterm(desktop: &PodDesktop, class: &str, title: &str) -> LocalClient {
        let xterm = require_tool("xterm", "xterm");
        let child = desktop
            .local_command(&xterm)
            .args(["-class", class, "-title", title])
            .env_clear()
            .env("DISPLAY", desktop.display())
            .env("XAUTHORITY", desktop.auth())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start xterm");
        LocalClient(child)
    }
}

impl Drop for LocalClient {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Launches `app` through skaha and checks the window arcade took: the app's first window,
/// carrying what a pod's window carries (no PID the X server knows; the pod's host name, unless
/// the toolkit names none), found by that evidence as the launch's log says; then `arcade stop`
/// removes the pod and its windows.
fn launches_through_skaha(app: App) {
    let platform = Platform::new(AppScript::RunningAfter(1));
    let desktop = &platform.desk.xvfb;
    let listener = StartupListener::start(desktop);
    let run = platform
        .arcade()
        .args(["launch", "--backend", "skaha", platform_image(app)])
        .run();
    assert_eq!(run.code, Some(0), "{run}\n{:#?}", desktop.windows());
    let up = format!("{} is up: first window after", platform_image(app));
    assert!(run.stdout.starts_with(&up), "{run}");
    let id = launch_id(&run);

    let main = real_apps::wait_for_main(app, || desktop.windows(), || run.to_string());
    let (first, windows) = platform.window(platform.launch_window(&run));
    let (instance, class) = app.main_class();
    assert_eq!(first.class, format!("{instance} {class}"), "{first:?}");
    let conn = desktop.connect().expect("connect to the pod desktop");
    assert_eq!(real_apps::client_pid(&conn, first.id), None, "{first:?}");
    let evidence = if app == App::Ds9 {
        // Tk names no host: the class known for the app is what is left.
        assert_eq!(first.client_machine, "", "{first:?}");
        format!("first window of class {class}")
    } else {
        assert_eq!(first.client_machine, pod_host(app), "{first:?}");
        format!("first window from {}", pod_host(app))
    };
    let logs = platform.arcade().args(["logs", &id]).ok();
    assert!(logs.stdout.contains(&evidence), "{logs}");
    if app == App::Aladin {
        // Aladin's first window is its no-network dialog; the main window maps after it.
        assert_eq!(first.title, "Information", "{windows:#?}");
        let timeline = listener.timeline();
        let at = |id: u32| timeline.iter().position(|seen| *seen == Seen::Mapped(id));
        assert!(at(first.id) < at(main.id), "{timeline:?} {windows:#?}");
    } else {
        assert_eq!(first.id, main.id, "{windows:#?}");
    }

    // Stopping deletes the app on skaha; its pod goes, and every window of the app with it.
    platform.arcade().args(["stop", &id]).ok();
    support::wait_for("the app's windows to go", Duration::from_secs(20), || {
        let windows = desktop.windows();
        (!windows.iter().any(|window| window.class == first.class)).then_some(())
    });
}

#[test]
fn ds9_maps_its_main_window_through_skaha() {
    launches_through_skaha(App::Ds9);
}

#[test]
fn topcat_maps_its_main_window_through_skaha() {
    launches_through_skaha(App::Topcat);
}

#[test]
fn aladin_is_up_at_its_first_dialog_through_skaha() {
    launches_through_skaha(App::Aladin);
}

/// Whether `window` is a DS9 main window. Tk names a window's instance after its interpreter,
/// which must be unique on the display: the second DS9 there is `ds9.tcl #2`, and only the class,
/// `Ds9.tcl`, stays the same.
fn is_a_ds9_main_window(window: &Window) -> bool {
    let (_, class) = App::Ds9.main_class();
    window.viewable
        && window.title.starts_with(App::Ds9.main_title())
        && window.class.starts_with("ds9.tcl")
        && window.class.ends_with(&format!(" {class}"))
}

/// Two launches of the same DS9 image at once, while two unrelated clients map windows: a local
/// xterm with DS9's class and title, and another image's pod (a remote client, as DS9's are,
/// but naming its own host). Each launch gets a DS9 window from a client of its own; neither
/// takes an unrelated window. The launches go through the session's daemon, as on a platform
/// desktop.
#[test]
fn two_ds9_launches_at_once_each_get_their_own_window() {
    let platform = Platform::with_daemon(AppScript::PendingForever);
    let desktop = &platform.desk.xvfb;
    let launches = [
        platform.spawn_launch(App::Ds9),
        platform.spawn_launch(App::Ds9),
    ];
    // Both launches watch the display from before they ask skaha; both apps are then Pending.
    support::wait_for(
        "both launches to reach skaha",
        Duration::from_secs(60),
        || (platform.skaha.apps().len() == 2).then_some(()),
    );

    // While they wait, the unrelated clients map their windows.
    let (_, class) = App::Ds9.main_class();
    let local = LocalClient::xterm(desktop, class, "SAOImage ds9");
    let images = real_apps::podman_images();
    let other = Pod::run(&images.reference(Kind::Execs), "terminal-1-0", desktop);
    let unrelated = [
        real_apps::wait_for_window(
            "the local xterm with DS9's class",
            || desktop.windows(),
            String::new,
            |window| window.viewable && window.class == format!("xterm {class}"),
        ),
        real_apps::wait_for_window(
            "the other pod's xterm",
            || desktop.windows(),
            || other.logs(),
            |window| window.viewable && window.title == "terminal-1-0",
        ),
    ];

    // Now skaha runs both apps.
    for app in platform.skaha.apps() {
        platform.skaha.set_app_status(&app.app_id, "Running");
    }
    let runs = launches.map(|child| finish(child, "launch ds9"));
    let mut claimed = Vec::new();
    for run in &runs {
        assert_eq!(run.code, Some(0), "{run}\n{:#?}", desktop.windows());
        assert!(run.stdout.contains("is up: first window after"), "{run}");
        let (window, windows) = platform.window(platform.launch_window(run));
        assert!(
            is_a_ds9_main_window(&window),
            "{window:?}\n{run}\n{windows:#?}"
        );
        assert_eq!(window.client_machine, "", "{window:?}");
        claimed.push(window.id);
    }
    for window in &unrelated {
        assert!(!claimed.contains(&window.id), "{window:?} {claimed:?}");
    }
    assert_ne!(
        client_of(desktop, claimed[0]),
        client_of(desktop, claimed[1]),
        "both launches took windows of one client: {claimed:?}\n{}\n{}",
        runs[0],
        runs[1]
    );
    drop(local);
}

/// A menu click on DS9 in a platform desktop: the launcher announces the startup and runs the
/// entry's `Exec` with `DESKTOP_STARTUP_ID`; arcade hands the launch to the daemon, and its
/// process lives until DS9's window maps (a launcher waits for it), and the daemon's `remove:`
/// for the sequence comes after the map. The entry's `StartupWMClass` is the class of the window
/// that maps, so a window manager can end the busy cursor by itself.
#[test]
fn a_menu_click_on_ds9_keeps_the_busy_cursor_until_its_window_maps() {
    let platform = Platform::with_daemon(AppScript::RunningAfter(1));
    let desktop = &platform.desk.xvfb;
    let home = &platform.desk.home;
    platform.arcade().args(["menu", "sync"]).ok();
    let entry = desktop_files::generated(home)
        .into_iter()
        .filter(|path| path.starts_with(home.applications()))
        .map(|path| read_entry(&path))
        .find(|entry| entry.desktop_entry("X-Arcade-Image") == Some(platform_image(App::Ds9)))
        .unwrap_or_else(|| panic!("no menu entry for DS9:\n{}", home.listing()));
    let argv = entry.parse_exec().expect("Exec parses");
    let wm_class = entry.desktop_entry("StartupWMClass").map(str::to_owned);

    let listener = StartupListener::start(desktop);
    let startup_id = "xfce4-panel-click-9_TIME4249";
    desktop.send_startup(&format!(
        "new: ID=\"{startup_id}\" NAME=\"ds9:8.4.1\" SCREEN=0 BIN=arcade WMCLASS=\"{}\"",
        wm_class.as_deref().unwrap_or_default()
    ));
    let mut click = Command::new(&argv[0]);
    click.env_clear().args(&argv[1..]);
    for (key, value) in platform.arcade().command.get_envs() {
        if let Some(value) = value {
            click.env(key, value);
        }
    }
    click.env("DESKTOP_STARTUP_ID", startup_id);
    let run = finish(
        click
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run the entry's Exec"),
        &format!("{argv:?}"),
    );

    // Asked right after the process ended: a window not mapped now was mapped after it.
    let windows = desktop.windows();
    let main = windows
        .iter()
        .find(|window| App::Ds9.is_main(window))
        .unwrap_or_else(|| panic!("the menu's process ended before DS9 mapped: {windows:#?}"));
    assert_eq!(run.code, Some(0), "{run}");
    assert!(
        run.stdout.contains("is up: first window after")
            && run.stdout.contains("by the arcade daemon"),
        "{run}"
    );
    assert_eq!(platform.launch_window(&run), main.id, "{windows:#?}");
    let (_, class) = App::Ds9.main_class();
    assert_eq!(wm_class.as_deref(), Some(class), "{main:?}");

    let remove = format!("remove: ID=\"{startup_id}\"");
    support::wait_for("the daemon's remove:", Duration::from_secs(20), || {
        listener.messages().contains(&remove).then_some(())
    });
    let timeline = listener.timeline();
    let at = |seen: &Seen| timeline.iter().position(|item| item == seen);
    let mapped = at(&Seen::Mapped(main.id)).unwrap_or_else(|| panic!("{timeline:?}"));
    assert!(
        mapped < at(&Seen::Startup(remove.clone())).unwrap(),
        "remove: before the map: {timeline:?}"
    );
}
