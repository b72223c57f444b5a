//! Launching desktop-app images on the session's X display: resolve what to run, start it on a
//! backend (podman, docker or skaha), and follow it until its first window maps.
//!
//! Feedback follows the X startup-notification protocol: we send `new:` (unless the menu already
//! did and passed `DESKTOP_STARTUP_ID`) and `remove:` once the window maps or the launch fails,
//! so the busy cursor lasts exactly as long as the launch.

pub mod app;
pub mod contract;
pub mod engine;
pub mod files;
pub mod lifecycle;
pub mod local;
pub mod platform;
pub mod record;
pub mod watch;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::catalog::{self, Image};
use crate::config::{Backend, Settings};
use crate::x11;
use app::{AnyApp, App, End};
use engine::Engine;
pub use lifecycle::Launched;
use lifecycle::{Failure, Follow, Lifecycle};
use record::{Record, State, Store};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    NotFound(String),
    #[error("{name:?} matches several images; say which: {}", choices.join(", "))]
    Ambiguous { name: String, choices: Vec<String> },
    #[error(transparent)]
    X(#[from] x11::Error),
    #[error(transparent)]
    Engine(#[from] engine::Error),
    #[error("image {image} is not available to {engine}: {message}")]
    ImageMissing {
        image: String,
        engine: String,
        message: String,
    },
    #[error("{engine} could not start {app}: {message}")]
    EngineFailed {
        engine: String,
        app: String,
        message: String,
    },
    #[error("{engine} could not stop {app}: {message}")]
    StopFailed {
        engine: String,
        app: String,
        message: String,
    },
    #[error(
        "{app} exited with code {code} before opening a window{}",
        output_suffix(output)
    )]
    ExitedEarly {
        app: String,
        code: i32,
        output: Vec<String>,
    },
    #[error(
        "{app} opened no window within {seconds} s; it is still running as launch {id} \
         (arcade logs {id}, arcade stop {id})"
    )]
    NoWindow {
        app: String,
        seconds: u64,
        id: String,
    },
    #[error(
        "DISPLAY={0} is a network display, and app containers have no network; set \
         launch.network in the config to reach it"
    )]
    RemoteDisplay(String),
    #[error("{0}")]
    Platform(String),
    #[error(transparent)]
    Skaha(#[from] crate::skaha::Error),
    #[error("failed to {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("the launch of {app} was cancelled; its container was stopped")]
    Cancelled { app: String },
    #[error("launch {id} ({app}) has already {state}; there is nothing to stop")]
    AlreadyEnded {
        id: String,
        app: String,
        state: State,
    },
    #[error(transparent)]
    Id(record::FindError),
}

impl Error {
    /// The current folder could not be read (it was removed, say), so relative files cannot be
    /// found.
    pub fn from_cwd(source: std::io::Error) -> Error {
        Error::Io {
            action: "read the current folder to find the files in",
            path: PathBuf::from("."),
            source,
        }
    }
}

fn output_suffix(output: &[String]) -> String {
    if output.is_empty() {
        String::new()
    } else {
        format!("; its last output: {}", output.join(" ⏎ "))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn io_error<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

/// What the user asked to launch.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// An image reference, or a name from the catalog (`casa`, `casa:6.5`, `skaha/casa`).
    pub target: String,
    pub cores: Option<u32>,
    pub ram_gb: Option<u32>,
    pub gpus: Option<u32>,
    /// Overrides the default xterm.
    pub command: Vec<String>,
    /// Return once the backend accepted the app, without waiting for its window.
    pub no_wait: bool,
    /// The startup-notification ID the menu passed in `DESKTOP_STARTUP_ID`.
    pub startup_id: Option<String>,
    /// The backend, if not the configured one.
    pub backend: Option<Backend>,
    /// The display, if not `$DISPLAY` (the daemon gets its clients' display this way).
    pub display: Option<String>,
    /// The display's cookie file, if not `$XAUTHORITY`.
    pub xauthority: Option<PathBuf>,
    /// The launch id, when the caller chose it (the daemon answers with it before starting).
    pub id: Option<String>,
    /// The skaha service, if not the configured one (the daemon gets its clients' this way).
    pub skaha_url: Option<String>,
    /// The session's shared network, which the daemon's local launches join (SAMP).
    pub shared: Option<engine::SessionNet>,
    /// Files for the app to open, as absolute paths ([`files::resolve`] checks them).
    pub files: Vec<PathBuf>,
}

/// What the launch is about: the image and what to call it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub image: String,
    /// `repo:tag`, for titles and `arcade ps`.
    pub label: String,
    /// The app's short name, for icons and host names.
    pub app: String,
    /// The resources the image asks for by its labels, when the user names none.
    pub resources: Option<crate::labels::Resources>,
    /// The file types the image says by its labels that it opens.
    pub mime_types: Vec<String>,
}

