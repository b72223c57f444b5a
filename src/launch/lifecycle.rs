//! The owner of a launch's lifecycle: its record and log, its events, and the steps every
//! backend goes through (starting, running, window, failed, exited, stopped). Records are saved
//! here and nowhere else.
//!
//! [`drive`] runs one launch on any [`Backend`] through those steps: open the watch on the
//! display, start the app, wait until the backend says it runs, then wait for its first window
//! within the configured time unless it ends first. [`Follow`] carries a started app on to its
//! end, for the daemon.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::app::{AnyApp, App, CurrentSettings, End, NotReady, Place};
use super::record::{self, Record, State, Store};
use super::watch::{Found, Watch, WindowTask};
use super::{Error, Event, Observer, Request, Result, Target};
use crate::config::{Backend as BackendKind, Settings};
use crate::x11::{Display, WindowInfo};

/// The per-launch folder (scripts and X cookie): under `$XDG_RUNTIME_DIR`, a per-user tmpfs,
/// when there is one.
pub fn launch_dir(settings: &Settings, id: &str) -> PathBuf {
    runtime_root(settings).join(id)
}

/// arcade's folder in the user's runtime directory: launch folders and window claims.
pub fn runtime_root(settings: &Settings) -> PathBuf {
    settings
        .dirs
        .runtime_dir
        .clone()
        .unwrap_or_else(|| settings.dirs.state_home.join("arcade/run"))
        .join("arcade")
}

/// One launch's record, log and events.
pub struct Lifecycle {
    store: Store,
    record: Record,
    /// Whether the launch has a record file: a container found by its labels alone has none,
    /// and following it must not invent one.
    recorded: bool,
    dir: PathBuf,
    observer: Arc<dyn Observer>,
}

impl Lifecycle {
    /// A launch its backend has just started: recorded as starting, and announced.
    pub fn begin(
        settings: &Settings,
        record: Record,
        place: Place,
        observer: Arc<dyn Observer>,
    ) -> Lifecycle {
        let mut life = Lifecycle::resume(settings, record, observer);
        life.recorded = true;
        match place {
            Place::Container(name) => life.record.container = Some(name),
            Place::Skaha {
                url,
                session_id,
                app_id,
            } => {
                life.record.skaha_url = url;
                life.record.session_id = Some(session_id);
                life.record.app_id = Some(app_id);
            }
        }
        life.save();
        life.observer.event(Event::Starting {
            id: life.record.id.clone(),
            app: life.record.app.clone(),
        });
        life
    }

    /// A launch known from its record (or, unsaved, from its container's labels).
    pub fn resume(settings: &Settings, record: Record, observer: Arc<dyn Observer>) -> Lifecycle {
        let store = Store::new(settings.dirs.launch_state());
        let recorded = store.load(&record.id).is_some();
        Lifecycle {
            dir: launch_dir(settings, &record.id),
            store,
            record,
            recorded,
            observer,
        }
    }

    pub fn record(&self) -> &Record {
        &self.record
    }

    pub fn id(&self) -> &str {
        &self.record.id
    }

    /// Adds a line of arcade's own to the launch's log.
    pub fn note(&self, line: &str) {
        self.store.note(&self.record.id, line);
    }

    /// The last lines the app wrote, for errors.
    pub fn output_tail(&self, n: usize) -> Vec<String> {
        self.store.log_tail(&self.record.id, n)
    }

    fn save(&self) {
        if !self.recorded {
            return;
        }
        if let Err(err) = self.store.save(&self.record) {
            tracing::warn!(
                id = self.record.id,
                "failed to save the launch record in {}: {err}",
                self.store.dir().display()
            );
        }
    }

    /// The backend reports it running.
    pub fn running(&mut self) {
        if self.record.state == State::Starting {
            self.record.state = State::Running;
            self.save();
        }
    }

    /// Its first window mapped, `after` the launch began.
    pub fn window(&mut self, info: &WindowInfo, after: Duration) {
        self.record.state = State::Running;
        self.record.window_ms = Some(after.as_millis() as u64);
        self.save();
        let from = match (&info.client_machine, &info.class) {
            (Some(machine), _) => format!(" from {machine}"),
            (None, Some(class)) => format!(" of class {class}"),
            (None, None) => String::new(),
        };
        self.note(&format!(
            "first window{from} on {} after {:.2} s",
            self.record.display,
            after.as_secs_f64()
        ));
        self.observer.event(Event::WindowMapped {
            id: self.record.id.clone(),
            after,
        });
    }

