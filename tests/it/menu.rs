//! `arcade menu` from a catalog file: the files written, their validity, and what a menu reader
//! makes of them.
//!
//! Entries are read back with independent readers: the `freedesktop-desktop-entry` crate for
//! values and `Exec` arguments, python-xdg for the menu tree and its validator, and
//! `desktop-file-validate`. Every test has its own home.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use freedesktop_desktop_entry::{DesktopEntry, GenericEntry};
use serde_json::{Value, json};

use crate::support::desktop_files::{self, directory_key, read_directory, read_entry};
use crate::support::menu_state::menu_images;
use crate::support::{self, Arcade, Home};

const REGISTRY: &str = "images.example.org";

/// The binary every entry must run.
fn arcade_bin() -> &'static str {
    env!("CARGO_BIN_EXE_arcade")
}

/// A full reference in the test registry: `images.example.org/<rest>`.
fn image(rest: &str) -> String {
    format!("{REGISTRY}/{rest}")
}

/// A fixed fake digest per reference, so tests can check that each entry carries its own.
fn digest_of(id: &str) -> String {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut hasher = DefaultHasher::new();
    id.hash(&mut hasher);
    let x = hasher.finish();
    format!("sha256:{x:016x}{x:016x}{x:016x}{x:016x}")
}

/// Catalog text in the skaha shape, every image labelled `desktop-app`.
fn catalog_text(ids: &[String]) -> String {
    let entries: Vec<Value> = ids
        .iter()
        .map(|id| json!({"id": id, "types": ["desktop-app"], "digest": digest_of(id)}))
        .collect();
    serde_json::to_string_pretty(&entries).unwrap()
}

/// Writes a catalog file into the home and returns its path.
fn write_catalog(home: &Home, name: &str, ids: &[String]) -> PathBuf {
    home.write(name, &catalog_text(ids))
}

/// `arcade menu sync --source file --catalog PATH`, ready for more arguments.
fn sync(home: &Home, catalog: &Path) -> Arcade {
    home.arcade()
        .args(["menu", "sync", "--source", "file", "--catalog"])
        .args([catalog])
}

/// Runs a sync with `--json` that must succeed and returns its summary.
#[track_caller]
fn synced(home: &Home, catalog: &Path) -> Value {
    sync(home, catalog).args(["--json"]).ok().json()
}

/// The `.directory` files arcade wrote, read.
fn directories(home: &Home) -> Vec<(PathBuf, GenericEntry)> {
    let mut out: Vec<(PathBuf, GenericEntry)> =
        std::fs::read_dir(home.data().join("desktop-directories"))
            .unwrap()
            .flatten()
            .map(|file| file.path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "directory"))
            .map(|path| {
                let entry = read_directory(&path);
                (path, entry)
            })
            .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The menu entries arcade wrote, by path, read with the `freedesktop-desktop-entry` crate.
fn app_entries(home: &Home) -> BTreeMap<PathBuf, DesktopEntry> {
    let mut entries = BTreeMap::new();
    if let Ok(dir) = std::fs::read_dir(home.applications()) {
        for file in dir.flatten() {
            let path = file.path();
            if path.extension().is_some_and(|ext| ext == "desktop") {
                entries.insert(path.clone(), read_entry(&path));
            }
        }
    }
    entries
}

#[track_caller]
fn x_image(entry: &DesktopEntry) -> String {
    entry
        .desktop_entry("X-Arcade-Image")
        .unwrap_or_else(|| panic!("{} has no X-Arcade-Image", entry.path.display()))
        .to_owned()
}

/// The entry file of one image reference.
#[track_caller]
fn entry_path(home: &Home, reference: &str) -> PathBuf {
    let found: Vec<PathBuf> = app_entries(home)
        .into_iter()
        .filter(|(_, entry)| entry.desktop_entry("X-Arcade-Image") == Some(reference))
        .map(|(path, _)| path)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one entry for {reference}:\n{}",
        home.listing()
    );
    found.into_iter().next().unwrap()
}

/// The images of all menu entries on disk.
fn images_on_disk(home: &Home) -> BTreeSet<String> {
    app_entries(home).values().map(x_image).collect()
}

/// The python-xdg menu with names only (no `Exec`), one line per item.
fn pyxdg_names(home: &Home) -> String {
    support::menu_as_read_by_pyxdg(home)
        .lines()
        .map(|line| line.split('\t').next().unwrap_or(""))
        .map(|line| format!("{line}\n"))
        .collect()
}

/// The `Exec` value python-xdg shows for a reference with no character that needs escaping.
fn plain_exec(reference: &str) -> String {
    format!("{} launch --from-menu {reference}", arcade_bin())
}

/// Every `<Filename>` in the merged menu.
fn merged_menu_ids(home: &Home) -> BTreeSet<String> {
    let text = std::fs::read_to_string(home.merged_menu()).unwrap();
    text.split("<Filename>")
        .skip(1)
        .map(|rest| rest.split("</Filename>").next().unwrap().to_owned())
        .collect()
}

/// Validates every generated entry, directory and shortcut (and `extra` ones) with every
/// validator, and holds each to arcade's promises.
#[track_caller]
fn validate_all(home: &Home, extra: &[PathBuf]) {
    let mut files = desktop_files::generated(home);
    files.extend(extra.iter().cloned());
    desktop_files::validate_generated(&files);
}

/// One file or folder as found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    /// `None` for a folder.
    content: Option<Vec<u8>>,
    ino: u64,
    mtime_ns: i128,
    mode: u32,
}

