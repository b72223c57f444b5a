//! The kill loop of issue 12 at full length: in each round, a fresh throwaway home syncs catalog
//! A (300 images in 10 projects), starts a sync to catalog H (100 of A's images with new
//! digests, so their entries change, and 500 more in 10 other projects, while A's other 200 go
//! stale), kills it with SIGKILL at a random point, and syncs back to A. The sync back must leave
//! exactly the menu a fresh home gets from A. Each round is sorted by what it left:
//!
//! - stuck: a file of A's menu with other content (the merged menu still showing H), or a file
//!   the sync back kept as "changed since arcade wrote it";
//! - misjudged: a file the sync back called not arcade's;
//! - leftovers: files A's menu does not have (stale entries, `.arcade-*` temporary files), and
//!   anything but the manifest, the lock and the catalog in arcade's own folders;
//! - after clean: files a `menu clean` after the sync back did not remove.
//!
//! It prints one line per damaged round and a summary, and exits 1 when any round was damaged.
//! The kill points are spread evenly over the length of a whole sync to H, measured first.
//!
//! `cargo bench --bench menu_kill`. `ARCADE_BENCH_ROUNDS` (default 40) sets the rounds,
//! `ARCADE_BENCH_SEED` the random kill points, `ARCADE_BENCH_BIN` runs another `arcade` binary
//! (to compare builds); `TMPDIR` chooses where the homes go.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// A throwaway home with its own XDG folders, removed on drop.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        let dir = tempfile::Builder::new()
            .prefix("arcade-kill-")
            .tempdir()
            .expect("create a temporary home");
        for sub in [".config", ".local/share", ".cache", ".local/state", "run"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("create XDG folders");
        }
        Home { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `arcade` with only this home's environment, like the integration tests run it.
    fn arcade(&self, args: &[&str]) -> Command {
        let binary = std::env::var_os("ARCADE_BENCH_BIN")
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_arcade").into());
        let home = self.path();
        let mut command = Command::new(binary);
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_DATA_HOME", home.join(".local/share"))
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .env("XDG_STATE_HOME", home.join(".local/state"))
            .env("XDG_CONFIG_DIRS", home.join("sysconf"))
            .env("XDG_RUNTIME_DIR", home.join("run"))
            .args(args)
            .stdin(Stdio::null());
        command
    }

    /// Syncs from the catalog file `catalog` (relative to the home) and returns the summary.
    fn sync(&self, catalog: &str) -> Value {
        let path = self.path().join(catalog);
        let output = self
            .arcade(&["menu", "sync", "--source", "file", "--json", "--catalog"])
            .arg(&path)
            .output()
            .expect("run arcade");
        assert!(
            output.status.success(),
            "arcade menu sync {catalog} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("the summary is JSON")
    }

    fn write_catalogs(&self) {
        let a = ids(0, 10, 6, 5);
        let mut h = catalog(&ids(0, 4, 5, 5), "h");
        h.extend(catalog(&ids(20, 10, 10, 5), "h"));
        std::fs::write(
            self.path().join("a.json"),
            Value::from(catalog(&a, "a")).to_string(),
        )
        .expect("write catalog A");
        std::fs::write(self.path().join("h.json"), Value::from(h).to_string())
            .expect("write catalog H");
    }

    /// Every file in the menu folders, hidden ones included, by its path below the home.
    fn menu_files(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut files = BTreeMap::new();
        for folder in [
            ".local/share/applications",
            ".local/share/desktop-directories",
            ".local/share/icons",
            ".config/menus",
        ] {
            walk(self.path(), &self.path().join(folder), &mut files);
        }
        files
    }

    /// Files in arcade's own folders besides the manifest, the lock and the saved catalog.
    fn extra_state(&self) -> Vec<String> {
        let mut extra = Vec::new();
        for (folder, allowed) in [
            (".local/share/arcade", &["manifest.json", "sync.lock"][..]),
            (".cache/arcade", &["catalog.json"][..]),
        ] {
            for entry in std::fs::read_dir(self.path().join(folder))
                .into_iter()
                .flatten()
                .flatten()
            {
                let name = entry.file_name().to_string_lossy().into_owned();
                if !allowed.contains(&name.as_str()) {
                    extra.push(format!("{folder}/{name}"));
                }
            }
        }
        extra
    }
}

fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
            walk(base, &path, out);
        } else {
            let content = std::fs::read(&path).unwrap_or_default();
            out.insert(path.strip_prefix(base).unwrap().to_owned(), content);
        }
    }
}

/// `projects` × `repositories` × `tags` references, projects numbered from `first`.
fn ids(first: usize, projects: usize, repositories: usize, tags: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for p in first..first + projects {
        for r in 0..repositories {
            for t in 0..tags {
                ids.push(format!("images.example.org/project{p}/app{r}:1.{t}"));
            }
        }
    }
    ids
}

/// Catalog entries in skaha's shape; each digest comes from the reference and `version`.
fn catalog(ids: &[String], version: &str) -> Vec<Value> {
    ids.iter()
        .map(|id| {
            let digest =
                ring::digest::digest(&ring::digest::SHA256, format!("{id} {version}").as_bytes());
            let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
            json!({"id": id, "types": ["desktop-app"], "digest": format!("sha256:{hex}")})
        })
        .collect()
}

