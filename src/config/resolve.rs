//! [`resolve`]: the layers (platform, config files, environment, flags) merged key by key, once,
//! and turned into [`Settings`], each value with its origin.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::env::{self, Env, Lookup, PLATFORM_HOST};
use super::layer::{self, HarborLayer, Layer, Merged, Origin, Origins, SkahaLayer};
use super::{
    Backend, DaemonSettings, Dirs, Error, HarborAuth, LaunchSettings, MenuSettings, Overrides,
    Result, SampSettings, Secret, Settings, SkahaAuth, SkahaSettings, Source,
};

/// A config file that was read, and what it sets.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    pub path: PathBuf,
    pub layer: Layer,
}

/// Resolves the settings from config files already read (lowest precedence first), the
/// environment (through `env`) and the flags. Precedence, lowest first: defaults, the platform
/// session's variables, the files, the environment, the flags.
///
/// It reads no variable but through `env` and no config file; it does read the credential files
/// the settings name, so settings never hold a secret that could not be read, and it looks for
/// the default engine on the `PATH` that `env` gives.
pub fn resolve(
    dirs: Dirs,
    files: Vec<ConfigFile>,
    env: &Lookup,
    flags: &Overrides,
) -> Result<Settings> {
    let env = Env(env);
    let mut entries = env::platform_layer(env);
    for file in &files {
        entries.extend(file.layer.entries(&Origin::File(file.path.clone()))?);
    }
    entries.extend(env::layer(env)?);
    entries.extend(flags.entries()?);
    let Merged {
        layer: keys,
        mut origins,
    } = layer::merge(entries)?;
    origins.insert("config_files".to_owned(), Origin::Xdg);
    origins.insert("dirs".to_owned(), Origin::Xdg);

    let platform = env.in_platform_session();
    let source = keys.source.unwrap_or_else(|| {
        if platform {
            origins.insert("source".to_owned(), Origin::Env(PLATFORM_HOST));
            Source::Skaha
        } else {
            Source::Harbor
        }
    });
    let (url, skaha_url) = urls(&keys, source, env, &mut origins)?;
    if source == Source::File && keys.catalog.is_none() {
        return Err(Error::Invalid(
            "the file source needs a catalog: set --catalog, ARCADE_CATALOG or catalog in the config"
                .to_owned(),
        ));
    }
    let label = keys
        .label
        .clone()
        .unwrap_or_else(|| "desktop-app".to_owned());
    if label.is_empty() {
        return Err(Error::Invalid("the label must not be empty".to_owned()));
    }
    let harbor_auth = harbor_auth(&keys.harbor, env, &mut origins)?;
    let skaha_auth = skaha_auth(&keys.skaha, env, &mut origins)?;
    let backend = keys.launch.backend.unwrap_or_else(|| {
        if platform {
            origins.insert("launch.backend".to_owned(), Origin::Env(PLATFORM_HOST));
        }
        default_backend(platform, env.path().as_deref())
    });
    let resolved = Resolved {
        source,
        url,
        skaha_url,
        label,
        harbor_auth,
        skaha_auth,
        backend,
    };
    settings(keys, resolved, dirs, files, origins)
}

/// The values `resolve` works out from several keys or from the host, or checks, before the rest.
struct Resolved {
    source: Source,
    url: String,
    skaha_url: Option<String>,
    label: String,
    harbor_auth: Option<HarborAuth>,
    skaha_auth: SkahaAuth,
    backend: Backend,
}

