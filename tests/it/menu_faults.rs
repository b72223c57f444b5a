//! Faults during a menu sync and hostile state around it (issue 12, items 1–4), through the real
//! binary: syncs killed partway, or failing on a read-only folder or a full disk (real tmpfs
//! mounts), are finished or undone by the next sync or `menu clean`; a tampered manifest removes
//! only arcade's own files; symbolic links, FIFOs and umask 000 in arcade's folders; and a
//! hostile Harbor that cannot push a sync's memory past 100 MB.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{self, Arcade, Home, Run};

const REGISTRY: &str = "images.example.org";

/// Catalog text in skaha's shape. Each image's digest is made from its reference and `version`,
/// so two catalogs can hold the same reference with entries that differ.
fn catalog_text(ids: &[String], version: &str) -> String {
    let entries: Vec<Value> = ids
        .iter()
        .map(|id| {
            let digest =
                ring::digest::digest(&ring::digest::SHA256, format!("{id} {version}").as_bytes());
            let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
            json!({"id": id, "types": ["desktop-app"], "digest": format!("sha256:{hex}")})
        })
        .collect();
    serde_json::to_string(&entries).unwrap()
}

/// `projects` × `repositories` × `tags` references, projects numbered from `first`.
fn ids(first: usize, projects: usize, repositories: usize, tags: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for p in first..first + projects {
        for r in 0..repositories {
            for t in 0..tags {
                ids.push(format!("{REGISTRY}/project{p}/app{r}:1.{t}"));
            }
        }
    }
    ids
}

/// Catalogs A and H, as the kill loop used them: H keeps 40 of A's 160 images with new
/// digests (their entries change), drops the other 120 (they go stale) and adds 240 (new
/// entries, new project folders), so a sync from A to H writes, rewrites and removes.
fn catalogs_a_and_h(home: &Home) -> (PathBuf, PathBuf) {
    let a = ids(0, 8, 4, 5);
    let kept = ids(0, 2, 4, 5);
    let added = ids(20, 8, 6, 5);
    let a_path = home.write("a.json", &catalog_text(&a, "a"));
    let h_text = {
        let mut h: Vec<Value> = serde_json::from_str(&catalog_text(&kept, "h")).unwrap();
        h.extend(serde_json::from_str::<Vec<Value>>(&catalog_text(&added, "h")).unwrap());
        serde_json::to_string(&h).unwrap()
    };
    (a_path, home.write("h.json", &h_text))
}

fn sync(home: &Home, catalog: &Path) -> Arcade {
    home.arcade()
        .args(["menu", "sync", "--source", "file", "--catalog"])
        .args([catalog])
}

#[track_caller]
fn synced(home: &Home, catalog: &Path) -> Value {
    sync(home, catalog).args(["--json"]).ok().json()
}

/// The folders arcade's menu files go in.
fn menu_folders(home: &Home) -> [PathBuf; 5] {
    [
        home.data().join("applications"),
        home.data().join("desktop-directories"),
        home.data().join("icons"),
        home.config().join("menus"),
        home.desktop(),
    ]
}

/// Every file in the menu folders, hidden ones included, by its path below the home.
fn menu_files(home: &Home) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                walk(base, &path, out);
            } else {
                let content = if kind.is_file() {
                    std::fs::read(&path).unwrap()
                } else {
                    b"(not a regular file)".to_vec()
                };
                out.insert(path.strip_prefix(base).unwrap().to_owned(), content);
            }
        }
    }
    let mut files = BTreeMap::new();
    for folder in menu_folders(home) {
        walk(home.path(), &folder, &mut files);
    }
    files
}

/// The names in a folder, sorted; none when it does not exist.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// How a home's menu differs from the expected one after a sync.
#[derive(Debug, Default)]
struct Damage {
    /// Files that should not be there (stale entries, temporary files).
    leftovers: Vec<PathBuf>,
    /// Files whose content is not the expected one (a menu stuck on the old catalog).
    stuck: Vec<PathBuf>,
    missing: Vec<PathBuf>,
    /// Files the sync called the user's edits or not arcade's.
    misjudged: Vec<String>,
    /// Files in arcade's state and cache folders besides the manifest, lock and catalog.
    extra_state: Vec<String>,
}

