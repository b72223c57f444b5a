//! The D-Bus face of the daemon: `net.canfar.Arcade1` on the session bus, object
//! `/net/canfar/Arcade1`, interface `net.canfar.Arcade1.Launcher`, and the client proxy that
//! `arcade launch` uses. Only this module knows zbus.
//!
//! The interface object holds no state: it forwards calls to [`daemon::Core`] and turns the
//! daemon's [`Notice`]s into signals and property changes. Its methods take `&self`, so a long
//! call (a sync, a launch) never holds up the others.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use futures_util::StreamExt as _;
use zbus::object_server::SignalEmitter;
use zbus::zvariant::{DeserializeDict, OwnedValue, SerializeDict, Type, Value};

use crate::daemon::{self, Core, Notice};
use crate::launch;

pub const NAME: &str = "net.canfar.Arcade1";
pub const PATH: &str = "/net/canfar/Arcade1";
pub const INTERFACE: &str = "net.canfar.Arcade1.Launcher";

/// Errors on the wire, named `net.canfar.Arcade1.Error.<Variant>`.
#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "net.canfar.Arcade1.Error")]
pub enum Error {
    #[zbus(error)]
    ZBus(zbus::Error),
    /// No such app, image or launch.
    NotFound(String),
    /// The app cannot be shown: no display, or the display refused us.
    NoDisplay(String),
    /// The backend (podman, docker, skaha) is missing or failed.
    BackendFailed(String),
    /// An option has the wrong type or value.
    InvalidArgs(String),
    /// An option this daemon does not know (a client newer than the daemon sends it).
    UnknownOption(String),
    /// A menu refresh failed; the previous menu stays.
    SyncFailed(String),
}

impl From<daemon::Error> for Error {
    fn from(err: daemon::Error) -> Error {
        let message = err.to_string();
        match err {
            daemon::Error::Launch(
                launch::Error::NotFound(_)
                | launch::Error::Ambiguous { .. }
                | launch::Error::AlreadyEnded { .. },
            ) => Error::NotFound(message),
            daemon::Error::Launch(launch::Error::Id(_)) => Error::InvalidArgs(message),
            daemon::Error::Launch(launch::Error::X(_) | launch::Error::RemoteDisplay(_)) => {
                Error::NoDisplay(message)
            }
            daemon::Error::Launch(launch::Error::Invalid(_)) | daemon::Error::Invalid(_) => {
                Error::InvalidArgs(message)
            }
            daemon::Error::Launch(_) => Error::BackendFailed(message),
            daemon::Error::Sync(_) => Error::SyncFailed(message),
            daemon::Error::UnknownLaunch(_) => Error::NotFound(message),
        }
    }
}

/// One row of `List()`: id, app, image, backend, state, start time (Unix seconds), message.
pub type AppRow = (String, String, String, String, String, i64, String);

/// The served object.
pub struct Launcher {
    core: Arc<Core>,
}

/// The options of `Launch`, one type for the daemon that reads them and the client that sends
/// them: on the wire an `a{sv}` with these keys (kebab-case), each optional.
#[derive(Debug, Default, Clone, PartialEq, SerializeDict, DeserializeDict, Type)]
#[zvariant(signature = "a{sv}", rename_all = "kebab-case", deny_unknown_fields)]
pub struct LaunchOptions {
    pub cores: Option<u32>,
    pub ram: Option<u32>,
    pub gpus: Option<u32>,
    pub command: Option<Vec<String>>,
    pub backend: Option<String>,
    pub startup_id: Option<String>,
    pub display: Option<String>,
    pub xauthority: Option<String>,
    pub skaha_url: Option<String>,
    pub no_wait: Option<bool>,
    /// Files for the app to open, absolute paths.
    pub files: Option<Vec<String>>,
}

/// The options as they travel: `Launch` takes the dictionary itself, so that an option this
/// daemon does not know becomes its own typed error rather than the bus's generic one.
type RawOptions = HashMap<String, OwnedValue>;

/// Converts between the two shapes of the same `a{sv}` through its wire encoding.
fn recode<T: serde::Serialize + Type, U: serde::de::DeserializeOwned + Type>(
    value: &T,
) -> Result<U, String> {
    let ctxt = zbus::zvariant::serialized::Context::new_dbus(zbus::zvariant::LE, 0);
    let bytes = zbus::zvariant::to_bytes(ctxt, value).map_err(|err| err.to_string())?;
    bytes
        .deserialize::<U>()
        .map(|(value, _)| value)
        .map_err(|err| err.to_string())
}

