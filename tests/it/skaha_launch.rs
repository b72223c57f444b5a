//! `arcade launch --backend skaha` end to end, against the skaha stand-in: the POST with its form
//! fields and token, polling to Running, Failed or the deadline, and the app's window on a real
//! Xvfb, opened (as on the platform) by a pod whose host name is the image name, reaching the
//! desktop over TCP. Also `arcade ps`, `stop` and `logs` for skaha launches, and every failure as
//! one clear line, in bounded time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::desk::{Desk, launch_id};
use crate::support::fake_http::{Fault, FaultKind};
use crate::support::images::{self, Spec};
use crate::support::real_apps::PodDesktop;
use crate::support::skaha::{self, AppScript, FakeSkaha, PodState, SkahaConfig};
use crate::support::xvfb::Screen as _;
use crate::support::{self, Arcade, Run};

const TOKEN: &str = "ZGVza3RvcC1hcHAtdG9rZW4~c2lnbmF0dXJl";
const IMAGE: &str = "images.canfar.net/skaha/terminal:1.0";
/// What arcade calls the image: a reference the catalog does not know is named as typed.
const LABEL: &str = IMAGE;
/// The pod's host name skaha gives it (`getImageName`), and so its windows' WM_CLIENT_MACHINE.
const POD_HOST: &str = "terminal-1-0";

/// The fake's desktop session.
fn session() -> String {
    SkahaConfig::default().sessions[0].clone()
}

/// A platform desktop: a desk without a local engine whose display pods reach over TCP, and skaha
/// beside it (first, so that its pods end before their display does).
struct Desktop {
    skaha: FakeSkaha,
    desk: Desk<Arc<PodDesktop>>,
}

/// How a [`Desktop`] is set up.
struct Setup {
    script: AppScript,
    /// Whether skaha's apps really run (a pod of the test xterm image, run by the platform's
    /// launcher, on the display).
    pods: bool,
    /// `[launch] wait_secs`, `[skaha] poll_timeout_secs`, `timeout_secs`.
    wait_secs: u64,
    poll_timeout_secs: u64,
    timeout_secs: u64,
    faults: Vec<Fault>,
    latency: Duration,
}

impl Default for Setup {
    fn default() -> Setup {
        Setup {
            script: AppScript::RunningAfter(2),
            pods: true,
            // Generous for the window, which appears at once unless something is wrong; the
            // tests of failures set what they wait for small.
            wait_secs: 20,
            poll_timeout_secs: 20,
            timeout_secs: 5,
            faults: Vec::new(),
            latency: Duration::ZERO,
        }
    }
}

impl Desktop {
    fn new(setup: Setup) -> Desktop {
        let desk = Desk::on_pods();
        let runner = setup.pods.then(|| {
            let xterm = images::build(&Spec::new("xterm"));
            skaha::pods_on(Arc::clone(&desk.xvfb), &[(IMAGE, xterm)])
        });
        let skaha = FakeSkaha::start(SkahaConfig {
            session_tokens: vec![TOKEN.to_owned()],
            app_script: setup.script,
            runner,
            faults: setup.faults,
            latency: setup.latency,
            ..SkahaConfig::default()
        });
        desk.home.write_config(&format!(
            "timeout_secs = {}\n[launch]\nwait_secs = {}\n[skaha]\npoll_timeout_secs = {}\n",
            setup.timeout_secs, setup.wait_secs, setup.poll_timeout_secs
        ));
        Desktop { skaha, desk }
    }

    /// arcade as inside the desktop: its display, its session id and callback token.
    fn arcade(&self) -> Arcade {
        self.desk
            .arcade()
            .env("DESKTOP_SESSION_APP_TOKEN", TOKEN)
            .env("ARCADE_SESSION_ID", session())
    }

    /// `arcade launch --backend skaha --url <skaha> ARGS`, timed.
    fn launch(&self, args: &[&str]) -> (Run, Duration) {
        self.launch_with(self.arcade(), args)
    }

