//! `arcade image check`: the platform's requirements for desktop-app images, checked against a
//! local image by running it, so authors learn before publishing what the platform would do.
//!
//! Every check runs the image with the local engine, never pulls, pushes or changes it, gives it
//! no network, and runs the image's own scripts with the same contract as a launch (see
//! [`crate::launch::contract`]). The app itself runs as the platform runs it, as an arbitrary
//! uid with no passwd entry and a home outside the image, on a private headless X server the
//! check starts: what matters is that its window maps. Only the shell builtins of the image are
//! relied on by the probes.
//! See: `shared/reference/canfar-platform.md` §3 and the platform's container guide.

mod display;
mod findings;
mod probe;
mod render;

pub use render::render;

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::launch::contract;
use crate::launch::engine::Engine;
use probe::{AppRun, Probe, Run};

/// The uid and gid the non-root check runs as: arbitrary, in no `/etc/passwd` of any image.
const ARBITRARY_USER: (u32, u32) = (54321, 54321);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    EngineMissing(String),
    #[error(
        "image {image} is not present for {engine}: build or pull it first (arcade image check \
         never pulls)"
    )]
    NoImage { image: String, engine: String },
    #[error("failed to {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{engine} cannot inspect {image}: {message}")]
    Inspect {
        engine: String,
        image: String,
        message: String,
    },
    #[error("{0}")]
    Display(String),
    #[error(transparent)]
    X(#[from] crate::x11::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
    Info,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Info => "info",
        })
    }
}

/// One requirement's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// A stable key for scripts, e.g. `xterm`.
    pub id: &'static str,
    pub requirement: &'static str,
    pub status: Status,
    /// What the check saw.
    pub seen: String,
    /// How to fix it; empty when nothing needs fixing.
    pub fix: String,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub image: String,
    pub engine: String,
    pub findings: Vec<Finding>,
    /// The menu entry the image would get, as arcade would write it (from its labels).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry: Option<String>,
}

impl Report {
    pub fn failed(&self) -> bool {
        self.findings.iter().any(|f| f.status == Status::Fail)
    }

    pub fn count(&self, status: Status) -> usize {
        self.findings.iter().filter(|f| f.status == status).count()
    }
}

/// Checks `image` with `engine`; `bound` limits each script the image runs, and the time its
/// window may take.
pub async fn check(engine: &Engine, image: &str, bound: Duration) -> Result<Report> {
    if !engine.image_exists(image).await {
        return Err(Error::NoImage {
            image: image.to_owned(),
            engine: engine.name(),
        });
    }
    let metadata = inspect(engine, image).await?;
    let dir = tempfile::Builder::new()
        .prefix("arcade-check-")
        .tempdir()
        .map_err(|source| Error::Io {
            action: "create",
            path: std::env::temp_dir(),
            source,
        })?;
    write_scripts(dir.path())?;
    let display = display::PrivateDisplay::start(dir.path())?;
    let probe = Probe {
        engine,
        image,
        dir: dir.path(),
        bound,
    };
    let root = (0, 0);
    let files = probe.run("files.sh", root).await;
    let has_script = |path: &str| {
        files.output.lines().find_map(|line| {
            line.strip_prefix(&format!("script {path} "))
                .map(|rest| rest == "executable")
        })
    };
    let init = has_script("/skaha/init.sh");
    let startup = has_script("/skaha/startup.sh");
    let init_run = match init {
        Some(true) => Some(probe.run("init.sh", ARBITRARY_USER).await),
        _ => None,
    };
    let init_returns = init_run
        .as_ref()
        .is_none_or(|run| run.has("arcade-init returned"));
    let entry = if init_returns {
        "entry.sh"
    } else {
        "entry-without-init.sh"
    };
    // startup.sh on its own, as root, so what it does with its argument is told apart from
    // what fails for a non-root user; then the whole app as the platform runs it.
    let startup_run = match startup {
        Some(true) => Some(probe.run_app("startup.sh", root, &display).await),
        _ => None,
    };
    let app = probe.run_app(entry, ARBITRARY_USER, &display).await;
    let runs = Runs {
        files: &files,
        init: init_run.as_ref(),
        startup: startup_run.as_ref(),
    };
    let mut findings = findings_of(&metadata, &runs, init, startup, bound);
    findings.push(findings::nonroot_finding(&app, init_returns, bound));
    findings.push(metadata.entrypoint_finding());
    findings.push(findings::labels_finding(&metadata.labels));
    // What failed first, then what to improve, then what passed.
    findings.sort_by_key(|finding| match finding.status {
        Status::Fail => 0,
        Status::Warn => 1,
        Status::Pass => 2,
        Status::Info => 3,
    });
    Ok(Report {
        image: image.to_owned(),
        engine: engine.name(),
        findings,
        entry: entry_preview(image, &metadata.labels),
    })
}

/// What the probes saw.
struct Runs<'a> {
    files: &'a Run,
    init: Option<&'a Run>,
    startup: Option<&'a AppRun>,
}

