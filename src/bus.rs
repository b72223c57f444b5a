//! The D-Bus face of the daemon: `net.canfar.Arcade1` on the session bus, object
//! `/net/canfar/Arcade1`, interface `net.canfar.Arcade1.Launcher`, and the client proxy that
//! `arcade launch` uses. Only this module knows zbus.
//!
//! The interface object holds no state: it forwards calls to [`daemon::Core`] and turns the
//! daemon's [`Notice`]s into signals and property changes. Its methods take `&self`, so a long
//! call (a sync, a launch) never holds up the others.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::StreamExt as _;
use zbus::object_server::SignalEmitter;
use zbus::zvariant::{OwnedValue, Value};

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
    /// A menu refresh failed; the previous menu stays.
    SyncFailed(String),
}

impl From<daemon::Error> for Error {
    fn from(err: daemon::Error) -> Error {
        let message = err.to_string();
        match err {
            daemon::Error::Launch(launch::Error::NotFound(_) | launch::Error::Ambiguous { .. }) => {
                Error::NotFound(message)
            }
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

fn option<'a, T: TryFrom<&'a Value<'a>>>(
    options: &'a HashMap<String, OwnedValue>,
    key: &str,
) -> Result<Option<T>, Error> {
    match options.get(key) {
        None => Ok(None),
        Some(value) => T::try_from(value).map(Some).map_err(|_| {
            Error::InvalidArgs(format!(
                "option {key:?} has the wrong type ({})",
                value.value_signature()
            ))
        }),
    }
}

/// Reads `Launch` options into a request.
fn request_from(
    target: &str,
    options: &HashMap<String, OwnedValue>,
) -> Result<launch::Request, Error> {
    let known = [
        "cores",
        "ram",
        "gpus",
        "command",
        "backend",
        "startup-id",
        "display",
        "xauthority",
        "no-wait",
        "skaha-url",
    ];
    if let Some(unknown) = options.keys().find(|key| !known.contains(&key.as_str())) {
        return Err(Error::InvalidArgs(format!(
            "unknown option {unknown:?}; known options: {}",
            known.join(", ")
        )));
    }
    let backend = match option::<&str>(options, "backend")? {
        None => None,
        Some(name) => Some(
            <crate::config::Backend as clap::ValueEnum>::from_str(name, true)
                .map_err(|_| Error::InvalidArgs(format!("unknown backend {name:?}")))?,
        ),
    };
    let command: Option<Vec<String>> = match options.get("command") {
        None => None,
        Some(value) => Some(
            <Vec<String>>::try_from(
                value
                    .try_clone()
                    .map_err(|err| Error::InvalidArgs(err.to_string()))?,
            )
            .map_err(|_| {
                Error::InvalidArgs("option \"command\" must be an array of strings (as)".to_owned())
            })?,
        ),
    };
    Ok(launch::Request {
        target: target.to_owned(),
        cores: option::<u32>(options, "cores")?,
        ram_gb: option::<u32>(options, "ram")?,
        gpus: option::<u32>(options, "gpus")?,
        command: command.unwrap_or_default(),
        no_wait: option::<bool>(options, "no-wait")?.unwrap_or(false),
        startup_id: option::<&str>(options, "startup-id")?.map(str::to_owned),
        backend,
        display: option::<&str>(options, "display")?.map(str::to_owned),
        xauthority: option::<&str>(options, "xauthority")?.map(Into::into),
        id: None,
        skaha_url: option::<&str>(options, "skaha-url")?
            .map(|url| {
                crate::config::checked_skaha_url(url)
                    .map_err(|err| Error::InvalidArgs(format!("option \"skaha-url\": {err}")))
            })
            .transpose()?,
    })
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
    /// signals report how it goes. Options: cores, ram, gpus (u), command (as), backend,
    /// startup-id, display, xauthority, skaha-url (s), no-wait (b).
    async fn launch(
        &self,
        image: &str,
        options: HashMap<String, OwnedValue>,
    ) -> Result<String, Error> {
        let request = request_from(image, &options)?;
        Ok(self.core.launch(request).await?)
    }

    /// Stops a launched app.
    async fn stop(&self, id: &str) -> Result<(), Error> {
        Ok(self.core.stop(id).await?)
    }

    /// Running and recent apps: (id, app, image, backend, state, started, message).
    async fn list(&self) -> Vec<AppRow> {
        rows(&self.core)
    }

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

    #[zbus(signal)]
    async fn menu_changed(
        emitter: &SignalEmitter<'_>,
        added: u32,
        removed: u32,
        unchanged: u32,
    ) -> zbus::Result<()>;
}

fn rows(core: &Core) -> Vec<AppRow> {
    core.list()
        .into_iter()
        .map(|record| {
            (
                record.id,
                record.app,
                record.image,
                record.backend,
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

/// Serves the interface and takes the name. Fails with [`zbus::Error::NameTaken`] when another
/// daemon owns it: there is one per session.
pub async fn serve(
    core: Arc<Core>,
    notices: tokio::sync::mpsc::UnboundedReceiver<Notice>,
) -> zbus::Result<zbus::Connection> {
    let connection = zbus::connection::Builder::session()?
        .serve_at(PATH, Launcher { core })?
        .build()
        .await?;
    connection
        .request_name_with_flags(NAME, zbus::fdo::RequestNameFlags::DoNotQueue.into())
        .await?;
    let iface = connection
        .object_server()
        .interface::<_, Launcher>(PATH)
        .await?;
    tokio::spawn(forward(connection.clone(), iface, notices));
    Ok(connection)
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

/// Resolves when the bus connection is gone (the session bus went away).
pub async fn closed(connection: &zbus::Connection) {
    // Every stream of a connection ends when its socket closes; NameLost also covers losing the
    // name some other way.
    match zbus::fdo::DBusProxy::new(connection).await {
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

    /// Makes the daemon refresh the menu: pokes a running one, or has the bus start an
    /// installed one (which refreshes as it starts). Fails when neither is possible.
    pub async fn poke() -> Result<&'static str, String> {
        let connection = connect().await.ok_or("no session bus")?;
        let bus = zbus::fdo::DBusProxy::new(&connection)
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

    /// Connects to the session bus, or `None` when there is none to reach.
    pub async fn connect() -> Option<zbus::Connection> {
        tokio::time::timeout(
            std::time::Duration::from_secs(2),
            zbus::Connection::session(),
        )
        .await
        .ok()?
        .ok()
    }

    /// Why the daemon refused a launch: what was asked for does not exist, or anything else.
    pub enum Refused {
        NotFound(String),
        Other(String),
    }

    impl From<String> for Refused {
        fn from(message: String) -> Refused {
            Refused::Other(message)
        }
    }

    /// Launches through the daemon (activating it if it is installed but not running), waiting
    /// up to `wait` for the window, or not at all with `None`. Returns `Ok(None)` when no daemon
    /// is there to ask, so the caller launches in-process.
    pub async fn launch(
        connection: &zbus::Connection,
        request: &launch::Request,
        wait: Option<std::time::Duration>,
    ) -> Result<Option<Outcome>, Refused> {
        let proxy = LauncherProxy::new(connection)
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
        let mut options: HashMap<String, OwnedValue> = HashMap::new();
        let mut put = |key: &str, value: Value| {
            // Plain values (numbers, strings, string arrays) always convert.
            if let Ok(value) = OwnedValue::try_from(value) {
                options.insert(key.to_owned(), value);
            }
        };
        if let Some(cores) = request.cores {
            put("cores", cores.into());
        }
        if let Some(ram) = request.ram_gb {
            put("ram", ram.into());
        }
        if let Some(gpus) = request.gpus {
            put("gpus", gpus.into());
        }
        if !request.command.is_empty() {
            put("command", request.command.clone().into());
        }
        if let Some(backend) = request.backend {
            put("backend", backend.to_string().into());
        }
        if let Some(id) = &request.startup_id {
            put("startup-id", id.clone().into());
        }
        if let Some(url) = &request.skaha_url {
            put("skaha-url", url.clone().into());
        }
        if let Ok(display) = std::env::var("DISPLAY") {
            put("display", display.into());
        }
        if let Ok(xauthority) = std::env::var("XAUTHORITY") {
            put("xauthority", xauthority.into());
        }
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
