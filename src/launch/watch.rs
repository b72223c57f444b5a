//! Watching the display for a launch: the connection opened before anything starts (so every
//! window created from then on is seen, and a display we cannot open fails fast), the startup
//! notification that shows the busy cursor, and the thread that waits for the first window.
//!
//! The busy cursor lasts exactly as long as the watch: whichever way the watch ends, it sends
//! `remove:` for a sequence it owns or was given.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::app::Matcher;
use super::{Request, Result, Target};
use crate::x11::{self, Cookie, Display, Watcher, WindowInfo};

/// A startup-notification sequence: ours (we sent `new:`) or the menu's (it did).
pub struct Startup {
    pub id: String,
}

impl Startup {
    /// Starts a sequence of our own; sending is best effort, since a missing busy cursor must
    /// never fail a launch.
    fn begin(watcher: &mut Watcher, launch_id: &str, target: &Target) -> Startup {
        let time = watcher.server_time().unwrap_or(0);
        let id = format!("arcade-{launch_id}_TIME{time}");
        let message = format!(
            "new: ID={} NAME={} SCREEN={} BIN=arcade ICON={} DESCRIPTION={} WMCLASS={}",
            x11::startup_value(&id),
            x11::startup_value(&target.label),
            watcher.screen(),
            x11::startup_value(crate::menu::icons::for_app(&target.app)),
            x11::startup_value(&format!("Starting {}", target.label)),
            x11::startup_value(crate::menu::DEFAULT_WM_CLASS),
        );
        if let Err(err) = watcher.send_startup(&message) {
            tracing::debug!("startup notification failed: {err}");
        }
        Startup { id }
    }

    fn end(&self, watcher: &Watcher) {
        let message = format!("remove: ID={}", x11::startup_value(&self.id));
        if let Err(err) = watcher.send_startup(&message) {
            tracing::debug!("startup notification failed: {err}");
        }
    }
}

/// The X clients launches have claimed as theirs: evidence that is not unique (a pod's window
/// may carry nothing but its class) must not hand one app's windows to two launches of the same
/// image, so the first launch to match a client keeps it until it ends. Claims are files made
/// with `O_EXCL` in a folder of the user's runtime directory, one per display and client, so
/// every arcade process of the user (the daemon, a launch typed in a terminal) sees them.
#[derive(Debug, Clone)]
pub struct Claims {
    dir: std::path::PathBuf,
}

impl Claims {
    /// The claims on `display`, kept under `root` (the user's arcade runtime folder).
    pub fn new(root: &std::path::Path, display: &str) -> Claims {
        let name: String = display
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        Claims {
            dir: root.join("claims").join(name),
        }
    }

    /// Claims `client` for `launch`: true if it is now, or already was, the launch's; false if
    /// another launch that has not ended has it.
    pub fn claim(&self, client: u32, launch: &str, ended: impl Fn(&str) -> bool) -> bool {
        use std::io::Write as _;
        let path = self.dir.join(format!("{client:08x}"));
        for _ in 0..2 {
            let _ = std::fs::create_dir_all(&self.dir);
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut file) => {
                    let _ = file.write_all(launch.as_bytes());
                    return true;
                }
                Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                    let owner = std::fs::read_to_string(&path).unwrap_or_default();
                    if owner == launch {
                        return true;
                    }
                    // A claim of a launch that has ended is stale: the server may have given
                    // its client's ids to a new client.
                    if owner.is_empty() || !ended(&owner) {
                        return false;
                    }
                    let _ = std::fs::remove_file(&path);
                }
                Err(err) => {
                    tracing::debug!("cannot claim X client {client:#x}: {err}");
                    return true;
                }
            }
        }
        false
    }
}

/// Lets go of every client `launch` claimed, on any display: its app has ended.
pub fn release(root: &std::path::Path, launch: &str) {
    let Ok(displays) = std::fs::read_dir(root.join("claims")) else {
        return;
    };
    for display in displays.flatten() {
        let Ok(claims) = std::fs::read_dir(display.path()) else {
            continue;
        };
        for claim in claims.flatten() {
            if std::fs::read_to_string(claim.path()).is_ok_and(|owner| owner == launch) {
                let _ = std::fs::remove_file(claim.path());
            }
        }
    }
}

/// What was found when the watch ended: the window and when it mapped, or nothing.
pub type Found = Result<Option<(WindowInfo, Instant)>, x11::Error>;

/// An open watch on the launch's display; `None` inside when there is no display to watch (a
/// skaha launch from a shell without one).
pub struct Watch {
    open: Option<(Watcher, Cookie)>,
    startup: Option<Startup>,
    /// The app's own authorization, when one was asked for and the server can make one.
    authorization: Option<x11::Authorization>,
}

/// How long a launch's authorization outlives its last client, should arcade not live to revoke
/// it: long enough for any pull, short of forever.
const AUTHORIZATION_BACKSTOP_SECS: u32 = 24 * 3600;

