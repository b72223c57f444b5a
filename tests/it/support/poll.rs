//! Finding the real tools a fixture needs, polling for what it waits on, and child processes
//! that end with their owner: shared by the integration tests and the benches, which include
//! this file by path.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Finds a tool or panics with the package that provides it.
#[track_caller]
pub fn require_tool(tool: &str, package: &str) -> PathBuf {
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        let candidate = dir.join(tool);
        if candidate.is_file() {
            return candidate;
        }
    }
    let candidate = Path::new("/usr/bin").join(tool);
    if candidate.is_file() {
        return candidate;
    }
    panic!(
        "{tool} is not installed; these tests need it: apt-get install {package} \
         (.ci/run installs it)"
    );
}

/// Polls `check` until it returns `Some` or the deadline passes; panics with `what` on timeout.
#[track_caller]
pub fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A child process killed and reaped when its owner lets go of it, whether the test failed or not.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