/// Progress of a launch, for the daemon's signals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Starting { id: String, app: String },
    WindowMapped { id: String, after: Duration },
    Exited { id: String, code: i32 },
    Failed { id: String, reason: String },
}

/// Receives launch events; `()` ignores them.
pub trait Observer: Send + Sync {
    fn event(&self, event: Event);
}

impl Observer for () {
    fn event(&self, _: Event) {}
}

/// Resolves a target: a full reference as it is, a name through the last good catalog.
pub fn resolve(settings: &Settings, target: &str) -> Result<Target> {
    let cached = crate::sync::read_cache(settings)
        .ok()
        .map(|(catalog, _)| catalog);
    resolve_in(cached.as_ref(), target)
}

/// Resolves a target against a catalog already in memory (`None`: there is no catalog yet).
pub fn resolve_in(cached: Option<&catalog::Catalog>, target: &str) -> Result<Target> {
    if target.chars().any(char::is_control) {
        return Err(Error::Invalid(format!(
            "\"{}\" is not an image reference: it holds control characters",
            catalog::printable(target)
        )));
    }
    // A digest pins the image: the catalog, which knows tags, is not asked.
    if let Some(catalog) = cached.filter(|_| !target.contains('@')) {
        let found = catalog.find(target);
        if let Some(chosen) = catalog::default_choice(&found) {
            // A name without a tag may match one app in several projects: refuse to guess.
            let apps: std::collections::BTreeSet<String> = found
                .iter()
                .map(|image| format!("{}/{}/{}", image.registry, image.project, image.repository))
                .collect();
            if apps.len() > 1 {
                return Err(Error::Ambiguous {
                    name: target.to_owned(),
                    choices: apps
                        .iter()
                        .map(|app| {
                            app.split_once('/')
                                .map_or(app.as_str(), |(_, rest)| rest)
                                .to_owned()
                        })
                        .collect(),
                });
            }
            return Ok(target_of(chosen));
        }
    }
    if target.starts_with('-') {
        return Err(Error::Invalid(format!(
            "{target:?} is not an image reference (it starts with '-')"
        )));
    }
    if target.contains('/') {
        return reference_target(target);
    }
    Err(Error::NotFound(match cached {
        Some(catalog) => format!(
            "no app named {target:?} in the menu's catalog{} (arcade menu list shows them; a \
             full image reference also works)",
            catalog
                .suggest(target)
                .map(|name| format!("; did you mean {name}?"))
                .unwrap_or_default()
        ),
        None => format!(
            "no catalog yet to look up {target:?} in: run `arcade menu sync`, or give a full \
             image reference"
        ),
    }))
}

/// A reference the catalog does not know, named as typed: the engine resolves it, and a digest
/// in it pins the image on every path.
fn reference_target(target: &str) -> Result<Target> {
    match Image::parse(target) {
        Ok(image) => Ok(Target {
            resources: None,
            mime_types: Vec::new(),
            image: target.to_owned(),
            label: target.to_owned(),
            app: image.app_name().to_owned(),
        }),
        // Names outside the grammar never reach an engine's command line.
        Err(
            err @ (catalog::ReferenceError::InvalidName(_)
            | catalog::ReferenceError::InvalidTag(_)
            | catalog::ReferenceError::Unrepresentable(_)
            | catalog::ReferenceError::TooLong),
        ) => Err(Error::Invalid(err.to_string())),
        // A shorter form (`localhost/app`, no tag) is the engine's to complete.
        Err(_) => {
            let last = target.rsplit('/').next().unwrap_or(target);
            Ok(Target {
                resources: None,
                mime_types: Vec::new(),
                image: target.to_owned(),
                label: target.to_owned(),
                app: last.split([':', '@']).next().unwrap_or(last).to_owned(),
            })
        }
    }
}

