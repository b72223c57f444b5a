//! What this user launched: one small JSON record and one log file per launch under
//! `$XDG_STATE_HOME/arcade/launches/`, so `arcade ps`, `stop` and `logs` work from any shell and
//! after a restart.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::config::Backend;

/// How long finished launches are remembered.
const KEEP_FINISHED: Duration = Duration::from_secs(7 * 24 * 3600);

/// Where a launch stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Starting,
    Running,
    Exited,
    Failed,
    Stopped,
}

impl State {
    pub fn is_finished(self) -> bool {
        matches!(self, State::Exited | State::Failed | State::Stopped)
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            State::Starting => "starting",
            State::Running => "running",
            State::Exited => "exited",
            State::Failed => "failed",
            State::Stopped => "stopped",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    /// What the menu calls it, e.g. `casa:6.5`.
    pub app: String,
    pub image: String,
    /// Serialised as its lowercase name, as records always were.
    pub backend: Backend,
    /// The engine's container name, for podman and docker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// The skaha session and app id, for the skaha backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// The skaha service root it was launched on, so `ps` and `stop` reach it from any shell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skaha_url: Option<String>,
    pub display: String,
    /// Seconds since the Unix epoch.
    pub started_at: u64,
    pub state: State,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Milliseconds from the launch to the first window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The app's own authorization on the display (SECURITY extension), revoked at its end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x_authorization: Option<u32>,
    /// The cookie file the launch reached the display with, to revoke that authorization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xauthority: Option<PathBuf>,
}

/// Why no one launch was found by an id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FindError {
    #[error("{0:?} is not a launch id (see arcade ps)")]
    NotAnId(String),
    #[error("no launch with id {0:?} (see arcade ps)")]
    NoSuch(String),
    /// Several launches start with the prefix, as git says of a short commit id.
    #[error(
        "launch id {prefix:?} is ambiguous; it could be {}",
        candidates
            .iter()
            .map(|r| format!("{} ({}, {})", r.id, crate::catalog::printable(&r.app), r.state))
            .collect::<Vec<_>>()
            .join(", ")
    )]
    Ambiguous {
        prefix: String,
        candidates: Vec<Record>,
    },
}

/// Whether `id` can be a launch id (or a prefix of one): hex digits only, so an id from the
/// command line or the bus never becomes a path of its own.
pub fn is_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 6 && id.chars().all(|c| c.is_ascii_hexdigit())
}

