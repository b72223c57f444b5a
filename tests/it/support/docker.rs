//! A private docker daemon for the tests: one `dockerd` per test process, started by hand with its
//! own config, data root, exec root, pid file and socket in a temporary folder, without a bridge
//! and without iptables rules. It touches neither the host's networking nor podman's storage nor
//! the daemon of another test process; tests reach it with `DOCKER_HOST`. Images are
//! `docker import`-ed into it from the same roots as the podman ones (`images.rs`).
//!
//! The daemon lives as long as the test process: an `atexit` hook stops it (dockerd then stops its
//! containers and unmounts its layers) and removes its folder. Should the test process die without
//! exiting (SIGKILL, a crash), the daemon still gets SIGTERM through `PR_SET_PDEATHSIG`, and only
//! its folder under the temporary directory is left behind.

use std::ffi::OsString;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::images::{self, Spec};

/// The running test daemon.
pub struct Daemon {
    /// `DOCKER_HOST` for clients: `unix:///…/docker.sock`.
    pub host: String,
    /// The docker client that was checked to talk to this daemon.
    pub client: PathBuf,
    /// `PATH` for arcade, so that the first `docker` on it is [`Daemon::client`].
    pub path: OsString,
    dir: PathBuf,
    child: Mutex<Child>,
}

static DAEMON: OnceLock<Daemon> = OnceLock::new();

/// The test process's daemon, started on first use.
pub fn daemon() -> &'static Daemon {
    DAEMON.get_or_init(Daemon::start)
}

/// A docker client command aimed at the test daemon.
pub fn docker() -> Command {
    let daemon = daemon();
    let mut command = Command::new(&daemon.client);
    command
        .env("DOCKER_HOST", &daemon.host)
        // The client keeps its config (contexts, credentials) in the daemon's folder, not in the
        // developer's ~/.docker.
        .env("DOCKER_CONFIG", daemon.dir.join("client"))
        .stdin(Stdio::null());
    command
}

/// Builds the image into the test daemon unless it is there, and returns its reference: the same
/// one [`images::build`] gives podman.
pub fn build(spec: &Spec) -> String {
    static BUILDS: Mutex<()> = Mutex::new(());
    assert!(
        spec.arch.is_none(),
        "docker test images are built for the host's architecture only"
    );
    let reference = images::reference(spec);
    // Parallel tests asking for the same image import it once.
    let _guard = BUILDS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let exists = docker()
        .args(["image", "inspect", "--format", "{{.Id}}", &reference])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run docker image inspect")
        .success();
    if !exists {
        let mut import = docker();
        import.arg("import");
        for change in &spec.changes {
            import.args(["--change", change]);
        }
        import.args(["-", &reference]);
        images::import_root(spec, import);
    }
    reference
}

