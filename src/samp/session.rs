//! The daemon's side of SAMP: each desktop session's shared network and the hub process that
//! serves it, from the session's first app to the session's end.
//!
//! - **Local apps** (podman, docker) join one network namespace that has only a loopback (a
//!   podman pod sharing only its network; for docker, a holder container whose network the
//!   apps join), so the outside stays closed unless `launch.network` opens it. The hub runs in
//!   that namespace on 127.0.0.1, and its lockfile sits in a per-session folder mounted
//!   read-only into every app, which finds it through `SAMP_HUB=std-lockurl:`.
//! - **Platform apps** (skaha) run in pods of their own, at their own addresses, sharing the
//!   user's home with the desktop: the hub listens on the desktop's address and writes
//!   `~/.samp`, where every client looks by default, and translates clients' callback URLs.
//!
//! The hub is `arcade samp hub`, a child process: it sits in the pod's network namespace
//! (entered before it runs), ends when its stdin closes (so it never outlives the daemon), and
//! reports on stdout, which the daemon reads to tell the user. A hub that dies is restarted, a
//! few times at most. Nothing here ever holds up an app's start beyond a bounded wait: when
//! SAMP cannot be had, the app starts as before, alone, and the user is told.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use tokio::io::AsyncBufReadExt as _;

use super::Notice;
use super::lockfile::Lockfile;
use super::status::Status;
use crate::config::{Backend, Settings};
use crate::launch::engine::{self, Engine, SessionNet};

/// Where apps find the session folder.
pub const MOUNT: &str = "/run/arcade-samp";

/// How long a hub may take to say it is ready.
const READY_WITHIN: Duration = Duration::from_secs(15);

/// How long an app's start may wait for its session's network and hub, all told.
const JOIN_WITHIN: Duration = Duration::from_secs(30);

/// How many times a hub is restarted within [`RESTART_WINDOW`] before the session does without.
const MOST_RESTARTS: usize = 3;
const RESTART_WINDOW: Duration = Duration::from_secs(300);

/// Tells the user something (a desktop notification): a summary and a body.
pub type Tell = Arc<dyn Fn(String, String) + Send + Sync>;

/// The session's SAMP: at most one local network with its hub, and one platform hub.
pub struct Session {
    state: tokio::sync::Mutex<State>,
    tell: Tell,
    /// Hubs that ended, for the task that restarts them: a hub's own watch task cannot, as its
    /// future would then contain itself.
    ended_hubs: tokio::sync::mpsc::UnboundedSender<Ended>,
}

/// A hub that ended: how it was started, its process, and how it ended.
type Ended = (HubSpec, u32, std::io::Result<std::process::ExitStatus>);

#[derive(Default)]
struct State {
    local: Option<Local>,
    platform: Option<HubProcess>,
    restarts: Vec<Instant>,
    /// What the user has been told already: a failure that repeats at every launch is said
    /// once.
    told: std::collections::HashSet<String>,
    /// Set once the session ends: nothing starts or restarts after.
    ended: bool,
}

/// The local apps' shared network and its hub.
struct Local {
    engine: Engine,
    /// The pod (podman) or the holder container (docker).
    holder: String,
    /// The session folder: lockfile, status, the hub's log.
    dir: PathBuf,
    app_user: (u32, u32),
    hub: Option<HubProcess>,
}

/// A hub process and how to start it again.
struct HubProcess {
    spec: HubSpec,
    pid: u32,
    url: String,
    /// Closing it ends the hub.
    stdin: Option<tokio::process::ChildStdin>,
    /// Ends when the hub has ended.
    ended: tokio::sync::watch::Receiver<bool>,
}

/// Everything needed to (re)start a hub.
#[derive(Clone)]
struct HubSpec {
    which: Which,
    args: Vec<String>,
    /// The network namespace to run it in (`/proc/PID/ns/net` of the network's holder).
    netns: Option<PathBuf>,
    /// Rootless podman: the namespace is reached through `podman unshare`.
    unshare: Option<Engine>,
    log: PathBuf,
    lockfile: PathBuf,
}