fn target_of(image: &Image) -> Target {
    Target {
        resources: image.about.as_ref().and_then(|about| about.resources),
        mime_types: image
            .about
            .as_ref()
            .map(|about| about.mime_types.clone())
            .unwrap_or_default(),
        image: image.launch_reference(),
        label: image.label(),
        app: image.app_name().to_owned(),
    }
}

/// The backend a request runs on.
pub fn backend_of(settings: &Settings, request: &Request) -> Backend {
    request.backend.unwrap_or(settings.launch.backend)
}

/// Launches `request`, following it to its first window unless `no_wait`; `cancel` (Ctrl-C)
/// ends the launch early and stops the app.
pub async fn launch(
    settings: &Settings,
    request: &Request,
    observer: Arc<dyn Observer>,
    cancel: impl Future<Output = ()>,
) -> Result<Launched, Failure> {
    let started = Instant::now();
    let target = resolve(settings, &request.target)?;
    launch_target(settings, request, target, started, observer, cancel).await
}

/// Launches an already resolved target; `started` is when the launch began, for timing.
///
/// Failures are returned, not reported to `observer`: the caller knows best how to tell them.
pub async fn launch_target(
    settings: &Settings,
    request: &Request,
    target: Target,
    started: Instant,
    observer: Arc<dyn Observer>,
    cancel: impl Future<Output = ()>,
) -> Result<Launched, Failure> {
    // The image's own resources stand in for the ones the user did not name.
    let request = &match target.resources {
        Some(wanted) => Request {
            cores: request.cores.or(Some(wanted.cores)),
            ram_gb: request.ram_gb.or(Some(wanted.ram_gb)),
            gpus: request.gpus.or((wanted.gpus > 0).then_some(wanted.gpus)),
            ..request.clone()
        },
        None => request.clone(),
    };
    match backend_of(settings, request) {
        Backend::Skaha => {
            let files = files::resolve(&request.files, Path::new("/"))?;
            let backend = platform::SkahaBackend::prepare(settings, request).await?;
            let mut launched = lifecycle::drive(
                backend, settings, request, &target, started, observer, cancel,
            )
            .await?;
            launched.notices.extend(files::skaha_notice(
                &files,
                &settings.dirs.home,
                &target.label,
            ));
            Ok(launched)
        }
        kind => {
            let request = &files::local_request(request, &target, &settings.menu.mime_types)?;
            let engine = Engine::find(kind, settings).map_err(Error::from)?;
            let backend = local::LocalBackend::prepare(settings, request, engine)?;
            lifecycle::drive(
                backend, settings, request, &target, started, observer, cancel,
            )
            .await
        }
    }
}

/// Checks that a backend can be used at all (its engine is installed, or skaha is configured).
pub fn check_backend(settings: &Settings, backend: Backend) -> Result<()> {
    match backend {
        Backend::Skaha => platform::client(settings).map(drop),
        kind => Engine::find(kind, settings).map(drop).map_err(Error::from),
    }
}

/// SIGINT or SIGTERM, whichever comes first: what cancels a launch typed in a terminal.
pub async fn interrupted() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
}

/// The app of a recorded launch, found again on its backend.
fn attach(settings: &Settings, record: &Record) -> Result<AnyApp> {
    Ok(match record.backend {
        Backend::Skaha => platform::SkahaApp::attach(settings, record)?.into(),
        kind => local::LocalApp::attach(
            Engine::find(kind, settings)?,
            &record.id,
            record
                .container
                .as_deref()
                .unwrap_or(&engine::container_name(&record.id)),
            &record.image,
            &record.app,
        )
        .into(),
    })
}

/// Follows a recorded launch that has not ended (after a restart, or one launched without the
/// daemon), as [`Follow`] does a launch of this process.
pub fn follow_recorded(
    settings: &Settings,
    record: Record,
    observer: Arc<dyn Observer>,
) -> Result<Follow> {
    let app = attach(settings, &record)?;
    Ok(Follow::new(
        Lifecycle::resume(settings, record, observer),
        app,
    ))
}