impl Watch {
    /// Connects to `display` and starts the busy cursor, unless the menu started it (it passed
    /// its sequence in the request) or nothing will wait to end it (`no_wait`). With
    /// `authorize`, asks the server for an authorization of the app's own (see
    /// [`Watch::cookie`]).
    pub async fn open(
        display: Option<&Display>,
        request: &Request,
        launch_id: &str,
        target: &Target,
        authorize: bool,
    ) -> Result<Watch> {
        let Some(display) = display.cloned() else {
            return Ok(Watch {
                open: None,
                startup: None,
                authorization: None,
            });
        };
        let xauthority = request.xauthority.clone();
        let given = request.startup_id.clone();
        let own = !request.no_wait;
        let (launch_id, target) = (launch_id.to_owned(), target.clone());
        tokio::task::spawn_blocking(move || {
            let (mut watcher, cookie) = Watcher::connect(&display, xauthority.as_deref())?;
            let authorization = if authorize && !cookie.is_empty() {
                let made = watcher.generate_authorization(AUTHORIZATION_BACKSTOP_SECS)?;
                if made.is_none() {
                    let name = &display.name;
                    tracing::warn!(
                        on = %name,
                        "the X server has no SECURITY extension: the app gets a copy of the \
                         display's cookie, which stays valid after it ends"
                    );
                }
                made
            } else {
                None
            };
            let startup = match given {
                Some(id) => Some(Startup { id }),
                None if own => Some(Startup::begin(&mut watcher, &launch_id, &target)),
                None => None,
            };
            Ok(Watch {
                open: Some((watcher, cookie)),
                startup,
                authorization,
            })
        })
        .await
        .expect("x11 connect task panicked")
    }

    /// The cookie the app gets: its own authorization's, else a copy of the display's.
    pub fn cookie(&self) -> Option<&Cookie> {
        match &self.authorization {
            Some(authorization) => Some(&authorization.cookie),
            None => self.open.as_ref().map(|(_, cookie)| cookie),
        }
    }

    /// The id of the app's own authorization, to revoke when it ends.
    pub fn authorization(&self) -> Option<u32> {
        self.authorization
            .as_ref()
            .map(|authorization| authorization.id)
    }

    /// The sequence the app is to carry in `DESKTOP_STARTUP_ID`.
    pub fn startup_id(&self) -> Option<&str> {
        self.startup.as_ref().map(|startup| startup.id.as_str())
    }

    /// Ends the busy cursor now (the launch failed before the watch began).
    pub async fn end(self) {
        if let (Some((watcher, _)), Some(startup)) = (self.open, self.startup) {
            let _ = tokio::task::spawn_blocking(move || startup.end(&watcher)).await;
        }
    }

    /// Waits on a thread of its own for a window that `matcher` accepts, until `deadline` or
    /// cancellation; the busy cursor ends as soon as the wait does. `None` without a display.
    pub fn spawn(self, matcher: Matcher, deadline: Instant) -> Option<WindowTask> {
        let (mut watcher, _) = self.open?;
        let startup = self.startup;
        let cancel = Arc::new(AtomicBool::new(false));
        let task = {
            let cancel = Arc::clone(&cancel);
            tokio::task::spawn_blocking(move || {
                let found = watcher.wait_for_window(&*matcher, deadline, &cancel);
                if let Some(startup) = &startup {
                    startup.end(&watcher);
                }
                found
            })
        };
        Some(WindowTask { task, cancel })
    }
}

/// The thread waiting for the first window.
pub struct WindowTask {
    task: tokio::task::JoinHandle<Found>,
    cancel: Arc<AtomicBool>,
}

impl WindowTask {
    /// What the watch found, once it ends.
    pub async fn found(&mut self) -> Found {
        (&mut self.task).await.expect("window watcher panicked")
    }

    /// Stops the watch (within a poll interval) and returns what it had found.
    pub async fn cancel(mut self) -> Found {
        self.cancel.store(true, Ordering::Relaxed);
        self.found().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_belongs_to_the_first_launch_that_claims_it() {
        let root = tempfile::tempdir().unwrap();
        let ended = |_: &str| false;
        let display = Claims::new(root.path(), ":7");
        assert!(display.claim(0x400000, "aaa111", ended));
        assert!(display.claim(0x400000, "aaa111", ended), "still its own");
        assert!(
            !display.claim(0x400000, "bbb222", ended),
            "another launch's"
        );
        assert!(
            Claims::new(root.path(), ":8").claim(0x400000, "bbb222", ended),
            "another display"
        );
        assert!(display.claim(0x600000, "bbb222", ended));
        release(root.path(), "aaa111");
        assert!(
            display.claim(0x400000, "bbb222", ended),
            "free once its app ended"
        );
        // A claim left by a launch that ended without letting go is taken over.
        assert!(display.claim(0x800000, "ccc333", ended));
        assert!(display.claim(0x800000, "ddd444", |launch| launch == "ccc333"));
    }
}
