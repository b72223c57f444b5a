//! Entries that describe themselves (issue 14): images' own labels read from the Harbor
//! stand-in's artifact listing (`extra_attrs.config.Labels`, as Harbor's image processor fills
//! it) and from catalog files, turned into entry fields, icons and right-click resource actions;
//! hostile labels kept out; `image check` showing them.
//!
//! Tests are named `r14_<point>_…` after the point of the issue they show.
// See: issue 14, "Entries that describe themselves".

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::support::contract::Contract;
use crate::support::desk::{Desk, Engine, catalog_label_of};
use crate::support::desktop_files::{self, read_entry};
use crate::support::fake_http::{LoggedRequest, base64_encode};
use crate::support::harbor::{
    Artifact, FakeHarbor, HarborConfig, HarborData, Label, Project, Repository,
};
use crate::support::images::Spec;
use crate::support::tls::TestPki;
use crate::support::{Arcade, Home};

const TITLE: &str = "org.opencontainers.image.title";
const DESCRIPTION: &str = "org.opencontainers.image.description";
const ICON: &str = "net.canfar.arcade.icon";
const CATEGORIES: &str = "net.canfar.arcade.categories";
const KEYWORDS: &str = "net.canfar.arcade.keywords";
const WM_CLASS: &str = "net.canfar.arcade.wm-class";
const RESOURCES: &str = "net.canfar.arcade.resources";
const PRESETS: &str = "net.canfar.arcade.presets";

/// A 48×48 PNG from arcade's own assets, a picture every check accepts.
fn png() -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/icons/48x48/arcade-ds9.png"))
        .unwrap()
}

const SVG: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 16 16\">\
                   <circle cx=\"8\" cy=\"8\" r=\"7\" fill=\"#246\"/></svg>";

fn data_url(mime: &str, bytes: &[u8]) -> String {
    format!("data:{mime};base64,{}", base64_encode(bytes))
}

/// One public project `skaha` whose repositories each hold one artifact tagged `1.0` and
/// labelled `desktop-app`, with the image labels given.
fn registry(repositories: &[(&str, &[(&str, Value)])]) -> HarborData {
    let mut project = Project::public("skaha");
    for (name, labels) in repositories {
        let mut artifact = Artifact::new(&["1.0"], &[12]);
        for (key, value) in *labels {
            artifact = artifact.image_label(key, value.clone());
        }
        project = project.repository(Repository::new(name).artifact(artifact));
    }
    HarborData {
        labels: vec![Label::global(12, "desktop-app")],
        projects: vec![project],
        ..HarborData::default()
    }
}

fn sync(home: &Home, fake: &FakeHarbor) -> Arcade {
    home.arcade()
        .args(["menu", "sync", "--json", "--source", "harbor", "--url"])
        .args([fake.url()])
}

/// The generated menu entry that launches `image`.
#[track_caller]
fn entry_file(home: &Home, image: &str) -> PathBuf {
    desktop_files::generated(home)
        .into_iter()
        .filter(|path| path.starts_with(home.applications()))
        .find(|path| read_entry(path).desktop_entry("X-Arcade-Image") == Some(image))
        .unwrap_or_else(|| panic!("no menu entry for {image}:\n{}", home.listing()))
}

/// A key of the `[Desktop Entry]` group of the entry launching `image`.
fn key(home: &Home, image: &str, key: &str) -> Option<String> {
    read_entry(&entry_file(home, image))
        .desktop_entry(key)
        .map(str::to_owned)
}

/// The installed file of a themed icon name, in any size folder of the user's hicolor theme.
fn icon_file(home: &Home, name: &str) -> Option<PathBuf> {
    let theme = home.data().join("icons/hicolor");
    std::fs::read_dir(&theme).ok()?.flatten().find_map(|size| {
        ["png", "svg"]
            .iter()
            .map(|ext| size.path().join(format!("apps/{name}.{ext}")))
            .find(|path| path.is_file())
    })
}

/// The requests of a sync, as `method path?query`, in order.
fn asked(log: &[LoggedRequest]) -> Vec<String> {
    let mut asked: Vec<String> = log
        .iter()
        .map(|request| format!("{} {}?{}", request.method, request.path, request.query))
        .collect();
    asked.sort();
    asked
}

