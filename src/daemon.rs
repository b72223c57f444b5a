//! The per-session daemon: launches on request without blocking, keeps the menu fresh (on a
//! schedule with jitter, on `Refresh()`, and when config or credential files change), and stops
//! the containers it started when the session ends.
//!
//! [`Core`] is the single owner of the daemon's mutable state; the bus module only forwards calls
//! to it and turns its [`Notice`]s into signals. A broken new config never replaces a working one.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::catalog::Catalog;
use crate::config::{self, Backend, Overrides, Settings};
use crate::launch::{self, Event, Request, engine::Engine, record::Store};
use crate::sync;

/// Checks of a skaha app in a row that may fail before the daemon stops following it: at the
/// default 15 s apart, ten minutes of a refusing or absent service.
const FOLLOW_FAILURES: u32 = 40;

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

/// The daemon's state.
pub struct Core {
    overrides: Overrides,
    settings: RwLock<Arc<Settings>>,
    /// The last good catalog, parsed once, so resolving a name in `Launch` costs no file I/O.
    catalog: RwLock<Option<Arc<Catalog>>>,
    last_sync: Mutex<SyncStatus>,
    /// One sync at a time; a second `Refresh()` waits for the first.
    sync_lock: tokio::sync::Mutex<()>,
    /// Local containers this daemon started or adopted, stopped when the session ends.
    started: Mutex<HashMap<String, (Backend, String)>>,
    /// Launches on skaha being followed to their end, by id.
    followed: Mutex<HashSet<String>>,
    notices: mpsc::UnboundedSender<Notice>,
    refresh_now: tokio::sync::Notify,
}

struct Forward(mpsc::UnboundedSender<Notice>);

impl launch::Observer for Forward {
    fn event(&self, event: Event) {
        let _ = self.0.send(Notice::Launch(event));
    }
}

impl Core {
    pub fn new(
        settings: Settings,
        overrides: Overrides,
        notices: mpsc::UnboundedSender<Notice>,
    ) -> Core {
        let catalog = sync::read_cache(&settings)
            .ok()
            .map(|(catalog, _)| Arc::new(catalog));
        Core {
            overrides,
            settings: RwLock::new(Arc::new(settings)),
            catalog: RwLock::new(catalog),
            last_sync: Mutex::new(SyncStatus::default()),
            sync_lock: tokio::sync::Mutex::new(()),
            started: Mutex::new(HashMap::new()),
            followed: Mutex::new(HashSet::new()),
            notices,
            refresh_now: tokio::sync::Notify::new(),
        }
    }

    pub fn settings(&self) -> Arc<Settings> {
        Arc::clone(&self.settings.read().expect("settings lock"))
    }

    fn notify(&self, notice: Notice) {
        let _ = self.notices.send(notice);
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
        let backend = launch::backend_of(&settings, &request);
        match backend {
            Backend::Skaha => {
                launch::platform::client(&settings)?;
            }
            kind => {
                Engine::find(kind).map_err(launch::Error::EngineMissing)?;
            }
        }
        let store = Store::new(settings.dirs.launch_state());
        let id = store.new_id();
        request.id = Some(id.clone());
        // Known from now on, so the end of the session stops it even while it still starts.
        if backend != Backend::Skaha {
            self.started
                .lock()
                .expect("started lock")
                .insert(id.clone(), (backend, format!("arcade-{id}")));
        }
        let core = Arc::clone(self);
        let app = target.label.clone();
        tokio::spawn(async move {
            let observer: Arc<dyn launch::Observer> = Arc::new(Forward(core.notices.clone()));
            let result =
                launch::launch_target(&settings, &request, target, started, observer).await;
            let id = request.id.clone().unwrap_or_default();
            match result {
                Ok(launched) => match launched.child {
                    Some(mut child) => {
                        let code = child
                            .wait()
                            .await
                            .ok()
                            .and_then(|status| status.code())
                            .unwrap_or(-1);
                        core.finished(&id, code);
                    }
                    None if backend == Backend::Skaha => {
                        Arc::clone(&core).follow_skaha(launched.record);
                    }
                    None => {
                        core.started.lock().expect("started lock").remove(&id);
                    }
                },
                Err(err) => {
                    let reason = err.to_string();
                    tracing::warn!(id, "launch failed: {reason}");
                    // A launch that got as far as starting its container left a record.
                    let started_container = backend != Backend::Skaha
                        && Store::new(settings.dirs.launch_state())
                            .load(&id)
                            .is_some_and(|record| !record.state.is_finished());
                    match err {
                        // The container runs on, without a window yet or without our watch:
                        // follow it by its name until it ends.
                        launch::Error::NoWindow { .. } | launch::Error::X(_)
                            if started_container =>
                        {
                            Arc::clone(&core).follow_container(backend, id.clone());
                        }
                        // Accepted by skaha but not seen up (no window in time, still pending
                        // at the deadline): it may run on, so follow it there.
                        _ if backend == Backend::Skaha => {
                            let store = Store::new(settings.dirs.launch_state());
                            if let Some(record) = store.load(&id) {
                                Arc::clone(&core).follow_skaha(record);
                            }
                        }
                        _ => {
                            core.started.lock().expect("started lock").remove(&id);
                        }
                    }
                    core.notify(Notice::Launch(Event::Failed {
                        id,
                        reason: reason.clone(),
                    }));
                    core.notify(Notice::Desktop {
                        summary: format!("{app} did not start"),
                        body: reason,
                    });
                }
            }
        });
        Ok(id)
    }