impl Damage {
    fn is_none(&self) -> bool {
        self.leftovers.is_empty()
            && self.stuck.is_empty()
            && self.missing.is_empty()
            && self.misjudged.is_empty()
            && self.extra_state.is_empty()
    }
}

/// Compares the home's menu with `expected` and the sync's summary with a clean one.
fn damage(home: &Home, expected: &BTreeMap<PathBuf, Vec<u8>>, summary: &Value) -> Damage {
    let found = menu_files(home);
    let mut damage = Damage::default();
    for (path, content) in &found {
        match expected.get(path) {
            None => damage.leftovers.push(path.clone()),
            Some(wanted) if wanted != content => damage.stuck.push(path.clone()),
            Some(_) => {}
        }
    }
    damage.missing = expected
        .keys()
        .filter(|path| !found.contains_key(*path))
        .cloned()
        .collect();
    for key in ["kept_modified", "skipped_foreign"] {
        for path in summary[key].as_array().into_iter().flatten() {
            damage.misjudged.push(format!("{key}: {path}"));
        }
    }
    let state = names_in(&home.data().join("arcade"));
    let cache = names_in(&home.cache().join("arcade"));
    damage.extra_state = state
        .into_iter()
        .filter(|name| name != "manifest.json" && name != "sync.lock")
        .chain(cache.into_iter().filter(|name| name != "catalog.json"))
        .collect();
    damage
}

/// The menu files a fresh home gets from `catalog_text`: what a healed home must hold.
fn expected_menu(name: &str, text: &str) -> BTreeMap<PathBuf, Vec<u8>> {
    let reference = Home::new();
    let catalog = reference.write(name, text);
    synced(&reference, &catalog);
    menu_files(&reference)
}

/// A small random number generator (splitmix64), seeded from the clock and printed, so a
/// failing run's kill points can be told apart.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// The kill loop, shortened: sync A, then again and again start a sync to H, kill -9 it
/// at a random point, and sync back to A. Every sync back must leave exactly A's menu: nothing
/// stuck on H, no leftovers, no temporary files, nothing taken for the user's edits.
#[test]
fn killed_syncs_are_finished_or_undone_by_the_next() {
    const ROUNDS: usize = 12;
    let home = Home::new();
    let (a, h) = catalogs_a_and_h(&home);
    let expected = expected_menu("a.json", &std::fs::read_to_string(&a).unwrap());
    synced(&home, &a);

    // How long a whole sync from A to H takes here (not a check: the kills are spread over it).
    let scratch = Home::new();
    let (scratch_a, scratch_h) = catalogs_a_and_h(&scratch);
    synced(&scratch, &scratch_a);
    let started = Instant::now();
    synced(&scratch, &scratch_h);
    let whole = started.elapsed();

    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let mut random = Random(seed);
    let mut report = Vec::new();
    for round in 0..ROUNDS {
        let delay = whole.mul_f64((random.next() % 1000) as f64 / 900.0);
        let mut arcade = sync(&home, &h);
        arcade.command.stdout(Stdio::null()).stderr(Stdio::null());
        let mut child = arcade.command.spawn().expect("start arcade");
        std::thread::sleep(delay);
        // A sync that already finished cannot be killed; that round then checks a plain sync.
        let _ = child.kill();
        child.wait().expect("reap arcade");
        let back = synced(&home, &a);
        let found = damage(&home, &expected, &back);
        if !found.is_none() {
            report.push(format!("round {round}, killed after {delay:?}: {found:#?}"));
        }
    }
    assert!(
        report.is_empty(),
        "{} of {ROUNDS} rounds left damage (seed {seed}, a whole sync took {whole:?}):\n{}",
        report.len(),
        report.join("\n")
    );
}

