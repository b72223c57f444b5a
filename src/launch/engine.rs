//! The local engines, podman and docker: the hardened `run` command line, and the `ps`, `stop`
//! and `image` queries that find arcade's containers again by their labels.
//!
//! Apps get only the display's socket (read-only), a per-launch wildcard cookie, no network, the
//! host user's uid (never root), no capabilities, no new privileges, an init as PID 1, and `--rm`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::config::Backend;
use crate::x11::Display;

use super::contract;

/// The label every arcade container carries.
pub const LABEL: &str = "net.canfar.arcade";

/// What went wrong with an engine command, told apart once here rather than by callers reading
/// its text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error(
        "{engine} is not installed or not on PATH (install it, e.g. apt-get install {package}, or \
         choose another backend with --backend)"
    )]
    Missing {
        engine: Backend,
        package: &'static str,
    },
    #[error("failed to run {program}: {message}")]
    Spawn { program: PathBuf, message: String },
    #[error("{engine} has no container {name}")]
    NoSuchContainer { engine: Backend, name: String },
    #[error("{message}")]
    Failed { engine: Backend, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The name of a launch's container: one function, so every path finds the same container.
pub fn container_name(id: &str) -> String {
    format!("arcade-{id}")
}

/// The name of a session's shared network: its podman pod, or its docker holder container.
pub fn session_network_name(key: &str) -> String {
    format!("arcade-session-{key}")
}

/// A session's shared network, which the daemon's local launches join, and what apps get with
/// it (the SAMP folder and where its lockfile is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionNet {
    /// The pod (podman) or the container whose network the apps share (docker).
    pub holder: String,
    pub volumes: Vec<String>,
    pub env: Vec<(String, String)>,
}

