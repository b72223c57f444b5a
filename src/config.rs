//! Settings: the config files, environment and flags resolved into one [`Settings`].
//!
//! Precedence, highest first: command-line flags, environment variables (`ARCADE_*`), the user's
//! `$XDG_CONFIG_HOME/arcade/config.toml`, each `$XDG_CONFIG_DIRS/arcade/config.toml` (by default
//! `/etc/xdg/arcade/config.toml`), then built-in defaults. Flags and their environment variables
//! are merged by clap before they reach [`load`]. Secrets are read from files or the environment,
//! never from flags, and never printed.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to read config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config {path} is invalid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("failed to read secret file {path}: {source}")]
    Secret {
        path: PathBuf,
        source: std::io::Error,
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
#[serde(rename_all = "lowercase")]
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

/// Which engine runs launched apps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
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

/// A secret value; `Debug` and `Display` never show it.
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
        let text = std::fs::read_to_string(path).map_err(|source| Error::Secret {
            path: path.to_owned(),
            source,
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

    fn from_env(var: &str) -> Option<Secret> {
        std::env::var(var)
            .ok()
            .filter(|value| !value.is_empty())
            .map(|value| Secret::new(value, format!("environment {var}")))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<secret from {}>", self.origin)
    }
}

/// The per-user and system directories arcade reads and writes, from the XDG Base Directory
/// variables. Relative values are ignored, as the spec requires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dirs {
    pub home: PathBuf,
    pub data_home: PathBuf,
    pub config_home: PathBuf,
    pub config_dirs: Vec<PathBuf>,
    pub cache_home: PathBuf,
    pub state_home: PathBuf,
    pub runtime_dir: Option<PathBuf>,
}

fn absolute_env(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .map(PathBuf::from)
        .filter(|path| path.is_absolute())
}

impl Dirs {
    pub fn from_env() -> Result<Dirs> {
        let home = absolute_env("HOME");
        let under_home = |var: &str, rel: &str| -> Result<PathBuf> {
            absolute_env(var)
                .or_else(|| home.as_ref().map(|home| home.join(rel)))
                .ok_or(Error::NoHome)
        };
        let config_dirs = std::env::var("XDG_CONFIG_DIRS")
            .ok()
            .map(|dirs| {
                dirs.split(':')
                    .map(PathBuf::from)
                    .filter(|path| path.is_absolute())
                    .collect::<Vec<_>>()
            })
            .filter(|dirs| !dirs.is_empty())
            .unwrap_or_else(|| vec![PathBuf::from("/etc/xdg")]);
        Ok(Dirs {
            data_home: under_home("XDG_DATA_HOME", ".local/share")?,
            config_home: under_home("XDG_CONFIG_HOME", ".config")?,
            cache_home: under_home("XDG_CACHE_HOME", ".cache")?,
            state_home: under_home("XDG_STATE_HOME", ".local/state")?,
            runtime_dir: absolute_env("XDG_RUNTIME_DIR"),
            config_dirs,
            home: home.ok_or(Error::NoHome)?,
        })
    }

    /// The user's config file, which is also the one the daemon watches.
    pub fn user_config_file(&self) -> PathBuf {
        self.config_home.join("arcade/config.toml")
    }

    /// The last good catalog, used by `--offline` and at session start.
    pub fn cached_catalog(&self) -> PathBuf {
        self.cache_home.join("arcade/catalog.json")
    }

    /// Where per-launch records and logs live.
    pub fn launch_state(&self) -> PathBuf {
        self.state_home.join("arcade/launches")
    }

    /// The desktop folder from `user-dirs.dirs`, else `~/Desktop`; `None` when the user turned
    /// the desktop off (xdg-user-dirs writes `XDG_DESKTOP_DIR="$HOME/"` then).
    pub fn desktop_dir(&self) -> Option<PathBuf> {
        let dir = self.desktop_dir_setting();
        (dir != self.home && dir != self.home.join("")).then_some(dir)
    }

    fn desktop_dir_setting(&self) -> PathBuf {
        let file = self.config_home.join("user-dirs.dirs");
        if let Ok(text) = std::fs::read_to_string(file) {
            for line in text.lines() {
                if let Some(value) = line.trim().strip_prefix("XDG_DESKTOP_DIR=") {
                    let value = value.trim_matches('"');
                    let path = match value.strip_prefix("$HOME") {
                        Some(rest) => self.home.join(rest.trim_start_matches('/')),
                        None => PathBuf::from(value),
                    };
                    if path.is_absolute() {
                        return path;
                    }
                }
            }
        }
        self.home.join("Desktop")
    }
}

/// The TOML file format. Every key is optional; unknown keys are errors so typos are caught.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    source: Option<Source>,
    url: Option<String>,
    label: Option<String>,
    catalog: Option<PathBuf>,
    timeout_secs: Option<u64>,
    deadline_secs: Option<u64>,
    concurrency: Option<usize>,
    ca_file: Option<PathBuf>,
    allow_empty: Option<bool>,
    #[serde(default)]
    harbor: HarborFile,
    #[serde(default)]
    skaha: SkahaFile,
    #[serde(default)]
    menu: MenuFile,
    #[serde(default)]
    launch: LaunchFile,
    #[serde(default)]
    daemon: DaemonFile,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct HarborFile {
    username: Option<String>,
    secret_file: Option<PathBuf>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SkahaFile {
    /// The skaha service apps are launched on, when the catalog comes from elsewhere.
    url: Option<String>,
    api_version: Option<String>,
    token_file: Option<PathBuf>,
    cert_file: Option<PathBuf>,
    session_id: Option<String>,
    poll_timeout_secs: Option<u64>,
    watch_secs: Option<u64>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct MenuFile {
    submenu_threshold: Option<usize>,
    shortcuts: Option<Vec<String>>,
    desktop_dir: Option<PathBuf>,
    wm_class: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct LaunchFile {
    backend: Option<Backend>,
    network: Option<String>,
    user: Option<String>,
    wait_secs: Option<u64>,
    cores: Option<u32>,
    ram_gb: Option<u32>,
    env: Option<BTreeMap<String, String>>,
    volumes: Option<Vec<String>>,
    pull: Option<String>,
    containers_conf: Option<PathBuf>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct DaemonFile {
    refresh_minutes: Option<u64>,
    stop_apps_on_exit: Option<bool>,
}

impl FileConfig {
    /// Parses one config file's text.
    pub fn parse(text: &str, path: &Path) -> Result<FileConfig> {
        toml::from_str(text).map_err(|err| Error::Parse {
            path: path.to_owned(),
            message: err.message().to_owned()
                + &err
                    .span()
                    .map(|span| {
                        let line = text[..span.start].matches('\n').count() + 1;
                        format!(" (line {line})")
                    })
                    .unwrap_or_default(),
        })
    }

    /// Fills every key unset here from `lower`.
    fn or(self, lower: FileConfig) -> FileConfig {
        FileConfig {
            source: self.source.or(lower.source),
            url: self.url.or(lower.url),
            label: self.label.or(lower.label),
            catalog: self.catalog.or(lower.catalog),
            timeout_secs: self.timeout_secs.or(lower.timeout_secs),
            deadline_secs: self.deadline_secs.or(lower.deadline_secs),
            concurrency: self.concurrency.or(lower.concurrency),
            ca_file: self.ca_file.or(lower.ca_file),
            allow_empty: self.allow_empty.or(lower.allow_empty),
            harbor: HarborFile {
                username: self.harbor.username.or(lower.harbor.username),
                secret_file: self.harbor.secret_file.or(lower.harbor.secret_file),
            },
            skaha: SkahaFile {
                url: self.skaha.url.or(lower.skaha.url),
                api_version: self.skaha.api_version.or(lower.skaha.api_version),
                token_file: self.skaha.token_file.or(lower.skaha.token_file),
                cert_file: self.skaha.cert_file.or(lower.skaha.cert_file),
                session_id: self.skaha.session_id.or(lower.skaha.session_id),
                poll_timeout_secs: self
                    .skaha
                    .poll_timeout_secs
                    .or(lower.skaha.poll_timeout_secs),
                watch_secs: self.skaha.watch_secs.or(lower.skaha.watch_secs),
            },
            menu: MenuFile {
                submenu_threshold: self.menu.submenu_threshold.or(lower.menu.submenu_threshold),
                shortcuts: self.menu.shortcuts.or(lower.menu.shortcuts),
                desktop_dir: self.menu.desktop_dir.or(lower.menu.desktop_dir),
                wm_class: self.menu.wm_class.or(lower.menu.wm_class),
            },
            launch: LaunchFile {
                backend: self.launch.backend.or(lower.launch.backend),
                network: self.launch.network.or(lower.launch.network),
                user: self.launch.user.or(lower.launch.user),
                wait_secs: self.launch.wait_secs.or(lower.launch.wait_secs),
                cores: self.launch.cores.or(lower.launch.cores),
                ram_gb: self.launch.ram_gb.or(lower.launch.ram_gb),
                env: self.launch.env.or(lower.launch.env),
                volumes: self.launch.volumes.or(lower.launch.volumes),
                pull: self.launch.pull.or(lower.launch.pull),
                containers_conf: self.launch.containers_conf.or(lower.launch.containers_conf),
            },
            daemon: DaemonFile {
                refresh_minutes: self.daemon.refresh_minutes.or(lower.daemon.refresh_minutes),
                stop_apps_on_exit: self
                    .daemon
                    .stop_apps_on_exit
                    .or(lower.daemon.stop_apps_on_exit),
            },
        }
    }
}

/// Settings given on the command line (already merged with their `ARCADE_*` variables by clap).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
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

/// Harbor credentials: a user (local, LDAP, OIDC with its CLI secret) or a robot account.
#[derive(Debug, Clone, PartialEq, Eq)]
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

#[derive(Debug, Clone)]
pub struct Settings {
    pub dirs: Dirs,
    /// The config files that were read, lowest precedence first.
    pub files: Vec<PathBuf>,
    pub source: Source,
    pub url: String,
    pub label: String,
    pub catalog: Option<PathBuf>,
    /// Per HTTP request.
    pub timeout: Duration,
    /// For a whole sync.
    pub deadline: Duration,
    pub concurrency: usize,
    pub ca_file: Option<PathBuf>,
    pub allow_empty: bool,
    pub harbor_auth: Option<HarborAuth>,
    /// Files holding credentials (secret, token, certificate), watched by the daemon.
    pub secret_files: Vec<PathBuf>,
    pub skaha: SkahaSettings,
    pub menu: MenuSettings,
    pub launch: LaunchSettings,
    pub daemon: DaemonSettings,
}

#[derive(Debug, Clone)]
pub struct SkahaSettings {
    /// The skaha service root, e.g. `https://ws-uv.canfar.net/skaha`.
    pub url: Option<String>,
    pub api_version: String,
    pub auth: SkahaAuth,
    /// The desktop session the apps attach to (`VNC_PW` / `skaha_sessionid` on the platform).
    pub session_id: Option<String>,
    /// How long a launch waits for skaha to report the app Running.
    pub poll_timeout: Duration,
    /// How often the daemon asks skaha whether an app it launched still runs.
    pub watch: Duration,
}

#[derive(Debug, Clone)]
pub struct MenuSettings {
    pub submenu_threshold: usize,
    pub shortcuts: Vec<String>,
    /// `None` when there is no desktop folder to put shortcuts in.
    pub desktop_dir: Option<PathBuf>,
    pub wm_classes: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct LaunchSettings {
    pub backend: Backend,
    /// The engine's network for app containers; `none` unless the operator allows one.
    pub network: String,
    /// `auto` (the host uid/gid, or 1000:1000 when the host user is root) or `uid:gid`.
    pub user: String,
    /// How long `arcade launch` waits for the first window.
    pub wait: Duration,
    pub cores: Option<u32>,
    pub ram_gb: Option<u32>,
    pub env: BTreeMap<String, String>,
    pub volumes: Vec<String>,
    /// The engine's pull policy (`missing`, `never`, `always`, `newer`; docker runs `newer` as
    /// `always`, its nearest).
    pub pull: String,
    /// A `containers.conf` passed to podman through `CONTAINERS_CONF`.
    pub containers_conf: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct DaemonSettings {
    pub refresh: Duration,
    pub stop_apps_on_exit: bool,
}

/// True inside a CANFAR desktop session, where skaha is both the catalog and the launcher.
pub fn in_platform_session() -> bool {
    std::env::var_os("skaha_hostname").is_some_and(|host| !host.is_empty())
}

fn platform_skaha_url() -> Option<String> {
    std::env::var("skaha_hostname")
        .ok()
        .filter(|host| !host.is_empty())
        .map(|host| format!("https://{host}/skaha"))
}

fn env_nonempty(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|value| !value.is_empty())
}

/// A choice (`harbor`, `podman`, …) from the environment; a value that is none of them is an
/// error naming the variable.
fn env_choice<T: clap::ValueEnum>(var: &str) -> Result<Option<T>> {
    let Some(value) = env_nonempty(var) else {
        return Ok(None);
    };
    T::from_str(&value, true).map(Some).map_err(|_| {
        let names: Vec<String> = T::value_variants()
            .iter()
            .filter_map(|variant| variant.to_possible_value())
            .map(|possible| possible.get_name().to_owned())
            .collect();
        Error::Invalid(format!(
            "{var}={value:?} must be one of {}",
            names.join(", ")
        ))
    })
}

/// Reads the config files that exist, lowest precedence first.
pub fn read_files(dirs: &Dirs, explicit: Option<&Path>) -> Result<(FileConfig, Vec<PathBuf>)> {
    let mut candidates: Vec<PathBuf> = dirs
        .config_dirs
        .iter()
        .rev()
        .map(|dir| dir.join("arcade/config.toml"))
        .collect();
    candidates.push(dirs.user_config_file());
    let mut merged = FileConfig::default();
    let mut read = Vec::new();
    for path in candidates {
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                merged = FileConfig::parse(&text, &path)?.or(merged);
                read.push(path);
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(Error::Read { path, source }),
        }
    }
    if let Some(path) = explicit {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        merged = FileConfig::parse(&text, path)?.or(merged);
        read.push(path.to_owned());
    }
    Ok((merged, read))
}

/// Resolves the settings from the environment's directories, files, variables and `overrides`.
pub fn load(overrides: &Overrides) -> Result<Settings> {
    let dirs = Dirs::from_env()?;
    let (file, files) = read_files(&dirs, overrides.config_file.as_deref())?;
    resolve(dirs, file, files, overrides)
}

/// Like [`load`], but from config text already read (the daemon re-reads files itself).
pub fn resolve(
    dirs: Dirs,
    file: FileConfig,
    files: Vec<PathBuf>,
    overrides: &Overrides,
) -> Result<Settings> {
    let platform = in_platform_session();
    // The environment sits between flags and files, for every command alike (the daemon and
    // `arcade config` included), so it is read here and nowhere else.
    let env_source = env_choice::<Source>("ARCADE_SOURCE")?;
    let env_backend = env_choice::<Backend>("ARCADE_BACKEND")?;
    let env_url = env_nonempty("ARCADE_URL");
    let source = overrides
        .source
        .or(env_source)
        .or(file.source)
        .unwrap_or(if platform {
            Source::Skaha
        } else {
            Source::Harbor
        });
    let source_url = overrides
        .url
        .clone()
        .or(env_url.clone())
        .or(file.url.clone());
    // The service apps are launched on: named for it, or the catalog source's when that is
    // skaha, or the platform desktop's; `ARCADE_URL` only as a last resort, since it usually
    // names the catalog source (a Harbor).
    let skaha_url = overrides
        .skaha_url
        .clone()
        .or_else(|| env_nonempty("ARCADE_SKAHA_URL"))
        .or(match source {
            Source::Skaha => source_url.clone(),
            _ => None,
        })
        .or(file.skaha.url.clone())
        .or_else(platform_skaha_url)
        .or(match source {
            Source::Skaha => None,
            _ => env_url.clone(),
        })
        .map(|url| skaha_root(&url));
    let url = match source {
        Source::Harbor => source_url
            .clone()
            .unwrap_or_else(|| "https://images.canfar.net".to_owned()),
        Source::Skaha => skaha_url.clone().ok_or_else(|| {
            Error::Invalid(
                "the skaha source needs a URL: set --url, ARCADE_URL or url in the config \
                 (inside a platform session $skaha_hostname provides it)"
                    .to_owned(),
            )
        })?,
        Source::File => String::new(),
    }
    .trim_end_matches('/')
    .to_owned();
    // Credentials first, so no later message can echo them.
    for candidate in [Some(&url), skaha_url.as_ref()].into_iter().flatten() {
        refuse_credentials_in(candidate)?;
    }
    if matches!(source, Source::Harbor | Source::Skaha)
        && !(url.starts_with("https://") || url.starts_with("http://"))
    {
        return Err(Error::Invalid(format!(
            "url {url:?} must start with https:// or http://"
        )));
    }
    if let Some(skaha_url) = &skaha_url
        && !(skaha_url.starts_with("https://") || skaha_url.starts_with("http://"))
    {
        return Err(Error::Invalid(format!(
            "the skaha URL {skaha_url:?} (skaha.url, ARCADE_SKAHA_URL or --url) must start with \
             https:// or http://"
        )));
    }
    let catalog = overrides
        .catalog
        .clone()
        .or_else(|| env_nonempty("ARCADE_CATALOG").map(PathBuf::from))
        .or(file.catalog);
    if source == Source::File && catalog.is_none() {
        return Err(Error::Invalid(
            "the file source needs a catalog: set --catalog, ARCADE_CATALOG or catalog in the config"
                .to_owned(),
        ));
    }
    let label = overrides
        .label
        .clone()
        .or_else(|| env_nonempty("ARCADE_LABEL"))
        .or(file.label)
        .unwrap_or_else(|| "desktop-app".to_owned());
    if label.is_empty() {
        return Err(Error::Invalid("the label must not be empty".to_owned()));
    }

    let secret_files: Vec<PathBuf> = [
        env_nonempty("ARCADE_HARBOR_SECRET_FILE")
            .map(PathBuf::from)
            .or(file.harbor.secret_file.clone()),
        env_nonempty("ARCADE_SKAHA_TOKEN_FILE")
            .map(PathBuf::from)
            .or(file.skaha.token_file.clone()),
        env_nonempty("ARCADE_SKAHA_CERT_FILE")
            .map(PathBuf::from)
            .or(file.skaha.cert_file.clone()),
    ]
    .into_iter()
    .flatten()
    .collect();
    let harbor_auth = harbor_auth(&file.harbor)?;
    let skaha_auth = skaha_auth(&file.skaha)?;
    // 64 requests in flight keep a whole-registry walk near two seconds; CANFAR's own image
    // cache used more threads than that against the same Harbor.
    let concurrency = file.concurrency.unwrap_or(64);
    if concurrency == 0 {
        return Err(Error::Invalid("concurrency must be at least 1".to_owned()));
    }
    let backend = overrides
        .backend
        .or(env_backend)
        .or(file.launch.backend)
        .unwrap_or_else(|| default_backend(platform));

    Ok(Settings {
        source,
        url,
        label,
        catalog,
        timeout: Duration::from_secs(file.timeout_secs.unwrap_or(10).max(1)),
        deadline: Duration::from_secs(file.deadline_secs.unwrap_or(120).max(1)),
        concurrency,
        ca_file: env_nonempty("ARCADE_CA_FILE")
            .map(PathBuf::from)
            .or(file.ca_file),
        allow_empty: overrides.allow_empty || file.allow_empty.unwrap_or(false),
        harbor_auth,
        secret_files,
        skaha: SkahaSettings {
            url: skaha_url,
            api_version: env_nonempty("SKAHA_API_VERSION")
                .or(file.skaha.api_version)
                .unwrap_or_else(|| "v1".to_owned()),
            auth: skaha_auth,
            session_id: env_nonempty("ARCADE_SESSION_ID")
                .or(file.skaha.session_id)
                .or_else(|| env_nonempty("skaha_sessionid"))
                .or_else(|| env_nonempty("VNC_PW")),
            poll_timeout: Duration::from_secs(file.skaha.poll_timeout_secs.unwrap_or(600)),
            watch: Duration::from_secs(file.skaha.watch_secs.unwrap_or(15).max(1)),
        },
        menu: MenuSettings {
            submenu_threshold: file.menu.submenu_threshold.unwrap_or(5),
            shortcuts: file.menu.shortcuts.unwrap_or_default(),
            desktop_dir: match file.menu.desktop_dir {
                Some(dir) if !dir.is_absolute() => {
                    return Err(Error::Invalid(format!(
                        "menu.desktop_dir {} must be an absolute path",
                        dir.display()
                    )));
                }
                Some(dir) => Some(dir),
                None => dirs.desktop_dir(),
            },
            wm_classes: file.menu.wm_class.unwrap_or_default(),
        },
        launch: LaunchSettings {
            backend,
            network: file.launch.network.unwrap_or_else(|| "none".to_owned()),
            user: file.launch.user.unwrap_or_else(|| "auto".to_owned()),
            wait: Duration::from_secs(file.launch.wait_secs.unwrap_or(60).max(1)),
            cores: file.launch.cores,
            ram_gb: file.launch.ram_gb,
            env: file.launch.env.unwrap_or_default(),
            volumes: file.launch.volumes.unwrap_or_default(),
            pull: file.launch.pull.unwrap_or_else(|| "missing".to_owned()),
            containers_conf: env_nonempty("CONTAINERS_CONF")
                .map(PathBuf::from)
                .or(file.launch.containers_conf),
        },
        daemon: DaemonSettings {
            refresh: Duration::from_secs(file.daemon.refresh_minutes.unwrap_or(30).max(1) * 60),
            stop_apps_on_exit: file.daemon.stop_apps_on_exit.unwrap_or(true),
        },
        dirs,
        files,
    })
}

/// Refuses a URL with a user name or password in it: they would travel in every request and
/// show in every message. The error shows the URL without them.
fn refuse_credentials_in(url: &str) -> Result<()> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Ok(());
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if let Some((_, host)) = authority.rsplit_once('@') {
        let path = &rest[authority.len()..];
        return Err(Error::Invalid(format!(
            "url {scheme}://{host}{path} must not carry a user name or password: use \
             harbor.username with harbor.secret_file (or ARCADE_HARBOR_SECRET), or a skaha token"
        )));
    }
    Ok(())
}

/// A skaha URL from outside the settings (a daemon client's), checked as the settings' own are
/// and made to end at the service root.
pub fn checked_skaha_url(url: &str) -> Result<String> {
    refuse_credentials_in(url)?;
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(Error::Invalid(format!(
            "url {url:?} must start with https:// or http://"
        )));
    }
    Ok(skaha_root(url))
}

/// Makes a skaha URL end at the service root: `https://host` becomes `https://host/skaha`.
fn skaha_root(url: &str) -> String {
    let trimmed = url.trim_end_matches('/');
    let after_scheme = trimmed.split_once("://").map_or(trimmed, |(_, rest)| rest);
    if after_scheme.contains('/') {
        trimmed.to_owned()
    } else {
        format!("{trimmed}/skaha")
    }
}

fn default_backend(platform: bool) -> Backend {
    if platform {
        Backend::Skaha
    } else if which("podman").is_some() || which("docker").is_none() {
        Backend::Podman
    } else {
        Backend::Docker
    }
}

/// Finds a program on `$PATH`.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(candidate)
                .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        })
}