impl HubSpec {
    /// The hub's saved state, which it carries on from when started again.
    fn state_file(&self) -> Option<PathBuf> {
        self.args
            .iter()
            .find_map(|arg| arg.strip_prefix("--state="))
            .map(PathBuf::from)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    Local,
    Platform,
}

/// Why SAMP could not be had, said once to the user.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Engine(#[from] engine::Error),
    #[error("failed to {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the SAMP hub did not start: {0}")]
    Hub(String),
    #[error("{0}")]
    Unsupported(String),
}

impl Session {
    /// The session's SAMP, with the task that restarts hubs that die. Needs a tokio runtime.
    pub fn new(tell: Tell) -> Arc<Session> {
        let (ended_hubs, mut ended) = tokio::sync::mpsc::unbounded_channel::<Ended>();
        let session = Arc::new(Session {
            state: tokio::sync::Mutex::default(),
            tell,
            ended_hubs,
        });
        let weak = Arc::downgrade(&session);
        tokio::spawn(async move {
            while let Some((spec, pid, status)) = ended.recv().await {
                Session::hub_ended(weak.clone(), spec, pid, status).await;
            }
        });
        session
    }

    /// The shared network and SAMP folder a local launch of `image` on `display` joins, made
    /// (with its hub) on the session's first app; `None` when SAMP is off, or could not be
    /// had (then the app runs alone, as before, and the user is told).
    pub async fn join(
        self: &Arc<Self>,
        settings: &Settings,
        kind: Backend,
        image: &str,
        display: &str,
    ) -> Option<SessionNet> {
        if !settings.samp.enabled || kind == Backend::Skaha {
            return None;
        }
        let mut state = self.state.lock().await;
        if state.ended {
            return None;
        }
        let joined = tokio::time::timeout(
            JOIN_WITHIN,
            self.local(&mut state, settings, kind, image, display),
        )
        .await
        .unwrap_or_else(|_| {
            Err(Error::Hub(format!(
                "the session's network and hub were not ready within {} s",
                JOIN_WITHIN.as_secs()
            )))
        });
        match joined {
            Ok(net) => Some(net),
            Err(err) => {
                tracing::warn!("SAMP for this session: {err}");
                if state.told.insert(err.to_string()) {
                    (self.tell)(
                        "Apps cannot message each other (SAMP)".to_owned(),
                        format!("{err}; this app starts on its own"),
                    );
                }
                None
            }
        }
    }

    async fn local(
        self: &Arc<Self>,
        state: &mut State,
        settings: &Settings,
        kind: Backend,
        image: &str,
        display: &str,
    ) -> Result<SessionNet, Error> {
        if let Some(local) = &state.local
            && local.engine.kind != kind
        {
            return Err(Error::Unsupported(format!(
                "this session's apps share a {} network; {kind} apps cannot join it",
                local.engine.kind
            )));
        }
        if state.local.is_none() {
            state.local = Some(make_network(settings, kind, image, display).await?);
        }
        let local = state.local.as_mut().expect("made above");
        let running = local.hub.as_ref().is_some_and(|hub| !*hub.ended.borrow());
        if !running {
            let spec = local_spec(local).await?;
            local.hub = Some(self.start(spec).await?);
        }
        Ok(SessionNet {
            holder: local.holder.clone(),
            volumes: vec![format!("{}:{MOUNT}:ro", local.dir.display())],
            env: vec![(
                "SAMP_HUB".to_owned(),
                format!("std-lockurl:file://{MOUNT}/lockfile"),
            )],
        })
    }

