//! A stand-in skaha API (`shared/contracts/skaha-openapi.yaml`,
//! `shared/reference/canfar-platform.md` §2–3): a real HTTP server on 127.0.0.1 serving
//! `/skaha/<api version>/…`.
//!
//! - `GET /image?type=X`: the configured images as skaha's JSON array of `{id, types, digest}`,
//!   filtered by type; a type skaha does not know is 400.
//! - `GET /context`: cores, memory and GPUs with their defaults and options.
//! - `GET /session`, `GET /session/{id}`: the configured desktop sessions.
//! - `POST /session/{id}/app` (form body or query: `image`, `cores`, `ram`): starts a desktop-app and
//!   answers `text/plain` `<appID>\n` (3 random characters); `cores`/`ram` must be among the
//!   context's options. Every posted field is recorded ([`FakeSkaha::apps`]).
//! - `GET /session/{id}/app[/{appID}]`, `DELETE /session/{id}/app/{appID}`: the app(s) as skaha's
//!   session JSON. Each read of one app advances it along its [`AppScript`] (Pending, then
//!   Running, Failed or Completed); unknown apps are 404.
//! - The platform's part, optionally: a [`Runner`] starts the app's pod when the app is first
//!   reported `Running`, as skaha's Job would, and the pod is removed when the app is deleted,
//!   reported finished, or the fake is dropped. A pod that ends on its own makes the app
//!   `Completed` (exit 0) or `Failed`. [`pods_on`] runs real pods as Kubernetes does: the app's
//!   image (a local test image standing in for the reference skaha was asked for) in a container
//!   with the pod's host name and network namespace, reaching the desktop's X server over TCP
//!   with no cookie, as an arbitrary uid, through the platform's `start-desktop-software.sh`.
//! - Authentication: `x-auth-token-skaha: <token>` (the desktop session's callback token) or
//!   `Authorization: Bearer <token>`; anything else is 401 with a plain-text body, as skaha does.
//! - Misbehaviour, observation and the contract check come from the server core
//!   (`fake_http.rs`): latency, [`Fault`]s (401/403/404/5xx on demand, hangs, invalid JSON,
//!   truncation, delays), the request log, and the requests checked against skaha's OpenAPI.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Read as _;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Response, StatusCode, header};
use serde_json::{Value, json};

use super::contract::Contract;
use super::fake_http::{
    Fault, Handler, Incoming, Plain, Server, Service, Transport, parse_query, percent_decode,
};
use super::images::podman;
use super::real_apps::{self, PodDesktop};

/// The session types skaha accepts in `GET /image?type=`.
pub const IMAGE_TYPES: &[&str] = &[
    "carta",
    "notebook",
    "desktop",
    "contributed",
    "headless",
    "firefly",
    "desktop-app",
];

/// One entry of `GET /image`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkahaImage {
    pub id: String,
    pub types: Vec<String>,
    pub digest: String,
}

impl SkahaImage {
    pub fn new(id: &str, types: &[&str]) -> SkahaImage {
        let seed = id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
        SkahaImage {
            id: id.to_owned(),
            types: types.iter().map(|t| (*t).to_owned()).collect(),
            digest: super::harbor::fake_digest(seed),
        }
    }
}

/// How a launched desktop-app's status moves as it is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppScript {
    /// `Pending` for the first `n` reads, then `Running`.
    RunningAfter(usize),
    /// `Pending` on every read.
    PendingForever,
    /// `Pending` for the first `n` reads, then `Failed`.
    FailedAfter(usize),
    /// `Running` for the first `n` reads, then `Completed` (the app was closed).
    CompletedAfter(usize),
}

impl AppScript {
    /// The status on the `read`-th read (1-based); read 0 is the status before any read.
    fn status(self, read: usize) -> &'static str {
        match self {
            AppScript::RunningAfter(n) if read > n => "Running",
            AppScript::RunningAfter(_) | AppScript::PendingForever => "Pending",
            AppScript::FailedAfter(n) if read > n => "Failed",
            AppScript::FailedAfter(_) => "Pending",
            AppScript::CompletedAfter(n) if read > n => "Completed",
            AppScript::CompletedAfter(_) => "Running",
        }
    }
}

/// What the platform knows when it starts an app's pod (`launch-desktop-app.yaml`).
#[derive(Debug, Clone)]
pub struct Pod {
    pub session_id: String,
    pub app_id: String,
    pub image: String,
    /// The pod's host name, which is also the xterm title: the image's last path segment with
    /// `:`, `.` and `_` as `-`, lowercased (`getImageName`).
    pub hostname: String,
    /// `OMP_NUM_THREADS`: the requested cores, else the context's `defaultRequest`, at least 1.
    pub cores: u32,
}

