//! Putting a [`Plan`] on disk: atomic writes, a manifest of what we own, a lock against a
//! concurrent sync, and removal of our own stale files only.
//!
//! Invariants:
//! - a file is written or removed only if the manifest says we wrote it and it is still exactly
//!   what we wrote (a file the user edited, or one we never wrote, is left alone and reported);
//! - every write is a rename of a complete temporary file in the same directory;
//! - a file whose content would not change is not rewritten, so menu panels do not reload;
//! - entries and directories are written before the merged menu that refers to them, and stale
//!   files are removed after it.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{self, Write as _};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{File, Plan, Root, Shortcut, Tree};

const MANIFEST_VERSION: u32 = 1;
/// How long a sync waits for another one to finish before giving up.
const LOCK_WAIT: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("another arcade menu sync still holds {path} after {seconds} s")]
    Locked { path: PathBuf, seconds: u64 },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn io_error<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + 'a {
    move |source| Error::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

/// The directories a plan is installed under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `$XDG_DATA_HOME`
    pub data: PathBuf,
    /// `$XDG_CONFIG_HOME`
    pub config: PathBuf,
    /// The desktop folder, for shortcuts.
    pub desktop: PathBuf,
    /// Where the manifest and the lock live (`$XDG_DATA_HOME/arcade`).
    pub state: PathBuf,
}

impl Target {
    fn resolve(&self, root: Root, path: &Path) -> PathBuf {
        match root {
            Root::Data => self.data.join(path),
            Root::Config => self.config.join(path),
            Root::Desktop => self.desktop.join(path),
        }
    }

    pub fn manifest_path(&self) -> PathBuf {
        self.state.join("manifest.json")
    }

    fn lock_path(&self) -> PathBuf {
        self.state.join("sync.lock")
    }
}

/// What we know about one file we wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    sha256: String,
    len: u64,
    mtime_ns: i128,
}

/// The list of files arcade owns, with the tree they show.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Manifest {
    version: u32,
    files: BTreeMap<PathBuf, Record>,
    #[serde(default)]
    pub tree: Tree,
    #[serde(default)]
    pub shortcuts: Vec<Shortcut>,
}

impl Manifest {
    /// Reads the manifest; a missing one is empty. An unreadable one is treated as empty too, which
    /// is safe: files we can no longer prove are ours are then left alone, never overwritten.
    pub fn load(target: &Target) -> (Manifest, Option<String>) {
        let path = target.manifest_path();
        match fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<Manifest>(&bytes) {
                Ok(manifest) if manifest.version == MANIFEST_VERSION => (manifest, None),
                Ok(manifest) => (
                    Manifest::default(),
                    Some(format!(
                        "manifest {} has unknown version {}; treating every existing file as not ours",
                        path.display(),
                        manifest.version
                    )),
                ),
                Err(err) => (
                    Manifest::default(),
                    Some(format!(
                        "manifest {} is unreadable ({err}); treating every existing file as not ours",
                        path.display()
                    )),
                ),
            },
            Err(err) if err.kind() == io::ErrorKind::NotFound => (Manifest::default(), None),
            Err(err) => (
                Manifest::default(),
                Some(format!("failed to read manifest {}: {err}", path.display())),
            ),
        }
    }

    pub fn n_files(&self) -> usize {
        self.files.len()
    }
}

/// What an install did (or, for a dry run, would do).
#[derive(Debug, Default, Clone, Serialize)]
pub struct Report {
    pub written: usize,
    pub unchanged: usize,
    pub removed: usize,
    /// Files arcade wrote that someone changed since; left as they are.
    pub kept_modified: Vec<PathBuf>,
    /// Files at paths arcade wanted that arcade did not write; left as they are.
    pub skipped_foreign: Vec<PathBuf>,
    /// Problems worth a warning that did not stop the install.
    pub warnings: Vec<String>,
    pub dry_run: bool,
}

/// Holds the sync lock until dropped.
pub struct Lock {
    _file: fs::File,
}