fn harbor_auth(file: &HarborFile) -> Result<Option<HarborAuth>> {
    let username = env_nonempty("ARCADE_HARBOR_USERNAME").or(file.username.clone());
    let secret_file = env_nonempty("ARCADE_HARBOR_SECRET_FILE")
        .map(PathBuf::from)
        .or(file.secret_file.clone());
    let secret = match Secret::from_env("ARCADE_HARBOR_SECRET") {
        Some(secret) => Some(secret),
        None => secret_file.as_deref().map(Secret::from_file).transpose()?,
    };
    match (username, secret) {
        (Some(username), Some(secret)) => Ok(Some(HarborAuth { username, secret })),
        (None, None) => Ok(None),
        (Some(username), None) => Err(Error::Invalid(format!(
            "harbor user {username:?} has no secret: set harbor.secret_file in the config, \
             ARCADE_HARBOR_SECRET_FILE or ARCADE_HARBOR_SECRET"
        ))),
        (None, Some(secret)) => Err(Error::Invalid(format!(
            "a harbor secret is set ({}) but no user: set harbor.username or ARCADE_HARBOR_USERNAME",
            secret.origin
        ))),
    }
}

fn skaha_auth(file: &SkahaFile) -> Result<SkahaAuth> {
    if let Some(token) = Secret::from_env("DESKTOP_SESSION_APP_TOKEN") {
        return Ok(SkahaAuth::SessionToken(token));
    }
    if let Some(token) = Secret::from_env("ARCADE_SKAHA_TOKEN") {
        return Ok(SkahaAuth::Bearer(token));
    }
    let token_file = env_nonempty("ARCADE_SKAHA_TOKEN_FILE")
        .map(PathBuf::from)
        .or(file.token_file.clone());
    if let Some(path) = token_file {
        return Ok(SkahaAuth::Bearer(Secret::from_file(&path)?));
    }
    let cert_file = env_nonempty("ARCADE_SKAHA_CERT_FILE")
        .map(PathBuf::from)
        .or(file.cert_file.clone());
    if let Some(path) = cert_file {
        return Ok(SkahaAuth::Certificate(path));
    }
    Ok(SkahaAuth::Anonymous)
}

