//! Turning what the probes saw into findings: one per requirement of the platform's container
//! guide, each with what was seen and how to fix it.

use std::time::Duration;

use super::probe::{AppRun, Run};
use super::{ARBITRARY_USER, Finding, Status};
use crate::launch::contract;

pub fn platform_finding(os: &str, arch: &str) -> Finding {
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

pub fn file_findings(files: &Run) -> Vec<Finding> {
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
    findings.push(nsswitch_finding(&lines));
    for finding in &mut findings {
        if finding.status == Status::Pass {
            finding.fix.clear();
        }
    }
    findings
}

/// Whether `/etc/nsswitch.conf` asks sss for users and groups.
fn nsswitch_finding(lines: &[&str]) -> Finding {
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
    Finding {
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
    }
}

pub fn init_finding(init: Option<bool>, run: Option<&Run>, bound: Duration) -> Finding {
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

/// The image's own labels, as the menu would read them: which it gives, and which cannot be
/// used and why (see `crate::labels`).
pub fn labels_finding(labels: &std::collections::BTreeMap<String, String>) -> Finding {
    let requirement = "labels that describe the app (title, description, icon, …)";
    // The registry's host is not known here: an icon URL is judged by its form only.
    let (about, problems) = crate::labels::About::from_labels(labels, "");
    let problems: Vec<String> = problems
        .into_iter()
        .filter(|problem| !problem.reason.contains("the registry's own host"))
        .map(|problem| problem.to_string())
        .collect();
    let given: Vec<&str> = crate::labels::KNOWN
        .iter()
        .copied()
        .filter(|key| labels.contains_key(*key))
        .map(|key| key.rsplit(['.', ':']).next().unwrap_or(key))
        .collect();
    let (status, seen, fix) = if !problems.is_empty() {
        (
            Status::Warn,
            problems.join("; "),
            "see README, \"Image labels\", for each label's form".to_owned(),
        )
    } else if about.is_none() {
        (
            Status::Info,
            "no labels arcade reads: the entry shows the image's name and arcade's defaults"
                .to_owned(),
            "add LABEL org.opencontainers.image.title=… and description=… (README, \"Image \
             labels\")"
                .to_owned(),
        )
    } else {
        (
            Status::Pass,
            format!("it gives {}", given.join(", ")),
            String::new(),
        )
    };
    Finding {
        id: "labels",
        requirement,
        status,
        seen,
        fix,
    }
}

/// What `startup.sh` did with the command it was given, from the app run: it ran it (the
/// probe's mark is in the output), or it ran its own app (a window mapped without the mark),
/// which costs the menu its command and the files opened from the desktop.
pub fn startup_finding(startup: Option<bool>, app: Option<&AppRun>) -> Finding {
    let requirement = "/skaha/startup.sh, if present, runs the command it is given";
    let app = match (startup, app) {
        (Some(true), Some(app)) => app,
        (Some(true), None) => unreachable!("an executable startup.sh is always run"),
        _ => &AppRun::default(),
    };
    let (status, seen, fix) = match startup {
        None => (
            Status::Pass,
            "no /skaha/startup.sh: the platform runs the command (xterm) itself".to_owned(),
            String::new(),
        ),
        Some(false) => (
            Status::Fail,
            "/skaha/startup.sh is not executable".to_owned(),
            "chmod +x /skaha/startup.sh in the image".to_owned(),
        ),
        Some(true) if app.run.has("arcade-probe ran") => (
            Status::Pass,
            "startup.sh ran the probe command it was given".to_owned(),
            String::new(),
        ),
        Some(true) if app.window.is_some() => (
            Status::Warn,
            "startup.sh ignores the command it is given and runs its own app: the menu's \
             command and files opened from the desktop cannot reach it"
                .to_owned(),
            "end startup.sh with exec \"$@\" (after any setup) to run what it is given".to_owned(),
        ),
        Some(true) => (
            Status::Warn,
            format!(
                "startup.sh did not run the probe command{}: {}",
                if app.run.timed_out {
                    ", and no window mapped in time"
                } else {
                    ""
                },
                app.run.tail()
            ),
            "end startup.sh with exec \"$@\" so overrides and the xterm default apply".to_owned(),
        ),
    };
    Finding {
        id: "startup",
        requirement,
        status,
        seen,
        fix,
    }
}

/// Whether the app works as the platform runs it: its window maps on the check's own display,
/// run as an arbitrary uid with no passwd entry and a home outside the image.
pub fn nonroot_finding(app: &AppRun, init_returns: bool, bound: Duration) -> Finding {
    let requirement = "works as an arbitrary non-root user with a home outside the image";
    let user = format!("uid {}", ARBITRARY_USER.0);
    let (status, seen, fix) = match (app.window, &app.run) {
        (Some(after), _) => (
            Status::Pass,
            format!(
                "its window mapped after {:.1} s, as {user} with HOME={}",
                after.as_secs_f64(),
                contract::HOME
            ),
            String::new(),
        ),
        (None, run) if run.timed_out => (
            Status::Fail,
            format!(
                "as {user}, no window mapped within {} s (still running): {}",
                bound.as_secs(),
                run.tail()
            ),
            "the app must open its window on $DISPLAY as any uid, with HOME outside the image"
                .to_owned(),
        ),
        (None, run) => (
            Status::Fail,
            format!(
                "as {user}, it ended with no window ({}): {}",
                match run.code {
                    Some(code) => format!("exit {code}"),
                    None => "killed".to_owned(),
                },
                run.tail()
            ),
            "the platform never runs apps as root: make the app start for any uid, with HOME \
             outside the image (no paths under /root)"
                .to_owned(),
        ),
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
    fn a_window_without_the_mark_means_startup_ignores_its_argument() {
        let app = AppRun {
            run: files("starting ds9\n"),
            window: Some(Duration::from_millis(900)),
        };
        let startup = startup_finding(Some(true), Some(&app));
        assert_eq!(startup.status, Status::Warn);
        assert!(
            startup.seen.contains("ignores the command"),
            "{}",
            startup.seen
        );
        assert_eq!(
            nonroot_finding(&app, true, Duration::from_secs(5)).status,
            Status::Pass
        );
        let ended = AppRun {
            run: Run {
                code: Some(7),
                output: "cd: /root: Permission denied\n".to_owned(),
                timed_out: false,
            },
            window: None,
        };
        let nonroot = nonroot_finding(&ended, true, Duration::from_secs(5));
        assert_eq!(nonroot.status, Status::Fail);
        assert!(nonroot.seen.contains("exit 7"), "{}", nonroot.seen);
    }
}