/// The launch id in a container's name, for arcade's containers.
pub fn launch_id_of(name: &str) -> Option<&str> {
    name.strip_prefix("arcade-")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Engine {
    pub kind: Backend,
    pub program: PathBuf,
    /// `launch.containers_conf`, given to every command of podman's (`CONTAINERS_CONF`): the
    /// session's network and a check's containers need it as much as an app's.
    pub conf: Option<PathBuf>,
}

/// Everything a `run` needs.
#[derive(Debug, Clone)]
pub struct RunSpec {
    pub id: String,
    pub name: String,
    pub hostname: String,
    pub image: String,
    pub app: String,
    pub uid: u32,
    pub gid: u32,
    pub host_uid: u32,
    /// The per-launch folder mounted at [`contract::MOUNT`].
    pub launch_dir: PathBuf,
    pub display: Display,
    /// The desktop session the launch belongs to (skaha's session id, logind's, or the
    /// display), so a daemon adopts and stops only its own session's apps.
    pub session: String,
    /// Variables given as `NAME=VALUE` (nothing secret: ours, and those the engine client reads).
    pub env: Vec<(String, String)>,
    /// A private env file (`--env-file`) with the variables whose values must never show in a
    /// command line.
    pub env_file: Option<PathBuf>,
    pub cores: Option<u32>,
    pub ram_gb: Option<u32>,
    pub gpus: Option<u32>,
    pub network: String,
    /// The session's shared network, instead of `network`, for a launch of the daemon's.
    pub shared: Option<SessionNet>,
    pub volumes: Vec<String>,
    /// Host paths bound read-write at the same path: the folders of the files the app opens.
    pub binds: Vec<PathBuf>,
    pub pull: String,
}

impl Engine {
    /// Finds the engine's program on `$PATH`, to run with `settings`' containers.conf.
    pub fn find(kind: Backend, settings: &crate::config::Settings) -> Result<Engine> {
        match crate::config::which(&kind.to_string()) {
            Some(program) => Ok(Engine {
                kind,
                program,
                conf: settings.launch.containers_conf.clone(),
            }),
            None => Err(Error::Missing {
                engine: kind,
                package: if kind == Backend::Docker {
                    "docker.io"
                } else {
                    "podman"
                },
            }),
        }
    }

    pub fn name(&self) -> String {
        self.kind.to_string()
    }

    /// The arguments of `run` for a launch: runs in the foreground, so the engine's client lives
    /// as long as the app, carries its output into our log, and exits with its exit code.
    // Longer than most on purpose: every flag a container gets is in this one list, in order,
    // so a review sees the whole of an app's confinement in one place.
    pub fn run_args(&self, spec: &RunSpec) -> Vec<OsString> {
        let mut args: Vec<OsString> = Vec::new();
        let mut push = |arg: String| args.push(arg.into());
        push("run".into());
        push("--rm".into());
        push(format!("--name={}", spec.name));
        // docker shares the holder's host name along with its network.
        if spec.shared.is_none() || self.kind != Backend::Docker {
            push(format!("--hostname={}", spec.hostname));
        }
        for (key, value) in [
            (LABEL.to_owned(), "1".to_owned()),
            (format!("{LABEL}.id"), spec.id.clone()),
            (format!("{LABEL}.user"), spec.host_uid.to_string()),
            (format!("{LABEL}.app"), spec.app.clone()),
            (format!("{LABEL}.image"), spec.image.clone()),
            (format!("{LABEL}.display"), spec.display.name.clone()),
            (format!("{LABEL}.session"), spec.session.clone()),
        ] {
            push(format!("--label={key}={value}"));
        }
        push(format!("--pull={}", self.pull_policy(&spec.pull)));
        match &spec.shared {
            Some(shared) if self.kind == Backend::Docker => {
                push(format!("--network=container:{}", shared.holder));
            }
            Some(shared) => push(format!("--pod={}", shared.holder)),
            None => push(format!("--network={}", spec.network)),
        }
        push(format!("--user={}:{}", spec.uid, spec.gid));
        // In a pod, the pod sets the user namespace.
        if self.kind == Backend::Podman && spec.host_uid != 0 && spec.shared.is_none() {
            // Rootless podman maps the host user to root unless told to keep its id.
            push("--userns=keep-id".into());
        }
        push("--cap-drop=ALL".into());
        push("--security-opt=no-new-privileges".into());
        push("--init".into());
        push(format!("--tmpfs={}:rw,mode=1777", contract::HOME));
        push(format!("--workdir={}", contract::HOME));
        push(format!(
            "--volume={}:{}:ro",
            spec.launch_dir.display(),
            contract::MOUNT
        ));
        if let Some(socket) = spec.display.socket() {
            push(format!(
                "--volume={}:{}:ro",
                socket.display(),
                socket.display()
            ));
        }
        let shared = spec.shared.iter();
        for volume in shared
            .clone()
            .flat_map(|shared| &shared.volumes)
            .chain(&spec.volumes)
        {
            push(format!("--volume={volume}"));
        }
        for bind in &spec.binds {
            push(format!("--mount={}", same_path_bind(bind)));
        }
        if let Some(cores) = spec.cores {
            push(format!("--cpus={cores}"));
        }
        if let Some(ram) = spec.ram_gb {
            push(format!("--memory={ram}g"));
        }
        match (self.kind, spec.gpus) {
            (_, None | Some(0)) => {}
            (Backend::Docker, Some(n)) => push(format!("--gpus={n}")),
            // podman reaches GPUs through CDI device names: the first N by index, as docker's
            // `--gpus=N` picks them.
            (_, Some(n)) => {
                for index in 0..n {
                    push(format!("--device=nvidia.com/gpu={index}"));
                }
            }
        }
        for (key, value) in shared.flat_map(|shared| &shared.env).chain(&spec.env) {
            push("--env".into());
            push(format!("{key}={value}"));
        }
        if let Some(path) = &spec.env_file {
            push(format!("--env-file={}", path.display()));
        }
        push("--entrypoint=/bin/sh".into());
        push(spec.image.clone());
        push(contract::ENTRY.into());
        args
    }

    /// The `--pull` value for a configured policy. docker knows only `always`, `missing` and
    /// `never`, and its newer clients refuse podman's `newer` outright (exit 125), which would
    /// fail every launch of a configuration shared with podman. `always` is docker's nearest: it
    /// asks the registry each time and downloads only the layers that changed; unlike podman's
    /// `newer`, it fails when the registry cannot be reached.
    fn pull_policy<'a>(&self, policy: &'a str) -> &'a str {
        match (self.kind, policy) {
            (Backend::Docker, "newer") => "always",
            _ => policy,
        }
    }

    /// A `tokio` command for this engine with `args`.
    pub fn command<I, S>(&self, args: I) -> tokio::process::Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut command = tokio::process::Command::new(&self.program);
        command.args(args);
        command.stdin(std::process::Stdio::null());
        if let Some(conf) = &self.conf {
            command.env("CONTAINERS_CONF", conf);
        }
        // The engine needs none of arcade's credentials: they stay out of its environment,
        // where any process of the user could read them.
        for (key, _) in std::env::vars_os() {
            let secret = key.to_str().is_some_and(|key| {
                key.starts_with("ARCADE_")
                    || matches!(
                        key,
                        "DESKTOP_SESSION_APP_TOKEN" | "VNC_PW" | "skaha_sessionid"
                    )
            });
            if secret {
                command.env_remove(key);
            }
        }
        command
    }

    /// Runs a short engine command and returns its stdout, or what its stderr says as the error.
    pub async fn output<I, S>(&self, args: I) -> Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let output = self
            .command(args)
            .output()
            .await
            .map_err(|err| Error::Spawn {
                program: self.program.clone(),
                message: err.to_string(),
            })?;
        if output.status.success() {
            return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
        }
        let message = last_line(&String::from_utf8_lossy(&output.stderr))
            .unwrap_or_else(|| format!("{} exited with {}", self.name(), output.status));
        Err(self.classify(message))
    }

    /// Tells a missing container from other failures by the engines' own words.
    fn classify(&self, message: String) -> Error {
        if let Some(name) = no_such_container(&message) {
            return Error::NoSuchContainer {
                engine: self.kind,
                name,
            };
        }
        Error::Failed {
            engine: self.kind,
            message,
        }
    }

    /// arcade's containers of this host user: (launch id, state such as `running`).
    pub async fn list(&self, host_uid: u32) -> Result<Vec<(String, String)>> {
        self.list_where(host_uid, None).await
    }

    /// arcade's containers of this host user on one display (one desktop session).
    pub async fn list_on(&self, host_uid: u32, display: &str) -> Result<Vec<(String, String)>> {
        self.list_where(host_uid, Some(display)).await
    }

    async fn list_where(
        &self,
        host_uid: u32,
        display: Option<&str>,
    ) -> Result<Vec<(String, String)>> {
        let mut args = vec![
            "ps".to_owned(),
            "--all".to_owned(),
            "--filter".to_owned(),
            format!("label={LABEL}.user={host_uid}"),
        ];
        if let Some(display) = display {
            args.push("--filter".to_owned());
            args.push(format!("label={LABEL}.display={display}"));
        }
        args.extend(["--format".to_owned(), "{{.Names}}\t{{.State}}".to_owned()]);
        let text = self.output(args).await?;
        Ok(text
            .lines()
            .filter_map(|line| {
                let (name, state) = line.split_once('\t')?;
                let id = launch_id_of(name.trim())?;
                // podman 4 prints "Up 3 seconds ago" where docker prints "running".
                let state = state.trim().to_lowercase();
                let state = if state == "running" || state.starts_with("up") {
                    "running".to_owned()
                } else {
                    state
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_owned()
                };
                Some((id.to_owned(), state))
            })
            .collect())
    }

    /// Removes a container at once, whatever its state (`--time` is podman's alone).
    pub async fn remove(&self, name: &str) -> Result<()> {
        match self.kind {
            Backend::Docker => self.output(["rm", "--force", name]).await,
            _ => self.output(["rm", "--force", "--time", "0", name]).await,
        }
        .map(|_| ())
    }

    /// Stops a container, giving the app a few seconds to exit cleanly.
    pub async fn stop(&self, name: &str) -> Result<()> {
        self.output(["stop", "--time", "5", name]).await.map(|_| ())
    }

    /// Waits for a container to exit and returns its exit code (`wait` prints it).
    pub async fn wait(&self, name: &str) -> Result<i32> {
        let text = self.output(["wait", name]).await?;
        text.trim().parse().map_err(|_| Error::Failed {
            engine: self.kind,
            message: format!("{} wait {name} printed {:?}", self.name(), text.trim()),
        })
    }

    /// Whether an image is present locally.
    pub async fn image_exists(&self, image: &str) -> bool {
        match self.kind {
            Backend::Docker => self.output(["image", "inspect", image]).await.is_ok(),
            _ => self.output(["image", "exists", image]).await.is_ok(),
        }
    }
}

