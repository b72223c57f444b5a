//! Launching desktop-app images on the session's X display: resolve what to run, start it on a
//! backend (podman, docker or skaha), and follow it until its first window maps.
//!
//! Feedback follows the X startup-notification protocol: we send `new:` (unless the menu already
//! did and passed `DESKTOP_STARTUP_ID`) and `remove:` once the window maps or the launch fails,
//! so the busy cursor lasts exactly as long as the launch.

pub mod contract;
pub mod engine;
pub mod platform;
pub mod record;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::catalog::{self, Image};
use crate::config::{Backend, Settings};
use crate::x11::{self, Display, Watcher};
use engine::{Engine, RunSpec};
use record::{Record, State, Store};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    NotFound(String),
    #[error("{name:?} matches several images; say which: {}", choices.join(", "))]
    Ambiguous { name: String, choices: Vec<String> },
    #[error(transparent)]
    X(#[from] x11::Error),
    #[error("{0}")]
    EngineMissing(String),
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
}

/// What the launch is about: the image and what to call it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub image: String,
    /// `repo:tag`, for titles and `arcade ps`.
    pub label: String,
    /// The app's short name, for icons and host names.
    pub app: String,
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

/// A launch that got as far as it was asked to.
#[derive(Debug)]
pub struct Launched {
    pub record: Record,
    /// Time from the start of the launch to the first window, when waited for.
    pub window_after: Option<Duration>,
    /// The engine client, alive as long as the app; the daemon waits on it for the exit code.
    pub child: Option<tokio::process::Child>,
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
    if let Some(catalog) = cached {
        let found = catalog.find(target);
        if let Some(first) = found.first() {
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
            return Ok(target_of(first));
        }
    }
    if target.starts_with('-') {
        return Err(Error::Invalid(format!(
            "{target:?} is not an image reference (it starts with '-')"
        )));
    }
    if target.contains('/') {
        // A reference the catalog does not know: the engine resolves it.
        return Ok(match Image::parse(target) {
            Ok(image) => target_of(&image),
            Err(_) => {
                let last = target.rsplit('/').next().unwrap_or(target);
                Target {
                    image: target.to_owned(),
                    label: last.to_owned(),
                    app: last.split([':', '@']).next().unwrap_or(last).to_owned(),
                }
            }
        });
    }
    Err(Error::NotFound(match cached {
        Some(_) => format!(
            "no app named {target:?} in the menu's catalog (arcade menu list shows them; a full \
             image reference also works)"
        ),
        None => format!(
            "no catalog yet to look up {target:?} in: run `arcade menu sync`, or give a full \
             image reference"
        ),
    }))
}

fn target_of(image: &Image) -> Target {
    Target {
        image: image.reference(),
        label: image.label(),
        app: image.app_name().to_owned(),
    }
}

/// The backend a request runs on.
pub fn backend_of(settings: &Settings, request: &Request) -> Backend {
    request.backend.unwrap_or(settings.launch.backend)
}

/// Launches `request`, following it to its first window unless `no_wait`.
pub async fn launch(
    settings: &Settings,
    request: &Request,
    observer: Arc<dyn Observer>,
) -> Result<Launched> {
    let started = Instant::now();
    let target = resolve(settings, &request.target)?;
    launch_target(settings, request, target, started, observer).await
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
) -> Result<Launched> {
    let target = &target;
    match backend_of(settings, request) {
        Backend::Skaha => platform::launch(settings, request, target, started, observer).await,
        kind => {
            let engine = Engine::find(kind).map_err(Error::EngineMissing)?;
            launch_local(settings, request, target, &engine, started, observer).await
        }
    }
}

/// A startup-notification sequence: ours (we sent `new:`) or the menu's (it did).
pub struct Startup {
    pub id: String,
}

