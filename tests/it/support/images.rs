//! Real container images for the tests, made in about a second each from the host's own xterm
//! and shell with their shared libraries, then `podman import`-ed (or `docker import`-ed, see
//! `docker.rs`); and the podman settings that work on this machine (runc, low ulimits).

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash as _, Hasher as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use super::require_tool;

/// A test image: the base (a shell, optionally xterm) plus extra files.
#[derive(Debug, Clone, Hash)]
pub struct Spec {
    /// The repository part, e.g. `init` gives `localhost/arcade-test/init:<hash>`.
    pub name: &'static str,
    pub xterm: bool,
    /// Extra files: path inside the image, content, mode.
    pub files: Vec<(&'static str, String, u32)>,
    /// Extra programs copied from the host with their libraries.
    pub programs: Vec<&'static str>,
    /// An architecture other than the host's, for images that must be refused.
    pub arch: Option<&'static str>,
    /// Folders with a mode of their own, e.g. a root-only `/root`.
    pub dirs: Vec<(&'static str, u32)>,
    /// Image config instructions applied on import (`CMD ["top"]`), as `--change` takes them.
    pub changes: Vec<&'static str>,
}

impl Spec {
    pub fn new(name: &'static str) -> Spec {
        Spec {
            name,
            xterm: true,
            files: Vec::new(),
            programs: Vec::new(),
            arch: None,
            dirs: Vec::new(),
            changes: Vec::new(),
        }
    }

    pub fn change(mut self, instruction: &'static str) -> Spec {
        self.changes.push(instruction);
        self
    }

    pub fn dir(mut self, path: &'static str, mode: u32) -> Spec {
        self.dirs.push((path, mode));
        self
    }

    pub fn file(mut self, path: &'static str, content: &str, mode: u32) -> Spec {
        self.files.push((path, content.to_owned(), mode));
        self
    }

    pub fn without_xterm(mut self) -> Spec {
        self.xterm = false;
        self
    }

    pub fn program(mut self, path: &'static str) -> Spec {
        self.programs.push(path);
        self
    }

    pub fn arch(mut self, arch: &'static str) -> Spec {
        self.arch = Some(arch);
        self
    }
}

/// A `containers.conf` that makes podman work here: runc (crun fails on this host's hybrid
/// cgroups) and ulimits the unprivileged container runtime may set.
pub fn containers_conf() -> PathBuf {
    static CONF: OnceLock<PathBuf> = OnceLock::new();
    CONF.get_or_init(|| {
        let path = std::env::temp_dir().join(format!(
            "arcade-test-containers-{}.conf",
            std::process::id()
        ));
        std::fs::write(
            &path,
            "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=4096:4096\"]\n\
             [engine]\nruntime = \"runc\"\n",
        )
        .expect("write containers.conf");
        path
    })
    .clone()
}

/// `podman` with the test settings.
pub fn podman() -> Command {
    let program = require_tool("podman", "podman runc catatonit");
    let mut command = Command::new(program);
    command.env("CONTAINERS_CONF", containers_conf());
    command
}

/// Builds the image if it is not there yet and returns its reference. The tag is a hash of the
/// spec and the host binaries, so a changed spec builds a new image and parallel test processes
/// agree on names.
pub fn build(spec: &Spec) -> String {
    let reference = reference(spec);

    // One builder at a time across test processes.
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(std::env::temp_dir().join("arcade-test-images.lock"))
        .expect("open the image lock");
    lock.lock().expect("lock the image lock");
    let exists = podman()
        .args(["image", "exists", &reference])
        .status()
        .expect("run podman")
        .success();
    if !exists {
        import(spec, &reference);
    }
    reference
}

/// The reference a spec's image gets in any engine: `localhost/arcade-test/<name>:<hash>`.
pub fn reference(spec: &Spec) -> String {
    let mut hasher = DefaultHasher::new();
    spec.hash(&mut hasher);
    for program in base_programs(spec) {
        if let Ok(meta) = std::fs::metadata(program) {
            meta.len().hash(&mut hasher);
            meta.modified().ok().hash(&mut hasher);
        }
    }
    format!(
        "localhost/arcade-test/{}:{:016x}",
        spec.name,
        hasher.finish()
    )
}

fn base_programs(spec: &Spec) -> Vec<&'static str> {
    let mut programs = vec!["/bin/sh"];
    if spec.xterm {
        programs.push(require_xterm());
    }
    programs.extend(spec.programs.iter().copied());
    programs
}

fn require_xterm() -> &'static str {
    require_tool("xterm", "xterm");
    "/usr/bin/xterm"
}

