//! `arcade image check` and `arcade image try` against real images built here: one that meets
//! every requirement, and one breaking each, each with its own finding; and the real DS9, TOPCAT
//! and Aladin images built the platform's way, which pass. The check judges "works as an
//! arbitrary non-root user" by the app's window on a private Xvfb of its own.

use crate::support::desk::{Desk, Engine, label_of};
use crate::support::images::{self, Spec};
use crate::support::real_apps::{self, App, Kind};
use crate::support::{Home, Run};

const NSSWITCH_SSS: &str = "passwd:         files sss\nshadow:         files sss\n\
                            group:          files sss\nhosts:          files\n";
const INIT_RETURNS: &str = "#!/bin/sh\necho 'setting up'\n";
const STARTUP_EXECS: &str = "#!/bin/sh\necho \"starting $*\"\nexec \"$@\"\n";

/// An image that meets every requirement of the guide.
fn good() -> Spec {
    Spec::new("check-good")
        .program("/usr/bin/getfacl")
        .program("/usr/bin/setfacl")
        .program("/lib/x86_64-linux-gnu/libnss_sss.so.2")
        .file("/etc/nsswitch.conf", NSSWITCH_SSS, 0o644)
        .file("/skaha/init.sh", INIT_RETURNS, 0o755)
        .file("/skaha/startup.sh", STARTUP_EXECS, 0o755)
}

/// The statuses a finding can have, as JSON names them, in the order the report gives them.
const STATUSES: [&str; 4] = ["fail", "warn", "pass", "info"];

/// The findings that are only information for an image with nothing to say: its entrypoint, and
/// labels it does not carry (the test images carry none).
const INFO: [&str; 2] = ["entrypoint", "labels"];

/// `arcade image check --json` (`extra` may add flags). The bound is the time each of the image's
/// scripts may take and the time the app's window may take to map: the window needs a few
/// seconds on a busy machine, and only a script that never returns makes a check wait the whole
/// bound, so it is generous unless a test sets its own.
fn check(home: &Home, image: &str, extra: &[&str]) -> Run {
    let bound: &[&str] = if extra.contains(&"--timeout") {
        &[]
    } else {
        &["--timeout", "60"]
    };
    check_command(home, image)
        .args(["--json"])
        .args(bound)
        .args(extra)
        .run()
}

/// `arcade image check IMAGE` with the test's podman settings.
fn check_command(home: &Home, image: &str) -> crate::support::Arcade {
    home.arcade()
        .env("CONTAINERS_CONF", images::containers_conf())
        .args(["image", "check", image])
}

/// The status and the seen text of a finding.
fn finding(run: &Run, id: &str) -> (String, String) {
    let report = run.json();
    let found = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|finding| finding["id"] == id)
        .unwrap_or_else(|| panic!("no finding {id}:\n{run}"));
    (
        found["status"].as_str().unwrap().to_owned(),
        found["seen"].as_str().unwrap().to_owned(),
    )
}