fn warnings(outcome: &Value) -> Vec<String> {
    outcome["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|warning| warning.as_str().unwrap().to_owned())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// 1 and 2: labels come with the listing, and fill the entry.

#[test]
fn r14_1_labels_come_in_the_same_harbor_calls() {
    let labelled: &[(&str, Value)] = &[
        (TITLE, json!("SAOImage DS9")),
        (
            DESCRIPTION,
            json!("Astronomical imaging and data visualization"),
        ),
        (CATEGORIES, json!("X-Imaging;X-Radio")),
        (KEYWORDS, json!("fits;image;regions")),
        (WM_CLASS, json!("Ds9.tcl")),
        (RESOURCES, json!("cores=2,ram=8")),
        (PRESETS, json!("4/16;16/64")),
        ("org.opencontainers.image.vendor", json!("SAO")),
    ];
    let plain = FakeHarbor::start(HarborConfig::new(registry(&[
        ("ds9", &[]),
        ("topcat", &[]),
    ])));
    let with_labels = FakeHarbor::start(HarborConfig::new(registry(&[
        ("ds9", labelled),
        ("topcat", &[(TITLE, json!("TOPCAT"))]),
    ])));

    let home = Home::new();
    let outcome = sync(&home, &plain).ok().json();
    assert_eq!(outcome["entries"], 2, "{outcome:#}");
    let labelled_home = Home::new();
    let outcome = sync(&labelled_home, &with_labels).ok().json();
    assert_eq!(outcome["entries"], 2, "{outcome:#}");
    assert_eq!(warnings(&outcome), Vec::<String>::new());

    // The same requests, one for one: labels cost no request of their own.
    assert_eq!(asked(&plain.requests()), asked(&with_labels.requests()));
    with_labels.assert_requests_in_contract();

    let ds9 = format!("{}/skaha/ds9:1.0", with_labels.registry());
    let topcat = format!("{}/skaha/topcat:1.0", with_labels.registry());
    let get = |image: &str, name: &str| key(&labelled_home, image, name);
    assert_eq!(get(&ds9, "Name").as_deref(), Some("SAOImage DS9 1.0"));
    assert_eq!(
        get(&ds9, "Comment").as_deref(),
        Some(format!("Astronomical imaging and data visualization ({ds9})").as_str())
    );
    let categories = get(&ds9, "Categories").unwrap();
    assert!(categories.contains("X-Imaging;X-Radio;"), "{categories}");
    let keywords = get(&ds9, "Keywords").unwrap();
    assert!(keywords.contains("fits;image;regions;"), "{keywords}");
    assert_eq!(get(&ds9, "StartupWMClass").as_deref(), Some("Ds9.tcl"));
    // The image's presets, not the site's; the entry without presets gets the built-in ones.
    assert_eq!(
        get(&ds9, "Actions").as_deref(),
        Some("cores4-ram16;cores16-ram64;")
    );
    assert_eq!(
        get(&topcat, "Actions").as_deref(),
        Some("cores4-ram16;cores8-ram32;")
    );
    assert_eq!(get(&topcat, "Name").as_deref(), Some("TOPCAT 1.0"));
    let entry = read_entry(&entry_file(&labelled_home, &ds9));
    assert_eq!(
        entry.action_entry("cores16-ram64", "Name"),
        Some("More resources: 16 cores, 64 GB")
    );
    desktop_files::validate_home(&labelled_home);
    // python-xdg reads the menu with the titles.
    let menu = crate::support::menu_as_read_by_pyxdg(&labelled_home);
    assert!(menu.contains("SAOImage DS9 1.0\t"), "{menu}");

    // The saved catalog keeps the labels: offline, the same entry.
    let before = std::fs::read(entry_file(&labelled_home, &ds9)).unwrap();
    std::fs::remove_dir_all(labelled_home.applications()).unwrap();
    labelled_home
        .arcade()
        .args(["menu", "sync", "--offline", "--source", "harbor", "--url"])
        .args([with_labels.url()])
        .ok();
    assert_eq!(
        std::fs::read(entry_file(&labelled_home, &ds9)).unwrap(),
        before
    );
}

#[test]
fn r14_2_icons_inline_and_on_the_registry_host() {
    let pki = TestPki::new();
    let png = png();
    // The URL's host is the stand-in's; its port is known only once it runs, so the labels are
    // set after it starts.
    let fake = FakeHarbor::start_on(
        HarborConfig {
            files: [
                (
                    "/icons/topcat.svg".to_owned(),
                    ("image/svg+xml".to_owned(), SVG.as_bytes().to_vec()),
                ),
                (
                    "/icons/fake.png".to_owned(),
                    (
                        "image/png".to_owned(),
                        b"<html>not a picture</html>".to_vec(),
                    ),
                ),
            ]
            .into(),
            ..HarborConfig::new(registry(&[]))
        },
        pki.tls(false),
    );
    let url = |path: &str| format!("{}{path}", fake.url());
    fake.set_data(registry(&[
        ("ds9", &[(ICON, json!(data_url("image/png", &png)))]),
        ("topcat", &[(ICON, json!(url("/icons/topcat.svg")))]),
        ("topcat2", &[(ICON, json!(url("/icons/topcat.svg")))]),
        ("broken", &[(ICON, json!(url("/icons/fake.png")))]),
        ("missing", &[(ICON, json!(url("/icons/none.svg")))]),
        (
            "elsewhere",
            &[(ICON, json!("https://example.org/icon.svg"))],
        ),
        ("local", &[(ICON, json!("file:///etc/passwd"))]),
    ]));
    let home = Home::new();
    let ca = home.write("pki/ca.pem", &pki.ca_pem);
    home.write_config(&format!("ca_file = \"{}\"\n", ca.display()));
    let outcome = sync(&home, &fake).ok().json();
    let image = |name: &str| format!("{}/skaha/{name}:1.0", fake.registry());

    // Inline and fetched icons are installed under hicolor, by content.
    let ds9_icon = key(&home, &image("ds9"), "Icon").unwrap();
    assert!(ds9_icon.starts_with("arcade-img-"), "{ds9_icon}");
    let path = icon_file(&home, &ds9_icon).expect("the inline icon is installed");
    assert!(
        path.ends_with(format!("48x48/apps/{ds9_icon}.png")),
        "{}",
        path.display()
    );
    assert_eq!(std::fs::read(&path).unwrap(), png);
    let topcat_icon = key(&home, &image("topcat"), "Icon").unwrap();
    let path = icon_file(&home, &topcat_icon).expect("the fetched icon is installed");
    assert!(path.ends_with(format!("scalable/apps/{topcat_icon}.svg")));
    assert_eq!(std::fs::read(&path).unwrap(), SVG.as_bytes());
    assert_eq!(
        key(&home, &image("topcat2"), "Icon"),
        Some(topcat_icon.clone())
    );
    // One request for the two images sharing it; none for a host that is not the registry's.
    assert_eq!(fake.requests_to("/icons/topcat.svg").len(), 1);
    assert!(
        fake.requests()
            .iter()
            .all(|request| request.path.starts_with("/api/") || request.path.starts_with("/icons/")),
        "{:#?}",
        fake.requests()
    );
    // The API requests keep to the swagger; the icons are not the API's.
    let api: Vec<LoggedRequest> = fake
        .requests()
        .into_iter()
        .filter(|request| request.path.starts_with("/api/"))
        .collect();
    Contract::harbor().assert_requests(&api);

    // What could not be used keeps the app's icon, with a warning naming the label.
    let warnings = warnings(&outcome);
    for name in ["broken", "missing", "elsewhere", "local"] {
        assert_eq!(
            key(&home, &image(name), "Icon").as_deref(),
            Some("arcade-astro"),
            "{name}"
        );
        assert!(
            warnings
                .iter()
                .any(|warning| warning.starts_with(&image(name)) && warning.contains(ICON)),
            "{name}: {warnings:#?}"
        );
    }
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("neither a PNG nor an SVG")),
        "{warnings:#?}"
    );
    assert!(
        warnings.iter().any(|w| w.contains("registry's own host")),
        "{warnings:#?}"
    );
    desktop_files::validate_home(&home);

    // A second sync within the day asks nothing again for the icon it has.
    sync(&home, &fake).ok();
    assert_eq!(fake.requests_to("/icons/topcat.svg").len(), 1);
    assert_eq!(key(&home, &image("topcat"), "Icon"), Some(topcat_icon));
}