/// Six random hex digits, for launch ids and throwaway container names.
pub fn random_id() -> String {
    format!(
        "{:06x}",
        crate::http::jitter(Duration::from_nanos(1 << 24)).as_nanos()
    )
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// The folder of launch records.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    pub fn new(dir: PathBuf) -> Store {
        Store { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn record_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    pub fn log_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.log"))
    }

    /// A new launch id, unused in this store: six hex digits.
    pub fn new_id(&self) -> String {
        loop {
            let id = random_id();
            if !self.record_path(&id).exists() {
                return id;
            }
        }
    }

    pub fn save(&self, record: &Record) -> io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        // Records hold nothing secret, but a user's launches are nobody else's business.
        let bytes = serde_json::to_vec_pretty(record).expect("record serializes");
        crate::menu::install::write_atomic(&self.record_path(&record.id), &bytes, 0o600, false)
            .map(|_| ())
            .map_err(|err| io::Error::other(err.to_string()))
    }

    pub fn load(&self, id: &str) -> Option<Record> {
        if !is_id(id) {
            return None;
        }
        let bytes = fs::read(self.record_path(id)).ok()?;
        serde_json::from_slice::<Record>(&bytes)
            .ok()
            .filter(|record| record.id == id)
    }

    /// Every record, newest first; finished ones older than a week are forgotten on the way.
    pub fn all(&self) -> Vec<Record> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let cutoff = now().saturating_sub(KEEP_FINISHED.as_secs());
        let mut records: Vec<Record> = entries
            .flatten()
            .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "json"))
            .filter_map(|entry| {
                let bytes = fs::read(entry.path()).ok()?;
                // A record names its own file; one that names another is not ours to trust.
                serde_json::from_slice::<Record>(&bytes)
                    .ok()
                    .filter(|record| {
                        is_id(&record.id)
                            && entry.path().file_stem() == Some(std::ffi::OsStr::new(&record.id))
                    })
            })
            .filter(|record| {
                let expired = record.state.is_finished() && record.started_at < cutoff;
                if expired {
                    let _ = fs::remove_file(self.record_path(&record.id));
                    let _ = fs::remove_file(self.log_path(&record.id));
                }
                !expired
            })
            .collect();
        records.sort_by(|a, b| b.started_at.cmp(&a.started_at).then(a.id.cmp(&b.id)));
        records
    }

    /// Finds a record by id or unique id prefix.
    pub fn find(&self, id: &str) -> Result<Record, FindError> {
        if !is_id(id) {
            return Err(FindError::NotAnId(id.to_owned()));
        }
        if let Some(record) = self.load(id) {
            return Ok(record);
        }
        let mut matches: Vec<Record> = self
            .all()
            .into_iter()
            .filter(|record| record.id.starts_with(id))
            .collect();
        match matches.len() {
            0 => Err(FindError::NoSuch(id.to_owned())),
            1 => Ok(matches.remove(0)),
            _ => Err(FindError::Ambiguous {
                prefix: id.to_owned(),
                candidates: matches,
            }),
        }
    }

    /// Opens a launch's log for appending, private to the user.
    pub fn open_log(&self, id: &str) -> io::Result<fs::File> {
        use std::os::unix::fs::OpenOptionsExt as _;
        fs::create_dir_all(&self.dir)?;
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(self.log_path(id))
    }

    /// Adds a line of arcade's own to a launch's log (the app's output goes there too, so ours
    /// start with `arcade: `). A log that cannot be written never fails a launch.
    pub fn note(&self, id: &str, line: &str) {
        use std::io::Write as _;
        match self.open_log(id) {
            Ok(mut file) => {
                let _ = writeln!(file, "arcade: {line}");
            }
            Err(err) => tracing::debug!("cannot write {}: {err}", self.log_path(id).display()),
        }
    }

    /// The last `n` lines of a launch's log.
    pub fn log_tail(&self, id: &str, n: usize) -> Vec<String> {
        let text = fs::read_to_string(self.log_path(id)).unwrap_or_default();
        let lines: Vec<&str> = text
            .lines()
            .filter(|line| !line.trim().is_empty() && !line.starts_with("arcade: "))
            .collect();
        lines[lines.len().saturating_sub(n)..]
            .iter()
            .map(|line| (*line).to_owned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, started_at: u64, state: State) -> Record {
        Record {
            id: id.into(),
            app: "terminal:1.0".into(),
            image: "h/p/terminal:1.0".into(),
            backend: Backend::Podman,
            container: Some(crate::launch::engine::container_name(id)),
            session_id: None,
            app_id: None,
            skaha_url: None,
            display: ":1".into(),
            started_at,
            state,
            exit_code: None,
            window_ms: None,
            message: None,
            x_authorization: None,
            xauthority: None,
        }
    }

    #[test]
    fn saves_finds_and_forgets() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("launches"));
        store
            .save(&record("abc123", now(), State::Running))
            .unwrap();
        store
            .save(&record("abd999", now() - 1, State::Exited))
            .unwrap();
        store.save(&record("old000", 10, State::Exited)).unwrap();
        assert_eq!(store.find("abc").unwrap().id, "abc123");
        let ambiguous = store.find("ab").unwrap_err().to_string();
        assert_eq!(
            ambiguous,
            "launch id \"ab\" is ambiguous; it could be abc123 (terminal:1.0, running), abd999 \
             (terminal:1.0, exited)"
        );
        assert!(store.find("zzz").is_err());
        let ids: Vec<String> = store.all().into_iter().map(|r| r.id).collect();
        assert_eq!(ids, ["abc123", "abd999"]);
        assert!(store.load("old000").is_none());
    }

    #[test]
    fn records_written_before_the_backend_was_typed_still_read() {
        let text = r#"{"id":"abc123","app":"terminal:1.0","image":"h/p/terminal:1.0",
            "backend":"skaha","session_id":"s","app_id":"a1","display":":1",
            "started_at":5,"state":"running"}"#;
        let record: Record = serde_json::from_str(text).unwrap();
        assert_eq!(record.backend, Backend::Skaha);
        let again = serde_json::to_value(&record).unwrap();
        assert_eq!(again["backend"], "skaha");
    }

    #[test]
    fn ids_are_six_hex_digits() {
        let store = Store::new(PathBuf::from("/nonexistent"));
        let id = store.new_id();
        assert_eq!(id.len(), 6);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