impl LaunchOptions {
    /// Reads the options a client sent.
    fn read(raw: &RawOptions) -> Result<LaunchOptions, Error> {
        recode(raw).map_err(|message| {
            if message.contains("unknown field") {
                Error::UnknownOption(message.replace("field", "option"))
            } else {
                Error::InvalidArgs(message)
            }
        })
    }

    /// The options of a request, as a client sends them.
    pub fn of(request: &launch::Request) -> LaunchOptions {
        LaunchOptions {
            cores: request.cores,
            ram: request.ram_gb,
            gpus: request.gpus,
            command: (!request.command.is_empty()).then(|| request.command.clone()),
            backend: request.backend.map(|backend| backend.to_string()),
            startup_id: request.startup_id.clone(),
            display: request.display.clone(),
            xauthority: request
                .xauthority
                .as_ref()
                .map(|path| path.display().to_string()),
            skaha_url: request.skaha_url.clone(),
            no_wait: request.no_wait.then_some(true),
            // Sent only when there are files, so a daemon from before files can still take
            // every other launch.
            files: (!request.files.is_empty()).then(|| {
                request
                    .files
                    .iter()
                    .map(|file| file.display().to_string())
                    .collect()
            }),
        }
    }

    /// The request these options ask for.
    fn request(self, target: &str) -> Result<launch::Request, Error> {
        let backend = match self.backend.as_deref() {
            None => None,
            Some(name) => Some(
                <crate::config::Backend as clap::ValueEnum>::from_str(name, true)
                    .map_err(|_| Error::InvalidArgs(format!("unknown backend {name:?}")))?,
            ),
        };
        let skaha_url = self
            .skaha_url
            .map(|url| {
                crate::config::checked_skaha_url(&url)
                    .map_err(|err| Error::InvalidArgs(format!("option \"skaha-url\": {err}")))
            })
            .transpose()?;
        let files = self
            .files
            .unwrap_or_default()
            .into_iter()
            .map(|file| {
                let path = PathBuf::from(&file);
                if path.is_absolute() {
                    Ok(path)
                } else {
                    Err(Error::InvalidArgs(format!(
                        "option \"files\": {file:?} is not an absolute path"
                    )))
                }
            })
            .collect::<Result<Vec<PathBuf>, Error>>()?;
        Ok(launch::Request {
            target: target.to_owned(),
            cores: self.cores,
            ram_gb: self.ram,
            gpus: self.gpus,
            command: self.command.unwrap_or_default(),
            no_wait: self.no_wait.unwrap_or(false),
            startup_id: self.startup_id,
            backend,
            display: self.display,
            xauthority: self.xauthority.map(Into::into),
            id: None,
            skaha_url,
            shared: None,
            files,
        })
    }
}

#[zbus::interface(
    name = "net.canfar.Arcade1.Launcher",
    proxy(
        gen_blocking = false,
        default_service = "net.canfar.Arcade1",
        default_path = "/net/canfar/Arcade1",
    )
)]
impl Launcher {
    /// Starts an app (an image reference or a menu name) and returns its launch id at once;
    /// signals report how it goes. Options: cores, ram, gpus (u), command, files (as), backend,
    /// startup-id, display, xauthority, skaha-url (s), no-wait (b).
    async fn launch(&self, image: &str, options: RawOptions) -> Result<String, Error> {
        let request = LaunchOptions::read(&options)?.request(image)?;
        Ok(self.core.launch(request).await?)
    }

    // The signals a launch sends as it goes, beside the method that starts it.