    /// Follows a container by name (one this daemon did not start the client of, or lost the
    /// window of) until it exits.
    fn follow_container(self: Arc<Self>, kind: Backend, id: String) {
        tokio::spawn(async move {
            let Ok(engine) = Engine::find(kind) else {
                return;
            };
            let name = format!("arcade-{id}");
            // `wait` prints the exit code once the container exits.
            let code = engine
                .output(["wait", name.as_str()])
                .await
                .ok()
                .and_then(|text| text.trim().parse().ok())
                .unwrap_or(-1);
            self.finished(&id, code);
        });
    }

    /// Follows an app on skaha until skaha reports it over or no longer has it, so that its end
    /// is recorded and signalled as a local app's is. It asks every `skaha.watch_secs` and only
    /// while such an app runs: an idle daemon does not wake. One follower per app; whichever of
    /// it and `Stop` ends the app first signals the end (see [`Core::unfollow`]).
    fn follow_skaha(self: Arc<Self>, record: launch::record::Record) {
        let (Some(session), Some(app_id)) = (record.session_id.clone(), record.app_id.clone())
        else {
            return;
        };
        if record.state.is_finished()
            || !self
                .followed
                .lock()
                .expect("followed lock")
                .insert(record.id.clone())
        {
            return;
        }
        tokio::spawn(async move {
            let id = record.id.clone();
            let mut failures = 0;
            loop {
                // The settings of the moment: a renewed token or certificate applies.
                let settings = self.settings();
                tokio::time::sleep(settings.skaha.watch).await;
                if !self.followed.lock().expect("followed lock").contains(&id) {
                    return;
                }
                let asked =
                    match launch::platform::client_at(&settings, record.skaha_url.as_deref()) {
                        Ok(skaha) => skaha.app(&session, &app_id).await.map_err(|err| {
                            let gone = matches!(err, crate::skaha::Error::NoSuchApp { .. });
                            (gone, err.to_string())
                        }),
                        Err(err) => Err((false, err.to_string())),
                    };
                let status = match asked {
                    Ok(app) => app.status.unwrap_or_default().to_ascii_lowercase(),
                    Err((true, _)) => "gone".to_owned(),
                    Err((false, message)) => {
                        failures += 1;
                        // Busy or briefly away is worth asking again; refusing for ten
                        // minutes is not.
                        if failures >= FOLLOW_FAILURES {
                            tracing::warn!(
                                id,
                                "stopped following the app on skaha after {failures} failed \
                                 checks: {message}"
                            );
                            self.unfollow(&id);
                            return;
                        }
                        tracing::debug!(id, "failed to ask skaha about the app: {message}");
                        continue;
                    }
                };
                failures = 0;
                match status.as_str() {
                    "running" => self.mark_running(&settings, &id),
                    "completed" | "succeeded" => {
                        if self.unfollow(&id) {
                            self.finished(&id, 0);
                        }
                        return;
                    }
                    // Deleted by someone else, or gone from skaha's list: the code is unknown.
                    "gone" | "terminating" => {
                        if self.unfollow(&id) {
                            self.finished(&id, -1);
                        }
                        return;
                    }
                    "failed" | "error" => {
                        if self.unfollow(&id) {
                            let reason = format!(
                                "{} ended: skaha reports app {app_id} {status}",
                                record.app
                            );
                            self.failed(&id, reason);
                        }
                        return;
                    }
                    _ => {}
                }
            }
        });
    }

    /// Ends the following of an app; true for the one caller that ended it, who signals the end.
    fn unfollow(&self, id: &str) -> bool {
        self.followed.lock().expect("followed lock").remove(id)
    }

    /// Records an app that skaha now reports running (one launched with `no-wait`, say).
    fn mark_running(&self, settings: &Settings, id: &str) {
        let store = Store::new(settings.dirs.launch_state());
        if let Some(mut record) = store.load(id)
            && record.state == launch::record::State::Starting
        {
            record.state = launch::record::State::Running;
            let _ = store.save(&record);
        }
    }

    /// Records and signals an app that ended in failure after it had started.
    fn failed(&self, id: &str, reason: String) {
        let settings = self.settings();
        launch::remove_launch_dir(&settings, id);
        let store = Store::new(settings.dirs.launch_state());
        if let Some(mut record) = store.load(id)
            && !record.state.is_finished()
        {
            record.state = launch::record::State::Failed;
            record.message = Some(reason.clone());
            let _ = store.save(&record);
        }
        tracing::warn!(id, "{reason}");
        self.notify(Notice::Launch(Event::Failed {
            id: id.to_owned(),
            reason,
        }));
    }

