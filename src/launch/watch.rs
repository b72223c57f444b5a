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

/// The X clients launches have claimed as theirs, by display: evidence that is not unique (a
/// pod's window may carry nothing but its class) must not hand one app's windows to two
/// launches of the same image, so the first launch to match a client keeps it until it ends.
static CLAIMS: std::sync::Mutex<Vec<Claim>> = std::sync::Mutex::new(Vec::new());

struct Claim {
    display: String,
    client: u32,
    launch: String,
}

/// Claims `client` on `display` for `launch`: true if it is now, or already was, the launch's;
/// false if another launch has it.
pub fn claim(display: &str, client: u32, launch: &str) -> bool {
    let mut claims = CLAIMS.lock().expect("claims lock");
    match claims
        .iter()
        .find(|claim| claim.display == display && claim.client == client)
    {
        Some(claim) => claim.launch == launch,
        None => {
            claims.push(Claim {
                display: display.to_owned(),
                client,
                launch: launch.to_owned(),
            });
            true
        }
    }
}

/// Lets go of the clients `launch` claimed: its app has ended, and the server may give their
/// ids to new clients.
pub fn release(launch: &str) {
    CLAIMS
        .lock()
        .expect("claims lock")
        .retain(|claim| claim.launch != launch);
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
        assert!(claim(":7", 0x400000, "aaa111"));
        assert!(claim(":7", 0x400000, "aaa111"), "still its own");
        assert!(!claim(":7", 0x400000, "bbb222"), "another launch's");
        assert!(claim(":8", 0x400000, "bbb222"), "another display");
        assert!(claim(":7", 0x600000, "bbb222"));
        release("aaa111");
        assert!(claim(":7", 0x400000, "bbb222"), "free once its app ended");
        release("bbb222");
    }
}