    /// The launch could not see it up, but it may run on: the record says why, and stays.
    pub fn undecided(&mut self, error: &Error) {
        self.record.message = Some(error.to_string());
        self.save();
        self.note(&error.to_string());
    }

    /// The launch failed for good.
    pub fn failed(&mut self, error: &Error, exit_code: Option<i32>) {
        self.record.state = State::Failed;
        self.record.exit_code = exit_code;
        self.record.message = Some(error.to_string());
        self.save();
        self.note(&error.to_string());
        self.remove_dir();
    }

    /// It was stopped, by the user or by a cancelled launch.
    pub fn stopped(&mut self, message: Option<&str>) {
        self.record.state = State::Stopped;
        if let Some(message) = message {
            self.record.message = Some(message.to_owned());
        }
        self.save();
        self.remove_dir();
    }

    /// It ended after it had started: recorded (unless already over) and announced.
    pub fn finish(&mut self, end: End) {
        self.remove_dir();
        let id = self.record.id.clone();
        let open = !self.record.state.is_finished();
        match end {
            End::Exited(code) => {
                if open {
                    self.record.state = State::Exited;
                    self.record.exit_code = Some(code);
                    self.save();
                }
                self.observer.event(Event::Exited { id, code });
            }
            End::Failed(reason) => {
                if open {
                    self.record.state = State::Failed;
                    self.record.message = Some(reason.clone());
                    self.save();
                }
                tracing::warn!(id, "{reason}");
                self.observer.event(Event::Failed { id, reason });
            }
            End::Lost(reason) => tracing::warn!(id, "{reason}"),
        }
    }

    /// Lets go of what the app held: its folder (scripts and cookie), and its authorization
    /// on the display, which is revoked so no saved copy of the cookie opens it again.
    fn remove_dir(&self) {
        if record::is_id(&self.record.id) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
        if let Some(root) = self.dir.parent() {
            super::watch::release(root, &self.record.id);
        }
        if let Some(id) = self.record.x_authorization
            && let Ok(display) = Display::parse(&self.record.display)
            && let Err(err) =
                crate::x11::revoke_authorization(&display, self.record.xauthority.as_deref(), id)
        {
            tracing::debug!(
                launch = self.record.id,
                "could not revoke its X authorization: {err}"
            );
        }
    }
}

/// A launch that got as far as it was asked to.
pub struct Launched {
    pub record: Record,
    /// Time from the start of the launch to the first window, when waited for.
    pub window_after: Option<Duration>,
    /// The app, for whoever follows it to its end.
    pub follow: Follow,
    /// What the user should be told although the launch went well (files the app did not
    /// open), each a sentence for a desktop notification.
    pub notices: Vec<String>,
}

/// A launch that did not get as far as it was asked to.
pub struct Failure {
    pub error: Error,
    /// The app, when it may still run (no window in time, or a backend that was not sure).
    pub follow: Option<Follow>,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Failure {
        Failure {
            error,
            follow: None,
        }
    }
}

/// A started app and its lifecycle, to follow to its end.
pub struct Follow {
    life: Lifecycle,
    app: AnyApp,
}

impl Follow {
    pub fn new(life: Lifecycle, app: AnyApp) -> Follow {
        Follow { life, app }
    }

    pub fn id(&self) -> &str {
        self.life.id()
    }

    pub fn backend(&self) -> BackendKind {
        self.life.record.backend
    }

    /// The backend reports it running.
    pub fn running(&mut self) {
        self.life.running();
    }

    /// Waits for the app's end.
    pub async fn ended(&mut self, settings: CurrentSettings<'_>) -> End {
        self.app.ended(&mut self.life, settings).await
    }

    /// Records and announces the end.
    pub fn finish(mut self, end: End) {
        self.life.finish(end);
    }