/// Every finding's status, for "nothing else changed" checks.
fn statuses(run: &Run) -> Vec<(String, String)> {
    run.json()["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|finding| {
            (
                finding["id"].as_str().unwrap().to_owned(),
                finding["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn a_good_image_passes_everything() {
    let home = Home::new();
    let image = images::build(&good());
    let run = check(&home, &image, &[]);
    assert_eq!(run.code, Some(0), "{run}");
    for (id, status) in statuses(&run) {
        let expected = if INFO.contains(&id.as_str()) {
            "info"
        } else {
            "pass"
        };
        assert_eq!(status, expected, "{id}:\n{run}");
    }
    assert!(
        finding(&run, "startup").1.contains("ran the probe command"),
        "{run}"
    );
    assert!(finding(&run, "nonroot").1.contains("uid 54321"), "{run}");

    // The text says the same: a finding per requirement, its result first, what was seen and
    // how to fix it below it, and a count.
    let table = check_command(&home, &image).args(["--timeout", "60"]).run();
    assert_eq!(table.code, Some(0), "{table}");
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert_eq!(lines[0], format!("{image} with podman"), "{table}");
    assert_eq!(lines[1], "RESULT  REQUIREMENT, SEEN, HOW TO FIX", "{table}");
    assert_eq!(lines[2], "pass    a standard Linux x86_64 image", "{table}");
    assert_eq!(lines[3], "        seen: linux/amd64", "{table}");
    assert!(
        lines
            .iter()
            .any(|line| line.starts_with("pass    works as an arbitrary non-root user")),
        "{table}"
    );
    assert_eq!(
        lines.last(),
        Some(&"8 passed, 0 warnings, 0 failed"),
        "{table}"
    );
    assert_fits_100_columns(&table);
}

/// Every line of a text report fits a 100-column terminal.
#[track_caller]
fn assert_fits_100_columns(run: &Run) {
    for line in run.stdout.lines() {
        assert!(
            line.chars().count() <= 100,
            "{line:?} is wider than 100 columns:\n{run}"
        );
    }
}

/// The findings in the order the report gives them lead with what failed, then what to improve,
/// then what passed, then what is only information.
#[track_caller]
fn assert_failures_lead(run: &Run) {
    let ranks: Vec<usize> = run.json()["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|finding| {
            let status = finding["status"].as_str().unwrap();
            STATUSES.iter().position(|known| *known == status).unwrap()
        })
        .collect();
    assert!(ranks.is_sorted(), "findings out of order:\n{run}");
}

/// Each broken image: the finding it must produce, and that every other finding is as for the good
/// image.
#[track_caller]
fn assert_only(run: &Run, id: &str, status: &str, seen: &str) {
    assert_only_these(run, &[(id, status, seen)]);
}

/// [`assert_only`] for several findings: each `(id, status, seen)` is as given, and every other
/// finding passes; the exit status is 1 when one of them fails.
#[track_caller]
fn assert_only_these(run: &Run, expected: &[(&str, &str, &str)]) {
    for (id, status, seen) in expected {
        let (got, text) = finding(run, id);
        assert_eq!(got, *status, "{id}:\n{run}");
        assert!(text.contains(seen), "{id}: {text:?} lacks {seen:?}");
    }
    for (other, other_status) in statuses(run) {
        if !INFO.contains(&other.as_str()) && !expected.iter().any(|(id, ..)| *id == other) {
            assert_eq!(other_status, "pass", "{other} changed too:\n{run}");
        }
    }
    let failed = expected.iter().any(|(_, status, _)| *status == "fail");
    assert_eq!(run.code, Some(if failed { 1 } else { 0 }), "{run}");
}

#[test]
fn no_xterm_fails() {
    let home = Home::new();
    let mut spec = good();
    spec.name = "check-no-xterm";
    let image = images::build(&spec.without_xterm());
    let run = check(&home, &image, &[]);
    // Without xterm, nothing the platform runs can show a window either.
    let (status, seen) = finding(&run, "nonroot");
    assert_eq!(status, "fail", "{run}");
    assert!(seen.contains("xterm: not found"), "{seen}");
    assert_only_these(
        &run,
        &[
            ("xterm", "fail", "no xterm on PATH"),
            ("nonroot", "fail", "ended with no window"),
        ],
    );
    assert_failures_lead(&run);

    // The text leads with the failures too, and fits a 100-column terminal.
    let table = check_command(&home, &image).args(["--timeout", "60"]).run();
    assert_eq!(table.code, Some(1), "{table}");
    let results: Vec<&str> = table
        .stdout
        .lines()
        .skip(2)
        .filter_map(|line| line.split_whitespace().next())
        .filter(|word| STATUSES.contains(word))
        .collect();
    assert_eq!(&results[..2], ["fail", "fail"], "{table}");
    assert!(
        results[2..].iter().all(|result| *result != "fail"),
        "{table}"
    );
    assert!(
        table.stdout.ends_with("6 passed, 0 warnings, 2 failed\n"),
        "{table}"
    );
    assert_fits_100_columns(&table);
}

#[test]
fn a_blocking_init_fails() {
    let home = Home::new();
    let mut spec = good().program("/bin/sleep").file(
        "/skaha/init.sh",
        "#!/bin/sh\necho 'waiting forever'\nsleep 600\n",
        0o755,
    );
    spec.name = "check-blocking-init";
    let image = images::build(&spec);
    // The bound also gives the app's window its time to map, so it is not too short.
    let run = check(&home, &image, &["--timeout", "10"]);
    let (status, seen) = finding(&run, "init");
    assert_eq!(status, "fail", "{run}");
    assert!(seen.contains("did not return within 10 s"), "{seen}");
    // The rest is still checked, without the init that never returns.
    let (status, seen) = finding(&run, "nonroot");
    assert_eq!(status, "pass", "{run}");
    assert!(seen.contains("init.sh skipped"), "{seen}");
    assert_eq!(run.code, Some(1), "{run}");
}

/// A `startup.sh` that ignores its argument and starts nothing: the check cannot tell what it
/// would run, and nothing shows a window.
#[test]
fn a_startup_that_ignores_its_argument_and_shows_nothing_fails_the_non_root_check() {
    let home = Home::new();
    let mut spec = good().file(
        "/skaha/startup.sh",
        "#!/bin/sh\necho 'starting ds9 directly'\nexit 0\n",
        0o755,
    );
    spec.name = "check-startup-ignores";
    let image = images::build(&spec);
    let run = check(&home, &image, &[]);
    // The non-root run goes through the same startup.sh, so it cannot see the probe either.
    let (status, seen) = finding(&run, "startup");
    assert_eq!(status, "warn", "{run}");
    assert!(seen.contains("starting ds9 directly"), "{seen}");
    let (status, _) = finding(&run, "nonroot");
    assert_eq!(status, "fail", "{run}");
}

/// A `startup.sh` that runs its own app and ignores the command it is given, as the platform's
/// ds9 and topcat images do: the app works, so this is a warning, and it says what it costs.
#[test]
fn a_startup_that_runs_its_own_app_is_a_warning_that_says_what_it_costs() {
    let home = Home::new();
    let mut spec = good().file(
        "/skaha/startup.sh",
        "#!/bin/sh\necho 'starting the app itself'\nexec xterm -title 'its own app'\n",
        0o755,
    );
    spec.name = "check-startup-runs-its-own";
    let image = images::build(&spec);
    let run = check(&home, &image, &[]);
    assert_only(
        &run,
        "startup",
        "warn",
        "ignores the command it is given and runs its own app: the menu's command and files \
         opened from the desktop cannot reach it",
    );
    let (_, seen) = finding(&run, "nonroot");
    assert!(seen.contains("its window mapped"), "{seen}");

    // The warning's long lines are wrapped to fit a 100-column terminal.
    let table = check_command(&home, &image).args(["--timeout", "60"]).run();
    assert_eq!(table.code, Some(0), "{table}");
    assert!(
        table
            .stdout
            .contains("\nwarn    /skaha/startup.sh, if present, runs the command"),
        "{table}"
    );
    assert_fits_100_columns(&table);
}

/// The real DS9, TOPCAT and Aladin images built the platform's way (Debian's packages, a
/// `startup.sh` that runs the app and ignores its argument) pass: the app's window maps as an
/// arbitrary uid, and the only warning about how the image runs is that one. The Debian images
/// carry neither the SSSD client nor the ACL tools, which are warnings of their own.
fn a_real_app_image_passes(app: App) {
    let home = Home::new();
    let image = real_apps::podman_images().reference(Kind::Runs(app));
    let run = check(&home, &image, &[]);
    assert_eq!(run.code, Some(0), "{run}");
    let (status, seen) = finding(&run, "nonroot");
    assert_eq!(status, "pass", "{run}");
    assert!(seen.contains("its window mapped"), "{seen}");
    let (status, seen) = finding(&run, "startup");
    assert_eq!(status, "warn", "{run}");
    assert!(seen.contains("cannot reach it"), "{seen}");
    for (id, status) in statuses(&run) {
        let expected = match id.as_str() {
            "startup" | "sssd" | "acl" | "nsswitch" => "warn",
            "entrypoint" | "labels" => "info",
            _ => "pass",
        };
        assert_eq!(status, expected, "{id}:\n{run}");
    }
    assert_failures_lead(&run);
}

#[test]
fn the_real_ds9_image_passes() {
    a_real_app_image_passes(App::Ds9);
}

#[test]
fn the_real_topcat_image_passes() {
    a_real_app_image_passes(App::Topcat);
}

#[test]
fn the_real_aladin_image_passes() {
    a_real_app_image_passes(App::Aladin);
}

#[test]
fn nsswitch_without_sss_is_a_warning() {
    let home = Home::new();
    let mut spec = good().file(
        "/etc/nsswitch.conf",
        "passwd: files\nshadow: files\ngroup: files sss\n",
        0o644,
    );
    spec.name = "check-no-sss";
    let image = images::build(&spec);
    let run = check(&home, &image, &[]);
    assert_only(&run, "nsswitch", "warn", "no sss for passwd, shadow");
}

#[test]
fn a_root_only_home_fails_the_non_root_check() {
    let home = Home::new();
    let mut spec = good().dir("/root", 0o700).file(
        "/skaha/startup.sh",
        "#!/bin/sh\ncd /root || exit 7\nexec \"$@\"\n",
        0o755,
    );
    spec.name = "check-root-home";
    let image = images::build(&spec);
    let run = check(&home, &image, &[]);
    assert_only(&run, "nonroot", "fail", "exit 7");
}

#[test]
fn a_non_x86_64_image_fails() {
    let home = Home::new();
    let mut spec = good().arch("arm64");
    spec.name = "check-arm64";
    let image = images::build(&spec);
    let run = check(&home, &image, &[]);
    assert_only(&run, "platform", "fail", "linux/arm64");
}

#[test]
fn scripts_that_are_not_executable_fail_and_cmd_is_reported_as_ignored() {
    let home = Home::new();
    let mut spec = good()
        .file("/skaha/init.sh", INIT_RETURNS, 0o644)
        .file("/skaha/startup.sh", STARTUP_EXECS, 0o644)
        .change(r#"ENTRYPOINT ["/bin/sh", "-c"]"#)
        .change(r#"CMD ["exec xterm -e top"]"#);
    spec.name = "check-not-executable";
    let image = images::build(&spec);
    let run = check(&home, &image, &[]);
    assert_eq!(run.code, Some(1), "{run}");
    assert_eq!(
        finding(&run, "init"),
        (
            "fail".to_owned(),
            "/skaha/init.sh is not executable".to_owned()
        )
    );
    assert_eq!(
        finding(&run, "startup"),
        (
            "fail".to_owned(),
            "/skaha/startup.sh is not executable".to_owned()
        )
    );
    let (status, seen) = finding(&run, "entrypoint");
    assert_eq!(status, "info", "{run}");
    assert!(
        seen.contains("/bin/sh") && seen.contains("exec xterm -e top"),
        "{seen}"
    );
    let fix = run.json()["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|finding| finding["id"] == "entrypoint")
        .unwrap()["fix"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(fix.contains("ignores both"), "{fix}");
}

#[test]
fn no_sssd_client_or_acl_tools_are_warnings() {
    let home = Home::new();
    let image = images::build(
        &Spec::new("check-no-sss-no-acl")
            .file("/etc/nsswitch.conf", NSSWITCH_SSS, 0o644)
            .file("/skaha/init.sh", INIT_RETURNS, 0o755)
            .file("/skaha/startup.sh", STARTUP_EXECS, 0o755),
    );
    let run = check(&home, &image, &[]);
    assert_eq!(run.code, Some(0), "warnings alone pass: {run}");
    assert_eq!(
        finding(&run, "sssd"),
        ("warn".to_owned(), "no libnss_sss.so.2".to_owned())
    );
    assert_eq!(
        finding(&run, "acl"),
        ("warn".to_owned(), "neither getfacl nor setfacl".to_owned())
    );
    assert_eq!(finding(&run, "xterm").0, "pass", "{run}");
}

#[test]
fn a_missing_image_or_engine_is_a_clear_error() {
    let home = Home::new();
    let run = check(&home, "localhost/arcade-test/never-built:1", &[]);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(
        run.error_line().contains("is not present for podman"),
        "{run}"
    );

    let run = home
        .arcade()
        .env("PATH", "/nonexistent")
        .args(["image", "check", "localhost/arcade-test/never-built:1"])
        .run();
    assert!(
        run.error_line().contains("podman is not installed"),
        "{run}"
    );
}

#[test]
fn image_try_opens_the_image_on_the_display() {
    let desk = Desk::new(Engine::Podman);
    let image = desk.build(&good());
    let run = desk.arcade().args(["image", "try", &image]).run();
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stdout.contains("first window after"), "{run}");
    let label = label_of(&image);
    assert!(
        desk.xvfb.window_titled(&label).is_some(),
        "no window titled {label}: {:?}",
        desk.xvfb.windows()
    );
}

#[test]
fn launch_local_runs_the_image_here_whatever_the_configured_backend() {
    let desk = Desk::new(Engine::Podman);
    // The configured backend is the platform's, which is not here.
    desk.home
        .write_config("[launch]\nbackend = \"skaha\"\npull = \"never\"\n");
    let image = desk.build(&good());
    let run = desk.arcade().args(["launch", "--local", &image]).run();
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stdout.contains(", podman)"), "{run}");
    let label = label_of(&image);
    assert!(
        desk.xvfb.window_titled(&label).is_some(),
        "no window titled {label}: {:?}",
        desk.xvfb.windows()
    );

    // `image try` says plainly when the image or the engine is missing.
    let run = desk
        .arcade()
        .args(["image", "try", "localhost/arcade-test/never-built:1"])
        .run();
    assert_eq!(run.code, Some(1), "{run}");
    let line = run.error_line();
    assert!(
        line.contains("localhost/arcade-test/never-built:1")
            && line.contains("build or pull it first"),
        "{run}"
    );
    // It never tried to pull from a registry that is not one.
    assert!(!run.stderr.contains("/v2/"), "{run}");
    let run = desk
        .arcade()
        .env("PATH", "/nonexistent")
        .args(["image", "try", &image])
        .run();
    assert!(
        run.error_line().contains("podman is not installed"),
        "{run}"
    );
}