/// A tmpfs mounted over a folder for one test (the tests run as root, as `.ci/run` does),
/// unmounted when dropped.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    #[track_caller]
    fn mount(path: &Path, options: &str) -> Tmpfs {
        std::fs::create_dir_all(path).unwrap();
        let mount = support::require_tool("mount", "mount");
        let output = Command::new(mount)
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(path)
            .output()
            .expect("run mount");
        assert!(
            output.status.success(),
            "mounting a tmpfs on {} failed; these tests need root (CAP_SYS_ADMIN), as .ci/run \
             runs them: {}",
            path.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        Tmpfs {
            path: path.to_owned(),
        }
    }

    #[track_caller]
    fn remount(&self, how: &str) {
        let output = Command::new(support::require_tool("mount", "mount"))
            .args(["-o", &format!("remount,{how}")])
            .arg(&self.path)
            .output()
            .expect("run mount");
        assert!(
            output.status.success(),
            "remounting {} {how} failed: {}",
            self.path.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let umount = support::require_tool("umount", "mount");
        let done = Command::new(&umount)
            .arg(&self.path)
            .status()
            .is_ok_and(|status| status.success());
        if !done {
            // Something still has it open: detach it now, it goes when that is closed.
            let _ = Command::new(&umount).arg("-l").arg(&self.path).status();
        }
    }
}

/// A sync that fails on a read-only `menus/` folder (after writing every entry) is undone by
/// the next sync, and `menu clean` after such a failure removes everything.
#[test]
fn a_sync_failing_on_a_read_only_folder_is_undone_by_the_next_and_by_clean() {
    let home = Home::new();
    let (a, h) = catalogs_a_and_h(&home);
    let expected = expected_menu("a.json", &std::fs::read_to_string(&a).unwrap());
    let menus = Tmpfs::mount(&home.config().join("menus"), "size=1m");
    synced(&home, &a);

    menus.remount("ro");
    let run = sync(&home, &h).fails();
    assert!(run.error_line().contains("Read-only file system"), "{run}");
    menus.remount("rw");
    let back = synced(&home, &a);
    let found = damage(&home, &expected, &back);
    assert!(found.is_none(), "{found:#?}\n{}", home.listing());

    menus.remount("ro");
    sync(&home, &h).fails();
    menus.remount("rw");
    home.arcade().args(["menu", "clean"]).ok();
    let left = menu_files(&home);
    assert!(left.is_empty(), "clean left {:#?}", left.keys());
}

/// A sync that fills the disk is undone by the next sync (on the disk still full), and
/// `menu clean` after such a failure removes everything.
#[test]
fn a_sync_failing_on_a_full_disk_is_undone_by_the_next_and_by_clean() {
    let home = Home::new();
    let small = ids(0, 2, 2, 5);
    let mut big = small.clone();
    big.extend(ids(10, 12, 10, 5));
    let a = home.write("a.json", &catalog_text(&small, "a"));
    let h = home.write("h.json", &catalog_text(&big, "a"));
    let expected = expected_menu("a.json", &catalog_text(&small, "a"));
    // Room for A's 20 entries, icons and manifest in 4 KiB pages, not for H's 620 entries.
    let data = Tmpfs::mount(&home.data(), "size=512k");
    synced(&home, &a);

    let run = sync(&home, &h).fails();
    assert!(
        run.error_line().contains("No space left on device"),
        "{run}"
    );
    let entries = names_in(&home.data().join("applications/arcade")).len();
    assert!(
        entries > small.len(),
        "the failed sync wrote no extra entry"
    );
    let back = synced(&home, &a);
    let found = damage(&home, &expected, &back);
    assert!(found.is_none(), "{found:#?}\n{}", home.listing());

    sync(&home, &h).fails();
    home.arcade().args(["menu", "clean"]).ok();
    let left = menu_files(&home);
    assert!(
        left.is_empty(),
        "clean left {} files: {:#?}",
        left.len(),
        left.keys()
    );
    drop(data);
}

/// Temporary files a killed sync left beside the manifest and the saved catalog go with the
/// next sync; a user's file of a similar name stays.
#[test]
fn temporary_files_beside_the_manifest_and_catalog_are_removed() {
    let home = Home::new();
    let a = home.write("a.json", &catalog_text(&ids(0, 1, 2, 2), "a"));
    synced(&home, &a);
    let planted = [
        home.data().join("arcade/.arcade-Xy12Ab"),
        home.cache().join("arcade/.arcade-Qw34Er"),
    ];
    for path in &planted {
        std::fs::write(path, "half a manifest").unwrap();
    }
    let theirs = home.cache().join("arcade/.arcade-notes");
    std::fs::write(&theirs, "mine").unwrap();
    synced(&home, &a);
    for path in &planted {
        assert!(!path.exists(), "{} is still there", path.display());
    }
    assert_eq!(std::fs::read_to_string(&theirs).unwrap(), "mine");
}

fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Adds `victims` to the manifest as files arcade wrote, with the size and time they have on
/// disk, as a tamperer (or a manifest from another image's XDG paths) would have them: `key` is
/// the manifest's key, `file` where it leads, `true_hash` whether the hash is right too.
fn tamper(home: &Home, victims: &[(String, PathBuf, bool)]) {
    use std::os::unix::fs::MetadataExt as _;
    let path = home.data().join("arcade/manifest.json");
    let mut manifest: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    for (key, file, true_hash) in victims {
        let meta = std::fs::metadata(file).unwrap();
        let sha256 = if *true_hash {
            sha256_hex(&std::fs::read(file).unwrap())
        } else {
            "0".repeat(64)
        };
        manifest["files"][key] = json!({
            "sha256": sha256,
            "len": meta.len(),
            "mtime_ns": meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
        });
    }
    std::fs::write(&path, serde_json::to_vec(&manifest).unwrap()).unwrap();
}

/// A tampered or foreign manifest cannot make sync or clean delete anything but arcade's own
/// files: not absolute paths elsewhere, paths relative to the working folder, paths with `..`,
/// files in folders arcade does not use or not named as arcade names them, files reached through
/// a symbolic link, or files whose content is not what the manifest records.
#[test]
fn a_tampered_manifest_removes_only_arcades_own_files() {
    let home = Home::new();
    let a = home.write("a.json", &catalog_text(&ids(0, 1, 2, 2), "a"));
    synced(&home, &a);
    let cwd = home.path().join("cwd");
    let data = home.data();
    // The icons folder becomes a link to a folder of the user's, where a file carries a name
    // arcade could have given it.
    let theirs = home.path().join("theirs");
    std::fs::create_dir_all(&theirs).unwrap();
    std::fs::rename(data.join("icons"), theirs.join("icons")).unwrap();
    std::os::unix::fs::symlink(theirs.join("icons"), data.join("icons")).unwrap();
    let files = [
        (
            home.path().join("notes.txt").display().to_string(),
            home.path().join("notes.txt"),
            true,
        ),
        (
            "relative.desktop".to_owned(),
            cwd.join("relative.desktop"),
            true,
        ),
        (
            data.join("applications/arcade/../../../dotdot.desktop")
                .display()
                .to_string(),
            home.path().join(".local/dotdot.desktop"),
            true,
        ),
        (
            data.join("applications/userapp.desktop")
                .display()
                .to_string(),
            data.join("applications/userapp.desktop"),
            true,
        ),
        (
            data.join("applications/arcade/user-1.desktop")
                .display()
                .to_string(),
            data.join("applications/arcade/user-1.desktop"),
            false,
        ),
        (
            data.join("icons/hicolor/48x48/apps/arcade-victim.png")
                .display()
                .to_string(),
            theirs.join("icons/hicolor/48x48/apps/arcade-victim.png"),
            true,
        ),
    ];
    for (_, file, _) in &files {
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, format!("the user's {}", file.display())).unwrap();
    }
    let survived = |when: &str| {
        for (key, file, _) in &files {
            assert_eq!(
                std::fs::read_to_string(file).ok(),
                Some(format!("the user's {}", file.display())),
                "{when} removed or changed {} (manifest key {key})",
                file.display()
            );
        }
    };

    tamper(&home, &files);
    let mut arcade = sync(&home, &a).args(["--json"]);
    arcade.command.current_dir(&cwd);
    arcade.ok();
    survived("sync");

    tamper(&home, &files);
    let mut arcade = home.arcade().args(["menu", "clean"]);
    arcade.command.current_dir(&cwd);
    arcade.ok();
    survived("clean");
    assert!(
        names_in(&data.join("applications/arcade")) == ["user-1.desktop"],
        "clean left arcade's entries: {}",
        home.listing()
    );
}

