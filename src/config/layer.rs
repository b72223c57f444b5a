//! The config schema, written once: [`Layer`], every key optional, as a config file, the
//! environment or the flags give it; and [`merge`], which stacks layers key by key and remembers
//! where each key's value came from.
//!
//! A key is `name` or `section.name` (`launch.wait_secs`). A value inside a section may be a
//! map (`menu.wm_class`), but sections never nest, so a table at the top of a layer is always a
//! section. The merge works on keys by name through serde: a key added to [`Layer`] is known to
//! the files, the merge and `arcade config` at once.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Backend, Error, Result, Source};

/// One layer of settings. Every key is optional; unknown keys are errors, so typos are caught.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    pub source: Option<Source>,
    pub url: Option<String>,
    pub label: Option<String>,
    pub catalog: Option<PathBuf>,
    pub timeout_secs: Option<u64>,
    pub deadline_secs: Option<u64>,
    pub concurrency: Option<usize>,
    pub ca_file: Option<PathBuf>,
    pub allow_empty: Option<bool>,
    #[serde(default)]
    pub harbor: HarborLayer,
    #[serde(default)]
    pub skaha: SkahaLayer,
    #[serde(default)]
    pub menu: MenuLayer,
    #[serde(default)]
    pub launch: LaunchLayer,
    #[serde(default)]
    pub daemon: DaemonLayer,
    #[serde(default)]
    pub samp: SampLayer,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HarborLayer {
    pub username: Option<String>,
    pub secret_file: Option<PathBuf>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SkahaLayer {
    /// The skaha service apps are launched on, when the catalog comes from elsewhere.
    pub url: Option<String>,
    pub api_version: Option<String>,
    pub token_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub session_id: Option<String>,
    pub poll_timeout_secs: Option<u64>,
    pub watch_secs: Option<u64>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MenuLayer {
    pub submenu_threshold: Option<usize>,
    pub shortcuts: Option<Vec<String>>,
    pub desktop_dir: Option<PathBuf>,
    pub wm_class: Option<BTreeMap<String, String>>,
    pub presets: Option<Vec<String>>,
    /// The file types each app opens, `{ app = ["type/subtype", …] }`.
    pub mime_types: Option<BTreeMap<String, Vec<String>>>,
    /// The default app per file type, `{ "type/subtype" = "app" }`.
    pub mime_defaults: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LaunchLayer {
    pub backend: Option<Backend>,
    pub network: Option<String>,
    pub user: Option<String>,
    pub wait_secs: Option<u64>,
    pub cores: Option<u32>,
    pub ram_gb: Option<u32>,
    pub env: Option<BTreeMap<String, String>>,
    pub volumes: Option<Vec<String>>,
    pub pull: Option<String>,
    pub containers_conf: Option<PathBuf>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonLayer {
    pub refresh_minutes: Option<u64>,
    pub stop_apps_on_exit: Option<bool>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SampLayer {
    pub enabled: Option<bool>,
    pub address: Option<String>,
}

/// Where a value came from, printed as `git config --show-origin` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Built in, or worked out from the host (the desktop folder, the engine on the `PATH`).
    Default,
    /// A config file.
    File(PathBuf),
    /// An environment variable.
    Env(&'static str),
    /// A command-line flag.
    Flag(&'static str),
    /// The XDG base directories, from `$HOME` and the `$XDG_*` variables.
    Xdg,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::File(path) => write!(f, "file:{}", path.display()),
            Origin::Env(var) => write!(f, "env:{var}"),
            Origin::Flag(flag) => write!(f, "flag:{flag}"),
            Origin::Xdg => f.write_str("xdg"),
        }
    }
}

impl Serialize for Origin {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Each key's origin, by dotted name; a key missing here has its default.
pub type Origins = BTreeMap<String, Origin>;

/// One key as one layer sets it: `(dotted name, value, origin)`.
pub type Entry = (String, toml::Value, Origin);

impl Layer {
    /// Parses one config file's text; an error names the file and the line.
    pub fn parse(text: &str, path: &Path) -> Result<Layer> {
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

    /// The keys this layer sets, by dotted name, each with `origin`.
    pub fn entries(&self, origin: &Origin) -> Result<Vec<Entry>> {
        // Serializing to TOML leaves unset keys out, since TOML has no null.
        let table = toml::Table::try_from(self)
            .map_err(|err| Error::Invalid(format!("a setting from {origin} is unusable: {err}")))?;
        let mut entries = Vec::new();
        for (name, value) in table {
            match value {
                toml::Value::Table(section) => entries.extend(
                    section
                        .into_iter()
                        .map(|(key, value)| (format!("{name}.{key}"), value, origin.clone())),
                ),
                value => entries.push((name, value, origin.clone())),
            }
        }
        Ok(entries)
    }

    /// The layer that sets `keys` (dotted names), typed as the schema says.
    pub fn from_keys<'a>(
        keys: impl IntoIterator<Item = (&'a str, toml::Value)>,
    ) -> Result<Layer, toml::de::Error> {
        let mut table = toml::Table::new();
        for (key, value) in keys {
            match key.split_once('.') {
                Some((section, name)) => {
                    if let toml::Value::Table(section) = table
                        .entry(section)
                        .or_insert_with(|| toml::Table::new().into())
                    {
                        section.insert(name.to_owned(), value);
                    }
                }
                None => {
                    table.insert(key.to_owned(), value);
                }
            }
        }
        table.try_into()
    }

    /// Every key of the schema, by dotted name.
    #[cfg(test)]
    pub fn every_key() -> Vec<String> {
        // JSON keeps unset keys as nulls, where TOML leaves them out.
        let serde_json::Value::Object(top) = serde_json::to_value(Layer::default()).unwrap() else {
            panic!("a layer is not a map");
        };
        let mut keys = Vec::new();
        for (name, value) in top {
            match value {
                serde_json::Value::Object(section) => {
                    keys.extend(section.keys().map(|key| format!("{name}.{key}")));
                }
                _ => keys.push(name),
            }
        }
        keys.sort();
        keys
    }

    /// The names of the sections (`harbor`, `skaha`, `menu`, …).
    pub fn sections() -> Vec<String> {
        toml::Table::try_from(Layer::default())
            .map(|table| {
                table
                    .into_iter()
                    .filter(|(_, value)| value.is_table())
                    .map(|(name, _)| name)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Layers merged key by key: each key has the value of the highest layer that sets it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Merged {
    pub layer: Layer,
    pub origins: Origins,
}

/// Merges entries given lowest precedence first, so a later entry for a key replaces an earlier
/// one. Maps and lists are values like any other: a higher layer's list replaces a lower one's.
pub fn merge(entries: impl IntoIterator<Item = Entry>) -> Result<Merged> {
    let mut top: BTreeMap<String, (toml::Value, Origin)> = BTreeMap::new();
    for (key, value, origin) in entries {
        top.insert(key, (value, origin));
    }
    // Every layer was typed when it was made, so this fails only if a layer was made from a key
    // the schema lacks: a bug, reported rather than ignored.
    let layer = Layer::from_keys(
        top.iter()
            .map(|(key, (value, _))| (key.as_str(), value.clone())),
    )
    .map_err(|err| Error::Invalid(format!("the merged settings are unusable: {err}")))?;
    let origins = top
        .into_iter()
        .map(|(key, (_, origin))| (key, origin))
        .collect();
    Ok(Merged { layer, origins })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str, path: &str) -> Vec<Entry> {
        let path = Path::new(path);
        Layer::parse(text, path)
            .unwrap()
            .entries(&Origin::File(path.to_owned()))
            .unwrap()
    }

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
        let layer = Layer::parse(text, Path::new("c.toml")).unwrap();
        assert_eq!(layer.source, Some(Source::Harbor));
        assert_eq!(layer.menu.shortcuts.as_deref().unwrap().len(), 2);
        assert_eq!(layer.launch.backend, Some(Backend::Docker));
    }

    #[test]
    fn rejects_typos_with_the_line() {
        let err = Layer::parse("source = \"harbor\"\nurll = \"x\"\n", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("c.toml"), "{err}");
        assert!(err.contains("urll"), "{err}");
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn rejects_an_unknown_choice_with_the_choices() {
        let err = Layer::parse("[launch]\nbackend = \"lxc\"\n", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"lxc\" must be one of podman, docker, skaha"),
            "{err}"
        );
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn higher_files_win_key_by_key() {
        let merged = merge(
            file("url = \"https://a\"\nlabel = \"x\"\n", "s")
                .into_iter()
                .chain(file("url = \"https://b\"\n", "u")),
        )
        .unwrap();
        assert_eq!(merged.layer.url.as_deref(), Some("https://b"));
        assert_eq!(merged.layer.label.as_deref(), Some("x"));
        assert_eq!(merged.origins["url"], Origin::File("u".into()));
        assert_eq!(merged.origins["label"], Origin::File("s".into()));
    }

    #[test]
    fn a_higher_map_or_list_replaces_a_lower_one_whole() {
        let merged = merge(
            file(
                "[menu]\nwm_class = { a = \"A\", b = \"B\" }\nshortcuts = [\"x\", \"y\"]\n",
                "s",
            )
            .into_iter()
            .chain(file(
                "[menu]\nwm_class = { c = \"C\" }\nshortcuts = []\n",
                "u",
            )),
        )
        .unwrap();
        let wm_class = merged.layer.menu.wm_class.unwrap();
        assert_eq!(wm_class.keys().collect::<Vec<_>>(), ["c"]);
        assert_eq!(merged.layer.menu.shortcuts, Some(vec![]));
        assert_eq!(merged.origins["menu.wm_class"], Origin::File("u".into()));
    }

    /// Every key survives the trip to entries and back, so the merge loses nothing.
    #[test]
    fn entries_round_trip_every_key() {
        let text = r#"
source = "file"
url = "https://h"
label = "l"
catalog = "/c.json"
timeout_secs = 1
deadline_secs = 2
concurrency = 3
ca_file = "/ca.pem"
allow_empty = true
harbor.username = "u"
harbor.secret_file = "/s"
skaha.url = "https://s/skaha"
skaha.api_version = "v9"
skaha.token_file = "/t"
skaha.cert_file = "/p.pem"
skaha.session_id = "id"
skaha.poll_timeout_secs = 4
skaha.watch_secs = 5
menu.submenu_threshold = 6
menu.shortcuts = ["a"]
menu.desktop_dir = "/d"
menu.wm_class = { a = "A" }
menu.presets = ["2/4"]
menu.mime_types = { a = ["text/csv"] }
menu.mime_defaults = { "text/csv" = "a" }
launch.backend = "skaha"
launch.network = "n"
launch.user = "1:1"
launch.wait_secs = 7
launch.cores = 8
launch.ram_gb = 9
launch.env = { K = "V" }
launch.volumes = ["/a:/b"]
launch.pull = "never"
launch.containers_conf = "/cc"
daemon.refresh_minutes = 10
daemon.stop_apps_on_exit = false
samp.enabled = false
samp.address = "10.0.0.1"
"#;
        let layer = Layer::parse(text, Path::new("c.toml")).unwrap();
        let entries = layer.entries(&Origin::Default).unwrap();
        let mut set: Vec<&str> = entries.iter().map(|(key, _, _)| key.as_str()).collect();
        set.sort_unstable();
        assert_eq!(set, Layer::every_key(), "the text above must set every key");
        assert_eq!(merge(entries).unwrap().layer, layer);
        assert_eq!(
            Layer::sections(),
            ["daemon", "harbor", "launch", "menu", "samp", "skaha"]
        );
    }

    #[test]
    fn origins_print_as_git_prints_them() {
        assert_eq!(
            Origin::File("/etc/a.toml".into()).to_string(),
            "file:/etc/a.toml"
        );
        assert_eq!(Origin::Env("ARCADE_URL").to_string(), "env:ARCADE_URL");
        assert_eq!(Origin::Flag("--url").to_string(), "flag:--url");
        assert_eq!(Origin::Default.to_string(), "default");
    }
}