impl Startup {
    /// Starts a sequence unless the menu passed one; sending is best effort, since a missing busy
    /// cursor must never fail a launch.
    pub fn begin(
        watcher: &mut Watcher,
        given: Option<&str>,
        launch_id: &str,
        target: &Target,
    ) -> Startup {
        if let Some(id) = given {
            return Startup { id: id.to_owned() };
        }
        let time = watcher.server_time().unwrap_or(0);
        let id = format!("arcade-{launch_id}_TIME{time}");
        let message = format!(
            "new: ID={} NAME={} SCREEN={} BIN=arcade ICON={} DESCRIPTION={} WMCLASS={}",
            x11::startup_value(&id),
            x11::startup_value(&target.label),
            watcher.screen(),
            x11::startup_value(crate::menu::icons::for_app(&target.app)),
            x11::startup_value(&format!("Starting {}", target.label)),
            x11::startup_value(crate::menu::DEFAULT_WM_CLASS),
        );
        if let Err(err) = watcher.send_startup(&message) {
            tracing::debug!("startup notification failed: {err}");
        }
        Startup { id }
    }

    pub fn end(&self, watcher: &Watcher) {
        let message = format!("remove: ID={}", x11::startup_value(&self.id));
        if let Err(err) = watcher.send_startup(&message) {
            tracing::debug!("startup notification failed: {err}");
        }
    }
}

/// The per-launch folder: under `$XDG_RUNTIME_DIR` (a per-user tmpfs) when there is one.
fn launch_dir(settings: &Settings, id: &str) -> PathBuf {
    settings
        .dirs
        .runtime_dir
        .clone()
        .unwrap_or_else(|| settings.dirs.state_home.join("arcade/run"))
        .join("arcade")
        .join(id)
}

/// Removes a finished launch's folder (its scripts and its copy of the X cookie).
pub fn remove_launch_dir(settings: &Settings, id: &str) {
    if record::is_id(id) {
        let _ = std::fs::remove_dir_all(launch_dir(settings, id));
    }
}

fn host_name(app: &str, id: &str) -> String {
    let mut slug = crate::menu::slug(app);
    slug.truncate(40);
    format!("{}-{id}", slug.trim_end_matches('-'))
}