    #[zbus(signal)]
    async fn app_starting(emitter: &SignalEmitter<'_>, id: &str, app: &str) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn app_window_mapped(
        emitter: &SignalEmitter<'_>,
        id: &str,
        milliseconds: u64,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn app_exited(emitter: &SignalEmitter<'_>, id: &str, code: i32) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn app_failed(emitter: &SignalEmitter<'_>, id: &str, reason: &str) -> zbus::Result<()>;

    /// Stops a launched app.
    async fn stop(&self, id: &str) -> Result<(), Error> {
        Ok(self.core.stop(id).await?)
    }

    /// Running and recent apps: (id, app, image, backend, state, started, message).
    async fn list(&self) -> Vec<AppRow> {
        rows(&self.core)
    }

    #[zbus(signal)]
    async fn menu_changed(
        emitter: &SignalEmitter<'_>,
        added: u32,
        removed: u32,
        unchanged: u32,
    ) -> zbus::Result<()>;

    /// Rebuilds the menu from the source now; returns entries added, removed and unchanged.
    async fn refresh(&self) -> Result<(u32, u32, u32), Error> {
        let outcome = self.core.refresh().await?;
        Ok(counts(&outcome))
    }

    /// The app list, as `List()` returns it.
    #[zbus(property)]
    async fn apps(&self) -> Vec<AppRow> {
        rows(&self.core)
    }

    /// When the last menu sync finished (Unix seconds; 0 before the first).
    #[zbus(property)]
    async fn last_sync(&self) -> u64 {
        self.core.last_sync().finished_at
    }

    /// How the last menu sync went: `ok: …` or `error: …`.
    #[zbus(property)]
    async fn last_sync_result(&self) -> String {
        self.core.last_sync().result
    }
}

fn rows(core: &Core) -> Vec<AppRow> {
    core.list()
        .into_iter()
        .map(|record| {
            (
                record.id,
                record.app,
                record.image,
                record.backend.to_string(),
                record.state.to_string(),
                record.started_at as i64,
                record.message.unwrap_or_default(),
            )
        })
        .collect()
}

fn counts(outcome: &crate::sync::Outcome) -> (u32, u32, u32) {
    let added = outcome.added_entries as u32;
    let removed = outcome.removed_entries as u32;
    let unchanged = (outcome.entries as u32).saturating_sub(added);
    (added, removed, unchanged)
}

/// Why the daemon could not serve on the bus.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("another arcade daemon already owns {NAME} on this session bus")]
    NameTaken,
    #[error("failed to serve on the session bus: {0}")]
    Bus(#[from] zbus::Error),
    #[error("the session bus did not answer within 10 s")]
    Unanswered,
}

/// The daemon's connection to the session bus, serving the interface under its name.
pub struct Served {
    connection: zbus::Connection,
}

/// Serves the interface and takes the name; there is one daemon per session.
pub async fn serve(
    core: Arc<Core>,
    notices: tokio::sync::mpsc::UnboundedReceiver<Notice>,
) -> Result<Served, ServeError> {
    // A bus that accepts the connection but never answers must not hold the daemon forever.
    let connection = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        zbus::connection::Builder::session()?
            .serve_at(PATH, Launcher { core })?
            .build(),
    )
    .await
    .map_err(|_| ServeError::Unanswered)??;
    connection
        .request_name_with_flags(NAME, zbus::fdo::RequestNameFlags::DoNotQueue.into())
        .await
        .map_err(|err| match err {
            zbus::Error::NameTaken => ServeError::NameTaken,
            other => ServeError::Bus(other),
        })?;
    let iface = connection
        .object_server()
        .interface::<_, Launcher>(PATH)
        .await?;
    tokio::spawn(forward(connection.clone(), iface, notices));
    tracing::info!(name = NAME, "serving on the session bus");
    Ok(Served { connection })
}

impl Served {
    /// Resolves when the bus connection is gone (the session bus went away) or the name lost.
    pub async fn closed(&self) {
        // Every stream of a connection ends when its socket closes; NameLost also covers losing
        // the name some other way.
        match zbus::fdo::DBusProxy::new(&self.connection).await {
            Ok(proxy) => match proxy.receive_name_lost().await {
                Ok(mut lost) => {
                    while let Some(signal) = lost.next().await {
                        if signal.args().is_ok_and(|args| args.name() == NAME) {
                            return;
                        }
                    }
                }
                Err(_) => std::future::pending().await,
            },
            Err(_) => std::future::pending().await,
        }
    }
}

/// Shows a desktop notification; quietly nothing when no notification server runs.
async fn notify_desktop(connection: &zbus::Connection, summary: &str, body: &str) {
    let hints: HashMap<&str, Value> = HashMap::new();
    let arguments = (
        "arcade",
        0u32,
        crate::menu::icons::ASTRO,
        summary,
        body,
        Vec::<&str>::new(),
        hints,
        -1i32,
    );
    let call = connection.call_method(
        Some("org.freedesktop.Notifications"),
        "/org/freedesktop/Notifications",
        Some("org.freedesktop.Notifications"),
        "Notify",
        &arguments,
    );
    match tokio::time::timeout(std::time::Duration::from_secs(5), call).await {
        Ok(Ok(_)) => {}
        Ok(Err(err)) => tracing::debug!("no desktop notification: {err}"),
        Err(_) => tracing::debug!("no desktop notification: the server did not answer"),
    }
}