fn import(spec: &Spec, reference: &str) {
    let mut import = podman();
    import.args(["import", "--quiet"]);
    if let Some(arch) = spec.arch {
        import.args(["--arch", arch]);
    }
    for change in &spec.changes {
        import.args(["--change", change]);
    }
    import.args(["-", reference]);
    import_root(spec, import);
}

/// Builds the spec's image root and pipes it as a tar into `import`, an engine's import command
/// that reads the tar on its standard input.
pub fn import_root(spec: &Spec, mut import: Command) {
    let root = tempfile::tempdir().expect("create an image root");
    let root = root.path();
    for dir in ["etc", "tmp", "usr/bin", "bin"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    std::fs::set_permissions(root.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
    for program in base_programs(spec) {
        copy_with_libraries(program, root);
    }
    for (path, content, mode) in &spec.files {
        let target = root.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::write(&target, content).unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(*mode)).unwrap();
    }
    for (path, mode) in &spec.dirs {
        let target = root.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(&target).unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(*mode)).unwrap();
    }
    let mut tar = Command::new("tar")
        .arg("-C")
        .arg(root)
        .args(["-c", "."])
        .stdout(Stdio::piped())
        .spawn()
        .expect("run tar");
    let what = format!("{import:?}");
    let status = import
        .stdin(tar.stdout.take().unwrap())
        .stdout(Stdio::null())
        .status()
        .unwrap_or_else(|err| panic!("run {what}: {err}"));
    assert!(status.success(), "{what} failed");
    assert!(
        tar.wait().expect("wait for tar").success(),
        "tar of the image root failed"
    );
}

/// Copies a host program and every shared library `ldd` lists (with the loader) into `root`.
fn copy_with_libraries(program: &str, root: &Path) {
    let output = Command::new("ldd").arg(program).output().expect("run ldd");
    let text = String::from_utf8_lossy(&output.stdout);
    let mut files = vec![PathBuf::from(program)];
    for line in text.lines() {
        // "libX.so => /lib/x86_64-linux-gnu/libX.so (0x…)" or "/lib64/ld-linux-x86-64.so.2 (0x…)"
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(path) = path.filter(|path| path.starts_with('/')) {
            files.push(PathBuf::from(path));
        }
    }
    for file in files {
        let target = root.join(file.strip_prefix("/").unwrap());
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&file, &target)
            .unwrap_or_else(|err| panic!("copy {} into the image: {err}", file.display()));
    }
}

/// `inspect --format` of a container by `engine` (a podman or docker command: the two take the
/// same arguments here), trimmed; empty when the container is not there.
pub fn inspect(mut engine: Command, container: &str, format: &str) -> String {
    let output = engine
        .args(["inspect", "--format", format, container])
        .output()
        .expect("run the engine's inspect");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// The ids of the containers, in any state, that arcade started on `display`, as `engine` (a
/// podman or docker command) lists them.
pub fn containers_on(mut engine: Command, display: &str) -> Vec<String> {
    let output = engine
        .args([
            "ps",
            "--all",
            "--quiet",
            "--filter",
            &format!("label=net.canfar.arcade.display={display}"),
        ])
        .output()
        .expect("run the engine's ps");
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// Removes the podman containers a test started on its display, whatever state they are in.
pub fn remove_containers_on(display: &str) {
    let ids = containers_on(podman(), display);
    if !ids.is_empty() {
        // Without `--time 0` podman gives a running container ten seconds to stop.
        let _ = podman()
            .args(["rm", "--force", "--time", "0"])
            .args(&ids)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
