//! The skaha backend: the platform runs the app as a Kubernetes Job beside the desktop session and
//! points it at the desktop's X display; we ask for it, poll it until Running, Failed or a
//! deadline (never forever), and wait for its window like any other launch.
//!
//! skaha serves no output of desktop-apps, so the launch's log (`arcade logs`) is arcade's own
//! account: the request, the statuses skaha reported, and how it ended.

use std::time::{Duration, Instant};

use super::app::{App, CurrentSettings, End, Matcher, NotReady, Place, Stopping};
use super::lifecycle::{Backend, Lifecycle, Start};
use super::record::Record;
use super::{Error, Request, Result};
use crate::config::{Backend as BackendKind, Settings, SkahaAuth};
use crate::skaha::{self, Skaha, Status};
use crate::x11::{Display, WindowInfo};

/// How often the app's status is asked for while it starts.
const POLL_EVERY: Duration = Duration::from_millis(500);

/// Checks of an app in a row that may fail before a follower gives up on it: at the default
/// 15 s apart, ten minutes of a refusing or absent service.
const FOLLOW_FAILURES: u32 = 40;

/// The skaha client for launching, from the settings.
pub fn client(settings: &Settings) -> Result<Skaha> {
    client_at(settings, None)
}

/// The skaha client for `url` (a launch's own service), else the settings' one.
pub fn client_at(settings: &Settings, url: Option<&str>) -> Result<Skaha> {
    let url = url
        .map(str::to_owned)
        .or_else(|| settings.skaha.url.clone())
        .ok_or_else(|| {
            Error::Platform(
            "the skaha backend needs the skaha URL: set ARCADE_SKAHA_URL, or --url or ARCADE_URL \
             for arcade launch (inside a platform desktop $skaha_hostname provides it)"
                .to_owned(),
        )
        })?;
    let http = crate::http::Client::new(&crate::http::ClientConfig {
        timeout: settings.timeout,
        ca_file: settings.ca_file.clone(),
        identity_file: match &settings.skaha.auth {
            SkahaAuth::Certificate(path) => Some(path.clone()),
            _ => None,
        },
        backoff: None,
    })
    .map_err(|err| Error::Platform(err.to_string()))?;
    Ok(Skaha::new(
        http,
        &url,
        &settings.skaha.api_version,
        settings.skaha.auth.clone(),
    ))
}

fn session_id(settings: &Settings) -> Result<String> {
    settings.skaha.session_id.clone().ok_or_else(|| {
        Error::Platform(
            "the skaha backend needs the desktop session id: set ARCADE_SESSION_ID (a platform \
             desktop sets skaha_sessionid)"
                .to_owned(),
        )
    })
}

/// The host name skaha gives an app's pod, which its windows carry as WM_CLIENT_MACHINE: the
/// image's last path segment with `:`, `.` and `_` turned into `-`, lowercased.
pub fn pod_host_name(image: &str) -> String {
    image
        .rsplit('/')
        .next()
        .unwrap_or(image)
        .replace([':', '.', '_'], "-")
        .to_lowercase()
}

/// The skaha service and desktop session, checked and ready to start an app.
pub struct SkahaBackend {
    skaha: Skaha,
    session: String,
    /// The desktop's display, where the app's windows arrive, when this process has one.
    display: Option<Display>,
    cores: Option<u32>,
    ram: Option<u32>,
}

impl SkahaBackend {
    /// Checks what can be checked before anything starts: the service, the session, the
    /// resources against skaha's offer, and the display (one named but unusable is an error, as
    /// for a local launch).
    pub async fn prepare(settings: &Settings, request: &Request) -> Result<SkahaBackend> {
        let skaha = client(settings)?;
        let session = session_id(settings)?;
        let cores = request.cores.or(settings.launch.cores);
        let ram = request.ram_gb.or(settings.launch.ram_gb);
        if request.gpus.is_some_and(|gpus| gpus > 0) {
            return Err(Error::Platform(
                "skaha does not take a GPU count for desktop-apps; leave out --gpus".to_owned(),
            ));
        }
        if cores.is_some() || ram.is_some() {
            let context = skaha.context().await?;
            context
                .check("cores", cores.map(f64::from))
                .and_then(|()| context.check("ram", ram.map(f64::from)))
                .map_err(Error::Invalid)?;
        }
        let display = match &request.display {
            Some(name) => Some(Display::parse(name)?),
            None => match Display::from_env() {
                Ok(display) => Some(display),
                Err(crate::x11::Error::NoDisplay) => None,
                Err(err) => return Err(err.into()),
            },
        };
        Ok(SkahaBackend {
            skaha,
            session,
            display,
            cores,
            ram,
        })
    }
}

