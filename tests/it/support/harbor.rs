//! A stand-in Harbor v2.0 API: a real HTTP server on 127.0.0.1 that follows Harbor's swagger and
//! what real Harbor behind its bundled nginx does (`shared/reference/harbor-api.md`).
//!
//! - The registry is a plain [`HarborData`]: projects (public or private, with members),
//!   repositories (nested names allowed), artifacts (digest, zero or more tags, label IDs), global
//!   and project labels, and accounts (local users, OIDC users with a CLI secret, robots).
//!   [`HarborData::synthetic`] makes a big registry for load tests.
//! - Reproduced: paging (`page`, `page_size` default 10, above 100 → 422 with go-openapi's message,
//!   ≤ 0 → no limit, `X-Total-Count` always, `Link` like Harbor's, `[]` past the end); `null` for
//!   empty arrays; repository names encoded twice in the path (nginx decodes the path once, the
//!   handler decodes the name again, so a single-encoded nested name gets 404); the `q` grammar for
//!   labels with Harbor's 400 messages, unknown keys ignored; `/labels` scope rules with a fuzzy
//!   `name`; `/systeminfo` with `harbor_version` for authenticated callers only; wrong credentials
//!   silently treated as anonymous; OIDC CLI secrets accepted on Harbor's whitelist only; private
//!   and nonexistent projects alike answered 401 (anonymous) or 403 (logged in).
//! - Misbehaviour on demand, observation and the contract check come from the server core
//!   (`fake_http.rs`): latency that does not hold up other requests, [`Fault`]s (error statuses
//!   with Harbor's or nginx's bodies, `Retry-After`, invalid JSON, truncated bodies, hangs,
//!   delays), the request log, the most requests ever in flight at once, and the requests checked
//!   against Harbor's swagger.
//!
//! Besides the core it uses only axum, serde_json and std, so a benchmark can include it with
//! `#[path]` beside `fake_http.rs` and `contract.rs`.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, Method, Response, StatusCode, header};
use serde_json::{Map, Value, json};

use super::contract::Contract;
use super::fake_http::{
    Fault, Handler, Incoming, Plain, Server, Service, Transport, basic_credentials, parse_query,
    percent_decode, percent_encode, query_unescape, splitmix,
};

/// What `/systeminfo` reports to authenticated callers.
pub const HARBOR_VERSION: &str = "v2.13.1-6ab9f1b0";
/// The largest `page_size` Harbor accepts.
pub const MAX_PAGE_SIZE: u64 = 100;
/// The `page_size` Harbor uses when none is given.
pub const DEFAULT_PAGE_SIZE: u64 = 10;

// ---------------------------------------------------------------------------------------------
// The registry's contents.

/// Everything the fake registry holds.
#[derive(Debug, Clone, Default)]
pub struct HarborData {
    pub projects: Vec<Project>,
    pub labels: Vec<Label>,
    pub users: Vec<User>,
    pub robots: Vec<Robot>,
}

#[derive(Debug, Clone)]
pub struct Project {
    pub name: String,
    pub public: bool,
    /// Names of the users who are members (they can read it when it is private).
    pub members: Vec<String>,
    pub repositories: Vec<Repository>,
}

#[derive(Debug, Clone)]
pub struct Repository {
    /// The name inside the project, without it: `terminal` or `astro/casa`.
    pub name: String,
    pub artifacts: Vec<Artifact>,
}

#[derive(Debug, Clone)]
pub struct Artifact {
    /// Left empty, it is made up from the artifact's ID when the server starts.
    pub digest: String,
    /// Newest first, as Harbor lists them; empty for an untagged artifact.
    pub tags: Vec<String>,
    /// IDs of the labels attached to it.
    pub labels: Vec<i64>,
    /// The image's own labels, in its config (`extra_attrs.config.Labels`); any JSON, as a
    /// hostile image may carry.
    pub image_labels: serde_json::Map<String, Value>,
}

#[derive(Debug, Clone)]
pub struct Label {
    pub id: i64,
    pub name: String,
    /// `None` for a global label (scope `g`), else the project it belongs to (scope `p`).
    pub project: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserKind {
    /// A database (or LDAP) user: Basic auth works on every endpoint.
    Local,
    /// An OIDC user: Basic auth with the CLI secret works only on Harbor's whitelist.
    Oidc,
}

#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    /// The password of a local user, the CLI secret of an OIDC user.
    pub secret: String,
    pub kind: UserKind,
    /// A system administrator sees every project.
    pub admin: bool,
}

#[derive(Debug, Clone)]
pub struct Robot {
    /// The full name: `robot$name` (system) or `robot$project+name` (project).
    pub name: String,
    pub secret: String,
    /// Projects it may read besides public ones.
    pub projects: Vec<String>,
    /// A system robot that covers every project.
    pub all_projects: bool,
    pub disabled: bool,
}

impl Project {
    pub fn public(name: &str) -> Project {
        Project {
            name: name.to_owned(),
            public: true,
            members: Vec::new(),
            repositories: Vec::new(),
        }
    }

    pub fn private(name: &str) -> Project {
        Project {
            public: false,
            ..Project::public(name)
        }
    }

    pub fn member(mut self, user: &str) -> Project {
        self.members.push(user.to_owned());
        self
    }

    pub fn repository(mut self, repository: Repository) -> Project {
        self.repositories.push(repository);
        self
    }
}

impl Repository {
    pub fn new(name: &str) -> Repository {
        Repository {
            name: name.to_owned(),
            artifacts: Vec::new(),
        }
    }

    pub fn artifact(mut self, artifact: Artifact) -> Repository {
        self.artifacts.push(artifact);
        self
    }
}