    /// Stops the app and records it: stopped, or, when its backend no longer had it, ended.
    pub async fn stop(mut self) -> Result<()> {
        match self.app.stop(&self.life).await? {
            super::app::Stopping::Stopped(_) => self.life.stopped(None),
            super::app::Stopping::AlreadyGone => self.life.finish(End::Exited(-1)),
        }
        Ok(())
    }
}

/// Runs a launch on `backend` through its steps; see the module's documentation. `started` is
/// when the launch began (for timing), `cancel` ends it early (Ctrl-C), stopping the app.
///
/// Failures are returned, not reported to the observer: the caller knows best how to tell them.
pub(crate) async fn drive<B: Backend>(
    backend: B,
    settings: &Settings,
    request: &Request,
    target: &Target,
    started: Instant,
    observer: Arc<dyn Observer>,
    cancel: impl Future<Output = ()>,
) -> Result<Launched, Failure> {
    let store = Store::new(settings.dirs.launch_state());
    std::fs::create_dir_all(store.dir()).map_err(super::io_error("create", store.dir()))?;
    let id = request.id.clone().unwrap_or_else(|| store.new_id());
    let watch = Watch::open(
        backend.display(),
        request,
        &id,
        target,
        backend.authorizes(),
    )
    .await?;
    let start = Start {
        settings,
        request,
        target,
        id: &id,
        store: &store,
        watch: &watch,
    };
    let app: AnyApp = match backend.start(&start).await {
        Ok(app) => app.into(),
        Err(error) => {
            watch.end().await;
            return Err(error.into());
        }
    };
    let record = Record {
        id: id.clone(),
        app: target.label.clone(),
        image: target.image.clone(),
        backend: backend.kind(),
        container: None,
        session_id: None,
        app_id: None,
        skaha_url: None,
        display: backend
            .display()
            .map(|display| display.name.clone())
            .unwrap_or_default(),
        started_at: record::now(),
        state: State::Starting,
        exit_code: None,
        window_ms: None,
        message: None,
        x_authorization: watch.authorization(),
        xauthority: request.xauthority.clone(),
    };
    let life = Lifecycle::begin(settings, record, app.place(), observer);
    let follow = Follow::new(life, app);
    if request.no_wait {
        // Nothing here will see the window: a sequence the menu started ends by the window
        // manager's WMCLASS match or its timeout; ours was never started.
        let mut follow = follow;
        if follow.app.running_once_started() {
            follow.life.running();
        }
        return Ok(Launched {
            record: follow.life.record.clone(),
            window_after: None,
            follow,
            notices: Vec::new(),
        });
    }
    let (mut launched, window) = watch_through(follow, watch, settings, started, cancel).await?;
    if let Some(notice) = super::files::unopened(&window, &request.files, &target.label) {
        launched.follow.life.note(&notice);
        launched.notices.push(notice);
    }
    Ok(launched)
}

/// A launch whose first window mapped, and that window.
type Seen = (Launched, WindowInfo);

/// The steps after the start: until the backend says the app runs, then until its first
/// window, its end, the wait running out, or cancellation.
async fn watch_through(
    mut follow: Follow,
    watch: Watch,
    settings: &Settings,
    started: Instant,
    cancel: impl Future<Output = ()>,
) -> Result<Seen, Failure> {
    tokio::pin!(cancel);
    // The thread's own deadline is only a backstop; the wait is timed from readiness below.
    let backstop = Instant::now()
        + settings.skaha.poll_timeout
        + settings.launch.wait
        + Duration::from_secs(5);
    let matcher = follow.app.window_matcher(watch.startup_id());
    let mut window = watch.spawn(matcher, backstop);
    if !follow.app.running_once_started() {
        let ready = tokio::select! {
            ready = follow.app.ready(&follow.life) => ready,
            () = &mut cancel => return Err(cancelled(follow, window).await),
        };
        if let Err(not_ready) = ready {
            stop_watching(window).await;
            return Err(follow.not_ready(not_ready));
        }
        follow.life.running();
    }
    let outcome = first_window(&mut follow, &mut window, settings, cancel).await;
    follow
        .conclude(outcome, window, settings.launch.wait, started)
        .await
}

/// How the wait for the first window ended.
enum Outcome {
    Found(Found),
    Ended(End),
    Waited,
    Cancelled,
}