    /// After a daemon restart: the shared network an earlier daemon of this session (on
    /// `display`) left. With apps still running in it (adopted), it gets a hub again; without,
    /// it goes, with its folder.
    pub async fn resume(self: &Arc<Self>, settings: &Settings, display: &str, apps_running: bool) {
        let mut state = self.state.lock().await;
        if state.ended || state.local.is_some() {
            return;
        }
        let key = key(display);
        let holder = engine::session_network_name(&key);
        for kind in [Backend::Podman, Backend::Docker] {
            let Ok(engine) = Engine::find(kind, settings) else {
                continue;
            };
            let exists = match kind {
                Backend::Docker => {
                    engine
                        .output(["inspect", "--format", "{{.Id}}", &holder])
                        .await
                }
                _ => engine.output(["pod", "exists", &holder]).await,
            };
            if exists.is_err() {
                continue;
            }
            let local = Local {
                engine,
                holder: holder.clone(),
                dir: folder(settings, &key),
                app_user: engine::app_user(&settings.launch.user).unwrap_or((1000, 1000)),
                hub: None,
            };
            if !(apps_running && settings.samp.enabled) {
                tracing::info!(holder, "removing the shared network an earlier daemon left");
                remove_network(&local).await;
                let _ = std::fs::remove_dir_all(&local.dir);
                let _ = std::fs::remove_file(local.dir.with_extension("state"));
                continue;
            }
            tracing::info!(
                holder,
                "the session's apps run on in their network: a hub for them"
            );
            let started = match make_folder(&local.dir) {
                Ok(()) => match local_spec(&local).await {
                    Ok(spec) => self.start(spec).await,
                    Err(err) => Err(err),
                },
                Err(err) => Err(err),
            };
            let mut local = local;
            match started {
                Ok(hub) => local.hub = Some(hub),
                Err(err) => tracing::warn!("SAMP for the adopted apps: {err}"),
            }
            state.local = Some(local);
            return;
        }
    }

    /// Makes sure a platform desktop's hub runs, before an app pod starts and reads `~/.samp`.
    pub async fn platform(self: &Arc<Self>, settings: &Settings) {
        if !settings.samp.enabled {
            return;
        }
        let mut state = self.state.lock().await;
        if state.ended
            || state
                .platform
                .as_ref()
                .is_some_and(|hub| !*hub.ended.borrow())
        {
            return;
        }
        let started = match platform_spec(settings) {
            Ok(spec) => self.start(spec).await,
            Err(err) => Err(err),
        };
        match started {
            Ok(hub) => state.platform = Some(hub),
            Err(err) => {
                tracing::warn!("SAMP for this desktop: {err}");
                (self.tell)(
                    "Apps cannot message each other (SAMP)".to_owned(),
                    format!("{err}; apps start on their own"),
                );
            }
        }
    }

    /// Starts a hub from `spec` and waits (within a bound) for it to be ready.
    async fn start(self: &Arc<Self>, spec: HubSpec) -> Result<HubProcess, Error> {
        let mut child = spawn_hub(&spec)?;
        let pid = child.id().unwrap_or_default();
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("the hub's stdout is piped");
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(READY_WITHIN, async {
            while let Ok(Some(line)) = lines.next_line().await {
                match serde_json::from_str::<Notice>(&line) {
                    Ok(Notice::Ready { url, .. }) => return Some(url),
                    Ok(notice) => self.heard(spec.which, notice),
                    Err(_) => tracing::debug!("the SAMP hub said {line:?}"),
                }
            }
            None
        })
        .await;
        let Ok(Some(url)) = ready else {
            let _ = child.start_kill();
            let _ = child.wait().await;
            return Err(Error::Hub(format!(
                "{} (see {})",
                last_line(&spec.log).unwrap_or_else(|| "it said nothing".to_owned()),
                spec.log.display()
            )));
        };
        tracing::info!(url, pid, "SAMP hub started");
        let (ended_sender, ended) = tokio::sync::watch::channel(false);
        let session = Arc::downgrade(self);
        let restart_spec = spec.clone();
        let ended_hubs = self.ended_hubs.clone();
        tokio::spawn(async move {
            let which = restart_spec.which;
            while let Ok(Some(line)) = lines.next_line().await {
                if let (Ok(notice), Some(session)) =
                    (serde_json::from_str::<Notice>(&line), session.upgrade())
                {
                    session.heard(which, notice);
                }
            }
            let status = child.wait().await;
            let _ = ended_sender.send(true);
            let _ = ended_hubs.send((restart_spec, pid, status));
        });
        Ok(HubProcess {
            spec,
            pid,
            url,
            stdin,
            ended,
        })
    }