/// The merged keys as settings: defaults filled in, durations typed, the rest checked.
// As long as the schema: one struct literal with a line or two per key, kept whole so a new
// key is added in one place.
fn settings(
    keys: Layer,
    resolved: Resolved,
    dirs: Dirs,
    files: Vec<ConfigFile>,
    origins: Origins,
) -> Result<Settings> {
    // 64 requests in flight keep a whole-registry walk near two seconds; CANFAR's own image
    // cache used more threads than that against the same Harbor.
    let concurrency = keys.concurrency.unwrap_or(64);
    if concurrency == 0 {
        return Err(Error::Invalid("concurrency must be at least 1".to_owned()));
    }
    let secs =
        |value: Option<u64>, default: u64| Duration::from_secs(value.unwrap_or(default).max(1));
    let (skaha, menu, launch, daemon, samp) =
        (keys.skaha, keys.menu, keys.launch, keys.daemon, keys.samp);
    let desktop_dir = match menu.desktop_dir {
        Some(dir) if !dir.is_absolute() => {
            return Err(Error::Invalid(format!(
                "menu.desktop_dir {} must be an absolute path",
                dir.display()
            )));
        }
        Some(dir) => Some(dir),
        None => dirs.desktop_dir(),
    };
    Ok(Settings {
        source: resolved.source,
        url: resolved.url,
        label: resolved.label,
        catalog: keys.catalog,
        timeout: secs(keys.timeout_secs, 10),
        deadline: secs(keys.deadline_secs, 120),
        concurrency,
        ca_file: keys.ca_file,
        allow_empty: keys.allow_empty.unwrap_or(false),
        harbor_auth: resolved.harbor_auth,
        secret_files: [keys.harbor.secret_file, skaha.token_file, skaha.cert_file]
            .into_iter()
            .flatten()
            .collect(),
        skaha: SkahaSettings {
            url: resolved.skaha_url,
            api_version: skaha.api_version.unwrap_or_else(|| "v1".to_owned()),
            auth: resolved.skaha_auth,
            session_id: skaha.session_id,
            poll_timeout: secs(skaha.poll_timeout_secs, 600),
            watch: secs(skaha.watch_secs, 15),
        },
        menu: MenuSettings {
            submenu_threshold: menu.submenu_threshold.unwrap_or(5),
            shortcuts: menu.shortcuts.unwrap_or_default(),
            desktop_dir,
            wm_classes: menu.wm_class.unwrap_or_default(),
            presets: presets(menu.presets)?,
            mime_types: checked_mime_types(menu.mime_types.unwrap_or_default())?,
            mime_defaults: checked_mime_defaults(menu.mime_defaults.unwrap_or_default())?,
        },
        launch: LaunchSettings {
            backend: resolved.backend,
            network: launch.network.unwrap_or_else(|| "none".to_owned()),
            user: launch.user.unwrap_or_else(|| "auto".to_owned()),
            wait: secs(launch.wait_secs, 60),
            cores: launch.cores,
            ram_gb: launch.ram_gb,
            env: launch.env.unwrap_or_default(),
            volumes: launch.volumes.unwrap_or_default(),
            pull: launch.pull.unwrap_or_else(|| "missing".to_owned()),
            containers_conf: launch.containers_conf,
        },
        daemon: DaemonSettings {
            refresh: Duration::from_secs(daemon.refresh_minutes.unwrap_or(30).max(1) * 60),
            stop_apps_on_exit: daemon.stop_apps_on_exit.unwrap_or(true),
        },
        samp: SampSettings {
            enabled: samp.enabled.unwrap_or(true),
            address: samp.address,
        },
        dirs,
        files: files.into_iter().map(|file| file.path).collect(),
        origins,
    })
}