/// A `--mount` value binding `path` read-write at the same path. Both engines read the value as
/// CSV, so a path with a comma or a quote is quoted (`--volume` cannot carry a `:` at all).
fn same_path_bind(path: &Path) -> String {
    let path = path.display().to_string();
    let field = |key: &str| {
        let field = format!("{key}={path}");
        if field.contains([',', '"']) {
            format!("\"{}\"", field.replace('"', "\"\""))
        } else {
            field
        }
    };
    format!("type=bind,{},{}", field("source"), field("destination"))
}

/// The last non-empty line of some output.
pub fn last_line(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .rfind(|line| !line.is_empty())
        .map(str::to_owned)
}

/// The container an engine's error text says does not exist: podman says "no container with
/// name or ID \"x\" found: no such container", docker "No such container: x".
fn no_such_container(text: &str) -> Option<String> {
    let lower = text.to_lowercase();
    if !lower.contains("no such container") {
        return None;
    }
    let quoted = text.split('"').nth(1);
    let after = text.rsplit_once(": ").map(|(_, name)| name.trim());
    Some(
        quoted
            .or(after.filter(|name| !name.to_lowercase().contains(' ')))
            .unwrap_or_default()
            .to_owned(),
    )
}

/// Whether an engine's error text says the image does not exist.
pub fn is_missing_image(text: &str) -> bool {
    let text = text.to_lowercase();
    [
        "image not known",
        "manifest unknown",
        "no such image",
        "pull access denied",
        "repository does not exist",
        "not found: manifest",
        "unable to find image",
        "name unknown",
        "initializing source",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}

/// The uid and gid apps run as: the host user's, or 1000:1000 when the host user is root (the
/// platform never runs an app as root, and xterm as root without capabilities cannot start).
pub fn app_user(setting: &str) -> Result<(u32, u32), String> {
    if setting == "auto" {
        // SAFETY: these calls only read the process's credentials.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        return Ok(if uid == 0 { (1000, 1000) } else { (uid, gid) });
    }
    let (uid, gid) = setting.split_once(':').unwrap_or((setting, setting));
    match (uid.parse::<u32>(), gid.parse::<u32>()) {
        (Ok(0), _) => {
            Err("launch.user must not be root (0): the platform never runs apps as root".to_owned())
        }
        (Ok(uid), Ok(gid)) => Ok((uid, gid)),
        _ => Err(format!(
            "launch.user {setting:?} must be `auto` or `uid:gid`"
        )),
    }
}

/// Makes a path owned by the app's user, so a 0600 cookie is readable inside the container.
pub fn give_to(path: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> RunSpec {
        RunSpec {
            id: "abc123".into(),
            name: "arcade-abc123".into(),
            hostname: "terminal-abc123".into(),
            image: "images.canfar.net/skaha/terminal:1.0".into(),
            app: "terminal:1.0".into(),
            uid: 1000,
            gid: 1000,
            host_uid: 0,
            launch_dir: "/run/user/0/arcade/abc123".into(),
            display: Display::parse(":5").unwrap(),
            session: ":5".into(),
            env: vec![("DISPLAY".into(), ":5".into())],
            env_file: Some("/run/user/0/arcade/abc123/env".into()),
            cores: Some(2),
            ram_gb: Some(4),
            gpus: None,
            network: "none".into(),
            shared: None,
            volumes: vec![],
            binds: vec!["/data/My Data, 2".into()],
            pull: "missing".into(),
        }
    }

    #[test]
    fn run_is_hardened() {
        let engine = Engine {
            kind: Backend::Podman,
            program: "podman".into(),
            conf: None,
        };
        let args: Vec<String> = engine
            .run_args(&spec())
            .into_iter()
            .map(|arg| arg.into_string().unwrap())
            .collect();
        for expected in [
            "--rm",
            "--network=none",
            "--user=1000:1000",
            "--cap-drop=ALL",
            "--security-opt=no-new-privileges",
            "--init",
            "--volume=/tmp/.X11-unix/X5:/tmp/.X11-unix/X5:ro",
            "--volume=/run/user/0/arcade/abc123:/run/arcade:ro",
            "--label=net.canfar.arcade.id=abc123",
            "--cpus=2",
            "--memory=4g",
            "--entrypoint=/bin/sh",
            "--mount=type=bind,\"source=/data/My Data, 2\",\"destination=/data/My Data, 2\"",
        ] {
            assert!(
                args.iter().any(|arg| arg == expected),
                "{expected} missing: {args:?}"
            );
        }
        // The operator's variables come from a private file, never from the command line.
        assert!(
            args.iter()
                .any(|arg| arg == "--env-file=/run/user/0/arcade/abc123/env"),
            "{args:?}"
        );
        assert_eq!(args[args.len() - 2], "images.canfar.net/skaha/terminal:1.0");
        assert_eq!(args[args.len() - 1], "/run/arcade/entry.sh");
        assert!(!args.iter().any(|arg| arg.contains("/tmp/.X11-unix:")));
    }

    #[test]
    fn docker_gets_a_pull_policy_it_knows() {
        let args = |kind: Backend, pull: &str| -> Vec<String> {
            let engine = Engine {
                kind,
                program: kind.to_string().into(),
                conf: None,
            };
            let spec = RunSpec {
                pull: pull.into(),
                ..spec()
            };
            engine
                .run_args(&spec)
                .into_iter()
                .map(|arg| arg.into_string().unwrap())
                .filter(|arg| arg.starts_with("--pull="))
                .collect()
        };
        assert_eq!(args(Backend::Docker, "newer"), ["--pull=always"]);
        assert_eq!(args(Backend::Docker, "never"), ["--pull=never"]);
        assert_eq!(args(Backend::Podman, "newer"), ["--pull=newer"]);
    }

    #[test]
    fn gpus_are_counted_as_each_engine_counts_them() {
        let args = |kind: Backend, gpus: Option<u32>| -> Vec<String> {
            let engine = Engine {
                kind,
                program: kind.to_string().into(),
                conf: None,
            };
            let spec = RunSpec { gpus, ..spec() };
            engine
                .run_args(&spec)
                .into_iter()
                .map(|arg| arg.into_string().unwrap())
                .filter(|arg| arg.contains("gpu"))
                .collect()
        };
        assert_eq!(args(Backend::Docker, Some(2)), ["--gpus=2"]);
        assert_eq!(
            args(Backend::Podman, Some(2)),
            ["--device=nvidia.com/gpu=0", "--device=nvidia.com/gpu=1"]
        );
        assert!(args(Backend::Podman, Some(0)).is_empty());
        assert!(args(Backend::Docker, None).is_empty());
    }

    #[test]
    fn never_root() {
        assert!(app_user("0:0").is_err());
        assert_eq!(app_user("1234:99").unwrap(), (1234, 99));
        assert!(app_user("bob").is_err());
        assert_ne!(app_user("auto").unwrap().0, 0);
    }

    #[test]
    fn recognises_missing_containers() {
        let podman = Engine {
            kind: Backend::Podman,
            program: "podman".into(),
            conf: None,
        };
        assert_eq!(
            podman.classify(
                "Error: no container with name or ID \"arcade-abc\" found: no such container"
                    .into()
            ),
            Error::NoSuchContainer {
                engine: Backend::Podman,
                name: "arcade-abc".into()
            }
        );
        assert_eq!(
            podman.classify("Error response from daemon: No such container: arcade-abc".into()),
            Error::NoSuchContainer {
                engine: Backend::Podman,
                name: "arcade-abc".into()
            }
        );
        assert!(matches!(
            podman.classify("Error: OCI runtime error".into()),
            Error::Failed { .. }
        ));
    }

    #[test]
    fn recognises_missing_images() {
        assert!(is_missing_image("Error: localhost/nope:1: image not known"));
        assert!(!is_missing_image("Error: OCI runtime error"));
    }

    /// The configured containers.conf reaches every command, not only an app's `run`: a
    /// session's pod and a check's containers are started with the same limits.
    #[test]
    fn every_command_gets_the_containers_conf() {
        let engine = Engine {
            kind: Backend::Podman,
            program: "podman".into(),
            conf: Some("/etc/arcade/containers.conf".into()),
        };
        let command = engine.command(["pod", "start", "x"]);
        let conf = command
            .as_std()
            .get_envs()
            .find(|(key, _)| *key == "CONTAINERS_CONF")
            .and_then(|(_, value)| value);
        assert_eq!(
            conf,
            Some(std::ffi::OsStr::new("/etc/arcade/containers.conf"))
        );
    }
}