    /// What a hub reported: problems the user should hear of.
    fn heard(&self, which: Which, notice: Notice) {
        tracing::info!(?which, ?notice, "SAMP hub");
        match notice {
            Notice::Unreachable {
                name, url, error, ..
            } => (self.tell)(
                format!(
                    "{} cannot be reached over SAMP",
                    name.as_deref().unwrap_or("An app")
                ),
                format!("the hub could not deliver to {url}: {error}"),
            ),
            Notice::Superseded { lockfile, url } => (self.tell)(
                "Another SAMP hub took over".to_owned(),
                format!(
                    "{} now names a hub at {url}; apps started from now on use that one",
                    lockfile.display()
                ),
            ),
            _ => {}
        }
    }

    /// A hub ended: expected at the session's end; otherwise its dead lockfile is removed, the
    /// user is told, and it is started again (a few times at most).
    async fn hub_ended(
        session: Weak<Session>,
        spec: HubSpec,
        pid: u32,
        status: std::io::Result<std::process::ExitStatus>,
    ) {
        let Some(session) = session.upgrade() else {
            return;
        };
        let mut state = session.state.lock().await;
        let current = match spec.which {
            Which::Local => state.local.as_ref().and_then(|local| local.hub.as_ref()),
            Which::Platform => state.platform.as_ref(),
        };
        // Stopped on purpose (the session's end), or already replaced.
        let Some(old_url) = current
            .filter(|hub| hub.pid == pid && !state.ended)
            .map(|hub| hub.url.clone())
        else {
            return;
        };
        let status = status.map_or_else(|err| err.to_string(), |status| status.to_string());
        tracing::warn!(pid, "the SAMP hub ended unexpectedly ({status})");
        let now = Instant::now();
        state
            .restarts
            .retain(|at| now.duration_since(*at) < RESTART_WINDOW);
        if state.restarts.len() >= MOST_RESTARTS {
            // Its lockfile would send apps to a hub that is gone.
            if let Ok(Some(lockfile)) = Lockfile::read(&spec.lockfile)
                && lockfile.keys.get("arcade.hub.pid") == Some(&pid.to_string())
            {
                let _ = std::fs::remove_file(&spec.lockfile);
            }
            (session.tell)(
                "The SAMP hub stopped".to_owned(),
                format!(
                    "it ended ({status}) {MOST_RESTARTS} times in a few minutes and is not \
                     started again; apps of this session cannot message each other (see {})",
                    spec.log.display()
                ),
            );
            return;
        }
        state.restarts.push(now);
        let restarted = session.start(spec.clone()).await;
        let body = match &restarted {
            Ok(hub) if hub.url == old_url => format!(
                "it ended ({status}) and was started again at {}, with its clients: apps \
                 go on messaging each other",
                hub.url
            ),
            Ok(hub) => format!(
                "it ended ({status}) and was started again at {}; apps that were connected \
                 must connect again, from their SAMP menus",
                hub.url
            ),
            Err(err) => format!("it ended ({status}) and could not be started again: {err}"),
        };
        (session.tell)("The SAMP hub stopped".to_owned(), body);
        let slot = match spec.which {
            Which::Local => state.local.as_mut().map(|local| &mut local.hub),
            Which::Platform => Some(&mut state.platform),
        };
        if let (Some(slot), Ok(hub)) = (slot, restarted) {
            *slot = Some(hub);
        }
    }

    /// Ends the session's SAMP: the hubs stop (and remove their lockfiles), the shared network
    /// and the session folder go, unless apps still run in them (`keep_network`). Called after
    /// the session's apps have stopped.
    pub async fn end(&self, keep_network: bool) {
        let mut state = self.state.lock().await;
        state.ended = true;
        let mut hubs: Vec<HubProcess> = state.platform.take().into_iter().collect();
        let mut local = state.local.take();
        if let Some(hub) = local.as_mut().and_then(|local| local.hub.take()) {
            hubs.push(hub);
        }
        for hub in hubs {
            stop_hub(hub).await;
        }
        if let Some(local) = local.filter(|_| !keep_network) {
            remove_network(&local).await;
            let _ = std::fs::remove_dir_all(&local.dir);
        }
    }

    /// The pid of the hub serving local apps, for tests and `arcade samp`.
    pub async fn local_hub_pid(&self) -> Option<u32> {
        let state = self.state.lock().await;
        state.local.as_ref()?.hub.as_ref().map(|hub| hub.pid)
    }
}