/// Takes the sync lock, waiting for a concurrent sync to finish.
///
/// `clean` removes the lock file while holding it, so a lock taken on a file that is no longer at
/// `path` guards nothing; in that case the file is opened afresh and locked again.
pub fn lock(target: &Target) -> Result<Lock> {
    let path = target.lock_path();
    let started = Instant::now();
    loop {
        fs::create_dir_all(&target.state).map_err(io_error("create", &target.state))?;
        let file = match fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
        {
            Ok(file) => file,
            // A clean removed the folder between the two calls; make it again.
            Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
            Err(err) => return Err(io_error("open lock", &path)(err)),
        };
        match file.try_lock() {
            Ok(()) => {
                let locked = file.metadata().map_err(io_error("inspect", &path))?;
                match fs::metadata(&path) {
                    Ok(now) if now.dev() == locked.dev() && now.ino() == locked.ino() => {
                        return Ok(Lock { _file: file });
                    }
                    Ok(_) => {}
                    Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                    Err(err) => return Err(io_error("inspect", &path)(err)),
                }
                tracing::debug!(path = %path.display(), "lock file was replaced; locking again");
            }
            Err(fs::TryLockError::WouldBlock) => {
                if started.elapsed() >= LOCK_WAIT {
                    return Err(Error::Locked {
                        path,
                        seconds: LOCK_WAIT.as_secs(),
                    });
                }
                tracing::debug!(path = %path.display(), "waiting for another sync");
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(fs::TryLockError::Error(err)) => {
                return Err(Error::Io {
                    action: "lock",
                    path,
                    source: err,
                });
            }
        }
    }
}

fn sha256(bytes: &[u8]) -> String {
    super::hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

fn mtime_ns(meta: &fs::Metadata) -> i128 {
    i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec())
}

/// The state of a path on disk compared with what we recorded for it.
enum OnDisk {
    Missing,
    /// Exactly what we last wrote (by size and time, or by content when the time moved).
    AsRecorded,
    /// Something else: edited, replaced, a symlink, or never ours.
    Other {
        content_hash: Option<String>,
        /// It carries the mark arcade puts in what it generates (see [`MARKS`]).
        marked: bool,
    },
}

/// Texts only arcade's generated files contain: the merged menu's header comment, and the keys
/// of its entries and directories. A file at one of arcade's own paths that carries one is
/// arcade's even when the manifest that said so was lost.
const MARKS: [&str; 3] = [
    "<!-- Written by arcade menu sync",
    "\nX-Arcade-Image=",
    "\nX-Arcade-Generated=true\n",
];

fn marked(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes);
    MARKS.iter().any(|mark| text.contains(mark))
}

fn inspect(path: &Path, record: Option<&Record>) -> Result<OnDisk> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(OnDisk::Missing),
        Err(err) => return Err(io_error("inspect", path)(err)),
    };
    if !meta.file_type().is_file() {
        return Ok(OnDisk::Other {
            content_hash: None,
            marked: false,
        });
    }
    if let Some(record) = record
        && record.len == meta.len()
        && record.mtime_ns == mtime_ns(&meta)
    {
        return Ok(OnDisk::AsRecorded);
    }
    let bytes = fs::read(path).map_err(io_error("read", path))?;
    let hash = sha256(&bytes);
    if record.is_some_and(|record| record.sha256 == hash) {
        return Ok(OnDisk::AsRecorded);
    }
    Ok(OnDisk::Other {
        content_hash: Some(hash),
        marked: marked(&bytes),
    })
}

/// Writes `content` to `path` by renaming a complete temporary file over it.
pub fn write_atomic(path: &Path, content: &[u8], mode: u32, sync: bool) -> Result<fs::Metadata> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io_error("create", dir))?;
    let mut temp = tempfile::Builder::new()
        .prefix(".arcade-")
        .tempfile_in(dir)
        .map_err(io_error("create a temporary file in", dir))?;
    temp.write_all(content).map_err(io_error("write", path))?;
    temp.as_file()
        .set_permissions(fs::Permissions::from_mode(mode))
        .map_err(io_error("set permissions of", path))?;
    if sync {
        temp.as_file().sync_all().map_err(io_error("sync", path))?;
    }
    let file = temp
        .persist(path)
        .map_err(|err| io_error("rename into", path)(err.error))?;
    file.metadata().map_err(io_error("inspect", path))
}