#[test]
fn r14_2_a_catalog_file_carries_labels() {
    let home = Home::new();
    let catalog = home.write(
        "catalog.json",
        &json!([{
            "id": "images.canfar.net/skaha/aladin:12.0",
            "types": ["desktop-app"],
            "labels": {TITLE: "Aladin Desktop", WM_CLASS: "cds-aladin-Aladin",
                       ICON: data_url("image/svg+xml", SVG.as_bytes()), PRESETS: "2/4"},
        }])
        .to_string(),
    );
    home.arcade()
        .args(["menu", "sync", "--catalog"])
        .args([&catalog])
        .ok();
    let image = "images.canfar.net/skaha/aladin:12.0";
    assert_eq!(
        key(&home, image, "Name").as_deref(),
        Some("Aladin Desktop 12.0")
    );
    assert_eq!(
        key(&home, image, "StartupWMClass").as_deref(),
        Some("cds-aladin-Aladin")
    );
    assert_eq!(
        key(&home, image, "Actions").as_deref(),
        Some("cores2-ram4;")
    );
    let icon = key(&home, image, "Icon").unwrap();
    assert_eq!(
        std::fs::read(icon_file(&home, &icon).unwrap()).unwrap(),
        SVG.as_bytes()
    );
    desktop_files::validate_home(&home);
}

