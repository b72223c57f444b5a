//! Reading the installed menu back as a desktop reads it: each entry of the manifest's tree is
//! parsed from its `.desktop` file by `freedesktop-desktop-entry`, an independent reader, so
//! `arcade menu list` shows the names the menu shows (a user's edit included) and says which
//! entries are missing or unreadable.

use std::path::{Path, PathBuf};

use freedesktop_desktop_entry::DesktopEntry;

use super::install::Target;
use super::{APPLICATIONS_SUBDIR, Tree, VENDOR};

/// What is wrong with an installed entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    Missing(PathBuf),
    Unreadable { path: PathBuf, message: String },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Missing(path) => write!(f, "{} is missing", path.display()),
            Problem::Unreadable { path, message } => {
                write!(
                    f,
                    "{} cannot be read as a desktop entry: {message}",
                    path.display()
                )
            }
        }
    }
}

/// The file of an entry, from its desktop file ID (`arcade-<name>.desktop` lives at
/// `applications/arcade/<name>.desktop`).
pub fn entry_path(target: &Target, desktop_id: &str) -> PathBuf {
    let name = desktop_id
        .strip_prefix(&format!("{VENDOR}-"))
        .unwrap_or(desktop_id);
    target
        .data
        .join("applications")
        .join(APPLICATIONS_SUBDIR)
        .join(name)
}

/// The tree with each entry named as its installed file names it, and what is wrong with the
/// entries that could not be read.
pub fn read_back(target: &Target, tree: &Tree) -> (Tree, Vec<Problem>) {
    let mut problems = Vec::new();
    let tree = walk(target, tree, &mut problems);
    (tree, problems)
}

fn walk(target: &Target, tree: &Tree, problems: &mut Vec<Problem>) -> Tree {
    Tree {
        name: tree.name.clone(),
        menus: tree
            .menus
            .iter()
            .map(|menu| walk(target, menu, problems))
            .collect(),
        entries: tree
            .entries
            .iter()
            .map(|entry| {
                let mut entry = entry.clone();
                match installed_name(&entry_path(target, &entry.desktop_id)) {
                    Ok(name) => entry.name = name,
                    Err(problem) => problems.push(problem),
                }
                entry
            })
            .collect(),
    }
}

/// The `Name` an installed entry shows.
fn installed_name(path: &Path) -> Result<String, Problem> {
    if !path.exists() {
        return Err(Problem::Missing(path.to_owned()));
    }
    let unreadable = |message: String| Problem::Unreadable {
        path: path.to_owned(),
        message,
    };
    let entry =
        DesktopEntry::from_path::<&str>(path, None).map_err(|err| unreadable(err.to_string()))?;
    entry
        .name::<&str>(&[])
        .map(|name| name.into_owned())
        .ok_or_else(|| unreadable("it has no Name".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::menu::TreeEntry;

    #[test]
    fn names_come_from_the_installed_files() {
        let dir = tempfile::tempdir().unwrap();
        let target = Target {
            data: dir.path().join("data"),
            config: dir.path().join("config"),
            desktop: dir.path().join("Desktop"),
            state: dir.path().join("data/arcade"),
        };
        let entry = |id: &str| TreeEntry {
            name: "planned".to_owned(),
            image: "h/p/a:1".to_owned(),
            digest: None,
            desktop_id: id.to_owned(),
        };
        let tree = Tree {
            name: "Astro Software".to_owned(),
            menus: vec![],
            entries: vec![entry("arcade-a-1.desktop"), entry("arcade-b-1.desktop")],
        };
        let path = entry_path(&target, "arcade-a-1.desktop");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(
            &path,
            "[Desktop Entry]\nType=Application\nName=a:1 \\s(edited)\nExec=/usr/bin/arcade\n",
        )
        .unwrap();
        let (read, problems) = read_back(&target, &tree);
        assert_eq!(read.entries[0].name, "a:1  (edited)");
        assert_eq!(read.entries[1].name, "planned");
        assert_eq!(
            problems,
            [Problem::Missing(entry_path(&target, "arcade-b-1.desktop"))]
        );
    }
}
