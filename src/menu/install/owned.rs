//! Which paths are arcade's: its own folders (`$XDG_DATA_HOME/arcade`, `$XDG_CACHE_HOME/arcade`),
//! which must be real folders and not symbolic links; the files it names in the XDG folders; and
//! opening its own files without following a link or waiting on a FIFO.
//!
//! Invariant: arcade removes a file only when [`is_arcade_file`] and [`Direct::reached`] both say
//! yes, whatever a manifest or journal on disk claims, so a tampered, stale or foreign manifest
//! cannot make it delete anything else.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read as _};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use super::{Error, Result, Target, io_error};
use crate::menu::{APPLICATIONS_SUBDIR, MENU_FILE, Root, VENDOR};

/// The mode of the folders arcade creates, less the umask as `mkdir` applies it: never writable
/// by others, even under umask 000.
const DIR_MODE: u32 = 0o755;

/// Creates `dir` and any missing parents with [`DIR_MODE`].
pub fn create_dirs(dir: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .map_err(io_error("create", dir))
}

/// What a path is, for messages about things that are not what arcade expects.
fn kind(file_type: fs::FileType) -> &'static str {
    if file_type.is_symlink() {
        "a symbolic link"
    } else if file_type.is_dir() {
        "a folder"
    } else if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_block_device() || file_type.is_char_device() {
        "a device"
    } else {
        "a regular file"
    }
}

/// Checks that `dir`, a folder only arcade uses, is a real folder: through a symbolic link
/// arcade would overwrite and delete the files of the same names in whatever folder the link
/// points to. A missing folder is fine (it is created as a folder when needed).
pub fn check_own_dir(dir: &Path) -> Result<()> {
    match fs::symlink_metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(meta) => Err(Error::NotOwnFolder {
            path: dir.to_owned(),
            what: kind(meta.file_type()),
        }),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(io_error("inspect", dir)(err)),
    }
}

/// [`check_own_dir`], then creates the folder when it is missing.
pub fn own_dir(dir: &Path) -> Result<()> {
    check_own_dir(dir)?;
    create_dirs(dir)
}

/// Opens one of arcade's own files (the manifest, the journal, the lock, the saved catalog)
/// without following a symbolic link and without waiting for a FIFO's other end, and checks
/// that it is a regular file. A plain `open` of a FIFO blocks until someone opens its other end,
/// which would hold a sync, and the lock, forever.
pub fn open_own(path: &Path, options: &mut fs::OpenOptions) -> io::Result<fs::File> {
    let file = options
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|err| match err.raw_os_error() {
            Some(libc::ELOOP) => io::Error::other("it is a symbolic link, not a regular file"),
            // Opening a FIFO for writing without blocking fails this way when no reader has it.
            Some(libc::ENXIO) => io::Error::other("it is a FIFO, not a regular file"),
            _ => err,
        })?;
    let file_type = file.metadata()?.file_type();
    if !file_type.is_file() {
        return Err(io::Error::other(format!(
            "it is {}, not a regular file",
            kind(file_type)
        )));
    }
    Ok(file)
}

/// Reads one of arcade's own files whole, as [`open_own`] opens it.
pub fn read_own(path: &Path) -> io::Result<Vec<u8>> {
    let mut file = open_own(path, fs::OpenOptions::new().read(true))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Whether `path` is a file arcade writes: under one of the target's folders, in a folder the
/// planner uses, and named the way the planner names files there (see `crate::menu`).
pub fn is_arcade_file(target: &Target, path: &Path) -> bool {
    root_of(target, path).is_some()
}

/// The root `path` is under and its part below that root, when it is an arcade file.
fn root_of<'a>(target: &'a Target, path: &'a Path) -> Option<(&'a Path, &'a Path)> {
    [
        (Root::Data, &target.data),
        (Root::Config, &target.config),
        (Root::Desktop, &target.desktop),
    ]
    .into_iter()
    .find_map(|(root, base)| {
        let below = path.strip_prefix(base).ok()?;
        in_layout(root, below).then_some((base.as_path(), below))
    })
}