async fn launch_local(
    settings: &Settings,
    request: &Request,
    target: &Target,
    engine: &Engine,
    started: Instant,
    observer: Arc<dyn Observer>,
) -> Result<Launched> {
    let display = match &request.display {
        Some(name) => Display::parse(name)?,
        None => Display::from_env()?,
    };
    if display.host.is_some() && settings.launch.network == "none" {
        return Err(Error::RemoteDisplay(display.name.clone()));
    }
    let (uid, gid) = engine::app_user(&settings.launch.user).map_err(Error::Invalid)?;
    // SAFETY: getuid only reads the process's credentials.
    let host_uid = unsafe { libc::getuid() };
    let store = Store::new(settings.dirs.launch_state());
    std::fs::create_dir_all(store.dir()).map_err(io_error("create", store.dir()))?;
    let id = request.id.clone().unwrap_or_else(|| store.new_id());

    // Connect before starting anything: a display we cannot open fails fast, and windows created
    // from now on are seen. The busy cursor starts here too, unless the menu started it, or
    // nothing will wait to end it (`--no-wait`).
    let (mut watcher, cookie, startup) = {
        let display = display.clone();
        let xauthority = request.xauthority.clone();
        let given = request.startup_id.clone();
        let own = !request.no_wait;
        let (id, target) = (id.clone(), target.clone());
        tokio::task::spawn_blocking(move || -> Result<_> {
            let (mut watcher, cookie) = Watcher::connect(&display, xauthority.as_deref())?;
            let startup = match given {
                Some(given) => Some(Startup { id: given }),
                None if own => Some(Startup::begin(&mut watcher, None, &id, &target)),
                None => None,
            };
            Ok((watcher, cookie, startup))
        })
        .await
        .expect("x11 connect task panicked")?
    };
    // Until the watcher thread takes over, a failure must still end the busy cursor.
    let fail = |watcher: Watcher, startup: Option<Startup>, error: Error| async move {
        if let Some(startup) = startup {
            let _ = tokio::task::spawn_blocking(move || startup.end(&watcher)).await;
        }
        error
    };

    let dir = launch_dir(settings, &id);
    if let Err(err) = prepare_dir(&dir, &cookie, &display, request, target, uid, gid) {
        return Err(fail(watcher, startup, err).await);
    }
    let hostname = host_name(&target.app, &id);
    let mut env: Vec<(String, String)> = vec![
        ("DISPLAY".into(), format!(":{}", display.number)),
        ("HOME".into(), contract::HOME.into()),
        ("QT_X11_NO_MITSHM".into(), "1".into()),
        ("_X11_NO_MITSHM".into(), "1".into()),
        ("_MITSHM".into(), "0".into()),
        ("SKAHA_XTERM_TITLE".into(), target.label.clone()),
        ("ARCADE_LAUNCH_ID".into(), id.clone()),
    ];
    if display.host.is_some() {
        env[0].1 = display.name.clone();
    }
    if !cookie.is_empty() {
        env.push(("XAUTHORITY".into(), contract::XAUTHORITY.into()));
    }
    // What the platform's Job gives every desktop-app (`launch-desktop-app.yaml`), so a local
    // launch behaves as the platform's would.
    let cores = request.cores.or(settings.launch.cores).unwrap_or(1);
    env.push(("OMP_NUM_THREADS".into(), cores.max(1).to_string()));
    env.push(("GDK_SYNCHRONIZE".into(), "1".into()));
    env.push(("SHELL".into(), "/bin/bash".into()));
    env.push(("PWD".into(), contract::HOME.into()));
    if let Some(startup) = &startup {
        env.push(("DESKTOP_STARTUP_ID".into(), startup.id.clone()));
    }
    // The operator's variables may hold secrets: they reach the container through the engine
    // client's environment (`--env NAME`), never through its command line.
    let (passed, mut private): (Vec<_>, Vec<_>) = settings
        .launch
        .env
        .iter()
        .map(|(key, value)| (key.clone(), value.clone()))
        .partition(|(key, _)| engine::engine_reads(key));
    env.extend(passed);
    // The platform's session id, only inside a platform desktop (elsewhere the setting may come
    // from `VNC_PW`, a real password), and like a secret: the desktop's VNC password is the same.
    if crate::config::in_platform_session()
        && let Some(session) = &settings.skaha.session_id
    {
        private.push(("skaha_sessionid".into(), session.clone()));
    }

    let spec = RunSpec {
        id: id.clone(),
        name: format!("arcade-{id}"),
        hostname: hostname.clone(),
        image: target.image.clone(),
        app: target.label.clone(),
        uid,
        gid,
        host_uid,
        launch_dir: dir.clone(),
        display: display.clone(),
        env,
        env_names: private.iter().map(|(key, _)| key.clone()).collect(),
        cores: request.cores.or(settings.launch.cores),
        ram_gb: request.ram_gb.or(settings.launch.ram_gb),
        gpus: request.gpus,
        network: settings.launch.network.clone(),
        volumes: settings.launch.volumes.clone(),
        pull: settings.launch.pull.clone(),
    };

    let log_path = store.log_path(&id);
    let log = match open_log(&log_path, target, &display, engine)
        .and_then(|log| Ok((log.try_clone().map_err(io_error("open", &log_path))?, log)))
    {
        Ok(logs) => logs,
        Err(err) => return Err(fail(watcher, startup, err).await),
    };
    let mut record = Record {
        id: id.clone(),
        app: target.label.clone(),
        image: target.image.clone(),
        backend: engine.name(),
        container: Some(spec.name.clone()),
        session_id: None,
        app_id: None,
        skaha_url: None,
        display: display.name.clone(),
        started_at: record::now(),
        state: State::Starting,
        exit_code: None,
        window_ms: None,
        message: None,
    };
    if let Err(err) = store.save(&record) {
        let err = io_error("write the launch record in", store.dir())(err);
        return Err(fail(watcher, startup, err).await);
    }

    let mut command = engine.command(engine.run_args(&spec));
    command
        .envs(private)
        .stdout(log.0)
        .stderr(log.1)
        // Its own process group: closing the terminal `arcade launch` was typed in, or Ctrl-C
        // there after the window is up, must not take the app down.
        .process_group(0);
    if let Some(conf) = &settings.launch.containers_conf {
        command.env("CONTAINERS_CONF", conf);
    }
    tracing::info!(id, image = %target.image, on = %spec.display.name, "starting {}", engine.name());
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(err) => {
            let error = Error::EngineFailed {
                engine: engine.name(),
                app: target.label.clone(),
                message: format!("failed to run {}: {err}", engine.program.display()),
            };
            record.state = State::Failed;
            record.message = Some(error.to_string());
            let _ = store.save(&record);
            return Err(fail(watcher, startup, error).await);
        }
    };
    observer.event(Event::Starting {
        id: id.clone(),
        app: target.label.clone(),
    });

    if request.no_wait {
        if let Some(startup) = startup {
            // The menu's sequence: nothing here will see the window, so the window manager's
            // WMCLASS match or its timeout ends it; ours was never started.
            drop(startup);
        }
        record.state = State::Running;
        let _ = store.save(&record);
        return Ok(Launched {
            record,
            window_after: None,
            child: Some(child),
        });
    }

    // Watch for the window on a thread of its own while waiting for the engine client here. The
    // thread ends the busy cursor as soon as it is done, whichever way it is done.
    let cancel = Arc::new(AtomicBool::new(false));
    let deadline = started + settings.launch.wait;
    let matcher = {
        let id = id.clone();
        let hostname = hostname.clone();
        let startup_id = startup.as_ref().map(|startup| startup.id.clone());
        move |info: &x11::WindowInfo| {
            info.pid
                .is_some_and(|pid| x11::process_has_env(pid, "ARCADE_LAUNCH_ID", &id))
                || info.client_machine.as_deref() == Some(hostname.as_str())
                || (startup_id.is_some() && info.startup_id == startup_id)
        }
    };
    let mut window_task = {
        let cancel = Arc::clone(&cancel);
        tokio::task::spawn_blocking(move || {
            let found = watcher.wait_for_window(&matcher, deadline, &cancel);
            if let Some(startup) = &startup {
                startup.end(&watcher);
            }
            found
        })
    };

    enum Outcome {
        Window(Option<(x11::WindowInfo, Instant)>),
        WatchFailed(x11::Error),
        Exited(std::io::Result<std::process::ExitStatus>),
        Interrupted,
    }
    let outcome = tokio::select! {
        joined = &mut window_task => match joined.expect("window watcher panicked") {
            Ok(found) => Outcome::Window(found),
            Err(err) => Outcome::WatchFailed(err),
        },
        status = child.wait() => Outcome::Exited(status),
        _ = interrupted() => Outcome::Interrupted,
    };

    match outcome {
        Outcome::Window(Some((info, at))) => {
            let after = at.duration_since(started);
            tracing::info!(id, window = info.window, pid = ?info.pid, ?after, "window mapped");
            record.state = State::Running;
            record.window_ms = Some(after.as_millis() as u64);
            let _ = store.save(&record);
            observer.event(Event::WindowMapped {
                id: id.clone(),
                after,
            });
            Ok(Launched {
                record,
                window_after: Some(after),
                child: Some(child),
            })
        }
        Outcome::Window(None) => {
            // The deadline passed; the app may still be pulling or starting, so leave it be.
            let error = Error::NoWindow {
                app: target.label.clone(),
                seconds: settings.launch.wait.as_secs(),
                id: id.clone(),
            };
            record.state = State::Running;
            record.message = Some(error.to_string());
            let _ = store.save(&record);
            Err(error)
        }
        Outcome::WatchFailed(err) => {
            record.message = Some(err.to_string());
            let _ = store.save(&record);
            Err(err.into())
        }
        Outcome::Exited(status) => {
            cancel.store(true, Ordering::Relaxed);
            let _ = window_task.await;
            let code = status.ok().and_then(|status| status.code()).unwrap_or(-1);
            let error = exit_error(engine, target, code, store.log_tail(&id, 3));
            record.state = State::Failed;
            record.exit_code = Some(code);
            record.message = Some(error.to_string());
            let _ = store.save(&record);
            let _ = std::fs::remove_dir_all(&dir);
            Err(error)
        }
        Outcome::Interrupted => {
            cancel.store(true, Ordering::Relaxed);
            let _ = window_task.await;
            // The client is in a process group of its own, so the signal did not reach it; and
            // while it still pulls or creates, there is no container to stop yet. Stop what
            // exists, end the client, then remove a container that appeared meanwhile.
            let _ = tokio::time::timeout(Duration::from_secs(10), engine.stop(&spec.name)).await;
            let _ = child.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
            let _ = tokio::time::timeout(Duration::from_secs(10), engine.remove(&spec.name)).await;
            record.state = State::Stopped;
            record.message = Some("cancelled".to_owned());
            let _ = store.save(&record);
            let _ = std::fs::remove_dir_all(&dir);
            Err(Error::Cancelled {
                app: target.label.clone(),
            })
        }
    }
}

