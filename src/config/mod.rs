//! Settings: config files, environment and flags resolved into one [`Settings`], each value
//! knowing where it came from.
//!
//! The schema is written once, as [`Layer`] (every key optional). Each source of settings is a
//! layer of it: the platform session's variables, each config file (`$XDG_CONFIG_DIRS`, lowest
//! first, by default `/etc/xdg/arcade/config.toml`; then `$XDG_CONFIG_HOME/arcade/config.toml`;
//! then the file `--config` or `ARCADE_CONFIG` names), the `ARCADE_*` variables, and the flags.
//! [`resolve`] merges them key by key, highest winning, and turns the result into [`Settings`]
//! once. Secrets come from files or the environment, never from flags, and never print.
//!
//! - `layer.rs`: the schema, its TOML parsing and the key-by-key merge with origins;
//! - `env.rs`: which variable sets which key, through an injected lookup;
//! - `resolve.rs`: the merge and the checks, pure but for reading credential files;
//! - `view.rs`: what `arcade config` shows, derived from [`Settings`];
//! - `dirs.rs`: the XDG base directories.

mod dirs;
mod env;
mod layer;
mod resolve;
mod view;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use dirs::Dirs;
pub use env::{Lookup, process_env};
pub use layer::{Layer, Origin, Origins};
pub use resolve::{ConfigFile, checked_skaha_url, resolve};
pub use view::Shown;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    // The I/O error is part of the message, not a `source`: callers that print only the message
    // (the daemon's notification) still say why, and `{:#}` does not say it twice.
    #[error("failed to read config {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("config {path} is invalid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("failed to read secret file {path}: {error}")]
    Secret {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("secret file {path} is empty")]
    EmptySecret { path: PathBuf },
    #[error("{0}")]
    Invalid(String),
    #[error("neither $HOME nor $XDG_* directories are set, so there is nowhere to write")]
    NoHome,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where the catalog comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum Source {
    Harbor,
    Skaha,
    File,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Harbor => "harbor",
            Source::Skaha => "skaha",
            Source::File => "file",
        })
    }
}

impl TryFrom<String> for Source {
    type Error = String;

    fn try_from(value: String) -> Result<Source, String> {
        choice(&value)
    }
}

/// Which engine runs launched apps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum Backend {
    Podman,
    Docker,
    Skaha,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Podman => "podman",
            Backend::Docker => "docker",
            Backend::Skaha => "skaha",
        })
    }
}

impl TryFrom<String> for Backend {
    type Error = String;

    fn try_from(value: String) -> Result<Backend, String> {
        choice(&value)
    }
}

/// A choice (`harbor`, `podman`, …) read as the flags read it, ignoring case, so files, variables
/// and flags accept the same words; an error lists the choices.
fn choice<T: clap::ValueEnum>(value: &str) -> Result<T, String> {
    T::from_str(value, true).map_err(|_| {
        let names: Vec<String> = T::value_variants()
            .iter()
            .filter_map(|variant| variant.to_possible_value())
            .map(|possible| possible.get_name().to_owned())
            .collect();
        format!("{value:?} must be one of {}", names.join(", "))
    })
}

/// A secret value; `Debug`, `Display` and `Serialize` never show it, only where it came from.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    value: String,
    /// Where it came from, for `arcade config` (`file /path` or `environment VAR`).
    pub origin: String,
}

impl Secret {
    pub fn new(value: String, origin: String) -> Secret {
        Secret { value, origin }
    }

    pub fn expose(&self) -> &str {
        &self.value
    }

    fn from_file(path: &Path) -> Result<Secret> {
        use std::os::unix::fs::PermissionsExt;
        let text = std::fs::read_to_string(path).map_err(|error| Error::Secret {
            path: path.to_owned(),
            error,
        })?;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o004 != 0
        {
            tracing::warn!(
                path = %path.display(),
                "secret file is readable by every user; chmod 600 it"
            );
        }
        let value = text.trim_end_matches(['\n', '\r']).to_owned();
        if value.is_empty() {
            return Err(Error::EmptySecret {
                path: path.to_owned(),
            });
        }
        Ok(Secret::new(value, format!("file {}", path.display())))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<secret from {}>", self.origin)
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&format_args!("(set, from {})", self.origin))
    }
}

