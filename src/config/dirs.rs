//! The XDG base directories arcade reads and writes ([`Dirs`]), and the files it keeps in them.

use std::path::PathBuf;

use serde::Serialize;

use super::{Error, Result};

/// The per-user and system directories arcade reads and writes, from the XDG Base Directory
/// variables. Relative values are ignored, as the spec requires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dirs {
    pub home: PathBuf,
    pub data_home: PathBuf,
    pub config_home: PathBuf,
    pub config_dirs: Vec<PathBuf>,
    pub cache_home: PathBuf,
    pub state_home: PathBuf,
    pub runtime_dir: Option<PathBuf>,
}

fn absolute_env(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .map(PathBuf::from)
        .filter(|path| path.is_absolute())
}

impl Dirs {
    pub fn from_env() -> Result<Dirs> {
        let home = absolute_env("HOME");
        let under_home = |var: &str, rel: &str| -> Result<PathBuf> {
            absolute_env(var)
                .or_else(|| home.as_ref().map(|home| home.join(rel)))
                .ok_or(Error::NoHome)
        };
        let config_dirs = std::env::var("XDG_CONFIG_DIRS")
            .ok()
            .map(|dirs| {
                dirs.split(':')
                    .map(PathBuf::from)
                    .filter(|path| path.is_absolute())
                    .collect::<Vec<_>>()
            })
            .filter(|dirs| !dirs.is_empty())
            .unwrap_or_else(|| vec![PathBuf::from("/etc/xdg")]);
        Ok(Dirs {
            data_home: under_home("XDG_DATA_HOME", ".local/share")?,
            config_home: under_home("XDG_CONFIG_HOME", ".config")?,
            cache_home: under_home("XDG_CACHE_HOME", ".cache")?,
            state_home: under_home("XDG_STATE_HOME", ".local/state")?,
            runtime_dir: absolute_env("XDG_RUNTIME_DIR"),
            config_dirs,
            home: home.ok_or(Error::NoHome)?,
        })
    }

    /// The user's config file, which is also the one the daemon watches.
    pub fn user_config_file(&self) -> PathBuf {
        self.config_home.join("arcade/config.toml")
    }

    /// The last good catalog, used by `--offline` and at session start.
    pub fn cached_catalog(&self) -> PathBuf {
        self.cache_home.join("arcade/catalog.json")
    }

    /// Where per-launch records and logs live.
    pub fn launch_state(&self) -> PathBuf {
        self.state_home.join("arcade/launches")
    }

    /// The desktop folder from `user-dirs.dirs`, else `~/Desktop`; `None` when the user turned
    /// the desktop off (xdg-user-dirs writes `XDG_DESKTOP_DIR="$HOME/"` then).
    pub fn desktop_dir(&self) -> Option<PathBuf> {
        let dir = self.desktop_dir_setting();
        (dir != self.home && dir != self.home.join("")).then_some(dir)
    }

    fn desktop_dir_setting(&self) -> PathBuf {
        let file = self.config_home.join("user-dirs.dirs");
        if let Ok(text) = std::fs::read_to_string(file) {
            for line in text.lines() {
                if let Some(value) = line.trim().strip_prefix("XDG_DESKTOP_DIR=") {
                    let value = value.trim_matches('"');
                    let path = match value.strip_prefix("$HOME") {
                        Some(rest) => self.home.join(rest.trim_start_matches('/')),
                        None => PathBuf::from(value),
                    };
                    if path.is_absolute() {
                        return path;
                    }
                }
            }
        }
        self.home.join("Desktop")
    }
}
