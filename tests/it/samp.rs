//! SAMP across a session's apps (issue 15), with the real apps: TOPCAT and DS9 launched by
//! arcade through the session's daemon share a network that has only a loopback, find the
//! session's hub through `SAMP_HUB`, answer `samp.app.ping` sent from inside the session, and
//! take a table TOPCAT sends; the hub and its lockfile end with the session; a launch outside
//! the session keeps its isolation. JSAMP's own tools (in the apps' image) do the sending.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::support::dbus::Bus;
use crate::support::desk::{Desk, Engine, launch_id};
use crate::support::real_apps::{self, App, Kind, Pod, PodDesktop};
use crate::support::{self, Arcade, Home, KillOnDrop, require_tool, wait_for};

/// JSAMP in the apps' image (Debian's libjsamp-java, which TOPCAT depends on).
const JSAMP: &str = "/usr/share/java/jsamp.jar";

/// A desktop session: a desk on `engine`, and a private session bus that starts the daemon.
struct Session {
    desk: Desk,
    bus: Option<Bus>,
}

impl Session {
    fn new(engine: Engine) -> Session {
        let desk = Desk::new(engine);
        // Real apps on a busy machine: generous waits, which only failures use up.
        desk.home
            .write_config("[launch]\nbackend = \"podman\"\nwait_secs = 120\n");
        let mut env = desk.env();
        env.push(("RUST_LOG", "arcade=debug".into()));
        let bus = Bus::start(&desk.home, &env);
        Session {
            desk,
            bus: Some(bus),
        }
    }

    fn bus(&self) -> &Bus {
        self.bus.as_ref().expect("the session has not ended")
    }

    fn arcade(&self) -> Arcade {
        self.desk
            .arcade()
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus().address)
    }

    /// `arcade launch ARGS` through the daemon, on the desk's engine.
    #[track_caller]
    fn launch(&self, args: &[&str]) -> String {
        let arcade = self.arcade().args(["launch"]);
        let arcade = match self.desk.engine() {
            Engine::Podman => arcade,
            Engine::Docker => arcade.args(["--backend", "docker"]),
        };
        let run = arcade.args(args).run();
        assert_eq!(run.code, Some(0), "{run}\nbus: {}", self.bus().log());
        assert!(run.stdout.contains("by the arcade daemon"), "{run}");
        launch_id(&run)
    }

    /// The hubs `arcade samp --json` shows.
    fn hubs(&self) -> Vec<Value> {
        let run = self.arcade().args(["samp", "--json"]).ok();
        run.json().as_array().cloned().unwrap_or_default()
    }

    /// The one hub, once every client named in `names` has registered with it.
    #[track_caller]
    fn hub_with(&self, names: &[&str]) -> Value {
        let found = std::cell::RefCell::new(Vec::new());
        let hub = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_for(
                "the apps to register with the hub",
                Duration::from_secs(120),
                || {
                    let hubs = self.hubs();
                    *found.borrow_mut() = hubs.clone();
                    let [hub] = hubs.as_slice() else {
                        return None;
                    };
                    names
                        .iter()
                        .all(|name| ready(hub, name))
                        .then(|| hub.clone())
                },
            )
        }));
        hub.unwrap_or_else(|_| {
            panic!(
                "hubs: {:#?}\nbus and daemon: {}",
                found.borrow(),
                self.bus().log()
            )
        })
    }

    /// Runs `command` as an app of the session (the daemon launches it, without a window) and
    /// returns its output once it has ended.
    #[track_caller]
    fn in_session(&self, image: &str, command: &[&str]) -> String {
        let mut args = vec!["--no-wait", image, "--"];
        args.extend(command);
        let id = self.launch(&args);
        // Its record appears once the daemon has started it, and says when it has ended.
        let row = wait_for("the app to end", Duration::from_secs(120), || {
            let ps = self.arcade().args(["ps", "--json"]).ok().json();
            let row = ps
                .as_array()?
                .iter()
                .find(|row| row["id"] == id.as_str())?
                .clone();
            (row["state"] != "starting" && row["state"] != "running").then_some(row)
        });
        let log = self.arcade().args(["logs", &id]).ok().stdout;
        // A command that did not end well says why here, not as a missing answer later.
        assert_eq!(
            row["state"],
            "exited",
            "{command:?} in the session: {row:#}\n{log}\nbus and daemon: {}",
            self.bus().log()
        );
        log
    }

    /// `messagesender` from inside the session: what each client answered.
    fn send(&self, mtype: &str, params: &[(&str, &str)], target: Option<&str>) -> String {
        let images = self.images();
        let mut command = vec!["java", "-jar", JSAMP, "messagesender", "-mtype", mtype];
        for (name, value) in params {
            command.extend(["-param", name, value]);
        }
        if let Some(target) = target {
            command.extend(["-targetname", target]);
        }
        self.in_session(&images.reference(Kind::Bare), &command)
    }

    fn images(&self) -> &'static real_apps::Images {
        match self.desk.engine() {
            Engine::Podman => real_apps::podman_images(),
            Engine::Docker => real_apps::docker_images(),
        }
    }

    /// Ends the session as a desktop's logout does (the bus goes), and waits for the daemon.
    fn end(&mut self) {
        let daemon = self.bus().owner_pid("net.canfar.Arcade1");
        self.bus.take();
        wait_for("the daemon to end", Duration::from_secs(60), || {
            (!PathBuf::from(format!("/proc/{daemon}")).exists()).then_some(())
        });
    }
}