/// Turns an early exit of the engine client into the clearest error we can tell.
fn exit_error(engine: &Engine, target: &Target, code: i32, output: Vec<String>) -> Error {
    let text = output.join("\n");
    // Engines exit 125 when they could not run the container at all.
    if code == 125 {
        let message = output
            .last()
            .cloned()
            .unwrap_or_else(|| format!("{} exited with code 125", engine.name()));
        if engine::is_missing_image(&text) {
            return Error::ImageMissing {
                image: target.image.clone(),
                engine: engine.name(),
                message,
            };
        }
        return Error::EngineFailed {
            engine: engine.name(),
            app: target.label.clone(),
            message,
        };
    }
    Error::ExitedEarly {
        app: target.label.clone(),
        code,
        output,
    }
}

/// SIGINT or SIGTERM, whichever comes first.
async fn interrupted() {
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

/// Writes the per-launch folder: entry and command scripts, and the wildcard cookie.
fn prepare_dir(
    dir: &Path,
    cookie: &x11::Cookie,
    display: &Display,
    request: &Request,
    target: &Target,
    uid: u32,
    gid: u32,
) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).map_err(io_error("create", parent))?;
        let _ = std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o700));
    }
    std::fs::create_dir_all(dir).map_err(io_error("create", dir))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
        .map_err(io_error("set permissions of", dir))?;
    let command = if request.command.is_empty() {
        contract::default_command(&target.label)
    } else {
        request.command.clone()
    };
    let command = contract::command_script(&command).map_err(Error::Invalid)?;
    for (name, text) in [
        ("entry.sh", contract::entry_script()),
        ("command.sh", command),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(io_error("write", &path))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .map_err(io_error("set permissions of", &path))?;
    }
    if !cookie.is_empty() {
        let path = dir.join("Xauthority");
        x11::write_cookie(&path, cookie, display.number)?;
        // SAFETY: geteuid only reads the process's credentials.
        if unsafe { libc::geteuid() } == 0 {
            engine::give_to(&path, uid, gid).map_err(io_error("hand over", &path))?;
        }
    }
    Ok(())
}