/// Settings given on the command line: the flag layer. `ARCADE_*` variables are not merged in
/// here but by [`resolve`], below these.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--config`: one more config file, read last (`ARCADE_CONFIG` when this is unset).
    pub config_file: Option<PathBuf>,
    pub source: Option<Source>,
    pub url: Option<String>,
    pub label: Option<String>,
    pub catalog: Option<PathBuf>,
    pub backend: Option<Backend>,
    /// The skaha service for launching (`arcade launch --backend skaha --url`).
    pub skaha_url: Option<String>,
    pub allow_empty: bool,
}

impl Overrides {
    /// The keys the flags set, each with its flag as the origin.
    fn entries(&self) -> Result<Vec<layer::Entry>> {
        fn value<T: Serialize>(value: &Option<T>) -> Result<Option<toml::Value>> {
            value
                .as_ref()
                .map(toml::Value::try_from)
                .transpose()
                .map_err(|err| Error::Invalid(format!("a flag's value is unusable: {err}")))
        }
        // `--catalog` alone means that file: syncing a registry beside it would surprise.
        let source = match (self.source, &self.catalog) {
            (None, Some(_)) => (Some(Source::File), "--catalog"),
            (source, _) => (source, "--source"),
        };
        let flags = [
            ("source", source.1, value(&source.0)?),
            ("url", "--url", value(&self.url)?),
            ("label", "--label", value(&self.label)?),
            ("catalog", "--catalog", value(&self.catalog)?),
            // `--allow-empty` can only say yes; without it the lower layers decide.
            (
                "allow_empty",
                "--allow-empty",
                value(&self.allow_empty.then_some(true))?,
            ),
            ("launch.backend", "--backend", value(&self.backend)?),
            ("skaha.url", "--url", value(&self.skaha_url)?),
        ];
        Ok(flags
            .into_iter()
            .filter_map(|(key, flag, value)| Some((key.to_owned(), value?, Origin::Flag(flag))))
            .collect())
    }
}

/// Harbor credentials: a user (local, LDAP, OIDC with its CLI secret) or a robot account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HarborAuth {
    pub username: String,
    pub secret: Secret,
}

/// How to authenticate to skaha.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkahaAuth {
    /// The desktop session's callback token, sent as `x-auth-token-skaha`.
    SessionToken(Secret),
    /// A bearer token, sent as `Authorization: Bearer`.
    Bearer(Secret),
    /// A PEM file with a client certificate and its key.
    Certificate(PathBuf),
    Anonymous,
}

/// The resolved settings. `Serialize` gives `arcade config` its keys (see `view.rs`): each field
/// is named as its config key, secrets show only where they come from.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub dirs: Dirs,
    /// The config files that were read, lowest precedence first.
    #[serde(rename = "config_files")]
    pub files: Vec<PathBuf>,
    pub source: Source,
    pub url: String,
    pub label: String,
    pub catalog: Option<PathBuf>,
    /// Per HTTP request.
    #[serde(rename = "timeout_secs", with = "view::secs")]
    pub timeout: Duration,
    /// For a whole sync.
    #[serde(rename = "deadline_secs", with = "view::secs")]
    pub deadline: Duration,
    pub concurrency: usize,
    pub ca_file: Option<PathBuf>,
    pub allow_empty: bool,
    #[serde(rename = "harbor", with = "view::harbor")]
    pub harbor_auth: Option<HarborAuth>,
    /// Files holding credentials (secret, token, certificate), watched by the daemon.
    #[serde(skip)]
    pub secret_files: Vec<PathBuf>,
    pub skaha: SkahaSettings,
    pub menu: MenuSettings,
    pub launch: LaunchSettings,
    pub daemon: DaemonSettings,
    pub samp: SampSettings,
    /// Where each value came from, by config key (`skaha.url`); a key missing here has its
    /// default.
    #[serde(skip)]
    pub origins: Origins,
}

