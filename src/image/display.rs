//! The private headless X server `image check` starts for itself, so it judges an image by what
//! matters (the app's window maps) without touching the user's display.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{Error, Result};
use crate::x11::{self, Cookie, Display, Watcher};

/// An Xvfb of our own, stopped on drop.
pub struct PrivateDisplay {
    child: std::process::Child,
    pub display: Display,
    /// A FamilyWild cookie file for the display, readable by the check's arbitrary user.
    pub cookie_file: PathBuf,
    /// The server's own authority file.
    server_auth: PathBuf,
}

impl PrivateDisplay {
    /// Starts Xvfb on a free display number, with a fresh cookie, no TCP, files in `dir`.
    pub fn start(dir: &Path) -> Result<PrivateDisplay> {
        use std::io::Read as _;
        use std::os::fd::{AsRawFd as _, FromRawFd as _};
        let program = crate::config::which("Xvfb").ok_or_else(|| {
            Error::Display(
                "image check needs Xvfb for a private display of its own (apt-get install xvfb / \
                 dnf install xorg-x11-server-Xvfb)"
                    .to_owned(),
            )
        })?;
        let cookie = Cookie {
            name: b"MIT-MAGIC-COOKIE-1".to_vec(),
            data: random_bytes()?,
        };
        let server_auth = dir.join("server.auth");
        x11::write_cookie(&server_auth, &cookie, 0)?;
        // Xvfb says which display it took by writing its number to this pipe.
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe() writes.
        if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
            return Err(Error::Display(format!(
                "failed to make a pipe for Xvfb: {}",
                std::io::Error::last_os_error()
            )));
        }
        // SAFETY: pipe() just returned these descriptors, and nothing else owns them.
        let (mut read, write) = unsafe {
            (
                std::fs::File::from_raw_fd(fds[0]),
                std::os::fd::OwnedFd::from_raw_fd(fds[1]),
            )
        };
        let child = std::process::Command::new(&program)
            .args(["-displayfd", &write.as_raw_fd().to_string()])
            .args([
                "-screen",
                "0",
                "1280x1024x24",
                "-nolisten",
                "tcp",
                "-noreset",
            ])
            .arg("-auth")
            .arg(&server_auth)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|err| Error::Display(format!("failed to run {}: {err}", program.display())))?;
        drop(write);
        let mut number = String::new();
        let _ = read.read_to_string(&mut number);
        let number: u16 = number
            .trim()
            .parse()
            .map_err(|_| Error::Display("Xvfb did not start (it named no display)".to_owned()))?;
        let display = Display::parse(&format!(":{number}"))?;
        let cookie_file = dir.join("Xauthority");
        x11::write_cookie(&cookie_file, &cookie, number)?;
        // The container's arbitrary user must read it; the server is ours and throwaway.
        super::set_mode(&cookie_file, 0o644)?;
        Ok(PrivateDisplay {
            child,
            display,
            cookie_file,
            server_auth,
        })
    }

    /// Watches the display for new top-level windows.
    pub fn watcher(&self) -> Result<Watcher> {
        Ok(Watcher::connect(&self.display, Some(&self.cookie_file))?.0)
    }
}

impl Drop for PrivateDisplay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.server_auth);
    }
}

/// Waits on `watcher` for any mapped top-level window until `deadline` or `stop`: on a private
/// display every window is the image's.
pub fn wait_for_any_window(
    mut watcher: Watcher,
    deadline: Instant,
    stop: &std::sync::atomic::AtomicBool,
) -> Option<Duration> {
    let started = Instant::now();
    match watcher.wait_for_window(&|_| true, deadline, stop) {
        Ok(Some((_, at))) => Some(at.duration_since(started)),
        Ok(None) => None,
        Err(err) => {
            tracing::warn!("watching the check's display for a window: {err}");
            None
        }
    }
}

fn random_bytes() -> Result<Vec<u8>> {
    use ring::rand::SecureRandom as _;
    let mut bytes = vec![0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| Error::Display("no randomness for a cookie".to_owned()))?;
    Ok(bytes)
}