fn open_log(
    path: &Path,
    target: &Target,
    display: &Display,
    engine: &Engine,
) -> Result<std::fs::File> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(io_error("open", path))?;
    let _ = writeln!(
        log,
        "arcade: launching {} on {} with {}",
        target.image,
        display.name,
        engine.name()
    );
    Ok(log)
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
    let mut live: std::collections::HashMap<String, String> = Default::default();
    let mut asked = Vec::new();
    for kind in [Backend::Podman, Backend::Docker] {
        let used = records.iter().any(|r| r.backend == kind.to_string());
        if !used && kind != settings.launch.backend {
            continue;
        }
        if let Ok(engine) = Engine::find(kind)
            && let Ok(containers) = engine.list(host_uid).await
        {
            asked.push(kind.to_string());
            live.extend(containers);
        }
    }
    if records.iter().any(|r| r.backend == "skaha")
        && let Some(apps) = platform::live_states(settings, &records).await
    {
        asked.push("skaha".to_owned());
        for (app_id, status) in apps {
            if let Some(record) = records
                .iter()
                .find(|r| r.app_id.as_deref() == Some(&app_id))
            {
                live.insert(record.id.clone(), status.to_lowercase());
            }
        }
    }
    let mut rows: Vec<Row> = records
        .into_iter()
        .map(|mut record| {
            let live_state = live.remove(&record.id);
            if asked.contains(&record.backend) && !record.state.is_finished() {
                // A launch still starting may not be listed yet; one gone quiet for longer than
                // a launch may wait is over.
                let settled = record.state == State::Running
                    || record::now().saturating_sub(record.started_at)
                        > settings.launch.wait.as_secs() + settings.skaha.poll_timeout.as_secs();
                let next = match live_state.as_deref() {
                    Some("running") => Some(State::Running),
                    Some("failed" | "error") => Some(State::Failed),
                    Some("completed" | "succeeded" | "exited" | "stopped") => Some(State::Exited),
                    None if settled => Some(State::Exited),
                    _ => None,
                };
                if let Some(next) = next
                    && next != record.state
                {
                    record.state = next;
                    let _ = store.save(&record);
                    if next.is_finished() {
                        remove_launch_dir(settings, &record.id);
                    }
                }
            }
            Row { record, live_state }
        })
        .collect();
    // Containers with our label but no record (the state folder was wiped, say) still show.
    for (id, state) in live {
        let running = state == "running";
        rows.push(Row {
            record: unrecorded(&id, "podman/docker", running),
            live_state: Some(state),
        });
    }
    rows
}