// ---------------------------------------------------------------------------------------------
// 3: hostile labels.

/// Labels that try everything a label can: break the file, escape a path, reach a shell.
fn hostile_labels() -> Vec<(&'static str, Value)> {
    let huge_png = {
        let mut bytes = png();
        bytes.resize(2 << 20, 0);
        bytes
    };
    vec![
        (
            TITLE,
            json!("DS9\n[Desktop Entry]\nExec=/bin/sh -c 'touch /tmp/pwned'"),
        ),
        (
            DESCRIPTION,
            json!(format!(
                "100% \"quoted\" $(touch /tmp/pwned) `id` \\n {}",
                "x".repeat(20_000)
            )),
        ),
        (CATEGORIES, json!("X-Ok;Science;X-Bad\rExec=evil;../../etc")),
        (KEYWORDS, json!("a;b\u{7};%f;c")),
        (WM_CLASS, json!("../../etc/passwd x")),
        (RESOURCES, json!("cores=99999,ram=1")),
        (PRESETS, json!("4/16;--privileged;8/32")),
        (ICON, json!(data_url("image/png", &huge_png))),
        ("org.opencontainers.image.url", json!("javascript:alert(1)")),
        ("org.opencontainers.image.version", json!({"not": "text"})),
        (
            "net.canfar.arcade.mime-types",
            json!("image/fits;text/x-%s"),
        ),
    ]
}