impl Backend for SkahaBackend {
    type App = SkahaApp;

    fn kind(&self) -> BackendKind {
        BackendKind::Skaha
    }

    fn display(&self) -> Option<&Display> {
        self.display.as_ref()
    }

    fn authorizes(&self) -> bool {
        false
    }

    async fn start(&self, start: &Start<'_>) -> Result<SkahaApp> {
        let target = start.target;
        let app_id = self
            .skaha
            .launch_app(&self.session, &target.image, self.cores, self.ram)
            .await?;
        start.store.note(
            start.id,
            &format!(
                "launching {} on skaha at {}, desktop session {}",
                target.image,
                self.skaha.base(),
                self.session
            ),
        );
        start.store.note(
            start.id,
            &format!(
                "skaha accepted it as app {app_id}; skaha serves no output of desktop-apps, so \
                 this log is arcade's own"
            ),
        );
        Ok(SkahaApp {
            skaha: self.skaha.clone(),
            url: start.settings.skaha.url.clone(),
            session: self.session.clone(),
            app_id,
            id: start.id.to_owned(),
            label: target.label.clone(),
            host: pod_host_name(&target.image),
            wm_class: crate::menu::known_wm_class(&target.app, &start.settings.menu.wm_classes)
                .map(str::to_owned),
            claims: claims_on(start.settings, self.display.as_ref()),
            store: start.store.clone(),
            display: self
                .display
                .as_ref()
                .map(|display| display.name.clone())
                .unwrap_or_default(),
            poll_deadline: Instant::now() + start.settings.skaha.poll_timeout,
            poll_timeout: start.settings.skaha.poll_timeout,
        })
    }
}

/// A desktop-app on skaha.
pub struct SkahaApp {
    skaha: Skaha,
    /// The service root it was launched on, as configured (for its record).
    url: Option<String>,
    session: String,
    app_id: String,
    /// The launch id, for the way out in messages.
    id: String,
    label: String,
    /// The pod's host name, which its windows carry as WM_CLIENT_MACHINE (when the toolkit sets
    /// it).
    host: String,
    /// The window class known for the app, for windows that name no host.
    wm_class: Option<String>,
    /// The X clients launches have claimed on the display.
    claims: super::watch::Claims,
    /// The launch records, to tell a stale claim.
    store: super::record::Store,
    display: String,
    poll_deadline: Instant,
    poll_timeout: Duration,
}

impl SkahaApp {
    /// The app of a recorded skaha launch, on the service it was launched on.
    pub fn attach(settings: &Settings, record: &Record) -> Result<SkahaApp> {
        let (Some(session), Some(app_id)) = (&record.session_id, &record.app_id) else {
            return Err(Error::NotFound(format!(
                "launch {} has no skaha app id",
                record.id
            )));
        };
        Ok(SkahaApp {
            skaha: client_at(settings, record.skaha_url.as_deref())?,
            url: record.skaha_url.clone(),
            session: session.clone(),
            app_id: app_id.clone(),
            id: record.id.clone(),
            label: record.app.clone(),
            host: pod_host_name(&record.image),
            wm_class: None,
            claims: super::watch::Claims::new(
                &super::lifecycle::runtime_root(settings),
                &record.display,
            ),
            store: super::record::Store::new(settings.dirs.launch_state()),
            display: record.display.clone(),
            poll_deadline: Instant::now(),
            poll_timeout: Duration::ZERO,
        })
    }

    /// skaha has not said the app runs by the deadline.
    fn undecided(&self, what: String) -> NotReady {
        NotReady::Undecided(Error::Platform(format!(
            "skaha at {} {what} after {} s; it may still start (arcade stop {} removes it)",
            self.skaha.base(),
            self.poll_timeout.as_secs(),
            self.id
        )))
    }

