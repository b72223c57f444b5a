//! Real astronomy apps for the tests: one image holding SAOImage DS9, TOPCAT and Aladin from
//! Debian's own packages (with a JRE and xterm), built with `mmdebstrap` from the host's
//! configured Debian bookworm sources and `podman import`-ed once per machine under tags that
//! hash its recipe, in the platform's three shapes (a `startup.sh` that runs the app and ignores
//! its argument, one that execs its argument, none at all); the same images as a cached archive
//! for a test's private dockerd; and a prototype of running an image as skaha runs a pod: its own
//! host name and network, the desktop's X server over TCP, an arbitrary uid, the platform's
//! entry script.
//!
//! The facts the expectations here come from (window classes, titles, what a pod's window
//! carries) were measured on this machine and are written down in `notes/real-apps.md` beside
//! the checkout.

use std::io::{Read as _, Write as _};
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use x11rb::protocol::xproto::{ConnectionExt as _, Family, HostMode};
use x11rb::rust_connection::RustConnection;

use super::images::podman;
use super::xvfb::{Window, Xvfb, top_level_windows};
use super::{docker, require_tool, wait_for};

/// An app in the image, and what its main window shows (measured; see the module comment).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum App {
    Ds9,
    Topcat,
    Aladin,
}

impl App {
    pub const ALL: [App; 3] = [App::Ds9, App::Topcat, App::Aladin];

    /// The command on the image's `PATH`; also the image's repository suffix.
    pub fn command(self) -> &'static str {
        match self {
            App::Ds9 => "ds9",
            App::Topcat => "topcat",
            App::Aladin => "aladin",
        }
    }

    /// `WM_CLASS` of the main window as (instance, class). Tk names it after the script it runs;
    /// Java's AWT after the main class, dots turned into dashes.
    pub fn main_class(self) -> (&'static str, &'static str) {
        match self {
            App::Ds9 => ("ds9.tcl", "Ds9.tcl"),
            App::Topcat => (
                "uk-ac-starlink-topcat-Driver",
                "uk-ac-starlink-topcat-Driver",
            ),
            App::Aladin => ("cds-aladin-Aladin", "cds-aladin-Aladin"),
        }
    }

    /// How the main window's title starts. Aladin maps a dialog of the same class first (titled
    /// "Information" when it cannot reach its servers), so the class alone does not find it.
    pub fn main_title(self) -> &'static str {
        match self {
            App::Ds9 => "SAOImage ds9",
            App::Topcat => "TOPCAT",
            App::Aladin => "Aladin v",
        }
    }

    /// Whether `window` is this app's main window.
    pub fn is_main(self, window: &Window) -> bool {
        let (instance, class) = self.main_class();
        window.viewable
            && window.title.starts_with(self.main_title())
            && window.class == format!("{instance} {class}")
    }
}

/// The platform's shapes of desktop-app image, all over the one root file system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `/skaha/startup.sh` runs the app and ignores the launcher it is given, as the platform's
    /// ds9 and topcat images do.
    Runs(App),
    /// `/skaha/startup.sh` execs the launcher it is given.
    Execs,
    /// No `/skaha/startup.sh`: the platform runs its xterm launcher.
    Bare,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Bare,
        Kind::Runs(App::Ds9),
        Kind::Runs(App::Topcat),
        Kind::Runs(App::Aladin),
        Kind::Execs,
    ];

    fn repository(self) -> String {
        match self {
            Kind::Bare => "astro-apps".to_owned(),
            Kind::Runs(app) => format!("astro-apps-{}", app.command()),
            Kind::Execs => "astro-apps-execs".to_owned(),
        }
    }

    /// The `/skaha/startup.sh` this kind adds over the root file system, if any.
    fn startup_script(self) -> Option<String> {
        match self {
            Kind::Bare => None,
            Kind::Runs(app) => Some(format!(
                "#!/bin/sh\n# Like the platform's {0} image: runs {0} and ignores the launcher \
                 it is given.\n{0}\n",
                app.command()
            )),
            Kind::Execs => Some(
                "#!/bin/sh\n# Runs the launcher it is given, as most platform images do.\n\
                 exec \"$@\"\n"
                    .to_owned(),
            ),
        }
    }
}

/// The images of one recipe, present in an engine.
#[derive(Debug)]
pub struct Images {
    /// A hash of the recipe: the tag of every image.
    key: String,
}

impl Images {
    /// The reference of an image kind: `localhost/arcade-test/<repository>:<recipe hash>`.
    pub fn reference(&self, kind: Kind) -> String {
        format!("localhost/arcade-test/{}:{}", kind.repository(), self.key)
    }

    fn references(&self) -> Vec<String> {
        Kind::ALL.iter().map(|kind| self.reference(*kind)).collect()
    }
}

// The recipe. Everything from here to `recipe_key` is hashed into the images' tag, so a change to
// any of it builds new images; `REVISION` covers the code that carries the recipe out.

/// Bumped when the code that carries out the recipe (`bootstrap`, `add_layer`) changes meaning.
const REVISION: u32 = 1;

const SUITE: &str = "bookworm";