/// Turns daemon notices into signals and property changes.
async fn forward(
    connection: zbus::Connection,
    iface: zbus::object_server::InterfaceRef<Launcher>,
    mut notices: tokio::sync::mpsc::UnboundedReceiver<Notice>,
) {
    while let Some(notice) = notices.recv().await {
        if let Notice::Desktop { summary, body } = &notice {
            notify_desktop(&connection, summary, body).await;
            continue;
        }
        let emitter = iface.signal_emitter();
        let launcher = iface.get().await;
        let sent = match notice {
            Notice::Launch(launch::Event::Starting { id, app }) => {
                Launcher::app_starting(emitter, &id, &app).await
            }
            Notice::Launch(launch::Event::WindowMapped { id, after }) => {
                Launcher::app_window_mapped(emitter, &id, after.as_millis() as u64).await
            }
            Notice::Launch(launch::Event::Exited { id, code }) => {
                Launcher::app_exited(emitter, &id, code).await
            }
            Notice::Launch(launch::Event::Failed { id, reason }) => {
                Launcher::app_failed(emitter, &id, &reason).await
            }
            Notice::Synced(outcome) => {
                let (added, removed, unchanged) = counts(&outcome);
                let _ = launcher.last_sync_changed(emitter).await;
                let _ = launcher.last_sync_result_changed(emitter).await;
                Launcher::menu_changed(emitter, added, removed, unchanged).await
            }
            Notice::SyncFailed => {
                let _ = launcher.last_sync_changed(emitter).await;
                launcher.last_sync_result_changed(emitter).await
            }
            Notice::Desktop { .. } => Ok(()),
        };
        if let Err(err) = sent {
            tracing::warn!("failed to emit a D-Bus signal: {err}");
        }
        if let Err(err) = launcher.apps_changed(emitter).await {
            tracing::debug!("failed to emit Apps changed: {err}");
        }
    }
}

/// The client side of `arcade launch`: ask the session's daemon.
pub mod client {
    use super::*;

    /// What happened to a launch the daemon took.
    pub enum Outcome {
        Started(String),
        Window { id: String, milliseconds: u64 },
        Failed { id: String, reason: String },
        TimedOut(String),
    }

    /// Whether a daemon owns its name on the bus.
    pub async fn daemon_answers(Bus(connection): &Bus) -> bool {
        let Ok(bus) = zbus::fdo::DBusProxy::new(connection).await else {
            return false;
        };
        match zbus::names::BusName::try_from(NAME) {
            Ok(name) => bus.name_has_owner(name).await.unwrap_or(false),
            Err(_) => false,
        }
    }