    /// [`Desktop::launch`] from a given `arcade` (another environment).
    fn launch_with(&self, arcade: Arcade, args: &[&str]) -> (Run, Duration) {
        let arcade = arcade.args(["launch", "--backend", "skaha", "--url"]);
        timed(arcade.args([self.skaha.root_url()]).args(args))
    }

    /// `arcade` for `ps`, `stop` and `logs`, which find skaha through `ARCADE_SKAHA_URL`.
    fn after(&self) -> Arcade {
        self.arcade().env("ARCADE_SKAHA_URL", self.skaha.root_url())
    }

    /// The skaha rows of `arcade ps --json`. The tests run as one uid, and `ps` also shows every
    /// local arcade container of the uid (podman is the default backend), which other tests on
    /// this machine start and stop at any time: those are not this desktop's.
    fn ps(&self) -> Vec<Value> {
        let rows = self.after().args(["ps", "--json"]).ok().json();
        rows.as_array()
            .unwrap_or_else(|| panic!("ps --json is not an array: {rows:#}"))
            .iter()
            .filter(|row| row["backend"] == "skaha")
            .cloned()
            .collect()
    }

    /// The one launch this desktop made, as `arcade ps --json` shows it.
    fn only_row(&self) -> Value {
        let rows = self.ps();
        assert_eq!(rows.len(), 1, "{rows:#?}");
        rows[0].clone()
    }

    /// The viewable windows from the pod.
    fn pod_windows(&self) -> Vec<crate::support::xvfb::Window> {
        self.desk
            .xvfb
            .windows()
            .into_iter()
            .filter(|window| window.viewable && window.client_machine == POD_HOST)
            .collect()
    }