/// What is known of an arcade container without a record (the state folder was wiped, say):
/// its id, from its name and labels.
fn unrecorded(id: &str, backend: &str, running: bool) -> Record {
    Record {
        id: id.to_owned(),
        app: "?".to_owned(),
        image: "?".to_owned(),
        backend: backend.to_owned(),
        container: Some(format!("arcade-{id}")),
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
    }
}

/// Stops a container by name; one already gone is stopped as far as the user is concerned.
async fn stop_container(engine: &Engine, name: &str, app: &str) -> Result<()> {
    match engine.stop(name).await {
        Ok(()) => Ok(()),
        Err(message)
            if message.contains("no such container") || message.contains("No such container") =>
        {
            Ok(())
        }
        Err(message) => Err(Error::StopFailed {
            engine: engine.name(),
            app: app.to_owned(),
            message,
        }),
    }
}

/// Stops an arcade container that has no record, found by its labels as `arcade ps` finds it.
async fn stop_unrecorded(settings: &Settings, id: &str) -> Option<Result<Record>> {
    // SAFETY: getuid only reads the process's credentials.
    let host_uid = unsafe { libc::getuid() };
    for kind in [Backend::Podman, Backend::Docker] {
        let Ok(engine) = Engine::find(kind) else {
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
            let record = unrecorded(found, &kind.to_string(), false);
            let name = format!("arcade-{found}");
            return Some(stop_container(&engine, &name, &name).await.map(|()| {
                remove_launch_dir(settings, found);
                Record {
                    state: State::Stopped,
                    ..record
                }
            }));
        }
    }
    None
}

/// Stops a launch by id (or unique prefix).
pub async fn stop(settings: &Settings, id: &str) -> Result<Record> {
    let store = Store::new(settings.dirs.launch_state());
    let mut record = match store.find(id) {
        Ok(record) => record,
        Err(message) => {
            return stop_unrecorded(settings, id)
                .await
                .unwrap_or(Err(Error::NotFound(message)));
        }
    };
    match record.backend.as_str() {
        "skaha" => platform::stop(settings, &record).await?,
        backend => {
            let kind = if backend == "docker" {
                Backend::Docker
            } else {
                Backend::Podman
            };
            let engine = Engine::find(kind).map_err(Error::EngineMissing)?;
            let name = record
                .container
                .clone()
                .unwrap_or_else(|| format!("arcade-{}", record.id));
            stop_container(&engine, &name, &record.app).await?;
        }
    }
    record.state = State::Stopped;
    let _ = store.save(&record);
    remove_launch_dir(settings, &record.id);
    Ok(record)
}

/// The log of a launch.
pub fn logs(settings: &Settings, id: &str) -> Result<(Record, String)> {
    let store = Store::new(settings.dirs.launch_state());
    let record = store.find(id).map_err(Error::NotFound)?;
    let path = store.log_path(&record.id);
    let text = std::fs::read_to_string(&path).map_err(io_error("read", &path))?;
    Ok((record, text))
}
