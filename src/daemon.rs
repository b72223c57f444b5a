//! The per-session daemon: launches on request without blocking, keeps the menu fresh (on a
//! schedule with jitter, on `Refresh()`, and when config or credential files change), and stops
//! the containers it started when the session ends.
//!
//! [`Core`] is the single owner of the daemon's mutable state; the bus module only forwards calls
//! to it and turns its [`Notice`]s into signals. A broken new config never replaces a working one.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::catalog::Catalog;
use crate::config::{self, Backend, Overrides, Settings};
use crate::launch::lifecycle::{Failure, Follow};
use crate::launch::{self, Event, Request, engine::Engine, record, record::Store};
use crate::sync;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Launch(#[from] launch::Error),
    #[error(transparent)]
    Sync(#[from] sync::Error),
    #[error("no launch with id {0:?}")]
    UnknownLaunch(String),
    #[error("{0}")]
    Invalid(String),
}

/// Something the bus should tell its clients.
#[derive(Debug, Clone)]
pub enum Notice {
    Launch(Event),
    Synced(Box<sync::Outcome>),
    SyncFailed,
    /// A desktop notification (shown only when a notification server runs).
    Desktop {
        summary: String,
        body: String,
    },
}

/// How the last sync went.
#[derive(Debug, Clone, Default)]
pub struct SyncStatus {
    /// Unix seconds; 0 before the first sync.
    pub finished_at: u64,
    pub result: String,
}

/// An app this daemon follows.
struct Live {
    backend: Backend,
    /// Asks the task that holds the app (its launch, then its follower) to stop it: that task
    /// knows what has been started so far (an engine client still pulling, say).
    stop: Arc<tokio::sync::Notify>,
}

/// The daemon's state.
pub struct Core {
    overrides: Overrides,
    settings: RwLock<Arc<Settings>>,
    /// The last good catalog, parsed once, so resolving a name in `Launch` costs no file I/O.
    catalog: RwLock<Option<Arc<Catalog>>>,
    last_sync: Mutex<SyncStatus>,
    /// One sync at a time; a second `Refresh()` waits for the first.
    sync_lock: tokio::sync::Mutex<()>,
    /// The apps this daemon started or adopted, by launch id, from the moment a launch has an
    /// id (so the end of the session stops one even while it starts) to its end.
    /// Invariant: whoever removes an entry records and signals that app's end, so it is
    /// signalled once.
    live: Mutex<HashMap<String, Live>>,
    notices: mpsc::UnboundedSender<Notice>,
    refresh_now: tokio::sync::Notify,
    /// The session's SAMP hub, and the shared network of its local apps.
    samp: Arc<crate::samp::session::Session>,
}

struct Forward(mpsc::UnboundedSender<Notice>);

impl launch::Observer for Forward {
    fn event(&self, event: Event) {
        let _ = self.0.send(Notice::Launch(event));
    }
}

impl Core {
    /// The daemon's state, and the notices for the bus to turn into signals.
    pub fn new(
        settings: Settings,
        overrides: Overrides,
    ) -> (Arc<Core>, mpsc::UnboundedReceiver<Notice>) {
        let (notices, receiver) = mpsc::unbounded_channel();
        let catalog = sync::read_cache(&settings)
            .ok()
            .map(|(catalog, _)| Arc::new(catalog));
        let tell = notices.clone();
        let samp = crate::samp::session::Session::new(Arc::new(move |summary, body| {
            let _ = tell.send(Notice::Desktop { summary, body });
        }));
        let core = Core {
            samp,
            overrides,
            settings: RwLock::new(Arc::new(settings)),
            catalog: RwLock::new(catalog),
            last_sync: Mutex::new(SyncStatus::default()),
            sync_lock: tokio::sync::Mutex::new(()),
            live: Mutex::new(HashMap::new()),
            notices,
            refresh_now: tokio::sync::Notify::new(),
        };
        (Arc::new(core), receiver)
    }

    pub fn settings(&self) -> Arc<Settings> {
        Arc::clone(&self.settings.read().expect("settings lock"))
    }

    fn notify(&self, notice: Notice) {
        let _ = self.notices.send(notice);
    }

    fn observer(&self) -> Arc<dyn launch::Observer> {
        Arc::new(Forward(self.notices.clone()))
    }

    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<String, Live>> {
        self.live.lock().expect("live lock")
    }

    /// Checks a request, gives it an id, and starts it in the background.
    pub async fn launch(self: &Arc<Self>, mut request: Request) -> Result<String, Error> {
        let started = Instant::now();
        let mut settings = self.settings();
        // The client's skaha service, when it named one (checked when the call was read).
        if let Some(url) = request.skaha_url.take() {
            tracing::info!(url, "launching on the skaha service the caller named");
            let mut own = (*settings).clone();
            own.skaha.url = Some(url);
            settings = Arc::new(own);
        }
        let catalog = self.catalog.read().expect("catalog lock").clone();
        let target = launch::resolve_in(catalog.as_deref(), &request.target)?;
        // A missing file is the caller's error, told before anything starts.
        request.files = launch::files::resolve(&request.files, Path::new("/"))?;
        let backend = launch::backend_of(&settings, &request);
        launch::check_backend(&settings, backend)?;
        let id = Store::new(settings.dirs.launch_state()).new_id();
        request.id = Some(id.clone());
        let stop = Arc::new(tokio::sync::Notify::new());
        self.live().insert(
            id.clone(),
            Live {
                backend,
                stop: Arc::clone(&stop),
            },
        );
        let core = Arc::clone(self);
        let launch_id = id.clone();
        tokio::spawn(async move {
            let id = launch_id;
            let app = target.label.clone();
            core.join_samp(&settings, backend, &mut request, &target.image)
                .await;
            let result = launch::launch_target(
                &settings,
                &request,
                target,
                started,
                core.observer(),
                stop.notified(),
            )
            .await;
            core.started(id, &app, result, stop);
        });
        Ok(id)
    }

    /// The daemon's launches are the session's: they get its SAMP hub. Local apps join the
    /// session's network; on skaha, only a platform desktop's apps (whose home the app pods
    /// share) have one.
    async fn join_samp(
        &self,
        settings: &Settings,
        backend: Backend,
        request: &mut Request,
        image: &str,
    ) {
        match backend {
            Backend::Skaha if config::in_platform_session() => {
                self.samp.platform(settings).await;
            }
            Backend::Skaha => {}
            kind => {
                let display = request
                    .display
                    .clone()
                    .or_else(|| std::env::var("DISPLAY").ok())
                    .unwrap_or_default();
                request.shared = self.samp.join(settings, kind, image, &display).await;
            }
        }
    }

    /// What follows a launch's start: the app followed to its end, or its failure signalled and
    /// told.
    fn started(
        self: &Arc<Self>,
        id: String,
        app: &str,
        result: Result<launch::Launched, Failure>,
        stop: Arc<tokio::sync::Notify>,
    ) {
        match result {
            Ok(launched) => {
                for body in launched.notices {
                    self.notify(Notice::Desktop {
                        summary: format!("{}: files not opened", crate::catalog::printable(app)),
                        body,
                    });
                }
                self.follow(launched.follow, stop);
            }
            // Stopped while it started: recorded as stopped, and its end is the Stop's.
            Err(Failure {
                error: launch::Error::Cancelled { .. },
                ..
            }) => {
                self.live().remove(&id);
                self.notify(Notice::Launch(Event::Exited { id, code: -1 }));
            }
            Err(Failure { error, follow }) => {
                let reason = error.to_string();
                tracing::warn!(id, "launch failed: {reason}");
                // An app that may run on (no window in time, a backend that was not sure)
                // is followed to its end; the others are over.
                match follow {
                    Some(follow) => self.follow(follow, stop),
                    None => {
                        self.live().remove(&id);
                    }
                }
                // The signal first: a slow notification server must not hold it up.
                let body = short_reason(&reason, Some(&id));
                self.notify(Notice::Launch(Event::Failed { id, reason }));
                self.notify(Notice::Desktop {
                    summary: format!("{} did not start", crate::catalog::printable(app)),
                    body,
                });
            }
        }
    }

    /// Follows an app to its end, then records and signals the end; or, asked through `stop`,
    /// stops it, records that and signals the end.
    fn follow(self: &Arc<Self>, mut follow: Follow, stop: Arc<tokio::sync::Notify>) {
        let id = follow.id().to_owned();
        let backend = follow.backend();
        self.live().entry(id.clone()).or_insert(Live {
            backend,
            stop: Arc::clone(&stop),
        });
        let core = Arc::clone(self);
        tokio::spawn(async move {
            let current = {
                let core = Arc::clone(&core);
                move || core.settings()
            };
            let end = tokio::select! {
                end = follow.ended(&current) => Some(end),
                () = stop.notified() => None,
            };
            match end {
                // Recorded first, then let go: whoever waits for it to go (the end of the
                // session) must find the record and the folder settled.
                Some(end) => {
                    follow.finish(end);
                    core.live().remove(&id);
                }
                None => {
                    let stopped = follow.stop().await;
                    core.live().remove(&id);
                    match stopped {
                        Ok(()) => core.notify(Notice::Launch(Event::Exited { id, code: -1 })),
                        Err(err) => tracing::warn!(id, "failed to stop: {err}"),
                    }
                }
            }
        });
    }

    /// The full id and the stop handle of the one app this daemon follows whose id starts with
    /// `id`.
    fn followed(&self, id: &str) -> Option<(String, Arc<tokio::sync::Notify>)> {
        let live = self.live();
        let mut found = live.iter().filter(|(full, _)| full.starts_with(id));
        match (found.next(), found.next()) {
            (Some((full, live)), None) => Some((full.clone(), Arc::clone(&live.stop))),
            _ => None,
        }
    }

    /// Waits until the app `id` is no longer followed (its end is recorded), within `bound`;
    /// false when the bound passed first.
    async fn gone(&self, id: &str, bound: Duration) -> bool {
        let deadline = Instant::now() + bound;
        while self.live().contains_key(id) {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        true
    }

    pub async fn stop(&self, id: &str) -> Result<(), Error> {
        // An app this daemon follows is stopped by the task that holds it, which knows what has
        // been started so far: a stopped launch is "stopped", and its folder goes only after its
        // container.
        if let Some((full, stop)) = self.followed(id) {
            stop.notify_one();
            if self.gone(&full, Duration::from_secs(30)).await {
                return Ok(());
            }
            return Err(Error::Invalid(format!(
                "launch {full} did not stop within 30 s (arcade ps shows where it stands)"
            )));
        }
        let settings = self.settings();
        match launch::stop(&settings, id).await {
            Ok(stopped) => {
                if let Some(end) = stopped.end {
                    launch::lifecycle::Lifecycle::resume(
                        &settings,
                        stopped.record,
                        self.observer(),
                    )
                    .finish(end);
                }
                Ok(())
            }
            Err(launch::Error::NotFound(_)) => Err(Error::UnknownLaunch(id.to_owned())),
            Err(err) => Err(err.into()),
        }
    }

    pub fn list(&self) -> Vec<launch::record::Record> {
        Store::new(self.settings().dirs.launch_state()).all()
    }

    pub fn last_sync(&self) -> SyncStatus {
        self.last_sync.lock().expect("sync status lock").clone()
    }

    /// Syncs the menu now, after any sync already running.
    pub async fn refresh(&self) -> Result<sync::Outcome, Error> {
        let _one_at_a_time = self.sync_lock.lock().await;
        let settings = self.settings();
        let result = sync::run(&settings, sync::Mode::default(), Arc::new(())).await;
        let mut status = self.last_sync.lock().expect("sync status lock");
        status.finished_at = launch::record::now();
        match result {
            Ok(outcome) => {
                status.result = format!(
                    "ok: {} in {} from {} ({} written)",
                    crate::text::count(outcome.entries, "entry", "entries"),
                    crate::text::count(outcome.projects, "project", "projects"),
                    outcome.url,
                    crate::text::count(outcome.written, "file", "files")
                );
                drop(status);
                *self.catalog.write().expect("catalog lock") = sync::read_cache(&settings)
                    .ok()
                    .map(|(catalog, _)| Arc::new(catalog));
                tracing::info!(
                    written = outcome.written,
                    added = outcome.added_entries,
                    removed = outcome.removed_entries,
                    "menu synced"
                );
                self.notify(Notice::Synced(Box::new(outcome.clone())));
                Ok(outcome)
            }
            Err(err) => {
                status.result = format!("error: {err}");
                drop(status);
                tracing::warn!("menu sync failed, the previous menu stays: {err}");
                self.notify(Notice::SyncFailed);
                Err(err.into())
            }
        }
    }

    /// Re-reads the configuration; a broken one is reported and the current one kept.
    fn reload(&self) -> bool {
        match config::load(&self.overrides) {
            Ok(settings) => {
                *self.settings.write().expect("settings lock") = Arc::new(settings);
                tracing::info!("configuration reloaded");
                true
            }
            Err(err) => {
                tracing::warn!("keeping the previous configuration: {err}");
                self.notify(Notice::Desktop {
                    summary: "arcade kept its previous configuration".to_owned(),
                    body: err.to_string(),
                });
                false
            }
        }
    }

    /// The local apps this daemon follows: launch ids and engines.
    fn running_local(&self) -> Vec<(String, Backend)> {
        self.live()
            .iter()
            .filter(|(_, live)| live.backend != Backend::Skaha)
            .map(|(id, live)| (id.clone(), live.backend))
            .collect()
    }

    /// Finds this user's arcade apps that still run (from an earlier daemon, or launched
    /// without one) and follows them like its own.
    async fn adopt(self: &Arc<Self>) {
        let settings = self.settings();
        // SAFETY: getuid only reads the process's credentials.
        let uid = unsafe { libc::getuid() };
        // Only this session's apps: those on this daemon's display. Without one, another
        // session's apps cannot be told from ours, and none is adopted (or stopped).
        let Some(display) = std::env::var("DISPLAY").ok().filter(|d| !d.is_empty()) else {
            tracing::info!("no DISPLAY: adopting no running apps, which may be another session's");
            return self.follow_skaha_records(&settings);
        };
        // The containers each engine that answered still has, by launch id.
        let mut listed_containers = Vec::new();
        for kind in [Backend::Podman, Backend::Docker] {
            let Ok(engine) = Engine::find(kind, &settings) else {
                continue;
            };
            let Ok(containers) = engine.list_on(uid, &display).await else {
                continue;
            };
            listed_containers.push((
                kind,
                containers
                    .iter()
                    .map(|(id, _)| id.clone())
                    .collect::<Vec<_>>(),
            ));
            for (id, state) in containers {
                // Launches this daemon took since it began serving are followed already.
                if state != "running" || self.live().contains_key(&id) {
                    continue;
                }
                tracing::info!(id, "adopting a running app");
                match launch::follow_container(&settings, kind, &id, self.observer()) {
                    Ok(follow) => self.follow(follow, Arc::default()),
                    Err(err) => tracing::warn!(id, "cannot follow the app: {err}"),
                }
            }
        }
        record_unseen_ends(&settings, &display, listed_containers, |id| {
            self.live().contains_key(id)
        });
        self.follow_skaha_records(&settings);
    }

    /// Follows the apps on skaha that have not ended, launched by an earlier daemon or without
    /// one.
    fn follow_skaha_records(self: &Arc<Self>, settings: &Settings) {
        let store = Store::new(settings.dirs.launch_state());
        for record in store.all() {
            if record.backend == Backend::Skaha
                && !record.state.is_finished()
                && !self.live().contains_key(&record.id)
            {
                tracing::info!(id = record.id, "following an app on skaha");
                match launch::follow_recorded(settings, record, self.observer()) {
                    Ok(follow) => self.follow(follow, Arc::default()),
                    Err(err) => tracing::warn!("cannot follow an app on skaha: {err}"),
                }
            }
        }
    }
}

/// A failure as a notification says it: the first clause of the reason, cut short, and where
/// to read the rest (`arcade logs ID`, when the launch got as far as having a log). The
/// daemon's notifications and those of a menu click launched without it say it alike.
pub fn short_reason(reason: &str, log_of: Option<&str>) -> String {
    const MOST: usize = 120;
    let first = reason.split("; ").next().unwrap_or(reason);
    let mut text: String = first.chars().take(MOST).collect();
    if first.chars().count() > MOST {
        text.push('…');
    }
    match log_of {
        Some(id) => format!("{text}\narcade logs {id}"),
        None => text,
    }
}

/// Records the ends nobody saw: local apps launched without a daemon were followed by nobody
/// once their window mapped, so one of this display whose container has long gone (listed by
/// none of the engines that answered) ended unseen, and now that is known.
fn record_unseen_ends(
    settings: &Settings,
    display: &str,
    listed_containers: Vec<(Backend, Vec<String>)>,
    followed: impl Fn(&str) -> bool,
) {
    let store = Store::new(settings.dirs.launch_state());
    for (kind, listed) in listed_containers {
        for record in store.all() {
            if record.backend == kind
                && record.display == display
                && !record.state.is_finished()
                && !listed.contains(&record.id)
                && !followed(&record.id)
                && record::now().saturating_sub(record.started_at) > settle_after(settings)
            {
                tracing::info!(
                    id = record.id,
                    "recording the end of an app that ended unseen"
                );
                launch::lifecycle::Lifecycle::resume(settings, record, Arc::new(()))
                    .finish(launch::app::End::Exited(-1));
            }
        }
    }
}

/// How long a launch may take before its container must exist: its window wait and skaha's
/// poll time (a pull can take that long).
fn settle_after(settings: &Settings) -> u64 {
    settings.launch.wait.as_secs() + settings.skaha.poll_timeout.as_secs()
}

/// Runs the daemon until the session ends: SIGTERM, SIGINT, or `session_end` (the session bus
/// going away). The caller serves `core` on the bus first.
pub async fn run(core: Arc<Core>, session_end: impl Future<Output = ()>) -> anyhow::Result<()> {
    core.adopt().await;
    // The shared network of apps an earlier daemon of this session left running gets a hub
    // again; one they have all left goes.
    if let Ok(display) = std::env::var("DISPLAY") {
        let core = Arc::clone(&core);
        let running = !core.running_local().is_empty();
        tokio::spawn(async move {
            let settings = core.settings();
            core.samp.resume(&settings, &display, running).await;
        });
    }
    // A platform desktop's apps may be started by any launcher, not only through arcade: the
    // desktop's hub is there from the start, where their pods look for it (`~/.samp`).
    if config::in_platform_session() {
        let core = Arc::clone(&core);
        tokio::spawn(async move { core.samp.platform(&core.settings()).await });
    }

    tokio::spawn(schedule(Arc::clone(&core)));
    let watcher = tokio::spawn(watch(Arc::clone(&core)));

    let reason = tokio::select! {
        _ = signal(tokio::signal::unix::SignalKind::terminate()) => "SIGTERM",
        _ = signal(tokio::signal::unix::SignalKind::interrupt()) => "SIGINT",
        _ = session_end => "the session bus went away",
    };
    tracing::info!("stopping: {reason}");
    watcher.abort();
    let stop_apps = core.settings().daemon.stop_apps_on_exit;
    if stop_apps {
        stop_all(&core).await;
    }
    // Apps left running keep their shared network (a pod removed would take them with it).
    core.samp.end(!stop_apps).await;
    Ok(())
}

async fn signal(kind: tokio::signal::unix::SignalKind) {
    match tokio::signal::unix::signal(kind) {
        Ok(mut stream) => {
            stream.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

/// Stops the local apps this daemon runs, all at once, within a bound.
/// Stops the local apps this daemon runs, all at once, and waits (within a bound) for their
/// ends to be recorded, so no folder or record outlives the session: launches still starting
/// stop themselves, running containers are stopped and their followers record the end.
async fn stop_all(core: &Core) {
    let running = core.running_local();
    if running.is_empty() {
        return;
    }
    tracing::info!(n = running.len(), "stopping the apps of this session");
    for (id, _) in &running {
        if let Some((_, stop)) = core.followed(id) {
            stop.notify_one();
        }
    }
    let ended = async {
        for (id, _) in &running {
            core.gone(id, Duration::from_secs(20)).await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(20), ended).await;
}

/// Syncs at start, then every refresh interval (±10 % jitter, so a cluster of desktops does not
/// hit the registry in step), or at once when asked. Sleeps in between: no periodic wake-ups.
async fn schedule(core: Arc<Core>) {
    loop {
        let _ = core.refresh().await;
        let next = next_refresh(core.settings().daemon.refresh);
        tokio::select! {
            _ = tokio::time::sleep(next) => {}
            _ = core.refresh_now.notified() => {}
        }
    }
}

/// The wait before the next scheduled refresh: the interval, give or take 10 %.
fn next_refresh(interval: Duration) -> Duration {
    interval - interval / 10 + crate::http::jitter(interval / 5)
}

/// The files whose change means "reload": the config files and the credential, CA and catalog
/// files they name.
fn watched_files(settings: &Settings) -> BTreeSet<PathBuf> {
    let mut files: BTreeSet<PathBuf> = settings
        .dirs
        .config_dirs
        .iter()
        .map(|dir| dir.join("arcade/config.toml"))
        .collect();
    files.insert(settings.dirs.user_config_file());
    // The files read, so the one `--config` or `ARCADE_CONFIG` names is among them.
    files.extend(settings.files.iter().cloned());
    files.extend(settings.ca_file.clone());
    files.extend(settings.catalog.clone());
    files.extend(settings.secret_files.iter().cloned());
    files
}

/// Watches the folders holding the watched files (so editors that save by renaming, and
/// Kubernetes-style `..data` symlink swaps, are seen), reloading after changes settle.
async fn watch(core: Arc<Core>) {
    use notify::Watcher as _;
    loop {
        let files = watched_files(&core.settings());
        let (sender, mut events) = mpsc::unbounded_channel();
        let mut watcher = match notify::recommended_watcher(move |event| {
            let _ = sender.send(event);
        }) {
            Ok(watcher) => watcher,
            Err(err) => {
                tracing::warn!("cannot watch the config files: {err}");
                return;
            }
        };
        let mut dirs = BTreeSet::new();
        for file in &files {
            for path in [Some(file.clone()), std::fs::canonicalize(file).ok()]
                .into_iter()
                .flatten()
            {
                if let Some(dir) = path.parent() {
                    dirs.insert(dir.to_owned());
                }
            }
        }
        for dir in &dirs {
            // A folder that does not exist yet cannot be watched; its parent usually can.
            let target = nearest_existing(dir);
            if let Err(err) = watcher.watch(&target, notify::RecursiveMode::NonRecursive) {
                tracing::debug!(dir = %target.display(), "cannot watch: {err}");
            }
        }
        let names: BTreeSet<std::ffi::OsString> = files
            .iter()
            .chain(dirs.iter())
            .filter_map(|path| path.file_name().map(ToOwned::to_owned))
            .collect();
        if !changed_and_settled(&mut events, &names).await {
            return;
        }
        drop(watcher);
        if core.reload() {
            core.refresh_now.notify_one();
        }
    }
}

/// Waits for a change to one of the watched `names` (or a Kubernetes `..data` swap), then for
/// the burst to settle; false when the watcher is gone.
async fn changed_and_settled(
    events: &mut mpsc::UnboundedReceiver<notify::Result<notify::Event>>,
    names: &BTreeSet<std::ffi::OsString>,
) -> bool {
    const SETTLE: Duration = Duration::from_millis(300);
    let relevant = |event: &notify::Result<notify::Event>| match event {
        // Reading a file (our own syncs read the catalog) is no change.
        Ok(event)
            if matches!(
                event.kind,
                notify::EventKind::Access(
                    notify::event::AccessKind::Open(_)
                        | notify::event::AccessKind::Read
                        | notify::event::AccessKind::Close(notify::event::AccessMode::Read)
                )
            ) =>
        {
            false
        }
        Ok(event) => event.paths.iter().any(|path| {
            path.file_name().is_some_and(|name| {
                names.contains(name) || name.to_string_lossy().starts_with("..")
            })
        }),
        Err(_) => true,
    };
    loop {
        match events.recv().await {
            Some(event) if relevant(&event) => {
                tracing::debug!(?event, "a watched file changed");
                break;
            }
            Some(_) => continue,
            None => return false,
        }
    }
    // Others reading the files (every `arcade` command reads the config) is no change, so
    // only relevant events keep the burst open.
    let mut last_change = Instant::now();
    while let Some(left) = SETTLE.checked_sub(last_change.elapsed()) {
        match tokio::time::timeout(left, events.recv()).await {
            Ok(Some(event)) if relevant(&event) => last_change = Instant::now(),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    true
}

fn nearest_existing(dir: &Path) -> PathBuf {
    let mut dir = dir.to_owned();
    while !dir.exists() {
        match dir.parent() {
            Some(parent) => dir = parent.to_owned(),
            None => break,
        }
    }
    dir
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refreshes_are_spread_around_the_interval() {
        let interval = Duration::from_secs(30 * 60);
        let waits: Vec<Duration> = (0..500).map(|_| next_refresh(interval)).collect();
        for wait in &waits {
            assert!(
                *wait >= interval * 9 / 10 && *wait <= interval * 11 / 10,
                "{wait:?}"
            );
        }
        // Spread, not in step: some early, some late.
        assert!(waits.iter().any(|wait| *wait < interval - interval / 20));
        assert!(waits.iter().any(|wait| *wait > interval + interval / 20));
    }
}
