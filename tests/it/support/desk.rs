//! A desk: what every launch test sits at. A throwaway home, a real X display, the local engine
//! the apps run on (podman, or the test process's private `dockerd`), and `arcade` commands with
//! the environment that reaches all three. The skaha tests add their fake skaha to a desk without
//! an engine, sitting at a pod desktop (a display that skaha's pods reach over TCP), and the
//! daemon tests their `dbus-daemon`, by composition.
//!
//! [`on_each_engine!`] runs one test body on a podman desk and on a docker desk.

use std::ffi::OsString;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::images::{self, Spec};
use super::real_apps::PodDesktop;
use super::xvfb::{Screen, Window, Xvfb};
use super::{Arcade, Home, Run, docker};

/// A local container engine, with the test fixtures that talk to it directly (to build images
/// and to witness what arcade asked of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Podman,
    Docker,
}

impl Engine {
    /// The name arcade gives it (`--backend`, `ps`, messages).
    pub fn name(self) -> &'static str {
        match self {
            Engine::Podman => "podman",
            Engine::Docker => "docker",
        }
    }

    /// Builds a test image into this engine unless it is there; its reference.
    pub fn build(self, spec: &Spec) -> String {
        match self {
            Engine::Podman => images::build(spec),
            Engine::Docker => docker::build(spec),
        }
    }

    /// The engine's own command line, as the test setup has it.
    pub fn command(self) -> Command {
        match self {
            Engine::Podman => images::podman(),
            Engine::Docker => docker::docker(),
        }
    }

    /// `inspect --format` of a container, trimmed; empty when the container is not there.
    pub fn inspect(self, container: &str, format: &str) -> String {
        images::inspect(self.command(), container, format)
    }

    /// The ids of the containers, in any state, that arcade started on `display`.
    pub fn containers_on(self, display: &str) -> Vec<String> {
        images::containers_on(self.command(), display)
    }

    /// Removes the containers arcade started on `display`, whatever state they are in.
    pub fn remove_containers_on(self, display: &str) {
        match self {
            Engine::Podman => images::remove_containers_on(display),
            Engine::Docker => docker::remove_containers_on(display),
        }
    }

    /// What `arcade` needs in its environment to use this engine as the tests set it up.
    fn env(self) -> Vec<(&'static str, OsString)> {
        match self {
            // runc and low ulimits: the podman settings that work on this machine.
            Engine::Podman => vec![("CONTAINERS_CONF", images::containers_conf().into())],
            // The test daemon's socket, and its client first on `PATH`.
            Engine::Docker => {
                let daemon = docker::daemon();
                vec![
                    ("DOCKER_HOST", daemon.host.clone().into()),
                    ("PATH", daemon.path.clone()),
                ]
            }
        }
    }
}

/// A home, a display, optionally a local engine, and `arcade` pointed at them; removes the
/// engine's containers on its display when dropped.
pub struct Desk<S: Screen = Xvfb> {
    pub home: Home,
    /// The X server: an [`Xvfb`], or on a platform desktop the pod desktop its pods reach over
    /// TCP (shared with the skaha stand-in, which starts the pods).
    pub xvfb: S,
    /// `None` on a platform desktop, where skaha runs the apps.
    engine: Option<Engine>,
}

impl Desk {
    /// A desk whose launches run on `engine`. The configured backend is podman on either: a
    /// docker desk launches with `--backend docker`, which must win for the launch, and `ps` and
    /// `stop` must then find the container through the launch's record.
    pub fn new(engine: Engine) -> Desk {
        let desk = Desk {
            home: Home::new(),
            xvfb: Xvfb::start(),
            engine: Some(engine),
        };
        desk.home
            .write_config("[launch]\nbackend = \"podman\"\nwait_secs = 30\n");
        desk
    }

    /// A platform desktop's desk: a home and a display, no local engine and no config.
    pub fn without_engine() -> Desk {
        Desk {
            home: Home::new(),
            xvfb: Xvfb::start(),
            engine: None,
        }
    }
}

impl Desk<std::sync::Arc<PodDesktop>> {
    /// A platform desktop's desk whose display skaha's pods reach over TCP, as on the platform:
    /// a home and a pod desktop (see [`PodDesktop`]), no local engine and no config. The desktop
    /// is shared, so the skaha stand-in can start pods on it.
    pub fn on_pods() -> Desk<std::sync::Arc<PodDesktop>> {
        Desk {
            home: Home::new(),
            xvfb: std::sync::Arc::new(PodDesktop::start()),
            engine: None,
        }
    }
}

impl<S: Screen> Desk<S> {
    #[track_caller]
    pub fn engine(&self) -> Engine {
        self.engine.expect("this desk has no local engine")
    }

    /// The environment `arcade` gets at this desk beyond its home's: the display and its cookie,
    /// and what the engine needs. Other processes that start arcade (a session bus) get it too.
    pub fn env(&self) -> Vec<(&'static str, OsString)> {
        let mut env = vec![
            ("DISPLAY", self.xvfb.display().into()),
            ("XAUTHORITY", self.xvfb.auth().into()),
        ];
        if let Some(engine) = self.engine {
            env.extend(engine.env());
        }
        env
    }