/// Starts an app's pod: the platform's job, which the fake stands in for. The fake removes the
/// pod when the app is deleted or finished, and on drop.
#[derive(Clone)]
pub struct Runner(Arc<StartPod>);

/// What a [`Runner`] calls; an error is why the pod could not start (the app then fails).
pub type StartPod = dyn Fn(&Pod) -> Result<RunningPod, String> + Send + Sync;

impl Runner {
    pub fn new(
        start: impl Fn(&Pod) -> Result<RunningPod, String> + Send + Sync + 'static,
    ) -> Runner {
        Runner(Arc::new(start))
    }
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Runner(..)")
    }
}

/// A pod that runs: its container on the desktop's pod network, and a `podman wait` on it, so
/// the fake learns cheaply (without asking podman on every read) when it ends by itself.
pub struct RunningPod {
    pod: real_apps::Pod,
    wait: Child,
}

impl RunningPod {
    /// Follows `pod` to its end.
    pub fn new(pod: real_apps::Pod) -> Result<RunningPod, String> {
        let wait = podman()
            .args(["wait", pod.container_name()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|err| format!("run podman wait {}: {err}", pod.container_name()))?;
        Ok(RunningPod { pod, wait })
    }

    /// The pod's container, as `podman` names it.
    pub fn container(&self) -> &str {
        self.pod.container_name()
    }

    /// Its exit code once it has ended by itself (`Some(None)`: podman could not say).
    fn ended(&mut self) -> Option<Option<i32>> {
        self.wait.try_wait().ok().flatten()?;
        let mut text = String::new();
        if let Some(mut stdout) = self.wait.stdout.take() {
            let _ = stdout.read_to_string(&mut text);
        }
        Some(text.trim().parse().ok())
    }
}

impl Drop for RunningPod {
    fn drop(&mut self) {
        // The wait first: it would end by itself once the container (a field, dropped after
        // this) is removed, but nothing would reap it.
        let _ = self.wait.kill();
        let _ = self.wait.wait();
    }
}

/// Pods as the platform runs them (see [`real_apps::Pod`]): on `desktop`, each app's image in a
/// container of its own whose host name is the pod's ([`Pod::hostname`]), reaching the
/// desktop's X server over TCP. `images` maps the references skaha is asked for to the local
/// test images that stand in for them; an app whose image has none fails to start, as one whose
/// image the platform cannot pull does.
pub fn pods_on(desktop: Arc<PodDesktop>, images: &[(&str, String)]) -> Runner {
    let images: HashMap<String, String> = images
        .iter()
        .map(|(asked, local)| ((*asked).to_owned(), local.clone()))
        .collect();
    Runner::new(move |pod: &Pod| {
        let local = images.get(&pod.image).ok_or_else(|| {
            format!(
                "no local test image stands in for {} (known: {:?})",
                pod.image,
                images.keys().collect::<Vec<_>>()
            )
        })?;
        // The fixture panics with the reason when a pod cannot start; here that reason fails the
        // app, as skaha reports a pod it cannot start, instead of poisoning the fake's state.
        let started = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            real_apps::Pod::run(local, &pod.hostname, &desktop)
        }))
        .map_err(|panic| {
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|text| (*text).to_owned()))
                .unwrap_or_else(|| format!("the pod {} did not start", pod.hostname))
        })?;
        RunningPod::new(started)
    })
}

/// Where an app's pod stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodState {
    /// Not started: the app was never reported `Running`, or there is no runner.
    None,
    Running {
        /// The pod's container.
        container: String,
    },
    /// It ended on its own, with this exit code (`None`: podman could not say).
    Exited(Option<i32>),
    /// The fake removed it: the app was deleted or finished, or the fake was dropped.
    Killed,
    /// The runner could not start it; the app reports `Failed`.
    StartFailed(String),
}