/// The apps, the platform's default terminal, and `dbus-x11`, which satisfies the session bus
/// the Java stack asks for without pulling in systemd.
const PACKAGES: &[&str] = &[
    "saods9",
    "topcat",
    "aladin",
    "default-jre",
    "xterm",
    "dbus-x11",
];

/// `--variant=essential` installs only what the packages need. Manual pages, translations and
/// documentation are left out (a third of the unpacking time), but `/usr/share/man/man1` must
/// exist: the JRE's post-installation script links into it and fails without it.
const MMDEBSTRAP_OPTIONS: &[&str] = &[
    "--variant=essential",
    "--dpkgopt=force-unsafe-io",
    "--dpkgopt=path-exclude=/usr/share/man/*",
    "--dpkgopt=path-exclude=/usr/share/locale/*",
    "--dpkgopt=path-exclude=/usr/share/doc/*",
    "--dpkgopt=path-include=/usr/share/doc/*/copyright",
    "--essential-hook=mkdir -p \"$1/usr/share/man/man1\"",
];

/// The host's apt settings that decide whether it can reach and trust its archive (a snapshot
/// mirror's expired `Valid-Until`, a proxy); passed on to mmdebstrap's apt when set.
const HOST_APT_KEYS: &[&str] = &[
    "Acquire::Check-Valid-Until",
    "Acquire::Check-Date",
    "Acquire::http::Proxy",
    "Acquire::https::Proxy",
];

/// The layer that puts a kind's `startup.sh` in place.
const CONTAINERFILE: &str = "FROM {base}\nCOPY startup.sh /skaha/startup.sh\n";

/// What the host contributes to the recipe: its Debian sources and apt settings.
#[derive(Debug, Hash)]
struct HostApt {
    /// One-line `deb URI SUITE COMPONENT` entries.
    sources: Vec<String>,
    /// apt.conf lines such as `Acquire::Check-Valid-Until "false";`.
    options: Vec<String>,
}

/// The tag for this recipe on this host: the first 16 hex digits of a SHA-256 over every part.
fn recipe_key(host: &HostApt) -> String {
    let scripts: Vec<Option<String>> = Kind::ALL.iter().map(|kind| kind.startup_script()).collect();
    let recipe = format!(
        "{REVISION}\n{SUITE}\n{PACKAGES:?}\n{MMDEBSTRAP_OPTIONS:?}\n{CONTAINERFILE}\n{scripts:?}\n\
         {host:?}\n"
    );
    let digest = ring::digest::digest(&ring::digest::SHA256, recipe.as_bytes());
    digest.as_ref()[..8]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Where the build lock, the log of the last build and the docker archives live: outside any
/// test's temporary folder, since the images outlive test runs.
fn cache_dir() -> PathBuf {
    let dir = PathBuf::from("/var/tmp/arcade-test");
    std::fs::create_dir_all(&dir).unwrap_or_else(|err| panic!("create {}: {err}", dir.display()));
    dir
}

/// Holds the machine-wide build lock while alive, so parallel test processes build once.
struct BuildLock(std::fs::File);

impl BuildLock {
    fn take() -> BuildLock {
        let path = cache_dir().join("real-apps.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .unwrap_or_else(|err| panic!("open {}: {err}", path.display()));
        file.lock()
            .unwrap_or_else(|err| panic!("lock {}: {err}", path.display()));
        BuildLock(file)
    }
}

/// The images in podman, built on first use on this machine (about two minutes here) and found
/// by their tag afterwards.
pub fn podman_images() -> &'static Images {
    static IMAGES: OnceLock<Images> = OnceLock::new();
    IMAGES.get_or_init(|| {
        let host = host_apt();
        let images = Images {
            key: recipe_key(&host),
        };
        let _lock = BuildLock::take();
        if podman_has(&images.references()) {
            return images;
        }
        let base = images.reference(Kind::Bare);
        if !podman_has(std::slice::from_ref(&base)) {
            bootstrap(&host, &base);
        }
        for kind in Kind::ALL {
            let reference = images.reference(kind);
            if let Some(script) = kind.startup_script()
                && !podman_has(std::slice::from_ref(&reference))
            {
                add_layer(&base, &script, &reference);
            }
        }
        images
    })
}

/// The same images in the test process's private dockerd, loaded from an archive that is saved
/// from podman once per machine (`podman save`, keyed like the images) and kept in the cache.
pub fn docker_images() -> &'static Images {
    static IMAGES: OnceLock<Images> = OnceLock::new();
    IMAGES.get_or_init(|| {
        let images = Images {
            key: podman_images().key.clone(),
        };
        let archive = docker_archive(&images);
        run_ok(
            docker::docker().arg("load").arg("--input").arg(&archive),
            &format!("docker load --input {}", archive.display()),
        );
        for reference in images.references() {
            let found = docker::docker()
                .args(["image", "inspect", "--format", "{{.Id}}", &reference])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("run docker image inspect")
                .success();
            assert!(
                found,
                "{reference} is not in the docker daemon after docker load"
            );
        }
        images
    })
}