/// The client of `hub` whose `samp.name` is `name`.
fn client<'a>(hub: &'a Value, name: &str) -> Option<&'a Value> {
    hub["clients"]
        .as_array()?
        .iter()
        .find(|client| client["name"] == name)
}

/// Whether the client named `name` has registered with `hub` and can be called back.
fn ready(hub: &Value, name: &str) -> bool {
    client(hub, name).is_some_and(|client| client["callback"].is_string())
}

/// What `messagesender` printed for the client named `name`: its answer.
#[track_caller]
fn answer_of<'a>(output: &'a str, name: &str) -> &'a str {
    let marker = format!("({name})");
    let start = output
        .find(&marker)
        .unwrap_or_else(|| panic!("no answer from {name}:\n{output}"));
    let rest = &output[start + marker.len()..];
    let end = rest.find("\n\n").unwrap_or(rest.len());
    &rest[..end]
}

/// The apps of a session find the hub, answer pings sent from inside the session, and take a
/// table TOPCAT sends; the hub, its lockfile and the shared network end with the session.
fn apps_talk_over_the_session_hub(engine: Engine) {
    let mut session = Session::new(engine);
    let images = session.images();
    let ds9 = session.launch(&[&images.reference(Kind::Runs(App::Ds9))]);
    // TOPCAT with its demo tables, so there is a table to send; last, so its window is on top.
    let bare = images.reference(Kind::Bare);
    let topcat = session.launch(&[&bare, "--", "topcat", "-demo"]);
    let hub = session.hub_with(&["topcat", "SAOImageDS9"]);
    let lockfile = PathBuf::from(hub["lockfile"].as_str().unwrap());
    let hub_pid = hub["pid"].as_u64().unwrap();

    // The apps share the session's network, which has only a loopback: the hub saw them come
    // from 127.0.0.1, and reaches DS9, which advertises its host name, there.
    for name in ["topcat", "SAOImageDS9"] {
        let client = client(&hub, name).unwrap();
        assert_eq!(client["from"], "127.0.0.1", "{hub:#}");
    }
    let ds9_client = client(&hub, "SAOImageDS9").unwrap();
    assert!(
        ds9_client["reached_at"]
            .as_str()
            .is_some_and(|url| url.starts_with("http://127.0.0.1:")),
        "{hub:#}"
    );
    for id in [&ds9, &topcat] {
        let interfaces = session.desk.inspect(id, "{{.HostConfig.NetworkMode}}");
        assert_ne!(interfaces, "host", "{id}");
    }

    // `arcade samp` shows the hub and its clients, with the address DS9 is reached at.
    let shown = session.arcade().args(["samp"]).ok().stdout;
    assert!(
        shown.contains(&format!("hub {} running", hub["url"].as_str().unwrap())),
        "{shown}"
    );
    for name in [
        "topcat",
        "SAOImageDS9",
        "(reached at http://127.0.0.1:",
        "takes ",
    ] {
        assert!(shown.contains(name), "{name} not shown:\n{shown}");
    }

    // samp.app.ping from inside the session: both apps answer.
    let pings = session.send("samp.app.ping", &[], None);
    for name in ["topcat", "SAOImageDS9"] {
        assert!(answer_of(&pings, name).contains("samp.ok"), "{pings}");
    }

    // TOPCAT sends its current table (its toolbar's Transmit Table button): DS9 loads it into
    // a catalog window named after TOPCAT's table id, and says it has a VOTable catalog.
    transmit_table(&session);
    let asked = session.send("ds9.get", &[("cmd", "catalog")], Some("SAOImageDS9"));
    assert!(
        answer_of(&asked, "SAOImageDS9").contains("\"vot\""),
        "{asked}"
    );

    // The session ends: the hub ends with it, its lockfile goes, and so does the network.
    let display = session.desk.xvfb.display();
    let pods_before = session_networks(engine, &display);
    assert_eq!(pods_before.len(), 1, "{pods_before:?}");
    session.end();
    assert!(!lockfile.exists(), "{} is left behind", lockfile.display());
    assert!(
        !PathBuf::from(format!("/proc/{hub_pid}")).exists(),
        "the hub (pid {hub_pid}) outlived the session"
    );
    let left = session_networks(engine, &display);
    assert!(left.is_empty(), "the session's network is left: {left:?}");
    let samp = session.desk.home.arcade().args(["samp"]).fails();
    assert_eq!(samp.code, Some(1), "{samp}");
}

