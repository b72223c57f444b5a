//! Putting a [`Plan`] on disk: atomic writes, a manifest of what we own, a journal of what a sync
//! is about to write, a lock against a concurrent sync, and removal of our own stale files only.
//!
//! Invariants:
//! - a file is written or removed only if it is arcade's and still exactly what arcade wrote: the
//!   manifest records it, or the journal of an unfinished sync lists it with the content found
//!   (a file the user edited, or one we never wrote, is left alone and reported); before a file
//!   is overwritten or removed, its content's hash is checked, not only its size and time;
//! - whatever the manifest or journal says, only files in arcade's folders, named as arcade names
//!   them and reached without a symbolic link below the XDG folder, are removed (`owned`);
//! - before any file is written, its path and new hash are in the journal, so a sync that is
//!   killed or fails partway is finished or undone by the next sync or `clean`, its temporary
//!   files included; the journal goes only once a saved manifest records the outcome;
//! - arcade's own folders (`$XDG_DATA_HOME/arcade`, `$XDG_CACHE_HOME/arcade`) are refused when
//!   they are symbolic links, and its own files are opened without following links or blocking
//!   on FIFOs;
//! - every write is atomic: a complete temporary file is renamed over the old one, or, for a path
//!   that is free, a complete unnamed file (`O_TMPFILE`) is linked in, so readers never see part
//!   of a file; folders are created 0755 and files 0644 (0755 for shortcuts), less the umask for
//!   folders and the lock;
//! - a file whose content would not change is not rewritten, so menu panels do not reload;
//! - entries and directories are written before the merged menu that refers to them, and stale
//!   files are removed after it.

mod journal;
mod owned;

use std::collections::{HashMap, HashSet};
use std::ffi::{CString, OsString};
use std::fs;
use std::io::{self, Write as _};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize, Serializer};

use super::{File, Plan, Root, Shortcut, Tree};
use journal::Journal;
pub use owned::{check_own_dir, create_dirs, read_own, remove_temporary_files};

const MANIFEST_VERSION: u32 = 1;
/// How long a sync waits for another one to finish before giving up.
const LOCK_WAIT: Duration = Duration::from_secs(120);
/// Files journaled in one write before they go to the writers: one write per file would cost a
/// system call each, and the writers still get files as they are planned.
const JOURNAL_BATCH: usize = 64;

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
    #[error("the threads writing the menu's files stopped unexpectedly")]
    WritersStopped,
    #[error(
        "refusing to use {path}: it is {what}, not a folder of arcade's own; move it away and \
         sync again"
    )]
    NotOwnFolder { path: PathBuf, what: &'static str },
    #[error("the menu planned {path}, which is not where arcade puts its files")]
    NotArcadePath { path: PathBuf },
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
    /// Where the manifest, the journal and the lock live (`$XDG_DATA_HOME/arcade`).
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

    fn journal_path(&self) -> PathBuf {
        self.state.join("journal")
    }

    fn lock_path(&self) -> PathBuf {
        self.state.join("sync.lock")
    }
}

/// A SHA-256 digest, written as lowercase hex in the manifest. Kept as bytes in memory: a large
/// menu records tens of thousands of them.
type Digest = [u8; 32];

/// What we know about one file we wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    #[serde(with = "hex_digest")]
    sha256: Digest,
    len: u64,
    mtime_ns: i128,
}

impl Record {
    fn of(sha256: Digest, meta: &fs::Metadata) -> Record {
        Record {
            sha256,
            len: meta.len(),
            mtime_ns: mtime_ns(meta),
        }
    }
}

/// Serde for a [`Digest`] as 64 lowercase hex digits.
mod hex_digest {
    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};

    use super::Digest;

    pub fn serialize<S: Serializer>(digest: &Digest, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::super::hex(digest))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Digest, D::Error> {
        struct Hex;
        impl Visitor<'_> for Hex {
            type Value = Digest;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a SHA-256 digest as 64 hex digits")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Digest, E> {
                let bytes = text.as_bytes();
                if bytes.len() != 64 {
                    return Err(E::invalid_value(de::Unexpected::Str(text), &self));
                }
                let mut digest = [0; 32];
                for (out, pair) in digest.iter_mut().zip(bytes.chunks_exact(2)) {
                    let nibble = |c: u8| (c as char).to_digit(16);
                    let (Some(high), Some(low)) = (nibble(pair[0]), nibble(pair[1])) else {
                        return Err(E::invalid_value(de::Unexpected::Str(text), &self));
                    };
                    // Two hex digits make at most 255.
                    *out = (high * 16 + low) as u8;
                }
                Ok(digest)
            }
        }
        deserializer.deserialize_str(Hex)
    }
}

/// The list of files arcade owns, with the tree they show.
#[derive(Debug, Default, Deserialize)]
pub struct Manifest {
    version: u32,
    /// A hash map: a large menu looks up tens of thousands of paths, and ordered maps compare
    /// paths component by component. It is written sorted all the same (see [`ManifestRef`]).
    /// Keys are taken as arcade's only where `owned` agrees.
    files: HashMap<PathBuf, Record>,
    #[serde(default)]
    pub tree: Tree,
    #[serde(default)]
    pub shortcuts: Vec<Shortcut>,
}

/// A [`Manifest`] with borrowed parts, for writing one without copying the tree. The files come
/// sorted by their paths' bytes, so equal manifests are equal files.
#[derive(Serialize)]
struct ManifestRef<'a> {
    version: u32,
    #[serde(serialize_with = "serialize_files")]
    files: &'a [(PathBuf, Record)],
    tree: &'a Tree,
    shortcuts: &'a [Shortcut],
}

fn serialize_files<S: Serializer>(
    files: &&[(PathBuf, Record)],
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    serializer.collect_map(files.iter().map(|(path, record)| (path, record)))
}