/// How to start a [`FakeSkaha`].
#[derive(Debug, Clone)]
pub struct SkahaConfig {
    /// The path segment after `/skaha`, e.g. `v1`.
    pub api_version: String,
    /// The user the tokens belong to.
    pub user: String,
    pub images: Vec<SkahaImage>,
    /// The `GET /context` answer.
    pub context: Value,
    /// Tokens accepted in `x-auth-token-skaha`.
    pub session_tokens: Vec<String>,
    /// Tokens accepted as `Authorization: Bearer`.
    pub bearer_tokens: Vec<String>,
    /// Every caller is authenticated by its client certificate: set it when the TLS listener
    /// demands one (see [`FakeSkaha::start_on`]), so no request arrives without one.
    pub certificate_callers: bool,
    /// The desktop sessions that exist; apps attach to these.
    pub sessions: Vec<String>,
    /// How apps launched from now on behave.
    pub app_script: AppScript,
    /// Starts an app's pod when it is first reported `Running`; `None`: apps run nothing.
    pub runner: Option<Runner>,
    /// Registry hosts images must come from; empty accepts any.
    pub trusted_registries: Vec<String>,
    pub latency: Duration,
    pub faults: Vec<Fault>,
}

impl Default for SkahaConfig {
    fn default() -> SkahaConfig {
        SkahaConfig {
            api_version: "v1".to_owned(),
            user: "alice".to_owned(),
            images: Vec::new(),
            context: default_context(),
            session_tokens: Vec::new(),
            bearer_tokens: Vec::new(),
            certificate_callers: false,
            sessions: vec!["k7x2m9qa".to_owned()],
            app_script: AppScript::RunningAfter(2),
            runner: None,
            trusted_registries: Vec::new(),
            latency: Duration::ZERO,
            faults: Vec::new(),
        }
    }
}

/// A context like CANFAR's (`helm/skaha-config/k8s-resources.json`).
pub fn default_context() -> Value {
    json!({
        "cores": {"default": 2, "defaultRequest": 1, "defaultLimit": 8,
                  "options": [1, 2, 4, 8, 16]},
        "memoryGB": {"default": 8, "defaultRequest": 4, "defaultLimit": 32,
                     "options": [1, 2, 4, 8, 16, 32, 64]},
        "gpus": {"options": [0, 1]},
        "maxInteractiveSessions": 3
    })
}

/// A desktop-app the fake launched.
#[derive(Debug, Clone)]
pub struct App {
    pub session_id: String,
    pub app_id: String,
    pub image: String,
    /// Every field posted (query, then form body), decoded, in order.
    pub fields: Vec<(String, String)>,
    /// How many times it was read on its own.
    pub reads: usize,
    pub script: AppScript,
    /// A status set by the test, which wins over the script.
    pub forced_status: Option<String>,
    pub deleted: bool,
    pub pod: PodState,
}

impl App {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The pod's host name (`getImageName`).
    pub fn hostname(&self) -> String {
        image_name(&self.image)
    }

    /// What the script (or the test) says, before the pod has its say.
    fn scripted_status(&self) -> String {
        self.forced_status
            .clone()
            .unwrap_or_else(|| self.script.status(self.reads).to_owned())
    }
}

struct State {
    config: SkahaConfig,
    apps: Vec<App>,
    /// The live pods, by app id.
    pods: HashMap<String, RunningPod>,
    next_id: u64,
}

impl State {
    /// The status of the `index`-th app as skaha would report it now, starting or ending its pod
    /// to match: the Job's pod runs exactly while the app is `Running`.
    fn status(&mut self, index: usize) -> String {
        let app = &self.apps[index];
        let scripted = app.scripted_status();
        let app_id = app.app_id.clone();
        // A pod that ended on its own ends the Job, whatever the script says; the test still wins.
        if let Some(pod) = self.pods.get_mut(&app_id)
            && let Some(code) = pod.ended()
        {
            self.pods.remove(&app_id);
            self.apps[index].pod = PodState::Exited(code);
        }
        let app = &self.apps[index];
        if app.forced_status.is_none() {
            match &app.pod {
                PodState::Exited(Some(0)) => return "Completed".to_owned(),
                PodState::Exited(_) | PodState::StartFailed(_) => return "Failed".to_owned(),
                _ => {}
            }
        }
        if scripted == "Running" {
            if app.pod == PodState::None
                && let Some(runner) = self.config.runner.clone()
            {
                let pod = Pod {
                    session_id: app.session_id.clone(),
                    app_id: app_id.clone(),
                    image: app.image.clone(),
                    hostname: app.hostname(),
                    cores: app
                        .field("cores")
                        .and_then(|cores| cores.parse().ok())
                        .or_else(|| {
                            self.config.context["cores"]["defaultRequest"]
                                .as_u64()
                                .map(|n| n as u32)
                        })
                        .unwrap_or(1),
                };
                match (runner.0)(&pod) {
                    Ok(running) => {
                        self.apps[index].pod = PodState::Running {
                            container: running.container().to_owned(),
                        };
                        self.pods.insert(app_id, running);
                    }
                    Err(err) => {
                        self.apps[index].pod = PodState::StartFailed(err);
                        if self.apps[index].forced_status.is_none() {
                            return "Failed".to_owned();
                        }
                    }
                }
            }
        } else if matches!(
            scripted.as_str(),
            "Completed" | "Failed" | "Terminating" | "Succeeded" | "Error"
        ) {
            self.kill_pod(index);
        }
        scripted
    }

