//! Keeping the desktop's caches of arcade's files current: the user's MIME database
//! (`$XDG_DATA_HOME/mime`, compiled from its `packages/` by `update-mime-database`) and the MIME
//! cache of the user's desktop entries (`$XDG_DATA_HOME/applications/mimeinfo.cache`, made by
//! `update-desktop-database`). GLib (and so `gio open`, Thunar, `exo-open`) and xdg-utils read
//! these caches, not the package or the entries: without them no file manager knows a VOTable or
//! offers arcade's apps for a FITS file.
//!
//! Invariants:
//! - only the user's own folders are touched, and only after a sync or clean changed arcade's
//!   files there (or when a cache arcade's entries need is missing);
//! - both tools rebuild a cache from everything the folder holds, arcade's files and any others,
//!   and replace each cache file atomically (a complete new file renamed over the old), so no
//!   reader sees half a cache and no one else's entries are lost;
//! - a cache of nothing is removed, so `arcade menu clean` leaves nothing of arcade's behind.

use std::io::Read as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What `update-mime-database` writes at the top of a MIME folder, besides one folder per media
/// type (`application/`, …) of per-type files.
const MIME_DATABASE: &[&str] = &[
    "XMLnamespaces",
    "aliases",
    "generic-icons",
    "globs",
    "globs2",
    "icons",
    "magic",
    "mime.cache",
    "subclasses",
    "treemagic",
    "types",
    "version",
];

/// How long a cache tool may take before it is given up on (it takes milliseconds).
const TOOL_TIME: Duration = Duration::from_secs(30);

/// Brings the caches under `data` (`$XDG_DATA_HOME`) up to date after an install: a cache that
/// exists when the install `changed` files, and a missing one when arcade's files need it (its
/// VOTable package is there; `opens_files`: some entry of arcade's lists file types). Returns
/// warnings; a cache that cannot be made is never a failure of the sync.
pub fn refresh(data: &Path, changed: bool, opens_files: bool) -> Vec<String> {
    let mut warnings = Vec::new();
    let needed = |cache: &Path, needs: bool| if cache.exists() { changed } else { needs };
    if needed(
        &data.join("mime/mime.cache"),
        data.join(super::mime::PACKAGE).exists(),
    ) {
        warnings.extend(update_mime_database(data));
    }
    if needed(&data.join("applications/mimeinfo.cache"), opens_files) {
        warnings.extend(update_desktop_database(data));
    }
    warnings
}

/// Rebuilds the user's MIME database from its packages, and, when none is left, removes the
/// database of nothing.
fn update_mime_database(data: &Path) -> Option<String> {
    let mime = data.join("mime");
    let packages = mime.join("packages");
    let has_packages = std::fs::read_dir(&packages).is_ok_and(|mut entries| {
        entries.any(|entry| {
            entry.is_ok_and(|entry| entry.path().extension().is_some_and(|ext| ext == "xml"))
        })
    });
    if !has_packages && !mime.join("mime.cache").exists() {
        return None;
    }
    let warning = run_tool(
        "update-mime-database",
        "shared-mime-info",
        &mime,
        data,
        "file managers will not know VOTable files",
    );
    // Run over no packages, the tool has removed its files for each type; the rest goes here.
    if !has_packages {
        remove_mime_database(&mime);
    }
    warning
}

/// Removes what `update-mime-database` wrote in a MIME folder without packages, and the folders
/// that are then empty; anything else there stays.
fn remove_mime_database(mime: &Path) {
    for name in MIME_DATABASE {
        let _ = std::fs::remove_file(mime.join(name));
    }
    if let Ok(entries) = std::fs::read_dir(mime) {
        for entry in entries.flatten() {
            // Fails on a folder that still holds anything, which is what keeps this safe.
            let _ = std::fs::remove_dir(entry.path());
        }
    }
    let _ = std::fs::remove_dir(mime);
}

/// Rebuilds the MIME cache of the user's desktop entries; removes it when it lists nothing.
fn update_desktop_database(data: &Path) -> Option<String> {
    let applications = data.join("applications");
    if !applications.is_dir() {
        return None;
    }
    let warning = run_tool(
        "update-desktop-database",
        "desktop-file-utils",
        &applications,
        data,
        "file managers will not offer arcade's apps for data files",
    );
    let cache = applications.join("mimeinfo.cache");
    if std::fs::read_to_string(&cache).is_ok_and(|text| !text.lines().any(|l| l.contains('='))) {
        let _ = std::fs::remove_file(&cache);
    }
    warning
}

/// Runs a cache tool on `folder`, quietly, within [`TOOL_TIME`]; a warning saying what is lost
/// (`cost`) when it is missing or fails.
fn run_tool(
    program: &str,
    package: &str,
    folder: &Path,
    data: &Path,
    cost: &str,
) -> Option<String> {
    let Some(path) = crate::config::which(program) else {
        return Some(format!(
            "{program} is not installed (apt-get install {package}), so {cost}"
        ));
    };
    let mut command = Command::new(path);
    if program == "update-desktop-database" {
        command.arg("-q");
    }
    // Named as the data home, so the tool does not print that the folder is not searched.
    command
        .arg(folder)
        .env("XDG_DATA_HOME", data)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let failed = |why: String| Some(format!("{program} {} {why}, so {cost}", folder.display()));
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(err) => return failed(format!("could not run: {err}")),
    };
    // Read on a thread of its own, so a tool with much to say never blocks on a full pipe.
    let stderr = child.stderr.take().map(|mut pipe| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < TOOL_TIME => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return failed(format!("took over {} s", TOOL_TIME.as_secs()));
            }
            Err(err) => return failed(format!("could not be waited for: {err}")),
        }
    };
    if status.success() {
        return None;
    }
    let stderr = stderr
        .and_then(|reader| reader.join().ok())
        .unwrap_or_default();
    let said = stderr
        .lines()
        .map(str::trim)
        .rfind(|line| !line.is_empty())
        .map(|line| format!(": {line}"))
        .unwrap_or_default();
    failed(format!("failed ({status}){said}"))
}