/// Clicks TOPCAT's Transmit Table button (the third in its toolbar) until DS9 maps the
/// catalog window the table arrives in: each click sends the table to every client that takes
/// `table.load.votable`. The window is raised first: without a window manager, the last app
/// mapped covers the others.
fn transmit_table(session: &Session) {
    let xdotool = require_tool("xdotool", "xdotool");
    let xvfb = &session.desk.xvfb;
    let topcat = wait_for("TOPCAT's window", Duration::from_secs(60), || {
        xvfb.windows()
            .into_iter()
            .find(|window| App::Topcat.is_main(window))
    });
    let before: Vec<u32> = xvfb.windows().iter().map(|window| window.id).collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let id = topcat.id.to_string();
        let click = std::process::Command::new(&xdotool)
            .env("DISPLAY", xvfb.display())
            .env("XAUTHORITY", &xvfb.auth)
            .args([
                "windowraise",
                &id,
                "mousemove",
                "--window",
                &id,
                "115",
                "40",
                "click",
                "1",
            ])
            .status()
            .expect("run xdotool");
        assert!(click.success(), "xdotool failed");
        std::thread::sleep(Duration::from_secs(3));
        let windows = xvfb.windows();
        let new: Vec<_> = windows
            .iter()
            .filter(|window| window.viewable && !before.contains(&window.id))
            .collect();
        if new
            .iter()
            .any(|window| window.class.to_lowercase().contains("ds9"))
        {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "DS9 mapped no catalog window; new windows: {new:#?}"
        );
    }
}