/// Applies a plan. `dry_run` decides everything the same way but writes nothing.
pub fn apply(plan: &Plan, target: &Target, dry_run: bool) -> Result<Report> {
    let _lock = if dry_run { None } else { Some(lock(target)?) };
    apply_locked(plan, target, dry_run)
}

/// [`apply`] for a caller that already holds the lock (a sync that must also save its catalog
/// under it).
pub fn apply_locked(plan: &Plan, target: &Target, dry_run: bool) -> Result<Report> {
    let (manifest, warning) = Manifest::load(target);
    let mut report = Report {
        dry_run,
        ..Report::default()
    };
    report.warnings.extend(warning);

    // Entries, directories and icons first; the merged menu, which refers to them, last.
    let mut files: Vec<&File> = plan.files.iter().collect();
    files.sort_by_key(|file| file.root == Root::Config);

    let mut owned: BTreeMap<PathBuf, Record> = BTreeMap::new();
    let mut wanted: HashMap<PathBuf, ()> = HashMap::with_capacity(files.len());
    for file in files {
        let path = target.resolve(file.root, &file.path);
        wanted.insert(path.clone(), ());
        let hash = sha256(&file.content);
        let record = manifest.files.get(&path);
        let state = inspect(&path, record)?;
        let write = match (&state, record) {
            (OnDisk::Missing, _) => true,
            (OnDisk::AsRecorded, Some(record)) => record.sha256 != hash,
            (OnDisk::AsRecorded, None) => unreachable!("AsRecorded needs a record"),
            (OnDisk::Other { content_hash, .. }, _) if content_hash.as_deref() == Some(&hash) => {
                // Already exactly what we want (e.g. the manifest was lost): adopt it.
                false
            }
            (OnDisk::Other { .. }, Some(record)) => {
                // Still recorded, so later syncs and `clean` keep reporting it as the user's
                // change instead of forgetting it (and then calling it "not ours").
                owned.insert(path.clone(), record.clone());
                report.kept_modified.push(path);
                continue;
            }
            // Generated by arcade, at arcade's path, but the manifest forgot it: ours again.
            (OnDisk::Other { marked: true, .. }, None) => true,
            (OnDisk::Other { .. }, None) => {
                report.skipped_foreign.push(path);
                continue;
            }
        };
        let mode = if file.executable { 0o755 } else { 0o644 };
        if !write {
            report.unchanged += 1;
            let record = match (record, &state) {
                (Some(record), OnDisk::AsRecorded) => record.clone(),
                _ => {
                    let meta = fs::metadata(&path).map_err(io_error("inspect", &path))?;
                    Record {
                        sha256: hash,
                        len: meta.len(),
                        mtime_ns: mtime_ns(&meta),
                    }
                }
            };
            owned.insert(path, record);
            continue;
        }
        report.written += 1;
        if dry_run {
            continue;
        }
        // Individual files are not fsynced (20,000 fsyncs would take minutes); one syncfs
        // below makes them durable before the manifest that records them.
        let meta = write_atomic(&path, &file.content, mode, false)?;
        owned.insert(
            path,
            Record {
                sha256: hash,
                len: meta.len(),
                mtime_ns: mtime_ns(&meta),
            },
        );
    }

    for (path, record) in &manifest.files {
        if wanted.contains_key(path) {
            continue;
        }
        match inspect(path, Some(record))? {
            OnDisk::Missing => {}
            OnDisk::AsRecorded => {
                report.removed += 1;
                if !dry_run {
                    remove(path)?;
                }
            }
            OnDisk::Other { .. } => {
                owned.insert(path.clone(), record.clone());
                report.kept_modified.push(path.clone());
            }
        }
    }

    if !dry_run {
        sync_filesystem(&target.data);
        let manifest = Manifest {
            version: MANIFEST_VERSION,
            files: owned,
            tree: plan.tree.clone(),
            shortcuts: plan.shortcuts.clone(),
        };
        save_manifest(target, &manifest)?;
        remove_empty_dirs(target);
    }
    Ok(report)
}