/// Follows a running container of arcade's, found by its labels.
pub fn follow_container(
    settings: &Settings,
    kind: Backend,
    id: &str,
    observer: Arc<dyn Observer>,
) -> Result<Follow> {
    let store = Store::new(settings.dirs.launch_state());
    let record = store.load(id).unwrap_or_else(|| unrecorded(id, kind, true));
    let mut follow = follow_recorded(settings, record, observer)?;
    follow.running();
    Ok(follow)
}

/// A row of `arcade ps`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    #[serde(flatten)]
    pub record: Record,
    /// The engine's or skaha's view, when it could be asked.
    pub live_state: Option<String>,
}

/// This user's launches with their live state.
pub async fn list(settings: &Settings) -> Vec<Row> {
    let store = Store::new(settings.dirs.launch_state());
    let records = store.all();
    // SAFETY: getuid only reads the process's credentials.
    let host_uid = unsafe { libc::getuid() };
    // The live state of each launch, by id; and which backends could be asked.
    let mut live: std::collections::HashMap<String, (Backend, String)> = Default::default();
    let mut asked = Vec::new();
    for kind in [Backend::Podman, Backend::Docker] {
        let used = records.iter().any(|r| r.backend == kind);
        if !used && kind != settings.launch.backend {
            continue;
        }
        if let Ok(engine) = Engine::find(kind, settings)
            && let Ok(containers) = engine.list(host_uid).await
        {
            asked.push(kind);
            live.extend(
                containers
                    .into_iter()
                    .map(|(id, state)| (id, (kind, state))),
            );
        }
    }
    if records.iter().any(|r| r.backend == Backend::Skaha)
        && let Some(apps) = platform::live_states(settings, &records).await
    {
        asked.push(Backend::Skaha);
        for (app_id, status) in apps {
            if let Some(record) = records
                .iter()
                .find(|r| r.app_id.as_deref() == Some(&app_id))
            {
                live.insert(record.id.clone(), (Backend::Skaha, status.lowercase()));
            }
        }
    }
    let mut rows: Vec<Row> = records
        .into_iter()
        .map(|record| {
            let live_state = live.remove(&record.id).map(|(_, state)| state);
            let mut record = record;
            if asked.contains(&record.backend) && !record.state.is_finished() {
                record.state = observed_state(settings, &record, live_state.as_deref());
            }
            Row { record, live_state }
        })
        .collect();
    // Containers with our label but no record (the state folder was wiped, say) still show:
    // those of this session (on its display), or any when there is no display to tell by.
    let live = this_sessions(settings, live, host_uid).await;
    for (id, (kind, state)) in live {
        let running = state == "running";
        rows.push(Row {
            record: unrecorded(&id, kind, running),
            live_state: Some(state),
        });
    }
    rows
}

/// The unrecorded containers among `live` that run on this session's display: another
/// session's (or another user's test desktop's) apps are not this user's to see here.
async fn this_sessions(
    settings: &Settings,
    live: std::collections::HashMap<String, (Backend, String)>,
    host_uid: u32,
) -> std::collections::HashMap<String, (Backend, String)> {
    let Some(display) = std::env::var("DISPLAY").ok().filter(|d| !d.is_empty()) else {
        return live;
    };
    if live.is_empty() {
        return live;
    }
    let mut on_display = std::collections::HashSet::new();
    for kind in [Backend::Podman, Backend::Docker] {
        if !live.values().any(|(backend, _)| *backend == kind) {
            continue;
        }
        match Engine::find(kind, settings) {
            Ok(engine) => match engine.list_on(host_uid, &display).await {
                Ok(containers) => on_display.extend(containers.into_iter().map(|(id, _)| id)),
                // Not asked again: show them all rather than hide any.
                Err(_) => return live,
            },
            Err(_) => return live,
        }
    }
    live.into_iter()
        .filter(|(id, _)| on_display.contains(id))
        .collect()
}

/// Whether a launch is over, by its record or, read only, by its backend.
pub async fn is_over(settings: &Settings, id: &str) -> bool {
    list(settings)
        .await
        .iter()
        .find(|row| row.record.id == id)
        .is_none_or(|row| row.record.state.is_finished())
}