#[derive(Debug, Clone, Serialize)]
pub struct SkahaSettings {
    /// The skaha service root, e.g. `https://ws-uv.canfar.net/skaha`.
    pub url: Option<String>,
    pub api_version: String,
    #[serde(with = "view::skaha_auth")]
    pub auth: SkahaAuth,
    /// The desktop session the apps attach to (`VNC_PW` / `skaha_sessionid` on the platform).
    pub session_id: Option<String>,
    /// How long a launch waits for skaha to report the app Running.
    #[serde(rename = "poll_timeout_secs", with = "view::secs")]
    pub poll_timeout: Duration,
    /// How often the daemon asks skaha whether an app it launched still runs.
    #[serde(rename = "watch_secs", with = "view::secs")]
    pub watch: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct MenuSettings {
    pub submenu_threshold: usize,
    pub shortcuts: Vec<String>,
    /// `None` when there is no desktop folder to put shortcuts in.
    pub desktop_dir: Option<PathBuf>,
    #[serde(rename = "wm_class")]
    pub wm_classes: BTreeMap<String, String>,
    /// Right-click resource choices on every entry whose image names none, `cores/GB[/GPUs]`.
    pub presets: Vec<String>,
    /// The file types each app opens, over the built-in ones (`menu::KNOWN_MIME_TYPES`).
    pub mime_types: BTreeMap<String, Vec<String>>,
    /// The site's default app per file type, over the built-in ones (`menu::mime::KNOWN_DEFAULTS`);
    /// an empty name takes a built-in default away.
    pub mime_defaults: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LaunchSettings {
    pub backend: Backend,
    /// The engine's network for app containers; `none` unless the operator allows one.
    pub network: String,
    /// `auto` (the host uid/gid, or 1000:1000 when the host user is root) or `uid:gid`.
    pub user: String,
    /// How long `arcade launch` waits for the first window.
    #[serde(rename = "wait_secs", with = "view::secs")]
    pub wait: Duration,
    pub cores: Option<u32>,
    pub ram_gb: Option<u32>,
    /// Shown by name only: operators may pass tokens to apps this way.
    #[serde(with = "view::names")]
    pub env: BTreeMap<String, String>,
    pub volumes: Vec<String>,
    /// The engine's pull policy (`missing`, `never`, `always`, `newer`; docker runs `newer` as
    /// `always`, its nearest).
    pub pull: String,
    /// A `containers.conf` passed to podman through `CONTAINERS_CONF`.
    pub containers_conf: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DaemonSettings {
    #[serde(rename = "refresh_minutes", with = "view::minutes")]
    pub refresh: Duration,
    pub stop_apps_on_exit: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct SampSettings {
    /// Whether the daemon gives its session a SAMP hub (and local apps a shared network).
    pub enabled: bool,
    /// The address the hub of a platform desktop listens on; `None`: the desktop's own.
    pub address: Option<String>,
}

/// True inside a CANFAR desktop session, where skaha is both the catalog and the launcher.
pub fn in_platform_session() -> bool {
    env::Env(&process_env).in_platform_session()
}

/// Finds a program on `$PATH`.
pub fn which(program: &str) -> Option<PathBuf> {
    find_program(std::env::var_os("PATH").as_deref(), program)
}

/// Finds a program in the folders of a `PATH` value.
fn find_program(path: Option<&OsStr>, program: &str) -> Option<PathBuf> {
    std::env::split_paths(path?)
        .map(|dir| dir.join(program))
        .find(|candidate| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(candidate)
                .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        })
}

/// Reads the config files that exist, lowest precedence first, then `explicit`, which must exist.
pub fn read_files(dirs: &Dirs, explicit: Option<&Path>) -> Result<Vec<ConfigFile>> {
    let mut candidates: Vec<PathBuf> = dirs
        .config_dirs
        .iter()
        .rev()
        .map(|dir| dir.join("arcade/config.toml"))
        .collect();
    candidates.push(dirs.user_config_file());
    let mut files = Vec::new();
    for path in candidates {
        match std::fs::read_to_string(&path) {
            Ok(text) => files.push(ConfigFile {
                layer: Layer::parse(&text, &path)?,
                path,
            }),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(Error::Read { path, error }),
        }
    }
    if let Some(path) = explicit {
        let text = std::fs::read_to_string(path).map_err(|error| Error::Read {
            path: path.to_owned(),
            error,
        })?;
        files.push(ConfigFile {
            layer: Layer::parse(&text, path)?,
            path: path.to_owned(),
        });
    }
    Ok(files)
}

/// Resolves the settings from the process's directories, files, variables and `overrides`.
pub fn load(overrides: &Overrides) -> Result<Settings> {
    load_with(Dirs::from_env()?, overrides, &process_env)
}

/// Like [`load`], with the directories and the environment given.
pub fn load_with(dirs: Dirs, overrides: &Overrides, env: &Lookup) -> Result<Settings> {
    let explicit = overrides
        .config_file
        .clone()
        .or_else(|| env::Env(env).config_file());
    let files = read_files(&dirs, explicit.as_deref())?;
    resolve(dirs, files, env, overrides)
}

#[cfg(test)]
mod tests;