impl Artifact {
    /// An artifact with these tags (newest first) and label IDs.
    pub fn new(tags: &[&str], labels: &[i64]) -> Artifact {
        Artifact {
            digest: String::new(),
            tags: tags.iter().map(|tag| (*tag).to_owned()).collect(),
            labels: labels.to_vec(),
            image_labels: serde_json::Map::new(),
        }
    }

    /// Gives the image a label of its own (`LABEL key=value` in its Containerfile).
    pub fn image_label(mut self, key: &str, value: impl Into<Value>) -> Artifact {
        self.image_labels.insert(key.to_owned(), value.into());
        self
    }

    pub fn digest(mut self, digest: &str) -> Artifact {
        self.digest = digest.to_owned();
        self
    }
}

impl Label {
    pub fn global(id: i64, name: &str) -> Label {
        Label {
            id,
            name: name.to_owned(),
            project: None,
        }
    }

    pub fn project(id: i64, name: &str, project: &str) -> Label {
        Label {
            id,
            name: name.to_owned(),
            project: Some(project.to_owned()),
        }
    }
}

impl User {
    pub fn local(name: &str, password: &str) -> User {
        User {
            name: name.to_owned(),
            secret: password.to_owned(),
            kind: UserKind::Local,
            admin: false,
        }
    }

    pub fn oidc(name: &str, cli_secret: &str) -> User {
        User {
            kind: UserKind::Oidc,
            ..User::local(name, cli_secret)
        }
    }

    pub fn admin(mut self) -> User {
        self.admin = true;
        self
    }
}

impl Robot {
    /// A project robot, `robot$<project>+<name>`: it reads its project.
    pub fn project(project: &str, name: &str, secret: &str) -> Robot {
        Robot {
            name: format!("robot${project}+{name}"),
            secret: secret.to_owned(),
            projects: vec![project.to_owned()],
            all_projects: false,
            disabled: false,
        }
    }

    /// A system robot, `robot$<name>`, reading the given projects.
    pub fn system(name: &str, secret: &str, projects: &[&str]) -> Robot {
        Robot {
            name: format!("robot${name}"),
            secret: secret.to_owned(),
            projects: projects.iter().map(|p| (*p).to_owned()).collect(),
            all_projects: false,
            disabled: false,
        }
    }
}

impl HarborData {
    /// `projects` public projects `p000`…, each with `repositories` repositories `app000`…, each
    /// with `artifacts` artifacts tagged `1.0`, `1.1`…, all carrying the global label
    /// `desktop-app` (ID 1). A global label `desktop-app-legacy` (ID 2) is attached to nothing,
    /// so a fuzzy `/labels?name=desktop-app` finds two labels, as on a real registry.
    pub fn synthetic(projects: usize, repositories: usize, artifacts: usize) -> HarborData {
        HarborData {
            projects: (0..projects)
                .map(|p| Project {
                    repositories: (0..repositories)
                        .map(|r| Repository {
                            name: format!("app{r:03}"),
                            artifacts: (0..artifacts)
                                .map(|a| Artifact::new(&[&format!("1.{a}")], &[1]))
                                .collect(),
                        })
                        .collect(),
                    ..Project::public(&format!("p{p:03}"))
                })
                .collect(),
            labels: vec![
                Label::global(1, "desktop-app"),
                Label::global(2, "desktop-app-legacy"),
            ],
            ..HarborData::default()
        }
    }

    /// Gives every artifact the labels a well-described image carries: an OCI title and
    /// description, categories, keywords, a window class, resources, presets and a small inline
    /// SVG icon (one picture for all, as a project's images often share one).
    pub fn with_image_labels(mut self) -> HarborData {
        const ICON: &str = "data:image/svg+xml;base64,PHN2ZyB4bWxucz0iaHR0cDovL3d3dy53My5vcmcv\
                            MjAwMC9zdmciIHZpZXdCb3g9IjAgMCAxNiAxNiI+PGNpcmNsZSBjeD0iOCIgY3k9\
                            IjgiIHI9IjciLz48L3N2Zz4=";
        for project in &mut self.projects {
            for repository in &mut project.repositories {
                let name = repository.name.clone();
                for artifact in &mut repository.artifacts {
                    let labels = [
                        ("org.opencontainers.image.title", format!("App {name}")),
                        (
                            "org.opencontainers.image.description",
                            format!("The {name} application, for looking at the sky"),
                        ),
                        ("net.canfar.arcade.categories", "X-Imaging".to_owned()),
                        ("net.canfar.arcade.keywords", "fits;image;sky".to_owned()),
                        ("net.canfar.arcade.wm-class", format!("{name}-Main")),
                        ("net.canfar.arcade.resources", "cores=2,ram=8".to_owned()),
                        ("net.canfar.arcade.presets", "4/16;8/32".to_owned()),
                        ("net.canfar.arcade.icon", ICON.to_owned()),
                    ];
                    for (key, value) in labels {
                        artifact.image_labels.insert(key.to_owned(), value.into());
                    }
                }
            }
        }
        self
    }