/// The names of the session networks (pods or holder containers) arcade made on `engine` for
/// the session on `display`.
fn session_networks(engine: Engine, display: &str) -> Vec<String> {
    let on_display = format!("label=net.canfar.arcade.session-display={display}");
    let network = "label=net.canfar.arcade.session-network";
    let filters = ["--filter", network, "--filter", on_display.as_str()];
    let args: Vec<&str> = match engine {
        Engine::Podman => [&["pod", "ps"][..], &filters, &["--format", "{{.Name}}"]].concat(),
        Engine::Docker => [&["ps", "--all"][..], &filters, &["--format", "{{.Names}}"]].concat(),
    };
    let output = engine.command().args(args).output().expect("list networks");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn topcat_and_ds9_talk_over_the_session_hub_on_podman() {
    apps_talk_over_the_session_hub(Engine::Podman);
}

#[test]
fn topcat_and_ds9_talk_over_the_session_hub_on_docker() {
    apps_talk_over_the_session_hub(Engine::Docker);
}

/// A hub that dies mid-session is replaced at once by one that carries on where it was (the
/// same URL, secret and clients), so TOPCAT, registered before, goes on being reached by
/// pings from inside the session without doing anything; the user is told.
#[test]
fn a_hub_that_dies_mid_session_is_replaced_and_reported() {
    let session = Session::new(Engine::Podman);
    let monitor = session.bus().monitor();
    let images = session.images();
    session.launch(&[&images.reference(Kind::Runs(App::Topcat))]);
    let hub = session.hub_with(&["topcat"]);
    let pid = hub["pid"].as_u64().unwrap();
    // SAFETY: kill(2) on the hub the test found; it takes no chance to clean up.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };

    let mut last = Vec::new();
    let replaced = (0..300).find_map(|_| {
        std::thread::sleep(Duration::from_millis(200));
        last = session.hubs();
        let hub = last.first()?;
        (hub["pid"] != pid && hub["running"] == true).then(|| hub.clone())
    });
    let replaced = replaced.unwrap_or_else(|| panic!("no new hub after 60 s: {last:#?}"));
    assert_eq!(replaced["url"], hub["url"], "{replaced:#}");
    assert_eq!(
        client(&replaced, "topcat").map(|client| &client["id"]),
        client(&hub, "topcat").map(|client| &client["id"]),
        "{replaced:#}"
    );
    let lockfile = std::fs::read_to_string(replaced["lockfile"].as_str().unwrap()).unwrap();
    assert!(
        lockfile.contains(replaced["url"].as_str().unwrap()),
        "{lockfile}"
    );
    wait_for("the notification", Duration::from_secs(30), || {
        notification_summaries(&monitor.text())
            .iter()
            .any(|summary| summary == "The SAMP hub stopped")
            .then_some(())
    });
    let pings = session.send("samp.app.ping", &[], Some("topcat"));
    assert!(answer_of(&pings, "topcat").contains("samp.ok"), "{pings}");
}

/// A launch outside the session (`launch --local`, as `image try` makes it) keeps today's
/// isolation: no network at all, no SAMP hub named.
#[test]
fn a_launch_outside_the_session_stays_alone() {
    let session = Session::new(Engine::Podman);
    let image = session
        .desk
        .build(&crate::support::images::Spec::new("xterm"));
    let run = session.arcade().args(["launch", "--local", &image]).ok();
    let id = launch_id(&run);
    assert_eq!(
        session.desk.inspect(&id, "{{.HostConfig.NetworkMode}}"),
        "none"
    );
    let env = session
        .desk
        .inspect(&id, "{{range .Config.Env}}{{println .}}{{end}}");
    assert!(!env.contains("SAMP_HUB"), "{env}");
    assert!(session.hubs().is_empty(), "{:?}", session.hubs());
    session.arcade().args(["stop", &id]).ok();
}

// The platform: app pods at their own addresses, the hub in the desktop.

/// A platform desktop as the tests build one: the desktop pod's network namespace (its X
/// server, the pod network's bridge), the daemon running there as the desktop's own, and the
/// user's home that app pods share with it.
struct PlatformDesktop {
    desktop: PodDesktop,
    home: Home,
    /// The home the app pods share with the desktop (the platform's `/arc/home/<user>`).
    shared_home: tempfile::TempDir,
    daemon: Option<std::process::Child>,
    bus: Bus,
}

impl PlatformDesktop {
    /// Starts the desktop; `before` runs before the daemon starts (to leave a stale lockfile),
    /// and `config` is the daemon's config file.
    fn start(config: &str, before: impl FnOnce(&Path, &PodDesktop)) -> PlatformDesktop {
        let desktop = PodDesktop::start();
        let home = Home::new();
        home.write_config(config);
        let shared_home = tempfile::Builder::new()
            .prefix("arcade-it-shared-")
            .tempdir()
            .expect("create the shared home");
        std::os::unix::fs::chown(
            shared_home.path(),
            Some(real_apps::UID),
            Some(real_apps::UID),
        )
        .expect("give the shared home to the pods' user");
        before(shared_home.path(), &desktop);
        let bus = Bus::start_without_service(&home);
        // The daemon as a platform desktop runs it: the platform's variables, the desktop pod's
        // network; the menu from a catalog file, so it asks no registry.
        let mut daemon = Command::new(require_tool("ip", "iproute2"));
        daemon
            .args(["netns", "exec", desktop.namespace()])
            .arg(env!("CARGO_BIN_EXE_arcade"))
            .arg("daemon");
        for (key, value) in home.arcade().command.get_envs() {
            if let Some(value) = value {
                daemon.env(key, value);
            }
        }
        daemon
            .env("HOME", shared_home.path())
            .env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
            .env("DISPLAY", format!(":{}", desktop.number))
            .env("skaha_hostname", "ws-uv.example.org")
            .env("ARCADE_SOURCE", "file")
            .env("ARCADE_CATALOG", support::sample_catalog())
            .env("RUST_LOG", "arcade=debug")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let daemon = daemon
            .spawn()
            .expect("start the daemon in the desktop's namespace");
        PlatformDesktop {
            desktop,
            home,
            shared_home,
            daemon: Some(daemon),
            bus,
        }
    }

    fn lockfile(&self) -> PathBuf {
        self.shared_home.path().join(".samp")
    }

    /// The hub, once its lockfile names it and every client named in `names` is registered.
    #[track_caller]
    fn hub_with(&self, names: &[&str]) -> Value {
        let mut last = Value::Null;
        let found = (0..600).find_map(|_| {
            let run = self.home.arcade().args(["samp", "--json"]).ok();
            last = run.json();
            let hub = last.as_array().and_then(|hubs| hubs.first())?.clone();
            let listed = names.iter().all(|name| ready(&hub, name));
            if listed && hub["running"] == true {
                return Some(hub);
            }
            std::thread::sleep(Duration::from_millis(200));
            None
        });
        found.unwrap_or_else(|| {
            panic!(
                "no hub with {names:?} after 120 s: {last:#}\ndaemon log: {}",
                self.daemon_log()
            )
        })
    }

    fn daemon_log(&self) -> String {
        std::fs::read_to_string(self.home.state().join("arcade/daemon.log")).unwrap_or_default()
    }

    /// An app pod running `image` as the platform starts one (its startup script).
    fn pod(&self, image: &str, host_name: &str) -> Pod {
        Pod::run_in_home(
            image,
            host_name,
            &self.desktop,
            self.shared_home.path(),
            &[],
        )
    }

    /// `messagesender` in a pod of its own: what each client answered.
    #[track_caller]
    fn send_from_a_pod(&self, mtype: &str) -> String {
        let images = real_apps::podman_images();
        let command = ["java", "-jar", JSAMP, "messagesender", "-mtype", mtype];
        let pod = Pod::run_in_home(
            &images.reference(Kind::Bare),
            "pinger",
            &self.desktop,
            self.shared_home.path(),
            &command,
        );
        wait_for("messagesender to end", Duration::from_secs(120), || {
            (!pod.running()).then_some(())
        });
        pod.logs()
    }

    /// Ends the desktop session (the daemon gets SIGTERM, as at logout).
    fn end(&mut self) {
        let mut daemon = self.daemon.take().expect("the daemon runs");
        // SAFETY: kill(2) on our own child, not yet waited for.
        unsafe { libc::kill(daemon.id() as libc::pid_t, libc::SIGTERM) };
        let ended = (0..300).any(|_| {
            std::thread::sleep(Duration::from_millis(100));
            matches!(daemon.try_wait(), Ok(Some(_)))
        });
        if !ended {
            let _ = daemon.kill();
            let _ = daemon.wait();
            panic!("the daemon did not end within 30 s: {}", self.daemon_log());
        }
    }
}

impl Drop for PlatformDesktop {
    fn drop(&mut self) {
        if let Some(mut daemon) = self.daemon.take() {
            let _ = daemon.kill();
            let _ = daemon.wait();
        }
    }
}

/// TOPCAT and DS9 in pods of their own, each at its own address, reach the hub the daemon
/// runs on the desktop's address through `~/.samp`, the home they share with it; the hub
/// reaches them at the address their registration came from, though TOPCAT advertises
/// 127.0.0.1 and DS9 its host name; a third pod's pings reach both. A lockfile left by an
/// earlier session, naming a hub at an address where nothing answers at all, is replaced
/// before any app reads it. An app that is gone without a word is reported once the hub
/// cannot reach it. The session's end removes the hub's lockfile.
#[test]
fn pods_talk_through_the_hub_on_the_desktop() {
    let images = real_apps::podman_images();
    let mut platform = PlatformDesktop::start("", |home, desktop| {
        // An address on the pod network that nobody has: connecting there hangs, unanswered.
        let nobody = std::net::Ipv4Addr::from(u32::from(desktop.address()) | 0xfa);
        let stale = format!(
            "samp.secret=left-over\nsamp.hub.xmlrpc.url=http://{nobody}:9/xmlrpc\n\
             samp.profile.version=1.3\n"
        );
        std::fs::write(home.join(".samp"), stale).expect("write a stale lockfile");
    });
    let monitor = platform.bus.monitor();
    // The desktop's hub is up before any app: the daemon starts it with the session.
    platform.hub_with(&[]);
    let ds9 = platform.pod(&images.reference(Kind::Runs(App::Ds9)), "ds9-8-4");
    let topcat = platform.pod(&images.reference(Kind::Runs(App::Topcat)), "topcat-4-8");
    let hub = platform.hub_with(&["topcat", "SAOImageDS9"]);

    // The hub listens on the desktop's address; its lockfile replaced the stale one.
    let url = hub["url"].as_str().unwrap();
    let address = platform.desktop.address().to_string();
    assert!(url.starts_with(&format!("http://{address}:")), "{hub:#}");
    let lockfile = std::fs::read_to_string(platform.lockfile()).unwrap();
    assert!(
        lockfile.contains(&format!("samp.hub.xmlrpc.url={url}")),
        "{lockfile}"
    );

    // Each client came from its pod's address; the callbacks the hub uses are there.
    for (name, pod) in [("topcat", &topcat), ("SAOImageDS9", &ds9)] {
        let client = client(&hub, name).unwrap();
        assert_eq!(client["from"], pod.address.to_string(), "{hub:#}");
        let reached = client["reached_at"].as_str().unwrap_or_default();
        assert!(
            reached.starts_with(&format!("http://{}:", pod.address)),
            "{name} is not reached at its pod's address: {hub:#}"
        );
    }
    assert!(
        client(&hub, "topcat").unwrap()["callback"]
            .as_str()
            .is_some_and(|url| url.starts_with("http://127.0.0.1:")),
        "{hub:#}"
    );
    assert!(
        client(&hub, "SAOImageDS9").unwrap()["callback"]
            .as_str()
            .is_some_and(|url| url.starts_with("http://ds9-8-4:")),
        "{hub:#}"
    );

    let pings = platform.send_from_a_pod("samp.app.ping");
    for name in ["topcat", "SAOImageDS9"] {
        assert!(answer_of(&pings, name).contains("samp.ok"), "{pings}");
    }

    // DS9's pod goes without DS9 unregistering: the next message for it cannot be delivered,
    // which `arcade samp` shows and a notification says.
    drop(ds9);
    let pings = platform.send_from_a_pod("samp.app.ping");
    assert!(answer_of(&pings, "topcat").contains("samp.ok"), "{pings}");
    assert!(
        answer_of(&pings, "SAOImageDS9").contains("samp.error"),
        "{pings}"
    );
    wait_for("the notification", Duration::from_secs(30), || {
        notification_summaries(&monitor.text())
            .iter()
            .any(|summary| summary == "SAOImageDS9 cannot be reached over SAMP")
            .then_some(())
    });
    let shown = platform.home.arcade().args(["samp"]).ok().stdout;
    assert!(shown.contains("unreachable: "), "{shown}");

    platform.end();
    assert!(!platform.lockfile().exists(), "~/.samp is left behind");
    drop(topcat);
}

/// A hub that cannot start (here: the address it is told to use is no address of the
/// desktop's) is reported, and nothing waits for it.
#[test]
fn a_hub_that_cannot_start_is_reported() {
    let platform = PlatformDesktop::start("[samp]\naddress = \"198.51.100.7\"\n", |_, _| {});
    let monitor = platform.bus.monitor();
    let body = wait_for("the notification", Duration::from_secs(30), || {
        let text = monitor.text();
        notification_summaries(&text)
            .iter()
            .any(|summary| summary == "Apps cannot message each other (SAMP)")
            .then_some(text)
    });
    assert!(body.contains("198.51.100.7"), "{body}");
    assert!(!platform.lockfile().exists());
    let samp = platform.home.arcade().args(["samp"]).fails();
    assert_eq!(samp.code, Some(1), "{samp}");
}

/// The summaries (the fourth argument) of the `Notify` calls a `dbus-monitor` log shows.
fn notification_summaries(monitor: &str) -> Vec<String> {
    monitor
        .split("member=Notify")
        .skip(1)
        .filter_map(|call| {
            let strings: Vec<&str> = call
                .lines()
                .filter_map(|line| line.trim().strip_prefix("string \""))
                .map(|rest| rest.trim_end_matches('"'))
                .collect();
            strings.get(2).map(|summary| (*summary).to_owned())
        })
        .collect()
}

/// arcade's hub passes JSAMP's own `hubtester` (in the apps' image), which checks the Standard
/// Profile from end to end: registration, metadata, subscriptions, every way of sending,
/// errors, hub events, and a storm of clients messaging each other at once.
#[test]
fn the_hub_passes_jsamps_hubtester() {
    let images = real_apps::podman_images();
    let home = Home::new();
    let dir = tempfile::tempdir().expect("create a folder for the lockfile");
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("open the lockfile's folder");
    let lockfile = dir.path().join("lockfile");
    let uid = real_apps::UID;
    let mut hub = home
        .arcade()
        .args(["samp", "hub", "--lockfile"])
        .args([lockfile.as_os_str().to_owned()])
        .args(["--owner", &format!("{uid}:{uid}"), "--notices"])
        .command;
    let mut hub = KillOnDrop(
        hub.stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start arcade samp hub"),
    );
    let mut ready = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(hub.0.stdout.take().unwrap()),
        &mut ready,
    )
    .expect("read the hub's first notice");
    assert!(ready.contains("\"ready\""), "{ready}");

    // The tester runs beside the hub, on the host's loopback, as an unprivileged user.
    let output = crate::support::images::podman()
        .args([
            "run",
            "--rm",
            "--network=host",
            &format!("--user={uid}:{uid}"),
        ])
        .args([
            "--tmpfs=/home/tester:rw,mode=1777",
            "--workdir=/home/tester",
        ])
        .arg(format!("--volume={}:/samp:ro", dir.path().display()))
        .args([
            "--env=HOME=/home/tester",
            "--env=SAMP_HUB=std-lockurl:file:///samp/lockfile",
        ])
        .arg(images.reference(Kind::Bare))
        .args(["java", "-jar", JSAMP, "hubtester"])
        .output()
        .expect("run podman");
    assert!(
        output.status.success(),
        "hubtester failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // SAFETY: kill(2) on our own child, not yet waited for.
    unsafe { libc::kill(hub.0.id() as libc::pid_t, libc::SIGTERM) };
    let status = hub.0.wait().expect("wait for the hub");
    assert!(status.success(), "the hub ended with {status}");
    assert!(!lockfile.exists(), "the hub left its lockfile");
}