    /// `arcade` at this desk.
    pub fn arcade(&self) -> Arcade {
        self.env()
            .into_iter()
            .fold(self.home.arcade(), |arcade, (key, value)| {
                arcade.env(key, value)
            })
    }

    /// `arcade launch ARGS` on the desk's engine.
    pub fn launch(&self, args: &[&str]) -> Run {
        let arcade = self.arcade().args(["launch"]);
        let arcade = match self.engine() {
            Engine::Podman => arcade,
            Engine::Docker => arcade.args(["--backend", "docker"]),
        };
        arcade.args(args).run()
    }

    /// Builds a test image into the desk's engine; its reference.
    pub fn build(&self, spec: &Spec) -> String {
        self.engine().build(spec)
    }

    /// The launch id from "… (launch abc123, <engine>)", which must name the desk's engine.
    #[track_caller]
    pub fn launch_id(&self, run: &Run) -> String {
        let (id, backend) = launch_of(run);
        assert_eq!(
            backend,
            self.engine().name(),
            "not launched by {}:\n{run}",
            self.engine().name()
        );
        id
    }

    /// `inspect --format` of launch `id`'s container.
    pub fn inspect(&self, id: &str, format: &str) -> String {
        self.engine().inspect(&format!("arcade-{id}"), format)
    }

    /// The engine's containers on this desk's display, in any state.
    pub fn containers(&self) -> Vec<String> {
        self.engine().containers_on(&self.xvfb.display())
    }

    /// Launch `id`'s row of `arcade ps --json`.
    #[track_caller]
    pub fn ps_row(&self, id: &str) -> Value {
        let ps = self.arcade().args(["ps", "--json"]).ok().json();
        ps.as_array()
            .unwrap_or_else(|| panic!("ps --json is not an array: {ps:#}"))
            .iter()
            .find(|row| row["id"] == id)
            .unwrap_or_else(|| panic!("{id} not in ps: {ps:#}"))
            .clone()
    }

    /// Waits for launch `id`'s window titled `title`; on timeout, panics with the windows there
    /// are, the launch's log, `ps` and the containers.
    #[track_caller]
    pub fn window(&self, title: &str, id: &str) -> Window {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(window) = self.xvfb.window_titled(title) {
                return window;
            }
            if Instant::now() > deadline {
                let logs = self.arcade().args(["logs", id]).run();
                let ps = self.arcade().args(["ps", "--json"]).run();
                panic!(
                    "no window titled {title:?} after 30 s: {:?}\nlogs: {logs}\nps: {ps}\n\
                     containers: {:?}",
                    self.xvfb.windows(),
                    self.containers()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl<S: Screen> Drop for Desk<S> {
    fn drop(&mut self) {
        if let Some(engine) = self.engine {
            engine.remove_containers_on(&self.xvfb.display());
        }
    }
}

/// The launch id and backend from "… (launch abc123, podman)".
#[track_caller]
pub fn launch_of(run: &Run) -> (String, String) {
    let rest = run
        .stdout
        .split("(launch ")
        .nth(1)
        .unwrap_or_else(|| panic!("no launch id in:\n{run}"));
    let (id, rest) = rest
        .split_once(", ")
        .unwrap_or_else(|| panic!("no backend after the launch id in:\n{run}"));
    let backend = rest.split(')').next().unwrap_or_default();
    (id.to_owned(), backend.to_owned())
}

/// The launch id from "… (launch abc123, <backend>)".
#[track_caller]
pub fn launch_id(run: &Run) -> String {
    launch_of(run).0
}

/// What arcade calls an image the catalog does not know, and so the xterm's title: the
/// reference as typed.
pub fn label_of(reference: &str) -> String {
    reference.to_owned()
}

/// What arcade calls an image of the catalog, as the menu does: `localhost/arcade-test/<name>:<tag>`
/// shows as `<name>:<tag>`.
pub fn catalog_label_of(reference: &str) -> String {
    reference.rsplit('/').next().unwrap_or(reference).to_owned()
}

/// Runs a test body on each local engine: `on_each_engine! { fn name(desk) { … } }` makes a
/// module `name` holding the tests `podman` and `docker`, each given a fresh [`Desk`] for its
/// engine. The parent module's items are in scope of the body.
macro_rules! on_each_engine {
    ($($(#[$meta:meta])* fn $name:ident($desk:ident) $body:block)*) => {$(
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn body($desk: $crate::support::desk::Desk) $body

            #[test]
            fn podman() {
                body($crate::support::desk::Desk::new(
                    $crate::support::desk::Engine::Podman,
                ));
            }

            #[test]
            fn docker() {
                body($crate::support::desk::Desk::new(
                    $crate::support::desk::Engine::Docker,
                ));
            }
        }
    )*};
}

pub(crate) use on_each_engine;
