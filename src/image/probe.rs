//! Running an image for `image check`: the shell-only probes, and the app itself on the check's
//! private display, each in a container with no network that never pulls, with a bound.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::display::{self, PrivateDisplay};
use crate::config::Backend;
use crate::launch::contract;
use crate::launch::engine::Engine;

/// What the shell-only probe reports about the image's files.
pub const FILES_PROBE: &str = r#"#!/bin/sh
# Written by arcade image check: reports what the image holds, with shell builtins only.
for program in xterm getfacl setfacl; do
  found=$(command -v "$program" 2>/dev/null) && echo "program $program $found"
done
for lib in /lib/*/libnss_sss.so.2 /usr/lib/*/libnss_sss.so.2 /lib64/libnss_sss.so.2 \
           /usr/lib64/libnss_sss.so.2 /lib/libnss_sss.so.2 /usr/lib/libnss_sss.so.2; do
  [ -e "$lib" ] && echo "nss_sss $lib"
done
if [ -r /etc/nsswitch.conf ]; then
  while IFS= read -r line; do
    case "$line" in passwd:*|shadow:*|group:*) echo "nsswitch $line";; esac
  done < /etc/nsswitch.conf
else
  echo "nsswitch missing"
fi
for script in /skaha/init.sh /skaha/startup.sh; do
  if [ -e "$script" ]; then
    if [ -x "$script" ]; then echo "script $script executable"; else echo "script $script plain"; fi
  fi
done
echo "probe done"
"#;

/// Runs `/skaha/init.sh` and reports that it returned.
pub const INIT_PROBE: &str = r#"#!/bin/sh
# Written by arcade image check: does init.sh return?
/skaha/init.sh
echo "arcade-init returned $?"
"#;

/// Runs `/skaha/startup.sh` with the command, as the platform runs it.
pub const STARTUP_PROBE: &str = r#"#!/bin/sh
# Written by arcade image check: does startup.sh run the command it is given?
exec /skaha/startup.sh /run/arcade/command.sh
"#;

/// The command the image is given, as the platform gives its launcher: it marks that it ran,
/// then starts the platform's default app, xterm, so a window shows either way.
pub fn app_command() -> String {
    let xterm = contract::command_script(&contract::default_command("arcade image check"))
        .expect("the default command has no NUL");
    xterm.replacen(
        "# Written by arcade: the command this app runs.\n",
        "# Written by arcade image check: says it ran, then starts the default app.\n\
         echo \"arcade-probe ran args=$#\"\n",
        1,
    )
}

/// The contract as a launch runs it, minus `init.sh` when that does not return (so the rest is
/// judged on its own).
pub fn entry_without_init() -> String {
    contract::entry_script().replace("if [ -e /skaha/init.sh ]; then\n  /skaha/init.sh\nfi\n", "")
}

/// One run of the image.
#[derive(Debug, Default)]
pub struct Run {
    pub code: Option<i32>,
    pub output: String,
    pub timed_out: bool,
}

impl Run {
    pub fn has(&self, marker: &str) -> bool {
        self.output.lines().any(|line| line.starts_with(marker))
    }

    /// The last lines of what it printed, ours left out.
    pub fn tail(&self) -> String {
        let lines: Vec<&str> = self
            .output
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with("arcade-"))
            .collect();
        let tail = lines[lines.len().saturating_sub(2)..].join(" ⏎ ");
        if tail.is_empty() {
            "no output".to_owned()
        } else {
            tail
        }
    }
}

/// The app's run on the private display: what it printed, and when its window mapped.
#[derive(Debug, Default)]
pub struct AppRun {
    pub run: Run,
    /// Time from the start of the container to the first window, if one mapped.
    pub window: Option<Duration>,
}

/// How the image is run.
pub struct Probe<'a> {
    pub engine: &'a Engine,
    pub image: &'a str,
    /// The folder of scripts, mounted at the contract's place.
    pub dir: &'a Path,
    pub bound: Duration,
}