fn save_manifest(target: &Target, manifest: &Manifest) -> Result<()> {
    let path = target.manifest_path();
    // Paths and strings always serialize.
    let bytes = serde_json::to_vec(manifest).expect("manifest serializes");
    write_atomic(&path, &bytes, 0o644, true)?;
    Ok(())
}

fn remove(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => Err(io_error("remove", path)(err)),
        _ => Ok(()),
    }
}

/// Makes everything written so far durable with one `syncfs` instead of one fsync per file.
fn sync_filesystem(dir: &Path) {
    use std::os::fd::AsRawFd;
    if let Ok(handle) = fs::File::open(dir) {
        // SAFETY: syncfs only reads the descriptor, which `handle` keeps open for the call.
        let rc = unsafe { libc::syncfs(handle.as_raw_fd()) };
        if rc != 0 {
            tracing::warn!(dir = %dir.display(), "syncfs failed: {}", io::Error::last_os_error());
        }
    }
}

/// Removes the folders only arcade uses once they are empty; `remove_dir` fails on a folder that
/// still holds anything, which is what keeps this safe.
fn remove_empty_dirs(target: &Target) {
    let _ = fs::remove_dir(
        target
            .data
            .join("applications")
            .join(super::APPLICATIONS_SUBDIR),
    );
}