    /// A registry a hostile server could send: one public project whose name holds quotes, `;`,
    /// `$(…)` and backquotes, with repositories named `../../../etc/passwd`, with spaces, `;`,
    /// `$HOME`, a backslash, `%`, non-ASCII, 300 and 1100 characters, each with one artifact
    /// tagged with spaces, `%`, `;`, a leading space, a quote, a newline and a tab; plus a
    /// non-ASCII project with a repository `nested/../deeper`. Everything carries the global
    /// label `desktop-app` (ID 7).
    pub fn hostile() -> HarborData {
        let long = "l".repeat(300);
        let too_long = "x".repeat(1100);
        let repositories = [
            "../../../etc/passwd",
            "sp ace/semi;colon",
            "dollar$HOME",
            "back\\slash",
            "percent%41",
            "ünï/cødé☃",
            long.as_str(),
            too_long.as_str(),
        ];
        let tags = [
            "1.0",
            "with space",
            "per%cent",
            "semi;colon",
            " lead",
            "quote\"s",
            "new\nline",
            "tab\tbed",
        ];
        let mut project = Project::public("odd \"quoted\" 'name'; $(touch pwned) `id`");
        for repository in repositories {
            project = project
                .repository(Repository::new(repository).artifact(Artifact::new(&tags, &[7])));
        }
        HarborData {
            labels: vec![Label::global(7, "desktop-app")],
            projects: vec![
                project,
                Project::public("ünïcødé-☃").repository(
                    Repository::new("nested/../deeper").artifact(Artifact::new(&["2.0"], &[7])),
                ),
                // Odd but valid names, each artifact with one valid tag among hostile ones.
                Project::public("odd-but_valid.name")
                    .repository(
                        Repository::new("nested/deeper/app").artifact(Artifact::new(&tags, &[7])),
                    )
                    .repository(
                        Repository::new(long.as_str()).artifact(Artifact::new(&tags, &[7])),
                    ),
            ],
            ..HarborData::default()
        }
    }

    /// How many menu entries (tagged, labelled references) the label `label` yields in total.
    pub fn count_tags_labelled(&self, label: &str) -> usize {
        let ids: Vec<(i64, Option<&str>)> = self
            .labels
            .iter()
            .filter(|l| l.name == label)
            .map(|l| (l.id, l.project.as_deref()))
            .collect();
        self.projects
            .iter()
            .flat_map(|p| {
                let ids = &ids;
                p.repositories.iter().flat_map(move |r| {
                    r.artifacts.iter().filter(move |a| {
                        a.labels.iter().any(|id| {
                            ids.iter().any(|(wanted, scope)| {
                                wanted == id && scope.is_none_or(|s| s == p.name)
                            })
                        })
                    })
                })
            })
            .map(|a| a.tags.len())
            .sum()
    }
}

// ---------------------------------------------------------------------------------------------
// The Harbor service.

/// How to start a [`FakeHarbor`].
#[derive(Debug, Clone, Default)]
pub struct HarborConfig {
    pub data: HarborData,
    /// Added before every answer; other requests are answered meanwhile.
    pub latency: Duration,
    pub faults: Vec<Fault>,
    /// Files the registry's host serves beside the API, by path (`/icons/ds9.svg`): content type
    /// and bytes. Harbor's nginx serves its portal there; a site can put images' icons there.
    pub files: BTreeMap<String, (String, Vec<u8>)>,
}

impl HarborConfig {
    pub fn new(data: HarborData) -> HarborConfig {
        HarborConfig {
            data,
            ..HarborConfig::default()
        }
    }
}

/// A running stand-in Harbor; see the module documentation. The server core's log, faults and
/// knobs are reached through it (`Deref`): a stand-in is its server plus its registry.
pub struct FakeHarbor {
    server: Server,
    index: Arc<RwLock<Arc<Index>>>,
}

impl FakeHarbor {
    pub fn start(config: HarborConfig) -> FakeHarbor {
        FakeHarbor::start_on(config, Plain)
    }

    /// Starts on `transport` (TLS, say).
    pub fn start_on(config: HarborConfig, transport: impl Transport) -> FakeHarbor {
        let index = Arc::new(RwLock::new(Arc::new(Index::new(&config.data))));
        let handler_index = Arc::clone(&index);
        let files = config.files;
        let handler: Handler = Arc::new(move |request: &Incoming| {
            if request.method == Method::GET
                && let Some((content_type, bytes)) = files.get(&request.path)
            {
                return Response::builder()
                    .status(200)
                    .header(header::CONTENT_TYPE, content_type.as_str())
                    .body(Body::from(bytes.clone()))
                    .unwrap();
            }
            let index = Arc::clone(&handler_index.read().unwrap());
            route(&index, request)
        });
        let service = Service {
            handler,
            error_page: harbor_error_page,
            contract: Contract::harbor,
            latency: config.latency,
            faults: config.faults,
        };
        FakeHarbor {
            server: Server::start(transport, service),
            index,
        }
    }

    /// The registry's root URL, `http://127.0.0.1:<port>` (the API is under `/api/v2.0`).
    pub fn url(&self) -> String {
        self.server.url().to_owned()
    }

    /// `127.0.0.1:<port>`, the registry part of image references.
    pub fn registry(&self) -> String {
        self.server.addr().to_string()
    }

    /// Replaces the registry's contents; requests already answered are not affected.
    pub fn set_data(&self, data: HarborData) {
        *self.index.write().unwrap() = Arc::new(Index::new(&data));
    }
}

impl std::ops::Deref for FakeHarbor {
    type Target = Server;

    fn deref(&self) -> &Server {
        &self.server
    }
}

/// The registry with IDs assigned, as the handlers read it.
struct Index {
    /// Sorted by name, Harbor's default order for projects.
    projects: Vec<ProjectRow>,
    labels: Vec<LabelRow>,
    users: Vec<User>,
    robots: Vec<Robot>,
}

struct ProjectRow {
    id: i64,
    name: String,
    public: bool,
    members: Vec<String>,
    repositories: Vec<RepositoryRow>,
}

struct RepositoryRow {
    id: i64,
    /// Without the project.
    name: String,
    artifacts: Vec<ArtifactRow>,
}

struct ArtifactRow {
    id: i64,
    digest: String,
    /// (tag ID, name), newest first.
    tags: Vec<(i64, String)>,
    labels: Vec<i64>,
    image_labels: serde_json::Map<String, Value>,
}

struct LabelRow {
    id: i64,
    name: String,
    /// 0 for global labels.
    project_id: i64,
}

