//! `arcade image check`: the platform's requirements for desktop-app images, checked against a
//! local image by running it, so authors learn before publishing what the platform would do.
//!
//! Every check runs the image with the local engine, never pulls, pushes or changes it, gives it
//! no network, and runs the image's own scripts with the same contract and user mapping as a
//! launch (see [`crate::launch::contract`]). Only the shell builtins of the image are relied on.
//! See: `shared/reference/canfar-platform.md` §3 and the platform's container guide.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::launch::contract;
use crate::launch::engine::Engine;

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
}

impl Report {
    pub fn failed(&self) -> bool {
        self.findings.iter().any(|f| f.status == Status::Fail)
    }

    pub fn count(&self, status: Status) -> usize {
        self.findings.iter().filter(|f| f.status == status).count()
    }
}

/// What the shell-only probe reports about the image's files.
const FILES_PROBE: &str = r#"#!/bin/sh
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

/// The harmless command given to `startup.sh`: it says it ran and whether `$HOME` is writable.
const COMMAND_PROBE: &str = r#"#!/bin/sh
# Written by arcade image check: the command the image is asked to run.
if ( : > "$HOME/.arcade-probe" ) 2>/dev/null; then writable=yes; else writable=no; fi
echo "arcade-probe ran home=$HOME writable=$writable args=$#"
"#;

/// Runs `/skaha/init.sh` and reports that it returned.
const INIT_PROBE: &str = r#"#!/bin/sh
# Written by arcade image check: does init.sh return?
/skaha/init.sh
echo "arcade-init returned $?"
"#;

/// Runs `/skaha/startup.sh` with the command probe, as the platform runs it.
const STARTUP_PROBE: &str = r#"#!/bin/sh
# Written by arcade image check: does startup.sh run the command it is given?
exec /skaha/startup.sh /run/arcade/command.sh
"#;

/// The contract as a launch runs it, minus `init.sh` when that does not return (so the non-root
/// verdict is about the rest).
fn entry_without_init() -> String {
    contract::entry_script().replace("if [ -e /skaha/init.sh ]; then\n  /skaha/init.sh\nfi\n", "")
}

/// One run of the image.
#[derive(Debug, Default)]
struct Run {
    code: Option<i32>,
    output: String,
    timed_out: bool,
}

impl Run {
    fn has(&self, marker: &str) -> bool {
        self.output.lines().any(|line| line.starts_with(marker))
    }

    fn tail(&self) -> String {
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

/// Runs `script` (a file in the probe folder) in the image as `user`, within `bound`.
async fn run(
    engine: &Engine,
    image: &str,
    dir: &Path,
    script: &str,
    user: (u32, u32),
    bound: Duration,
    conf: Option<&Path>,
) -> Run {
    let name = format!("arcade-check-{}", crate::launch::record::random_id());
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
        format!("--volume={}:{}:ro", dir.display(), contract::MOUNT),
        "--entrypoint=/bin/sh".into(),
        image.into(),
        format!("{}/{script}", contract::MOUNT),
    ];
    if user.0 != 0 {
        args.insert(1, "--init".into());
    }
    let mut command = engine.command(&args);
    if let Some(conf) = conf {
        command.env("CONTAINERS_CONF", conf);
    }
    command.kill_on_drop(true);
    let child = match command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(err) => {
            return Run {
                output: format!("failed to run {}: {err}", engine.program.display()),
                ..Run::default()
            };
        }
    };
    match tokio::time::timeout(bound, child.wait_with_output()).await {
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
            if let Err(err) = engine.remove(&name).await {
                tracing::warn!(
                    container = name,
                    "failed to remove a timed-out check: {err}"
                );
            }
            Run {
                timed_out: true,
                ..Run::default()
            }
        }
    }
}