/// With `$XDG_DATA_HOME/arcade` or `$XDG_CACHE_HOME/arcade` a symbolic link to a folder of the
/// user's, sync (online or offline) and clean refuse to run, the menu stays as it is, and the
/// user's `manifest.json` and `catalog.json` there stay as they are.
#[test]
fn symlinked_state_and_cache_folders_are_refused() {
    let home = Home::new();
    let a = home.write("a.json", &catalog_text(&ids(0, 1, 2, 2), "a"));
    synced(&home, &a);
    let menu = menu_files(&home);
    for (folder, file) in [
        (home.data().join("arcade"), "manifest.json"),
        (home.cache().join("arcade"), "catalog.json"),
    ] {
        let aside = home.path().join("aside");
        std::fs::rename(&folder, &aside).unwrap();
        let theirs = home.path().join(format!("theirs-{file}"));
        std::fs::create_dir_all(&theirs).unwrap();
        std::fs::write(theirs.join(file), "the user's").unwrap();
        std::os::unix::fs::symlink(&theirs, &folder).unwrap();
        let runs = [
            sync(&home, &a).fails(),
            sync(&home, &a).args(["--offline"]).fails(),
            home.arcade().args(["menu", "clean"]).fails(),
        ];
        for run in &runs {
            let line = run.error_line();
            let named = folder.display().to_string();
            assert!(
                line.contains(&format!("{named}:")) && line.contains("symbolic link"),
                "{named}: {run}"
            );
        }
        assert_eq!(names_in(&theirs), [file]);
        assert_eq!(
            std::fs::read_to_string(theirs.join(file)).unwrap(),
            "the user's"
        );
        assert!(
            menu_files(&home) == menu,
            "the menu changed: {}",
            home.listing()
        );
        std::fs::remove_file(&folder).unwrap();
        std::fs::rename(&aside, &folder).unwrap();
    }
}