    /// Makes the daemon refresh the menu: pokes a running one, or has the bus start an
    /// installed one (which refreshes as it starts). Fails when neither is possible.
    pub async fn poke(Bus(connection): &Bus) -> Result<&'static str, String> {
        let bus = zbus::fdo::DBusProxy::new(connection)
            .await
            .map_err(|err| err.to_string())?;
        let name = zbus::names::BusName::try_from(NAME).map_err(|err| err.to_string())?;
        if bus
            .name_has_owner(name)
            .await
            .map_err(|err| err.to_string())?
        {
            // Do not wait for the sync: send the call without asking for a reply.
            let message = zbus::Message::method_call(PATH, "Refresh")
                .and_then(|builder| builder.destination(NAME))
                .and_then(|builder| builder.interface(INTERFACE))
                .and_then(|builder| builder.with_flags(zbus::message::Flags::NoReplyExpected))
                .and_then(|builder| builder.build(&()))
                .map_err(|err| err.to_string())?;
            connection
                .send(&message)
                .await
                .map_err(|err| err.to_string())?;
            return Ok("asked the running daemon to refresh the menu");
        }
        let activatable = bus
            .list_activatable_names()
            .await
            .map_err(|err| err.to_string())?;
        if activatable.iter().any(|found| found.as_str() == NAME) {
            let well_known =
                zbus::names::WellKnownName::try_from(NAME).map_err(|err| err.to_string())?;
            bus.start_service_by_name(well_known, 0)
                .await
                .map_err(|err| err.to_string())?;
            return Ok("started by the session bus; it refreshes the menu as it starts");
        }
        Err(format!(
            "{NAME} is neither running nor installed as a D-Bus service"
        ))
    }

    /// Shows a launch's failure as a desktop notification, when there is a bus and a
    /// notification server; quietly nothing otherwise.
    pub async fn notify_failure(target: &str, reason: &str) {
        let summary = format!("{} did not start", crate::catalog::printable(target));
        notify(&summary, reason).await;
    }

    /// Shows a desktop notification, when there is a session bus and a notification server.
    pub async fn notify(summary: &str, body: &str) {
        if let Some(Bus(connection)) = connect().await {
            notify_desktop(&connection, summary, body).await;
        }
    }

    /// A connection to the session bus, for talking to the daemon.
    pub struct Bus(zbus::Connection);

    /// Connects to the session bus, or `None` when there is none to reach.
    pub async fn connect() -> Option<Bus> {
        tokio::time::timeout(
            std::time::Duration::from_secs(2),
            zbus::Connection::session(),
        )
        .await
        .ok()?
        .ok()
        .map(Bus)
    }

    /// Why the daemon refused a launch.
    pub enum Refused {
        /// What was asked for does not exist.
        NotFound(String),
        /// The daemon is older than this client and does not know one of its options.
        UnknownOption(String),
        Other(String),
    }

    impl From<String> for Refused {
        fn from(message: String) -> Refused {
            Refused::Other(message)
        }
    }

    /// Launches through the daemon (activating it if it is installed but not running), waiting
    /// up to `wait` for the window, or not at all with `None`. The request's display and cookie
    /// are the caller's. Returns `Ok(None)` when no daemon is there to ask, so the caller
    /// launches in-process.
    pub async fn launch(
        bus: &Bus,
        request: &launch::Request,
        wait: Option<std::time::Duration>,
    ) -> Result<Option<Outcome>, Refused> {
        let proxy = LauncherProxy::new(&bus.0)
            .await
            .map_err(|err| err.to_string())?;
        // Subscribe before calling, so a fast window is not missed.
        let mut mapped = proxy
            .receive_app_window_mapped()
            .await
            .map_err(|err| err.to_string())?;
        let mut failed = proxy
            .receive_app_failed()
            .await
            .map_err(|err| err.to_string())?;
        let options: RawOptions = recode(&LaunchOptions::of(request))?;
        let id = match proxy.launch(&request.target, options).await {
            Ok(id) => id,
            Err(Error::ZBus(zbus::Error::MethodError(name, _, _)))
                if name.as_str() == "org.freedesktop.DBus.Error.ServiceUnknown"
                    || name.as_str() == "org.freedesktop.DBus.Error.NameHasNoOwner" =>
            {
                return Ok(None);
            }
            Err(Error::ZBus(zbus::Error::MethodError(_, Some(message), _))) => {
                return Err(Refused::Other(message));
            }
            Err(Error::ZBus(err)) => return Err(Refused::Other(err.to_string())),
            Err(Error::NotFound(message)) => return Err(Refused::NotFound(message)),
            Err(Error::UnknownOption(message)) => return Err(Refused::UnknownOption(message)),
            Err(
                Error::NoDisplay(message)
                | Error::BackendFailed(message)
                | Error::InvalidArgs(message)
                | Error::SyncFailed(message),
            ) => return Err(Refused::Other(message)),
        };
        let Some(wait) = wait else {
            return Ok(Some(Outcome::Started(id)));
        };
        let deadline = tokio::time::sleep(wait);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                Some(signal) = mapped.next() => {
                    if let Ok(args) = signal.args()
                        && args.id() == &id
                    {
                        return Ok(Some(Outcome::Window { id, milliseconds: *args.milliseconds() }));
                    }
                }
                Some(signal) = failed.next() => {
                    if let Ok(args) = signal.args()
                        && args.id() == &id
                    {
                        return Ok(Some(Outcome::Failed { id, reason: args.reason().to_string() }));
                    }
                }
                _ = &mut deadline => return Ok(Some(Outcome::TimedOut(id))),
            }
        }
    }
}