/// Stops a hub: its stdin closes, it says goodbye to its clients and removes its lockfile; one
/// that does not end within a few seconds is killed.
async fn stop_hub(mut hub: HubProcess) {
    drop(hub.stdin.take());
    let ended = hub.ended.wait_for(|ended| *ended);
    if tokio::time::timeout(Duration::from_secs(5), ended)
        .await
        .is_err()
    {
        tracing::warn!(pid = hub.pid, "the SAMP hub did not end; killing it");
        // SAFETY: kill(2) on our own child, which its task has not reaped yet (it would have
        // said so through `ended`).
        unsafe { libc::kill(hub.pid as libc::pid_t, libc::SIGKILL) };
        let _ = std::fs::remove_file(&hub.spec.lockfile);
        if let Some(state) = hub.spec.state_file() {
            let _ = std::fs::remove_file(state);
        }
    }
}

/// The session folder of `key`: `$XDG_RUNTIME_DIR/arcade/samp/<key>`.
pub fn folder(settings: &Settings, key: &str) -> PathBuf {
    crate::launch::lifecycle::launch_dir(settings, "samp").join(key)
}

/// Every hub status this user's sessions have, with its file.
pub fn statuses(settings: &Settings) -> Vec<(PathBuf, Status)> {
    let root = crate::launch::lifecycle::launch_dir(settings, "samp");
    let mut found: Vec<(PathBuf, Status)> = std::fs::read_dir(&root)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("status.json"))
        .filter_map(|path| Some((path.clone(), Status::read(&path)?)))
        .collect();
    found.sort_by_key(|(_, status)| status.started_at);
    found
}

/// The session's key: the user and the display, hashed, so that names stay short and valid.
fn key(display: &str) -> String {
    // SAFETY: getuid only reads the process's credentials.
    let uid = unsafe { libc::getuid() };
    let digest = ring::digest::digest(&ring::digest::SHA256, format!("{uid}:{display}").as_bytes());
    digest.as_ref()[..6]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Makes (or finds again, after a daemon restart) the session's shared network.
async fn make_network(
    settings: &Settings,
    kind: Backend,
    image: &str,
    display: &str,
) -> Result<Local, Error> {
    let engine = Engine::find(kind, settings)?;
    let key = key(display);
    let holder = engine::session_network_name(&key);
    let dir = folder(settings, &key);
    let app_user = engine::app_user(&settings.launch.user).map_err(Error::Unsupported)?;
    let new_folder = !dir.exists();
    make_folder(&dir)?;
    // SAFETY: getuid only reads the process's credentials.
    let uid = unsafe { libc::getuid() };
    let labels = [
        format!("--label={}.session-network={key}", engine::LABEL),
        format!("--label={}.network-of={uid}", engine::LABEL),
        // Not `.display`: the pod's infra container takes the pod's labels, and would pass
        // for an app of the display.
        format!("--label={}.session-display={display}", engine::LABEL),
    ];
    // What a failed attempt made goes again, so the next launch starts from nothing and no
    // half-made network or folder outlives the session.
    let mut created = false;
    let made = hold_network(
        &engine,
        settings,
        (&holder, &labels),
        app_user,
        image,
        &mut created,
    );
    if let Err(err) = made.await {
        if created {
            let removed = match kind {
                Backend::Docker => engine.remove(&holder).await,
                _ => engine
                    .output(["pod", "rm", "--force", &holder])
                    .await
                    .map(drop),
            };
            if let Err(why) = removed {
                tracing::warn!(holder, "removing a session network that failed: {why}");
            }
        }
        if new_folder {
            let _ = std::fs::remove_dir_all(&dir);
        }
        return Err(err);
    }
    Ok(Local {
        engine,
        holder,
        dir,
        app_user,
        hub: None,
    })
}

/// Starts the session's network `holder` (with `labels`), unless it runs already; `created`
/// says whether this call made it.
async fn hold_network(
    engine: &Engine,
    settings: &Settings,
    (holder, labels): (&str, &[String]),
    app_user: (u32, u32),
    image: &str,
    created: &mut bool,
) -> Result<(), Error> {
    let kind = engine.kind;
    // SAFETY: getuid only reads the process's credentials.
    let uid = unsafe { libc::getuid() };
    match kind {
        Backend::Docker => {
            let running = engine
                .output(["inspect", "--format", "{{.State.Running}}", holder])
                .await
                .is_ok_and(|text| text.trim() == "true");
            if !running {
                let _ = engine.remove(holder).await;
                let mut args: Vec<String> = ["run", "--detach", "--interactive", "--rm"]
                    .map(str::to_owned)
                    .into();
                args.push(format!("--name={holder}"));
                args.extend(labels.iter().cloned());
                args.extend(holder_args(settings, app_user));
                args.extend(["--entrypoint=/bin/sh".to_owned(), image.to_owned()]);
                // It waits for a line that never comes: any image with a shell can hold it.
                args.extend(["-c".to_owned(), "read line".to_owned()]);
                engine.output(&args).await?;
                *created = true;
            }
        }
        _ => {
            let exists = engine.output(["pod", "exists", holder]).await.is_ok();
            if !exists {
                let mut args: Vec<String> =
                    ["pod", "create", "--share=net"].map(str::to_owned).into();
                args.push(format!("--name={holder}"));
                args.push(format!("--network={}", settings.launch.network));
                args.extend(labels.iter().cloned());
                if uid != 0 {
                    // Rootless apps keep the user's id; in a pod, the pod sets the namespace.
                    args.push("--userns=keep-id".to_owned());
                }
                engine.output(&args).await?;
                *created = true;
            }
            engine.output(["pod", "start", holder]).await?;
        }
    }
    Ok(())
}

/// The docker holder's hardening: the apps' own.
fn holder_args(settings: &Settings, (uid, gid): (u32, u32)) -> Vec<String> {
    vec![
        format!("--network={}", settings.launch.network),
        format!("--user={uid}:{gid}"),
        "--cap-drop=ALL".to_owned(),
        "--security-opt=no-new-privileges".to_owned(),
        "--init".to_owned(),
        "--pull=never".to_owned(),
    ]
}

fn make_folder(dir: &Path) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        action: "create",
        path: dir.to_owned(),
        source,
    })?;
    // Apps read the lockfile as their own user: the folder must let them through.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).map_err(|source| {
        Error::Io {
            action: "set permissions of",
            path: dir.to_owned(),
            source,
        }
    })
}