/// A child process killed and reaped when dropped, also when a test fails while it runs.
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `arcade`, failing the test if it has not finished within a minute: a sync blocked on a
/// FIFO would hold the lock, and every later sync, forever.
#[track_caller]
fn finishes(mut arcade: Arcade) -> Run {
    let args = format!("{:?}", arcade.command.get_args().collect::<Vec<_>>());
    arcade.command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = Reaped(arcade.command.spawn().expect("start arcade"));
    let mut stdout = child.0.stdout.take().unwrap();
    let mut stderr = child.0.stderr.take().unwrap();
    let readers = std::thread::spawn(move || {
        let (mut out, mut err) = (String::new(), String::new());
        let _ = stdout.read_to_string(&mut out);
        let _ = stderr.read_to_string(&mut err);
        (out, err)
    });
    let status = support::wait_for(
        &format!("arcade {args} to finish (is it blocked?)"),
        Duration::from_secs(60),
        || child.0.try_wait().expect("poll arcade"),
    );
    let (stdout, stderr) = readers.join().unwrap();
    Run {
        code: status.code(),
        stdout,
        stderr,
        args,
    }
}

fn mkfifo(path: &Path) {
    let _ = std::fs::remove_file(path);
    let output = Command::new(support::require_tool("mkfifo", "coreutils"))
        .arg(path)
        .output()
        .expect("run mkfifo");
    assert!(output.status.success(), "mkfifo {}", path.display());
}

