//! What a sync leaves behind, as the source tests compare it: every file of a home with its
//! bytes, and the installed menu as `arcade menu list --json` shows it; and the one-line failure
//! a sync must end with.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::{Home, Run};

/// Every file under the home with its bytes, by path relative to the home.
pub fn snapshot(home: &Home) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() && !path.is_symlink() {
                walk(base, &path, out);
            } else {
                let bytes = std::fs::read(&path).unwrap_or_default();
                out.insert(path.strip_prefix(base).unwrap().to_owned(), bytes);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(home.path(), home.path(), &mut out);
    out
}

/// Asserts that two snapshots are identical, naming the files that differ.
#[track_caller]
pub fn assert_same_files(before: &BTreeMap<PathBuf, Vec<u8>>, after: &BTreeMap<PathBuf, Vec<u8>>) {
    let changed: Vec<String> = before
        .keys()
        .chain(after.keys())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|path| before.get(*path) != after.get(*path))
        .map(|path| path.display().to_string())
        .collect();
    assert!(
        changed.is_empty(),
        "a failed sync changed files: {changed:#?}"
    );
}

/// The installed menu as (menu path, entry name, image reference), from `arcade menu list --json`.
pub fn menu_entries(home: &Home) -> Vec<(String, String, String)> {
    fn walk(tree: &serde_json::Value, path: &str, out: &mut Vec<(String, String, String)>) {
        for entry in tree["entries"].as_array().into_iter().flatten() {
            out.push((
                path.to_owned(),
                entry["name"].as_str().unwrap().to_owned(),
                entry["image"].as_str().unwrap().to_owned(),
            ));
        }
        for menu in tree["menus"].as_array().into_iter().flatten() {
            let name = menu["name"].as_str().unwrap();
            let deeper = if path.is_empty() {
                name.to_owned()
            } else {
                format!("{path}/{name}")
            };
            walk(menu, &deeper, out);
        }
    }
    let run = home.arcade().args(["menu", "list", "--json"]).ok();
    let mut out = Vec::new();
    walk(&run.json(), "", &mut out);
    out.sort();
    out
}

/// The image references in the installed menu.
pub fn menu_images(home: &Home) -> BTreeSet<String> {
    menu_entries(home)
        .into_iter()
        .map(|(_, _, image)| image)
        .collect()
}

/// Runs `check` on a failed run: one `arcade: error:` line, naming `url`, exit status 2.
#[track_caller]
pub fn check_failure(run: &Run, url: &str) -> String {
    let line = run.error_line().to_owned();
    assert!(line.contains(url), "the error does not name {url}:\n{run}");
    assert_eq!(run.code, Some(2), "{run}");
    line
}