    /// One check of the app on the follower's schedule: its status, `None` when skaha no
    /// longer has it, or why skaha could not be asked.
    async fn check(&self, settings: CurrentSettings<'_>) -> Result<Option<Status>, String> {
        // The settings of the moment: a renewed token or certificate applies.
        let skaha = client_at(&settings(), self.url.as_deref()).map_err(|err| err.to_string())?;
        match skaha.app(&self.session, &self.app_id).await {
            Ok(app) => Ok(Some(app.status.unwrap_or(Status::Other(String::new())))),
            Err(skaha::Error::NoSuchApp { .. }) => Ok(None),
            Err(err) => Err(err.to_string()),
        }
    }
}

impl App for SkahaApp {
    fn running_once_started(&self) -> bool {
        false
    }

    fn place(&self) -> Place {
        Place::Skaha {
            url: self.url.clone(),
            session_id: self.session.clone(),
            app_id: self.app_id.clone(),
        }
    }

    /// A pod reaches the desktop over TCP, so the server knows no PID for it, and only some
    /// toolkits name their host (Java and xterm do, Tk does not). A window is this app's when its
    /// client has no PID (it is remote), it names the pod's host or, naming none, has the class
    /// known for the app (any class when none is known), and no other launch has its client.
    /// Its client is then this launch's, so none of its windows goes to another launch of the
    /// same image, and a local client's window never matches.
    fn window_matcher(&self, _: Option<&str>) -> Matcher {
        let host = self.host.clone();
        let class = self.wm_class.clone();
        let claims = self.claims.clone();
        let store = self.store.clone();
        let id = self.id.clone();
        // A claim's launch has ended when its record says so (or there is none).
        let ended = move |launch: &str| store.load(launch).is_none_or(|r| r.state.is_finished());
        Box::new(move |info: &WindowInfo| {
            let ours = info.pid.is_none()
                && match &info.client_machine {
                    Some(machine) => *machine == host,
                    None => class.as_deref().is_none_or(|class| info.has_class(class)),
                };
            ours && claims.claim(info.client, &id, &ended)
        })
    }

    /// Polls the app until skaha reports it Running; ends on a final status, an error, or at
    /// the deadline. The last read is at the deadline, and the deadline bounds each read too
    /// (with half a poll of grace, so the last one can answer): a server that does not answer
    /// cannot hold us.
    async fn ready(&mut self, life: &Lifecycle) -> Result<(), NotReady> {
        let label = self.label.clone();
        let app_id = self.app_id.clone();
        let mut last = String::new();
        loop {
            let read_by = self.poll_deadline.max(Instant::now() + POLL_EVERY / 2);
            let read =
                tokio::time::timeout_at(read_by.into(), self.skaha.app(&self.session, &app_id))
                    .await;
            let (status, word) = match read {
                Ok(Ok(app)) => {
                    let word = app
                        .status
                        .as_ref()
                        .map_or("unknown".to_owned(), Status::to_string);
                    (app.status, word)
                }
                // Right after the POST the Job may not be listed yet; anything else is final.
                Ok(Err(skaha::Error::NoSuchApp { .. })) => (None, "not listed yet".to_owned()),
                Ok(Err(err)) => return Err(NotReady::Final(err.into())),
                Err(_) => {
                    return Err(NotReady::Undecided(Error::Platform(format!(
                        "skaha at {} did not report on {label} (app {app_id}) within {} s; it \
                         may still start (arcade stop {} removes it)",
                        self.skaha.base(),
                        self.poll_timeout.as_secs(),
                        self.id
                    ))));
                }
            };
            if word != last {
                life.note(&format!("skaha reports {word}"));
                last = word;
            }
            match status {
                Some(Status::Running) => return Ok(()),
                Some(status) if status.is_over() => {
                    return Err(NotReady::Final(Error::Platform(format!(
                        "skaha at {} reports {label} (app {app_id}) {status}",
                        self.skaha.base()
                    ))));
                }
                _ => {}
            }
            let now = Instant::now();
            if now >= self.poll_deadline {
                return Err(self.undecided(format!("still reports {label} (app {app_id}) {last}")));
            }
            tokio::time::sleep(POLL_EVERY.min(self.poll_deadline - now)).await;
        }
    }

