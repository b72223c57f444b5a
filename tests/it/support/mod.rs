//! Shared fixtures for the integration tests: a throwaway XDG home, the `arcade` binary run with a
//! scrubbed environment, and the real external tools the tests check against.
//!
//! Every fixture panics with an install hint when a tool is missing: a test that cannot run must
//! fail, never pass by skipping.
//!
//! The rest, one concern a module: `desk` (home, display and engine, and `on_each_engine!`),
//! `xvfb`, `images` and `docker` (the engines' side), `dbus` (a session bus); `fake_http` (the
//! server core of the only stand-ins, `harbor` and `skaha`), `contract` (their published
//! contracts) and `tls`; `desktop_files` (generated files read back by independent readers) and
//! `menu_state` (what a sync leaves behind); `poll` (`require_tool`, `wait_for`, which the
//! benches share).

#![allow(dead_code)]

pub mod contract;
pub mod dbus;
pub mod desk;
pub mod desktop_files;
pub mod docker;
pub mod fake_http;
pub mod harbor;
pub mod images;
pub mod menu_state;
mod poll;
pub mod real_apps;
pub mod skaha;
pub mod tls;
pub mod xvfb;

pub use poll::{KillOnDrop, require_tool, wait_for};

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A throwaway home with its own XDG directories, removed on drop.
pub struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    pub fn new() -> Home {
        let dir = tempfile::Builder::new()
            .prefix("arcade-it-")
            .tempdir()
            .expect("create a temporary home");
        let home = Home { dir };
        for sub in [
            ".config",
            ".local/share",
            ".cache",
            ".local/state",
            "sysconf",
            "run",
        ] {
            std::fs::create_dir_all(home.path().join(sub)).expect("create XDG dirs");
        }
        home
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn data(&self) -> PathBuf {
        self.path().join(".local/share")
    }

    pub fn config(&self) -> PathBuf {
        self.path().join(".config")
    }

    pub fn cache(&self) -> PathBuf {
        self.path().join(".cache")
    }

    pub fn state(&self) -> PathBuf {
        self.path().join(".local/state")
    }

    pub fn desktop(&self) -> PathBuf {
        self.path().join("Desktop")
    }

    /// `$XDG_CONFIG_DIRS` for the test: holds a system `applications.menu` for menu readers.
    pub fn sysconf(&self) -> PathBuf {
        self.path().join("sysconf")
    }

    pub fn applications(&self) -> PathBuf {
        self.data().join("applications/arcade")
    }

    pub fn merged_menu(&self) -> PathBuf {
        self.config()
            .join("menus/applications-merged/arcade-astro-software.menu")
    }

    /// Writes `$XDG_CONFIG_HOME/arcade/config.toml`.
    pub fn write_config(&self, text: &str) {
        let path = self.config().join("arcade/config.toml");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// Writes a file under the home and returns its path.
    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    /// `arcade` with only this home's environment: nothing from the developer's session leaks in.
    pub fn arcade(&self) -> Arcade {
        let mut command = Command::new(env!("CARGO_BIN_EXE_arcade"));
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path())
            .env("XDG_CONFIG_HOME", self.config())
            .env("XDG_DATA_HOME", self.data())
            .env("XDG_CACHE_HOME", self.cache())
            .env("XDG_STATE_HOME", self.state())
            .env("XDG_CONFIG_DIRS", self.sysconf())
            .env("XDG_RUNTIME_DIR", self.path().join("run"))
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null());
        if let Some(conf) = std::env::var_os("CONTAINERS_CONF") {
            command.env("CONTAINERS_CONF", conf);
        }
        Arcade { command }
    }

    /// Every file under the home, relative, sorted: for failure messages.
    pub fn listing(&self) -> String {
        let mut out = Vec::new();
        walk(self.path(), self.path(), &mut out);
        out.sort();
        out.join("\n")
    }
}

fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() && !path.is_symlink() {
            walk(base, &path, out);
        } else {
            out.push(path.strip_prefix(base).unwrap().display().to_string());
        }
    }
}

/// A command to run `arcade`, with helpers that show everything when an expectation fails.
pub struct Arcade {
    pub command: Command,
}

/// What a finished `arcade` printed.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub args: String,
}