    /// Removes the app's pod, as Kubernetes deletes a Job's pod (the fixture removes its
    /// container at once, without the grace period, which a pod's PID 1 often ignores).
    fn kill_pod(&mut self, index: usize) {
        if let Some(pod) = self.pods.remove(&self.apps[index].app_id) {
            drop(pod);
            self.apps[index].pod = PodState::Killed;
        }
    }
}

/// A running stand-in skaha; see the module documentation. The server core's log, faults and
/// knobs are reached through it (`Deref`): a stand-in is its server plus its state.
pub struct FakeSkaha {
    server: Server,
    state: Arc<Mutex<State>>,
}

impl FakeSkaha {
    pub fn start(config: SkahaConfig) -> FakeSkaha {
        FakeSkaha::start_on(config, Plain)
    }

    /// Starts on `transport` (TLS, say).
    pub fn start_on(config: SkahaConfig, transport: impl Transport) -> FakeSkaha {
        let faults = config.faults.clone();
        let latency = config.latency;
        let state = Arc::new(Mutex::new(State {
            config,
            apps: Vec::new(),
            pods: HashMap::new(),
            next_id: std::process::id().into(),
        }));
        let handler_state = Arc::clone(&state);
        let handler: Handler =
            Arc::new(move |request: &Incoming| route(&mut handler_state.lock().unwrap(), request));
        let service = Service {
            handler,
            error_page: skaha_error_page,
            contract: Contract::skaha,
            latency,
            faults,
        };
        FakeSkaha {
            server: Server::start(transport, service),
            state,
        }
    }

    /// The service root, `http://127.0.0.1:<port>/skaha`.
    pub fn url(&self) -> String {
        format!("{}/skaha", self.server.url())
    }

    /// `http://127.0.0.1:<port>`, which arcade completes with `/skaha`.
    pub fn root_url(&self) -> String {
        self.server.url().to_owned()
    }

    /// Every app launched so far, deleted ones included, in launch order.
    pub fn apps(&self) -> Vec<App> {
        self.state.lock().unwrap().apps.clone()
    }

    pub fn set_images(&self, images: Vec<SkahaImage>) {
        self.state.lock().unwrap().config.images = images;
    }

    /// How apps launched from now on behave.
    pub fn set_app_script(&self, script: AppScript) {
        self.state.lock().unwrap().config.app_script = script;
    }

    /// How the pods of apps that become `Running` from now on are started.
    pub fn set_runner(&self, runner: Option<Runner>) {
        self.state.lock().unwrap().config.runner = runner;
    }

    /// Deletes an app as the platform would behind arcade's back (a Job cleaned up after it
    /// finished, say): skaha no longer has it.
    pub fn forget_app(&self, app_id: &str) {
        let mut state = self.state.lock().unwrap();
        let index = state
            .apps
            .iter()
            .position(|app| app.app_id == app_id)
            .unwrap_or_else(|| panic!("the fake skaha has no app {app_id:?}"));
        state.apps[index].deleted = true;
        state.kill_pod(index);
    }

    /// Makes an app report `status` from now on, whatever its script says.
    pub fn set_app_status(&self, app_id: &str, status: &str) {
        let mut state = self.state.lock().unwrap();
        let app = state
            .apps
            .iter_mut()
            .find(|app| app.app_id == app_id)
            .unwrap_or_else(|| panic!("the fake skaha has no app {app_id:?}"));
        app.forced_status = Some(status.to_owned());
    }
}

impl std::ops::Deref for FakeSkaha {
    type Target = Server;

    fn deref(&self) -> &Server {
        &self.server
    }
}

impl Drop for FakeSkaha {
    fn drop(&mut self) {
        // The pods are the platform's; they end with it. A poisoned lock still holds them.
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for index in 0..state.apps.len() {
            state.kill_pod(index);
        }
    }
}

