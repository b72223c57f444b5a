//! The environment as settings: which variable sets which key, read through an injected lookup
//! so tests never touch the process environment. An empty variable counts as unset, everywhere.

use std::ffi::OsString;
use std::path::PathBuf;

use super::layer::{Entry, Layer, Origin};
use super::{Error, Result};

/// Reads one environment variable; [`process_env`] in the program, a map in tests.
pub type Lookup = dyn Fn(&str) -> Option<String>;

/// The process environment.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// A [`Lookup`] that treats an empty variable as unset, as every reader here must: `VAR=` in a
/// shell or a unit file means "no value", not "the empty value".
#[derive(Clone, Copy)]
pub struct Env<'a>(pub &'a Lookup);

impl Env<'_> {
    pub fn get(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|value| !value.is_empty())
    }

    /// True inside a CANFAR desktop session, where skaha is both the catalog and the launcher.
    pub fn in_platform_session(&self) -> bool {
        self.get(PLATFORM_HOST).is_some()
    }

    /// The config file `ARCADE_CONFIG` names, read after the usual ones.
    pub fn config_file(&self) -> Option<PathBuf> {
        self.get("ARCADE_CONFIG").map(PathBuf::from)
    }

    /// The `PATH`, for finding the default engine.
    pub fn path(&self) -> Option<OsString> {
        self.get("PATH").map(OsString::from)
    }
}

/// The skaha API host, set in every platform desktop session.
pub const PLATFORM_HOST: &str = "skaha_hostname";

/// The variables that set a key, each with its key. Secrets (`ARCADE_HARBOR_SECRET`,
/// `ARCADE_SKAHA_TOKEN`, `DESKTOP_SESSION_APP_TOKEN`) are not keys: no file may hold one, so
/// `resolve` reads them itself.
pub const VARIABLES: [(&str, &str); 14] = [
    ("ARCADE_SOURCE", "source"),
    ("ARCADE_URL", "url"),
    ("ARCADE_LABEL", "label"),
    ("ARCADE_CATALOG", "catalog"),
    ("ARCADE_CA_FILE", "ca_file"),
    ("ARCADE_HARBOR_USERNAME", "harbor.username"),
    ("ARCADE_HARBOR_SECRET_FILE", "harbor.secret_file"),
    ("ARCADE_SKAHA_URL", "skaha.url"),
    ("SKAHA_API_VERSION", "skaha.api_version"),
    ("ARCADE_SKAHA_TOKEN_FILE", "skaha.token_file"),
    ("ARCADE_SKAHA_CERT_FILE", "skaha.cert_file"),
    ("ARCADE_SESSION_ID", "skaha.session_id"),
    ("ARCADE_BACKEND", "launch.backend"),
    ("CONTAINERS_CONF", "launch.containers_conf"),
];

/// The environment's layer: every variable of [`VARIABLES`] that is set, as its key.
pub fn layer(env: Env) -> Result<Vec<Entry>> {
    let mut entries = Vec::new();
    for (var, key) in VARIABLES {
        let Some(value) = env.get(var) else {
            continue;
        };
        let value = toml::Value::String(value);
        // Typed one variable at a time, so an error names the variable.
        Layer::from_keys([(key, value.clone())]).map_err(|err| {
            Error::Invalid(format!("{var} is invalid: {}", err.message().trim_end()))
        })?;
        entries.push((key.to_owned(), value, Origin::Env(var)));
    }
    Ok(entries)
}

/// What a platform desktop session's environment implies, below every config file: the skaha
/// service on `$skaha_hostname`, and the session the apps attach to (`$skaha_sessionid`, else
/// `$VNC_PW`, which the platform sets to the session id).
pub fn platform_layer(env: Env) -> Vec<Entry> {
    let mut entries = Vec::new();
    for var in ["VNC_PW", "skaha_sessionid"] {
        if let Some(id) = env.get(var) {
            entries.push(("skaha.session_id".to_owned(), id.into(), Origin::Env(var)));
        }
    }
    if let Some(host) = env.get(PLATFORM_HOST) {
        entries.push((
            "skaha.url".to_owned(),
            format!("https://{host}/skaha").into(),
            Origin::Env(PLATFORM_HOST),
        ));
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            vars.iter()
                .find(|(var, _)| *var == name)
                .map(|(_, value)| (*value).to_owned())
        }
    }

    #[test]
    fn every_variable_names_a_key_of_the_schema() {
        for (var, key) in VARIABLES {
            Layer::from_keys([(key, toml::Value::String("skaha".into()))])
                .unwrap_or_else(|err| panic!("{var} sets {key}, which is not a string key: {err}"));
        }
    }

    #[test]
    fn empty_variables_are_unset() {
        let vars = lookup(&[
            ("ARCADE_URL", ""),
            ("ARCADE_CONFIG", ""),
            ("skaha_hostname", ""),
        ]);
        let env = Env(&vars);
        assert_eq!(layer(env).unwrap(), []);
        assert_eq!(env.config_file(), None);
        assert!(!env.in_platform_session());
        assert_eq!(platform_layer(env), []);
    }

    #[test]
    fn a_bad_choice_names_the_variable_and_the_choices() {
        let vars = lookup(&[("ARCADE_BACKEND", "lxc")]);
        let err = layer(Env(&vars)).unwrap_err().to_string();
        assert_eq!(
            err,
            "ARCADE_BACKEND is invalid: \"lxc\" must be one of podman, docker, skaha"
        );
        // Choices ignore case, as the flags do.
        let vars = lookup(&[("ARCADE_SOURCE", "Skaha")]);
        let top = super::super::layer::merge(layer(Env(&vars)).unwrap()).unwrap();
        assert_eq!(top.layer.source, Some(super::super::Source::Skaha));
    }

    #[test]
    fn the_platform_session_id_prefers_skaha_sessionid() {
        let vars = lookup(&[("VNC_PW", "vnc"), ("skaha_sessionid", "sid")]);
        let top = super::super::layer::merge(platform_layer(Env(&vars))).unwrap();
        assert_eq!(top.layer.skaha.session_id.as_deref(), Some("sid"));
        assert_eq!(
            top.origins["skaha.session_id"],
            Origin::Env("skaha_sessionid")
        );
    }
}