impl Index {
    fn new(data: &HarborData) -> Index {
        let (mut next_repository, mut next_artifact, mut next_tag) = (1, 1, 1);
        let mut projects: Vec<ProjectRow> = data
            .projects
            .iter()
            .enumerate()
            .map(|(i, project)| ProjectRow {
                id: i as i64 + 1,
                name: project.name.clone(),
                public: project.public,
                members: project.members.clone(),
                repositories: project
                    .repositories
                    .iter()
                    .map(|repository| {
                        next_repository += 1;
                        RepositoryRow {
                            id: next_repository - 1,
                            name: repository.name.clone(),
                            artifacts: repository
                                .artifacts
                                .iter()
                                .map(|artifact| {
                                    next_artifact += 1;
                                    let id = next_artifact - 1;
                                    ArtifactRow {
                                        id,
                                        digest: if artifact.digest.is_empty() {
                                            fake_digest(id as u64)
                                        } else {
                                            artifact.digest.clone()
                                        },
                                        tags: artifact
                                            .tags
                                            .iter()
                                            .map(|tag| {
                                                next_tag += 1;
                                                (next_tag - 1, tag.clone())
                                            })
                                            .collect(),
                                        labels: artifact.labels.clone(),
                                        image_labels: artifact.image_labels.clone(),
                                    }
                                })
                                .collect(),
                        }
                    })
                    .collect(),
            })
            .collect();
        let labels = data
            .labels
            .iter()
            .map(|label| LabelRow {
                id: label.id,
                name: label.name.clone(),
                project_id: label.project.as_deref().map_or(0, |name| {
                    projects
                        .iter()
                        .find(|p| p.name == name)
                        .map(|p| p.id)
                        .unwrap_or_else(|| panic!("label {:?}: no project {name:?}", label.name))
                }),
            })
            .collect();
        projects.sort_by(|a, b| a.name.cmp(&b.name));
        Index {
            projects,
            labels,
            users: data.users.clone(),
            robots: data.robots.clone(),
        }
    }

    fn label(&self, id: i64) -> Option<&LabelRow> {
        self.labels.iter().find(|label| label.id == id)
    }
}

/// Who is calling, after Harbor's security middleware.
enum Caller<'a> {
    Anonymous,
    User(&'a User),
    Robot(&'a Robot),
}

impl Caller<'_> {
    fn can_read(&self, project: &ProjectRow) -> bool {
        project.public
            || match self {
                Caller::Anonymous => false,
                Caller::User(user) => user.admin || project.members.contains(&user.name),
                Caller::Robot(robot) => {
                    robot.all_projects || robot.projects.contains(&project.name)
                }
            }
    }

    fn is_member(&self, project: &ProjectRow) -> bool {
        matches!(self, Caller::User(user) if project.members.contains(&user.name))
    }

    /// What Harbor answers when this caller may not read a project (or it does not exist).
    fn denied(&self) -> Refusal {
        Box::new(match self {
            Caller::Anonymous => harbor_error(401, "unauthorized"),
            _ => harbor_error(403, "forbidden"),
        })
    }
}

/// The paths on which Harbor accepts an OIDC user's CLI secret (`oidc_cli.go`).
fn oidc_cli_whitelisted(method: &Method, path: &str) -> bool {
    if *method != Method::GET {
        return false;
    }
    if matches!(
        path,
        "/api/v2.0/projects" | "/api/v2.0/systeminfo" | "/api/version" | "/api/v2.0/labels"
    ) {
        return true;
    }
    let Some(rest) = path.strip_prefix("/api/v2.0/projects/") else {
        return false;
    };
    rest.ends_with("/repositories")
        || (rest.contains("/repositories/") && rest.ends_with("/artifacts"))
}

/// Harbor's generators in order (`oidcCli`, `robot`, `basicAuth`); any failure is anonymous.
fn authenticate<'a>(index: &'a Index, request: &Incoming, path: &str) -> Caller<'a> {
    let Some((name, secret)) = request.header("authorization").and_then(basic_credentials) else {
        return Caller::Anonymous;
    };
    if let Some(user) = index
        .users
        .iter()
        .find(|user| user.kind == UserKind::Oidc && user.name == name)
    {
        // Off the whitelist an OIDC user has no usable password, so Basic auth fails too.
        return if user.secret == secret && oidc_cli_whitelisted(&request.method, path) {
            Caller::User(user)
        } else {
            Caller::Anonymous
        };
    }
    if name.starts_with("robot$") {
        return index
            .robots
            .iter()
            .find(|robot| robot.name == name && robot.secret == secret && !robot.disabled)
            .map_or(Caller::Anonymous, Caller::Robot);
    }
    index
        .users
        .iter()
        .find(|user| user.kind == UserKind::Local && user.name == name && user.secret == secret)
        .map_or(Caller::Anonymous, Caller::User)
}

