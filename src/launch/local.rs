//! The local backends, podman and docker: the app runs in a hardened container whose engine
//! client stays in the foreground, so the client lives as long as the app, carries its output
//! into the launch's log, and exits with its exit code.
//!
//! The container gets a per-launch folder (entry and command scripts, a wildcard X cookie)
//! mounted read-only, and only the display's socket.

use std::path::Path;
use std::time::Duration;

use super::app::{App, CurrentSettings, End, Matcher, NotReady, Place, Stopping};
use super::engine::{self, Engine, RunSpec};
use super::lifecycle::{Backend, Lifecycle, Start, launch_dir};
use super::{Error, Request, Result, Target, contract, io_error};
use crate::config::{Backend as BackendKind, Settings};
use crate::x11::{self, Cookie, Display, WindowInfo};

/// Environment variables, as names and values.
type Vars = Vec<(String, String)>;

/// A local engine, checked and ready to start an app on a display.
pub struct LocalBackend {
    engine: Engine,
    display: Display,
    uid: u32,
    gid: u32,
}

impl LocalBackend {
    /// Checks what can be checked before anything starts: the display and the app's user.
    pub fn prepare(settings: &Settings, request: &Request, engine: Engine) -> Result<LocalBackend> {
        let display = match &request.display {
            Some(name) => Display::parse(name)?,
            None => Display::from_env()?,
        };
        if display.host.is_some() && settings.launch.network == "none" {
            return Err(Error::RemoteDisplay(display.name.clone()));
        }
        let (uid, gid) = engine::app_user(&settings.launch.user).map_err(Error::Invalid)?;
        Ok(LocalBackend {
            engine,
            display,
            uid,
            gid,
        })
    }

    /// The variables every app gets: the display, the platform's app environment, the
    /// operator's; the second list goes by name only (its values may be secret).
    fn env(&self, start: &Start<'_>, has_cookie: bool) -> (Vars, Vars) {
        let (settings, request, target) = (start.settings, start.request, start.target);
        let display = &self.display;
        let mut env: Vars = vec![
            (
                "DISPLAY".into(),
                match display.host {
                    Some(_) => display.name.clone(),
                    None => format!(":{}", display.number),
                },
            ),
            ("HOME".into(), contract::HOME.into()),
            ("QT_X11_NO_MITSHM".into(), "1".into()),
            ("_X11_NO_MITSHM".into(), "1".into()),
            ("_MITSHM".into(), "0".into()),
            ("SKAHA_XTERM_TITLE".into(), target.label.clone()),
            ("ARCADE_LAUNCH_ID".into(), start.id.to_owned()),
        ];
        if has_cookie {
            env.push(("XAUTHORITY".into(), contract::XAUTHORITY.into()));
        }
        // What the platform's Job gives every desktop-app (`launch-desktop-app.yaml`), so a
        // local launch behaves as the platform's would.
        let cores = request.cores.or(settings.launch.cores).unwrap_or(1);
        env.push(("OMP_NUM_THREADS".into(), cores.max(1).to_string()));
        env.push(("GDK_SYNCHRONIZE".into(), "1".into()));
        env.push(("SHELL".into(), "/bin/bash".into()));
        env.push(("PWD".into(), contract::HOME.into()));
        // docker gives the app's uid no passwd entry (podman adds one, with the working folder as
        // its home), and Java takes its home from there, not from HOME: without this, TOPCAT
        // cannot start its SAMP hub and Aladin keeps no settings.
        if self.engine.kind == BackendKind::Docker {
            env.push((
                "JAVA_TOOL_OPTIONS".into(),
                format!("-Duser.home={}", contract::HOME),
            ));
        }
        if let Some(id) = start.watch.startup_id() {
            env.push(("DESKTOP_STARTUP_ID".into(), id.to_owned()));
        }
        // The operator's variables may hold secrets, and the platform's session id is the
        // desktop's VNC password: they reach the container through a private env file, never
        // through a command line any local user can read. The session id goes only inside a
        // platform desktop (elsewhere the setting may come from `VNC_PW`, a real password).
        let mut private: Vars = settings
            .launch
            .env
            .iter()
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        if crate::config::in_platform_session()
            && let Some(session) = &settings.skaha.session_id
        {
            private.push(("skaha_sessionid".into(), session.clone()));
        }
        (env, private)
    }