/// Every file and folder under `root`, by path relative to it.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, Node> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Node>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(base).unwrap().to_owned();
            let node = Node {
                content: meta.is_file().then(|| std::fs::read(&path).unwrap()),
                ino: meta.ino(),
                mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
                mode: meta.mode(),
            };
            out.insert(rel, node);
            if meta.is_dir() {
                walk(base, &path, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// Asserts nothing changed between two snapshots, except paths under `ignore` (relative).
#[track_caller]
fn assert_unchanged(
    before: &BTreeMap<PathBuf, Node>,
    after: &BTreeMap<PathBuf, Node>,
    ignore: &[&str],
) {
    let ignored = |path: &Path| ignore.iter().any(|prefix| path.starts_with(prefix));
    let mut problems = Vec::new();
    for (path, node) in before {
        if ignored(path) {
            continue;
        }
        match after.get(path) {
            None => problems.push(format!("removed {}", path.display())),
            Some(now) if now.content != node.content => {
                problems.push(format!("content changed {}", path.display()));
            }
            Some(now) if now != node => problems.push(format!(
                "touched {} (inode {} → {}, mtime {} → {}, mode {:o} → {:o})",
                path.display(),
                node.ino,
                now.ino,
                node.mtime_ns,
                now.mtime_ns,
                node.mode,
                now.mode
            )),
            Some(_) => {}
        }
    }
    for path in after.keys() {
        if !ignored(path) && !before.contains_key(path) {
            problems.push(format!("added {}", path.display()));
        }
    }
    assert!(
        problems.is_empty(),
        "files changed:\n{}",
        problems.join("\n")
    );
}

/// Asserts every file under the home is one arcade may write, or one of `allowed_extra`.
#[track_caller]
fn assert_only_expected_files(home: &Home, allowed_extra: &[PathBuf]) {
    let ok_name = |name: &str, prefix: &str, suffix: &str| {
        name.len() <= 255
            && name.starts_with(prefix)
            && name.ends_with(suffix)
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
    };
    let mut unexpected = Vec::new();
    for (rel, node) in snapshot(home.path()) {
        if node.content.is_none()
            || allowed_extra
                .iter()
                .any(|extra| extra == &home.path().join(&rel))
        {
            continue;
        }
        let dir = rel.parent().unwrap().to_str().unwrap();
        let name = rel.file_name().unwrap().to_str().unwrap();
        let fine = match dir {
            ".local/share/applications/arcade" => ok_name(name, "", ".desktop"),
            ".local/share/desktop-directories" => ok_name(name, "arcade-", ".directory"),
            ".config/menus/applications-merged" => name == "arcade-astro-software.menu",
            ".local/share/icons/hicolor/scalable/apps" => ok_name(name, "arcade-", ".svg"),
            ".local/share/icons/hicolor/48x48/apps" => ok_name(name, "arcade-", ".png"),
            ".local/share/arcade" => name == "manifest.json" || name == "sync.lock",
            ".cache/arcade" => name == "catalog.json",
            "Desktop" => ok_name(name, "arcade-", ".desktop"),
            _ => false,
        };
        if !fine {
            unexpected.push(rel.display().to_string());
        }
    }
    assert!(
        unexpected.is_empty(),
        "unexpected files:\n{}\n--- all files\n{}",
        unexpected.join("\n"),
        home.listing()
    );
}

/// No temporary file of an atomic write is left anywhere.
#[track_caller]
fn assert_no_temp_files(home: &Home) {
    let temps: Vec<String> = snapshot(home.path())
        .keys()
        .filter(|path| {
            path.file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with(".arcade-"))
        })
        .map(|path| path.display().to_string())
        .collect();
    assert!(temps.is_empty(), "temporary files left: {temps:?}");
}

/// Where arcade puts the files of `ids` (relative to the applications folder): names depend only
/// on the references, so a scratch home tells where a real one will get them.
fn entry_names(ids: &[String]) -> BTreeMap<String, String> {
    let scratch = Home::new();
    let catalog = write_catalog(&scratch, "catalog.json", ids);
    synced(&scratch, &catalog);
    app_entries(&scratch)
        .into_iter()
        .map(|(path, entry)| {
            (
                x_image(&entry),
                path.file_name().unwrap().to_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn json_paths(value: &Value) -> Vec<PathBuf> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|path| PathBuf::from(path.as_str().unwrap()))
        .collect()
}

#[test]
fn sample_catalog_builds_a_valid_menu() {
    let home = Home::new();
    let catalog = support::sample_catalog();
    home.arcade()
        .args(["menu", "sync", "--source", "file", "--catalog"])
        .args([&catalog])
        .ok();
    let files = desktop_files::generated(&home);
    assert!(files.len() > 20, "{}", home.listing());
    desktop_files::validate_generated(&files);
    let menu = support::menu_as_read_by_pyxdg(&home);
    assert!(menu.starts_with("[Astro Software]\n  [cirada]\n"), "{menu}");
    assert!(menu.contains("\n    [casa]\n      casa:6.6.5\t"), "{menu}");
    assert!(
        !menu.contains("[Other]"),
        "entries leaked into Other:\n{menu}"
    );
}

/// One `.desktop` per version in the user's `applications/arcade/`, one `.directory` per menu,
/// one merged menu; nothing anywhere else, nothing under `$XDG_CONFIG_DIRS`.
#[test]
fn writes_per_user_files_one_entry_per_version() {
    let home = Home::new();
    let mut ids: Vec<String> = ["4.7", "5.0", "6.2", "6.9", "6.10", "6.10.1"]
        .iter()
        .map(|tag| image(&format!("skaha/casa:{tag}")))
        .collect();
    ids.extend([
        image("skaha/terminal:1.0"),
        image("skaha/terminal:1.1"),
        image("cirada/pybdsf:1.9"),
    ]);
    let catalog = write_catalog(&home, "catalog.json", &ids);
    let summary = synced(&home, &catalog);
    assert_eq!(summary["entries"], ids.len(), "{summary}");
    assert_eq!(summary["projects"], 2, "{summary}");

    // Entries: exactly one per image version, in the vendor subfolder, none beside it.
    let entries = app_entries(&home);
    assert_eq!(entries.len(), ids.len(), "{}", home.listing());
    assert_eq!(
        images_on_disk(&home),
        ids.iter().cloned().collect::<BTreeSet<_>>()
    );
    let loose: Vec<_> = std::fs::read_dir(home.data().join("applications"))
        .unwrap()
        .flatten()
        .filter(|entry| entry.path().is_file())
        .map(|entry| entry.path())
        .collect();
    assert!(
        loose.is_empty(),
        "entries outside applications/arcade: {loose:?}"
    );

    // Desktop file IDs are `arcade-<file name>`, and they are what the merged menu includes.
    let ids_on_disk: BTreeSet<String> = entries
        .values()
        .map(|entry| {
            assert!(entry.id().starts_with("arcade-"), "{}", entry.id());
            format!("{}.desktop", entry.id())
        })
        .collect();
    assert_eq!(merged_menu_ids(&home), ids_on_disk);

    // One merged menu.
    let merged: Vec<_> = std::fs::read_dir(home.config().join("menus/applications-merged"))
        .unwrap()
        .flatten()
        .map(|entry| entry.file_name())
        .collect();
    assert_eq!(merged, ["arcade-astro-software.menu"]);

    // A `.directory` for the top menu, each project and the casa submenu, and nothing else.
    let directories: BTreeSet<String> = directories(&home)
        .into_iter()
        .map(|(path, entry)| {
            let name = path.file_name().unwrap().to_str().unwrap();
            assert!(name.starts_with("arcade-"), "{name}");
            assert_eq!(directory_key(&entry, "Type"), Some("Directory"));
            directory_key(&entry, "Name").unwrap().to_owned()
        })
        .collect();
    assert_eq!(
        directories,
        ["Astro Software", "casa", "cirada", "skaha"]
            .map(str::to_owned)
            .into()
    );

    assert_only_expected_files(&home, &[catalog]);
    assert!(
        snapshot(&home.sysconf()).is_empty(),
        "wrote under $XDG_CONFIG_DIRS:\n{}",
        home.listing()
    );
    validate_all(&home, &[]);
}

/// Applications → Astro Software → project → repo:tag, as python-xdg reads it: versions newest
/// first (1.10 above 1.9, `latest` after every version), and the entries in no other menu (the
/// base menu's Science and catch-all Other stay empty, so python-xdg does not show them).
#[test]
fn python_xdg_reads_the_tree_newest_first_and_nowhere_else() {
    let home = Home::new();
    let mut ids: Vec<String> = ["1.9", "1.10", "1.2", "latest"]
        .iter()
        .map(|tag| image(&format!("skaha/pybdsf:{tag}")))
        .collect();
    ids.extend([image("skaha/aplpy:2.1"), image("alpha/terminal:1.0")]);
    let catalog = write_catalog(&home, "catalog.json", &ids);
    synced(&home, &catalog);

    let expected = format!(
        "[Astro Software]\n\
         \x20 [alpha]\n\
         \x20   terminal:1.0\t{}\n\
         \x20 [skaha]\n\
         \x20   aplpy:2.1\t{}\n\
         \x20   pybdsf:1.10\t{}\n\
         \x20   pybdsf:1.9\t{}\n\
         \x20   pybdsf:1.2\t{}\n\
         \x20   pybdsf:latest\t{}\n",
        plain_exec(&image("alpha/terminal:1.0")),
        plain_exec(&image("skaha/aplpy:2.1")),
        plain_exec(&image("skaha/pybdsf:1.10")),
        plain_exec(&image("skaha/pybdsf:1.9")),
        plain_exec(&image("skaha/pybdsf:1.2")),
        plain_exec(&image("skaha/pybdsf:latest")),
    );
    assert_eq!(support::menu_as_read_by_pyxdg(&home), expected);

    // Only `X-` categories: no registered category a desktop's own menus could pick up.
    for entry in app_entries(&home).values() {
        // The crate keeps the empty item after the list's final `;`.
        let categories: Vec<&str> = entry
            .categories()
            .unwrap()
            .into_iter()
            .filter(|category| !category.is_empty())
            .collect();
        assert!(categories.contains(&"X-AstroSoftware"), "{categories:?}");
        assert!(
            categories.iter().all(|category| category.starts_with("X-")),
            "{}: {categories:?}",
            entry.path.display()
        );
    }
}

/// The same repo:tag in two projects (or two registries) gets two files, each under its own
/// project; projects whose names make the same file-name fragment stay apart too.
#[test]
fn same_repository_and_tag_in_two_places_get_their_own_entries() {
    let home = Home::new();
    let ids = vec![
        image("alpha/terminal:1.0"),
        image("beta/terminal:1.0"),
        "other.org/alpha/terminal:1.0".to_owned(),
        image("a_b/x:1"),
        image("a.b/x:1"),
    ];
    let catalog = write_catalog(&home, "catalog.json", &ids);
    synced(&home, &catalog);

    assert_eq!(app_entries(&home).len(), ids.len(), "{}", home.listing());
    // An image keeps its desktop ID (which docks and favourites remember) when images whose
    // names make the same file-name fragment come and go.
    let lone = entry_names(&[image("a_b/x:1")]);
    assert_eq!(
        entry_path(&home, &image("a_b/x:1"))
            .file_name()
            .unwrap()
            .to_str(),
        Some(lone[&image("a_b/x:1")].as_str())
    );
    assert_eq!(
        support::menu_as_read_by_pyxdg(&home),
        format!(
            "[Astro Software]\n\
             \x20 [a.b]\n\
             \x20   x:1\t{}\n\
             \x20 [a_b]\n\
             \x20   x:1\t{}\n\
             \x20 [alpha]\n\
             \x20   terminal:1.0 ({REGISTRY})\t{}\n\
             \x20   terminal:1.0 (other.org)\t{}\n\
             \x20 [beta]\n\
             \x20   terminal:1.0\t{}\n",
            plain_exec(&image("a.b/x:1")),
            plain_exec(&image("a_b/x:1")),
            plain_exec(&image("alpha/terminal:1.0")),
            plain_exec("other.org/alpha/terminal:1.0"),
            plain_exec(&image("beta/terminal:1.0")),
        )
    );
    validate_all(&home, &[]);
}

/// More versions than the threshold (default 5) make a submenu, newest first; at or below it the
/// versions stay inline. `[menu] submenu_threshold` changes the threshold.
#[test]
fn apps_above_the_threshold_get_their_own_submenu() {
    let home = Home::new();
    let mut ids: Vec<String> = ["6.9", "6.10", "6.2", "5.0", "4.7", "6.10.1"]
        .iter()
        .map(|tag| image(&format!("skaha/casa:{tag}")))
        .collect();
    ids.extend(
        ["4.5", "4.6", "4.7", "4.8", "4.9"]
            .iter()
            .map(|tag| image(&format!("skaha/topcat:{tag}"))),
    );
    ids.extend([image("skaha/ds9:8.4"), image("skaha/ds9:8.5")]);
    let catalog = write_catalog(&home, "catalog.json", &ids);
    synced(&home, &catalog);
    assert_eq!(
        pyxdg_names(&home),
        "[Astro Software]\n\
         \x20 [skaha]\n\
         \x20   [casa]\n\
         \x20     casa:6.10.1\n\
         \x20     casa:6.10\n\
         \x20     casa:6.9\n\
         \x20     casa:6.2\n\
         \x20     casa:5.0\n\
         \x20     casa:4.7\n\
         \x20   ds9:8.5\n\
         \x20   ds9:8.4\n\
         \x20   topcat:4.9\n\
         \x20   topcat:4.8\n\
         \x20   topcat:4.7\n\
         \x20   topcat:4.6\n\
         \x20   topcat:4.5\n"
    );
    // The submenu has its own `.directory`, with the app's icon.
    let casa_directory: Vec<GenericEntry> = directories(&home)
        .into_iter()
        .map(|(_, entry)| entry)
        .filter(|entry| directory_key(entry, "Name") == Some("casa"))
        .collect();
    assert_eq!(casa_directory.len(), 1);
    assert_eq!(
        directory_key(&casa_directory[0], "Icon"),
        Some("arcade-casa")
    );

    home.write_config("[menu]\nsubmenu_threshold = 2\n");
    synced(&home, &catalog);
    assert_eq!(
        pyxdg_names(&home),
        "[Astro Software]\n\
         \x20 [skaha]\n\
         \x20   [casa]\n\
         \x20     casa:6.10.1\n\
         \x20     casa:6.10\n\
         \x20     casa:6.9\n\
         \x20     casa:6.2\n\
         \x20     casa:5.0\n\
         \x20     casa:4.7\n\
         \x20   [topcat]\n\
         \x20     topcat:4.9\n\
         \x20     topcat:4.8\n\
         \x20     topcat:4.7\n\
         \x20     topcat:4.6\n\
         \x20     topcat:4.5\n\
         \x20   ds9:8.5\n\
         \x20   ds9:8.4\n"
    );
    validate_all(&home, &[]);
}

/// Shortcuts on the configured desktop folder point at the newest version, follow a newer one,
/// and go when the config stops asking for them; the user's own files there stay untouched.
#[test]
fn desktop_shortcuts_follow_the_newest_version_and_the_config() {
    let home = Home::new();
    let desktop = home.path().join("Schreibtisch");
    let user_file = home.write("Schreibtisch/notes.txt", "my notes\n");
    let config = |shortcuts: &str| {
        home.write_config(&format!(
            "[menu]\nshortcuts = [{shortcuts}]\ndesktop_dir = \"{}\"\n",
            desktop.display()
        ));
    };
    let shortcuts = || -> BTreeMap<String, PathBuf> {
        std::fs::read_dir(&desktop)
            .unwrap()
            .flatten()
            .map(|file| file.path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "desktop"))
            .map(|path| {
                (
                    read_entry(&path)
                        .desktop_entry("X-Arcade-Image")
                        .unwrap()
                        .to_owned(),
                    path,
                )
            })
            .collect()
    };
    config(r#""casa", "alpha/terminal", "nothing-like-this""#);
    let mut ids = vec![
        image("skaha/casa:6.9"),
        image("skaha/casa:6.10"),
        image("alpha/terminal:1.0"),
        image("beta/terminal:2.0"),
    ];
    let catalog = write_catalog(&home, "catalog.json", &ids);
    let summary = synced(&home, &catalog);
    assert_eq!(summary["missing_shortcuts"], json!(["nothing-like-this"]));

    let first = shortcuts();
    assert_eq!(
        first.keys().cloned().collect::<Vec<_>>(),
        [image("alpha/terminal:1.0"), image("skaha/casa:6.10")]
    );
    for (reference, path) in &first {
        let entry = read_entry(path);
        assert_eq!(
            entry.parse_exec().unwrap(),
            [arcade_bin(), "launch", "--from-menu", reference.as_str()]
        );
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with("arcade-"), "{name}");
        // Executable, which file managers take as a trusted launcher.
        let mode = std::fs::metadata(path).unwrap().permissions().mode();
        assert_eq!(mode & 0o111, 0o111, "{name} is not executable");
    }
    assert!(
        !home.desktop().exists(),
        "wrote into ~/Desktop:\n{}",
        home.listing()
    );
    validate_all(&home, &first.values().cloned().collect::<Vec<_>>());

    // A warning names the shortcut that matches nothing.
    let run = sync(&home, &catalog).ok();
    assert!(
        run.stderr
            .contains("arcade: warning: no image for the desktop shortcut \"nothing-like-this\""),
        "{run}"
    );

    // A newer casa: the same shortcut file now launches it.
    ids.push(image("skaha/casa:6.11"));
    write_catalog(&home, "catalog.json", &ids);
    synced(&home, &catalog);
    let second = shortcuts();
    assert_eq!(
        second.keys().cloned().collect::<Vec<_>>(),
        [image("alpha/terminal:1.0"), image("skaha/casa:6.11")]
    );
    assert_eq!(
        second[&image("skaha/casa:6.11")],
        first[&image("skaha/casa:6.10")]
    );
    assert_eq!(
        read_entry(&second[&image("skaha/casa:6.11")])
            .parse_exec()
            .unwrap(),
        [
            arcade_bin(),
            "launch",
            "--from-menu",
            &image("skaha/casa:6.11")
        ]
    );

    // casa no longer asked for: its shortcut goes, the other stays as it was.
    let before = snapshot(&desktop);
    config(r#""alpha/terminal""#);
    synced(&home, &catalog);
    let third = shortcuts();
    assert_eq!(
        third.keys().cloned().collect::<Vec<_>>(),
        [image("alpha/terminal:1.0")]
    );
    let mut expected = before.clone();
    expected.remove(
        second[&image("skaha/casa:6.11")]
            .strip_prefix(&desktop)
            .unwrap(),
    );
    assert_unchanged(&expected, &snapshot(&desktop), &[]);

    // None asked for: no shortcut left, the user's file untouched.
    config("");
    synced(&home, &catalog);
    assert!(shortcuts().is_empty(), "{}", home.listing());
    assert_eq!(std::fs::read_to_string(&user_file).unwrap(), "my notes\n");
}

/// Without `desktop_dir`, shortcuts go to `XDG_DESKTOP_DIR` from `user-dirs.dirs`.
#[test]
fn desktop_shortcuts_use_the_desktop_named_in_user_dirs() {
    let home = Home::new();
    home.write(
        ".config/user-dirs.dirs",
        "# written by xdg-user-dirs-update\nXDG_DOWNLOAD_DIR=\"$HOME/Downloads\"\nXDG_DESKTOP_DIR=\"$HOME/Bureau\"\n",
    );
    home.write_config("[menu]\nshortcuts = [\"terminal\"]\n");
    let catalog = write_catalog(&home, "catalog.json", &[image("skaha/terminal:1.0")]);
    synced(&home, &catalog);
    let bureau: Vec<PathBuf> = std::fs::read_dir(home.path().join("Bureau"))
        .unwrap_or_else(|err| panic!("no Bureau folder ({err}):\n{}", home.listing()))
        .flatten()
        .map(|file| file.path())
        .collect();
    assert_eq!(bureau.len(), 1, "{bureau:?}");
    assert_eq!(
        read_entry(&bureau[0]).parse_exec().unwrap(),
        [
            arcade_bin(),
            "launch",
            "--from-menu",
            &image("skaha/terminal:1.0")
        ]
    );
    assert!(!home.desktop().exists(), "{}", home.listing());
    let config = home.arcade().args(["config", "--json"]).ok().json();
    assert_eq!(
        config["menu_desktop_dir"],
        home.path().join("Bureau").to_str().unwrap()
    );
}

/// Well-known apps get their own icon, others the generic one; every icon is installed in both
/// sizes into the user's hicolor theme and named without an extension.
#[test]
fn well_known_apps_get_their_icons() {
    let home = Home::new();
    let apps = [
        ("terminal", "arcade-terminal"),
        ("casa", "arcade-casa"),
        ("topcat", "arcade-topcat"),
        ("aladin", "arcade-aladin"),
        ("ds9", "arcade-ds9"),
        ("carta", "arcade-carta"),
        ("pybdsf", "arcade-astro"),
    ];
    let ids: Vec<String> = apps
        .iter()
        .map(|(app, _)| image(&format!("skaha/{app}:1.0")))
        .collect();
    let catalog = write_catalog(&home, "catalog.json", &ids);
    synced(&home, &catalog);

    let icons = home.data().join("icons/hicolor");
    let check_icon = |name: &str| {
        assert!(
            !name.contains(['.', '/']),
            "Icon={name} must be a bare name"
        );
        let svg = std::fs::read(icons.join(format!("scalable/apps/{name}.svg")))
            .unwrap_or_else(|err| panic!("no scalable icon {name} ({err}):\n{}", home.listing()));
        let svg = String::from_utf8(svg).unwrap();
        assert!(svg.contains("<svg"), "{name}.svg is not SVG");
        let png = std::fs::read(icons.join(format!("48x48/apps/{name}.png")))
            .unwrap_or_else(|err| panic!("no 48x48 icon {name} ({err}):\n{}", home.listing()));
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{name}.png is not PNG");
        let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
        let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
        assert_eq!((width, height), (48, 48), "{name}.png size");
    };
    for (app, icon) in apps {
        let entry = read_entry(&entry_path(&home, &image(&format!("skaha/{app}:1.0"))));
        assert_eq!(entry.icon(), Some(icon), "icon of {app}");
        check_icon(icon);
    }
    let top = read_directory(
        &home
            .data()
            .join("desktop-directories/arcade-astro-software.directory"),
    );
    assert_eq!(directory_key(&top, "Icon"), Some("arcade-astro"));
}

/// Every generated file passes both validators; each entry runs the absolute arcade binary with
/// `launch <reference>`, and carries its reference, digest, startup notification and WM class.
#[test]
fn entries_are_valid_and_launch_their_image() {
    let home = Home::new();
    home.write_config("[menu]\nwm_class = { ds9 = \"SAOImage\" }\n");
    let catalog = support::sample_catalog();
    synced(&home, &catalog);

    let wanted: BTreeMap<String, String> =
        serde_json::from_str::<Vec<Value>>(&std::fs::read_to_string(&catalog).unwrap())
            .unwrap()
            .into_iter()
            .filter(|entry| {
                entry["types"]
                    .as_array()
                    .unwrap()
                    .contains(&json!("desktop-app"))
            })
            .map(|entry| {
                (
                    entry["id"].as_str().unwrap().to_owned(),
                    entry["digest"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
    let entries = app_entries(&home);
    assert_eq!(
        entries.values().map(x_image).collect::<BTreeSet<_>>(),
        wanted.keys().cloned().collect::<BTreeSet<_>>()
    );
    for (path, entry) in &entries {
        let reference = x_image(entry);
        let raw = std::fs::read_to_string(path).unwrap();
        assert!(
            raw.contains(&format!("\nExec={} launch --from-menu ", arcade_bin())),
            "{raw}"
        );
        assert_eq!(
            entry.parse_exec().unwrap(),
            [arcade_bin(), "launch", "--from-menu", reference.as_str()],
            "{}",
            path.display()
        );
        assert!(Path::new(arcade_bin()).is_absolute());
        assert_eq!(entry.try_exec(), Some(arcade_bin()));
        assert_eq!(entry.type_(), Some("Application"));
        assert!(!entry.terminal());
        assert!(entry.startup_notify(), "{raw}");
        // The configured class for ds9, the measured ones for the apps arcade knows, else
        // xterm's.
        let wm_class = match reference.rsplit('/').next().unwrap().split(':').next() {
            Some("ds9") => "SAOImage",
            Some("topcat") => "uk-ac-starlink-topcat-Driver",
            Some("aladin") => "cds-aladin-Aladin",
            _ => "XTerm",
        };
        assert_eq!(entry.startup_wm_class(), Some(wm_class), "{raw}");
        assert_eq!(
            entry.desktop_entry("X-Arcade-Digest"),
            Some(wanted[&reference].as_str())
        );
        assert_eq!(
            entry.desktop_entry("X-Arcade-Project"),
            Some(reference.split('/').nth(1).unwrap())
        );
        let label = reference.rsplit('/').next().unwrap();
        assert_eq!(entry.desktop_entry("Name"), Some(label));
    }
    validate_all(&home, &[]);
}

/// Names from the catalog that try to break out: what is not an image name by the OCI grammar
/// (shell syntax, `..`, spaces, newline, `%`, non-ASCII, over-long tags) is left out and
/// reported with why; what is kept gets one valid entry whose `Exec` reads back exactly, and no
/// file outside the expected folders.
#[test]
fn hostile_names_cannot_inject_or_escape() {
    let home = Home::new();
    let marker = home.path().join("pwned");
    let kept = vec![
        image(&format!("proj/{}:{}", "a".repeat(300), "9".repeat(128))),
        format!("{}/x/y:1", "p".repeat(250)),
        image("proj/nested/deep/app:1.0_rc-2"),
        "host.example:5000/proj/app:v1".to_owned(),
    ];
    let not_a_name = "is not an image name";
    let not_a_tag = "is not a valid OCI tag";
    let refused = vec![
        (
            image(&format!(
                "p q/it's \"$(touch {m})\";`touch {m}`:1",
                m = marker.display()
            )),
            not_a_name,
        ),
        (image("proj/back\\slash:1"), not_a_name),
        (image("proj/dollar:${IFS}"), not_a_tag),
        ("../../../../tmp/escape:1".to_owned(), not_a_name),
        (image("proj/../../../escape:2"), not_a_name),
        (image("proj/ leading and trailing :1"), not_a_name),
        (image("proj/semi:1;2"), not_a_tag),
        (image("proj/[Desktop Action evil]=x:1"), not_a_name),
        (image("proj/app:>|&<~*?#()"), not_a_tag),
        (image(&format!("proj/app:{}", "9".repeat(129))), not_a_tag),
        (image("proj/new\nline:1"), "control character"),
        (image("proj/tab\there:1"), "control character"),
        (image("proj/perc%ent:100%"), "'%'"),
        (image("ünïcødé/☃:1"), "'ü'"),
        (
            image(&format!("proj/{}:1", "b".repeat(2000))),
            "longer than",
        ),
    ];
    let mut ids = kept.clone();
    ids.extend(refused.iter().map(|(id, _)| id.clone()));
    let catalog = write_catalog(&home, "catalog.json", &ids);

    let summary = synced(&home, &catalog);
    let skipped: Vec<&str> = summary["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| line.as_str().unwrap())
        .collect();
    assert_eq!(skipped.len(), refused.len(), "{skipped:#?}");
    for (id, reason) in &refused {
        let quoted = format!("{id:?}");
        assert!(
            skipped
                .iter()
                .any(|line| line.starts_with(&quoted) && line.contains(reason)),
            "{id:?} not reported with {reason:?}: {skipped:#?}"
        );
    }
    // Without --json the same is a warning on stderr.
    let run = sync(&home, &catalog).ok();
    assert!(
        run.stderr.contains(&format!(
            "arcade: warning: left out {} images",
            refused.len()
        )),
        "{run}"
    );

    // Each kept name: one entry, whose Exec reads back as exactly [arcade, launch, reference],
    // and whose shown name is capped.
    let entries = app_entries(&home);
    assert_eq!(entries.len(), kept.len(), "{}", home.listing());
    for reference in &kept {
        let path = entry_path(&home, reference);
        let entry = read_entry(&path);
        assert_eq!(
            entry.parse_exec().unwrap(),
            [arcade_bin(), "launch", "--from-menu", reference.as_str()],
            "{}:\n{}",
            path.display(),
            std::fs::read_to_string(&path).unwrap()
        );
        let label = reference.splitn(3, '/').nth(2).unwrap();
        let name = entry.desktop_entry("Name").unwrap();
        if label.chars().count() <= 64 {
            assert_eq!(name, label);
        } else {
            assert_eq!(name.chars().count(), 64, "{name}");
            assert!(name.ends_with('…') && label.starts_with(name.trim_end_matches('…')));
        }
        assert!(
            entry
                .desktop_entry("Comment")
                .unwrap()
                .contains(reference.as_str())
        );
    }

    assert!(!marker.exists(), "a name ran a command");
    assert_only_expected_files(&home, std::slice::from_ref(&catalog));
    validate_all(&home, &[]);

    // python-xdg reads the whole menu: every kept entry, under its project.
    let menu = support::menu_as_read_by_pyxdg(&home);
    let items = menu.lines().filter(|line| line.contains('\t')).count();
    assert_eq!(items, kept.len(), "{menu}");
    assert!(menu.starts_with("[Astro Software]\n"), "{menu}");
    for project in ["[x]", "[proj]"] {
        assert!(
            menu.contains(&format!("\n  {project}\n")),
            "{project} missing:\n{menu}"
        );
    }
    assert_eq!(menu_images(&home), kept.iter().cloned().collect());
    home.arcade().args(["menu", "list"]).ok();
}

/// Files arcade did not write stay byte for byte as they were, through syncs and a clean: the
/// user's entries (beside ours and in our subfolder, even at a path arcade wants), another
/// vendor's merged menu, the user's desktop files and icons.
#[test]
fn never_touches_files_it_did_not_write() {
    let home = Home::new();
    let ids = vec![
        image("skaha/casa:6.9"),
        image("skaha/casa:6.10"),
        image("skaha/terminal:1.0"),
    ];
    let names = entry_names(&ids);
    let taken = &names[&image("skaha/casa:6.10")];
    let user_entry = "[Desktop Entry]\nType=Application\nName=Mine\nExec=/usr/bin/true\n";
    let foreign = [
        home.write(".local/share/applications/userapp.desktop", user_entry),
        home.write(
            ".local/share/applications/arcade/users-own.desktop",
            user_entry,
        ),
        home.write(
            &format!(".local/share/applications/arcade/{taken}"),
            user_entry,
        ),
        home.write(
            ".config/menus/applications-merged/othervendor-tools.menu",
            "<Menu><Name>Applications</Name></Menu>\n",
        ),
        home.write(
            ".local/share/desktop-directories/othervendor.directory",
            "[Desktop Entry]\nType=Directory\nName=Other\n",
        ),
        home.write(
            ".local/share/icons/hicolor/48x48/apps/arcade-casa.png",
            "not ours",
        ),
        home.write("Desktop/notes.txt", "my notes\n"),
        home.write("Desktop/userapp.desktop", user_entry),
    ];
    home.write_config("[menu]\nshortcuts = [\"casa\"]\n");
    let catalog = write_catalog(&home, "catalog.json", &ids);
    let before_sync = snapshot(home.path());
    let user_files: Vec<PathBuf> = foreign
        .iter()
        .map(|path| path.strip_prefix(home.path()).unwrap().to_owned())
        .collect();
    let only_user_files = |all: &BTreeMap<PathBuf, Node>| -> BTreeMap<PathBuf, Node> {
        all.iter()
            .filter(|(path, _)| user_files.contains(path))
            .map(|(path, node)| (path.clone(), node.clone()))
            .collect()
    };

    let summary = synced(&home, &catalog);
    let skipped = json_paths(&summary["skipped_foreign"]);
    assert!(
        skipped.contains(&home.applications().join(taken)),
        "{summary}"
    );
    assert!(
        skipped.contains(&home.data().join("icons/hicolor/48x48/apps/arcade-casa.png")),
        "{summary}"
    );
    assert_unchanged(
        &only_user_files(&before_sync),
        &only_user_files(&snapshot(home.path())),
        &[],
    );
    let run = sync(&home, &catalog).ok();
    assert!(
        run.stderr.contains(&format!(
            "arcade: warning: did not overwrite {}: arcade did not write it",
            home.applications().join(taken).display()
        )),
        "{run}"
    );
    assert_unchanged(
        &only_user_files(&before_sync),
        &only_user_files(&snapshot(home.path())),
        &[],
    );

    // Clean takes away what arcade wrote, and only that: the home is file for file as before.
    home.arcade().args(["menu", "clean"]).ok();
    let files = |all: BTreeMap<PathBuf, Node>| -> BTreeMap<PathBuf, Node> {
        all.into_iter()
            .filter(|(_, node)| node.content.is_some())
            .collect()
    };
    assert_unchanged(&files(before_sync), &files(snapshot(home.path())), &[]);
}

/// Entries the catalog drops are removed; an entry the user edited is kept, reported, and not
/// removed by `clean` either.
#[test]
fn stale_entries_go_and_edited_entries_stay() {
    let home = Home::new();
    let all = vec![
        image("skaha/x:1"),
        image("skaha/x:2"),
        image("skaha/y:1"),
        image("skaha/z:1"),
    ];
    let catalog = write_catalog(&home, "catalog.json", &all);
    synced(&home, &catalog);
    let stale = entry_path(&home, &image("skaha/x:1"));
    let edited_dropped = entry_path(&home, &image("skaha/y:1"));
    let edited_kept = entry_path(&home, &image("skaha/z:1"));
    for path in [&edited_dropped, &edited_kept] {
        let mut text = std::fs::read_to_string(path).unwrap();
        text.push_str("Name[fr]=Mon entrée\n");
        std::fs::write(path, text).unwrap();
    }
    let edits = [
        (
            edited_dropped.clone(),
            std::fs::read(&edited_dropped).unwrap(),
        ),
        (edited_kept.clone(), std::fs::read(&edited_kept).unwrap()),
    ];
    let assert_edits_kept = || {
        for (path, content) in &edits {
            assert_eq!(
                &std::fs::read(path).unwrap_or_default(),
                content,
                "{} changed",
                path.display()
            );
        }
    };

    write_catalog(
        &home,
        "catalog.json",
        &[image("skaha/x:2"), image("skaha/z:1")],
    );
    let summary = synced(&home, &catalog);
    assert!(!stale.exists(), "stale entry left:\n{}", home.listing());
    assert_eq!(summary["removed"], 1, "{summary}");
    let kept: BTreeSet<PathBuf> = json_paths(&summary["kept_modified"]).into_iter().collect();
    assert_eq!(
        kept,
        [edited_dropped.clone(), edited_kept.clone()].into(),
        "{summary}"
    );
    assert_edits_kept();

    // Later syncs still call them the user's edits, in a warning.
    let run = sync(&home, &catalog).ok();
    for path in [&edited_dropped, &edited_kept] {
        assert!(
            run.stderr.contains(&format!(
                "arcade: warning: kept {} as it is: it changed since arcade wrote it",
                path.display()
            )),
            "{run}"
        );
    }
    assert_edits_kept();
    validate_all(&home, &[]);

    let cleaned = home.arcade().args(["menu", "clean", "--json"]).ok().json();
    let kept: BTreeSet<PathBuf> = json_paths(&cleaned["kept_modified"]).into_iter().collect();
    assert_eq!(
        kept,
        [edited_dropped.clone(), edited_kept.clone()].into(),
        "{cleaned}"
    );
    assert_edits_kept();
    assert_eq!(
        app_entries(&home).keys().cloned().collect::<BTreeSet<_>>(),
        [edited_dropped, edited_kept].into()
    );
}

/// With the manifest corrupt or gone, arcade cannot tell its files from the user's by the
/// manifest, so it overwrites nothing that differs from what it would write unless the file
/// carries the mark of arcade's own output (the merged menu's header), and says why.
#[test]
fn a_lost_or_corrupt_manifest_overwrites_nothing() {
    let home = Home::new();
    let first = vec![image("skaha/x:1"), image("skaha/y:1")];
    let newcomer = image("skaha/new:1");
    let names = entry_names(std::slice::from_ref(&newcomer));
    let catalog = write_catalog(&home, "catalog.json", &first);
    synced(&home, &catalog);
    let manifest = home.data().join("arcade/manifest.json");

    let edited = entry_path(&home, &image("skaha/x:1"));
    std::fs::write(
        &edited,
        "[Desktop Entry]\nType=Application\nName=Mine\nExec=/usr/bin/true\n",
    )
    .unwrap();
    let planted = home.write(
        &format!(".local/share/applications/arcade/{}", names[&newcomer]),
        "[Desktop Entry]\nType=Application\nName=Planted\nExec=/usr/bin/true\n",
    );
    let mut all = first.clone();
    all.push(newcomer);
    write_catalog(&home, "catalog.json", &all);

    for damage in ["corrupt", "lost"] {
        if damage == "corrupt" {
            std::fs::write(&manifest, "{not json").unwrap();
        } else {
            std::fs::remove_file(&manifest).unwrap();
        }
        let before = snapshot(home.path());
        let summary = synced(&home, &catalog);
        let skipped = json_paths(&summary["skipped_foreign"]);
        assert!(skipped.contains(&edited), "{damage}: {summary}");
        assert!(skipped.contains(&planted), "{damage}: {summary}");
        if damage == "corrupt" {
            let warnings = summary["warnings"].to_string();
            assert!(
                warnings.contains("unreadable") && warnings.contains(manifest.to_str().unwrap()),
                "{summary}"
            );
        }
        assert_unchanged(
            &before,
            &snapshot(home.path()),
            &[
                ".local/share/arcade",
                ".cache/arcade",
                // The folder's time moves when the merged menu is replaced in it.
                ".config/menus/applications-merged",
            ],
        );
        assert!(
            !skipped.contains(&home.merged_menu()),
            "{damage}: the merged menu carries arcade's mark and is arcade's: {summary}"
        );
    }
    // The files still exactly as arcade writes them were adopted: clean removes those only.
    let y = entry_path(&home, &image("skaha/y:1"));
    home.arcade().args(["menu", "clean"]).ok();
    assert!(!y.exists());
    assert!(edited.exists() && planted.exists());
}

/// A second identical sync writes nothing: 0 files written, every menu file keeps its inode and
/// mtime (only the saved catalog and the manifest are renewed), and no temporary file is left.
#[test]
fn an_identical_sync_rewrites_nothing() {
    let home = Home::new();
    home.write_config("[menu]\nshortcuts = [\"casa\"]\n");
    let catalog = support::sample_catalog();
    let first = synced(&home, &catalog);
    assert!(first["written"].as_u64().unwrap() > 20, "{first}");
    let before = snapshot(home.path());

    let second = synced(&home, &catalog);
    assert_eq!(second["written"], 0, "{second}");
    assert_eq!(second["removed"], 0, "{second}");
    assert_eq!(second["unchanged"], first["written"], "{second}");
    assert_unchanged(
        &before,
        &snapshot(home.path()),
        &[".local/share/arcade", ".cache/arcade"],
    );
    assert_no_temp_files(&home);
}

/// Several syncs at once, of two catalogs with nothing in common: all succeed, and the result is
/// exactly one of the two menus (never a mix, never a file the manifest forgot), valid, with no
/// temporary file left.
#[test]
fn concurrent_syncs_are_serialised() {
    let home = Home::new();
    // Big enough that the syncs overlap in time: each takes a good part of a second.
    let catalog_of = |project: &str| -> Vec<String> {
        (0..300)
            .map(|i| image(&format!("{project}/app{}:{}.{}", i % 30, i / 30, i % 7)))
            .collect()
    };
    let catalogs = [
        (
            write_catalog(&home, "alpha.json", &catalog_of("alpha")),
            catalog_of("alpha"),
        ),
        (
            write_catalog(&home, "beta.json", &catalog_of("beta")),
            catalog_of("beta"),
        ),
    ];

    let children: Vec<_> = (0..6)
        .map(|i| {
            let mut arcade = sync(&home, &catalogs[i % 2].0).args(["--json"]);
            arcade
                .command
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start arcade")
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "a concurrent sync failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    assert_no_temp_files(&home);
    let on_disk = images_on_disk(&home);
    assert!(
        catalogs
            .iter()
            .any(|(_, ids)| on_disk == ids.iter().cloned().collect::<BTreeSet<_>>()),
        "the menu is a mix of two syncs:\n{}",
        home.listing()
    );
    assert_eq!(menu_images(&home), on_disk);
    let ids_on_disk: BTreeSet<String> = app_entries(&home)
        .values()
        .map(|entry| format!("{}.desktop", entry.id()))
        .collect();
    assert_eq!(merged_menu_ids(&home), ids_on_disk);
    desktop_files::validate_home(&home);
    // Every file is in the manifest: clean leaves no entry behind.
    home.arcade().args(["menu", "clean"]).ok();
    assert!(!home.applications().exists(), "{}", home.listing());
}

/// A failing sync leaves every file exactly as it was, prints one `arcade: error:` line and exits
/// non-zero: missing catalog, invalid JSON, and an empty catalog (unless `--allow-empty`).
#[test]
fn a_failed_sync_keeps_the_last_good_menu() {
    let home = Home::new();
    let catalog = write_catalog(
        &home,
        "catalog.json",
        &[image("skaha/terminal:1.0"), image("skaha/casa:6.10")],
    );
    synced(&home, &catalog);
    let before = snapshot(home.path());
    let other_label = serde_json::to_string(&json!([
        {"id": image("skaha/notebook:1"), "types": ["notebook"]},
        {"id": image("skaha/bad\nname:1"), "types": ["desktop-app"]},
    ]))
    .unwrap();
    let cases: [(&str, Option<&str>, &[&str]); 5] = [
        (
            "missing.json",
            None,
            &["failed to read catalog", "missing.json"],
        ),
        (
            "broken.json",
            Some("[{\"id\": "),
            &["broken.json", "is not valid JSON"],
        ),
        (
            "object.json",
            Some("{\"foo\": 1}"),
            &["object.json", "is not valid JSON"],
        ),
        ("empty.json", Some("[]"), &["empty.json", "--allow-empty"]),
        (
            "unusable.json",
            Some(&other_label),
            &["unusable.json", "--allow-empty"],
        ),
    ];
    let catalogs: Vec<&str> = cases.iter().map(|(name, _, _)| *name).collect();
    for (name, text, needles) in cases {
        let path = home.path().join(name);
        if let Some(text) = text {
            std::fs::write(&path, text).unwrap();
        }
        let during = snapshot(home.path());
        let run = sync(&home, &path).fails();
        let line = run.error_line();
        for needle in needles {
            assert!(line.contains(needle), "{name}: {needle:?} not in {line:?}");
        }
        assert_eq!(run.stderr.lines().count(), 1, "{name}:\n{run}");
        assert!(run.stdout.is_empty(), "{name}:\n{run}");
        assert_unchanged(&during, &snapshot(home.path()), &[]);
        assert_unchanged(&before, &snapshot(home.path()), &catalogs);
    }

    // --allow-empty takes an empty catalog and empties the menu.
    let empty = home.path().join("empty.json");
    let summary = sync(&home, &empty)
        .args(["--allow-empty", "--json"])
        .ok()
        .json();
    assert_eq!(summary["entries"], 0, "{summary}");
    assert!(app_entries(&home).is_empty(), "{}", home.listing());
    assert_eq!(support::menu_as_read_by_pyxdg(&home), "");
    let list = home.arcade().args(["menu", "list"]).ok();
    assert_eq!(list.stdout, "Astro Software\n");
}

/// `--offline` rebuilds from the saved catalog, without the catalog file; with no saved catalog it
/// fails clearly and writes nothing.
#[test]
fn offline_rebuilds_from_the_saved_catalog() {
    let home = Home::new();
    let catalog = home.write(
        "catalog.json",
        &std::fs::read_to_string(support::sample_catalog()).unwrap(),
    );
    synced(&home, &catalog);
    assert!(home.cache().join("arcade/catalog.json").is_file());
    let good = snapshot(&home.data().join("applications"));
    let good_menu = std::fs::read(home.merged_menu()).unwrap();
    let n_entries = app_entries(&home).len();

    // The menu files are gone: offline puts them back, identical.
    std::fs::remove_dir_all(home.applications()).unwrap();
    std::fs::remove_file(home.merged_menu()).unwrap();
    let summary = sync(&home, &catalog)
        .args(["--offline", "--json"])
        .ok()
        .json();
    assert_eq!(summary["offline"], true, "{summary}");
    assert_eq!(summary["written"], n_entries + 1, "{summary}");
    let rebuilt = snapshot(&home.data().join("applications"));
    assert_eq!(
        rebuilt
            .iter()
            .map(|(path, node)| (path, &node.content))
            .collect::<Vec<_>>(),
        good.iter()
            .map(|(path, node)| (path, &node.content))
            .collect::<Vec<_>>()
    );
    assert_eq!(std::fs::read(home.merged_menu()).unwrap(), good_menu);

    // The catalog file is gone too: offline does not need it, nor any source setting.
    std::fs::remove_file(&catalog).unwrap();
    let summary = sync(&home, &catalog)
        .args(["--offline", "--json"])
        .ok()
        .json();
    assert_eq!(summary["written"], 0, "{summary}");
    let summary = home
        .arcade()
        .args(["menu", "sync", "--offline", "--json"])
        .ok()
        .json();
    assert_eq!(summary["written"], 0, "{summary}");
    assert_eq!(summary["entries"], n_entries, "{summary}");

    // No saved catalog: a clear error, nothing written.
    let fresh = Home::new();
    let catalog = write_catalog(&fresh, "catalog.json", &[image("skaha/terminal:1.0")]);
    let before = snapshot(fresh.path());
    let run = sync(&fresh, &catalog).args(["--offline"]).fails();
    let line = run.error_line();
    assert!(line.contains("no saved catalog"), "{line}");
    assert!(
        line.contains(fresh.cache().join("arcade/catalog.json").to_str().unwrap()),
        "{line}"
    );
    assert_unchanged(&before, &snapshot(fresh.path()), &[]);
}

/// `--dry-run` decides like a real sync and reports it, but writes nothing at all.
#[test]
fn dry_run_reports_and_writes_nothing() {
    let home = Home::new();
    let ids = vec![
        image("skaha/terminal:1.0"),
        image("skaha/casa:6.9"),
        image("skaha/casa:6.10"),
    ];
    let catalog = write_catalog(&home, "catalog.json", &ids);
    let before = snapshot(home.path());
    let dry = sync(&home, &catalog)
        .args(["--dry-run", "--json"])
        .ok()
        .json();
    assert_eq!(dry["dry_run"], true);
    assert_unchanged(&before, &snapshot(home.path()), &[]);
    let real = synced(&home, &catalog);
    assert_eq!(dry["written"], real["written"], "{dry}\n{real}");
    assert_eq!(dry["entries"], real["entries"], "{dry}\n{real}");

    // A changed catalog: the dry run predicts what the real sync then does.
    write_catalog(
        &home,
        "catalog.json",
        &[image("skaha/terminal:1.0"), image("skaha/casa:6.11")],
    );
    let before = snapshot(home.path());
    let dry = sync(&home, &catalog)
        .args(["--dry-run", "--json"])
        .ok()
        .json();
    assert_unchanged(&before, &snapshot(home.path()), &[]);
    let text = sync(&home, &catalog).args(["--dry-run"]).ok();
    assert!(text.stdout.contains("would write"), "{text}");
    assert_unchanged(&before, &snapshot(home.path()), &[]);
    let real = synced(&home, &catalog);
    for key in [
        "written",
        "unchanged",
        "removed",
        "added_entries",
        "removed_entries",
    ] {
        assert_eq!(dry[key], real[key], "{key}: {dry}\n{real}");
    }
    assert_eq!(real["removed"], 2, "{real}");
}

/// `arcade menu list` prints the installed tree as text and JSON, or a clear error when there is
/// none.
#[test]
fn menu_list_prints_the_installed_tree() {
    let home = Home::new();
    let run = home.arcade().args(["menu", "list"]).fails();
    let line = run.error_line();
    assert!(
        line.contains("no menu installed") && line.contains("arcade menu sync"),
        "{line}"
    );

    home.write_config("[menu]\nsubmenu_threshold = 2\nshortcuts = [\"casa\"]\n");
    let ids = vec![
        image("skaha/casa:6.9"),
        image("skaha/casa:6.10"),
        image("skaha/casa:5.0"),
        image("skaha/ds9:8.5"),
        image("alpha/terminal:1.0"),
    ];
    let catalog = write_catalog(&home, "catalog.json", &ids);
    synced(&home, &catalog);

    let text = home.arcade().args(["menu", "list"]).ok().stdout;
    assert_eq!(
        text,
        format!(
            "Astro Software\n\
             ├── alpha\n\
             │   └── terminal:1.0\n\
             └── skaha\n\
             \x20   ├── casa\n\
             \x20   │   ├── casa:6.10\n\
             \x20   │   ├── casa:6.9\n\
             \x20   │   └── casa:5.0\n\
             \x20   └── ds9:8.5\n\
             desktop shortcut: casa → {}\n",
            image("skaha/casa:6.10")
        )
    );

    let tree = home.arcade().args(["menu", "list", "--json"]).ok().json();
    assert_eq!(tree["name"], "Astro Software");
    let projects: Vec<&str> = tree["menus"]
        .as_array()
        .unwrap()
        .iter()
        .map(|menu| menu["name"].as_str().unwrap())
        .collect();
    assert_eq!(projects, ["alpha", "skaha"]);
    let casa = &tree["menus"][1]["menus"][0];
    assert_eq!(casa["name"], "casa");
    let first = &casa["entries"][0];
    assert_eq!(first["name"], "casa:6.10");
    assert_eq!(first["image"], image("skaha/casa:6.10"));
    assert_eq!(first["digest"], digest_of(&image("skaha/casa:6.10")));
    // The desktop ID names the file that is there.
    let id = first["desktop_id"].as_str().unwrap();
    let file = home
        .applications()
        .join(id.strip_prefix("arcade-").unwrap());
    assert_eq!(x_image(&read_entry(&file)), image("skaha/casa:6.10"));
    assert_eq!(menu_images(&home), ids.iter().cloned().collect());
}

/// `arcade menu clean` removes every file arcade wrote (entries, directories, merged menu, icons,
/// shortcuts, manifest, lock, saved catalog) and nothing else; `--dry-run` only counts them.
#[test]
fn clean_removes_everything_arcade_wrote_and_nothing_else() {
    let home = Home::new();
    home.write(
        ".local/share/applications/userapp.desktop",
        "[Desktop Entry]\nType=Application\nName=Mine\nExec=true\n",
    );
    home.write(".local/share/applications/arcade/keep.txt", "mine\n");
    home.write("Desktop/notes.txt", "my notes\n");
    home.write_config("[menu]\nshortcuts = [\"casa\", \"terminal\"]\n");
    let catalog = home.write(
        "catalog.json",
        &std::fs::read_to_string(support::sample_catalog()).unwrap(),
    );
    let files = |home: &Home| -> BTreeMap<PathBuf, Node> {
        snapshot(home.path())
            .into_iter()
            .filter(|(_, node)| node.content.is_some())
            .collect()
    };
    let before = files(&home);
    let summary = synced(&home, &catalog);
    let written = summary["written"].as_u64().unwrap();

    let synced_state = snapshot(home.path());
    let dry = home
        .arcade()
        .args(["menu", "clean", "--dry-run", "--json"])
        .ok()
        .json();
    assert_eq!(dry["removed"], written, "{dry}");
    assert_unchanged(&synced_state, &snapshot(home.path()), &[]);

    let run = home.arcade().args(["menu", "clean"]).ok();
    assert_eq!(run.stdout, format!("menu: removed {written} files\n"));
    assert_unchanged(&before, &files(&home), &[]);

    let run = home.arcade().args(["menu", "list"]).fails();
    assert!(run.error_line().contains("no menu installed"), "{run}");
    // A second clean has nothing to do.
    let again = home.arcade().args(["menu", "clean", "--json"]).ok().json();
    assert_eq!(again["removed"], 0);
    // And a sync after a clean works as the first one did.
    let summary = synced(&home, &catalog);
    assert_eq!(summary["written"], written, "{summary}");
}

/// A catalog whose images each carry one label, so the menu shows which label and which catalog
/// file a sync used.
fn write_labelled_catalog(home: &Home, name: &str) -> PathBuf {
    let entries: Vec<Value> = ["sys", "user", "env", "flag"]
        .iter()
        .map(|label| json!({"id": image(&format!("{name}/{label}:1")), "types": [label]}))
        .collect();
    home.write(
        &format!("{name}.json"),
        &serde_json::to_string(&entries).unwrap(),
    )
}

/// Flags beat `ARCADE_*` variables, which beat the user's config file, which beats the system's.
#[test]
fn flags_beat_environment_beat_user_file_beat_system_file() {
    let home = Home::new();
    let catalogs: Vec<PathBuf> = ["c-sys", "c-user", "c-env", "c-flag"]
        .iter()
        .map(|name| write_labelled_catalog(&home, name))
        .collect();
    let shown = |arcade: Arcade| -> Vec<String> {
        arcade.args(["menu", "sync", "--json"]).ok();
        menu_images(&home).into_iter().collect()
    };

    home.write(
        "sysconf/arcade/config.toml",
        &format!(
            "source = \"file\"\ncatalog = \"{}\"\nlabel = \"sys\"\n",
            catalogs[0].display()
        ),
    );
    assert_eq!(shown(home.arcade()), [image("c-sys/sys:1")]);

    // The user's file says harbor at a dead address: the file source must come from above it.
    home.write_config(&format!(
        "source = \"harbor\"\nurl = \"http://127.0.0.1:9\"\ncatalog = \"{}\"\nlabel = \"user\"\n",
        catalogs[1].display()
    ));
    let run = home.arcade().args(["menu", "sync"]).fails();
    assert!(run.error_line().contains("127.0.0.1:9"), "{run}");
    assert_eq!(
        shown(home.arcade().env("ARCADE_SOURCE", "file")),
        [image("c-user/user:1")]
    );

    let env = || {
        home.arcade()
            .env("ARCADE_SOURCE", "file")
            .env("ARCADE_CATALOG", &catalogs[2])
            .env("ARCADE_LABEL", "env")
    };
    assert_eq!(shown(env()), [image("c-env/env:1")]);

    let flags = env()
        .env("ARCADE_SOURCE", "harbor")
        .args([
            "menu",
            "sync",
            "--source",
            "file",
            "--label",
            "flag",
            "--catalog",
        ])
        .args([&catalogs[3]]);
    flags.ok();
    assert_eq!(
        menu_images(&home).into_iter().collect::<Vec<_>>(),
        [image("c-flag/flag:1")]
    );
}

/// README's first command: `arcade demo` builds the bundled sample's menu into a throwaway home,
/// with no network and nothing written to the user's own folders, and prints the tree.
#[test]
fn the_demo_builds_the_sample_menu_in_a_throwaway_home() {
    let home = Home::new();
    let scratch = home.path().join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    let before = snapshot(home.path());
    let run = home.arcade().env("TMPDIR", &scratch).args(["demo"]).ok();
    for part in [
        "Astro Software",
        "── skaha",
        "── terminal:1.0",
        "── casa:6.6.5",
        "── cirada",
    ] {
        assert!(run.stdout.contains(part), "no {part:?} in:\n{run}");
    }
    let demo_home = std::fs::read_dir(&scratch)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| {
            path.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("arcade-demo-")
        })
        .unwrap_or_else(|| panic!("no demo home under {}", scratch.display()));
    assert!(
        run.stdout.contains(&demo_home.display().to_string()),
        "{run}"
    );
    let entries: Vec<PathBuf> =
        std::fs::read_dir(demo_home.join(".local/share/applications/arcade"))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
    assert_eq!(entries.len(), 24, "{entries:#?}");
    desktop_files::validate_generated(&entries);
    assert_unchanged(&before, &snapshot(home.path()), &["scratch"]);
}

/// `arcade config --json` shows the files layered key by key: the user's file over the system's.
#[test]
fn config_shows_the_user_file_over_the_system_file() {
    let home = Home::new();
    let system = home.write(
        "sysconf/arcade/config.toml",
        "source = \"file\"\ncatalog = \"/srv/catalog.json\"\nlabel = \"sys\"\n\n[menu]\nsubmenu_threshold = 2\nshortcuts = [\"casa\"]\n",
    );
    home.write_config("label = \"user\"\n[menu]\nshortcuts = [\"ds9\"]\n");
    let config = home.arcade().args(["config", "--json"]).ok().json();
    assert_eq!(
        json_paths(&config["config_files"]),
        [system, home.config().join("arcade/config.toml")]
    );
    assert_eq!(config["source"], "file");
    assert_eq!(config["catalog"], "/srv/catalog.json");
    assert_eq!(config["label"], "user");
    assert_eq!(config["menu_submenu_threshold"], 2);
    assert_eq!(config["menu_shortcuts"], json!(["ds9"]));
}

/// `arcade config` prints the settings a sync would use, so `ARCADE_*` variables show in it.
#[test]
fn config_shows_the_environment_over_the_files() {
    let home = Home::new();
    home.write_config("source = \"harbor\"\nlabel = \"user\"\n");
    let config = home
        .arcade()
        .env("ARCADE_SOURCE", "file")
        .env("ARCADE_CATALOG", "/srv/env.json")
        .env("ARCADE_LABEL", "env")
        .args(["config", "--json"])
        .ok()
        .json();
    assert_eq!(config["source"], "file", "{config}");
    assert_eq!(config["catalog"], "/srv/env.json", "{config}");
    assert_eq!(config["label"], "env", "{config}");
}

/// Where apps are launched: inside a platform desktop (`$skaha_hostname`) skaha is the source and
/// the backend; elsewhere `skaha.url` names the service, under `ARCADE_SKAHA_URL`; with docker
/// but no podman on the `PATH`, docker is the local engine. Values of `launch.env` never print.
#[test]
fn config_chooses_the_skaha_service_and_the_engine_as_documented() {
    let home = Home::new();
    let config = |arcade: Arcade| arcade.args(["config", "--json"]).ok().json();

    let platform = config(home.arcade().env("skaha_hostname", "ws-uv.example.org"));
    assert_eq!(platform["source"], "skaha", "{platform:#}");
    assert_eq!(platform["url"], "https://ws-uv.example.org/skaha");
    assert_eq!(platform["skaha_url"], "https://ws-uv.example.org/skaha");
    assert_eq!(platform["launch_backend"], "skaha");

    home.write_config(
        "url = \"https://harbor.example.org\"\n[skaha]\nurl = \"https://ws.example.org\"\n\
         [launch]\nenv = { APP_TOKEN = \"s3cret-value\" }\n",
    );
    let file = home.arcade().args(["config", "--json"]).ok();
    let view = file.json();
    assert_eq!(view["source"], "harbor", "{view:#}");
    assert_eq!(view["url"], "https://harbor.example.org");
    assert_eq!(view["skaha_url"], "https://ws.example.org/skaha");
    assert_eq!(view["launch_env"], json!(["APP_TOKEN"]));
    assert!(!file.stdout.contains("s3cret-value"), "{file}");
    let env = config(
        home.arcade()
            .env("ARCADE_SKAHA_URL", "http://127.0.0.1:9/skaha"),
    );
    assert_eq!(env["skaha_url"], "http://127.0.0.1:9/skaha", "{env:#}");

    // Only docker on the PATH (the real one, linked): docker is the default engine.
    let docker = support::require_tool("docker", "docker.io");
    let bin = home.path().join("only-docker");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(&docker, bin.join("docker")).unwrap();
    let docker_only = config(home.arcade().env("PATH", &bin));
    assert_eq!(docker_only["launch_backend"], "docker", "{docker_only:#}");
    let with_podman = config(home.arcade());
    assert_eq!(with_podman["launch_backend"], "podman", "{with_podman:#}");
}

/// An unknown key in a config file is one error line naming the file, the line and the key; the
/// menu is not touched.
#[test]
fn an_unknown_config_key_is_one_clear_error() {
    let home = Home::new();
    let catalog = write_catalog(&home, "catalog.json", &[image("skaha/terminal:1.0")]);
    synced(&home, &catalog);
    std::fs::create_dir_all(home.config().join("arcade")).unwrap();
    std::fs::create_dir_all(home.sysconf().join("arcade")).unwrap();
    let before = snapshot(home.path());
    for (file, text, line) in [
        (
            ".config/arcade/config.toml",
            "label = \"desktop-app\"\n\n[menu]\nsubmenu_treshold = 3\n",
            4,
        ),
        ("sysconf/arcade/config.toml", "labl = \"x\"\n", 1),
    ] {
        let path = home.write(file, text);
        for args in [
            &["config"][..],
            &[
                "menu",
                "sync",
                "--source",
                "file",
                "--catalog",
                catalog.to_str().unwrap(),
            ][..],
        ] {
            let run = home.arcade().args(args).fails();
            let error = run.error_line();
            let key = text
                .lines()
                .nth(line - 1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap();
            assert!(error.contains(path.to_str().unwrap()), "{error}");
            assert!(error.contains(&format!("line {line}")), "{error}");
            assert!(error.contains(key), "{error}");
            assert_eq!(run.stderr.lines().count(), 1, "{run}");
        }
        std::fs::remove_file(&path).unwrap();
    }
    assert_unchanged(
        &before,
        &snapshot(home.path()),
        &[".config/arcade", "sysconf/arcade"],
    );
}
