//! The skaha backend: the platform runs the app as a Kubernetes Job beside the desktop session and
//! points it at the desktop's X display; we ask for it, poll it until Running, Failed or a
//! deadline (never forever), and wait for its window like any other launch.
//!
//! skaha serves no output of desktop-apps, so the launch's log (`arcade logs`) is arcade's own
//! account: the request, the statuses skaha reported, and how it ended.

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::record::{self, Record, State, Store};
use super::{Error, Event, Launched, Observer, Request, Result, Startup, Target};
use crate::config::{Settings, SkahaAuth};
use crate::skaha::{self, Skaha};
use crate::x11::{self, Display, Watcher};

/// How often the app's status is asked for.
const POLL_EVERY: Duration = Duration::from_millis(500);

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

/// The launch's log, written as it goes; a log that cannot be written never fails a launch.
struct Log(Option<std::fs::File>);

impl Log {
    fn open(path: &Path) -> Log {
        use std::os::unix::fs::OpenOptionsExt as _;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path);
        if let Err(err) = &file {
            tracing::debug!("cannot write {}: {err}", path.display());
        }
        Log(file.ok())
    }

    fn note(&mut self, line: &str) {
        if let Some(file) = &mut self.0 {
            let _ = writeln!(file, "arcade: {line}");
        }
    }
}

fn is_failed(status: &str) -> bool {
    matches!(
        status,
        "Failed" | "Error" | "Completed" | "Succeeded" | "Terminating"
    )
}