fn text(status: u16, body: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain;charset=utf-8")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

/// skaha's answers are Gson, pretty-printed.
fn json_pretty(value: &Value) -> Response<Body> {
    Response::builder()
        .status(200)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            serde_json::to_string_pretty(value).expect("JSON serializes"),
        ))
        .unwrap()
}

/// What a failing skaha (or its ingress) sends: a short plain-text line.
pub fn skaha_error_page(status: u16) -> Response<Body> {
    let reason = StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("error");
    let message = match status {
        401 => "NotAuthenticatedException: authentication required".to_owned(),
        403 => "PermissionDeniedException: permission denied".to_owned(),
        404 => "ResourceNotFoundException: not found".to_owned(),
        _ => format!("{status} {reason}"),
    };
    text(status, &format!("{message}\n"))
}

fn authorized(config: &SkahaConfig, request: &Incoming) -> bool {
    if config.certificate_callers {
        return true;
    }
    if let Some(token) = request.header("x-auth-token-skaha")
        && config.session_tokens.iter().any(|t| t == token)
    {
        return true;
    }
    request
        .header("authorization")
        .and_then(|value| value.strip_prefix("Bearer "))
        .is_some_and(|token| config.bearer_tokens.iter().any(|t| t == token.trim()))
}

/// skaha's name for an app: the image's last path segment with `:`, `.` and `_` as `-`.
fn image_name(image: &str) -> String {
    image
        .rsplit('/')
        .next()
        .unwrap_or(image)
        .replace([':', '.', '_'], "-")
        .to_lowercase()
}

fn app_json(config: &SkahaConfig, app: &App, status: &str) -> Value {
    let cores = app.field("cores").unwrap_or("2").to_owned();
    let ram = app.field("ram").unwrap_or("8").to_owned();
    json!({
        "id": app.session_id,
        "userid": config.user,
        "runAsUID": "10001",
        "runAsGID": "10001",
        "supplementalGroups": [],
        "appid": app.app_id,
        "image": app.image,
        "type": "desktop-app",
        "status": status,
        "name": image_name(&app.image),
        "startTime": "2026-08-01T10:00:00Z",
        "expiryTime": "2026-08-05T10:00:00Z",
        "connectURL": "",
        "requestedRAM": format!("{ram}G"),
        "requestedCPUCores": cores,
        "requestedGPUCores": "0",
        "ramInUse": "<none>",
        "gpuRAMInUse": "<none>",
        "cpuCoresInUse": "<none>",
        "gpuUtilization": "<none>",
        "isFixedResources": app.field("cores").is_some() || app.field("ram").is_some(),
    })
}

fn session_json(config: &SkahaConfig, session_id: &str) -> Value {
    json!({
        "id": session_id,
        "userid": config.user,
        "image": "images.canfar.net/skaha/desktop:1.0.2",
        "type": "desktop",
        "status": "Running",
        "name": "desktop",
        "startTime": "2026-08-01T09:58:00Z",
        "expiryTime": "2026-08-05T09:58:00Z",
        "connectURL": format!("https://ws-uv.canfar.net/session/desktop/{session_id}/"),
    })
}