    fn finished(&self, id: &str, code: i32) {
        self.started.lock().expect("started lock").remove(id);
        let settings = self.settings();
        launch::remove_launch_dir(&settings, id);
        let store = Store::new(settings.dirs.launch_state());
        if let Some(mut record) = store.load(id)
            && !record.state.is_finished()
        {
            record.state = launch::record::State::Exited;
            record.exit_code = Some(code);
            let _ = store.save(&record);
        }
        self.notify(Notice::Launch(Event::Exited {
            id: id.to_owned(),
            code,
        }));
    }

    pub async fn stop(&self, id: &str) -> Result<(), Error> {
        let settings = self.settings();
        match launch::stop(&settings, id).await {
            Ok(record) => {
                self.started
                    .lock()
                    .expect("started lock")
                    .remove(&record.id);
                // A local app's end is signalled when its engine client exits; a skaha app's
                // here, unless its follower saw it end first.
                if self.unfollow(&record.id) {
                    self.notify(Notice::Launch(Event::Exited {
                        id: record.id.clone(),
                        code: -1,
                    }));
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
                    "ok: {} entries in {} projects from {} ({} files written)",
                    outcome.entries, outcome.projects, outcome.url, outcome.written
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

    /// Local containers started by this daemon that are still running.
    fn running_local(&self) -> Vec<(Backend, String)> {
        self.started
            .lock()
            .expect("started lock")
            .values()
            .cloned()
            .collect()
    }

    /// Finds this user's arcade containers that still run (from an earlier daemon) and follows
    /// them like its own.
    async fn adopt(self: &Arc<Self>) {
        let settings = self.settings();
        let store = Store::new(settings.dirs.launch_state());
        // SAFETY: getuid only reads the process's credentials.
        let uid = unsafe { libc::getuid() };
        for kind in [Backend::Podman, Backend::Docker] {
            let Ok(engine) = Engine::find(kind) else {
                continue;
            };
            let Ok(containers) = engine.list(uid).await else {
                continue;
            };
            for (id, state) in containers {
                // Launches this daemon took since it began serving are followed already.
                if state != "running"
                    || self.started.lock().expect("started lock").contains_key(&id)
                {
                    continue;
                }
                let name = format!("arcade-{id}");
                tracing::info!(id, "adopting a running app");
                if let Some(mut record) = store.load(&id) {
                    record.state = launch::record::State::Running;
                    let _ = store.save(&record);
                }
                self.started
                    .lock()
                    .expect("started lock")
                    .insert(id.clone(), (kind, name));
                Arc::clone(self).follow_container(kind, id);
            }
        }
        // Apps on skaha that have not ended, launched by an earlier daemon or without one.
        for record in store.all() {
            if record.backend == Backend::Skaha.to_string() && !record.state.is_finished() {
                tracing::info!(id = record.id, "following an app on skaha");
                Arc::clone(self).follow_skaha(record);
            }
        }
    }
}

/// Runs the daemon until the session ends.
pub async fn run(settings: Settings, overrides: Overrides) -> anyhow::Result<()> {
    let (sender, receiver) = mpsc::unbounded_channel();
    let core = Arc::new(Core::new(settings, overrides, sender));
    let connection = match crate::bus::serve(Arc::clone(&core), receiver).await {
        Ok(connection) => connection,
        Err(zbus::Error::NameTaken) => anyhow::bail!(
            "another arcade daemon already owns {} on this session bus",
            crate::bus::NAME
        ),
        Err(err) => {
            return Err(anyhow::Error::new(err).context("failed to serve on the session bus"));
        }
    };
    tracing::info!(name = crate::bus::NAME, "serving on the session bus");
    core.adopt().await;

    tokio::spawn(schedule(Arc::clone(&core)));
    let watcher = tokio::spawn(watch(Arc::clone(&core)));

    let reason = tokio::select! {
        _ = signal(tokio::signal::unix::SignalKind::terminate()) => "SIGTERM",
        _ = signal(tokio::signal::unix::SignalKind::interrupt()) => "SIGINT",
        _ = crate::bus::closed(&connection) => "the session bus went away",
    };
    tracing::info!("stopping: {reason}");
    watcher.abort();
    if core.settings().daemon.stop_apps_on_exit {
        stop_all(&core).await;
    }
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
async fn stop_all(core: &Core) {
    let running = core.running_local();
    if running.is_empty() {
        return;
    }
    tracing::info!(n = running.len(), "stopping the apps of this session");
    let stops = running.into_iter().map(|(kind, name)| async move {
        if let Ok(engine) = Engine::find(kind)
            && let Err(err) = engine.stop(&name).await
        {
            tracing::warn!(container = name, "failed to stop: {err}");
        }
    });
    let _ = tokio::time::timeout(
        Duration::from_secs(15),
        futures_util::future::join_all(stops),
    )
    .await;
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
    const SETTLE: Duration = Duration::from_millis(300);
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
        // Wait for a relevant change, then for the burst to settle.
        loop {
            match events.recv().await {
                Some(event) if relevant(&event) => {
                    tracing::debug!(?event, "a watched file changed");
                    break;
                }
                Some(_) => continue,
                None => return,
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
        drop(watcher);
        if core.reload() {
            core.refresh_now.notify_one();
        }
    }
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