/// How to start the local hub: on the pod's loopback, entered through its holder's process.
async fn local_spec(local: &Local) -> Result<HubSpec, Error> {
    let pid = match local.engine.kind {
        Backend::Docker => holder_pid(&local.engine, &local.holder).await?,
        _ => {
            let infra = local
                .engine
                .output([
                    "pod",
                    "inspect",
                    "--format",
                    "{{.InfraContainerID}}",
                    &local.holder,
                ])
                .await?;
            holder_pid(&local.engine, infra.trim()).await?
        }
    };
    // SAFETY: geteuid only reads the process's credentials.
    let root = unsafe { libc::geteuid() } == 0;
    let unshare = match (root, local.engine.kind) {
        (true, _) => None,
        (false, Backend::Podman) => Some(local.engine.clone()),
        (false, _) => {
            return Err(Error::Unsupported(
                "the session's hub must enter the docker network, which takes root; use podman \
                 or run the daemon as root"
                    .to_owned(),
            ));
        }
    };
    let lockfile = local.dir.join("lockfile");
    let (uid, gid) = local.app_user;
    Ok(HubSpec {
        which: Which::Local,
        args: vec![
            "--address=127.0.0.1".to_owned(),
            format!("--lockfile={}", lockfile.display()),
            format!("--status={}", local.dir.join("status.json").display()),
            // Outside the folder the apps see: it holds their keys.
            format!("--state={}", local.dir.with_extension("state").display()),
            format!("--owner={uid}:{gid}"),
        ],
        netns: Some(PathBuf::from(format!("/proc/{pid}/ns/net"))),
        unshare,
        log: local.dir.join("hub.log"),
        lockfile,
    })
}