/// Removes the containers a test started on its display, whatever state they are in.
pub fn remove_containers_on(display: &str) {
    let ids = images::containers_on(docker(), display);
    if !ids.is_empty() {
        let _ = docker()
            .args(["rm", "--force"])
            .args(&ids)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Daemon {
    fn start() -> Daemon {
        let dockerd = find_dockerd();
        let dir = tempfile::Builder::new()
            .prefix("arcade-dockerd-")
            .tempdir()
            .expect("create a folder for dockerd")
            .keep();
        // dockerd 20.10 writes its trust key to /etc/docker/key.json unless its config file says
        // otherwise (there is no command-line flag for it); an empty config also keeps a host's
        // /etc/docker/daemon.json out of the tests.
        let config = dir.join("daemon.json");
        std::fs::write(
            &config,
            serde_json::json!({ "deprecated-key-path": dir.join("key.json") }).to_string(),
        )
        .expect("write daemon.json");
        let socket = dir.join("docker.sock");
        let log = std::fs::File::create(dir.join("dockerd.log")).expect("create dockerd.log");
        let mut command = Command::new(&dockerd);
        command
            .arg("--config-file")
            .arg(&config)
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("docker.pid"))
            .arg("--host")
            .arg(format!("unix://{}", socket.display()))
            // No docker0 bridge, no iptables chains, no forwarding sysctl: containers of arcade
            // run with --network=none anyway, and the host's networking stays as it was.
            .args([
                "--bridge=none",
                "--iptables=false",
                "--ip6tables=false",
                "--ip-forward=false",
                "--ip-masq=false",
                "--userland-proxy=false",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("open dockerd.log"))
            .stderr(log);
        // SAFETY: prctl is async-signal-safe; it asks the kernel to send SIGTERM to dockerd when
        // the thread that started it ends.
        unsafe {
            use std::os::unix::process::CommandExt as _;
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        // The parent-death signal fires when the spawning *thread* ends, and test threads end
        // with their test: spawn from a thread that lives as long as the process.
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("dockerd-parent".into())
            .spawn(move || {
                let _ = sender.send(command.spawn());
                loop {
                    std::thread::park();
                }
            })
            .expect("start the dockerd parent thread");
        let mut child = receiver
            .recv()
            .expect("the dockerd parent thread answers")
            .unwrap_or_else(|err| panic!("start {}: {err}", dockerd.display()));
        // SAFETY: `stop_at_exit` is an `extern "C" fn()` that only reads the initialised daemon.
        unsafe { libc::atexit(stop_at_exit) };

        let log_tail = || {
            let text = std::fs::read_to_string(dir.join("dockerd.log")).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(15)..].join("\n")
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !ping(&socket) {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("dockerd exited while starting ({status}):\n{}", log_tail());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "dockerd did not answer on {} within 60 s:\n{}",
                    socket.display(),
                    log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }

        let host = format!("unix://{}", socket.display());
        let (client, path) = choose_client(&host, &dir);
        Daemon {
            host,
            client,
            path,
            dir,
            child: Mutex::new(child),
        }
    }

    /// Stops the daemon (it stops its containers and unmounts its layers first) and removes its
    /// folder; a daemon that does not stop in time is killed and its folder left.
    fn stop(&self) {
        let mut child = self
            .child
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // SAFETY: kill(2) on our own child, which has not been waited for yet.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while let Ok(None) = child.try_wait() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

extern "C" fn stop_at_exit() {
    if let Some(daemon) = DAEMON.get() {
        daemon.stop();
    }
}

/// `dockerd` on `PATH` or in /usr/sbin (a user's `PATH` may not have the sbin folders).
fn find_dockerd() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("dockerd"))
        .chain([PathBuf::from("/usr/sbin/dockerd")])
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "dockerd is not installed; the docker tests need it: apt-get install docker.io \
                 (.ci/run installs it)"
            )
        })
}

/// Whether the daemon answers the API's `/_ping` on its socket.
fn ping(socket: &Path) -> bool {
    let Ok(mut stream) = std::os::unix::net::UnixStream::connect(socket) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    if stream
        .write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut reply = String::new();
    let _ = stream.read_to_string(&mut reply);
    reply.starts_with("HTTP/1.0 200") || reply.starts_with("HTTP/1.1 200")
}

/// The docker client arcade will run, and the `PATH` that makes it the first `docker`: the first
/// on the test's `PATH` if it talks to the daemon (here /usr/local/bin/docker, a newer client that
/// negotiates the daemon's API version down), else Debian's /usr/bin/docker put first.
fn choose_client(host: &str, dir: &Path) -> (PathBuf, OsString) {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let first = std::env::split_paths(&path)
        .map(|dir| dir.join("docker"))
        .find(|candidate| candidate.is_file());
    let debian = PathBuf::from("/usr/bin/docker");
    let mut tried = Vec::new();
    for client in first.into_iter().chain([debian]) {
        if tried.iter().any(|(tried, _)| tried == &client) || !client.is_file() {
            continue;
        }
        let output = Command::new(&client)
            .args(["version", "--format", "{{.Server.Version}}"])
            .env("DOCKER_HOST", host)
            .env("DOCKER_CONFIG", dir.join("client"))
            .stdin(Stdio::null())
            .output();
        match output {
            Ok(output) if output.status.success() => {
                let dir = client.parent().expect("a client in a folder").to_owned();
                let path =
                    std::env::join_paths(std::iter::once(dir).chain(std::env::split_paths(&path)))
                        .expect("join PATH");
                return (client, path);
            }
            Ok(output) => tried.push((
                client,
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                ),
            )),
            Err(err) => tried.push((client, err.to_string())),
        }
    }
    panic!(
        "no docker client talks to the test daemon at {host} (apt-get install docker.io; .ci/run \
         installs it): {tried:?}"
    );
}