impl Probe<'_> {
    /// The engine's `run` of `script` as `user`, with `display` mounted when given.
    fn command(
        &self,
        name: &str,
        script: &str,
        user: (u32, u32),
        display: Option<&PrivateDisplay>,
    ) -> tokio::process::Command {
        let mut args: Vec<String> = vec![
            "run".into(),
            "--rm".into(),
            format!("--name={name}"),
            "--pull=never".into(),
            "--network=none".into(),
            format!("--user={}:{}", user.0, user.1),
            "--cap-drop=ALL".into(),
            "--security-opt=no-new-privileges".into(),
            format!("--tmpfs={}:rw,mode=1777", contract::HOME),
            format!("--workdir={}", contract::HOME),
            "--env".into(),
            format!("HOME={}", contract::HOME),
            format!("--volume={}:{}:ro", self.dir.display(), contract::MOUNT),
        ];
        if user.0 != 0 {
            args.push("--init".into());
            // As on the platform, the arbitrary uid has no passwd entry (podman adds one).
            if self.engine.kind == Backend::Podman {
                args.push("--passwd=false".into());
            }
        }
        if let Some(display) = display {
            let socket = display.display.socket().expect("a local display");
            args.push(format!("--volume={0}:{0}:ro", socket.display()));
            args.push(format!("--env=DISPLAY=:{}", display.display.number));
            args.push(format!("--env=XAUTHORITY={}/Xauthority", contract::MOUNT));
        }
        args.extend([
            "--entrypoint=/bin/sh".into(),
            self.image.into(),
            format!("{}/{script}", contract::MOUNT),
        ]);
        let mut command = self.engine.command(&args);
        command.kill_on_drop(true);
        command
    }

    /// Runs `script` as `user` until it ends, within the bound.
    pub async fn run(&self, script: &str, user: (u32, u32)) -> Run {
        let name = format!("arcade-check-{}", crate::launch::record::random_id());
        let child = self
            .command(&name, script, user, None)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(err) => return self.not_run(&err),
        };
        match tokio::time::timeout(self.bound, child.wait_with_output()).await {
            Ok(Ok(output)) => Run {
                code: output.status.code(),
                output: format!(
                    "{}{}",
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                ),
                timed_out: false,
            },
            Ok(Err(err)) => Run {
                output: err.to_string(),
                ..Run::default()
            },
            Err(_) => {
                // The client was killed on drop; the container must go too.
                self.remove(&name).await;
                Run {
                    timed_out: true,
                    ..Run::default()
                }
            }
        }
    }

    /// Runs the app through `entry` as the arbitrary `user` on `display`, until its first
    /// window maps, it ends, or the bound passes; then it is removed.
    pub async fn run_app(&self, entry: &str, user: (u32, u32), display: &PrivateDisplay) -> AppRun {
        let name = format!("arcade-check-{}", crate::launch::record::random_id());
        let log_path = self.dir.join(format!("{name}.log"));
        let log = match std::fs::File::create(&log_path) {
            Ok(log) => log,
            Err(err) => return AppRun::not_run(self.not_run(&err)),
        };
        let watcher = match display.watcher() {
            Ok(watcher) => watcher,
            Err(err) => return AppRun::not_run(self.not_run(&err)),
        };
        let stop = Arc::new(AtomicBool::new(false));
        let deadline = Instant::now() + self.bound;
        let window = {
            let stop = Arc::clone(&stop);
            tokio::task::spawn_blocking(move || {
                display::wait_for_any_window(watcher, deadline, &stop)
            })
        };
        let started = Instant::now();
        let spawned = self
            .command(&name, entry, user, Some(display))
            .stdout(
                log.try_clone()
                    .map(std::process::Stdio::from)
                    .unwrap_or_else(|_| std::process::Stdio::null()),
            )
            .stderr(log)
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(err) => {
                stop.store(true, Ordering::Relaxed);
                return AppRun::not_run(self.not_run(&err));
            }
        };
        tokio::pin!(window);
        let (code, window) = tokio::select! {
            found = &mut window => (None, found.ok().flatten().map(|_| started.elapsed())),
            status = child.wait() => {
                stop.store(true, Ordering::Relaxed);
                let _ = (&mut window).await;
                (status.ok().and_then(|status| status.code()), None)
            }
        };
        let timed_out = window.is_none() && code.is_none();
        self.remove(&name).await;
        let _ = child.kill().await;
        let output = std::fs::read_to_string(&log_path).unwrap_or_default();
        AppRun {
            run: Run {
                code,
                output,
                timed_out,
            },
            window,
        }
    }

    async fn remove(&self, name: &str) {
        if let Err(err) = self.engine.remove(name).await {
            tracing::debug!(
                container = name,
                "failed to remove a check's container: {err}"
            );
        }
    }

    fn not_run(&self, err: &dyn std::fmt::Display) -> Run {
        Run {
            output: format!("failed to run {}: {err}", self.engine.program.display()),
            ..Run::default()
        }
    }
}

impl AppRun {
    fn not_run(run: Run) -> AppRun {
        AppRun { run, window: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_check_entry_differs_only_by_init() {
        assert!(!entry_without_init().contains("/skaha/init.sh"));
        assert!(entry_without_init().contains("exec /skaha/startup.sh /run/arcade/command.sh"));
    }

    #[test]
    fn the_app_command_marks_then_starts_xterm() {
        let script = app_command();
        let mark = script.find("arcade-probe ran").unwrap();
        let xterm = script.find("exec xterm").unwrap();
        assert!(mark < xterm, "{script}");
    }
}