/// A FIFO where arcade keeps its manifest, lock or saved catalog never blocks a sync or clean
/// (which would hold the lock forever): the manifest is read as unreadable and replaced, the
/// lock and the catalog are refused, each with a message naming it.
#[test]
fn fifos_in_arcades_folders_never_block() {
    let home = Home::new();
    let a = home.write("a.json", &catalog_text(&ids(0, 1, 2, 2), "a"));
    synced(&home, &a);
    let manifest = home.data().join("arcade/manifest.json");
    let lock = home.data().join("arcade/sync.lock");
    let cache = home.cache().join("arcade/catalog.json");

    mkfifo(&manifest);
    let run = finishes(sync(&home, &a));
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stderr.contains("FIFO"), "{run}");
    assert!(std::fs::symlink_metadata(&manifest).unwrap().is_file());

    mkfifo(&manifest);
    let run = finishes(home.arcade().args(["menu", "clean"]));
    assert_eq!(run.code, Some(0), "{run}");
    synced(&home, &a);

    mkfifo(&lock);
    for arcade in [sync(&home, &a), home.arcade().args(["menu", "clean"])] {
        let run = finishes(arcade);
        assert_ne!(run.code, Some(0), "{run}");
        assert!(
            run.error_line().contains("sync.lock") && run.stderr.contains("FIFO"),
            "{run}"
        );
    }
    std::fs::remove_file(&lock).unwrap();

    mkfifo(&cache);
    let run = finishes(sync(&home, &a).args(["--offline"]));
    assert_ne!(run.code, Some(0), "{run}");
    assert!(
        run.error_line().contains("catalog.json") && run.stderr.contains("FIFO"),
        "{run}"
    );
}