#[test]
fn r14_3_hostile_labels_get_nowhere() {
    let scripted = "<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>";
    let handler = "<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/>";
    let external = "<svg xmlns=\"http://www.w3.org/2000/svg\" \
                    xmlns:xlink=\"http://www.w3.org/1999/xlink\">\
                    <image xlink:href=\"http://evil.example/x.png\"/></svg>";
    let hostile = hostile_labels();
    let svg_icon = |svg: &str| vec![(ICON, json!(data_url("image/svg+xml", svg.as_bytes())))];
    let (scripted, handler, external) = (svg_icon(scripted), svg_icon(handler), svg_icon(external));
    let fake = FakeHarbor::start(HarborConfig::new(registry(&[
        ("ds9", &hostile),
        ("scripted", &scripted),
        ("handler", &handler),
        ("external", &external),
    ])));
    let home = Home::new();
    let before: BTreeSet<PathBuf> = files_under(home.path());
    let outcome = sync(&home, &fake).ok().json();
    assert_eq!(outcome["entries"], 4, "{outcome:#}");

    // Every file is validator-clean, and every entry runs arcade on its image and nothing else
    // (the shared checks read each Exec and each action's Exec as the spec and the crate do).
    let images = desktop_files::validate_home(&home);
    assert_eq!(images.len(), 4, "{images:?}");
    // No file beyond the menu's own folders.
    let allowed = [
        home.applications(),
        home.data().join("desktop-directories"),
        home.data().join("icons/hicolor"),
        home.data().join("arcade"),
        home.config().join("menus"),
        home.cache().join("arcade"),
        // ds9 opens FITS files: the MIME database and the desktop's caches of the data folder,
        // and arcade's own default apps.
        home.data().join("mime"),
        home.data().join("applications/mimeapps.list"),
        home.data().join("applications/mimeinfo.cache"),
    ];
    for path in files_under(home.path()).difference(&before) {
        assert!(
            allowed.iter().any(|dir| path.starts_with(dir)),
            "{} is outside the menu's folders",
            path.display()
        );
    }
    assert!(!Path::new("/tmp/pwned").exists());

    let ds9 = format!("{}/skaha/ds9:1.0", fake.registry());
    let text = std::fs::read_to_string(entry_file(&home, &ds9)).unwrap();
    // The title is refused (a newline), so the name is the image's. The long description is
    // cut, and reads back exactly, `%`, quotes, `$( )` and backslash included: in a Comment
    // they are text, and no Exec holds them.
    assert_eq!(key(&home, &ds9, "Name").as_deref(), Some("ds9:1.0"));
    let comment = read_entry(&entry_file(&home, &ds9))
        .comment(&[] as &[&str])
        .unwrap()
        .into_owned();
    assert!(
        comment.starts_with("100% \"quoted\" $(touch /tmp/pwned) `id` \\n xxx")
            && comment.ends_with(&format!("… ({ds9})")),
        "{comment}"
    );
    assert!(comment.chars().count() < 400, "{comment}");
    let execs = text
        .lines()
        .filter(|line| line.starts_with("Exec="))
        .count();
    assert_eq!(execs, 3, "one Exec and two actions': {text}");
    assert!(
        text.contains("Categories=X-AstroSoftware;X-AstroSoftware-skaha;\n"),
        "{text}"
    );
    assert_eq!(
        key(&home, &ds9, "StartupWMClass").as_deref(),
        Some("Ds9.tcl")
    );
    assert!(!text.contains("--privileged"), "{text}");
    // The refused mime-types label leaves ds9 the types arcade knows it opens.
    assert_eq!(
        key(&home, &ds9, "MimeType").as_deref(),
        Some("application/fits;image/fits;image/x-fits;")
    );
    assert_eq!(key(&home, &ds9, "Icon").as_deref(), Some("arcade-ds9"));
    // No icon of any of the images is installed: only arcade's own.
    let own_icons = files_under(&home.data().join("icons/hicolor"));
    assert!(
        own_icons.iter().all(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            !name.starts_with("arcade-img-")
        }),
        "{own_icons:#?}"
    );
    for name in ["scripted", "handler", "external"] {
        let image = format!("{}/skaha/{name}:1.0", fake.registry());
        assert_eq!(key(&home, &image, "Icon").as_deref(), Some("arcade-astro"));
    }

    // Each refusal is a warning naming the image and the label; the output stays one line each.
    let warnings = warnings(&outcome);
    for label in [
        TITLE, CATEGORIES, KEYWORDS, WM_CLASS, RESOURCES, PRESETS, ICON,
    ] {
        assert!(
            warnings
                .iter()
                .any(|warning| warning.starts_with(&ds9) && warning.contains(label)),
            "{label}: {warnings:#?}"
        );
    }
    assert!(
        warnings
            .iter()
            .all(|warning| !warning.contains(['\n', '\r', '\u{7}']) && warning.len() < 600),
        "{warnings:#?}"
    );
    for (name, why) in [
        ("scripted", "script"),
        ("handler", "event handler"),
        ("external", "refers outside"),
    ] {
        let image = format!("{}/skaha/{name}:1.0", fake.registry());
        assert!(
            warnings
                .iter()
                .any(|warning| warning.starts_with(&image) && warning.contains(why)),
            "{name}: {warnings:#?}"
        );
    }
}

fn files_under(dir: &Path) -> BTreeSet<PathBuf> {
    let mut files = BTreeSet::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                stack.push(path);
            } else {
                files.insert(path);
            }
        }
    }
    files
}

// ---------------------------------------------------------------------------------------------
// 4: right-click actions launch with their resources.

