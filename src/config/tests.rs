//! Precedence, key by key: for every key of the schema, each layer it has (platform session,
//! system file, user file, `ARCADE_CONFIG` file, environment, flag) wins over those below it, and
//! `arcade config` shows the value and the layer that set it. The environment is a map here;
//! the files live in a throwaway folder.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::*;

/// A throwaway host: a system and a user config folder, one more config file, variables, flags.
struct World {
    dir: tempfile::TempDir,
    vars: RefCell<BTreeMap<String, String>>,
    flags: RefCell<Overrides>,
}

impl World {
    fn new() -> World {
        let world = World {
            dir: tempfile::tempdir().unwrap(),
            vars: RefCell::default(),
            flags: RefCell::default(),
        };
        // An empty `PATH`, so the default engine is podman whatever this host has.
        std::fs::create_dir_all(world.path("bin")).unwrap();
        world.var("PATH", &world.path("bin").display().to_string());
        for name in ["s1", "s2", "s3", "s4"] {
            world.write(name, &format!("secret {name}\n"));
        }
        world
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// `text` with `{dir}` replaced by the world's folder.
    fn expand(&self, text: &str) -> String {
        text.replace("{dir}", &self.dir.path().display().to_string())
    }

    fn expand_value(&self, value: &Value) -> Value {
        match value {
            Value::String(text) => Value::String(self.expand(text)),
            other => other.clone(),
        }
    }

    fn write(&self, relative: &str, text: &str) -> PathBuf {
        let path = self.path(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    fn append(&self, path: &Path, line: &str) {
        use std::io::Write as _;
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        writeln!(file, "{}", self.expand(line)).unwrap();
    }

    fn var(&self, name: &str, value: &str) {
        self.vars
            .borrow_mut()
            .insert(name.to_owned(), self.expand(value));
    }

    fn dirs(&self) -> Dirs {
        let home = self.path("home");
        Dirs {
            data_home: home.join(".local/share"),
            config_home: home.join(".config"),
            cache_home: home.join(".cache"),
            state_home: home.join(".local/state"),
            runtime_dir: None,
            config_dirs: vec![self.path("sys")],
            home,
        }
    }

    fn system_file(&self) -> PathBuf {
        self.path("sys/arcade/config.toml")
    }

    fn user_file(&self) -> PathBuf {
        self.path("home/.config/arcade/config.toml")
    }

    fn extra_file(&self) -> PathBuf {
        self.path("extra.toml")
    }

    fn load(&self) -> Result<Settings> {
        let vars = self.vars.borrow().clone();
        load_with(self.dirs(), &self.flags.borrow(), &move |name: &str| {
            vars.get(name).cloned()
        })
    }

    /// `arcade config`'s value and origin for one key.
    #[track_caller]
    fn shown(&self, key: &str) -> (Value, String) {
        let settings = self.load().unwrap_or_else(|err| panic!("{err}"));
        let view = settings.view().unwrap();
        let shown = view
            .into_iter()
            .find(|shown| shown.key == key)
            .unwrap_or_else(|| panic!("arcade config shows no {key}"));
        (shown.value, shown.origin.to_string())
    }
}

/// A layer a key can be set in.
#[derive(Debug, Clone, Copy)]
enum Where {
    /// A variable of the platform desktop session.
    Platform(&'static str),
    System,
    User,
    /// The file `ARCADE_CONFIG` names.
    Extra,
    Env(&'static str),
    Flag(&'static str),
}

/// One key, and the layers it has, lowest first: where, the value set there (a TOML literal in
/// files, the raw text elsewhere) and what `arcade config` then shows.
struct Case {
    key: &'static str,
    shown_as: String,
    /// Shown with no layer set; `None` when the key cannot be unset here.
    default: Option<Value>,
    layers: Vec<(Where, &'static str, Value)>,
    /// Variables every step sets, that the key needs beside it.
    with: Vec<(&'static str, &'static str)>,
}

fn key(key: &'static str, default: Value) -> Case {
    Case {
        key,
        shown_as: key.replace('.', "_"),
        default: Some(default),
        layers: Vec::new(),
        with: Vec::new(),
    }
}

/// What `arcade config` shows for a TOML literal: the same value, as JSON.
fn literal(text: &str) -> Value {
    let table: toml::Table = toml::from_str(&format!("v = {text}")).unwrap();
    serde_json::to_value(&table["v"]).unwrap()
}

impl Case {
    /// The three files set these TOML literals, shown as they are.
    fn files(self, values: [&'static str; 3]) -> Case {
        self.files_shown(values.map(|value| (value, literal(value))))
    }

    fn files_shown(mut self, values: [(&'static str, Value); 3]) -> Case {
        let [system, user, extra] = values;
        self.layers.push((Where::System, system.0, system.1));
        self.layers.push((Where::User, user.0, user.1));
        self.layers.push((Where::Extra, extra.0, extra.1));
        self
    }

    fn platform(mut self, var: &'static str, value: &'static str, shown: Value) -> Case {
        self.layers.push((Where::Platform(var), value, shown));
        self
    }

    fn env(mut self, var: &'static str, value: &'static str, shown: Value) -> Case {
        self.layers.push((Where::Env(var), value, shown));
        self
    }

    fn flag(mut self, flag: &'static str, value: &'static str, shown: Value) -> Case {
        self.layers.push((Where::Flag(flag), value, shown));
        self
    }

    fn shown_as(mut self, name: &str) -> Case {
        self.shown_as = name.to_owned();
        self
    }

    fn with(mut self, var: &'static str, value: &'static str) -> Case {
        self.with.push((var, value));
        self
    }

    fn unset_impossible(mut self) -> Case {
        self.default = None;
        self
    }

    /// Sets each layer in turn, checking after each that its value shows, from it.
    fn check(&self) {
        let world = World::new();
        for (var, value) in &self.with {
            world.var(var, value);
        }
        if let Some(default) = &self.default {
            let shown = world.shown(&self.shown_as);
            let default = world.expand_value(default);
            assert_eq!(shown, (default, "default".to_owned()), "{}", self.key);
        }
        for (place, value, shown) in &self.layers {
            let origin = match *place {
                Where::Platform(var) | Where::Env(var) => {
                    world.var(var, value);
                    format!("env:{var}")
                }
                Where::System | Where::User | Where::Extra => {
                    let file = match place {
                        Where::System => world.system_file(),
                        Where::User => world.user_file(),
                        _ => world.extra_file(),
                    };
                    world.append(&file, &format!("{} = {value}", self.key));
                    if matches!(place, Where::Extra) {
                        world.var("ARCADE_CONFIG", &file.display().to_string());
                    }
                    format!("file:{}", file.display())
                }
                Where::Flag(flag) => {
                    set_flag(
                        &mut world.flags.borrow_mut(),
                        self.key,
                        &world.expand(value),
                    );
                    format!("flag:{flag}")
                }
            };
            assert_eq!(
                world.shown(&self.shown_as),
                (world.expand_value(shown), origin),
                "{} set in {place:?}",
                self.key
            );
        }
    }
}

fn set_flag(flags: &mut Overrides, key: &str, value: &str) {
    match key {
        "source" => flags.source = Some(choice(value).unwrap()),
        "url" => flags.url = Some(value.to_owned()),
        "label" => flags.label = Some(value.to_owned()),
        "catalog" => flags.catalog = Some(value.into()),
        "allow_empty" => flags.allow_empty = value == "true",
        "launch.backend" => flags.backend = Some(choice(value).unwrap()),
        "skaha.url" => flags.skaha_url = Some(value.to_owned()),
        other => panic!("no flag sets {other}"),
    }
}

/// Every key of the schema, each through every layer it has. One table, so it is as long as the
/// schema.
fn cases() -> Vec<Case> {
    vec![
        key("source", json!("harbor"))
            .with("ARCADE_CATALOG", "/c.json")
            .with("ARCADE_SKAHA_URL", "https://s.example.org")
            .platform("skaha_hostname", "p.example.org", json!("skaha"))
            .files(["\"file\"", "\"harbor\"", "\"skaha\""])
            .env("ARCADE_SOURCE", "file", json!("file"))
            .flag("--source", "harbor", json!("harbor")),
        key("url", json!("https://images.canfar.net"))
            .files_shown([
                ("\"https://s\"", json!("https://s")),
                ("\"https://u\"", json!("https://u")),
                ("\"https://x/\"", json!("https://x")),
            ])
            .env("ARCADE_URL", "https://e", json!("https://e"))
            .flag("--url", "https://f", json!("https://f")),
        key("label", json!("desktop-app"))
            .files(["\"s\"", "\"u\"", "\"x\""])
            .env("ARCADE_LABEL", "e", json!("e"))
            .flag("--label", "f", json!("f")),
        key("catalog", Value::Null)
            .files(["\"/s.json\"", "\"/u.json\"", "\"/x.json\""])
            .env("ARCADE_CATALOG", "/e.json", json!("/e.json"))
            .flag("--catalog", "/f.json", json!("/f.json")),
        key("timeout_secs", json!(10)).files(["1", "2", "3"]),
        key("deadline_secs", json!(120)).files(["1", "2", "3"]),
        key("concurrency", json!(64)).files(["1", "2", "3"]),
        key("ca_file", Value::Null)
            .files(["\"/s.pem\"", "\"/u.pem\"", "\"/x.pem\""])
            .env("ARCADE_CA_FILE", "/e.pem", json!("/e.pem")),
        key("allow_empty", json!(false))
            .files(["true", "false", "false"])
            .flag("--allow-empty", "true", json!(true)),
        key("harbor.username", Value::Null)
            .with("ARCADE_HARBOR_SECRET", "pw")
            .unset_impossible()
            .files(["\"s\"", "\"u\"", "\"x\""])
            .env("ARCADE_HARBOR_USERNAME", "e", json!("e")),
        key("harbor.secret_file", Value::Null)
            .shown_as("harbor_secret")
            .with("ARCADE_HARBOR_USERNAME", "robot")
            .unset_impossible()
            .files_shown([
                ("\"{dir}/s1\"", json!("(set, from file {dir}/s1)")),
                ("\"{dir}/s2\"", json!("(set, from file {dir}/s2)")),
                ("\"{dir}/s3\"", json!("(set, from file {dir}/s3)")),
            ])
            .env(
                "ARCADE_HARBOR_SECRET_FILE",
                "{dir}/s4",
                json!("(set, from file {dir}/s4)"),
            ),
        key("skaha.url", Value::Null)
            .platform(
                "skaha_hostname",
                "p.example.org",
                json!("https://p.example.org/skaha"),
            )
            .files_shown([
                (
                    "\"https://s.example.org/skaha\"",
                    json!("https://s.example.org/skaha"),
                ),
                (
                    "\"https://u.example.org/x\"",
                    json!("https://u.example.org/x"),
                ),
                (
                    "\"https://x.example.org\"",
                    json!("https://x.example.org/skaha"),
                ),
            ])
            .env(
                "ARCADE_SKAHA_URL",
                "http://e:9/skaha/",
                json!("http://e:9/skaha"),
            )
            .flag("--url", "https://f", json!("https://f/skaha")),
        key("skaha.api_version", json!("v1"))
            .files(["\"s\"", "\"u\"", "\"x\""])
            .env("SKAHA_API_VERSION", "e", json!("e")),
        key("skaha.token_file", json!("anonymous"))
            .shown_as("skaha_auth")
            .files_shown([
                (
                    "\"{dir}/s1\"",
                    json!("bearer token (set, from file {dir}/s1)"),
                ),
                (
                    "\"{dir}/s2\"",
                    json!("bearer token (set, from file {dir}/s2)"),
                ),
                (
                    "\"{dir}/s3\"",
                    json!("bearer token (set, from file {dir}/s3)"),
                ),
            ])
            .env(
                "ARCADE_SKAHA_TOKEN_FILE",
                "{dir}/s4",
                json!("bearer token (set, from file {dir}/s4)"),
            ),
        key("skaha.cert_file", json!("anonymous"))
            .shown_as("skaha_auth")
            .files_shown([
                ("\"/s.pem\"", json!("client certificate /s.pem")),
                ("\"/u.pem\"", json!("client certificate /u.pem")),
                ("\"/x.pem\"", json!("client certificate /x.pem")),
            ])
            .env(
                "ARCADE_SKAHA_CERT_FILE",
                "/e.pem",
                json!("client certificate /e.pem"),
            ),
        key("skaha.session_id", Value::Null)
            .platform("VNC_PW", "vnc", json!("vnc"))
            .platform("skaha_sessionid", "sid", json!("sid"))
            .files(["\"s\"", "\"u\"", "\"x\""])
            .env("ARCADE_SESSION_ID", "e", json!("e")),
        key("skaha.poll_timeout_secs", json!(600)).files(["1", "2", "3"]),
        key("skaha.watch_secs", json!(15)).files(["1", "2", "3"]),
        key("menu.submenu_threshold", json!(5)).files(["1", "2", "3"]),
        key("menu.shortcuts", json!([])).files(["[\"a\"]", "[\"b\", \"c\"]", "[]"]),
        key("menu.desktop_dir", json!("{dir}/home/Desktop")).files(["\"/s\"", "\"/u\"", "\"/x\""]),
        key("menu.wm_class", json!({})).files(["{ a = \"A\" }", "{ b = \"B\" }", "{}"]),
        key("menu.presets", json!(["4/16", "8/32"])).files([
            "[\"1/2\"]",
            "[\"2/4\", \"8/32/1\"]",
            "[]",
        ]),
        key("menu.mime_types", json!({})).files_shown([
            ("{ a = [\"text/csv\"] }", json!({ "a": ["text/csv"] })),
            // Types are case-insensitive, and written lowercase.
            (
                "{ b = [\"Application/FITS\"] }",
                json!({ "b": ["application/fits"] }),
            ),
            ("{}", json!({})),
        ]),
        key("menu.mime_defaults", json!({})).files([
            "{ \"text/csv\" = \"a\" }",
            "{ \"application/fits\" = \"b\" }",
            "{}",
        ]),
        key("launch.backend", json!("podman"))
            .platform("skaha_hostname", "p.example.org", json!("skaha"))
            .files(["\"docker\"", "\"podman\"", "\"docker\""])
            .env("ARCADE_BACKEND", "skaha", json!("skaha"))
            .flag("--backend", "podman", json!("podman")),
        key("launch.network", json!("none")).files(["\"s\"", "\"u\"", "\"x\""]),
        key("launch.user", json!("auto")).files(["\"1:1\"", "\"2:2\"", "\"3:3\""]),
        key("launch.wait_secs", json!(60)).files(["1", "2", "3"]),
        key("launch.cores", Value::Null).files(["1", "2", "3"]),
        key("launch.ram_gb", Value::Null).files(["1", "2", "3"]),
        // Only the names show: operators may pass tokens to apps this way.
        key("launch.env", json!([])).files_shown([
            ("{ A = \"token-a\" }", json!(["A"])),
            ("{ B = \"token-b\", C = \"c\" }", json!(["B", "C"])),
            ("{}", json!([])),
        ]),
        key("launch.volumes", json!([])).files(["[\"/a:/a\"]", "[\"/b:/b\"]", "[]"]),
        key("launch.pull", json!("missing")).files(["\"never\"", "\"always\"", "\"newer\""]),
        key("launch.containers_conf", Value::Null)
            .files(["\"/s.conf\"", "\"/u.conf\"", "\"/x.conf\""])
            .env("CONTAINERS_CONF", "/e.conf", json!("/e.conf")),
        key("daemon.refresh_minutes", json!(30)).files(["1", "2", "3"]),
        key("daemon.stop_apps_on_exit", json!(true)).files(["false", "true", "false"]),
        key("samp.enabled", json!(true)).files(["false", "true", "false"]),
        key("samp.address", Value::Null).files(["\"10.0.0.1\"", "\"10.0.0.2\"", "\"10.0.0.3\""]),
    ]
}

#[test]
fn every_key_has_a_precedence_case() {
    let mut covered: Vec<&str> = cases().iter().map(|case| case.key).collect();
    covered.sort_unstable();
    assert_eq!(covered, Layer::every_key());
}

#[test]
fn each_layer_wins_over_those_below_it_key_by_key() {
    for case in cases() {
        case.check();
    }
}

#[test]
fn every_variable_has_a_case() {
    let cases = cases();
    for (var, key) in env::VARIABLES {
        assert!(
            cases.iter().any(|case| case.key == key
                && case
                    .layers
                    .iter()
                    .any(|(place, _, _)| matches!(place, Where::Env(v) if *v == var))),
            "no precedence case for {var}"
        );
    }
}

#[test]
fn the_config_flag_wins_over_arcade_config() {
    let world = World::new();
    let extra = world.write("extra.toml", "label = \"extra\"\n");
    let flagged = world.write("flagged.toml", "label = \"flagged\"\n");
    world.var("ARCADE_CONFIG", &extra.display().to_string());
    world.flags.borrow_mut().config_file = Some(flagged.clone());
    let settings = world.load().unwrap();
    assert_eq!(settings.label, "flagged");
    assert_eq!(settings.files, [flagged]);
}

#[test]
fn a_missing_arcade_config_file_is_an_error_naming_it() {
    let world = World::new();
    world.var("ARCADE_CONFIG", "{dir}/missing.toml");
    let err = world.load().unwrap_err().to_string();
    assert_eq!(
        err,
        world.expand(
            "failed to read config {dir}/missing.toml: No such file or directory (os error 2)"
        )
    );
}

#[test]
fn empty_variables_are_unset_for_every_key() {
    let world = World::new();
    world.append(&world.user_file(), "label = \"user\"");
    for (var, _) in env::VARIABLES {
        world.var(var, "");
    }
    for var in [
        "ARCADE_CONFIG",
        "skaha_hostname",
        "VNC_PW",
        "ARCADE_HARBOR_SECRET",
    ] {
        world.var(var, "");
    }
    let settings = world.load().unwrap();
    assert_eq!(settings.label, "user");
    assert_eq!(settings.source, Source::Harbor);
    assert_eq!(settings.skaha.session_id, None);
    assert!(settings.harbor_auth.is_none());
}

/// Secrets given in the environment itself win over the files that hold them.
#[test]
fn secrets_in_the_environment_win_over_secret_files() {
    let world = World::new();
    let user = world.user_file();
    world.append(&user, "harbor.username = \"robot\"");
    world.append(&user, "harbor.secret_file = \"{dir}/s1\"");
    // skaha: a session token, else a bearer token, else a token file, else a certificate.
    world.append(&user, "skaha.cert_file = \"/c.pem\"");
    let auth = || world.shown("skaha_auth").0;
    assert_eq!(auth(), json!("client certificate /c.pem"));
    world.append(&user, "skaha.token_file = \"{dir}/s2\"");
    let from_file = world.expand("bearer token (set, from file {dir}/s2)");
    assert_eq!(auth(), json!(from_file));
    world.var("ARCADE_SKAHA_TOKEN", "token");
    let bearer = "bearer token (set, from environment ARCADE_SKAHA_TOKEN)";
    assert_eq!(auth(), json!(bearer));
    world.var("DESKTOP_SESSION_APP_TOKEN", "token");
    let session = "session token (set, from environment DESKTOP_SESSION_APP_TOKEN)";
    assert_eq!(auth(), json!(session));
    // Harbor: ARCADE_HARBOR_SECRET, else the secret file.
    let harbor = world.load().unwrap().harbor_auth.unwrap();
    assert_eq!(harbor.secret.expose(), "secret s1");
    world.var("ARCADE_HARBOR_SECRET", "from-env");
    let harbor = world.load().unwrap().harbor_auth.unwrap();
    assert_eq!(harbor.secret.expose(), "from-env");
    assert_eq!(
        world.shown("harbor_secret"),
        (
            json!("(set, from environment ARCADE_HARBOR_SECRET)"),
            "env:ARCADE_HARBOR_SECRET".to_owned()
        )
    );
}

/// `skaha_url` and `url` with their origins, for a catalog `source`, these variables, `--url`
/// (a sync's), `launch --url`, and a user file; `{user}` stands for the user file's path.
fn skaha_service(
    source: &str,
    vars: &[(&str, &str)],
    url_flag: Option<&str>,
    launch_flag: Option<&str>,
    file: &str,
) -> [(Value, String); 2] {
    let world = World::new();
    world.var("ARCADE_SOURCE", source);
    for (var, value) in vars {
        world.var(var, value);
    }
    world.append(&world.user_file(), file);
    *world.flags.borrow_mut() = Overrides {
        url: url_flag.map(str::to_owned),
        skaha_url: launch_flag.map(str::to_owned),
        ..Overrides::default()
    };
    let user = world.user_file().display().to_string();
    ["skaha_url", "url"].map(|key| {
        let (value, origin) = world.shown(key);
        (value, origin.replace(&user, "{user}"))
    })
}

/// The skaha service apps are launched on, with a Harbor catalog or a skaha one.
#[test]
fn the_skaha_service_is_chosen_as_documented() {
    let shown = |url: &str, origin: &str| (json!(url), origin.to_owned());
    let none = (Value::Null, "default".to_owned());
    let a = ("ARCADE_URL", "https://a");
    let platform = ("skaha_hostname", "p");
    let named = ("ARCADE_SKAHA_URL", "https://e");

    // A Harbor catalog: skaha.url, else the platform's, else ARCADE_URL.
    let [skaha, _] = skaha_service("harbor", &[], None, None, "");
    assert_eq!(skaha, none);
    let [skaha, _] = skaha_service("harbor", &[a], None, None, "");
    assert_eq!(skaha, shown("https://a/skaha", "env:ARCADE_URL"));
    let [skaha, _] = skaha_service("harbor", &[a, platform], None, None, "");
    assert_eq!(skaha, shown("https://p/skaha", "env:skaha_hostname"));
    let file = "skaha.url = \"https://f\"";
    let [skaha, _] = skaha_service("harbor", &[a, platform], None, None, file);
    assert_eq!(skaha, shown("https://f/skaha", "file:{user}"));

    // A skaha catalog: its URL, over skaha.url from a file, the catalog's URL and the skaha
    // service being one.
    let file = "url = \"https://c\"\nskaha.url = \"https://f\"";
    let expected = shown("https://c/skaha", "file:{user}");
    let service = skaha_service("skaha", &[], None, None, file);
    assert_eq!(service, [expected.clone(), expected]);
    // … but skaha.url named in the environment or a flag wins, and (kept from before the
    // layers) ARCADE_SKAHA_URL wins over a sync's `--url`.
    let expected = shown("https://e/skaha", "env:ARCADE_SKAHA_URL");
    let service = skaha_service("skaha", &[named], Some("https://flag"), None, file);
    assert_eq!(service, [expected.clone(), expected]);
    let expected = shown("https://l/skaha", "flag:--url");
    let service = skaha_service(
        "skaha",
        &[named],
        Some("https://flag"),
        Some("https://l"),
        "",
    );
    assert_eq!(service, [expected.clone(), expected]);
}

#[test]
fn secrets_do_not_print() {
    let secret = Secret::new("hunter2".into(), "file /x".into());
    assert!(!format!("{secret:?}").contains("hunter2"));
    let world = World::new();
    world.var("ARCADE_HARBOR_USERNAME", "robot");
    world.var("ARCADE_HARBOR_SECRET", "hunter2");
    world.var("ARCADE_SKAHA_TOKEN", "hunter3");
    world.append(&world.user_file(), "launch.env = { TOKEN = \"hunter4\" }");
    let view = serde_json::to_string(&world.load().unwrap().view().unwrap()).unwrap();
    for secret in ["hunter2", "hunter3", "hunter4"] {
        assert!(!view.contains(secret), "{view}");
    }
    assert!(view.contains("TOKEN"), "{view}");
}

/// `arcade config` has a line for every value of the settings, each named after its key.
#[test]
fn the_view_shows_every_key_once() {
    let world = World::new();
    let view = world.load().unwrap().view().unwrap();
    let shown: Vec<&str> = view.iter().map(|shown| shown.key.as_str()).collect();
    // Credential files show as the credentials they hold.
    let hidden = ["harbor.secret_file", "skaha.token_file", "skaha.cert_file"];
    let mut expected: Vec<String> = Layer::every_key()
        .iter()
        .filter(|key| !hidden.contains(&key.as_str()))
        .map(|key| key.replace('.', "_"))
        .chain(["config_files", "dirs", "harbor_secret", "skaha_auth"].map(str::to_owned))
        .collect();
    expected.sort();
    assert_eq!(shown, expected);
}

/// README's example config parses, and with its commented-out keys put back it sets every key
/// of the schema; its table of variables names every variable that sets a key.
#[test]
fn the_readme_documents_every_key_and_variable() {
    let readme = include_str!("../../README.md");
    let section = &readme[readme.find("## Configuration").unwrap()..];
    let example = section
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .unwrap();
    Layer::parse(example, Path::new("README.md")).unwrap();
    let uncommented: String = example
        .lines()
        .map(|line| line.strip_prefix("# ").unwrap_or(line).to_owned() + "\n")
        .collect();
    let layer = Layer::parse(&uncommented, Path::new("README.md")).unwrap();
    let mut documented: Vec<String> = layer
        .entries(&Origin::Default)
        .unwrap()
        .into_iter()
        .map(|(key, _, _)| key)
        .collect();
    documented.sort();
    assert_eq!(documented, Layer::every_key());
    for (var, _) in env::VARIABLES {
        assert!(section.contains(&format!("`{var}`")), "README lacks {var}");
    }
}

#[test]
fn a_catalog_flag_alone_means_the_file_source() {
    let world = World::new();
    world.write("catalog.json", "[]");
    world.flags.borrow_mut().catalog = Some(world.path("catalog.json"));
    let settings = world.load().unwrap();
    assert_eq!(settings.source, Source::File);
    assert_eq!(settings.origins["source"], Origin::Flag("--catalog"));
    // With a source named, the flag does not override it.
    world.flags.borrow_mut().source = Some(Source::Harbor);
    assert_eq!(world.load().unwrap().source, Source::Harbor);
}