    /// Asks skaha every `skaha.watch_secs` until it reports the app over or no longer has it:
    /// an idle follower does not wake in between. Busy or briefly away is worth asking again;
    /// refusing for ten minutes is not.
    async fn ended(&mut self, life: &mut Lifecycle, settings: CurrentSettings<'_>) -> End {
        let mut failures = 0;
        loop {
            tokio::time::sleep(settings().skaha.watch).await;
            let status = match self.check(settings).await {
                Ok(status) => status,
                Err(message) => {
                    failures += 1;
                    if failures >= FOLLOW_FAILURES {
                        return End::Lost(format!(
                            "stopped following the app on skaha after {failures} failed \
                             checks: {message}"
                        ));
                    }
                    tracing::debug!(id = self.id, "failed to ask skaha about the app: {message}");
                    continue;
                }
            };
            failures = 0;
            match status {
                Some(Status::Running) => life.running(),
                Some(Status::Completed) => return End::Exited(0),
                // Deleted by someone else, or gone from skaha's list: the code is unknown.
                None | Some(Status::Terminating) => return End::Exited(-1),
                Some(Status::Failed) => {
                    return End::Failed(format!(
                        "{} ended: skaha reports app {} failed",
                        self.label, self.app_id
                    ));
                }
                Some(_) => {}
            }
        }
    }

    fn ended_early(&self, end: End, _: &Lifecycle) -> Error {
        let status = match end {
            End::Exited(0) => Status::Completed.to_string(),
            End::Exited(_) => "gone".to_owned(),
            End::Failed(_) => Status::Failed.to_string(),
            End::Lost(reason) => return Error::Platform(reason),
        };
        Error::Platform(format!(
            "skaha at {} reports {} (app {}) {status}",
            self.skaha.base(),
            self.label,
            self.app_id
        ))
    }

    fn no_window(&self, wait: Duration, _: &Lifecycle) -> Error {
        Error::Platform(format!(
            "skaha at {} runs {} (app {}) but no window from {} reached {} within {} s \
             (arcade stop {} removes it)",
            self.skaha.base(),
            self.label,
            self.app_id,
            self.host,
            self.display,
            wait.as_secs(),
            self.id
        ))
    }

    /// Deletes the app; deleting is its end.
    async fn stop(&mut self, life: &Lifecycle) -> Result<Stopping> {
        match self.skaha.delete_app(&self.session, &self.app_id).await {
            Ok(()) => {
                life.note(&format!("stopped app {}: skaha deleted it", self.app_id));
                Ok(Stopping::Stopped(Some(End::Exited(-1))))
            }
            Err(skaha::Error::NoSuchApp { .. }) => {
                life.note(&format!("app {}: skaha no longer had it", self.app_id));
                Ok(Stopping::AlreadyGone)
            }
            Err(err) => Err(err.into()),
        }
    }
}

/// The window claims on the display a launch watches.
fn claims_on(settings: &Settings, display: Option<&Display>) -> super::watch::Claims {
    super::watch::Claims::new(
        &super::lifecycle::runtime_root(settings),
        display.map_or("", |display| display.name.as_str()),
    )
}

/// Live states of the session's apps, by skaha app id, asked of the service and session of the
/// newest skaha launch (else the settings' ones).
pub async fn live_states(settings: &Settings, records: &[Record]) -> Option<Vec<(String, Status)>> {
    let newest = records
        .iter()
        .find(|record| record.backend == BackendKind::Skaha);
    let skaha = client_at(settings, newest.and_then(|r| r.skaha_url.as_deref())).ok()?;
    let session = match newest.and_then(|r| r.session_id.clone()) {
        Some(session) => session,
        None => session_id(settings).ok()?,
    };
    let apps = skaha.apps(&session).await.ok()?;
    Some(
        apps.into_iter()
            .filter_map(|app| Some((app.appid?, app.status?)))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_host_names_follow_skaha() {
        assert_eq!(
            pod_host_name("images.canfar.net/skaha/terminal:1.0"),
            "terminal-1-0"
        );
        assert_eq!(pod_host_name("h/p/CASA_6.5:6.5.6"), "casa-6-5-6-5-6");
    }
}