/// The resolved settings as `arcade config` shows them: secrets replaced by where they come from.
#[derive(Debug, Serialize)]
pub struct View {
    pub config_files: Vec<PathBuf>,
    pub source: Source,
    pub url: String,
    pub label: String,
    pub catalog: Option<PathBuf>,
    pub timeout_secs: u64,
    pub deadline_secs: u64,
    pub concurrency: usize,
    pub ca_file: Option<PathBuf>,
    pub allow_empty: bool,
    pub harbor_username: Option<String>,
    pub harbor_secret: Option<String>,
    pub skaha_url: Option<String>,
    pub skaha_api_version: String,
    pub skaha_auth: String,
    pub skaha_session_id: Option<String>,
    pub skaha_poll_timeout_secs: u64,
    pub skaha_watch_secs: u64,
    pub menu_submenu_threshold: usize,
    pub menu_shortcuts: Vec<String>,
    pub menu_desktop_dir: Option<PathBuf>,
    pub menu_wm_class: BTreeMap<String, String>,
    pub launch_backend: Backend,
    pub launch_network: String,
    pub launch_user: String,
    pub launch_wait_secs: u64,
    pub launch_cores: Option<u32>,
    pub launch_ram_gb: Option<u32>,
    /// Only the names: operators may pass tokens to apps this way.
    pub launch_env: Vec<String>,
    pub launch_volumes: Vec<String>,
    pub launch_pull: String,
    pub launch_containers_conf: Option<PathBuf>,
    pub daemon_refresh_minutes: u64,
    pub daemon_stop_apps_on_exit: bool,
    pub dirs: Dirs,
}