fn route(state: &mut State, request: &Incoming) -> Response<Body> {
    let path = percent_decode(&request.path);
    let prefix = format!("/skaha/{}/", state.config.api_version);
    let Some(rest) = path.strip_prefix(&prefix) else {
        return text(404, &format!("not found: {path}\n"));
    };
    let segments: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    let allowed: &[Method] = match segments.as_slice() {
        ["image"] | ["context"] | ["repository"] | ["session"] => &[Method::GET],
        ["session", _] => &[Method::GET],
        ["session", _, "app"] => &[Method::GET, Method::POST],
        ["session", _, "app", _] => &[Method::GET, Method::DELETE, Method::POST],
        _ => return text(404, &format!("not found: {path}\n")),
    };
    if !allowed.contains(&request.method) {
        return text(405, &format!("method {} not allowed\n", request.method));
    }
    if !authorized(&state.config, request) {
        return skaha_error_page(401);
    }
    let query = parse_query(&request.query);
    match (segments.as_slice(), &request.method) {
        (["image"], _) => images(&state.config, &query),
        (["context"], _) => json_pretty(&state.config.context),
        (["repository"], _) => {
            let hosts = if state.config.trusted_registries.is_empty() {
                vec!["images.canfar.net".to_owned()]
            } else {
                state.config.trusted_registries.clone()
            };
            json_pretty(&json!(hosts))
        }
        (["session"], _) => json_pretty(&Value::Array(
            state
                .config
                .sessions
                .iter()
                .map(|id| session_json(&state.config, id))
                .collect(),
        )),
        (["session", session], _) => {
            if state.config.sessions.iter().any(|id| id == session) {
                json_pretty(&session_json(&state.config, session))
            } else {
                text(404, &format!("session {session} not found\n"))
            }
        }
        (["session", session, "app"], &Method::GET) => {
            let listed: Vec<usize> = (0..state.apps.len())
                .filter(|&i| state.apps[i].session_id == *session && !state.apps[i].deleted)
                .collect();
            let mut list = Vec::new();
            for index in listed {
                let status = state.status(index);
                list.push(app_json(&state.config, &state.apps[index], &status));
            }
            json_pretty(&Value::Array(list))
        }
        (["session", session, "app"], _) => launch(state, session, request, query),
        (["session", _, "app", _], &Method::POST) => text(400, "Cannot modify an existing app.\n"),
        (["session", session, "app", app_id], method) => {
            let Some(index) = state.apps.iter().position(|app| {
                app.session_id == *session && app.app_id == *app_id && !app.deleted
            }) else {
                return text(
                    404,
                    &format!("app {app_id} not found in session {session}\n"),
                );
            };
            if *method == Method::DELETE {
                state.kill_pod(index);
                state.apps[index].deleted = true;
                return text(200, "");
            }
            state.apps[index].reads += 1;
            let status = state.status(index);
            json_pretty(&app_json(&state.config, &state.apps[index], &status))
        }
        _ => text(404, &format!("not found: {path}\n")),
    }
}

fn images(config: &SkahaConfig, query: &[(String, String)]) -> Response<Body> {
    let wanted = query
        .iter()
        .find(|(key, _)| key == "type")
        .map(|(_, value)| value.as_str());
    if let Some(kind) = wanted
        && !IMAGE_TYPES.contains(&kind)
    {
        return text(
            400,
            &format!("IllegalArgumentException: unknown session type: {kind}\n"),
        );
    }
    let list: Vec<Value> = config
        .images
        .iter()
        .filter(|image| wanted.is_none_or(|kind| image.types.iter().any(|t| t == kind)))
        .map(|image| json!({"id": image.id, "types": image.types, "digest": image.digest}))
        .collect();
    json_pretty(&Value::Array(list))
}

/// The options a context offers for `key` (`cores`, `memoryGB`).
fn options(context: &Value, key: &str) -> Vec<i64> {
    context[key]["options"]
        .as_array()
        .map(|values| values.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default()
}

fn launch(
    state: &mut State,
    session: &str,
    request: &Incoming,
    mut fields: Vec<(String, String)>,
) -> Response<Body> {
    let form = request
        .header("content-type")
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    if form {
        fields.extend(parse_query(&String::from_utf8_lossy(&request.body)));
    }
    let field = |name: &str| {
        fields
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    let Some(image) = field("image").filter(|image| !image.is_empty()) else {
        return text(400, "missing required parameter: image\n");
    };
    for (name, key) in [("cores", "cores"), ("ram", "memoryGB")] {
        if let Some(value) = field(name) {
            let offered = options(&state.config.context, key);
            if !value.parse::<i64>().is_ok_and(|n| offered.contains(&n)) {
                return text(
                    400,
                    &format!("invalid {name} {value:?}: not one of {offered:?}\n"),
                );
            }
        }
    }
    if !state.config.sessions.iter().any(|id| id == session) {
        return text(404, &format!("session {session} not found\n"));
    }
    let host = image.split('/').next().unwrap_or("");
    if !state.config.trusted_registries.is_empty()
        && !state.config.trusted_registries.iter().any(|h| h == host)
    {
        return text(
            400,
            &format!("image not in a trusted repository: {image}\n"),
        );
    }
    let app_id = loop {
        state.next_id = state
            .next_id
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let mut x = state.next_id >> 16;
        let id: String = (0..3)
            .map(|_| {
                let c = ALPHABET[(x % ALPHABET.len() as u64) as usize] as char;
                x /= ALPHABET.len() as u64;
                c
            })
            .collect();
        if !state.apps.iter().any(|app| app.app_id == id) {
            break id;
        }
    };
    let script = state.config.app_script;
    state.apps.push(App {
        session_id: session.to_owned(),
        app_id: app_id.clone(),
        image,
        fields,
        reads: 0,
        script,
        forced_status: None,
        deleted: false,
        pod: PodState::None,
    });
    text(200, &format!("{app_id}\n"))
}