/// Removes every file arcade wrote that is still as written, and the manifest.
pub fn clean(target: &Target, dry_run: bool) -> Result<Report> {
    let _lock = if dry_run { None } else { Some(lock(target)?) };
    let (manifest, warning) = Manifest::load(target);
    let mut report = Report {
        dry_run,
        ..Report::default()
    };
    report.warnings.extend(warning);
    for (path, record) in &manifest.files {
        match inspect(path, Some(record))? {
            OnDisk::Missing => {}
            OnDisk::AsRecorded => {
                report.removed += 1;
                if !dry_run {
                    remove(path)?;
                }
            }
            OnDisk::Other { .. } => report.kept_modified.push(path.clone()),
        }
    }
    if !dry_run {
        remove(&target.manifest_path())?;
        remove_empty_dirs(target);
        // The lock file is ours too. Removing it while holding the lock is safe because `lock`
        // checks that the file it locked is still the one at the path.
        remove(&target.lock_path())?;
        let _ = fs::remove_dir(&target.state);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(dir: &Path) -> Target {
        Target {
            data: dir.join("data"),
            config: dir.join("config"),
            desktop: dir.join("Desktop"),
            state: dir.join("data/arcade"),
        }
    }

    fn plan_of(files: &[(&str, &str)]) -> Plan {
        Plan {
            files: files
                .iter()
                .map(|(path, content)| File {
                    root: Root::Data,
                    path: PathBuf::from(path),
                    content: content.as_bytes().to_vec(),
                    executable: false,
                })
                .collect(),
            ..Plan::default()
        }
    }

    #[test]
    fn writes_then_does_nothing_then_removes_stale() {
        let dir = tempfile::tempdir().unwrap();
        let target = target(dir.path());
        let report = apply(&plan_of(&[("a/x", "1"), ("a/y", "2")]), &target, false).unwrap();
        assert_eq!(
            (report.written, report.unchanged, report.removed),
            (2, 0, 0)
        );
        let report = apply(&plan_of(&[("a/x", "1"), ("a/y", "2")]), &target, false).unwrap();
        assert_eq!(
            (report.written, report.unchanged, report.removed),
            (0, 2, 0)
        );
        let report = apply(&plan_of(&[("a/x", "changed")]), &target, false).unwrap();
        assert_eq!(
            (report.written, report.unchanged, report.removed),
            (1, 0, 1)
        );
        assert!(!target.data.join("a/y").exists());
        assert_eq!(
            fs::read_to_string(target.data.join("a/x")).unwrap(),
            "changed"
        );
    }

    #[test]
    fn leaves_foreign_and_edited_files_alone() {
        let dir = tempfile::tempdir().unwrap();
        let target = target(dir.path());
        fs::create_dir_all(target.data.join("a")).unwrap();
        fs::write(target.data.join("a/foreign"), "user's").unwrap();
        apply(&plan_of(&[("a/mine", "1")]), &target, false).unwrap();
        fs::write(target.data.join("a/mine"), "edited by the user").unwrap();

        let report = apply(
            &plan_of(&[("a/foreign", "ours"), ("a/mine", "2")]),
            &target,
            false,
        )
        .unwrap();
        assert_eq!(report.skipped_foreign, [target.data.join("a/foreign")]);
        assert_eq!(report.kept_modified, [target.data.join("a/mine")]);
        assert_eq!(
            fs::read_to_string(target.data.join("a/foreign")).unwrap(),
            "user's"
        );
        assert_eq!(
            fs::read_to_string(target.data.join("a/mine")).unwrap(),
            "edited by the user"
        );

        // An edited file stays recorded: the next sync and clean still call it the user's change.
        let report = apply(&plan_of(&[("a/x", "3")]), &target, false).unwrap();
        assert_eq!(report.kept_modified, [target.data.join("a/mine")]);
        assert!(report.skipped_foreign.is_empty());

        let report = clean(&target, false).unwrap();
        assert_eq!(report.removed, 1);
        assert_eq!(report.kept_modified, [target.data.join("a/mine")]);
        assert!(target.data.join("a/foreign").exists());
        assert!(target.data.join("a/mine").exists());
    }

    #[test]
    fn clean_removes_the_lock_and_a_later_sync_locks_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let target = target(dir.path());
        apply(&plan_of(&[("a/x", "1")]), &target, false).unwrap();
        assert!(target.lock_path().exists());
        clean(&target, false).unwrap();
        assert!(!target.lock_path().exists());
        assert!(!target.state.exists());
        apply(&plan_of(&[("a/x", "1")]), &target, false).unwrap();
        assert!(target.lock_path().exists());
    }

    #[test]
    fn a_lock_on_a_removed_file_is_taken_again() {
        let dir = tempfile::tempdir().unwrap();
        let target = target(dir.path());
        let first = lock(&target).unwrap();
        // Kept open so the removed file's inode number cannot be reused by the new file.
        let old_file = fs::File::open(target.lock_path()).unwrap();
        let old = old_file.metadata().unwrap().ino();
        let waiter = {
            let target = target.clone();
            std::thread::spawn(move || lock(&target).unwrap())
        };
        // Let the waiter open the old file and block on it, then do what `clean` does.
        std::thread::sleep(Duration::from_millis(200));
        fs::remove_file(target.lock_path()).unwrap();
        drop(first);
        let second = waiter.join().unwrap();
        let locked = second._file.metadata().unwrap().ino();
        assert_eq!(locked, fs::metadata(target.lock_path()).unwrap().ino());
        assert_ne!(locked, old);
    }

    #[test]
    fn dry_run_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let target = target(dir.path());
        let report = apply(&plan_of(&[("a/x", "1")]), &target, true).unwrap();
        assert_eq!(report.written, 1);
        assert!(!target.data.join("a/x").exists());
        assert!(!target.manifest_path().exists());
    }

    #[test]
    fn adopts_identical_files_when_the_manifest_is_lost() {
        let dir = tempfile::tempdir().unwrap();
        let target = target(dir.path());
        apply(&plan_of(&[("a/x", "1")]), &target, false).unwrap();
        fs::write(target.manifest_path(), "{not json").unwrap();
        let report = apply(&plan_of(&[("a/x", "1")]), &target, false).unwrap();
        assert_eq!((report.written, report.unchanged), (0, 1));
        assert_eq!(report.warnings.len(), 1);
        // Once adopted it is ours again, so clean removes it.
        assert_eq!(clean(&target, false).unwrap().removed, 1);
    }
}