/// Whether `below`, a path relative to `root`, is where arcade puts one of its files.
fn in_layout(root: Root, below: &Path) -> bool {
    let mut parts = Vec::new();
    for component in below.components() {
        // `..`, a root or a prefix could lead anywhere; arcade's own paths never hold them.
        let Component::Normal(part) = component else {
            return false;
        };
        let Some(part) = part.to_str() else {
            return false;
        };
        parts.push(part);
    }
    let Some((name, folders)) = parts.split_last() else {
        return false;
    };
    let vendor = format!("{VENDOR}-");
    // The two files of opening data files have fixed names (`menu::mime`).
    if root == Root::Data
        && [crate::menu::mime::PACKAGE, crate::menu::mime::MIMEAPPS]
            .iter()
            .any(|fixed| below == Path::new(fixed))
    {
        return true;
    }
    match (root, folders) {
        (Root::Data, ["applications", sub]) if *sub == APPLICATIONS_SUBDIR => {
            named(name, "", ".desktop")
        }
        (Root::Data, ["desktop-directories"]) => named(name, &vendor, ".directory"),
        (Root::Data, ["icons", "hicolor", "scalable", "apps"]) => named(name, &vendor, ".svg"),
        // Shipped icons are 48×48; an image's own PNG lies in the folder of its size.
        (Root::Data, ["icons", "hicolor", size, "apps"]) if is_icon_size(size) => {
            named(name, &vendor, ".png")
        }
        (Root::Config, ["menus", "applications-merged"]) => *name == MENU_FILE,
        (Root::Desktop, []) => named(name, &vendor, ".desktop"),
        _ => false,
    }
}

/// Whether `folder` is one of the hicolor sizes arcade puts PNG icons in.
fn is_icon_size(folder: &str) -> bool {
    [
        "16", "22", "24", "32", "48", "64", "96", "128", "256", "512",
    ]
    .iter()
    .any(|side| folder == format!("{side}x{side}"))
}