/// What a launch's backend says of it, read only: `ps` never changes a record, since a launch
/// still starting may not be listed yet; whoever learns of an app's end records it. One not
/// listed after longer than a launch may wait is shown as over.
fn observed_state(settings: &Settings, record: &Record, live_state: Option<&str>) -> State {
    let settled = record::now().saturating_sub(record.started_at)
        > settings.launch.wait.as_secs() + settings.skaha.poll_timeout.as_secs();
    match live_state {
        Some("running") => State::Running,
        Some("failed" | "error") => State::Failed,
        Some("completed" | "succeeded" | "exited" | "stopped") => State::Exited,
        None if settled => State::Exited,
        _ => record.state,
    }
}

/// What is known of an arcade container without a record (the state folder was wiped, say):
/// its id, from its name and labels.
fn unrecorded(id: &str, backend: Backend, running: bool) -> Record {
    Record {
        id: id.to_owned(),
        app: "?".to_owned(),
        image: "?".to_owned(),
        backend,
        container: Some(engine::container_name(id)),
        session_id: None,
        app_id: None,
        skaha_url: None,
        display: String::new(),
        started_at: 0,
        state: if running {
            State::Running
        } else {
            State::Exited
        },
        exit_code: None,
        window_ms: None,
        message: None,
        x_authorization: None,
        xauthority: None,
    }
}

/// A stopped launch, and its end when stopping was its end (skaha deletes the app; a local
/// container's end is seen by whoever follows its engine client).
pub struct Stopped {
    pub record: Record,
    pub end: Option<End>,
}

/// Stops an arcade container that has no record, found by its labels as `arcade ps` finds it.
async fn stop_unrecorded(settings: &Settings, id: &str) -> Option<Result<Stopped>> {
    // SAFETY: getuid only reads the process's credentials.
    let host_uid = unsafe { libc::getuid() };
    for kind in [Backend::Podman, Backend::Docker] {
        let Ok(engine) = Engine::find(kind, settings) else {
            continue;
        };
        let Ok(containers) = engine.list(host_uid).await else {
            continue;
        };
        // The whole id, or a prefix of exactly one, as for recorded launches.
        let matching: Vec<&String> = containers
            .iter()
            .map(|(found, _)| found)
            .filter(|found| found.starts_with(id))
            .collect();
        if let [found] = matching.as_slice() {
            return Some(stop_record(settings, unrecorded(found, kind, true)).await);
        }
    }
    None
}

/// Stops a launch by id (or unique prefix). An ambiguous prefix is an error naming the
/// candidates; an app that has already ended is [`Error::AlreadyEnded`].
pub async fn stop(settings: &Settings, id: &str) -> Result<Stopped> {
    let store = Store::new(settings.dirs.launch_state());
    match store.find(id) {
        Ok(record) if record.state.is_finished() => Err(already_ended(&record)),
        Ok(record) => stop_record(settings, record).await,
        Err(missing @ record::FindError::NoSuch(_)) => stop_unrecorded(settings, id)
            .await
            .unwrap_or(Err(Error::NotFound(missing.to_string()))),
        Err(missing @ record::FindError::NotAnId(_)) => Err(Error::NotFound(missing.to_string())),
        Err(err) => Err(Error::Id(err)),
    }
}

async fn stop_record(settings: &Settings, record: Record) -> Result<Stopped> {
    let mut app = attach(settings, &record)?;
    let mut life = Lifecycle::resume(settings, record, Arc::new(()));
    match app.stop(&life).await? {
        app::Stopping::Stopped(end) => {
            life.stopped(None);
            Ok(Stopped {
                record: life.record().clone(),
                end,
            })
        }
        // Its backend no longer has it: it ended unseen, and now that is known.
        app::Stopping::AlreadyGone => {
            life.finish(End::Exited(-1));
            Err(already_ended(life.record()))
        }
    }
}

fn already_ended(record: &Record) -> Error {
    Error::AlreadyEnded {
        id: record.id.clone(),
        app: catalog::printable(&record.app).into_owned(),
        state: record.state,
    }
}

/// The log of a launch.
pub fn logs(settings: &Settings, id: &str) -> Result<(Record, String)> {
    let store = Store::new(settings.dirs.launch_state());
    let record = store.find(id).map_err(|err| match err {
        record::FindError::NoSuch(_) | record::FindError::NotAnId(_) => {
            Error::NotFound(err.to_string())
        }
        other => Error::Id(other),
    })?;
    let path = store.log_path(&record.id);
    let text = std::fs::read_to_string(&path).map_err(io_error("read", &path))?;
    Ok((record, text))
}