pub async fn launch(
    settings: &Settings,
    request: &Request,
    target: &Target,
    started: Instant,
    observer: Arc<dyn Observer>,
) -> Result<Launched> {
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

    let store = Store::new(settings.dirs.launch_state());
    std::fs::create_dir_all(store.dir()).map_err(|source| Error::Io {
        action: "create",
        path: store.dir().to_owned(),
        source,
    })?;
    let id = request.id.clone().unwrap_or_else(|| store.new_id());

    // The app's windows arrive on this desktop's display; watch it when there is one (a display
    // named but not usable is an error, as for a local launch). The busy cursor starts with the
    // watch, unless the menu started it or nothing will wait to end it.
    let display = match &request.display {
        Some(name) => Some(Display::parse(name)?),
        None => match Display::from_env() {
            Ok(display) => Some(display),
            Err(crate::x11::Error::NoDisplay) => None,
            Err(err) => return Err(err.into()),
        },
    };
    let (watcher, startup) = match display {
        Some(display) => {
            let xauthority = request.xauthority.clone();
            let given = request.startup_id.clone();
            let own = !request.no_wait;
            let (id, target) = (id.clone(), target.clone());
            let connected = tokio::task::spawn_blocking(move || -> Result<_> {
                let (mut watcher, _) = Watcher::connect(&display, xauthority.as_deref())?;
                let startup = match given {
                    Some(given) => Some(Startup { id: given }),
                    None if own => Some(Startup::begin(&mut watcher, None, &id, &target)),
                    None => None,
                };
                Ok((watcher, startup))
            })
            .await
            .expect("x11 connect task panicked")?;
            (Some(connected.0), connected.1)
        }
        None => (None, None),
    };
    let display_name = request
        .display
        .clone()
        .or_else(|| std::env::var("DISPLAY").ok())
        .unwrap_or_default();

    let app_id = match skaha.launch_app(&session, &target.image, cores, ram).await {
        Ok(app_id) => app_id,
        Err(err) => {
            if let (Some(watcher), Some(startup)) = (watcher, startup) {
                let _ = tokio::task::spawn_blocking(move || startup.end(&watcher)).await;
            }
            return Err(err.into());
        }
    };
    let mut log = Log::open(&store.log_path(&id));
    log.note(&format!(
        "launching {} on skaha at {}, desktop session {session}",
        target.image,
        skaha.base()
    ));
    log.note(&format!(
        "skaha accepted it as app {app_id}; skaha serves no output of desktop-apps, so this log \
         is arcade's own"
    ));
    let mut record = Record {
        id: id.clone(),
        app: target.label.clone(),
        image: target.image.clone(),
        backend: "skaha".to_owned(),
        container: None,
        session_id: Some(session.clone()),
        app_id: Some(app_id.clone()),
        skaha_url: settings.skaha.url.clone(),
        display: display_name,
        started_at: record::now(),
        state: State::Starting,
        exit_code: None,
        window_ms: None,
        message: None,
    };
    let _ = store.save(&record);
    observer.event(Event::Starting {
        id: id.clone(),
        app: target.label.clone(),
    });
    if request.no_wait {
        // Nothing here will see the window: a sequence the menu started ends by the window
        // manager's WMCLASS match or its timeout.
        return Ok(Launched {
            record,
            window_after: None,
            child: None,
        });
    }

    // Watch for the window from now, while polling skaha for the status.
    let cancel = Arc::new(AtomicBool::new(false));
    let poll_deadline = Instant::now() + settings.skaha.poll_timeout;
    let host = pod_host_name(&target.image);
    let window_task = watcher.map(|mut watcher| {
        let cancel = Arc::clone(&cancel);
        let host = host.clone();
        let deadline = poll_deadline + settings.launch.wait;
        tokio::task::spawn_blocking(move || {
            let matches =
                |info: &x11::WindowInfo| info.client_machine.as_deref() == Some(host.as_str());
            let found = watcher.wait_for_window(&matches, deadline, &cancel);
            // The busy cursor ends as soon as the watch does, whichever way it ends.
            if let Some(startup) = &startup {
                startup.end(&watcher);
            }
            found
        })
    });

    let poll = Poll {
        skaha: &skaha,
        session: &session,
        app_id: &app_id,
        id: &id,
        target,
        deadline: poll_deadline,
        timeout: settings.skaha.poll_timeout,
    };
    let result = follow(&poll, &mut log).await;
    let fail = |record: &mut Record, log: &mut Log, error: Error| -> Error {
        record.state = State::Failed;
        record.message = Some(error.to_string());
        let _ = store.save(record);
        log.note(&error.to_string());
        error
    };
    if let Err(ended) = result {
        cancel.store(true, Ordering::Relaxed);
        if let Some(task) = window_task {
            let _ = task.await;
        }
        return Err(match ended {
            Ended::Final(error) => fail(&mut record, &mut log, error),
            Ended::Undecided(error) => {
                // skaha may still start it: the record stays Starting, and `arcade ps` follows it.
                record.message = Some(error.to_string());
                let _ = store.save(&record);
                log.note(&error.to_string());
                error
            }
        });
    }
    record.state = State::Running;
    let _ = store.save(&record);

    let Some(mut task) = window_task else {
        // No display to watch: Running is all we can know.
        log.note("no display to watch for its window");
        return Ok(Launched {
            record,
            window_after: None,
            child: None,
        });
    };
    let window_deadline = tokio::time::sleep(settings.launch.wait);
    tokio::pin!(window_deadline);
    let found = tokio::select! {
        joined = &mut task => Some(joined.expect("window watcher panicked")),
        _ = &mut window_deadline => None,
    };
    let found = match found {
        Some(done) => done,
        None => {
            cancel.store(true, Ordering::Relaxed);
            task.await.expect("window watcher panicked")
        }
    };
    match found {
        Ok(Some((_, at))) => {
            let after = at.duration_since(started);
            record.window_ms = Some(after.as_millis() as u64);
            let _ = store.save(&record);
            log.note(&format!(
                "first window from {host} on {} after {:.2} s",
                record.display,
                after.as_secs_f64()
            ));
            observer.event(Event::WindowMapped { id, after });
            Ok(Launched {
                record,
                window_after: Some(after),
                child: None,
            })
        }
        Ok(None) => {
            let error = Error::Platform(format!(
                "skaha at {} runs {} (app {app_id}) but no window from {host} reached {} within \
                 {} s (arcade stop {id} removes it)",
                skaha.base(),
                target.label,
                record.display,
                settings.launch.wait.as_secs()
            ));
            record.message = Some(error.to_string());
            let _ = store.save(&record);
            log.note(&error.to_string());
            Err(error)
        }
        Err(err) => Err(fail(&mut record, &mut log, err.into())),
    }
}