/// Whether `name` is a file name as the planner makes them: lowercase ASCII letters, digits, `-`
/// and `.`, starting with `prefix` and ending with `suffix`.
fn named(name: &str, prefix: &str, suffix: &str) -> bool {
    name.len() <= 255
        && name.len() > prefix.len() + suffix.len()
        && name.starts_with(prefix)
        && name.ends_with(suffix)
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

/// Which folders below the target's roots are reached without a symbolic link, asked once per
/// folder: a file arcade removes must be in the folder its path names, not in one a link (made
/// after arcade wrote there, or by someone else) points to.
#[derive(Default)]
pub struct Direct {
    checked: HashMap<PathBuf, bool>,
}

impl Direct {
    /// Whether `path` is an arcade file whose folder is reached from its root without a
    /// symbolic link; a folder that does not exist holds nothing to remove, so it counts as
    /// reached.
    pub fn reached(&mut self, target: &Target, path: &Path) -> bool {
        let Some((root, below)) = root_of(target, path) else {
            return false;
        };
        self.walk(root, below.parent().unwrap_or(Path::new("")))
    }

    /// Whether `dir`, a folder under one of the target's roots, is reached without a link.
    pub fn reached_folder(&mut self, target: &Target, dir: &Path) -> bool {
        [&target.data, &target.config, &target.desktop]
            .into_iter()
            .find_map(|root| Some((root, dir.strip_prefix(root).ok()?)))
            .is_some_and(|(root, below)| self.walk(root, below))
    }

    /// Checks each folder from `root` down through `below`.
    fn walk(&mut self, root: &Path, below: &Path) -> bool {
        let mut dir = root.to_owned();
        for folder in below.components() {
            let Component::Normal(folder) = folder else {
                return false;
            };
            dir.push(folder);
            let direct = *self.checked.entry(dir.clone()).or_insert_with(|| {
                match fs::symlink_metadata(&dir) {
                    Ok(meta) => meta.is_dir(),
                    Err(err) => err.kind() == io::ErrorKind::NotFound,
                }
            });
            if !direct {
                return false;
            }
        }
        true
    }
}

/// Whether `name` is a temporary file name of an atomic write (`.arcade-` and six letters or
/// digits, as `tempfile` makes them).
fn is_temporary(name: &std::ffi::OsStr) -> bool {
    let Some(rest) = name.to_str().and_then(|name| name.strip_prefix(".arcade-")) else {
        return false;
    };
    rest.len() == 6 && rest.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Removes the temporary files a killed write left in `dir` (regular files named as
/// [`is_temporary`] says); returns how many. Only called under the sync lock, so no other sync
/// is writing them.
pub fn remove_temporary_files(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let regular = entry.file_type().is_ok_and(|kind| kind.is_file());
        if regular && is_temporary(&entry.file_name()) && fs::remove_file(entry.path()).is_ok() {
            tracing::debug!(path = %entry.path().display(), "removed a killed sync's temporary file");
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::super::tests::target;
    use super::*;
    use crate::catalog::{FileImage, from_file_images};

    #[test]
    fn every_file_the_planner_makes_is_an_arcade_file() {
        let catalog = from_file_images(
            [
                "h/skaha/terminal:1.0",
                "h/skaha/casa:6.9",
                "h/skaha/casa:6.10",
                "h/skaha/casa:5.0",
                "h/Odd Project/some_App.x:V1;2",
                // Apps that open files: the VOTable type and the default apps are planned too.
                "h/skaha/ds9:8.5",
                "h/skaha/topcat:4.9",
            ]
            .iter()
            .map(|id| FileImage {
                id: (*id).into(),
                types: vec![],
                digest: None,
                labels: None,
            })
            .collect(),
            None,
        );
        // One image with an icon of its own, a 256-pixel PNG.
        let mut catalog = catalog;
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend(256u32.to_be_bytes());
        png.extend(256u32.to_be_bytes());
        catalog.images[0].about = Some(std::sync::Arc::new(crate::labels::About {
            icon: Some(crate::labels::IconSource::Inline {
                kind: crate::labels::IconKind::Png,
                bytes: png,
            }),
            ..Default::default()
        }));
        let options = crate::menu::Options {
            launcher: "/usr/bin/arcade".into(),
            submenu_threshold: 2,
            shortcuts: vec!["casa".into(), "terminal".into()],
            wm_classes: Default::default(),
            presets: vec![],
            gpus: false,
            mime_types: Default::default(),
            mime_defaults: Default::default(),
        };
        let plan = crate::menu::plan(&catalog, &options);
        let target = target(Path::new("/home/u"));
        assert!(plan.files.len() > 10);
        for wanted in [crate::menu::mime::PACKAGE, crate::menu::mime::MIMEAPPS] {
            assert!(
                plan.files.iter().any(|file| file.path == Path::new(wanted)),
                "{wanted} is not planned"
            );
        }
        for file in &plan.files {
            let path = target.resolve(file.root, &file.path);
            assert!(is_arcade_file(&target, &path), "{}", path.display());
        }
    }

    #[test]
    fn other_paths_are_not() {
        let target = target(Path::new("/home/u"));
        for path in [
            "/home/u/data/applications/arcade/../../../victim.desktop",
            "/home/u/data/applications/arcade/sub/x.desktop",
            "/home/u/data/applications/x.desktop",
            "/home/u/data/applications/arcade/.arcade-abc123",
            "/home/u/data/applications/arcade/Upper.desktop",
            "/home/u/data/desktop-directories/user.directory",
            "/home/u/data/arcade/manifest.json",
            "/home/u/data/mime/packages/other.xml",
            "/home/u/data/mime/mime.cache",
            "/home/u/data/applications/arcade/mimeapps.list",
            "/home/u/config/mimeapps.list",
            "/home/u/config/menus/applications-merged/other.menu",
            "/home/u/Desktop/notes.desktop",
            "/home/u/Desktop/sub/arcade-x.desktop",
            "/etc/passwd",
            "relative/arcade-x.desktop",
            "arcade-x.desktop",
        ] {
            assert!(!is_arcade_file(&target, Path::new(path)), "{path}");
        }
    }

    #[test]
    fn temporary_names_are_tempfiles() {
        assert!(is_temporary(".arcade-Ab3xY9".as_ref()));
        assert!(!is_temporary(".arcade-notes".as_ref()));
        assert!(!is_temporary(".arcade-Ab3xY9.bak".as_ref()));
        assert!(!is_temporary("arcade-Ab3xY9".as_ref()));
    }

    #[test]
    fn folders_through_a_link_are_not_reached() {
        let dir = tempfile::tempdir().unwrap();
        let target = target(dir.path());
        let elsewhere = dir.path().join("elsewhere");
        fs::create_dir_all(&elsewhere).unwrap();
        fs::create_dir_all(target.data.join("applications")).unwrap();
        std::os::unix::fs::symlink(&elsewhere, target.data.join("applications/arcade")).unwrap();
        fs::create_dir_all(target.data.join("desktop-directories")).unwrap();
        let mut direct = Direct::default();
        assert!(!direct.reached(
            &target,
            &target.data.join("applications/arcade/x-1.desktop")
        ));
        assert!(direct.reached(
            &target,
            &target.data.join("desktop-directories/arcade-x.directory")
        ));
        assert!(direct.reached(&target, &target.desktop.join("arcade-x.desktop")));
    }

    #[test]
    fn own_files_are_opened_without_blocking_or_following_links() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let name = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a NUL-terminated path that outlives the call.
        assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o644) }, 0);
        let err = read_own(&fifo).unwrap_err().to_string();
        assert!(err.contains("FIFO"), "{err}");
        let err = open_own(&fifo, fs::OpenOptions::new().write(true))
            .unwrap_err()
            .to_string();
        assert!(err.contains("FIFO"), "{err}");
        let link = dir.path().join("link");
        fs::write(dir.path().join("file"), "x").unwrap();
        std::os::unix::fs::symlink(dir.path().join("file"), &link).unwrap();
        let err = read_own(&link).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        assert_eq!(read_own(&dir.path().join("file")).unwrap(), b"x");
    }
}