/// The catalog source's URL and the skaha service apps are launched on, checked.
fn urls(
    keys: &Layer,
    source: Source,
    env: Env,
    origins: &mut Origins,
) -> Result<(String, Option<String>)> {
    let origin = |key: &str| origins.get(key).cloned().unwrap_or(Origin::Default);
    let skaha_origin = origin("skaha.url");
    let named = matches!(
        skaha_origin,
        Origin::Flag(_) | Origin::Env("ARCADE_SKAHA_URL")
    );
    let skaha_key = keys.skaha.url.clone().map(|url| (url, skaha_origin));
    let source_url = keys.url.clone().map(|url| (url, origin("url")));
    // The service apps are launched on: named for it on the command line or in the
    // environment; else the catalog source's URL when that is skaha; else skaha.url from a file
    // or the platform desktop's; `ARCADE_URL` only as a last resort, since it usually names the
    // catalog source (a Harbor).
    let skaha = [
        skaha_key.clone().filter(|_| named),
        source_url.clone().filter(|_| source == Source::Skaha),
        skaha_key,
        env.get("ARCADE_URL")
            .filter(|_| source != Source::Skaha)
            .map(|url| (url, Origin::Env("ARCADE_URL"))),
    ]
    .into_iter()
    .flatten()
    .next()
    .map(|(url, origin)| (skaha_root(&url), origin));
    let (url, url_origin) = match source {
        Source::Harbor => {
            source_url.unwrap_or_else(|| ("https://images.canfar.net".to_owned(), Origin::Default))
        }
        Source::Skaha => skaha.clone().ok_or_else(|| {
            Error::Invalid(
                "the skaha source needs a URL: set --url, ARCADE_URL or url in the config \
                 (inside a platform session $skaha_hostname provides it)"
                    .to_owned(),
            )
        })?,
        Source::File => (String::new(), Origin::Default),
    };
    let url = url.trim_end_matches('/').to_owned();
    origins.insert("url".to_owned(), url_origin);
    let skaha = skaha.map(|(url, origin)| {
        origins.insert("skaha.url".to_owned(), origin);
        url
    });
    // Credentials first, so no later message can echo them.
    for candidate in [Some(&url), skaha.as_ref()].into_iter().flatten() {
        refuse_credentials_in(candidate)?;
    }
    if matches!(source, Source::Harbor | Source::Skaha) && !is_http(&url) {
        return Err(Error::Invalid(format!(
            "url {url:?} must start with https:// or http://"
        )));
    }
    if let Some(skaha) = &skaha
        && !is_http(skaha)
    {
        return Err(Error::Invalid(format!(
            "the skaha URL {skaha:?} (skaha.url, ARCADE_SKAHA_URL or --url) must start with \
             https:// or http://"
        )));
    }
    Ok((url, skaha))
}

/// Whether `text` is a MIME type, `type/subtype`, in the characters RFC 6838 allows in names:
/// it goes into desktop entries and `mimeapps.list` keys as it is.
fn is_mime_type(text: &str) -> bool {
    let name = |part: &str| {
        !part.is_empty()
            && part.len() <= 127
            && part.starts_with(|c: char| c.is_ascii_alphanumeric())
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$&-^_.+".contains(c))
    };
    text.split_once('/')
        .is_some_and(|(kind, subtype)| name(kind) && name(subtype))
}

/// `menu.mime_types`, each type checked and lowercased (MIME types are case-insensitive, and
/// desktops compare them as written).
fn checked_mime_types(
    types: BTreeMap<String, Vec<String>>,
) -> Result<BTreeMap<String, Vec<String>>> {
    types
        .into_iter()
        .map(|(app, types)| {
            let types = types
                .into_iter()
                .map(|mime_type| checked_mime_type(&mime_type, &format!("menu.mime_types.{app}")))
                .collect::<Result<Vec<String>>>()?;
            Ok((app, types))
        })
        .collect()
}

/// `menu.mime_defaults`, each type checked and lowercased.
fn checked_mime_defaults(defaults: BTreeMap<String, String>) -> Result<BTreeMap<String, String>> {
    defaults
        .into_iter()
        .map(|(mime_type, app)| Ok((checked_mime_type(&mime_type, "menu.mime_defaults")?, app)))
        .collect()
}

fn checked_mime_type(mime_type: &str, key: &str) -> Result<String> {
    if is_mime_type(mime_type) {
        Ok(mime_type.to_ascii_lowercase())
    } else {
        Err(Error::Invalid(format!(
            "{key}: {:?} is not a MIME type (type/subtype, such as application/fits)",
            crate::catalog::printable(mime_type)
        )))
    }
}

fn is_http(url: &str) -> bool {
    url.starts_with("https://") || url.starts_with("http://")
}