/// A small random number generator (splitmix64).
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

/// What one round left behind.
#[derive(Default)]
struct Damage {
    /// The kill landed before the sync to H finished.
    interrupted: bool,
    stuck: usize,
    misjudged: usize,
    leftovers: usize,
    after_clean: usize,
    examples: Vec<String>,
}

/// One round: A, a sync to H killed after `delay`, A again, then clean.
fn round(expected: &BTreeMap<PathBuf, Vec<u8>>, delay: Duration) -> Damage {
    let home = Home::new();
    home.write_catalogs();
    home.sync("a.json");
    let mut child = home
        .arcade(&["menu", "sync", "--source", "file", "--catalog"])
        .arg(home.path().join("h.json"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start arcade");
    std::thread::sleep(delay);
    // One that already finished cannot be killed; the round then checks a plain sync.
    let _ = child.kill();
    let status = child.wait().expect("reap arcade");

    let back = home.sync("a.json");
    let mut damage = Damage {
        interrupted: std::os::unix::process::ExitStatusExt::signal(&status).is_some(),
        ..Damage::default()
    };
    let found = home.menu_files();
    for (path, content) in &found {
        match expected.get(path) {
            None => {
                damage.leftovers += 1;
                damage.examples.push(format!("leftover {}", path.display()));
            }
            Some(wanted) if wanted != content => {
                damage.stuck += 1;
                damage.examples.push(format!("stuck {}", path.display()));
            }
            Some(_) => {}
        }
    }
    for path in back["kept_modified"].as_array().into_iter().flatten() {
        damage.stuck += 1;
        damage.examples.push(format!("kept as changed {path}"));
    }
    for path in back["skipped_foreign"].as_array().into_iter().flatten() {
        damage.misjudged += 1;
        damage.examples.push(format!("not arcade's {path}"));
    }
    for extra in home.extra_state() {
        damage.leftovers += 1;
        damage.examples.push(format!("leftover {extra}"));
    }
    let clean = home
        .arcade(&["menu", "clean"])
        .output()
        .expect("run arcade menu clean");
    assert!(clean.status.success(), "arcade menu clean failed");
    damage.after_clean = home.menu_files().len();
    damage
}

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    let rounds: usize = std::env::var("ARCADE_BENCH_ROUNDS")
        .ok()
        .map_or(40, |text| {
            text.parse().expect("ARCADE_BENCH_ROUNDS is a number")
        });
    let seed = std::env::var("ARCADE_BENCH_SEED").ok().map_or_else(
        || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos() as u64
        },
        |text| text.parse().expect("ARCADE_BENCH_SEED is a number"),
    );

    let reference = Home::new();
    reference.write_catalogs();
    reference.sync("a.json");
    let expected = reference.menu_files();
    let started = Instant::now();
    let to_h = reference.sync("h.json");
    let whole = started.elapsed();
    println!(
        "kill loop: A = {} entries, H = {} entries; a whole sync from A to H takes {whole:?}; \
         {rounds} rounds, seed {seed}",
        expected
            .keys()
            .filter(|path| path.extension().is_some_and(|ext| ext == "desktop"))
            .count(),
        to_h["entries"]
    );

    let mut random = Random(seed);
    let mut totals = Damage::default();
    let mut interrupted = 0;
    let (mut stuck_rounds, mut misjudged_rounds, mut leftover_rounds, mut clean_rounds) =
        (0, 0, 0, 0);
    for n in 0..rounds {
        let delay = whole.mul_f64((random.next() % 1000) as f64 / 900.0);
        let damage = round(&expected, delay);
        interrupted += usize::from(damage.interrupted);
        stuck_rounds += usize::from(damage.stuck > 0);
        misjudged_rounds += usize::from(damage.misjudged > 0);
        leftover_rounds += usize::from(damage.leftovers > 0);
        clean_rounds += usize::from(damage.after_clean > 0);
        if damage.stuck + damage.misjudged + damage.leftovers + damage.after_clean > 0 {
            println!(
                "  round {n:>2}, killed after {:>4} ms: {} stuck, {} misjudged, {} leftovers, \
                 {} after clean (e.g. {})",
                delay.as_millis(),
                damage.stuck,
                damage.misjudged,
                damage.leftovers,
                damage.after_clean,
                damage.examples.first().map_or("", String::as_str)
            );
        }
        totals.stuck += damage.stuck;
        totals.misjudged += damage.misjudged;
        totals.leftovers += damage.leftovers;
        totals.after_clean += damage.after_clean;
    }
    println!("  {interrupted} of {rounds} syncs to H were killed before they finished");
    println!(
        "  rounds with a stuck menu: {stuck_rounds}; misjudged files: {misjudged_rounds}; \
         leftovers: {leftover_rounds} ({} files in all); files surviving clean: \
         {clean_rounds}",
        totals.leftovers
    );
    if stuck_rounds + misjudged_rounds + leftover_rounds + clean_rounds > 0 {
        std::process::exit(1);
    }
    println!("  every round healed");
}