#[test]
fn r14_4_an_action_launches_with_its_resources() {
    let desk = Desk::new(Engine::Podman);
    let image = desk.build(&Spec::new("xterm"));
    let catalog = desk.home.write(
        "catalog.json",
        &json!([{"id": image, "types": ["desktop-app"],
                  "labels": {PRESETS: "2/2;3/3", RESOURCES: "cores=1,ram=1"}}])
        .to_string(),
    );
    desk.arcade()
        .args(["menu", "sync", "--catalog"])
        .args([&catalog])
        .ok();
    let entry = read_entry(&entry_file(&desk.home, &image));
    assert_eq!(
        entry.actions(),
        Some(vec!["cores2-ram2", "cores3-ram3", ""])
    );
    desktop_files::validate_home(&desk.home);

    // The entry's Exec, then an action's, each run as a launcher runs it: the image's own
    // resources by default, the action's when chosen.
    let exec = entry.parse_exec().unwrap();
    let id = run_exec(&desk, &exec);
    assert!(desk.xvfb.window_titled(&catalog_label_of(&image)).is_some());
    assert_eq!(desk.inspect(&id, "{{.HostConfig.NanoCpus}}"), "1000000000");
    assert_eq!(
        desk.inspect(&id, "{{.HostConfig.Memory}}"),
        (1u64 << 30).to_string()
    );
    let action = entry.parse_exec_action("cores2-ram2").unwrap();
    let id = run_exec(&desk, &action);
    assert_eq!(desk.inspect(&id, "{{.HostConfig.NanoCpus}}"), "2000000000");
    assert_eq!(
        desk.inspect(&id, "{{.HostConfig.Memory}}"),
        (2u64 << 30).to_string()
    );
}

/// Runs an entry's argv as a launcher does, with the desk's environment; the launch id.
#[track_caller]
fn run_exec(desk: &Desk, argv: &[String]) -> String {
    let mut command = std::process::Command::new(&argv[0]);
    command.args(&argv[1..]).env_clear();
    for (key, value) in desk.arcade().command.get_envs() {
        if let Some(value) = value {
            command.env(key, value);
        }
    }
    let output = command.output().unwrap();
    let run = crate::support::Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        args: format!("{argv:?}"),
    };
    assert_eq!(run.code, Some(0), "{run}");
    crate::support::desk::launch_id(&run)
}

// ---------------------------------------------------------------------------------------------
// 5: image check.

#[test]
fn r14_5_image_check_lints_labels_and_shows_the_entry() {
    let good = Engine::Podman.build(
        &Spec::new("labelled")
            .change("LABEL org.opencontainers.image.title=\"Sky Viewer\"")
            .change("LABEL net.canfar.arcade.presets=2/4"),
    );
    let run = Home::new()
        .arcade()
        .env("ARCADE_BACKEND", "podman")
        .env("CONTAINERS_CONF", crate::support::images::containers_conf())
        .args(["image", "check", &good])
        .run();
    assert!(run.stdout.contains("The menu entry would read:"), "{run}");
    assert!(run.stdout.contains("Name=Sky Viewer"), "{run}");
    assert!(run.stdout.contains("Actions=cores2-ram4;"), "{run}");
    assert!(run.stdout.contains("it gives title, presets"), "{run}");

    let bad = Engine::Podman.build(
        &Spec::new("mislabelled")
            .change("LABEL net.canfar.arcade.resources=lots")
            .change("LABEL net.canfar.arcade.icon=/usr/share/icons/x.png"),
    );
    let run = Home::new()
        .arcade()
        .env("ARCADE_BACKEND", "podman")
        .env("CONTAINERS_CONF", crate::support::images::containers_conf())
        .args(["image", "check", "--json", &bad])
        .run();
    let report: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|_| panic!("{run}"));
    let labels = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|finding| finding["id"] == "labels")
        .unwrap_or_else(|| panic!("{report:#}"));
    assert_eq!(labels["status"], "warn", "{labels:#}");
    let seen = labels["seen"].as_str().unwrap();
    assert!(seen.contains("net.canfar.arcade.resources"), "{seen}");
    assert!(seen.contains("net.canfar.arcade.icon"), "{seen}");
}