/// Waits for the first window within the configured time, unless the app ends first.
async fn first_window(
    follow: &mut Follow,
    window: &mut Option<WindowTask>,
    settings: &Settings,
    cancel: impl Future<Output = ()>,
) -> Outcome {
    let current = {
        let settings = Arc::new(settings.clone());
        move || Arc::clone(&settings)
    };
    let found = async {
        match window {
            Some(window) => window.found().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        found = found => Outcome::Found(found),
        end = follow.app.ended(&mut follow.life, &current) => Outcome::Ended(end),
        () = tokio::time::sleep(settings.launch.wait) => Outcome::Waited,
        () = cancel => Outcome::Cancelled,
    }
}

/// Stops a watch that has not ended by itself.
async fn stop_watching(window: Option<WindowTask>) {
    if let Some(window) = window {
        let _ = window.cancel().await;
    }
}

impl Follow {
    /// The launch's end when the backend did not report the app running.
    fn not_ready(mut self, not_ready: NotReady) -> Failure {
        match not_ready {
            NotReady::Final(error) => {
                self.life.failed(&error, None);
                error.into()
            }
            NotReady::Undecided(error) => {
                self.life.undecided(&error);
                Failure {
                    error,
                    follow: Some(self),
                }
            }
        }
    }

    /// The launch's end after the wait for the first window.
    async fn conclude(
        mut self,
        outcome: Outcome,
        window: Option<WindowTask>,
        wait: Duration,
        started: Instant,
    ) -> Result<Seen, Failure> {
        let error = match outcome {
            Outcome::Found(Ok(Some((info, at)))) => {
                let after = at.duration_since(started);
                tracing::info!(id = self.id(), window = info.window, pid = ?info.pid, ?after, "window mapped");
                self.life.window(&info, after);
                let launched = Launched {
                    record: self.life.record.clone(),
                    window_after: Some(after),
                    follow: self,
                    notices: Vec::new(),
                };
                return Ok((launched, info));
            }
            Outcome::Cancelled => return Err(cancelled(self, window).await),
            Outcome::Ended(end) => {
                stop_watching(window).await;
                let code = match &end {
                    End::Exited(code) => Some(*code),
                    _ => None,
                };
                let error = self.app.ended_early(end, &self.life);
                self.life.failed(&error, code);
                return Err(error.into());
            }
            // A watch that ran out has ended already; one the wait outran is stopped here.
            Outcome::Waited | Outcome::Found(Ok(None)) => {
                if matches!(outcome, Outcome::Waited) {
                    stop_watching(window).await;
                }
                self.life.running();
                self.app.no_window(wait, &self.life)
            }
            Outcome::Found(Err(error)) => error.into(),
        };
        // The app may run on unseen: the record says why, and whoever follows it learns its end.
        self.life.undecided(&error);
        Err(Failure {
            error,
            follow: Some(self),
        })
    }
}

/// Stops an app whose launch was cancelled.
async fn cancelled(mut follow: Follow, window: Option<WindowTask>) -> Failure {
    stop_watching(window).await;
    if let Err(err) = follow.app.stop(&follow.life).await {
        tracing::warn!(id = follow.id(), "failed to stop the cancelled app: {err}");
    }
    follow.life.stopped(Some("cancelled"));
    Error::Cancelled {
        app: follow.life.record.app.clone(),
    }
    .into()
}

/// A backend that can start an app: podman, docker or skaha.
pub(crate) trait Backend {
    type App: App + Into<AnyApp>;

    fn kind(&self) -> BackendKind;

    /// The display the app's windows appear on, when there is one to watch.
    fn display(&self) -> Option<&Display>;

    /// Whether the app connects with a cookie of arcade's making (a local container; a pod
    /// reaches the display by its address).
    fn authorizes(&self) -> bool;

    /// Starts the app.
    async fn start(&self, start: &Start<'_>) -> Result<Self::App>;
}

/// What a backend is given to start an app with.
pub struct Start<'a> {
    pub settings: &'a Settings,
    pub request: &'a Request,
    pub target: &'a Target,
    pub id: &'a str,
    pub store: &'a Store,
    pub watch: &'a Watch,
}