impl Manifest {
    /// Reads the manifest; a missing one is empty. An unreadable one (corrupt, a FIFO, a link) is
    /// treated as empty too, which is safe: files we can no longer prove are ours are then left
    /// alone, never overwritten.
    pub fn load(target: &Target) -> (Manifest, Option<String>) {
        let path = target.manifest_path();
        match read_own(&path) {
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
                Some(format!(
                    "failed to read manifest {} ({err}); treating every existing file as not ours",
                    path.display()
                )),
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
    lock_within(target, LOCK_WAIT)
}

/// [`lock`], giving up after `wait` (zero: at once) with [`Error::Locked`].
pub fn lock_within(target: &Target, wait: Duration) -> Result<Lock> {
    let path = target.lock_path();
    let started = Instant::now();
    loop {
        owned::own_dir(&target.state)?;
        let file = match owned::open_own(
            &path,
            fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .mode(0o644),
        ) {
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
                if started.elapsed() >= wait {
                    return Err(Error::Locked {
                        path,
                        seconds: wait.as_secs(),
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

fn sha256(bytes: &[u8]) -> Digest {
    let mut digest = [0; 32];
    digest.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref());
    digest
}

fn mtime_ns(meta: &fs::Metadata) -> i128 {
    i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec())
}

/// What arcade knows about a path from the last manifest and an unfinished sync's journal.
#[derive(Clone, Copy, Default)]
struct Known<'a> {
    record: Option<&'a Record>,
    journaled: &'a [Digest],
}

impl Known<'_> {
    fn any(&self) -> bool {
        self.record.is_some() || !self.journaled.is_empty()
    }
}

/// How closely [`inspect`] looks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Look {
    /// A recorded size and modification time are taken as the recorded content, so a sync
    /// that changes nothing reads no file.
    Quick,
    /// The content's hash decides, as before a file is overwritten or removed.
    Content,
}

/// The state of a path on disk compared with what we know of it.
enum OnDisk {
    Missing,
    /// Arcade's, as this record describes it now: what the manifest recorded, or what an
    /// unfinished sync journaled. `hashed` says whether the content was checked.
    Ours {
        record: Record,
        hashed: bool,
    },
    /// Empty where arcade wrote content: what a crash before the data reached the disk leaves,
    /// as good as missing.
    Emptied,
    /// Something else: edited, replaced, a symlink, or never ours.
    Other {
        content_hash: Option<Digest>,
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

fn inspect(path: &Path, known: Known<'_>, look: Look) -> Result<OnDisk> {
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
    if look == Look::Quick
        && let Some(record) = known.record
        && record.len == meta.len()
        && record.mtime_ns == mtime_ns(&meta)
    {
        return Ok(OnDisk::Ours {
            record: record.clone(),
            hashed: false,
        });
    }
    // arcade never writes an empty file.
    if known.any() && meta.len() == 0 {
        return Ok(OnDisk::Emptied);
    }
    let bytes = match read_own(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(OnDisk::Missing),
        Err(err) => return Err(io_error("read", path)(err)),
    };
    let hash = sha256(&bytes);
    let recorded = known.record.is_some_and(|record| record.sha256 == hash);
    if recorded || known.journaled.contains(&hash) {
        // A fresh record: with the time it has now, the next sync need not read it again.
        return Ok(OnDisk::Ours {
            record: Record::of(hash, &meta),
            hashed: true,
        });
    }
    Ok(OnDisk::Other {
        content_hash: Some(hash),
        marked: marked(&bytes),
    })
}
/// The process's umask, read once from `/proc/self/status` (calling `umask` to read it would
/// change it for a moment under other threads); `None` when it cannot be read.
fn umask() -> Option<u32> {
    static UMASK: OnceLock<Option<u32>> = OnceLock::new();
    *UMASK.get_or_init(|| {
        let status = fs::read_to_string("/proc/self/status").ok()?;
        let line = status
            .lines()
            .find_map(|line| line.strip_prefix("Umask:"))?;
        u32::from_str_radix(line.trim(), 8).ok()
    })
}

/// Whether a file created with `mode` gets exactly `mode`, so no `fchmod` is needed after.
fn umask_keeps(mode: u32) -> bool {
    umask().is_some_and(|umask| mode & umask == 0)
}

/// Writes `content` to `path` by renaming a complete temporary file over it.
pub fn write_atomic(path: &Path, content: &[u8], mode: u32, sync: bool) -> Result<fs::Metadata> {
    write_atomic_with(path, mode, sync, |out| out.write_all(content))
}

/// [`write_atomic`] with the content written by `write`, for content too large to hold in memory
/// at once (a large catalog, the manifest).
pub fn write_atomic_with(
    path: &Path,
    mode: u32,
    sync: bool,
    write: impl FnOnce(&mut dyn io::Write) -> io::Result<()>,
) -> Result<fs::Metadata> {
    let dir = path.parent().unwrap_or(Path::new("."));
    create_dirs(dir)?;
    replace(path, mode, sync, write)
}

/// [`write_atomic_with`] in a folder that exists.
fn replace(
    path: &Path,
    mode: u32,
    sync: bool,
    write: impl FnOnce(&mut dyn io::Write) -> io::Result<()>,
) -> Result<fs::Metadata> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut temp = tempfile::Builder::new()
        .prefix(".arcade-")
        .permissions(fs::Permissions::from_mode(mode))
        .tempfile_in(dir)
        .map_err(io_error("create a temporary file in", dir))?;
    write(&mut temp).map_err(io_error("write", path))?;
    if !umask_keeps(mode) {
        temp.as_file()
            .set_permissions(fs::Permissions::from_mode(mode))
            .map_err(io_error("set permissions of", path))?;
    }
    if sync {
        temp.as_file().sync_all().map_err(io_error("sync", path))?;
    }
    let file = temp
        .persist(path)
        .map_err(|err| io_error("rename into", path)(err.error))?;
    file.metadata().map_err(io_error("inspect", path))
}

/// Set once linking an unnamed file into place has failed, so later files go straight to
/// [`replace`] instead of failing the same way each time.
static CANNOT_LINK: AtomicBool = AtomicBool::new(false);

/// Writes a file at a path that was free, in a folder that exists. The complete file is made
/// without a name (`O_TMPFILE`) and then linked in, so a reader sees all of it or nothing, as with
/// a rename, for one change to the folder instead of a temporary name's creation and rename.
/// Where that cannot be done (a file system without `O_TMPFILE`, no `/proc`) or the name was taken
/// meanwhile, the file is written by [`replace`], as every file was before.
fn create_new(path: &Path, content: &[u8], mode: u32) -> Result<fs::Metadata> {
    if !CANNOT_LINK.load(Ordering::Relaxed)
        && let Some(meta) = link_new(path, content, mode).map_err(io_error("write", path))?
    {
        return Ok(meta);
    }
    replace(path, mode, false, |out| out.write_all(content))
}

/// The unnamed-file half of [`create_new`]; `None` when it must fall back.
fn link_new(path: &Path, content: &[u8], mode: u32) -> io::Result<Option<fs::Metadata>> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let Ok(target) = CString::new(path.as_os_str().as_bytes()) else {
        return Ok(None);
    };
    let file = match fs::OpenOptions::new()
        .write(true)
        .mode(mode)
        .custom_flags(libc::O_TMPFILE)
        .open(dir)
    {
        Ok(file) => file,
        // Kernels and file systems without O_TMPFILE answer with one of these.
        Err(err)
            if matches!(
                err.raw_os_error(),
                Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL)
            ) =>
        {
            CANNOT_LINK.store(true, Ordering::Relaxed);
            return Ok(None);
        }
        Err(err) => return Err(err),
    };
    (&file).write_all(content)?;
    if !umask_keeps(mode) {
        file.set_permissions(fs::Permissions::from_mode(mode))?;
    }
    // Linking changes neither the size nor the modification time recorded from this.
    let meta = file.metadata()?;
    match link(&file, &target) {
        Ok(()) => Ok(Some(meta)),
        // A file that appeared at the path since it was inspected is replaced, as before.
        Err(err) if err.raw_os_error() == Some(libc::EEXIST) => Ok(None),
        // Linking does not work here (no /proc, a file system that refuses).
        Err(err) => {
            tracing::debug!(path = %path.display(), "linking a new file failed ({err}); renaming instead");
            CANNOT_LINK.store(true, Ordering::Relaxed);
            Ok(None)
        }
    }
}

/// Set once `linkat` with `AT_EMPTY_PATH` was refused (kernels before 6.10 allow it only with
/// `CAP_DAC_READ_SEARCH`), so later files go through `/proc` straight away.
static NO_EMPTY_PATH: AtomicBool = AtomicBool::new(false);

/// Gives the unnamed file `file` the name `target`: through its descriptor where the kernel
/// allows that, else through its `/proc/self/fd` link (which costs a path lookup).
fn link(file: &fs::File, target: &CString) -> io::Result<()> {
    if !NO_EMPTY_PATH.load(Ordering::Relaxed) {
        // SAFETY: the descriptor is open (`file` is borrowed for the call) and both strings are
        // NUL-terminated and outlive the call, which only reads them.
        let rc = unsafe {
            libc::linkat(
                file.as_raw_fd(),
                c"".as_ptr(),
                libc::AT_FDCWD,
                target.as_ptr(),
                libc::AT_EMPTY_PATH,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if !matches!(
            err.raw_os_error(),
            Some(libc::ENOENT | libc::EPERM | libc::EINVAL)
        ) {
            return Err(err);
        }
        NO_EMPTY_PATH.store(true, Ordering::Relaxed);
    }
    let Ok(source) = CString::new(format!("/proc/self/fd/{}", file.as_raw_fd())) else {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    };
    // SAFETY: both arguments are NUL-terminated strings that outlive the call, which only reads
    // them; `file` keeps the descriptor the source names open until after it.
    let rc = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            source.as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Applies a plan. `dry_run` decides everything the same way but writes nothing.
pub fn apply(plan: &Plan, target: &Target, dry_run: bool) -> Result<Report> {
    let _lock = if dry_run { None } else { Some(lock(target)?) };
    apply_locked(plan, target, dry_run)
}

/// [`apply`] for a caller that already holds the lock.
pub fn apply_locked(plan: &Plan, target: &Target, dry_run: bool) -> Result<Report> {
    let mut installer = Installer::new(target, dry_run);
    for file in &plan.files {
        installer.put(file.clone())?;
    }
    installer.finish(&plan.tree, &plan.shortcuts)
}

/// The names in each folder, read once per folder when a planned file has no record: a file that
/// is not listed is missing without an `lstat` of its own, which matters when a whole menu of
/// tens of thousands of files is new.
#[derive(Default)]
struct Listings {
    /// `None` for a folder that could not be listed: its files are inspected one by one.
    dirs: HashMap<PathBuf, Option<HashSet<OsString>>>,
}

impl Listings {
    /// Whether `path` may exist; `false` only when its folder's listing says it does not.
    fn may_exist(&mut self, path: &Path) -> bool {
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            return true;
        };
        if !self.dirs.contains_key(dir) {
            self.dirs.insert(dir.to_owned(), list(dir));
        }
        match self.dirs.get(dir) {
            Some(Some(names)) => names.contains(name),
            _ => true,
        }
    }
}

/// The names in a folder: empty when it does not exist, `None` when it cannot be read.
fn list(dir: &Path) -> Option<HashSet<OsString>> {
    match fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|entry| entry.ok().map(|entry| entry.file_name()))
            .collect(),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Some(HashSet::new()),
        Err(_) => None,
    }
}

/// One file to put on disk, in a folder that exists.
struct Pending {
    path: PathBuf,
    content: Vec<u8>,
    sha256: Digest,
    mode: u32,
    /// Nothing was at the path when it was inspected.
    new: bool,
}

impl Pending {
    fn run(&self) -> Result<Record> {
        let meta = if self.new {
            create_new(&self.path, &self.content, self.mode)?
        } else {
            replace(&self.path, self.mode, false, |out| {
                out.write_all(&self.content)
            })?
        };
        Ok(Record {
            sha256: self.sha256,
            len: meta.len(),
            mtime_ns: mtime_ns(&meta),
        })
    }
}

/// At most this many threads write: the work is mostly the kernel's, in a handful of folders.
const MAX_WRITERS: usize = 4;
/// Files planned but not yet written, at most; it bounds the memory their text takes.
const QUEUE: usize = 256;

/// The threads that write files while the rest of the menu is still being planned: creating a
/// file is mostly the file system's work, and a whole menu is tens of thousands of them.
struct Writers {
    jobs: Option<mpsc::SyncSender<Pending>>,
    done: mpsc::Receiver<Result<(PathBuf, Record)>>,
    threads: Vec<std::thread::JoinHandle<()>>,
    /// Set on the first failure, so the files still queued are dropped rather than written.
    failed: Arc<AtomicBool>,
}

impl Writers {
    fn start(target: &Target) -> Result<Writers> {
        let count = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .min(MAX_WRITERS);
        let (jobs, queue) = mpsc::sync_channel::<Pending>(QUEUE);
        let queue = Arc::new(Mutex::new(queue));
        let (report, done) = mpsc::channel();
        let failed = Arc::new(AtomicBool::new(false));
        let mut writers = Writers {
            jobs: Some(jobs),
            done,
            threads: Vec::with_capacity(count),
            failed: Arc::clone(&failed),
        };
        for _ in 0..count {
            let (queue, report, failed) = (Arc::clone(&queue), report.clone(), Arc::clone(&failed));
            let thread = std::thread::Builder::new()
                .name("arcade-writer".to_owned())
                .spawn(move || write_queued(&queue, &report, &failed))
                .map_err(io_error("start a thread writing to", &target.data))?;
            writers.threads.push(thread);
        }
        Ok(writers)
    }

    /// Queues a file, first taking in what the writers finished; fails with the first failure.
    fn send(&mut self, pending: Pending, owned: &mut Vec<(PathBuf, Record)>) -> Result<()> {
        self.collect(owned, false)?;
        let sent = self.jobs.as_ref().map(|jobs| jobs.send(pending));
        if let Some(Ok(())) = sent {
            return Ok(());
        }
        // Every writer is gone, which only a panic does: let it surface here.
        self.join();
        Err(Error::WritersStopped)
    }

    /// Records what the writers finished; with `all`, waits for all of it.
    fn collect(&mut self, owned: &mut Vec<(PathBuf, Record)>, all: bool) -> Result<()> {
        loop {
            let next = if all {
                self.done.recv().ok()
            } else {
                self.done.try_recv().ok()
            };
            match next {
                Some(Ok(done)) => owned.push(done),
                Some(Err(err)) => return Err(err),
                None => return Ok(()),
            }
        }
    }

    /// Writes what is queued and returns once every file is on disk.
    fn finish(mut self, owned: &mut Vec<(PathBuf, Record)>) -> Result<()> {
        self.join();
        self.collect(owned, true)
    }

    /// Closes the queue and waits for the threads; a writer's panic is resumed here.
    fn join(&mut self) {
        self.jobs = None;
        for thread in self.threads.drain(..) {
            if let Err(panic) = thread.join() {
                std::panic::resume_unwind(panic);
            }
        }
    }
}

impl Drop for Writers {
    /// An install that stops early (an error) drops what is still queued and waits for the
    /// files being written, so nothing is written after it returned.
    fn drop(&mut self) {
        self.failed.store(true, Ordering::Relaxed);
        self.jobs = None;
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// A writer thread: writes queued files until the queue is closed.
fn write_queued(
    queue: &Mutex<mpsc::Receiver<Pending>>,
    report: &mpsc::Sender<Result<(PathBuf, Record)>>,
    failed: &AtomicBool,
) {
    loop {
        // The lock is held only while taking the next file. It is poisoned only if another
        // writer panicked, which `Writers::join` resumes; this one just stops.
        let next = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        let Ok(pending) = next else {
            return;
        };
        if failed.load(Ordering::Relaxed) {
            continue;
        }
        let result = pending.run().map(|record| (pending.path, record));
        if result.is_err() {
            failed.store(true, Ordering::Relaxed);
        }
        if report.send(result).is_err() {
            return;
        }
    }
}

/// Installs a plan's files as they are planned (see [`super::plan_each`]), then finishes with
/// the plan's tree: the merged menu, the removal of stale files and the manifest. Files under
/// `$XDG_CONFIG_HOME` (the merged menu, which refers to the others) are decided and written
/// only once every other file is on disk.
pub struct Installer<'a> {
    target: &'a Target,
    /// What the last sync recorded; each planned file's record is taken out of it, so what is
    /// left at the end is the stale files.
    manifest: Manifest,
    /// What an unfinished sync's journal lists, taken out the same way.
    journaled: HashMap<PathBuf, Vec<Digest>>,
    /// A journal was found: the manifest is saved and the journal removed even when nothing
    /// else changes.
    recovering: bool,
    /// Records taken over exactly as they were; when that is all of them and nothing else
    /// changed, the manifest need not be written again.
    kept_records: usize,
    recorded: usize,
    manifest_was_read: bool,
    dry_run: bool,
    report: Report,
    /// What the manifest will record.
    owned: Vec<(PathBuf, Record)>,
    listings: Listings,
    made_dirs: HashSet<PathBuf>,
    late: Vec<File>,
    /// This sync's journal, opened before its first write.
    journal: Option<Journal>,
    /// Files to write that are not in the journal yet; they go to the writers once they are.
    unjournaled: Vec<Pending>,
    writers: Option<Writers>,
    written: bool,
    direct: owned::Direct,
}

impl<'a> Installer<'a> {
    /// Starts an install over what the manifest and an unfinished sync's journal say. The
    /// caller holds the lock (or, for a dry run, need not). The temporary files an unfinished
    /// sync left go now: no other sync can be writing them.
    pub fn new(target: &'a Target, dry_run: bool) -> Installer<'a> {
        let (manifest, warning) = Manifest::load(target);
        let found = journal::read(&target.journal_path());
        let mut report = Report {
            dry_run,
            ..Report::default()
        };
        let manifest_was_read = warning.is_none();
        report.warnings.extend(warning);
        report.warnings.extend(found.warning);
        if !dry_run {
            if found.present {
                remove_unfinished_temporaries(target, found.files.keys());
            }
            // A manifest's temporary file can be left without a journal (a sync that only
            // removed files); the state folder is arcade's alone and small, so look every time.
            remove_temporary_files(&target.state);
        }
        Installer {
            target,
            owned: Vec::with_capacity(manifest.files.len()),
            kept_records: 0,
            recorded: manifest.files.len(),
            manifest,
            journaled: found.files,
            recovering: found.present,
            manifest_was_read,
            dry_run,
            report,
            listings: Listings::default(),
            made_dirs: HashSet::new(),
            late: Vec::new(),
            journal: None,
            unjournaled: Vec::new(),
            writers: None,
            written: false,
            direct: owned::Direct::default(),
        }
    }

    /// The menu as the previous sync left it.
    pub fn previous_tree(&self) -> &Tree {
        &self.manifest.tree
    }

    /// Decides about one file of the plan and, if it is to be written, queues it.
    pub fn put(&mut self, file: File) -> Result<()> {
        if file.root == Root::Config {
            self.late.push(file);
            return Ok(());
        }
        if let Some(pending) = self.decide(file)? {
            self.unjournaled.push(pending);
            if self.unjournaled.len() >= JOURNAL_BATCH {
                self.send_unjournaled()?;
            }
        }
        Ok(())
    }

    /// Journals the files waiting for it, then hands them to the writers.
    fn send_unjournaled(&mut self) -> Result<()> {
        if self.unjournaled.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.unjournaled);
        self.write_journal(&batch)?;
        let writers = match &mut self.writers {
            Some(writers) => writers,
            None => self.writers.insert(Writers::start(self.target)?),
        };
        for pending in batch {
            writers.send(pending, &mut self.owned)?;
        }
        Ok(())
    }

    /// Adds files about to be written to the journal, opening it first if need be.
    fn write_journal(&mut self, batch: &[Pending]) -> Result<()> {
        let journal = match &mut self.journal {
            Some(journal) => journal,
            None => self
                .journal
                .insert(Journal::open(&self.target.journal_path())?),
        };
        journal.append(
            batch
                .iter()
                .map(|pending| (pending.path.as_path(), &pending.sha256)),
        )
    }

    /// Takes a record over as it was.
    fn keep(&mut self, path: PathBuf, record: Record) {
        self.kept_records += 1;
        self.owned.push((path, record));
    }

    /// What to do with one file: `Some` when it is to be written, after which its folder exists.
    fn decide(&mut self, file: File) -> Result<Option<Pending>> {
        let path = self.target.resolve(file.root, &file.path);
        if !owned::is_arcade_file(self.target, &path) {
            // A planner that puts files where removal will not look would leave them behind.
            return Err(Error::NotArcadePath { path });
        }
        let hash = sha256(&file.content);
        let Some(new) = self.judge(&path, hash)? else {
            return Ok(None);
        };
        self.report.written += 1;
        if self.dry_run {
            return Ok(None);
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        if !self.made_dirs.contains(dir) {
            create_dirs(dir)?;
            self.made_dirs.insert(dir.to_owned());
        }
        self.written = true;
        Ok(Some(Pending {
            path,
            sha256: hash,
            mode: if file.executable { 0o755 } else { 0o644 },
            new,
            content: file.content,
        }))
    }

    /// Whether a planned file with content `hash` is to be written at `path`: `Some(new)` when
    /// it is (`new` when nothing is there), `None` when it stays as it is, which is reported
    /// and recorded here.
    fn judge(&mut self, path: &Path, hash: Digest) -> Result<Option<bool>> {
        let record = if self.manifest.files.is_empty() {
            None
        } else {
            self.manifest.files.remove(path)
        };
        let journaled = if self.journaled.is_empty() {
            Vec::new()
        } else {
            self.journaled.remove(path).unwrap_or_default()
        };
        let known = Known {
            record: record.as_ref(),
            journaled: &journaled,
        };
        let mut state = if !known.any() && !self.listings.may_exist(path) {
            OnDisk::Missing
        } else {
            inspect(path, known, Look::Quick)?
        };
        // Before arcade's file is overwritten, its content must prove it is still arcade's.
        if let OnDisk::Ours {
            record: now,
            hashed,
        } = &state
            && now.sha256 != hash
            && !hashed
        {
            state = inspect(path, known, Look::Content)?;
        }
        match state {
            OnDisk::Missing => Ok(Some(true)),
            OnDisk::Emptied => Ok(Some(false)),
            OnDisk::Ours { record: now, .. } if now.sha256 == hash => {
                self.report.unchanged += 1;
                match record {
                    Some(record) if record == now => self.keep(path.to_owned(), record),
                    _ => self.owned.push((path.to_owned(), now)),
                }
                Ok(None)
            }
            OnDisk::Ours { .. } => Ok(Some(false)),
            OnDisk::Other { content_hash, .. } if content_hash == Some(hash) => {
                // Already exactly what we want (e.g. the manifest was lost): adopt it.
                self.report.unchanged += 1;
                let meta = fs::metadata(path).map_err(io_error("inspect", path))?;
                self.owned.push((path.to_owned(), Record::of(hash, &meta)));
                Ok(None)
            }
            OnDisk::Other { .. } if record.is_some() => {
                // Still recorded, so later syncs and `clean` keep reporting it as the user's
                // change instead of forgetting it (and then calling it "not ours").
                self.report.kept_modified.push(path.to_owned());
                if let Some(record) = record {
                    self.keep(path.to_owned(), record);
                }
                Ok(None)
            }
            // Generated by arcade, at arcade's path, but the manifest forgot it: ours again.
            OnDisk::Other { marked: true, .. } => Ok(Some(false)),
            OnDisk::Other { .. } => {
                self.report.skipped_foreign.push(path.to_owned());
                Ok(None)
            }
        }
    }

    /// Writes what is still queued, then the merged menu, removes stale files, saves the
    /// manifest recording `tree` and `shortcuts`, and removes the journal.
    pub fn finish(mut self, tree: &Tree, shortcuts: &[Shortcut]) -> Result<Report> {
        self.send_unjournaled()?;
        if let Some(writers) = self.writers.take() {
            writers.finish(&mut self.owned)?;
        }
        for file in std::mem::take(&mut self.late) {
            if let Some(pending) = self.decide(file)? {
                self.write_journal(std::slice::from_ref(&pending))?;
                let record = pending.run()?;
                self.owned.push((pending.path, record));
            }
        }
        self.listings = Listings::default();
        let removed_any = self.remove_stale()?;
        if self.dry_run {
            return Ok(self.report);
        }
        // A sync that changed nothing leaves the manifest as it is: rewriting (and syncing) a
        // large one costs more than everything else such a sync does.
        let unchanged = self.manifest_was_read
            && !self.recovering
            && !self.written
            && !removed_any
            && self.kept_records == self.recorded
            && self.owned.len() == self.recorded
            && self.manifest.tree == *tree
            && self.manifest.shortcuts == shortcuts
            && self.target.manifest_path().exists();
        if !unchanged {
            self.owned
                .sort_unstable_by(|a, b| a.0.as_os_str().cmp(b.0.as_os_str()));
            save_manifest(
                self.target,
                &ManifestRef {
                    version: MANIFEST_VERSION,
                    files: &self.owned,
                    tree,
                    shortcuts,
                },
            )?;
        }
        // The manifest now records everything the journal listed: written, removed or kept.
        if self.journal.take().is_some() || self.recovering {
            remove(&self.target.journal_path())?;
        }
        remove_empty_dirs(self.target);
        Ok(self.report)
    }

    /// Removes the files the manifest or the journal names that were not planned this time,
    /// in path order so reports list them in a stable order; returns whether any went.
    fn remove_stale(&mut self) -> Result<bool> {
        let records = std::mem::take(&mut self.manifest.files);
        let journaled = std::mem::take(&mut self.journaled);
        let mut removed_any = false;
        for (path, known) in leftovers(&records, &journaled) {
            let swept = sweep(
                self.target,
                &mut self.direct,
                path,
                known,
                self.dry_run,
                &mut self.report,
            )?;
            match swept {
                Swept::Removed => removed_any = true,
                Swept::Kept => {
                    if let Some(record) = known.record {
                        self.keep(path.clone(), record.clone());
                    }
                }
                Swept::Gone => {}
            }
        }
        Ok(removed_any)
    }
}

/// Every path of `records` and `journaled`, in the order of their bytes, with what is known of
/// each.
fn leftovers<'a>(
    records: &'a HashMap<PathBuf, Record>,
    journaled: &'a HashMap<PathBuf, Vec<Digest>>,
) -> Vec<(&'a PathBuf, Known<'a>)> {
    let mut paths: Vec<(&PathBuf, Known)> = records
        .iter()
        .map(|(path, record)| {
            let journaled = journaled.get(path).map_or(&[][..], Vec::as_slice);
            (
                path,
                Known {
                    record: Some(record),
                    journaled,
                },
            )
        })
        .chain(
            journaled
                .iter()
                .filter(|(path, _)| !records.contains_key(*path))
                .map(|(path, hashes)| {
                    (
                        path,
                        Known {
                            record: None,
                            journaled: hashes,
                        },
                    )
                }),
        )
        .collect();
    paths.sort_unstable_by(|a, b| a.0.as_os_str().cmp(b.0.as_os_str()));
    paths
}

/// What became of a file arcade no longer plans.
enum Swept {
    /// It was arcade's and is gone now (or would be, in a dry run).
    Removed,
    /// It is kept: changed since arcade wrote it, or out of reach; the manifest keeps its record.
    Kept,
    /// Nothing to do, and nothing to remember: already missing, or never arcade's.
    Gone,
}

/// Removes a file arcade no longer plans if it is arcade's ([`owned`]) and its content is what
/// the manifest recorded or the journal listed; reports the rest.
fn sweep(
    target: &Target,
    direct: &mut owned::Direct,
    path: &Path,
    known: Known<'_>,
    dry_run: bool,
    report: &mut Report,
) -> Result<Swept> {
    if !owned::is_arcade_file(target, path) {
        report.warnings.push(format!(
            "left {} alone: arcade's manifest or journal names it, but arcade puts no file there",
            path.display()
        ));
        return Ok(Swept::Gone);
    }
    if !direct.reached(target, path) {
        report.warnings.push(format!(
            "left {} alone: a folder on its way is a symbolic link",
            path.display()
        ));
        return Ok(if known.record.is_some() {
            Swept::Kept
        } else {
            Swept::Gone
        });
    }
    match inspect(path, known, Look::Content)? {
        OnDisk::Missing => Ok(Swept::Gone),
        OnDisk::Ours { .. } | OnDisk::Emptied => {
            report.removed += 1;
            if !dry_run {
                remove(path)?;
            }
            Ok(Swept::Removed)
        }
        OnDisk::Other { .. } if known.record.is_some() => {
            report.kept_modified.push(path.to_owned());
            Ok(Swept::Kept)
        }
        // Listed only by a journal, and not what that sync wrote: not arcade's.
        OnDisk::Other { .. } => Ok(Swept::Gone),
    }
}

/// Removes the temporary files an unfinished sync may have left in the folders of the files its
/// journal lists, where it wrote them.
fn remove_unfinished_temporaries<'p>(target: &Target, paths: impl Iterator<Item = &'p PathBuf>) {
    let mut dirs: HashSet<&Path> = HashSet::new();
    for path in paths {
        if owned::is_arcade_file(target, path)
            && let Some(dir) = path.parent()
        {
            dirs.insert(dir);
        }
    }
    let mut direct = owned::Direct::default();
    for dir in dirs {
        if direct.reached_folder(target, dir) {
            remove_temporary_files(dir);
        }
    }
}

/// Writes the manifest (synced to disk, then renamed into place).
///
/// The files it records are not synced one by one (20,000 fsyncs would take minutes) nor with a
/// `syncfs` (which flushes every process's data on the disk and took seconds here). A crash can
/// then leave a recorded file empty; [`inspect`] treats an empty file where the manifest recorded
/// content as crash damage and has it written again, since arcade never writes an empty file.
fn save_manifest(target: &Target, manifest: &ManifestRef) -> Result<()> {
    let path = target.manifest_path();
    owned::own_dir(&target.state)?;
    replace(&path, 0o644, true, |out| {
        let mut out = io::BufWriter::with_capacity(64 << 10, out);
        serde_json::to_writer(&mut out, manifest)?;
        out.flush()
    })
    .map(drop)
}

fn remove(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => Err(io_error("remove", path)(err)),
        _ => Ok(()),
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

/// Removes every file arcade wrote that is still as written (those the manifest records and
/// those an unfinished sync's journal lists), then the manifest, the journal and the lock.
pub fn clean(target: &Target, dry_run: bool) -> Result<Report> {
    owned::check_own_dir(&target.state)?;
    let _lock = if dry_run { None } else { Some(lock(target)?) };
    let (manifest, warning) = Manifest::load(target);
    let found = journal::read(&target.journal_path());
    let mut report = Report {
        dry_run,
        ..Report::default()
    };
    report.warnings.extend(warning);
    report.warnings.extend(found.warning);
    let mut direct = owned::Direct::default();
    for (path, known) in leftovers(&manifest.files, &found.files) {
        sweep(target, &mut direct, path, known, dry_run, &mut report)?;
    }
    if !dry_run {
        if found.present {
            remove_unfinished_temporaries(target, found.files.keys());
        }
        remove_temporary_files(&target.state);
        remove(&target.manifest_path())?;
        remove(&target.journal_path())?;
        remove_empty_dirs(target);
        // The lock file is ours too. Removing it while holding it is safe because `lock` checks
        // that the file it locked is still the one at the path.
        remove(&target.lock_path())?;
        let _ = fs::remove_dir(&target.state);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The folders of a test's home (`owned`'s tests use them too).
    pub(super) fn target(dir: &Path) -> Target {
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
    fn an_emptied_file_is_crash_damage_and_written_again() {
        let dir = tempfile::tempdir().unwrap();
        let target = target(dir.path());
        apply(
            &plan_of(&[
                ("applications/arcade/x.desktop", "1"),
                ("applications/arcade/y.desktop", "2"),
            ]),
            &target,
            false,
        )
        .unwrap();
        // What a crash before the data reached the disk leaves: the file, empty.
        fs::write(target.data.join("applications/arcade/x.desktop"), "").unwrap();
        // A file the user edited stays theirs.
        fs::write(target.data.join("applications/arcade/y.desktop"), "mine").unwrap();
        let report = apply(
            &plan_of(&[
                ("applications/arcade/x.desktop", "1"),
                ("applications/arcade/y.desktop", "2"),
            ]),
            &target,
            false,
        )
        .unwrap();
        assert_eq!(report.written, 1);
        assert_eq!(
            report.kept_modified,
            [target.data.join("applications/arcade/y.desktop")]
        );
        assert_eq!(
            fs::read_to_string(target.data.join("applications/arcade/x.desktop")).unwrap(),
            "1"
        );
    }

    #[test]
    fn the_next_sync_undoes_one_that_stopped_after_writing() {
        let dir = tempfile::tempdir().unwrap();
        let target = target(dir.path());
        let a = plan_of(&[
            ("applications/arcade/x.desktop", "1"),
            ("applications/arcade/y.desktop", "2"),
        ]);
        apply(&a, &target, false).unwrap();
        // A sync to another plan writes its files, then stops before its manifest (an error,
        // or a kill): the files it changed and added are listed only in its journal.
        let h = plan_of(&[
            ("applications/arcade/x.desktop", "changed"),
            ("applications/arcade/z.desktop", "new"),
        ]);
        let mut installer = Installer::new(&target, false);
        for file in &h.files {
            installer.put(file.clone()).unwrap();
        }
        installer.send_unjournaled().unwrap();
        installer
            .writers
            .take()
            .unwrap()
            .finish(&mut Vec::new())
            .unwrap();
        drop(installer);
        assert!(target.journal_path().exists());
        let planted = target.data.join("applications/arcade/.arcade-Ab12Cd");
        fs::write(&planted, "half a file").unwrap();

        let report = apply(&a, &target, false).unwrap();
        assert!(report.kept_modified.is_empty(), "{report:?}");
        assert!(report.skipped_foreign.is_empty(), "{report:?}");
        assert_eq!((report.written, report.removed), (1, 1), "{report:?}");
        let read = |name: &str| fs::read_to_string(target.data.join(name)).ok();
        assert_eq!(read("applications/arcade/x.desktop").as_deref(), Some("1"));
        assert_eq!(read("applications/arcade/z.desktop"), None);
        assert!(!planted.exists());
        assert!(!target.journal_path().exists());
    }

    #[test]
    fn writes_then_does_nothing_then_removes_stale() {
        let dir = tempfile::tempdir().unwrap();
        let target = target(dir.path());
        let report = apply(
            &plan_of(&[
                ("applications/arcade/x.desktop", "1"),
                ("applications/arcade/y.desktop", "2"),
            ]),
            &target,
            false,
        )
        .unwrap();
        assert_eq!(
            (report.written, report.unchanged, report.removed),
            (2, 0, 0)
        );
        let report = apply(
            &plan_of(&[
                ("applications/arcade/x.desktop", "1"),
                ("applications/arcade/y.desktop", "2"),
            ]),
            &target,
            false,
        )
        .unwrap();
        assert_eq!(
            (report.written, report.unchanged, report.removed),
            (0, 2, 0)
        );
        let report = apply(
            &plan_of(&[("applications/arcade/x.desktop", "changed")]),
            &target,
            false,
        )
        .unwrap();
        assert_eq!(
            (report.written, report.unchanged, report.removed),
            (1, 0, 1)
        );
        assert!(!target.data.join("applications/arcade/y.desktop").exists());
        assert_eq!(
            fs::read_to_string(target.data.join("applications/arcade/x.desktop")).unwrap(),
            "changed"
        );
    }

    #[test]
    fn leaves_foreign_and_edited_files_alone() {
        let dir = tempfile::tempdir().unwrap();
        let target = target(dir.path());
        fs::create_dir_all(target.data.join("applications/arcade")).unwrap();
        fs::write(
            target.data.join("applications/arcade/foreign.desktop"),
            "user's",
        )
        .unwrap();
        apply(
            &plan_of(&[("applications/arcade/mine.desktop", "1")]),
            &target,
            false,
        )
        .unwrap();
        fs::write(
            target.data.join("applications/arcade/mine.desktop"),
            "edited by the user",
        )
        .unwrap();

        let report = apply(
            &plan_of(&[
                ("applications/arcade/foreign.desktop", "ours"),
                ("applications/arcade/mine.desktop", "2"),
            ]),
            &target,
            false,
        )
        .unwrap();
        assert_eq!(
            report.skipped_foreign,
            [target.data.join("applications/arcade/foreign.desktop")]
        );
        assert_eq!(
            report.kept_modified,
            [target.data.join("applications/arcade/mine.desktop")]
        );
        assert_eq!(
            fs::read_to_string(target.data.join("applications/arcade/foreign.desktop")).unwrap(),
            "user's"
        );
        assert_eq!(
            fs::read_to_string(target.data.join("applications/arcade/mine.desktop")).unwrap(),
            "edited by the user"
        );

        // An edited file stays recorded: the next sync and clean still call it the user's change.
        let report = apply(
            &plan_of(&[("applications/arcade/x.desktop", "3")]),
            &target,
            false,
        )
        .unwrap();
        assert_eq!(
            report.kept_modified,
            [target.data.join("applications/arcade/mine.desktop")]
        );
        assert!(report.skipped_foreign.is_empty());

        let report = clean(&target, false).unwrap();
        assert_eq!(report.removed, 1);
        assert_eq!(
            report.kept_modified,
            [target.data.join("applications/arcade/mine.desktop")]
        );
        assert!(
            target
                .data
                .join("applications/arcade/foreign.desktop")
                .exists()
        );
        assert!(
            target
                .data
                .join("applications/arcade/mine.desktop")
                .exists()
        );
    }

    #[test]
    fn clean_removes_the_lock_and_a_later_sync_locks_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let target = target(dir.path());
        apply(
            &plan_of(&[("applications/arcade/x.desktop", "1")]),
            &target,
            false,
        )
        .unwrap();
        assert!(target.lock_path().exists());
        clean(&target, false).unwrap();
        assert!(!target.lock_path().exists());
        assert!(!target.state.exists());
        apply(
            &plan_of(&[("applications/arcade/x.desktop", "1")]),
            &target,
            false,
        )
        .unwrap();
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
    fn many_files_go_through_the_writer_threads() {
        let dir = tempfile::tempdir().unwrap();
        let target = target(dir.path());
        let names: Vec<(String, String)> = (0..1000)
            .map(|n| {
                (
                    format!("applications/arcade/{n}.desktop"),
                    format!("content {n}"),
                )
            })
            .collect();
        let files: Vec<(&str, &str)> = names
            .iter()
            .map(|(path, content)| (path.as_str(), content.as_str()))
            .collect();
        let report = apply(&plan_of(&files), &target, false).unwrap();
        assert_eq!((report.written, report.unchanged), (1000, 0));
        for (path, content) in &names {
            assert_eq!(
                fs::read_to_string(target.data.join(path)).unwrap(),
                *content
            );
            let mode = fs::metadata(target.data.join(path)).unwrap().mode();
            assert_eq!(mode & 0o777, 0o644, "{path}");
        }
        // No temporary file is left behind.
        assert_eq!(
            fs::read_dir(target.data.join("applications/arcade"))
                .unwrap()
                .count(),
            1000
        );
        let report = apply(&plan_of(&files), &target, false).unwrap();
        assert_eq!((report.written, report.unchanged), (0, 1000));
    }

    #[test]
    fn a_sync_that_changes_nothing_leaves_the_manifest_alone() {
        let dir = tempfile::tempdir().unwrap();
        let target = target(dir.path());
        apply(
            &plan_of(&[
                ("applications/arcade/x.desktop", "1"),
                ("applications/arcade/y.desktop", "2"),
            ]),
            &target,
            false,
        )
        .unwrap();
        let before = fs::metadata(target.manifest_path()).unwrap().ino();
        apply(
            &plan_of(&[
                ("applications/arcade/x.desktop", "1"),
                ("applications/arcade/y.desktop", "2"),
            ]),
            &target,
            false,
        )
        .unwrap();
        assert_eq!(fs::metadata(target.manifest_path()).unwrap().ino(), before);
        // Any change, even a removal only, records the new state.
        apply(
            &plan_of(&[("applications/arcade/x.desktop", "1")]),
            &target,
            false,
        )
        .unwrap();
        assert_ne!(fs::metadata(target.manifest_path()).unwrap().ino(), before);
    }

    #[test]
    fn the_manifest_keeps_its_format() {
        let dir = tempfile::tempdir().unwrap();
        let target = target(dir.path());
        apply(
            &plan_of(&[
                ("applications/arcade/y.desktop", "2"),
                ("applications/arcade/x.desktop", "1"),
            ]),
            &target,
            false,
        )
        .unwrap();
        let text = fs::read_to_string(target.manifest_path()).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        let files = json["files"].as_object().unwrap();
        let x = target
            .data
            .join("applications/arcade/x.desktop")
            .display()
            .to_string();
        let y = target
            .data
            .join("applications/arcade/y.desktop")
            .display()
            .to_string();
        assert_eq!(files.keys().collect::<Vec<_>>(), [&x, &y], "sorted by path");
        assert_eq!(files[&x]["sha256"], super::super::hex(&sha256(b"1")));
        assert_eq!(files[&x]["len"], 1);
        // What an earlier arcade wrote is read back as it was.
        let (manifest, warning) = Manifest::load(&target);
        assert_eq!(warning, None);
        assert_eq!(manifest.files[Path::new(&x)].sha256, sha256(b"1"));
        fs::write(
            target.manifest_path(),
            text.replace(&files[&x]["sha256"].as_str().unwrap()[..2], "zz"),
        )
        .unwrap();
        assert!(
            Manifest::load(&target).1.is_some(),
            "a digest that is not hex is refused"
        );
    }

    #[test]
    fn a_file_that_appears_before_it_is_linked_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.desktop");
        fs::write(&path, "someone else's").unwrap();
        let meta = create_new(&path, b"ours", 0o644).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "ours");
        assert_eq!(meta.len(), 4);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn dry_run_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let target = target(dir.path());
        let report = apply(
            &plan_of(&[("applications/arcade/x.desktop", "1")]),
            &target,
            true,
        )
        .unwrap();
        assert_eq!(report.written, 1);
        assert!(!target.data.join("applications/arcade/x.desktop").exists());
        assert!(!target.manifest_path().exists());
    }

    #[test]
    fn adopts_identical_files_when_the_manifest_is_lost() {
        let dir = tempfile::tempdir().unwrap();
        let target = target(dir.path());
        apply(
            &plan_of(&[("applications/arcade/x.desktop", "1")]),
            &target,
            false,
        )
        .unwrap();
        fs::write(target.manifest_path(), "{not json").unwrap();
        let report = apply(
            &plan_of(&[("applications/arcade/x.desktop", "1")]),
            &target,
            false,
        )
        .unwrap();
        assert_eq!((report.written, report.unchanged), (0, 1));
        assert_eq!(report.warnings.len(), 1);
        // Once adopted it is ours again, so clean removes it.
        assert_eq!(clean(&target, false).unwrap().removed, 1);
    }
}