async fn holder_pid(engine: &Engine, container: &str) -> Result<u32, Error> {
    let text = engine
        .output(["inspect", "--format", "{{.State.Pid}}", container])
        .await?;
    match text.trim().parse::<u32>() {
        Ok(pid) if pid > 0 => Ok(pid),
        _ => Err(Error::Hub(format!(
            "{} reports no process for {container} ({:?})",
            engine.name(),
            text.trim()
        ))),
    }
}

/// How to start a platform desktop's hub: on the desktop's address, writing `~/.samp`.
fn platform_spec(settings: &Settings) -> Result<HubSpec, Error> {
    let home = std::env::var_os("HOME")
        .filter(|home| !home.is_empty())
        .map(PathBuf::from)
        .ok_or_else(|| Error::Unsupported("HOME is not set, so there is no ~/.samp".to_owned()))?;
    let address = match &settings.samp.address {
        Some(address) => address.clone(),
        None => super::desktop_address()
            .map_err(|err| Error::Hub(err.to_string()))?
            .to_string(),
    };
    // The apps' user owns the home they share with the desktop; the lockfile is theirs too.
    let owner = std::fs::metadata(&home).ok().map(|meta| {
        use std::os::unix::fs::MetadataExt as _;
        (meta.uid(), meta.gid())
    });
    let dir = folder(settings, &key("platform"));
    make_folder(&dir)?;
    let lockfile = home.join(".samp");
    let mut args = vec![
        format!("--address={address}"),
        format!("--lockfile={}", lockfile.display()),
        format!("--status={}", dir.join("status.json").display()),
        format!("--state={}", dir.with_extension("state").display()),
    ];
    if let Some((uid, gid)) = owner {
        args.push(format!("--owner={uid}:{gid}"));
    }
    Ok(HubSpec {
        which: Which::Platform,
        args,
        netns: None,
        unshare: None,
        log: dir.join("hub.log"),
        lockfile,
    })
}

/// Runs `arcade samp hub` for `spec`: its notices on a pipe, its log in the session folder, its
/// stdin a pipe whose end is its end.
fn spawn_hub(spec: &HubSpec) -> Result<tokio::process::Child, Error> {
    let exe = std::env::current_exe().map_err(|source| Error::Io {
        action: "find",
        path: PathBuf::from("/proc/self/exe"),
        source,
    })?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.log)
        .map_err(|source| Error::Io {
            action: "open",
            path: spec.log.clone(),
            source,
        })?;
    let hub_args = ["-v", "samp", "hub", "--notices", "--until-stdin-closes"];
    let mut command = match &spec.unshare {
        // Rootless podman's namespaces belong to its user namespace: enter both through it.
        Some(engine) => {
            let mut command = engine.command(["unshare", "nsenter"]);
            if let Some(netns) = &spec.netns {
                command.arg(format!("--net={}", netns.display()));
            }
            command.arg("--").arg(&exe);
            command
        }
        None => tokio::process::Command::new(&exe),
    };
    command
        .args(hub_args)
        .args(&spec.args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(log)
        .kill_on_drop(true)
        // Not in the daemon's process group: a terminal's Ctrl-C is the daemon's to handle.
        .process_group(0);
    if let (Some(netns), None) = (&spec.netns, &spec.unshare) {
        let file = std::fs::File::open(netns).map_err(|source| Error::Io {
            action: "open",
            path: netns.clone(),
            source,
        })?;
        let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
        // SAFETY: setns(2) is async-signal-safe; it runs in the child between fork and exec,
        // on a descriptor the parent keeps open until the spawn returns.
        unsafe {
            command.pre_exec(move || {
                if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn();
        drop(file);
        return child.map_err(|source| Error::Io {
            action: "start the SAMP hub in",
            path: netns.clone(),
            source,
        });
    }
    command.spawn().map_err(|source| Error::Io {
        action: "run",
        path: exe,
        source,
    })
}

async fn remove_network(local: &Local) {
    let removed = match local.engine.kind {
        Backend::Docker => local.engine.remove(&local.holder).await,
        _ => local
            .engine
            .output(["pod", "rm", "--force", "--time", "0", &local.holder])
            .await
            .map(drop),
    };
    if let Err(err) = removed {
        tracing::warn!(
            holder = local.holder,
            "failed to remove the session's network: {err}"
        );
    }
}

fn last_line(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    engine::last_line(&text)
}