    /// Starts the engine's client for `spec`, its output into the launch's log, in a process
    /// group of its own.
    fn spawn(&self, start: &Start<'_>, spec: &RunSpec) -> Result<tokio::process::Child> {
        let (target, id) = (start.target, start.id);
        let log_path = start.store.log_path(id);
        let log = start
            .store
            .open_log(id)
            .map_err(io_error("open", &log_path))?;
        start.store.note(
            id,
            &format!(
                "launching {} on {} with {}",
                target.image,
                self.display.name,
                self.engine.name()
            ),
        );
        let mut command = self.engine.command(self.engine.run_args(spec));
        command
            .stdout(log.try_clone().map_err(io_error("open", &log_path))?)
            .stderr(log)
            // Its own process group: closing the terminal `arcade launch` was typed in, or
            // Ctrl-C there after the window is up, must not take the app down.
            .process_group(0);
        tracing::info!(id, image = %target.image, on = %self.display.name, "starting {}", self.engine.name());
        command.spawn().map_err(|err| Error::EngineFailed {
            engine: self.engine.name(),
            app: target.label.clone(),
            message: format!("failed to run {}: {err}", self.engine.program.display()),
        })
    }
}

/// Writes the private variables as an engine env file (`KEY=VALUE` lines, read by the engine
/// client on the host), readable by its owner only.
fn write_env_file(path: &Path, vars: &[(String, String)]) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut text = String::new();
    for (key, value) in vars {
        // The format has no quoting: a line break would start another variable.
        if value.contains(['\n', '\r', '\0']) || key.contains(['=', '\n', '\0']) {
            return Err(Error::Invalid(format!(
                "launch.env {key:?} holds a line break or NUL, which no engine env file can carry"
            )));
        }
        text.push_str(&format!("{key}={value}\n"));
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(io_error("write", path))?;
    file.write_all(text.as_bytes())
        .map_err(io_error("write", path))
}

impl Backend for LocalBackend {
    type App = LocalApp;

    fn kind(&self) -> BackendKind {
        self.engine.kind
    }

    fn display(&self) -> Option<&Display> {
        Some(&self.display)
    }

    fn authorizes(&self) -> bool {
        true
    }

    async fn start(&self, start: &Start<'_>) -> Result<LocalApp> {
        let (settings, request, target, id) =
            (start.settings, start.request, start.target, start.id);
        let no_cookie = Cookie::default();
        let cookie = start.watch.cookie().unwrap_or(&no_cookie);
        let dir = launch_dir(settings, id);
        prepare_dir(
            &dir,
            cookie,
            &self.display,
            request,
            target,
            self.uid,
            self.gid,
        )?;
        let (env, private) = self.env(start, !cookie.is_empty());
        if !private.is_empty() {
            write_env_file(&dir.join("env"), &private)?;
        }
        // SAFETY: getuid only reads the process's credentials.
        let host_uid = unsafe { libc::getuid() };
        let spec = RunSpec {
            id: id.to_owned(),
            name: engine::container_name(id),
            hostname: host_name(&target.app, id),
            image: target.image.clone(),
            app: target.label.clone(),
            uid: self.uid,
            gid: self.gid,
            host_uid,
            launch_dir: dir.clone(),
            display: self.display.clone(),
            session: session_of(settings, &self.display),
            env,
            env_file: (!private.is_empty()).then(|| dir.join("env")),
            cores: request.cores.or(settings.launch.cores),
            ram_gb: request.ram_gb.or(settings.launch.ram_gb),
            gpus: request.gpus,
            network: settings.launch.network.clone(),
            shared: request.shared.clone(),
            volumes: settings.launch.volumes.clone(),
            binds: super::files::binds(&request.files),
            pull: settings.launch.pull.clone(),
        };
        let child = self.spawn(start, &spec)?;
        Ok(LocalApp {
            engine: self.engine.clone(),
            id: id.to_owned(),
            name: spec.name,
            hostname: spec.hostname,
            image: target.image.clone(),
            label: target.label.clone(),
            child: Some(child),
        })
    }
}