/// Runs `command` to its end; panics with `what` and its stderr unless it succeeded.
#[track_caller]
fn run_ok(command: &mut Command, what: &str) {
    let output = command
        .output()
        .unwrap_or_else(|err| panic!("{what}: {err}"));
    assert!(
        output.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The docker-archive of every kind, saved from podman unless the cache has it.
fn docker_archive(images: &Images) -> PathBuf {
    let path = cache_dir().join(format!("real-apps-{}.docker.tar", images.key));
    let _lock = BuildLock::take();
    if path.is_file() {
        return path;
    }
    let partial = path.with_extension("tar.partial");
    run_ok(
        podman()
            .args(["save", "--quiet", "--format", "docker-archive"])
            .arg("--multi-image-archive")
            .arg("--output")
            .arg(&partial)
            .args(images.references()),
        &format!("podman save to {}", partial.display()),
    );
    std::fs::rename(&partial, &path)
        .unwrap_or_else(|err| panic!("rename {} into place: {err}", partial.display()));
    // Archives of earlier recipes are a gigabyte each; podman still has their images, should a
    // checkout of an earlier recipe want one again.
    for entry in std::fs::read_dir(cache_dir())
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("real-apps-") && name.contains(".docker.tar") && entry.path() != path {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    path
}

/// Whether podman has every one of `references` (one `podman image inspect` for them all).
fn podman_has(references: &[String]) -> bool {
    podman()
        .args(["image", "inspect", "--format", "{{.Id}}"])
        .args(references)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run podman image inspect")
        .success()
}

impl Images {
    /// The image in which `startup.sh` runs `app` ([`Kind::Runs`]), under the app's own name in
    /// podman, `localhost/arcade-test/<command>:<recipe hash>`, as the platform names its images
    /// (`skaha/ds9`): arcade knows an app by the last part of its repository, and only then gives
    /// its menu entry the app's window class. The name is added on first use.
    pub fn as_app(&self, app: App) -> String {
        let name = format!("localhost/arcade-test/{}:{}", app.command(), self.key);
        if !podman_has(std::slice::from_ref(&name)) {
            run_ok(
                podman().args(["tag", &self.reference(Kind::Runs(app)), &name]),
                &format!("podman tag of {name}"),
            );
        }
        name
    }
}

/// The host's Debian bookworm sources (main, updates, security, as apt has them configured) and
/// the apt settings it needs to use them. No mirror is named here: whatever the host uses is
/// used.
fn host_apt() -> HostApt {
    let apt_get = require_tool("apt-get", "apt");
    let output = Command::new(apt_get)
        .args(["indextargets", "--format"])
        .arg("$(ORIGIN)|$(CODENAME)|deb $(REPO_URI) $(RELEASE) $(COMPONENT)")
        .arg("Identifier: Packages")
        .output()
        .expect("run apt-get indextargets");
    let text = String::from_utf8_lossy(&output.stdout);
    let mut sources: Vec<String> = text
        .lines()
        .filter_map(|line| {
            let mut fields = line.splitn(3, '|');
            let (origin, codename, entry) = (fields.next()?, fields.next()?, fields.next()?);
            let ours = origin == "Debian"
                && (codename == SUITE || codename.starts_with(&format!("{SUITE}-")));
            ours.then(|| entry.to_owned())
        })
        .collect();
    sources.sort();
    sources.dedup();
    assert!(
        !sources.is_empty(),
        "the host's apt sources have no Debian {SUITE} entry with downloaded lists, which the \
         real-app test images are built from: add one and run apt-get update (.ci/run does)"
    );
    let apt_config = require_tool("apt-config", "apt");
    let options = HOST_APT_KEYS
        .iter()
        .filter_map(|key| {
            let output = Command::new(&apt_config)
                .args(["dump", "--no-empty", "--format", "%f \"%v\";%n", key])
                .output()
                .expect("run apt-config dump");
            let line = String::from_utf8_lossy(&output.stdout).trim().to_owned();
            (!line.is_empty()).then_some(line)
        })
        .collect();
    HostApt { sources, options }
}

/// Builds the root file system with mmdebstrap and streams it into `podman import`. The import
/// goes to a temporary tag that becomes `reference` only once both sides succeeded, so a build cut
/// short never leaves an image that looks complete.
fn bootstrap(host: &HostApt, reference: &str) {
    let mmdebstrap = require_tool("mmdebstrap", "mmdebstrap");
    let log_path = cache_dir().join("real-apps-build.log");
    let log = std::fs::File::create(&log_path)
        .unwrap_or_else(|err| panic!("create {}: {err}", log_path.display()));
    eprintln!(
        "building the real-app test image {reference} (a few minutes; log in {})",
        log_path.display()
    );
    let mut build = Command::new(mmdebstrap);
    build
        .args(MMDEBSTRAP_OPTIONS)
        .arg(format!("--include={}", PACKAGES.join(",")))
        .args(host.options.iter().map(|line| format!("--aptopt={line}")))
        .args([SUITE, "-"])
        .args(&host.sources)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log);
    let mut build = build.spawn().expect("run mmdebstrap");
    let partial = format!("{reference}-partial");
    let import = podman()
        .args(["import", "--quiet", "-", &partial])
        .stdin(build.stdout.take().expect("mmdebstrap's stdout"))
        .stdout(Stdio::null())
        .output()
        .expect("run podman import");
    let built = build.wait().expect("wait for mmdebstrap");
    let tail = || {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    };
    if !built.success() || !import.status.success() {
        let _ = podman().args(["rmi", "--force", &partial]).output();
        panic!(
            "building {reference} failed: mmdebstrap {built}, podman import {} ({}); the end of \
             {}:\n{}",
            import.status,
            String::from_utf8_lossy(&import.stderr).trim(),
            log_path.display(),
            tail()
        );
    }
    for step in [
        vec!["tag", partial.as_str(), reference],
        vec!["untag", partial.as_str(), partial.as_str()],
    ] {
        run_ok(podman().args(&step), &format!("podman {step:?}"));
    }
}

/// `podman build` of a thin layer over `base` that adds `script` as `/skaha/startup.sh`.
fn add_layer(base: &str, script: &str, reference: &str) {
    let context = tempfile::tempdir().expect("create a build context");
    let startup = context.path().join("startup.sh");
    std::fs::write(&startup, script).expect("write startup.sh");
    std::fs::set_permissions(&startup, std::fs::Permissions::from_mode(0o755))
        .expect("make startup.sh executable");
    std::fs::write(
        context.path().join("Containerfile"),
        CONTAINERFILE.replace("{base}", base),
    )
    .expect("write the Containerfile");
    run_ok(
        podman()
            .args(["build", "--quiet", "--pull=never", "--tag", reference])
            .arg(context.path()),
        &format!("podman build of {reference}"),
    );
}

/// The engine a container runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Podman,
    /// The test process's private dockerd.
    Docker,
}

impl Engine {
    /// The engine whose client `command` runs.
    fn of(command: &Command) -> Engine {
        let program = Path::new(command.get_program());
        if program.file_name().is_some_and(|name| name == "docker") {
            Engine::Docker
        } else {
            Engine::Podman
        }
    }

    fn command(self) -> Command {
        match self {
            Engine::Podman => podman(),
            Engine::Docker => docker::docker(),
        }
    }
}

/// A container that is removed, whatever its state, when this is dropped.
pub struct Container {
    pub name: String,
    pub engine: Engine,
}

impl Container {
    /// The container's output so far, for failure messages.
    pub fn logs(&self) -> String {
        let output = self
            .engine
            .command()
            .args(["logs", &self.name])
            .output()
            .expect("run the engine's logs");
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    }

    /// The host PID of the container's first process.
    pub fn pid(&self) -> u32 {
        let output = self
            .engine
            .command()
            .args(["inspect", "--format", "{{.State.Pid}}", &self.name])
            .output()
            .expect("run the engine's inspect");
        let text = String::from_utf8_lossy(&output.stdout);
        text.trim()
            .parse()
            .unwrap_or_else(|_| panic!("no PID for container {}: {text:?}", self.name))
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let mut remove = self.engine.command();
        remove.args(["rm", "--force"]);
        // podman's `rm --force` stops with SIGTERM and waits 10 s before SIGKILL, and a shell or
        // wish running as a pod's PID 1 ignores SIGTERM; docker's kills at once.
        if self.engine == Engine::Podman {
            remove.args(["--time", "0"]);
        }
        let _ = remove
            .arg(&self.name)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A unique container name for this test process.
fn container_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// An arbitrary uid and gid with no entry in the images' `/etc/passwd`.
pub const UID: u32 = 12345;

/// Runs `command` in `image` with bare podman on `xvfb` as the platform would run an app, minus
/// the platform's entry script: no network, uid [`UID`], all capabilities dropped, a fresh home
/// outside the image, only the display's socket and a FamilyWild cookie mounted. The container
/// runs detached; `folder` holds the cookie and must outlive it.
pub fn run_local(image: &str, xvfb: &Xvfb, folder: &Path, command: &[&str]) -> Container {
    run_local_in(podman(), image, xvfb, folder, command)
}

/// [`run_local`] with another engine's client, such as [`docker::docker`]'s.
pub fn run_local_in(
    mut engine: Command,
    image: &str,
    xvfb: &Xvfb,
    folder: &Path,
    command: &[&str],
) -> Container {
    let cookie = wild_cookie(xvfb, folder);
    let socket = format!("/tmp/.X11-unix/X{}", xvfb.number);
    let container = Container {
        name: container_name("arcade-real-app"),
        engine: Engine::of(&engine),
    };
    run_ok(
        engine
            .args(["run", "--detach", "--name", &container.name])
            .args(["--network=none", &format!("--user={UID}:{UID}")])
            .args([
                "--cap-drop=ALL",
                "--security-opt=no-new-privileges",
                "--init",
            ])
            .args(["--tmpfs=/home/app:rw,mode=1777", "--workdir=/home/app"])
            .args([
                "--env=HOME=/home/app",
                &format!("--env=DISPLAY={}", xvfb.display()),
            ])
            .arg("--env=XAUTHORITY=/run/x11/cookie")
            .arg(format!("--volume={}:/run/x11/cookie:ro", cookie.display()))
            .arg(format!("--volume={socket}:{socket}:ro"))
            .arg(image)
            .args(command),
        &format!("{:?} run of {image}", container.engine),
    );
    container
}

/// The display's cookie rewritten to FamilyWild (a cookie bound to the host's name is refused
/// from inside a container), owned by [`UID`].
fn wild_cookie(xvfb: &Xvfb, folder: &Path) -> PathBuf {
    let xauth = require_tool("xauth", "xauth");
    let listed = Command::new(&xauth)
        .arg("-f")
        .arg(&xvfb.auth)
        .args(["nlist", &xvfb.display()])
        .output()
        .expect("run xauth nlist");
    let entry = String::from_utf8_lossy(&listed.stdout);
    let entry = entry.lines().next().expect("the display's cookie entry");
    let path = folder.join("cookie");
    let mut merge = Command::new(&xauth)
        .arg("-f")
        .arg(&path)
        .args(["nmerge", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run xauth nmerge");
    // `xauth nlist` writes the family first, as four hex digits.
    writeln!(merge.stdin.take().unwrap(), "ffff{}", &entry[4..]).unwrap();
    assert!(merge.wait().unwrap().success(), "xauth nmerge failed");
    std::os::unix::fs::chown(&path, Some(UID), Some(UID)).expect("chown the cookie");
    path
}

/// The first viewable main window of `app` among `windows`, waited for; on timeout the panic
/// shows every window seen and `logs` (the app's output).
#[track_caller]
pub fn wait_for_main(
    app: App,
    windows: impl Fn() -> Vec<Window>,
    logs: impl Fn() -> String,
) -> Window {
    wait_for_window(&format!("{app:?}'s main window"), windows, logs, |window| {
        app.is_main(window)
    })
}

/// The first window among `windows` that `wanted` accepts, waited for; on timeout the panic
/// names `what` and shows every window seen and `logs` (the app's output).
#[track_caller]
pub fn wait_for_window(
    what: &str,
    windows: impl Fn() -> Vec<Window>,
    logs: impl Fn() -> String,
    wanted: impl Fn(&Window) -> bool,
) -> Window {
    // A JVM's main window takes about 4 s on an idle machine; tests share two cores.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let seen = windows();
        if let Some(window) = seen.iter().find(|window| wanted(window)) {
            return window.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what} did not map; windows: {seen:#?}\napp output:\n{}",
            logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The host PID the X server knows for the client owning `window` (XRes), if any: none for a
/// client over TCP.
pub fn client_pid(conn: &RustConnection, window: u32) -> Option<u32> {
    use x11rb::protocol::res::{ClientIdMask, ClientIdSpec, ConnectionExt as _};
    let spec = ClientIdSpec {
        client: window,
        mask: ClientIdMask::LOCAL_CLIENT_PID,
    };
    let reply = conn.res_query_client_ids(&[spec]).ok()?.reply().ok()?;
    reply.ids.first()?.value.first().copied()
}

// The pod prototype.

/// A desktop session as skaha's app pods see it: Xvfb in a network namespace of its own (the
/// desktop pod), listening on TCP on a private pod network (a bridge in that namespace, in the
/// benchmarking range 198.18.0.0/15) that each [`Pod`] joins with a veth pair. Nothing listens
/// on the host's own network; tests reach the display through its socket file, with a cookie.
/// Pods get no cookie, as on the platform (where the desktop runs `xhost +`): each pod's
/// address alone is let in.
pub struct PodDesktop {
    xvfb: Child,
    pub number: u32,
    /// The pod network's /24: 198.18.0.0/15 holds 512 of them, one per desktop.
    subnet: u32,
    cookie: Vec<u8>,
    next_pod: std::sync::atomic::AtomicU32,
    _reservation: std::os::unix::net::UnixListener,
    _auth: tempfile::TempDir,
    /// Deleted after Xvfb is stopped (fields drop after `drop` runs).
    namespace: Namespace,
}

impl PodDesktop {
    pub fn start() -> PodDesktop {
        let (subnet, namespace) = claim_namespace();
        let ip = |args: &[&str]| run_ip(&namespace.0, args);
        ip(&["link", "set", "lo", "up"]);
        ip(&["link", "add", "pods", "type", "bridge"]);
        let address = format!("{}/24", pod_address(subnet, 1));
        ip(&["address", "add", &address, "dev", "pods"]);
        ip(&["link", "set", "pods", "up"]);
        // Xvfb started with `-displayfd` takes the first number whose abstract socket it can
        // bind, and the abstract sockets of this namespace are invisible there: one starting in
        // the host's namespace would take this display's number and replace its socket file. Such
        // servers start from 0, so this display keeps far above them, and its number's abstract
        // socket in the host's namespace is held so that none of them takes it anyway.
        let number = 1000 + subnet;
        let reservation = reserve_display(number);
        let (xvfb, cookie, auth) = start_tcp_xvfb(&namespace.0, number);
        let desktop = PodDesktop {
            xvfb,
            number,
            _reservation: reservation,
            subnet,
            namespace,
            cookie,
            next_pod: std::sync::atomic::AtomicU32::new(2),
            _auth: auth,
        };
        wait_for(
            "the pod desktop's Xvfb to accept connections",
            Duration::from_secs(10),
            || desktop.connect().ok(),
        );
        desktop
    }

    /// `DISPLAY` for pods: the desktop pod's address and the display, as skaha sets it.
    pub fn display_for_pods(&self) -> String {
        format!("{}:{}", pod_address(self.subnet, 1), self.number)
    }

    /// Connects through the display's socket file, with the cookie.
    pub fn connect(&self) -> Result<RustConnection, String> {
        let socket = format!("/tmp/.X11-unix/X{}", self.number);
        let stream = x11rb::rust_connection::DefaultStream::connect(
            &x11rb::reexports::x11rb_protocol::parse_display::ConnectAddress::Socket(socket),
        )
        .map_err(|err| err.to_string())?
        .0;
        RustConnection::connect_to_stream_with_auth_info(
            stream,
            0,
            b"MIT-MAGIC-COOKIE-1".to_vec(),
            self.cookie.clone(),
        )
        .map_err(|err| err.to_string())
    }

    /// The top-level windows, as [`Xvfb::windows`] reports them.
    pub fn windows(&self) -> Vec<Window> {
        let conn = self.connect().expect("connect to the pod desktop");
        top_level_windows(&conn)
    }

    /// The desktop pod's address on the pod network.
    pub fn address(&self) -> Ipv4Addr {
        pod_address(self.subnet, 1)
    }

    /// The desktop's network namespace (`ip netns exec` it to run as the desktop pod does).
    pub fn namespace(&self) -> &str {
        &self.namespace.0
    }

    /// Lets `address` connect without a cookie (what `xhost +inet:address` does).
    fn allow(&self, address: Ipv4Addr) {
        let conn = self.connect().expect("connect to the pod desktop");
        conn.change_hosts(HostMode::INSERT, Family::INTERNET, &address.octets())
            .map_err(|err| err.to_string())
            .and_then(|cookie| cookie.check().map_err(|err| err.to_string()))
            .unwrap_or_else(|err| panic!("let {address} in to the pod desktop: {err}"));
    }
}

impl Drop for PodDesktop {
    fn drop(&mut self) {
        // SIGTERM lets Xvfb remove its lock and socket files, which SIGKILL would leave behind.
        // SAFETY: kill(2) on our own child, which has not been waited for yet.
        unsafe { libc::kill(self.xvfb.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while let Ok(None) = self.xvfb.try_wait() {
            if std::time::Instant::now() > deadline {
                let _ = self.xvfb.kill();
                let _ = self.xvfb.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// An app pod: a container with its own network namespace on the desktop's pod network, its
/// own host name (as Kubernetes sets it, also in `/etc/hosts`), `DISPLAY` over TCP and no
/// cookie, uid [`UID`] with no passwd entry (Kubernetes adds none), all capabilities dropped, a
/// fresh home, and the platform's entry: `/skaha/init.sh`, then `/skaha/startup.sh <launcher>`
/// or the launcher, an xterm titled with the app's name. Stopped and removed on drop.
pub struct Pod {
    pub host_name: String,
    pub address: Ipv4Addr,
    namespace: Namespace,
    container: Option<Container>,
    _scripts: tempfile::TempDir,
}

impl Pod {
    /// A pod's own network namespace and address on `desktop`, and the name its container
    /// will have.
    fn network(host_name: &str, desktop: &PodDesktop) -> (Pod, Container) {
        let index = desktop
            .next_pod
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        assert!(index < 255, "a pod desktop holds at most 253 pods");
        let address = pod_address(desktop.subnet, index);
        let pod = Pod {
            host_name: host_name.to_owned(),
            address,
            namespace: join_pod_network(desktop, index, address),
            container: None,
            _scripts: platform_scripts(),
        };
        desktop.allow(address);
        let container = Container {
            name: container_name("arcade-pod"),
            engine: Engine::Podman,
        };
        (pod, container)
    }

    pub fn run(image: &str, host_name: &str, desktop: &PodDesktop) -> Pod {
        let (mut pod, container) = Pod::network(host_name, desktop);
        let address = pod.address;
        run_ok(
            podman()
                .args(["run", "--detach", "--name", &container.name])
                .arg(format!("--network=ns:/run/netns/{}", pod.namespace.0))
                .arg(format!("--hostname={host_name}"))
                .arg(format!("--add-host={host_name}:{address}"))
                .args([&format!("--user={UID}:{UID}"), "--passwd=false"])
                .args(["--cap-drop=ALL", "--security-opt=no-new-privileges"])
                .args([
                    "--tmpfs=/arc/home/pod:rw,mode=1777",
                    "--workdir=/arc/home/pod",
                ])
                .args(["--env=HOME=/arc/home/pod", "--env=SHELL=/bin/bash"])
                .arg(format!("--env=DISPLAY={}", desktop.display_for_pods()))
                .args(["--env=GDK_SYNCHRONIZE=1", "--env=OMP_NUM_THREADS=1"])
                .arg(format!(
                    "--volume={}:/skaha-system:ro",
                    pod._scripts.path().display()
                ))
                .arg("--entrypoint=/skaha-system/start-desktop-software.sh")
                .args([image, &UID.to_string(), host_name]),
            &format!("podman run of the pod {host_name} ({image})"),
        );
        pod.container = Some(container);
        pod
    }

    /// An app pod that shares the user's home with the desktop, as the platform's do: `home` is
    /// mounted at the same path and is the user's home in the pod's passwd entry (skaha's init
    /// containers add one; Java takes its home from there). It runs `command` instead of the
    /// platform's entry when one is given.
    pub fn run_in_home(
        image: &str,
        host_name: &str,
        desktop: &PodDesktop,
        home: &Path,
        command: &[&str],
    ) -> Pod {
        let (mut pod, container) = Pod::network(host_name, desktop);
        let address = pod.address;
        let home = home.display().to_string();
        let mut run = podman();
        run.args(["run", "--detach", "--name", &container.name])
            .arg(format!("--network=ns:/run/netns/{}", pod.namespace.0))
            .arg(format!("--hostname={host_name}"))
            .arg(format!("--add-host={host_name}:{address}"))
            .arg(format!("--user={UID}:{UID}"))
            .args(["--cap-drop=ALL", "--security-opt=no-new-privileges"])
            .arg(format!("--volume={home}:{home}"))
            .arg(format!("--workdir={home}"))
            .arg(format!("--env=HOME={home}"))
            .arg(format!("--env=DISPLAY={}", desktop.display_for_pods()))
            .arg(format!(
                "--volume={}:/skaha-system:ro",
                pod._scripts.path().display()
            ));
        match command {
            [] => run
                .arg("--entrypoint=/skaha-system/start-desktop-software.sh")
                .args([image, &UID.to_string(), host_name]),
            [program, args @ ..] => run
                .arg(format!("--entrypoint={program}"))
                .arg(image)
                .args(args),
        };
        run_ok(
            &mut run,
            &format!("podman run of the pod {host_name} ({image})"),
        );
        pod.container = Some(container);
        pod
    }

    /// Whether the pod's container still runs.
    pub fn running(&self) -> bool {
        self.container.as_ref().is_some_and(|container| {
            let output = container
                .engine
                .command()
                .args(["inspect", "--format", "{{.State.Running}}", &container.name])
                .output()
                .expect("run the engine's inspect");
            String::from_utf8_lossy(&output.stdout).trim() == "true"
        })
    }

    /// The pod's output so far, for failure messages.
    pub fn logs(&self) -> String {
        self.container
            .as_ref()
            .map(Container::logs)
            .unwrap_or_default()
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        // The container goes before its network namespace (a field, dropped after this).
        self.container.take();
    }
}

/// Where the skaha stand-in and the tests reach a pod desktop: arcade and local clients through
/// its socket file with its cookie, as on the platform's desktop.
impl super::xvfb::Screen for PodDesktop {
    fn display(&self) -> String {
        format!(":{}", self.number)
    }

    fn auth(&self) -> PathBuf {
        self._auth.path().join("Xauthority")
    }

    fn connect(&self) -> Result<RustConnection, String> {
        PodDesktop::connect(self)
    }
}

impl PodDesktop {
    /// `program` run in the desktop's own network namespace: a local client of the display
    /// (through the socket file), which also finds the display's abstract socket there, as
    /// Xlib and xcb look for it first; in the host's namespace that name is held by a
    /// placeholder that never answers.
    pub fn local_command(&self, program: &Path) -> Command {
        let mut command = Command::new(require_tool("ip", "iproute2"));
        command
            .args(["netns", "exec", &self.namespace.0])
            .arg(program);
        command
    }
}

impl Pod {
    /// The name of the pod's container, for the engine's commands.
    pub fn container_name(&self) -> &str {
        self.container
            .as_ref()
            .map_or("", |container| container.name.as_str())
    }
}

/// The platform's app entry (`start-desktop-software.sh USERID TITLE`) and xterm launcher, as
/// skaha's launch scripts run them; see `shared/reference/canfar-platform.md` §3.
fn platform_scripts() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("create a folder for the platform's scripts");
    let entry = "#!/bin/sh\n\
        # Like skaha's start-desktop-software.sh: arguments USERID TITLE.\n\
        if [ -e /skaha/init.sh ]; then\n  /skaha/init.sh\nfi\n\
        if command -v xset >/dev/null 2>&1; then\n  xset -b\nfi\n\
        export SKAHA_XTERM_TITLE=\"$2\"\n\
        if [ -e /skaha/startup.sh ]; then\n  \
          exec /skaha/startup.sh /skaha-system/start-desktop-software-xterm.sh\nfi\n\
        exec /skaha-system/start-desktop-software-xterm.sh\n";
    let xterm = "#!/bin/sh\n\
        exec xterm -fg white -bg black -title \"$SKAHA_XTERM_TITLE\" \
        -xrm 'XTerm*bellIsUrgent: false' -xrm 'XTerm*bellIsAudible: false'\n";
    for (name, text) in [
        ("start-desktop-software.sh", entry),
        ("start-desktop-software-xterm.sh", xterm),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write a platform script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .expect("make a platform script executable");
    }
    // The folder is mounted for an unprivileged uid.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("open the scripts folder");
    dir
}

/// Binds display `number`'s abstract X socket in the host's network namespace, so that no X
/// server there takes the number while the listener lives.
fn reserve_display(number: u32) -> std::os::unix::net::UnixListener {
    use std::os::linux::net::SocketAddrExt as _;
    let name = format!("/tmp/.X11-unix/X{number}");
    let address = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
        .expect("an abstract socket name");
    std::os::unix::net::UnixListener::bind_addr(&address).unwrap_or_else(|err| {
        panic!("display :{number} is taken by an X server in the host's namespace: {err}")
    })
}

/// The address of host `index` in a desktop's pod network: 198.18.0.0/15 in /24s.
fn pod_address(subnet: u32, index: u32) -> Ipv4Addr {
    Ipv4Addr::from((198 << 24 | 18 << 16) + (subnet << 8) + index)
}

/// Creates the desktop's network namespace under the first free /24 number, starting from one
/// derived from the process id so that parallel test processes rarely meet.
fn claim_namespace() -> (u32, Namespace) {
    let first = std::process::id() % 512;
    (0..512)
        .map(|offset| (first + offset) % 512)
        .find_map(|subnet| Some((subnet, Namespace::add(format!("arcade-desk{subnet}"))?)))
        .expect("no free arcade-desk network namespace (ip netns list; delete stale ones)")
}

/// A pod's namespace, with one end of a veth pair as its `eth0` and the other on the desktop's
/// bridge.
fn join_pod_network(desktop: &PodDesktop, index: u32, address: Ipv4Addr) -> Namespace {
    let name = format!("{}-pod{index}", desktop.namespace.0);
    let namespace = Namespace::add(name.clone())
        .unwrap_or_else(|| panic!("ip netns add {name} failed: the name is taken"));
    let peer = format!("pod{index}");
    let (namespace_name, desktop_name) = (namespace.0.as_str(), desktop.namespace.0.as_str());
    run_ip(
        namespace_name,
        &[
            "link",
            "add",
            "eth0",
            "type",
            "veth",
            "peer",
            "name",
            &peer,
            "netns",
            desktop_name,
        ],
    );
    run_ip(desktop_name, &["link", "set", &peer, "master", "pods"]);
    run_ip(desktop_name, &["link", "set", &peer, "up"]);
    let cidr = format!("{address}/24");
    run_ip(namespace_name, &["address", "add", &cidr, "dev", "eth0"]);
    run_ip(namespace_name, &["link", "set", "eth0", "up"]);
    run_ip(namespace_name, &["link", "set", "lo", "up"]);
    namespace
}

/// `ip -n namespace args…`, which must succeed.
#[track_caller]
fn run_ip(namespace: &str, args: &[&str]) {
    let ip = require_tool("ip", "iproute2");
    run_ok(
        Command::new(ip).args(["-n", namespace]).args(args),
        &format!("ip -n {namespace} {}", args.join(" ")),
    );
}

/// A network namespace of ours, deleted on drop.
struct Namespace(String);

impl Namespace {
    /// `ip netns add name`; `None` when the name is taken.
    fn add(name: String) -> Option<Namespace> {
        let ip = require_tool("ip", "iproute2");
        let status = Command::new(ip)
            .args(["netns", "add", &name])
            .stderr(Stdio::null())
            .status()
            .expect("run ip netns add");
        // Built only on success: a `Namespace` deletes its name when dropped, and the name is
        // then another's (a parallel test's that took it first).
        status.success().then(|| Namespace(name))
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.0])
            .stderr(Stdio::null())
            .status();
    }
}

/// Xvfb in `namespace`, listening on TCP there, on display `number`, with a fresh cookie: the
/// child, the cookie, and the folder of its auth file.
fn start_tcp_xvfb(namespace: &str, number: u32) -> (Child, Vec<u8>, tempfile::TempDir) {
    let xvfb = require_tool("Xvfb", "xvfb");
    let xauth = require_tool("xauth", "xauth");
    let ip = require_tool("ip", "iproute2");
    let dir = tempfile::tempdir().expect("create a folder for the X cookie");
    let auth = dir.path().join("Xauthority");
    let mut cookie = vec![0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut file| file.read_exact(&mut cookie))
        .expect("read /dev/urandom");
    let hex: String = cookie.iter().map(|byte| format!("{byte:02x}")).collect();
    let status = Command::new(&xauth)
        .arg("-f")
        .arg(&auth)
        .args([
            "-q",
            "add",
            &format!(":{number}"),
            "MIT-MAGIC-COOKIE-1",
            &hex,
        ])
        .stderr(Stdio::null())
        .status()
        .expect("run xauth");
    assert!(status.success(), "xauth add failed");
    let child = Command::new(ip)
        .args(["netns", "exec", namespace])
        .arg(xvfb)
        .arg(format!(":{number}"))
        .args([
            "-listen",
            "tcp",
            "-screen",
            "0",
            "1280x1024x24",
            "-noreset",
            "-auth",
        ])
        .arg(&auth)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start Xvfb in the desktop's namespace");
    (child, cookie, dir)
}