fn route(index: &Index, request: &Incoming) -> Response<Body> {
    // nginx (`proxy_pass http://core/api/;`) decodes the path once before Harbor routes it.
    let path = percent_decode(&request.path);
    let Some(rest) = path.strip_prefix("/api/v2.0/") else {
        if path == "/api/version" && request.method == Method::GET {
            return json_response(200, &json!({"version": "v2.0"}));
        }
        return harbor_error(404, &format!("path {path} was not found"));
    };
    let segments: Vec<&str> = rest.split('/').collect();
    if segments.iter().any(|segment| segment.is_empty()) {
        return harbor_error(404, &format!("path {path} was not found"));
    }
    let known = matches!(
        segments.as_slice(),
        ["projects"]
            | ["projects", _]
            | ["projects", _, "repositories"]
            | ["projects", _, "repositories", _, "artifacts"]
            | ["projects", _, "repositories", _, "artifacts", _]
            | ["labels"]
            | ["systeminfo"]
    );
    if !known {
        return harbor_error(404, &format!("path {path} was not found"));
    }
    if request.method != Method::GET {
        return harbor_error(
            405,
            &format!("method {} is not allowed, but [GET] are", request.method),
        );
    }
    let caller = authenticate(index, request, &path);
    let query = parse_query(&request.query);
    let result = match segments.as_slice() {
        ["projects"] => list_projects(index, &caller, &query, &path),
        ["projects", project] => get_project(index, &caller, project, request),
        ["projects", project, "repositories"] => {
            list_repositories(index, &caller, project, &query, &path)
        }
        ["projects", project, "repositories", repository, "artifacts"] => {
            list_artifacts(index, &caller, project, repository, &query, &path)
        }
        [
            "projects",
            project,
            "repositories",
            repository,
            "artifacts",
            reference,
        ] => get_artifact(index, &caller, project, repository, reference, &query),
        ["labels"] => list_labels(index, &caller, &query, &path),
        _ => Ok(system_info(index, &caller)),
    };
    result.unwrap_or_else(|response| *response)
}

/// Why a handler step stops: the answer to send instead (boxed, since it is large).
type Refusal = Box<Response<Body>>;
type Answer = Result<Response<Body>, Refusal>;

fn param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// A go-openapi validation failure: 422 with its message list.
fn validation_error(message: &str) -> Refusal {
    Box::new(harbor_error(
        422,
        &format!("validation failure list:\n{message}"),
    ))
}

fn bool_param(query: &[(String, String)], name: &str, default: bool) -> Result<bool, Refusal> {
    match param(query, name) {
        None | Some("") => Ok(default),
        Some("true" | "1" | "t" | "T" | "TRUE" | "True") => Ok(true),
        Some("false" | "0" | "f" | "F" | "FALSE" | "False") => Ok(false),
        Some(other) => Err(validation_error(&format!(
            "{name} in query must be of type bool: \"{other}\""
        ))),
    }
}

fn int_param(query: &[(String, String)], name: &str) -> Result<Option<i64>, Refusal> {
    match param(query, name) {
        None | Some("") => Ok(None),
        Some(text) => text.parse().map(Some).map_err(|_| {
            validation_error(&format!(
                "{name} in query must be of type int64: \"{text}\""
            ))
        }),
    }
}

/// `page` and `page_size`; a size of `None` means "no limit" (`page_size` ≤ 0).
struct Paging {
    page: u64,
    size: Option<u64>,
}

fn paging(query: &[(String, String)]) -> Result<Paging, Refusal> {
    let page = int_param(query, "page")?.unwrap_or(1).max(1) as u64;
    let size = int_param(query, "page_size")?.unwrap_or(DEFAULT_PAGE_SIZE as i64);
    if size > MAX_PAGE_SIZE as i64 {
        return Err(validation_error(&format!(
            "page_size in query should be less than or equal to {MAX_PAGE_SIZE}"
        )));
    }
    Ok(Paging {
        page,
        size: (size > 0).then_some(size as u64),
    })
}

/// One page of `items` with `X-Total-Count` and, when there are other pages, `Link`.
fn page_response(
    items: Vec<Value>,
    paging: &Paging,
    path: &str,
    query: &[(String, String)],
) -> Response<Body> {
    let total = items.len() as u64;
    let page: Vec<Value> = match paging.size {
        Some(size) => items
            .into_iter()
            .skip(((paging.page - 1) * size) as usize)
            .take(size as usize)
            .collect(),
        None => items,
    };
    let mut response = json_response(200, &Value::Array(page));
    let headers = response.headers_mut();
    headers.insert("x-total-count", HeaderValue::from(total));
    if let Some(size) = paging.size {
        let page = paging.page;
        let mut links = Vec::new();
        if page > 1 && (page - 1) * size < total {
            links.push(format!(
                "<{}>; rel=\"prev\"",
                link_url(path, query, page - 1, size)
            ));
        }
        if size * page < total {
            links.push(format!(
                "<{}>; rel=\"next\"",
                link_url(path, query, page + 1, size)
            ));
        }
        if !links.is_empty()
            && let Ok(value) = HeaderValue::from_str(&links.join(" , "))
        {
            headers.insert(header::LINK, value);
        }
    }
    response
}

/// Harbor's link: the request path with the query re-encoded (keys sorted, as Go's
/// `url.Values.Encode` does) and then unescaped again, so values appear raw.
fn link_url(path: &str, query: &[(String, String)], page: u64, size: u64) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .filter(|(key, _)| key != "page" && key != "page_size")
        .cloned()
        .collect();
    pairs.push(("page".to_owned(), page.to_string()));
    pairs.push(("page_size".to_owned(), size.to_string()));
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    let query: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{path}?{}", query.join("&"))
}

/// A parsed `q` value (`H src/lib/q/builder.go`).
#[derive(Debug, Clone, PartialEq)]
enum QValue {
    Exact(String),
    Fuzzy(String),
    Range(String, String),
    Or(Vec<String>),
    And(Vec<String>),
}

const Q_SYNTAX: &str = "the query string must contain \"=\" and the key/value cannot be empty";
const Q_LABELS: &str =
    "the value of \"labels\" query can only be integer list with intersetion relationship";