/// Refuses a URL with a user name or password in it: they would travel in every request and
/// show in every message. The error shows the URL without them.
pub(super) fn refuse_credentials_in(url: &str) -> Result<()> {
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
    if !is_http(url) {
        return Err(Error::Invalid(format!(
            "url {url:?} must start with https:// or http://"
        )));
    }
    Ok(skaha_root(url))
}

/// Makes a skaha URL end at the service root: `https://host` becomes `https://host/skaha`.
pub(super) fn skaha_root(url: &str) -> String {
    let trimmed = url.trim_end_matches('/');
    let after_scheme = trimmed.split_once("://").map_or(trimmed, |(_, rest)| rest);
    if after_scheme.contains('/') {
        trimmed.to_owned()
    } else {
        format!("{trimmed}/skaha")
    }
}

/// Skaha inside a platform session; else podman, unless only docker is on the `PATH`.
fn default_backend(platform: bool, path: Option<&OsStr>) -> Backend {
    if platform {
        Backend::Skaha
    } else if super::find_program(path, "podman").is_some()
        || super::find_program(path, "docker").is_none()
    {
        Backend::Podman
    } else {
        Backend::Docker
    }
}

/// A secret given in the environment itself.
fn secret_from(env: Env, var: &'static str, origins: &mut Origins, key: &str) -> Option<Secret> {
    let value = env.get(var)?;
    origins.insert(key.to_owned(), Origin::Env(var));
    Some(Secret::new(value, format!("environment {var}")))
}

/// A secret read from the file a key names; its origin is the key's.
fn secret_in(path: &Path, origins: &mut Origins, file_key: &str, key: &str) -> Result<Secret> {
    let secret = Secret::from_file(path)?;
    let origin = origins.get(file_key).cloned().unwrap_or(Origin::Default);
    origins.insert(key.to_owned(), origin);
    Ok(secret)
}

fn harbor_auth(keys: &HarborLayer, env: Env, origins: &mut Origins) -> Result<Option<HarborAuth>> {
    let secret = match secret_from(env, "ARCADE_HARBOR_SECRET", origins, "harbor.secret") {
        Some(secret) => Some(secret),
        None => keys
            .secret_file
            .as_deref()
            .map(|path| secret_in(path, origins, "harbor.secret_file", "harbor.secret"))
            .transpose()?,
    };
    match (keys.username.clone(), secret) {
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

/// The first of: the desktop session's token, a bearer token from the environment, one from
/// `skaha.token_file`, a client certificate; else anonymous.
fn skaha_auth(keys: &SkahaLayer, env: Env, origins: &mut Origins) -> Result<SkahaAuth> {
    const KEY: &str = "skaha.auth";
    if let Some(token) = secret_from(env, "DESKTOP_SESSION_APP_TOKEN", origins, KEY) {
        return Ok(SkahaAuth::SessionToken(token));
    }
    if let Some(token) = secret_from(env, "ARCADE_SKAHA_TOKEN", origins, KEY) {
        return Ok(SkahaAuth::Bearer(token));
    }
    if let Some(path) = &keys.token_file {
        return Ok(SkahaAuth::Bearer(secret_in(
            path,
            origins,
            "skaha.token_file",
            KEY,
        )?));
    }
    if let Some(path) = &keys.cert_file {
        let origin = origins.get("skaha.cert_file").cloned();
        origins.extend(origin.map(|origin| (KEY.to_owned(), origin)));
        return Ok(SkahaAuth::Certificate(path.clone()));
    }
    Ok(SkahaAuth::Anonymous)
}

/// The site's resource presets, each `cores/GB` or `cores/GB/GPUs`; the built-in ones when unset.
fn presets(given: Option<Vec<String>>) -> Result<Vec<String>> {
    let Some(given) = given else {
        return Ok(["4/16", "8/32"].map(str::to_owned).to_vec());
    };
    for preset in &given {
        if crate::labels::Resources::parse_slashed(preset).is_none() {
            return Err(Error::Invalid(format!(
                "menu.presets: {preset:?} is not cores/GB or cores/GB/GPUs (e.g. \"8/32\")"
            )));
        }
    }
    Ok(given)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