/// What the polling needs to know.
struct Poll<'a> {
    skaha: &'a Skaha,
    session: &'a str,
    app_id: &'a str,
    /// The launch id, for the way out in messages.
    id: &'a str,
    target: &'a Target,
    deadline: Instant,
    /// The whole polling time, for messages.
    timeout: Duration,
}

/// Why polling ended before Running.
enum Ended {
    /// skaha said no: a final status, or a refused or failed request.
    Final(Error),
    /// The deadline passed with the app not yet Running; skaha may still start it.
    Undecided(Error),
}

/// Polls the app until skaha reports it Running; ends on a final status, an error, or at the
/// deadline. The last read is at the deadline, and the deadline bounds each read too (with half a
/// poll of grace, so the last one can answer): a server that does not answer cannot hold us.
async fn follow(poll: &Poll<'_>, log: &mut Log) -> Result<(), Ended> {
    let label = &poll.target.label;
    let app_id = poll.app_id;
    let mut last = String::new();
    loop {
        let read_by = poll.deadline.max(Instant::now() + POLL_EVERY / 2);
        let read =
            tokio::time::timeout_at(read_by.into(), poll.skaha.app(poll.session, app_id)).await;
        let status = match read {
            Ok(Ok(app)) => app.status.unwrap_or_else(|| "unknown".to_owned()),
            // Right after the POST the Job may not be listed yet; anything else is final.
            Ok(Err(skaha::Error::NoSuchApp { .. })) => "not listed yet".to_owned(),
            Ok(Err(err)) => return Err(Ended::Final(err.into())),
            Err(_) => {
                return Err(Ended::Undecided(Error::Platform(format!(
                    "skaha at {} did not report on {label} (app {app_id}) within {} s; it may \
                     still start (arcade stop {} removes it)",
                    poll.skaha.base(),
                    poll.timeout.as_secs(),
                    poll.id
                ))));
            }
        };
        if status != last {
            log.note(&format!("skaha reports {status}"));
            last = status;
        }
        if last == "Running" {
            return Ok(());
        }
        if is_failed(&last) {
            return Err(Ended::Final(Error::Platform(format!(
                "skaha at {} reports {label} (app {app_id}) {last}",
                poll.skaha.base()
            ))));
        }
        let now = Instant::now();
        if now >= poll.deadline {
            return Err(Ended::Undecided(Error::Platform(format!(
                "skaha at {} still reports {label} (app {app_id}) {last} after {} s; it may \
                 still start (arcade stop {} removes it)",
                poll.skaha.base(),
                poll.timeout.as_secs(),
                poll.id
            ))));
        }
        tokio::time::sleep(POLL_EVERY.min(poll.deadline - now)).await;
    }
}

/// Deletes an app from the session.
pub async fn stop(settings: &Settings, record: &Record) -> Result<()> {
    let skaha = client_at(settings, record.skaha_url.as_deref())?;
    let (Some(session), Some(app_id)) = (&record.session_id, &record.app_id) else {
        return Err(Error::NotFound(format!(
            "launch {} has no skaha app id",
            record.id
        )));
    };
    let gone = match skaha.delete_app(session, app_id).await {
        Ok(()) => "skaha deleted it",
        // Already gone (finished and cleaned up, or deleted before) is what the user wanted.
        Err(skaha::Error::NoSuchApp { .. }) => "skaha no longer had it",
        Err(err) => return Err(err.into()),
    };
    let store = Store::new(settings.dirs.launch_state());
    Log::open(&store.log_path(&record.id)).note(&format!("stopped app {app_id}: {gone}"));
    Ok(())
}

/// Live states of the session's apps, by skaha app id.
/// Live states of the session's apps, by skaha app id, asked of the service and session of the
/// newest skaha launch (else the settings' ones).
pub async fn live_states(settings: &Settings, records: &[Record]) -> Option<Vec<(String, String)>> {
    let newest = records.iter().find(|record| record.backend == "skaha");
    let skaha = client_at(settings, newest.and_then(|r| r.skaha_url.as_deref())).ok()?;
    let session = match newest.and_then(|r| r.session_id.clone()) {
        Some(session) => session,
        None => session_id(settings).ok()?,
    };
    let apps = skaha.apps(&session).await.ok()?;
    Some(
        apps.into_iter()
            .filter_map(|app| Some((app.appid?, app.status.unwrap_or_default())))
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