fn parse_q(query: &[(String, String)]) -> Result<Vec<(String, QValue)>, Refusal> {
    let Some(raw) = param(query, "q").filter(|q| !q.is_empty()) else {
        return Ok(Vec::new());
    };
    // Harbor unescapes `q` once more after the query string itself was decoded.
    let raw = query_unescape(raw).map_err(|message| refuse(400, &message))?;
    let mut out = Vec::new();
    for pair in raw.split(',') {
        let Some((key, value)) = pair
            .split_once('=')
            .filter(|(k, v)| !k.is_empty() && !v.is_empty())
        else {
            return Err(refuse(400, Q_SYNTAX));
        };
        let list = |inner: &str| {
            inner
                .split(' ')
                .map(|item| item.trim_matches(['"', '\'']).to_owned())
                .collect()
        };
        let value = if let Some(fuzzy) = value.strip_prefix('~') {
            QValue::Fuzzy(fuzzy.to_owned())
        } else if let Some(inner) = value.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
            let Some((min, max)) = inner.split_once('~').filter(|(_, max)| !max.contains('~'))
            else {
                return Err(refuse(
                    400,
                    &format!("invalid query string, the range must contain one \"~\": {value}"),
                ));
            };
            QValue::Range(min.to_owned(), max.to_owned())
        } else if let Some(inner) = value.strip_prefix('{').and_then(|v| v.strip_suffix('}')) {
            QValue::Or(list(inner))
        } else if let Some(inner) = value.strip_prefix('(').and_then(|v| v.strip_suffix(')')) {
            QValue::And(list(inner))
        } else {
            QValue::Exact(value.strip_prefix('\\').unwrap_or(value).to_owned())
        };
        out.push((key.to_owned(), value));
    }
    Ok(out)
}

/// The artifact filters Harbor's DAO understands; every other `q` key is ignored.
#[derive(Default)]
struct ArtifactFilter {
    /// Every one of these label IDs must be attached.
    labels: Option<Vec<i64>>,
    tags: Option<QValue>,
}

fn artifact_filter(q: Vec<(String, QValue)>) -> Result<ArtifactFilter, Refusal> {
    let mut filter = ArtifactFilter::default();
    for (key, value) in q {
        match key.as_str() {
            "labels" | "Labels" => {
                let QValue::And(items) = value else {
                    return Err(refuse(400, Q_LABELS));
                };
                let ids: Result<Vec<i64>, _> = items.iter().map(|item| item.parse()).collect();
                filter.labels = Some(ids.map_err(|_| refuse(400, Q_LABELS))?);
            }
            "tags" => filter.tags = Some(value),
            _ => {}
        }
    }
    Ok(filter)
}

fn time(n: i64) -> String {
    let n = n.rem_euclid(28 * 86_400);
    format!(
        "2024-02-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        1 + n / 86_400,
        (n / 3600) % 24,
        (n / 60) % 60,
        n % 60,
        (n * 37) % 1000
    )
}

const NEVER: &str = "0001-01-01T00:00:00.000Z";

fn project_json(project: &ProjectRow, caller: &Caller, detail: bool) -> Value {
    let mut object = Map::new();
    object.insert("project_id".into(), json!(project.id));
    object.insert("owner_id".into(), json!(1));
    object.insert("name".into(), json!(project.name));
    object.insert("creation_time".into(), json!(time(project.id * 1000)));
    object.insert("update_time".into(), json!(time(project.id * 1000)));
    object.insert("repo_count".into(), json!(project.repositories.len()));
    if caller.is_member(project) {
        object.insert("current_user_role_id".into(), json!(2));
        object.insert("current_user_role_ids".into(), json!([2]));
    } else {
        object.insert("current_user_role_ids".into(), Value::Null);
    }
    if detail {
        object.insert("owner_name".into(), json!("admin"));
        object.insert(
            "metadata".into(),
            json!({"public": project.public.to_string()}),
        );
        object.insert(
            "cve_allowlist".into(),
            json!({"id": project.id, "project_id": project.id, "items": [],
                   "creation_time": NEVER, "update_time": NEVER}),
        );
    }
    Value::Object(object)
}

fn list_projects(index: &Index, caller: &Caller, query: &[(String, String)], path: &str) -> Answer {
    let paging = paging(query)?;
    let q = parse_q(query)?;
    let public = match param(query, "public") {
        None | Some("") => None,
        Some(_) => Some(bool_param(query, "public", false)?),
    };
    let detail = bool_param(query, "with_detail", true)?;
    let name = param(query, "name").filter(|name| !name.is_empty());
    let items: Vec<Value> = index
        .projects
        .iter()
        .filter(|project| caller.can_read(project))
        .filter(|project| public.is_none_or(|public| project.public == public))
        .filter(|project| name.is_none_or(|name| project.name.contains(name)))
        .filter(|project| {
            q.iter().all(|(key, value)| match (key.as_str(), value) {
                ("name", QValue::Exact(name)) => project.name == *name,
                ("name", QValue::Fuzzy(name)) => project.name.contains(name.as_str()),
                _ => true,
            })
        })
        .map(|project| project_json(project, caller, detail))
        .collect();
    Ok(page_response(items, &paging, path, query))
}

/// The project a caller may read, or Harbor's 401/403 (also for a project that does not exist:
/// the permission check comes first).
fn readable<'a>(index: &'a Index, caller: &Caller, name: &str) -> Result<&'a ProjectRow, Refusal> {
    index
        .projects
        .iter()
        .find(|project| project.name == name)
        .filter(|project| caller.can_read(project))
        .ok_or_else(|| caller.denied())
}

fn get_project(index: &Index, caller: &Caller, name_or_id: &str, request: &Incoming) -> Answer {
    let by_name = request.header("x-is-resource-name") == Some("true");
    let project = match name_or_id.parse::<i64>() {
        Ok(id) if !by_name => index.projects.iter().find(|p| p.id == id),
        _ => index.projects.iter().find(|p| p.name == name_or_id),
    };
    match project.filter(|project| caller.can_read(project)) {
        Some(project) => Ok(json_response(200, &project_json(project, caller, true))),
        None => Err(caller.denied()),
    }
}