/// The session a local app belongs to, by which the session's end finds its apps: the
/// platform's session id on a platform desktop, the login session, or else the display.
fn session_of(settings: &Settings, display: &Display) -> String {
    settings
        .skaha
        .session_id
        .clone()
        .filter(|_| crate::config::in_platform_session())
        .or_else(|| {
            std::env::var("XDG_SESSION_ID")
                .ok()
                .filter(|id| !id.is_empty())
        })
        .unwrap_or_else(|| display.name.clone())
}

/// The container's host name: the app's name and the launch id, which its windows carry as
/// WM_CLIENT_MACHINE.
fn host_name(app: &str, id: &str) -> String {
    let mut slug = crate::menu::slug(app);
    slug.truncate(40);
    format!("{}-{id}", slug.trim_end_matches('-'))
}

/// An app in a local container.
pub struct LocalApp {
    engine: Engine,
    id: String,
    /// The container's name.
    name: String,
    hostname: String,
    image: String,
    label: String,
    /// The engine client when this process started it; `None` for a container found again.
    child: Option<tokio::process::Child>,
}

impl LocalApp {
    /// A container of an earlier launch, found again by its name.
    pub fn attach(engine: Engine, id: &str, name: &str, image: &str, label: &str) -> LocalApp {
        LocalApp {
            engine,
            id: id.to_owned(),
            name: name.to_owned(),
            hostname: String::new(),
            image: image.to_owned(),
            label: label.to_owned(),
            child: None,
        }
    }
}

impl LocalApp {
    /// Whether the engine lists the container as running.
    async fn is_running(&self) -> bool {
        self.engine
            .output([
                "inspect",
                "--format",
                "{{.State.Running}}",
                self.name.as_str(),
            ])
            .await
            .is_ok_and(|text| text.trim() == "true")
    }
}

impl App for LocalApp {
    fn running_once_started(&self) -> bool {
        true
    }

    fn place(&self) -> Place {
        Place::Container(self.name.clone())
    }

    fn window_matcher(&self, startup_id: Option<&str>) -> Matcher {
        let id = self.id.clone();
        let hostname = self.hostname.clone();
        let startup_id = startup_id.map(str::to_owned);
        Box::new(move |info: &WindowInfo| {
            info.pid
                .is_some_and(|pid| x11::process_has_env(pid, "ARCADE_LAUNCH_ID", &id))
                || info.client_machine.as_deref() == Some(hostname.as_str())
                || (startup_id.is_some() && info.startup_id == startup_id)
        })
    }

    async fn ready(&mut self, _: &Lifecycle) -> Result<(), NotReady> {
        Ok(())
    }

    /// The container, not its client, is the truth: the client's exit carries the app's exit
    /// code, but a client killed on its own leaves the container running, which is then
    /// followed by the engine's `wait` until it ends.
    async fn ended(&mut self, _: &mut Lifecycle, _: CurrentSettings<'_>) -> End {
        if let Some(child) = &mut self.child {
            let status = child.wait().await.ok();
            self.child = None;
            let killed = status.is_some_and(|status| status.code().is_none());
            if !(killed && self.is_running().await) {
                return End::Exited(status.and_then(|status| status.code()).unwrap_or(-1));
            }
            tracing::info!(
                id = self.id,
                "the engine client ended but its container runs on"
            );
        }
        End::Exited(self.engine.wait(&self.name).await.unwrap_or(-1))
    }