impl Arcade {
    pub fn args<I, S>(mut self, args: I) -> Arcade
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        for arg in args {
            self.command.arg(arg.into());
        }
        self
    }

    pub fn env(mut self, key: &str, value: impl Into<OsString>) -> Arcade {
        self.command.env(key, value.into());
        self
    }

    pub fn run(mut self) -> Run {
        let args = format!("{:?}", self.command.get_args().collect::<Vec<_>>());
        let output: Output = self.command.output().expect("run arcade");
        Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            args,
        }
    }

    /// Runs on a pseudo-terminal (made by util-linux's `script`), as a person at a terminal would:
    /// stdout and stderr both arrive in [`Run::stdout`], as the terminal shows them.
    pub fn run_in_terminal(self) -> Run {
        let script = require_tool("script", "bsdutils");
        let quote =
            |text: &std::ffi::OsStr| format!("'{}'", text.to_string_lossy().replace('\'', "'\\''"));
        let line: Vec<String> = std::iter::once(self.command.get_program())
            .chain(self.command.get_args())
            .map(quote)
            .collect();
        let mut command = Command::new(script);
        // The same environment as the command was given (it starts from an empty one).
        command.env_clear();
        for (key, value) in self.command.get_envs() {
            if let Some(value) = value {
                command.env(key, value);
            }
        }
        command
            .args(["--quiet", "--return", "--command"])
            .arg(line.join(" "))
            .arg("/dev/null")
            .stdin(Stdio::null());
        Arcade { command }.run()
    }

    /// Runs and expects exit status 0.
    #[track_caller]
    pub fn ok(self) -> Run {
        let run = self.run();
        assert_eq!(run.code, Some(0), "arcade {} failed:\n{run}", run.args);
        run
    }

    /// Runs and expects a failure; returns the run for checks on its message.
    #[track_caller]
    pub fn fails(self) -> Run {
        let run = self.run();
        assert!(
            run.code.is_some_and(|code| code != 0),
            "arcade {} should have failed:\n{run}",
            run.args
        );
        run
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit: {:?}\n--- stdout\n{}\n--- stderr\n{}\n---",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Run {
    /// The one error line arcade prints on failure.
    #[track_caller]
    pub fn error_line(&self) -> &str {
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|line| line.starts_with("arcade: error:"))
            .collect();
        assert_eq!(lines.len(), 1, "expected one error line:\n{self}");
        lines[0]
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|err| panic!("stdout is not JSON ({err}):\n{self}"))
    }
}

/// The menu a real menu implementation (python-xdg, which reads `applications-merged`) shows,
/// one line per item, indented by depth: `[Menu]` or `Name\tExec`.
#[track_caller]
pub fn menu_as_read_by_pyxdg(home: &Home) -> String {
    let python = Path::new("/usr/bin/python3");
    assert!(
        python.is_file(),
        "/usr/bin/python3 is missing: apt-get install python3-xdg (.ci/run installs it)"
    );
    std::fs::create_dir_all(home.sysconf().join("menus")).unwrap();
    std::fs::write(
        home.sysconf().join("menus/applications.menu"),
        BASE_MENU.trim_start(),
    )
    .unwrap();
    let output = Command::new(python)
        .arg("-c")
        .arg(PYXDG_WALK)
        .env_clear()
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.config())
        .env("XDG_DATA_HOME", home.data())
        .env("XDG_CONFIG_DIRS", home.sysconf())
        .env("XDG_DATA_DIRS", home.path().join("no-system-data"))
        .output()
        .expect("run python3");
    assert!(
        output.status.success(),
        "python-xdg failed (apt-get install python3-xdg):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The main menu skeleton arcade ships for desktop images without one: it merges
/// `applications-merged` and has a Science menu and a catch-all "Other" menu, so an entry that
/// leaked out of Astro Software would show up there.
const BASE_MENU: &str = include_str!("../../../xdg/menus/arcade-applications.menu");

const PYXDG_WALK: &str = r#"
import xdg.Menu
def walk(menu, depth):
    for entry in menu.getEntries():
        if isinstance(entry, xdg.Menu.Menu):
            print("  " * depth + "[" + entry.getName() + "]")
            walk(entry, depth + 1)
        elif isinstance(entry, xdg.Menu.MenuEntry):
            de = entry.DesktopEntry
            print("  " * depth + de.getName() + "\t" + de.getExec())
walk(xdg.Menu.parse(), 0)
"#;

/// The bundled sample catalog.
pub fn sample_catalog() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/sample-catalog.json")
}