impl Settings {
    pub fn view(&self) -> View {
        View {
            config_files: self.files.clone(),
            source: self.source,
            url: self.url.clone(),
            label: self.label.clone(),
            catalog: self.catalog.clone(),
            timeout_secs: self.timeout.as_secs(),
            deadline_secs: self.deadline.as_secs(),
            concurrency: self.concurrency,
            ca_file: self.ca_file.clone(),
            allow_empty: self.allow_empty,
            harbor_username: self.harbor_auth.as_ref().map(|auth| auth.username.clone()),
            harbor_secret: self
                .harbor_auth
                .as_ref()
                .map(|auth| format!("(set, from {})", auth.secret.origin)),
            skaha_url: self.skaha.url.clone(),
            skaha_api_version: self.skaha.api_version.clone(),
            skaha_auth: match &self.skaha.auth {
                SkahaAuth::SessionToken(secret) => {
                    format!("session token (set, from {})", secret.origin)
                }
                SkahaAuth::Bearer(secret) => format!("bearer token (set, from {})", secret.origin),
                SkahaAuth::Certificate(path) => format!("client certificate {}", path.display()),
                SkahaAuth::Anonymous => "anonymous".to_owned(),
            },
            skaha_session_id: self.skaha.session_id.clone(),
            skaha_poll_timeout_secs: self.skaha.poll_timeout.as_secs(),
            skaha_watch_secs: self.skaha.watch.as_secs(),
            menu_submenu_threshold: self.menu.submenu_threshold,
            menu_shortcuts: self.menu.shortcuts.clone(),
            menu_desktop_dir: self.menu.desktop_dir.clone(),
            menu_wm_class: self.menu.wm_classes.clone(),
            launch_backend: self.launch.backend,
            launch_network: self.launch.network.clone(),
            launch_user: self.launch.user.clone(),
            launch_wait_secs: self.launch.wait.as_secs(),
            launch_cores: self.launch.cores,
            launch_ram_gb: self.launch.ram_gb,
            launch_env: self.launch.env.keys().cloned().collect(),
            launch_volumes: self.launch.volumes.clone(),
            launch_pull: self.launch.pull.clone(),
            launch_containers_conf: self.launch.containers_conf.clone(),
            daemon_refresh_minutes: self.daemon.refresh.as_secs() / 60,
            daemon_stop_apps_on_exit: self.daemon.stop_apps_on_exit,
            dirs: self.dirs.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_file() {
        let text = r#"
source = "harbor"
url = "https://images.example.org"
label = "desktop-app"
concurrency = 8

[harbor]
username = "robot$arcade"

[menu]
submenu_threshold = 3
shortcuts = ["terminal", "casa"]
wm_class = { ds9 = "Ds9" }

[launch]
backend = "docker"
network = "none"

[daemon]
refresh_minutes = 10
"#;
        let file = FileConfig::parse(text, Path::new("c.toml")).unwrap();
        assert_eq!(file.source, Some(Source::Harbor));
        assert_eq!(file.menu.shortcuts.as_deref().unwrap().len(), 2);
        assert_eq!(file.launch.backend, Some(Backend::Docker));
    }

    #[test]
    fn rejects_typos_with_the_line() {
        let err = FileConfig::parse("source = \"harbor\"\nurll = \"x\"\n", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("c.toml"), "{err}");
        assert!(err.contains("urll"), "{err}");
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn higher_files_win_key_by_key() {
        let system =
            FileConfig::parse("url = \"https://a\"\nlabel = \"x\"\n", Path::new("s")).unwrap();
        let user = FileConfig::parse("url = \"https://b\"\n", Path::new("u")).unwrap();
        let merged = user.or(system);
        assert_eq!(merged.url.as_deref(), Some("https://b"));
        assert_eq!(merged.label.as_deref(), Some("x"));
    }

    #[test]
    fn urls_with_credentials_are_refused_without_echoing_them() {
        let err = refuse_credentials_in("http://robot:hunter2@h:8080/api")
            .unwrap_err()
            .to_string();
        assert!(err.contains("http://h:8080/api"), "{err}");
        assert!(!err.contains("hunter2") && !err.contains("robot"), "{err}");
        assert!(refuse_credentials_in("https://h/a@b").is_ok());
    }

    #[test]
    fn skaha_urls_end_at_the_service() {
        assert_eq!(skaha_root("https://host"), "https://host/skaha");
        assert_eq!(skaha_root("https://host/"), "https://host/skaha");
        assert_eq!(
            skaha_root("http://127.0.0.1:9/skaha"),
            "http://127.0.0.1:9/skaha"
        );
    }

    #[test]
    fn a_clients_skaha_url_is_checked_like_the_settings_own() {
        assert_eq!(
            checked_skaha_url("https://host").unwrap(),
            "https://host/skaha"
        );
        assert_eq!(
            checked_skaha_url("http://127.0.0.1:9/skaha/").unwrap(),
            "http://127.0.0.1:9/skaha"
        );
        assert!(checked_skaha_url("https://me:pw@host/skaha").is_err());
        assert!(checked_skaha_url("file:///etc/passwd").is_err());
    }

    #[test]
    fn secrets_do_not_print() {
        let secret = Secret::new("hunter2".into(), "file /x".into());
        assert!(!format!("{secret:?}").contains("hunter2"));
    }
}