/// Nothing arcade creates is writable by others under umask 000: not the lock, not the folders.
#[test]
fn umask_000_makes_nothing_writable_by_others() {
    use std::os::unix::process::CommandExt as _;
    let home = Home::new();
    let a = home.write("a.json", &catalog_text(&ids(0, 2, 2, 2), "a"));
    let mut arcade = sync(&home, &a);
    // SAFETY: umask is async-signal-safe and touches no memory of the parent.
    unsafe {
        arcade.command.pre_exec(|| {
            libc::umask(0);
            Ok(())
        });
    }
    arcade.ok();
    let mut writable = Vec::new();
    let mut stack = vec![home.path().to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let meta = entry.metadata().unwrap();
            if meta.permissions().mode() & 0o022 != 0 {
                writable.push(format!(
                    "{:o} {}",
                    meta.permissions().mode() & 0o7777,
                    entry.path().display()
                ));
            }
            if meta.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    assert!(
        writable.is_empty(),
        "writable by others:\n{}",
        writable.join("\n")
    );
}

/// What a hostile Harbor stand-in sends.
#[derive(Debug, Clone, Copy)]
enum Hostile {
    /// 32 projects whose repository listings are 60 MB each, as in the issue.
    HugeListings,
    /// 32 projects whose repository listings are 7 MiB of tiny items each: under any sane cap
    /// for one answer, but many times that once parsed.
    TinyItems,
    /// Projects without end: every page holds 100, with long names.
    EndlessProjects,
    /// 32 projects whose repository listings go on without end, 100 names of 1,000 bytes a page.
    LongNames,
    /// 100 projects of 100 repositories, each listing labelled artifacts without end.
    EndlessImages,
}

/// A JSON array of `{"name":…}` objects filling about `size` bytes, names `name_len` long.
fn listing_of_names(size: usize, name_len: usize) -> axum::body::Bytes {
    let item = format!("{{\"name\":\"p0/{}\"}}", "x".repeat(name_len));
    let mut text = String::with_capacity(size + item.len() + 2);
    text.push('[');
    while text.len() < size {
        if text.len() > 1 {
            text.push(',');
        }
        text.push_str(&item);
    }
    text.push(']');
    axum::body::Bytes::from(text)
}

/// A JSON answer with `X-Total-Count`, as Harbor sends listings.
fn listing(
    total: u64,
    body: impl Into<axum::body::Body>,
) -> axum::http::Response<axum::body::Body> {
    axum::http::Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .header("x-total-count", total.to_string())
        .body(body.into())
        .unwrap()
}

/// The page a listing request asks for.
fn page_of(request: &support::fake_http::Incoming) -> u64 {
    support::fake_http::parse_query(&request.query)
        .into_iter()
        .find(|(key, _)| key == "page")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(1)
}

/// A Harbor stand-in that answers as `kind` says.
fn hostile_harbor(kind: Hostile) -> support::fake_http::Server {
    use support::fake_http::{Incoming, Server};
    use support::harbor::harbor_error_page;
    let body = match kind {
        Hostile::HugeListings => listing_of_names(60_000_000, 100),
        Hostile::TinyItems => listing_of_names(7 << 20, 1),
        _ => axum::body::Bytes::new(),
    };
    let handler = std::sync::Arc::new(move |request: &Incoming| {
        let path = request.path.trim_start_matches("/api/v2.0");
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        let page = page_of(request);
        match (kind, parts.as_slice()) {
            (_, ["labels"]) if request.query.contains("scope=g") => {
                listing(1, json!([{"id": 1, "name": "desktop-app"}]).to_string())
            }
            (_, ["labels"]) => listing(0, "[]"),
            (Hostile::EndlessProjects, ["projects"]) => {
                let projects: Vec<Value> = (0..100)
                    .map(|n| {
                        let id = page * 100 + n;
                        json!({"project_id": id, "name": format!("p{id}-{}", "y".repeat(240))})
                    })
                    .collect();
                listing(100_000_000, Value::from(projects).to_string())
            }
            (Hostile::EndlessImages, ["projects"]) => {
                let projects: Vec<Value> = (0..100)
                    .map(|n| json!({"project_id": n, "name": format!("p{n}")}))
                    .collect();
                listing(100, Value::from(projects).to_string())
            }
            (_, ["projects"]) => {
                let projects: Vec<Value> = (0..32)
                    .map(|n| json!({"project_id": n, "name": format!("p{n}")}))
                    .collect();
                listing(32, Value::from(projects).to_string())
            }
            (Hostile::EndlessImages, ["projects", project, "repositories"]) => {
                let repositories: Vec<Value> = (0..100)
                    .map(|n| json!({"name": format!("{project}/app{n}")}))
                    .collect();
                listing(100, Value::from(repositories).to_string())
            }
            (Hostile::HugeListings | Hostile::TinyItems, ["projects", _, "repositories"]) => {
                listing(1, body.clone())
            }
            (Hostile::LongNames, ["projects", project, "repositories"]) => {
                let repositories: Vec<Value> = (0..100)
                    .map(|n| {
                        let name = format!("{project}/{}{}", page * 100 + n, "z".repeat(990));
                        json!({ "name": name })
                    })
                    .collect();
                listing(100_000_000, Value::from(repositories).to_string())
            }
            (_, ["projects", _, "repositories"]) => listing(0, "[]"),
            (_, ["projects", project, "repositories", repository, "artifacts"]) => {
                let artifacts: Vec<Value> = (0..100)
                    .map(|n| {
                        let tag = format!("{}.{n}", page);
                        let digest = sha256_hex(format!("{project}/{repository}:{tag}").as_bytes());
                        json!({
                            "digest": format!("sha256:{digest}"),
                            "tags": [{"name": tag}],
                            "labels": [{"id": 1, "name": "desktop-app"}],
                        })
                    })
                    .collect();
                listing(1_000_000, Value::from(artifacts).to_string())
            }
            _ => harbor_error_page(404),
        }
    });
    Server::start(
        support::fake_http::Plain,
        support::fake_http::Service {
            handler,
            error_page: harbor_error_page,
            contract: support::contract::Contract::harbor,
            latency: Duration::ZERO,
            faults: Vec::new(),
        },
    )
}

/// A field of `/proc/<pid>/status` in KiB, such as `VmHWM:`.
fn status_kib(pid: libc::pid_t, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find_map(|line| line.strip_prefix(field))?;
    line.trim().trim_end_matches("kB").trim().parse().ok()
}

/// Runs `arcade` to its end; returns what it printed and its peak resident memory in KiB, its
/// `VmHWM` read as it exits. The process is traced (`PTRACE_O_TRACEEXIT`) so that it stops on
/// its way out with its memory still there: `wait4`'s `ru_maxrss` is no good here, because a
/// child started by a large process (this test binary, with the stand-in's answers) starts
/// with the parent's peak.
fn run_with_peak(mut arcade: Arcade) -> (Run, u64) {
    let args = format!("{:?}", arcade.command.get_args().collect::<Vec<_>>());
    arcade.command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = Reaped(arcade.command.spawn().expect("start arcade"));
    let pid = libc::pid_t::try_from(child.0.id()).expect("a pid fits pid_t");
    let mut stdout = child.0.stdout.take().unwrap();
    let mut stderr = child.0.stderr.take().unwrap();
    let readers = std::thread::spawn(move || {
        let (mut out, mut err) = (String::new(), String::new());
        let _ = stdout.read_to_string(&mut out);
        let _ = stderr.read_to_string(&mut err);
        (out, err)
    });
    // SAFETY: attaching to our own child, which is running; no memory is passed.
    let seized = unsafe {
        libc::ptrace(
            libc::PTRACE_SEIZE,
            pid,
            std::ptr::null_mut::<libc::c_void>(),
            libc::PTRACE_O_TRACEEXIT as usize as *mut libc::c_void,
        )
    };
    assert_eq!(
        seized,
        0,
        "failed to trace arcade to read its peak memory: {}",
        std::io::Error::last_os_error()
    );
    let mut peak = None;
    let code = loop {
        let mut status = 0;
        // SAFETY: waits for our own child; `status` is a live local.
        let rc = unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
        assert_eq!(rc, pid, "waitpid: {}", std::io::Error::last_os_error());
        if libc::WIFEXITED(status) {
            break Some(libc::WEXITSTATUS(status));
        }
        if libc::WIFSIGNALED(status) {
            break None;
        }
        let event = (status >> 16) & 0xff;
        let signal = if event == libc::PTRACE_EVENT_EXIT {
            peak = status_kib(pid, "VmHWM:");
            0
        } else if event != 0 || libc::WSTOPSIG(status) == libc::SIGTRAP {
            0
        } else {
            // A signal on its way to arcade: deliver it.
            libc::WSTOPSIG(status)
        };
        // SAFETY: the child is in a ptrace stop; resuming it passes no memory.
        unsafe {
            libc::ptrace(
                libc::PTRACE_CONT,
                pid,
                std::ptr::null_mut::<libc::c_void>(),
                signal as usize as *mut libc::c_void,
            )
        };
    };
    // The child was reaped above; `Reaped` must not wait for it again.
    std::mem::forget(child);
    let (stdout, stderr) = readers.join().unwrap();
    let run = Run {
        code,
        stdout,
        stderr,
        args,
    };
    let peak = peak.unwrap_or_else(|| panic!("arcade's peak memory was not read:\n{run}"));
    (run, peak)
}

/// Whatever a hostile Harbor sends (huge answers, many tiny items, listings, names or images
/// without end), a sync fails with the last good menu kept and its peak memory stays within 100 MB; it
/// once reached 1,374 MiB with 32 listings of 60 MB.
#[test]
fn a_hostile_harbor_cannot_push_a_sync_past_100_mb() {
    const LIMIT_KIB: u64 = 100_000_000 / 1024;
    let mut report = Vec::new();
    for kind in [
        Hostile::HugeListings,
        Hostile::TinyItems,
        Hostile::EndlessProjects,
        Hostile::LongNames,
        Hostile::EndlessImages,
    ] {
        let server = hostile_harbor(kind);
        let home = Home::new();
        let (run, peak_kib) = run_with_peak(home.arcade().args([
            "menu",
            "sync",
            "--source",
            "harbor",
            "--url",
            server.url(),
        ]));
        assert_ne!(run.code, Some(0), "{kind:?}: the sync took it:\n{run}");
        assert!(menu_files(&home).is_empty(), "{kind:?}: {}", home.listing());
        report.push(format!(
            "{kind:?}: peak {:.1} MB; {}",
            (peak_kib * 1024) as f64 / 1e6,
            run.error_line()
        ));
        if peak_kib > LIMIT_KIB {
            report.push(format!("{kind:?}: OVER 100 MB"));
        }
    }
    // Shown with --nocapture, for the figures.
    eprintln!("{}", report.join("\n"));
    assert!(
        !report.iter().any(|line| line.contains("OVER")),
        "{}",
        report.join("\n")
    );
}