/// Checks `image` with `engine`; `bound` limits each script the image runs.
pub async fn check(
    engine: &Engine,
    image: &str,
    bound: Duration,
    conf: Option<&Path>,
) -> Result<Report> {
    if !engine.image_exists(image).await {
        return Err(Error::NoImage {
            image: image.to_owned(),
            engine: engine.name(),
        });
    }
    let metadata = engine
        .output([
            "image",
            "inspect",
            "--format",
            "{{.Os}}\t{{.Architecture}}\t{{json .Config.Entrypoint}}\t{{json .Config.Cmd}}",
            image,
        ])
        .await
        .map_err(|message| Error::Inspect {
            engine: engine.name(),
            image: image.to_owned(),
            message: message.to_string(),
        })?;
    let mut fields = metadata.trim().split('\t');
    let os = fields.next().unwrap_or_default().to_owned();
    let arch = fields.next().unwrap_or_default().to_owned();
    let entrypoint = fields.next().unwrap_or("null").to_owned();
    let cmd = fields.next().unwrap_or("null").to_owned();

    let dir = tempfile::Builder::new()
        .prefix("arcade-check-")
        .tempdir()
        .map_err(|source| Error::Io {
            action: "create",
            path: std::env::temp_dir(),
            source,
        })?;
    for (name, text) in [
        ("files.sh", FILES_PROBE.to_owned()),
        ("command.sh", COMMAND_PROBE.to_owned()),
        ("init.sh", INIT_PROBE.to_owned()),
        ("startup.sh", STARTUP_PROBE.to_owned()),
        ("entry.sh", contract::entry_script()),
        ("entry-without-init.sh", entry_without_init()),
    ] {
        write_script(&dir.path().join(name), &text)?;
    }
    // The folder is mounted into containers that run as other users.
    set_mode(dir.path(), 0o755)?;

    let root = (0, 0);
    let files = run(engine, image, dir.path(), "files.sh", root, bound, conf).await;
    let has_script = |path: &str| {
        files.output.lines().find_map(|line| {
            line.strip_prefix(&format!("script {path} "))
                .map(|rest| rest == "executable")
        })
    };
    let init = has_script("/skaha/init.sh");
    let startup = has_script("/skaha/startup.sh");

    let (init_run, startup_run) = tokio::join!(
        async {
            match init {
                Some(true) => Some(
                    run(
                        engine,
                        image,
                        dir.path(),
                        "init.sh",
                        ARBITRARY_USER,
                        bound,
                        conf,
                    )
                    .await,
                ),
                _ => None,
            }
        },
        async {
            match startup {
                Some(true) => {
                    Some(run(engine, image, dir.path(), "startup.sh", root, bound, conf).await)
                }
                _ => None,
            }
        },
    );
    let init_returns = init_run
        .as_ref()
        .is_none_or(|run| run.has("arcade-init returned"));
    let entry = if init_returns {
        "entry.sh"
    } else {
        "entry-without-init.sh"
    };
    let nonroot = run(
        engine,
        image,
        dir.path(),
        entry,
        ARBITRARY_USER,
        bound,
        conf,
    )
    .await;

    let mut findings = Vec::new();
    findings.push(platform_finding(&os, &arch));
    if !files.has("probe done") {
        findings.push(Finding {
            id: "shell",
            requirement: "a POSIX shell at /bin/sh",
            status: Status::Fail,
            seen: format!("the shell probe did not run: {}", files.tail()),
            fix: "install a shell at /bin/sh (the platform's scripts need one)".to_owned(),
        });
    }
    findings.extend(file_findings(&files));
    findings.push(init_finding(init, init_run.as_ref(), bound));
    findings.push(startup_finding(startup, startup_run.as_ref(), bound));
    findings.push(nonroot_finding(&nonroot, init_returns, bound));
    findings.push(Finding {
        id: "entrypoint",
        requirement: "image ENTRYPOINT and CMD",
        status: Status::Info,
        seen: format!(
            "ENTRYPOINT {}, CMD {}",
            if entrypoint == "null" {
                "none"
            } else {
                &entrypoint
            },
            if cmd == "null" { "none" } else { &cmd }
        ),
        fix: if entrypoint == "null" && cmd == "null" {
            String::new()
        } else {
            "the platform ignores both: it runs /skaha/init.sh, then /skaha/startup.sh or xterm"
                .to_owned()
        },
    });
    Ok(Report {
        image: image.to_owned(),
        engine: engine.name(),
        findings,
    })
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

fn platform_finding(os: &str, arch: &str) -> Finding {
    let ok = os == "linux" && (arch == "amd64" || arch == "x86_64");
    Finding {
        id: "platform",
        requirement: "a standard Linux x86_64 image",
        status: if ok { Status::Pass } else { Status::Fail },
        seen: format!("{os}/{arch}"),
        fix: if ok {
            String::new()
        } else {
            "build for linux/amd64 (e.g. docker buildx build --platform linux/amd64)".to_owned()
        },
    }
}

fn file_findings(files: &Run) -> Vec<Finding> {
    let lines: Vec<&str> = files.output.lines().collect();
    let program = |name: &str| {
        lines
            .iter()
            .find_map(|line| line.strip_prefix(&format!("program {name} ")))
            .map(str::to_owned)
    };
    let mut findings = Vec::new();
    let xterm = program("xterm");
    findings.push(Finding {
        id: "xterm",
        requirement: "xterm, the default executable",
        status: if xterm.is_some() {
            Status::Pass
        } else {
            Status::Fail
        },
        seen: xterm.unwrap_or_else(|| "no xterm on PATH".to_owned()),
        fix: "install xterm (apt-get install xterm / dnf install xterm)".to_owned(),
    });
    let sss: Vec<&str> = lines
        .iter()
        .filter_map(|line| line.strip_prefix("nss_sss "))
        .collect();
    findings.push(Finding {
        id: "sssd",
        requirement: "an SSSD client, so group names resolve",
        status: if sss.is_empty() {
            Status::Warn
        } else {
            Status::Pass
        },
        seen: sss.first().map_or_else(
            || "no libnss_sss.so.2".to_owned(),
            |path| (*path).to_owned(),
        ),
        fix: "install the SSSD client (libnss-sss / sssd-client); file authorisation works \
              without it, group names do not show"
            .to_owned(),
    });
    let acl: Vec<String> = ["getfacl", "setfacl"]
        .iter()
        .filter_map(|name| program(name))
        .collect();
    findings.push(Finding {
        id: "acl",
        requirement: "the ACL tools (getfacl, setfacl)",
        status: if acl.len() == 2 {
            Status::Pass
        } else {
            Status::Warn
        },
        seen: if acl.is_empty() {
            "neither getfacl nor setfacl".to_owned()
        } else {
            acl.join(", ")
        },
        fix: "install the acl package".to_owned(),
    });
    let nss: Vec<&str> = lines
        .iter()
        .filter_map(|line| line.strip_prefix("nsswitch "))
        .collect();
    let missing: Vec<&str> = ["passwd", "shadow", "group"]
        .into_iter()
        .filter(|database| {
            !nss.iter().any(|line| {
                line.strip_prefix(database)
                    .and_then(|rest| rest.strip_prefix(':'))
                    .is_some_and(|sources| sources.split_whitespace().any(|s| s == "sss"))
            })
        })
        .collect();
    findings.push(Finding {
        id: "nsswitch",
        requirement: "sss in /etc/nsswitch.conf for passwd, shadow and group",
        status: if missing.is_empty() {
            Status::Pass
        } else {
            Status::Warn
        },
        seen: if nss.contains(&"missing") {
            "no /etc/nsswitch.conf".to_owned()
        } else if missing.is_empty() {
            "passwd, shadow and group list sss".to_owned()
        } else {
            format!("no sss for {}", missing.join(", "))
        },
        fix: "add sss to the passwd, shadow and group lines of /etc/nsswitch.conf (file \
              authorisation works without it)"
            .to_owned(),
    });
    for finding in &mut findings {
        if finding.status == Status::Pass {
            finding.fix.clear();
        }
    }
    findings
}

fn init_finding(init: Option<bool>, run: Option<&Run>, bound: Duration) -> Finding {
    let requirement = "/skaha/init.sh, if present, is executable and returns";
    let (status, seen, fix) = match (init, run) {
        (None, _) => (Status::Pass, "no /skaha/init.sh".to_owned(), String::new()),
        (Some(false), _) => (
            Status::Fail,
            "/skaha/init.sh is not executable".to_owned(),
            "chmod +x /skaha/init.sh in the image".to_owned(),
        ),
        (Some(true), Some(run)) if run.timed_out => (
            Status::Fail,
            format!("/skaha/init.sh did not return within {} s", bound.as_secs()),
            "init.sh must set up and return; start long-running work from startup.sh".to_owned(),
        ),
        (Some(true), Some(run)) => match run
            .output
            .lines()
            .find_map(|line| line.strip_prefix("arcade-init returned "))
        {
            Some("0") => (
                Status::Pass,
                "/skaha/init.sh returned 0".to_owned(),
                String::new(),
            ),
            Some(code) => (
                Status::Warn,
                format!("/skaha/init.sh returned {code}: {}", run.tail()),
                "the platform carries on after a failed init.sh; make it succeed".to_owned(),
            ),
            None => (
                Status::Fail,
                format!("/skaha/init.sh ended its shell: {}", run.tail()),
                "init.sh must return to its caller (no exec, no exit of the shell)".to_owned(),
            ),
        },
        (Some(true), None) => unreachable!("an executable init.sh is always run"),
    };
    Finding {
        id: "init",
        requirement,
        status,
        seen,
        fix,
    }
}

fn startup_finding(startup: Option<bool>, run: Option<&Run>, bound: Duration) -> Finding {
    let requirement = "/skaha/startup.sh, if present, runs the command it is given";
    let (status, seen, fix) = match (startup, run) {
        (None, _) => (
            Status::Pass,
            "no /skaha/startup.sh: the platform runs the command (xterm) itself".to_owned(),
            String::new(),
        ),
        (Some(false), _) => (
            Status::Fail,
            "/skaha/startup.sh is not executable".to_owned(),
            "chmod +x /skaha/startup.sh in the image".to_owned(),
        ),
        (Some(true), Some(run)) if run.has("arcade-probe ran") => (
            Status::Pass,
            "startup.sh ran the probe command it was given".to_owned(),
            String::new(),
        ),
        (Some(true), Some(run)) => (
            Status::Warn,
            if run.timed_out {
                format!(
                    "startup.sh did not run the probe command within {} s (it runs something else)",
                    bound.as_secs()
                )
            } else {
                format!("startup.sh did not run the probe command: {}", run.tail())
            },
            "end startup.sh with exec \"$@\" so overrides and the xterm default apply".to_owned(),
        ),
        (Some(true), None) => unreachable!("an executable startup.sh is always run"),
    };
    Finding {
        id: "startup",
        requirement,
        status,
        seen,
        fix,
    }
}

fn nonroot_finding(run: &Run, init_returns: bool, bound: Duration) -> Finding {
    let requirement = "works as an arbitrary non-root user with a home outside the image";
    let user = format!("uid {}", ARBITRARY_USER.0);
    let (status, seen, fix) = if run.has("arcade-probe ran") {
        let writable = run.output.contains("writable=yes");
        if writable {
            (
                Status::Pass,
                format!(
                    "the app command started as {user} with a writable {}",
                    contract::HOME
                ),
                String::new(),
            )
        } else {
            (
                Status::Fail,
                format!("as {user}, {} was not writable", contract::HOME),
                "do not rely on files under HOME from the image; create them at start".to_owned(),
            )
        }
    } else if run.timed_out {
        (
            Status::Fail,
            format!(
                "as {user}, the app command did not start within {} s",
                bound.as_secs()
            ),
            "make init.sh and startup.sh work without root".to_owned(),
        )
    } else {
        (
            Status::Fail,
            format!(
                "as {user}, the app command did not start ({}): {}",
                match run.code {
                    Some(code) => format!("exit {code}"),
                    None => "killed".to_owned(),
                },
                run.tail()
            ),
            "the platform never runs apps as root: make the scripts work for any uid, with HOME \
             outside the image (no paths under /root)"
                .to_owned(),
        )
    };
    Finding {
        id: "nonroot",
        requirement,
        status,
        seen: if init_returns {
            seen
        } else {
            format!("{seen} (init.sh skipped: it does not return)")
        },
        fix,
    }
}

/// The report as a table: status, requirement, what was seen, how to fix.
pub fn render(report: &Report) -> String {
    use std::fmt::Write as _;
    let width = |column: fn(&Finding) -> usize, title: &str| {
        report
            .findings
            .iter()
            .map(column)
            .chain([title.len()])
            .max()
            .unwrap_or(0)
    };
    let requirement = width(|f| f.requirement.chars().count(), "REQUIREMENT");
    let seen = width(|f| f.seen.chars().count(), "SEEN").min(70);
    let mut out = format!("{} with {}\n", report.image, report.engine);
    let _ = writeln!(
        out,
        "{:<6} {:<requirement$}  {:<seen$}  HOW TO FIX",
        "RESULT", "REQUIREMENT", "SEEN"
    );
    for finding in &report.findings {
        let _ = writeln!(
            out,
            "{:<6} {:<requirement$}  {:<seen$}  {}",
            finding.status.to_string(),
            finding.requirement,
            finding.seen,
            finding.fix
        );
    }
    let _ = writeln!(
        out,
        "{} passed, {}, {} failed",
        report.count(Status::Pass),
        crate::text::count(report.count(Status::Warn), "warning", "warnings"),
        report.count(Status::Fail)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(output: &str) -> Run {
        Run {
            code: Some(0),
            output: output.to_owned(),
            timed_out: false,
        }
    }

    #[test]
    fn reads_the_files_probe() {
        let findings = file_findings(&files(
            "program xterm /usr/bin/xterm\nprogram getfacl /usr/bin/getfacl\n\
             nss_sss /lib/x86_64-linux-gnu/libnss_sss.so.2\n\
             nsswitch passwd:         files sss\nnsswitch group: files\nprobe done\n",
        ));
        let by_id = |id: &str| findings.iter().find(|f| f.id == id).unwrap().clone();
        assert_eq!(by_id("xterm").status, Status::Pass);
        assert_eq!(by_id("sssd").status, Status::Pass);
        assert_eq!(by_id("acl").status, Status::Warn);
        let nss = by_id("nsswitch");
        assert_eq!(nss.status, Status::Warn);
        assert_eq!(nss.seen, "no sss for shadow, group");
    }

    #[test]
    fn only_linux_amd64_passes() {
        assert_eq!(platform_finding("linux", "amd64").status, Status::Pass);
        assert_eq!(platform_finding("linux", "arm64").status, Status::Fail);
        assert_eq!(platform_finding("windows", "amd64").status, Status::Fail);
    }

    #[test]
    fn the_check_entry_differs_only_by_init() {
        assert!(!entry_without_init().contains("/skaha/init.sh"));
        assert!(entry_without_init().contains("exec /skaha/startup.sh /run/arcade/command.sh"));
    }
}