    /// Turns an early exit of the engine client into the clearest error we can tell.
    fn ended_early(&self, end: End, life: &Lifecycle) -> Error {
        let code = match end {
            End::Exited(code) => code,
            End::Failed(reason) | End::Lost(reason) => return Error::Platform(reason),
        };
        let output = life.output_tail(3);
        // Engines exit 125 when they could not run the container at all.
        if code == 125 {
            let message = output
                .last()
                .cloned()
                .unwrap_or_else(|| format!("{} exited with code 125", self.engine.name()));
            if engine::is_missing_image(&output.join("\n")) {
                return Error::ImageMissing {
                    image: self.image.clone(),
                    engine: self.engine.name(),
                    message,
                };
            }
            return Error::EngineFailed {
                engine: self.engine.name(),
                app: self.label.clone(),
                message,
            };
        }
        Error::ExitedEarly {
            app: self.label.clone(),
            code,
            output,
        }
    }

    fn no_window(&self, wait: Duration, _: &Lifecycle) -> Error {
        // The app may still be pulling or starting, so it is left be.
        Error::NoWindow {
            app: self.label.clone(),
            seconds: wait.as_secs(),
            id: self.id.clone(),
        }
    }

    /// Stops the container. While a client of ours still pulls or creates it, there is no
    /// container to stop yet: stop what exists, end the client, then remove a container that
    /// appeared meanwhile.
    async fn stop(&mut self, _: &Lifecycle) -> Result<Stopping> {
        let failed = |message: String| Error::StopFailed {
            engine: self.engine.name(),
            app: self.label.clone(),
            message,
        };
        let stopped =
            tokio::time::timeout(Duration::from_secs(10), self.engine.stop(&self.name)).await;
        let Some(child) = &mut self.child else {
            return match stopped {
                Ok(Ok(())) => Ok(Stopping::Stopped(None)),
                Ok(Err(engine::Error::NoSuchContainer { .. })) => Ok(Stopping::AlreadyGone),
                Ok(Err(err)) => Err(failed(err.to_string())),
                Err(_) => Err(failed("it did not stop within 10 s".to_owned())),
            };
        };
        let _ = child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
        let _ = tokio::time::timeout(Duration::from_secs(10), self.engine.remove(&self.name)).await;
        match stopped {
            Ok(Ok(()) | Err(engine::Error::NoSuchContainer { .. })) => Ok(Stopping::Stopped(None)),
            Ok(Err(err)) => Err(failed(err.to_string())),
            Err(_) => Err(failed("it did not stop within 10 s".to_owned())),
        }
    }
}

/// Writes the per-launch folder: entry and command scripts, and the wildcard cookie.
fn prepare_dir(
    dir: &Path,
    cookie: &Cookie,
    display: &Display,
    request: &Request,
    target: &Target,
    uid: u32,
    gid: u32,
) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).map_err(io_error("create", parent))?;
        let _ = std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o700));
    }
    std::fs::create_dir_all(dir).map_err(io_error("create", dir))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
        .map_err(io_error("set permissions of", dir))?;
    let command = if request.command.is_empty() {
        contract::default_command(&target.label)
    } else {
        request.command.clone()
    };
    let command = contract::command_script(&command).map_err(Error::Invalid)?;
    for (name, text) in [
        ("entry.sh", contract::entry_script()),
        ("command.sh", command),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(io_error("write", &path))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .map_err(io_error("set permissions of", &path))?;
    }
    if !cookie.is_empty() {
        let path = dir.join("Xauthority");
        x11::write_cookie(&path, cookie, display.number)?;
        // SAFETY: geteuid only reads the process's credentials.
        if unsafe { libc::geteuid() } == 0 {
            engine::give_to(&path, uid, gid).map_err(io_error("hand over", &path))?;
        }
    }
    Ok(())
}