fn list_repositories(
    index: &Index,
    caller: &Caller,
    project: &str,
    query: &[(String, String)],
    path: &str,
) -> Answer {
    let project = readable(index, caller, project)?;
    let paging = paging(query)?;
    parse_q(query)?;
    // Harbor's default order is `-creation_time,-id`: newest first.
    let items = project
        .repositories
        .iter()
        .rev()
        .map(|repository| {
            json!({
                "id": repository.id,
                "project_id": project.id,
                "name": format!("{}/{}", project.name, repository.name),
                "artifact_count": repository.artifacts.len(),
                "pull_count": 0,
                "creation_time": time(repository.id * 60),
                "update_time": time(repository.id * 60 + 30),
            })
        })
        .collect();
    Ok(page_response(items, &paging, path, query))
}

fn artifact_json(
    project: &ProjectRow,
    repository: &RepositoryRow,
    artifact: &ArtifactRow,
    index: &Index,
    with_tag: bool,
    with_label: bool,
) -> Value {
    let full_name = format!("{}/{}", project.name, repository.name);
    // Harbor sends empty arrays as `null`, never as `[]` and never omitted.
    let tags = if with_tag && !artifact.tags.is_empty() {
        Value::Array(
            artifact
                .tags
                .iter()
                .map(|(id, name)| {
                    json!({"id": id, "repository_id": repository.id, "artifact_id": artifact.id,
                           "name": name, "push_time": time(artifact.id * 60 + 1),
                           "pull_time": NEVER, "immutable": false})
                })
                .collect(),
        )
    } else {
        Value::Null
    };
    let labels: Vec<Value> = if with_label {
        artifact
            .labels
            .iter()
            .filter_map(|id| index.label(*id))
            .map(label_json)
            .collect()
    } else {
        Vec::new()
    };
    let labels = if labels.is_empty() {
        Value::Null
    } else {
        Value::Array(labels)
    };
    let encoded = percent_encode(&percent_encode(&repository.name));
    json!({
        "id": artifact.id,
        "type": "IMAGE",
        "media_type": "application/vnd.oci.image.config.v1+json",
        "manifest_media_type": "application/vnd.oci.image.manifest.v1+json",
        "artifact_type": "application/vnd.oci.image.config.v1+json",
        "project_id": project.id,
        "repository_id": repository.id,
        "repository_name": full_name,
        "digest": artifact.digest,
        "size": 100_000 + artifact.id * 7,
        "push_time": time(artifact.id * 60),
        "pull_time": NEVER,
        "extra_attrs": {"architecture": "amd64", "os": "linux", "author": "",
                        "created": time(artifact.id * 60 - 600),
                        "config": config_of(&artifact.image_labels)},
        "addition_links": {"build_history": {"absolute": false, "href": format!(
            "/api/v2.0/projects/{}/repositories/{encoded}/artifacts/{}/additions/build_history",
            project.name, artifact.digest)}},
        "references": null,
        "accessories": null,
        "tags": tags,
        "labels": labels,
    })
}

/// The image config Harbor's image processor puts in `extra_attrs`: `Labels` only when the
/// image has some, as `docker inspect` shows it.
fn config_of(labels: &serde_json::Map<String, Value>) -> Value {
    if labels.is_empty() {
        json!({})
    } else {
        json!({"Entrypoint": ["/skaha/startup.sh"], "Labels": labels})
    }
}

fn list_artifacts(
    index: &Index,
    caller: &Caller,
    project: &str,
    repository: &str,
    query: &[(String, String)],
    path: &str,
) -> Answer {
    let project = readable(index, caller, project)?;
    // The handler decodes the repository name once more (`a%2Fb` → `a/b`).
    let repository = percent_decode(repository);
    let paging = paging(query)?;
    let with_tag = bool_param(query, "with_tag", true)?;
    let with_label = bool_param(query, "with_label", false)?;
    let filter = artifact_filter(parse_q(query)?)?;
    // A repository that does not exist in a readable project is an empty list, not 404.
    let Some(repository) = project
        .repositories
        .iter()
        .find(|candidate| candidate.name == repository)
    else {
        return Ok(page_response(Vec::new(), &paging, path, query));
    };
    let items = repository
        .artifacts
        .iter()
        .rev()
        .filter(|artifact| {
            filter
                .labels
                .as_ref()
                .is_none_or(|ids| ids.iter().all(|id| artifact.labels.contains(id)))
        })
        .filter(|artifact| match &filter.tags {
            None => true,
            Some(QValue::Exact(tag)) if tag == "*" => !artifact.tags.is_empty(),
            Some(QValue::Exact(tag)) if tag == "nil" => artifact.tags.is_empty(),
            Some(QValue::Exact(tag)) => artifact.tags.iter().any(|(_, name)| name == tag),
            Some(QValue::Fuzzy(tag)) => artifact
                .tags
                .iter()
                .any(|(_, name)| name.contains(tag.as_str())),
            Some(_) => true,
        })
        .map(|artifact| artifact_json(project, repository, artifact, index, with_tag, with_label))
        .collect();
    Ok(page_response(items, &paging, path, query))
}

fn get_artifact(
    index: &Index,
    caller: &Caller,
    project: &str,
    repository: &str,
    reference: &str,
    query: &[(String, String)],
) -> Answer {
    let project = readable(index, caller, project)?;
    let repository_name = percent_decode(repository);
    let with_tag = bool_param(query, "with_tag", true)?;
    let with_label = bool_param(query, "with_label", false)?;
    let found = project
        .repositories
        .iter()
        .find(|candidate| candidate.name == repository_name)
        .and_then(|repository| {
            repository
                .artifacts
                .iter()
                .find(|artifact| {
                    artifact.digest == reference
                        || artifact.tags.iter().any(|(_, t)| t == reference)
                })
                .map(|artifact| (repository, artifact))
        });
    match found {
        Some((repository, artifact)) => Ok(json_response(
            200,
            &artifact_json(project, repository, artifact, index, with_tag, with_label),
        )),
        None => {
            let separator = if reference.starts_with("sha256:") {
                '@'
            } else {
                ':'
            };
            Err(refuse(
                404,
                &format!(
                    "artifact {}/{repository_name}{separator}{reference} not found",
                    project.name
                ),
            ))
        }
    }
}

