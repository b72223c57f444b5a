//! What a running hub shows of itself: its URL, its lockfile and its clients, kept in a status
//! file (JSON, written whole) that `arcade samp` reads without talking to the hub, which may
//! listen on a network `arcade samp` is not on (a session's pod).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::hub::{Client, Hub};

/// A hub and its clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The hub's process.
    pub pid: u32,
    pub url: String,
    pub lockfile: PathBuf,
    /// Unix seconds.
    pub started_at: u64,
    pub clients: Vec<ClientStatus>,
}

/// A registered client, as the status shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientStatus {
    pub id: String,
    /// `samp.name`, when declared.
    pub name: Option<String>,
    /// The address its registration came from.
    pub from: IpAddr,
    /// The callback URL it advertised.
    pub callback: Option<String>,
    /// The URL the hub uses instead, when it translated the advertised one.
    pub reached_at: Option<String>,
    /// The MTypes it subscribed to.
    pub subscriptions: Vec<String>,
    /// Why the hub could not deliver to it last time, until a delivery succeeds.
    pub unreachable: Option<String>,
}

impl ClientStatus {
    fn of(client: &Client) -> ClientStatus {
        ClientStatus {
            id: client.id.clone(),
            name: client.name().map(str::to_owned),
            from: client.from,
            callback: client.callback.as_ref().map(|cb| cb.advertised.clone()),
            reached_at: client
                .callback
                .as_ref()
                .filter(|cb| cb.translated())
                .map(|cb| cb.endpoint.url()),
            subscriptions: client.subscriptions.keys().cloned().collect(),
            unreachable: client.unreachable.clone(),
        }
    }
}

impl Status {
    /// Whether the hub's process still runs.
    pub fn alive(&self) -> bool {
        let pid = libc::pid_t::try_from(self.pid).unwrap_or(0);
        if pid <= 0 {
            return false;
        }
        // SAFETY: kill with signal 0 only checks that the process exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0;
        // A process of another user (the hub of a root daemon) exists but may not be signalled.
        alive || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }

    pub fn read(path: &Path) -> Option<Status> {
        serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
    }
}

/// Keeps a hub's status file (and its saved state) up to date while the hub runs.
pub struct Writer {
    path: Option<PathBuf>,
    state: Option<PathBuf>,
    url: String,
    lockfile: PathBuf,
    started_at: u64,
}

impl Writer {
    pub fn new(options: &super::Options, url: &str) -> Writer {
        Writer {
            path: options.status.clone(),
            state: options.state.clone(),
            url: url.to_owned(),
            lockfile: options.lockfile.clone(),
            started_at: crate::launch::record::now(),
        }
    }

    /// Writes the status and the state now and after every change (a burst of changes makes
    /// one write); never returns while the hub runs.
    pub async fn keep(&self, hub: &Arc<Hub>) {
        if self.path.is_none() && self.state.is_none() {
            return std::future::pending().await;
        }
        loop {
            if let Some(path) = &self.path {
                let status = Status {
                    pid: std::process::id(),
                    url: self.url.clone(),
                    lockfile: self.lockfile.clone(),
                    started_at: self.started_at,
                    clients: hub.clients().iter().map(ClientStatus::of).collect(),
                };
                if let Err(err) = write(path, &status, 0o644) {
                    tracing::warn!("failed to write the SAMP status {}: {err}", path.display());
                }
            }
            if let Some(path) = &self.state
                && let Err(err) = write(path, &hub.saved(&self.url), 0o600)
            {
                tracing::warn!(
                    "failed to save the SAMP hub's state {}: {err}",
                    path.display()
                );
            }
            hub.changed.notified().await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Removes the status and the state: the hub has ended on purpose.
    pub fn remove(&self) {
        for path in self.path.iter().chain(&self.state) {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Writes `value` as JSON to `path` as a whole, with `mode`.
fn write(path: &Path, value: &impl Serialize, mode: u32) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::PermissionsExt as _;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut temporary = tempfile::Builder::new()
        .prefix(".status-")
        .permissions(std::fs::Permissions::from_mode(mode))
        .tempfile_in(dir)?;
    let text = serde_json::to_string_pretty(value).map_err(std::io::Error::other)?;
    temporary.write_all(text.as_bytes())?;
    temporary.persist(path).map_err(|err| err.error)?;
    Ok(())
}

/// The MTypes a client subscribed to, shortest first, for one line of text.
pub fn mtypes(client: &ClientStatus) -> String {
    let mut mtypes: Vec<&str> = client
        .subscriptions
        .iter()
        .map(String::as_str)
        .filter(|mtype| !mtype.starts_with("samp.hub."))
        .collect();
    mtypes.sort_by_key(|mtype| (mtype.len(), *mtype));
    mtypes.join(" ")
}
