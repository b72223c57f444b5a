//! The one small interface every backend's app offers once started: wait until it is ready,
//! follow it to its end, stop it; plus what identifies its windows and what its errors say.
//!
//! [`local::LocalApp`] (podman and docker) and [`platform::SkahaApp`] implement [`App`];
//! [`AnyApp`] holds either, so the lifecycle and the daemon need not know which.

use std::sync::Arc;
use std::time::Duration;

use super::lifecycle::Lifecycle;
use super::local::LocalApp;
use super::platform::SkahaApp;
use super::{Error, Result};
use crate::config::Settings;
use crate::x11::WindowInfo;

/// How an app ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// It exited with this code; -1 when nobody can tell (deleted by someone else, say).
    Exited(i32),
    /// Its backend reports it failed, in these words.
    Failed(String),
    /// Its backend stopped answering, so its end cannot be known.
    Lost(String),
}

/// Why an app was not seen running.
#[derive(Debug)]
pub enum NotReady {
    /// The backend said no: the launch has failed for good.
    Final(Error),
    /// It was not running by the deadline, but may still start.
    Undecided(Error),
}

/// What stopping found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stopping {
    /// It ran and is stopped. `Some(end)` when stopping is itself the end (skaha deletes the
    /// app); `None` when the end is seen by whoever follows it (a local engine's client exits).
    Stopped(Option<End>),
    /// It had ended already: its backend no longer has it.
    AlreadyGone,
}

/// Where an app runs, as its record keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// A local engine's container, by name.
    Container(String),
    /// A desktop-app on skaha: the service root, the desktop session and the app id.
    Skaha {
        url: Option<String>,
        session_id: String,
        app_id: String,
    },
}

/// Decides whether a newly mapped window belongs to the launch.
pub type Matcher = Box<dyn Fn(&WindowInfo) -> bool + Send>;

/// The settings of the moment: a daemon following an app for hours passes its current ones, so
/// renewed credentials apply.
pub type CurrentSettings<'a> = &'a (dyn Fn() -> Arc<Settings> + Send + Sync);

/// A started app on some backend.
pub(crate) trait App {
    /// Whether it runs as soon as its backend took it (a local engine's client), rather than once
    /// the backend says it does (skaha).
    fn running_once_started(&self) -> bool;

    /// Where it runs, for its record.
    fn place(&self) -> Place;

    /// The evidence that identifies its windows; `startup_id` is the launch's sequence, if any.
    fn window_matcher(&self, startup_id: Option<&str>) -> Matcher;

    /// Waits until the backend reports it running, noting progress in `life`'s log.
    async fn ready(&mut self, life: &Lifecycle) -> Result<(), NotReady>;

    /// Follows it to its end, telling `life` when the backend first reports it running.
    async fn ended(&mut self, life: &mut Lifecycle, settings: CurrentSettings<'_>) -> End;

    /// The error for an app that ended before its first window.
    fn ended_early(&self, end: End, life: &Lifecycle) -> Error;

    /// The error for an app that showed no window within `wait`.
    fn no_window(&self, wait: Duration, life: &Lifecycle) -> Error;

    /// Stops it.
    async fn stop(&mut self, life: &Lifecycle) -> Result<Stopping>;
}

/// An app on any backend.
pub enum AnyApp {
    Local(LocalApp),
    Skaha(SkahaApp),
}

impl From<LocalApp> for AnyApp {
    fn from(app: LocalApp) -> AnyApp {
        AnyApp::Local(app)
    }
}

impl From<SkahaApp> for AnyApp {
    fn from(app: SkahaApp) -> AnyApp {
        AnyApp::Skaha(app)
    }
}

impl App for AnyApp {
    fn running_once_started(&self) -> bool {
        match self {
            AnyApp::Local(app) => app.running_once_started(),
            AnyApp::Skaha(app) => app.running_once_started(),
        }
    }

    fn place(&self) -> Place {
        match self {
            AnyApp::Local(app) => app.place(),
            AnyApp::Skaha(app) => app.place(),
        }
    }

    fn window_matcher(&self, startup_id: Option<&str>) -> Matcher {
        match self {
            AnyApp::Local(app) => app.window_matcher(startup_id),
            AnyApp::Skaha(app) => app.window_matcher(startup_id),
        }
    }

    async fn ready(&mut self, life: &Lifecycle) -> Result<(), NotReady> {
        match self {
            AnyApp::Local(app) => app.ready(life).await,
            AnyApp::Skaha(app) => app.ready(life).await,
        }
    }

    async fn ended(&mut self, life: &mut Lifecycle, settings: CurrentSettings<'_>) -> End {
        match self {
            AnyApp::Local(app) => app.ended(life, settings).await,
            AnyApp::Skaha(app) => app.ended(life, settings).await,
        }
    }

    fn ended_early(&self, end: End, life: &Lifecycle) -> Error {
        match self {
            AnyApp::Local(app) => app.ended_early(end, life),
            AnyApp::Skaha(app) => app.ended_early(end, life),
        }
    }

    fn no_window(&self, wait: Duration, life: &Lifecycle) -> Error {
        match self {
            AnyApp::Local(app) => app.no_window(wait, life),
            AnyApp::Skaha(app) => app.no_window(wait, life),
        }
    }

    async fn stop(&mut self, life: &Lifecycle) -> Result<Stopping> {
        match self {
            AnyApp::Local(app) => app.stop(life).await,
            AnyApp::Skaha(app) => app.stop(life).await,
        }
    }
}