fn label_json(label: &LabelRow) -> Value {
    let mut object = Map::new();
    object.insert("id".into(), json!(label.id));
    object.insert("name".into(), json!(label.name));
    object.insert("color".into(), json!("#0065AB"));
    object.insert(
        "scope".into(),
        json!(if label.project_id == 0 { "g" } else { "p" }),
    );
    // `project_id` is an omitempty int64: absent for global labels.
    if label.project_id != 0 {
        object.insert("project_id".into(), json!(label.project_id));
    }
    object.insert("creation_time".into(), json!(time(label.id * 3600)));
    object.insert("update_time".into(), json!(time(label.id * 3600)));
    Value::Object(object)
}

fn list_labels(index: &Index, caller: &Caller, query: &[(String, String)], path: &str) -> Answer {
    let paging = paging(query)?;
    parse_q(query)?;
    let scope = param(query, "scope").unwrap_or("");
    let project_id = match scope {
        "g" => 0,
        "p" => {
            let id = int_param(query, "project_id")?.unwrap_or(0);
            if id == 0 {
                return Err(refuse(
                    400,
                    "must with project ID when to query project labels",
                ));
            }
            let project = index
                .projects
                .iter()
                .find(|project| project.id == id)
                .filter(|project| caller.can_read(project))
                .ok_or_else(|| caller.denied())?;
            project.id
        }
        other => return Err(refuse(400, &format!("invalid scope: {other}"))),
    };
    // `name` is a fuzzy match.
    let name = param(query, "name").unwrap_or("");
    let items = index
        .labels
        .iter()
        .filter(|label| label.project_id == project_id && label.name.contains(name))
        .map(label_json)
        .collect();
    Ok(page_response(items, &paging, path, query))
}

fn system_info(index: &Index, caller: &Caller) -> Response<Body> {
    let oidc = index.users.iter().any(|user| user.kind == UserKind::Oidc);
    let mut info = json!({
        "auth_mode": if oidc { "oidc_auth" } else { "db_auth" },
        "primary_auth_mode": false,
        "self_registration": false,
        "banner_message": "",
        "current_time": time(0),
    });
    if !matches!(caller, Caller::Anonymous) {
        let object = info.as_object_mut().expect("an object");
        object.insert("harbor_version".into(), json!(HARBOR_VERSION));
        object.insert("external_url".into(), json!("https://harbor.example.org"));
        object.insert("registry_url".into(), json!("harbor.example.org"));
        object.insert("project_creation_restriction".into(), json!("everyone"));
        object.insert("has_ca_root".into(), json!(false));
        object.insert("read_only".into(), json!(false));
        object.insert("notification_enable".into(), json!(true));
        object.insert("registry_storage_provider_name".into(), json!("filesystem"));
    }
    json_response(200, &info)
}

// ---------------------------------------------------------------------------------------------
// Responses.

pub fn json_response(status: u16, value: &Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(value.to_string()))
        .unwrap()
}

/// Harbor's error code for a status (`H src/lib/http/error.go`).
fn harbor_code(status: u16) -> String {
    match status {
        400 => "BAD_REQUEST".to_owned(),
        401 => "UNAUTHORIZED".to_owned(),
        403 => "FORBIDDEN".to_owned(),
        404 => "NOT_FOUND".to_owned(),
        405 => "METHOD_NOT_ALLOWED".to_owned(),
        409 => "CONFLICT".to_owned(),
        412 => "PRECONDITION".to_owned(),
        429 => "TOO_MANY_REQUEST".to_owned(),
        500 => "UNKNOWN".to_owned(),
        other => StatusCode::from_u16(other)
            .ok()
            .and_then(|status| status.canonical_reason())
            .unwrap_or("UNKNOWN")
            .to_uppercase()
            .replace(' ', "_"),
    }
}

/// [`harbor_error`] as a handler step's refusal.
fn refuse(status: u16, message: &str) -> Refusal {
    Box::new(harbor_error(status, message))
}

/// Harbor's error envelope, `{"errors":[{"code":…,"message":…}]}` and a newline.
pub fn harbor_error(status: u16, message: &str) -> Response<Body> {
    let body = json!({"errors": [{"code": harbor_code(status), "message": message}]});
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
        .body(Body::from(format!("{body}\n")))
        .unwrap()
}

/// What a failing Harbor sends: the core's envelope, or nginx's page when the core is away.
pub fn harbor_error_page(status: u16) -> Response<Body> {
    match status {
        502..=504 => {
            let reason = StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("Error");
            Response::builder()
                .status(status)
                .header(header::CONTENT_TYPE, "text/html")
                .body(Body::from(format!(
                    "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n\
                     <center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n\
                     </body>\r\n</html>\r\n"
                )))
                .unwrap()
        }
        500 => harbor_error(500, "internal server error"),
        401 => harbor_error(401, "unauthorized"),
        403 => harbor_error(403, "forbidden"),
        429 => harbor_error(429, "too many requests"),
        other => harbor_error(
            other,
            &StatusCode::from_u16(other)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("error")
                .to_lowercase(),
        ),
    }
}

/// A digest-shaped string made up from a number.
pub fn fake_digest(n: u64) -> String {
    let a = splitmix(n);
    let b = splitmix(a);
    let c = splitmix(b);
    let d = splitmix(c);
    format!("sha256:{a:016x}{b:016x}{c:016x}{d:016x}")
}