/// The findings of the probes: platform, shell, files, init and startup.
fn findings_of(
    metadata: &Metadata,
    runs: &Runs<'_>,
    init: Option<bool>,
    startup: Option<bool>,
    bound: Duration,
) -> Vec<Finding> {
    let files = runs.files;
    let mut findings = vec![findings::platform_finding(&metadata.os, &metadata.arch)];
    if !files.has("probe done") {
        findings.push(Finding {
            id: "shell",
            requirement: "a POSIX shell at /bin/sh",
            status: Status::Fail,
            seen: format!("the shell probe did not run: {}", files.tail()),
            fix: "install a shell at /bin/sh (the platform's scripts need one)".to_owned(),
        });
    }
    findings.extend(findings::file_findings(files));
    findings.push(findings::init_finding(init, runs.init, bound));
    findings.push(findings::startup_finding(startup, runs.startup));
    findings
}

/// The menu entry the image would get from its labels, as the menu would write it; `None` for a
/// name that is no full reference (`localhost/app`, say).
fn entry_preview(
    image: &str,
    labels: &std::collections::BTreeMap<String, String>,
) -> Option<String> {
    let mut catalog = crate::catalog::Catalog::default();
    let mut parsed = crate::catalog::Image::parse(image).ok()?;
    catalog.read_labels(&mut parsed, labels);
    catalog.images.push(parsed);
    let options = crate::menu::Options {
        launcher: "/usr/bin/arcade".into(),
        submenu_threshold: 5,
        shortcuts: Vec::new(),
        wm_classes: Default::default(),
        presets: vec![],
        gpus: false,
        mime_types: Default::default(),
        mime_defaults: Default::default(),
    };
    let plan = crate::menu::plan(&catalog, &options);
    plan.files
        .iter()
        .find(|file| file.path.extension().is_some_and(|ext| ext == "desktop"))
        .map(|file| String::from_utf8_lossy(&file.content).into_owned())
}

/// What the image's configuration says.
struct Metadata {
    os: String,
    arch: String,
    entrypoint: String,
    cmd: String,
    /// The image's labels with text values.
    labels: std::collections::BTreeMap<String, String>,
}

impl Metadata {
    /// The image's own ENTRYPOINT and CMD, which the platform does not use.
    fn entrypoint_finding(&self) -> Finding {
        let none = |value: &str| {
            if value == "null" {
                "none".to_owned()
            } else {
                value.to_owned()
            }
        };
        Finding {
            id: "entrypoint",
            requirement: "image ENTRYPOINT and CMD",
            status: Status::Info,
            seen: format!(
                "ENTRYPOINT {}, CMD {}",
                none(&self.entrypoint),
                none(&self.cmd)
            ),
            fix: if self.entrypoint == "null" && self.cmd == "null" {
                String::new()
            } else {
                "the platform ignores both: it runs /skaha/init.sh, then /skaha/startup.sh or \
                 xterm"
                    .to_owned()
            },
        }
    }
}

async fn inspect(engine: &Engine, image: &str) -> Result<Metadata> {
    let text = engine
        .output([
            "image",
            "inspect",
            "--format",
            "{{.Os}}\t{{.Architecture}}\t{{json .Config.Entrypoint}}\t{{json .Config.Cmd}}\t\
             {{json .Config.Labels}}",
            image,
        ])
        .await
        .map_err(|message| Error::Inspect {
            engine: engine.name(),
            image: image.to_owned(),
            message: message.to_string(),
        })?;
    let mut fields = text.trim().split('\t');
    let mut next = |default: &str| fields.next().unwrap_or(default).to_owned();
    let (os, arch, entrypoint, cmd) = (next(""), next(""), next("null"), next("null"));
    let labels: std::collections::BTreeMap<String, serde_json::Value> =
        serde_json::from_str(&next("null")).unwrap_or_default();
    Ok(Metadata {
        os,
        arch,
        entrypoint,
        cmd,
        labels: labels
            .into_iter()
            .filter_map(|(key, value)| Some((key, value.as_str()?.to_owned())))
            .collect(),
    })
}

/// The probe folder: the probes and the contract's scripts, readable by any user.
fn write_scripts(dir: &Path) -> Result<()> {
    for (name, text) in [
        ("files.sh", probe::FILES_PROBE.to_owned()),
        ("init.sh", probe::INIT_PROBE.to_owned()),
        ("startup.sh", probe::STARTUP_PROBE.to_owned()),
        ("command.sh", probe::app_command()),
        ("entry.sh", contract::entry_script()),
        ("entry-without-init.sh", probe::entry_without_init()),
    ] {
        write_script(&dir.join(name), &text)?;
    }
    // The folder is mounted into containers that run as other users.
    set_mode(dir, 0o755)
}

fn write_script(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|source| Error::Io {
        action: "write",
        path: path.to_owned(),
        source,
    })?;
    set_mode(path, 0o755)
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|source| {
        Error::Io {
            action: "set permissions of",
            path: path.to_owned(),
            source,
        }
    })
}