    /// Every logged request with its method, path and status, for failure messages.
    fn request_log(&self) -> String {
        self.skaha
            .requests()
            .iter()
            .map(|r| format!("{} {} → {:?}", r.method, r.uri(), r.status))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The requests with this method whose path ends with `suffix`.
    fn requests(&self, method: &str, suffix: &str) -> usize {
        self.skaha
            .requests()
            .iter()
            .filter(|r| r.method == method && r.path.ends_with(suffix))
            .count()
    }

    fn app_path(&self, app_id: &str) -> String {
        format!("/skaha/v1/session/{}/app/{app_id}", session())
    }

    /// The versioned API root that messages name.
    fn api(&self) -> String {
        format!("{}/v1", self.skaha.url())
    }
}

fn timed(arcade: Arcade) -> (Run, Duration) {
    let started = Instant::now();
    let run = arcade.run();
    (run, started.elapsed())
}

/// Asserts a failed launch: exit status 2 and one error line, which is returned.
#[track_caller]
fn failed(run: &Run) -> String {
    assert_eq!(run.code, Some(2), "{run}");
    let line = run.error_line().to_owned();
    assert!(!line.contains('\n'), "{line}");
    line
}

#[test]
fn the_pod_window_maps_and_stop_deletes_the_app() {
    let desktop = Desktop::new(Setup::default());
    let (run, _) = desktop.launch(&["--cores", "4", "--ram", "16", IMAGE]);
    assert_eq!(run.code, Some(0), "{run}\n{}", desktop.request_log());
    assert!(
        run.stdout
            .contains(&format!("{LABEL} is up: first window after")),
        "{run}"
    );
    assert!(run.stdout.contains(", skaha)"), "{run}");
    let id = launch_id(&run);

    // The X server shows the window, from the pod's host name, when arcade says it is up.
    let windows = desktop.pod_windows();
    assert_eq!(windows.len(), 1, "{:#?}", desktop.desk.xvfb.windows());
    assert_eq!(windows[0].title, POD_HOST, "{windows:?}");
    assert!(windows[0].class.contains("XTerm"), "{windows:?}");

    // One app, posted as the platform's launcher posts it, polled until Running.
    let apps = desktop.skaha.apps();
    assert_eq!(apps.len(), 1, "{apps:#?}");
    let app = &apps[0];
    assert_eq!(app.session_id, session());
    assert_eq!(app.field("image"), Some(IMAGE));
    assert_eq!(app.field("cores"), Some("4"));
    assert_eq!(app.field("ram"), Some("16"));
    assert!(matches!(app.pod, PodState::Running { .. }), "{app:#?}");
    assert!(app.reads >= 3, "Running comes on the third read: {app:#?}");

    let requests = desktop.skaha.requests();
    assert_eq!(requests[0].method, "GET", "{}", desktop.request_log());
    assert_eq!(requests[0].path, "/skaha/v1/context");
    assert_eq!(requests[1].method, "POST");
    assert_eq!(
        requests[1].path,
        format!("/skaha/v1/session/{}/app", session())
    );
    assert_eq!(
        requests[1].content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(desktop.requests("POST", "/app"), 1);
    assert_eq!(
        desktop.requests("GET", &desktop.app_path(&app.app_id)),
        app.reads
    );
    for request in &requests {
        assert_eq!(request.skaha_token.as_deref(), Some(TOKEN), "{request:?}");
        assert_eq!(request.authorization, None, "{request:?}");
    }

    // ps shows it running on skaha, as skaha itself says.
    let row = desktop.only_row();
    assert_eq!(row["id"], id.as_str(), "{row:#}");
    assert_eq!(row["backend"], "skaha", "{row:#}");
    assert_eq!(row["state"], "running", "{row:#}");
    assert_eq!(row["live_state"], "running", "{row:#}");
    assert_eq!(row["app_id"], app.app_id.as_str(), "{row:#}");
    assert_eq!(row["session_id"], session().as_str(), "{row:#}");
    assert_eq!(row["image"], IMAGE, "{row:#}");
    assert!(row["window_ms"].is_u64(), "{row:#}");

    // The log tells the launch as arcade saw it.
    let logs = desktop.after().args(["logs", &id]).ok();
    for part in [
        IMAGE,
        &desktop.api(),
        &app.app_id,
        "skaha reports Pending",
        "skaha reports Running",
        &format!("first window from {POD_HOST}"),
    ] {
        assert!(logs.stdout.contains(part), "no {part:?} in:\n{logs}");
    }

    // stop deletes the app; the platform ends the pod, and the window goes.
    let stopped = desktop.after().args(["stop", &id]).ok();
    assert!(
        stopped.stdout.contains(&format!("stopped {LABEL} ({id})")),
        "{stopped}"
    );
    let deletes: Vec<_> = desktop
        .skaha
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .collect();
    assert_eq!(deletes.len(), 1, "{}", desktop.request_log());
    assert_eq!(deletes[0].path, desktop.app_path(&app.app_id));
    assert_eq!(deletes[0].skaha_token.as_deref(), Some(TOKEN));
    assert_eq!(deletes[0].status, Some(200));
    let apps = desktop.skaha.apps();
    assert!(apps[0].deleted, "{apps:#?}");
    assert_eq!(apps[0].pod, PodState::Killed, "{apps:#?}");
    support::wait_for("the pod's window to go", Duration::from_secs(10), || {
        desktop.pod_windows().is_empty().then_some(())
    });
    assert_eq!(desktop.only_row()["state"], "stopped");

    // Every call arcade made (context, POST, polls, ps, DELETE) is one skaha's OpenAPI declares.
    desktop.skaha.assert_requests_in_contract();
}

#[test]
fn a_slow_skaha_still_gets_the_app_up() {
    let desktop = Desktop::new(Setup {
        script: AppScript::RunningAfter(1),
        latency: Duration::from_millis(400),
        ..Setup::default()
    });
    let (run, took) = desktop.launch(&[IMAGE]);
    assert_eq!(run.code, Some(0), "{run}\n{}", desktop.request_log());
    assert!(run.stdout.contains("is up: first window after"), "{run}");
    assert_eq!(
        desktop.pod_windows().len(),
        1,
        "{:#?}",
        desktop.desk.xvfb.windows()
    );
    // POST and two reads, each 400 ms late: the latency was really there.
    assert!(took >= Duration::from_millis(1200), "{took:?}");
    // Without --cores or --ram the context is not asked, and no resource is posted.
    assert_eq!(desktop.requests("GET", "/context"), 0);
    let app = &desktop.skaha.apps()[0];
    assert_eq!(app.field("cores"), None, "{app:#?}");
    assert_eq!(app.field("ram"), None, "{app:#?}");
}

#[test]
fn pending_forever_ends_at_the_poll_deadline() {
    let desktop = Desktop::new(Setup {
        script: AppScript::PendingForever,
        poll_timeout_secs: 2,
        ..Setup::default()
    });
    let (run, took) = desktop.launch(&[IMAGE]);
    let line = failed(&run);
    let app_id = desktop.skaha.apps()[0].app_id.clone();
    let row = desktop.only_row();
    let id = row["id"].as_str().unwrap().to_owned();
    assert!(
        line.contains(&format!(
            "skaha at {} still reports {LABEL} (app {app_id}) Pending after 2 s",
            desktop.api()
        )),
        "{line}"
    );
    assert!(line.contains(&format!("arcade stop {id}")), "{line}");
    assert!(took >= Duration::from_secs(2), "{took:?}");
    assert!(took < Duration::from_secs(8), "polled for {took:?}");
    // About one read per half second, not a busy loop.
    let reads = desktop.requests("GET", &desktop.app_path(&app_id));
    assert!((2..=7).contains(&reads), "{}", desktop.request_log());

    // It may still start, so it is not marked failed, and skaha's view shows.
    assert_eq!(row["state"], "starting", "{row:#}");
    assert_eq!(row["live_state"], "pending", "{row:#}");
    assert!(desktop.pod_windows().is_empty());

    desktop.after().args(["stop", &id]).ok();
    assert!(desktop.skaha.apps()[0].deleted);
}

#[test]
fn a_failed_app_is_one_clear_line() {
    let desktop = Desktop::new(Setup {
        script: AppScript::FailedAfter(1),
        ..Setup::default()
    });
    let (run, took) = desktop.launch(&[IMAGE]);
    let line = failed(&run);
    let app = &desktop.skaha.apps()[0];
    assert_eq!(
        line,
        format!(
            "arcade: error: skaha at {} reports {LABEL} (app {}) Failed",
            desktop.api(),
            app.app_id
        )
    );
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(app.pod, PodState::None, "a failed app never ran: {app:#?}");

    let row = desktop.only_row();
    assert_eq!(row["state"], "failed", "{row:#}");
    let id = row["id"].as_str().unwrap();
    let logs = desktop.after().args(["logs", id]).ok();
    let pending = logs.stdout.find("skaha reports Pending");
    let failed = logs.stdout.find("skaha reports Failed");
    assert!(pending.is_some() && pending < failed, "{logs}");
}

#[test]
fn a_window_that_never_comes_is_reported_after_the_wait() {
    // skaha says Running, but nothing opens a window on this display.
    let desktop = Desktop::new(Setup {
        script: AppScript::RunningAfter(0),
        pods: false,
        wait_secs: 2,
        ..Setup::default()
    });
    let (run, took) = desktop.launch(&[IMAGE]);
    let line = failed(&run);
    let id = desktop.only_row()["id"].as_str().unwrap().to_owned();
    let app_id = desktop.skaha.apps()[0].app_id.clone();
    assert!(
        line.contains(&format!(
            "skaha at {} runs {LABEL} (app {app_id}) but no window from {POD_HOST} reached {} \
             within 2 s",
            desktop.api(),
            desktop.desk.xvfb.display()
        )),
        "{line}"
    );
    assert!(line.contains(&format!("arcade stop {id}")), "{line}");
    assert!(took >= Duration::from_secs(2), "{took:?}");
    assert!(took < Duration::from_secs(8), "{took:?}");
    assert_eq!(desktop.only_row()["state"], "running");
}

#[test]
fn no_wait_returns_after_the_post() {
    // Waiting would take the whole poll timeout: the app never leaves Pending.
    let desktop = Desktop::new(Setup {
        script: AppScript::PendingForever,
        ..Setup::default()
    });
    let (run, took) = desktop.launch(&["--no-wait", "--cores", "2", IMAGE]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(
        run.stdout.contains(&format!("{LABEL} started (launch ")),
        "{run}"
    );
    let id = launch_id(&run);
    assert!(took < Duration::from_secs(8), "{took:?}");
    let app = &desktop.skaha.apps()[0];
    assert_eq!(app.field("cores"), Some("2"));
    assert_eq!(desktop.requests("POST", "/app"), 1);
    assert_eq!(
        desktop.requests("GET", &desktop.app_path(&app.app_id)),
        0,
        "{}",
        desktop.request_log()
    );

    let row = desktop.only_row();
    assert_eq!(row["state"], "starting", "{row:#}");
    assert_eq!(row["live_state"], "pending", "{row:#}");

    // Stopped once; a second stop says it has already stopped (exit 1), and asks skaha nothing.
    desktop.after().args(["stop", &id]).ok();
    let again = desktop.after().args(["stop", &id]).run();
    assert_eq!(again.code, Some(1), "{again}");
    assert!(
        again.error_line().contains(&format!(
            "launch {id} ({LABEL}) has already stopped; there is nothing to stop"
        )),
        "{again}"
    );
    let deletes = || -> Vec<Option<u16>> {
        desktop
            .skaha
            .requests()
            .iter()
            .filter(|r| r.method == "DELETE")
            .map(|r| r.status)
            .collect()
    };
    assert_eq!(deletes(), [Some(200)], "{}", desktop.request_log());
    assert_eq!(desktop.only_row()["state"], "stopped");

    // An app skaha no longer has (404) ended unseen: stop says so, exits 1, and records its end.
    let (run, _) = desktop.launch(&["--no-wait", IMAGE]);
    let second = launch_id(&run);
    let app_id = desktop.skaha.apps()[1].app_id.clone();
    desktop.skaha.forget_app(&app_id);
    let gone = desktop.after().args(["stop", &second]).run();
    assert_eq!(gone.code, Some(1), "{gone}");
    assert!(gone.error_line().contains("has already exited"), "{gone}");
    assert_eq!(
        deletes(),
        [Some(200), Some(404)],
        "{}",
        desktop.request_log()
    );
    let logs = desktop.after().args(["logs", &second]).ok();
    assert!(logs.stdout.contains("skaha no longer had it"), "{logs}");

    // An id arcade never launched is not found (exit status 1).
    let run = desktop.after().args(["stop", "nosuch"]).run();
    assert_eq!(run.code, Some(1), "{run}");
}

#[test]
fn the_platform_environment_is_enough() {
    // Inside a desktop: the session id in VNC_PW, the token, and the URL and backend from the
    // environment instead of flags.
    let desktop = Desktop::new(Setup::default());
    let run = desktop
        .desk
        .arcade()
        .env("DESKTOP_SESSION_APP_TOKEN", TOKEN)
        .env("VNC_PW", session())
        .env("ARCADE_BACKEND", "skaha")
        .env("ARCADE_URL", desktop.skaha.root_url())
        .args(["launch", IMAGE])
        .run();
    assert_eq!(run.code, Some(0), "{run}\n{}", desktop.request_log());
    assert_eq!(desktop.pod_windows().len(), 1);
    let apps = desktop.skaha.apps();
    assert_eq!(apps.len(), 1);
    assert_eq!(apps[0].session_id, session());
    assert!(
        desktop
            .skaha
            .requests()
            .iter()
            .all(|r| r.skaha_token.as_deref() == Some(TOKEN))
    );
}

#[test]
fn credentials_refused_are_one_clear_line() {
    let desktop = Desktop::new(Setup::default());
    let post = format!("{}/session/{}/app", desktop.api(), session());

    // No token at all: the hint names the variable the desktop provides.
    let (run, _) = timed(
        desktop
            .desk
            .arcade()
            .env("ARCADE_SESSION_ID", session())
            .args(["launch", "--backend", "skaha", "--url"])
            .args([desktop.skaha.root_url(), IMAGE.to_owned()]),
    );
    let line = failed(&run);
    assert!(
        line.contains(&format!("skaha at {post} refused the request (401")),
        "{line}"
    );
    assert!(line.contains("DESKTOP_SESSION_APP_TOKEN"), "{line}");

    // A wrong token.
    let (run, _) = timed(
        desktop
            .arcade()
            .env("DESKTOP_SESSION_APP_TOKEN", "expired")
            .args(["launch", "--backend", "skaha", "--url"])
            .args([desktop.skaha.root_url(), IMAGE.to_owned()]),
    );
    let line = failed(&run);
    assert!(line.contains("(401 Unauthorized)"), "{line}");
    assert!(line.contains("check the token"), "{line}");

    // 403 on the POST.
    desktop
        .skaha
        .add_fault(Fault::first(1, FaultKind::Status(403)).method(axum::http::Method::POST));
    let (run, _) = desktop.launch(&[IMAGE]);
    let line = failed(&run);
    assert!(
        line.contains(&format!("skaha at {post} refused the request (403")),
        "{line}"
    );
    assert!(
        desktop.skaha.apps().is_empty(),
        "{:#?}",
        desktop.skaha.apps()
    );
    assert!(desktop.pod_windows().is_empty());
    assert!(desktop.ps().is_empty(), "nothing was launched");

    // 403 while polling: the app exists, but arcade may not follow it.
    desktop.skaha.add_fault(
        Fault::always(FaultKind::Status(403))
            .on("/app/")
            .method(axum::http::Method::GET),
    );
    let (run, took) = desktop.launch(&[IMAGE]);
    let line = failed(&run);
    let app_id = desktop.skaha.apps()[0].app_id.clone();
    assert!(
        line.contains(&format!(
            "skaha at {post}/{app_id} refused the request (403"
        )),
        "{line}"
    );
    assert!(took < Duration::from_secs(8), "{took:?}");
    assert_eq!(desktop.only_row()["state"], "failed");
}

#[test]
fn an_unknown_session_is_404_and_one_clear_line() {
    let desktop = Desktop::new(Setup::default());
    let (run, _) = timed(
        desktop
            .arcade()
            .env("ARCADE_SESSION_ID", "nosuchid")
            .args(["launch", "--backend", "skaha", "--url"])
            .args([desktop.skaha.root_url(), IMAGE.to_owned()]),
    );
    let line = failed(&run);
    assert!(
        line.contains(&format!(
            "skaha at {}/session/nosuchid/app knows no desktop session nosuchid of yours (404)",
            desktop.api()
        )),
        "{line}"
    );
    assert!(line.contains("ARCADE_SESSION_ID"), "{line}");

    // A 404 for a wrong URL is not blamed on the session.
    let (run, _) = timed(
        desktop
            .arcade()
            .args(["launch", "--backend", "skaha", "--url"])
            .args([
                format!("{}/elsewhere", desktop.skaha.root_url()),
                IMAGE.to_owned(),
            ]),
    );
    let line = failed(&run);
    assert!(
        line.contains(&format!(
            "{}/elsewhere/v1/session/{}/app answered 404 Not Found",
            desktop.skaha.root_url(),
            session()
        )),
        "{line}"
    );
    assert!(desktop.skaha.apps().is_empty());
}

#[test]
fn status_reads_that_hang_end_at_the_poll_deadline() {
    // Each read would time out and be retried for far longer than the poll timeout.
    let desktop = Desktop::new(Setup {
        poll_timeout_secs: 2,
        timeout_secs: 2,
        faults: vec![
            Fault::always(FaultKind::Hang)
                .on("/app/")
                .method(axum::http::Method::GET),
        ],
        ..Setup::default()
    });
    let (run, took) = desktop.launch(&[IMAGE]);
    let line = failed(&run);
    let app_id = desktop.skaha.apps()[0].app_id.clone();
    assert!(
        line.contains(&format!(
            "skaha at {} did not report on {LABEL} (app {app_id}) within 2 s",
            desktop.api()
        )),
        "{line}"
    );
    assert!(took < Duration::from_secs(6), "{took:?}");
    assert_eq!(desktop.only_row()["state"], "starting");
}

#[test]
fn a_launch_skaha_does_not_answer_fails_in_time() {
    let desktop = Desktop::new(Setup {
        timeout_secs: 1,
        faults: vec![Fault::always(FaultKind::Hang).method(axum::http::Method::POST)],
        ..Setup::default()
    });
    let (run, took) = desktop.launch(&[IMAGE]);
    let line = failed(&run);
    assert!(
        line.contains(&format!(
            "skaha at {}/session/{}/app did not answer the launch in time",
            desktop.api(),
            session()
        )),
        "{line}"
    );
    assert!(line.contains("may start the app all the same"), "{line}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    // Not retried: a second POST could start a second app.
    assert_eq!(desktop.requests("POST", "/app"), 1);

    // A server error on the POST is not retried either.
    desktop.skaha.clear_faults();
    desktop
        .skaha
        .add_fault(Fault::first(1, FaultKind::Status(503)).method(axum::http::Method::POST));
    let (run, _) = desktop.launch(&[IMAGE]);
    let line = failed(&run);
    assert!(line.contains("answered 503"), "{line}");
    assert_eq!(desktop.requests("POST", "/app"), 2);
    assert!(desktop.ps().is_empty());
}

#[test]
fn resources_are_checked_against_the_context() {
    let desktop = Desktop::new(Setup::default());
    let (run, _) = desktop.launch(&["--cores", "3", IMAGE]);
    let line = failed(&run);
    assert!(
        line.contains("cores 3 is not offered by this platform; choose one of 1, 2, 4, 8, 16"),
        "{line}"
    );
    let (run, _) = desktop.launch(&["--cores", "4", "--ram", "5", IMAGE]);
    let line = failed(&run);
    assert!(
        line.contains(
            "ram 5 is not offered by this platform; choose one of 1, 2, 4, 8, 16, 32, 64"
        ),
        "{line}"
    );
    assert_eq!(desktop.requests("GET", "/context"), 2);
    // GPUs are refused before asking skaha anything.
    let (run, _) = desktop.launch(&["--gpus", "1", IMAGE]);
    let line = failed(&run);
    assert!(line.contains("--gpus"), "{line}");
    assert_eq!(
        desktop.skaha.requests().len(),
        2,
        "{}",
        desktop.request_log()
    );
    assert_eq!(desktop.requests("POST", "/app"), 0);
    assert!(desktop.ps().is_empty());
}

#[test]
fn missing_url_or_session_is_one_clear_line() {
    let desktop = Desktop::new(Setup::default());
    let (run, _) = timed(
        desktop
            .arcade()
            .args(["launch", "--backend", "skaha", IMAGE]),
    );
    let line = failed(&run);
    assert!(line.contains("needs the skaha URL"), "{line}");

    let mut arcade = desktop
        .arcade()
        .args(["launch", "--backend", "skaha", "--url"])
        .args([desktop.skaha.root_url(), IMAGE.to_owned()]);
    arcade.command.env_remove("ARCADE_SESSION_ID");
    let (run, _) = timed(arcade);
    let line = failed(&run);
    assert!(line.contains("needs the desktop session id"), "{line}");

    // A display named but unusable fails before skaha is asked, as for a local launch.
    let (run, _) =
        desktop.launch_with(desktop.arcade().env("DISPLAY", "no display here"), &[IMAGE]);
    let line = failed(&run);
    assert!(line.contains("no display here"), "{line}");
    assert!(
        desktop.skaha.requests().is_empty(),
        "{}",
        desktop.request_log()
    );
}
