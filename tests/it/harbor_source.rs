//! Harbor as a catalog source: the walk, its quirks, auth, TLS and failures.
//!
//! Every test runs the real `arcade` binary against a [`FakeHarbor`] on 127.0.0.1 and checks what
//! it wrote (`arcade menu list --json`, the files, `desktop-file-validate`, python-xdg) and what it
//! asked (the fake's request log). The first tests check the fake itself against Harbor's
//! documented behaviour, since it is the only stand-in for Harbor these tests have.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::support::contract::Contract;
use crate::support::desktop_files;
use crate::support::fake_http::{Fault, FaultKind, LoggedRequest, base64_encode};
use crate::support::harbor::{
    Artifact, FakeHarbor, HarborConfig, HarborData, Label, Project, Repository, Robot, User,
};
use crate::support::menu_state::{
    assert_same_files, check_failure, menu_entries, menu_images, snapshot,
};
use crate::support::tls::TestPki;
use crate::support::{self, Arcade, Home};

fn sync(home: &Home, fake: &FakeHarbor) -> Arcade {
    home.arcade()
        .args(["menu", "sync", "--source", "harbor", "--url"])
        .args([fake.url()])
}

fn sync_json(home: &Home, fake: &FakeHarbor) -> serde_json::Value {
    sync(home, fake).args(["--json"]).ok().json()
}

fn strings(values: &[&str]) -> BTreeSet<String> {
    values.iter().map(|v| (*v).to_owned()).collect()
}

fn artifact_requests(fake: &FakeHarbor) -> Vec<LoggedRequest> {
    fake.requests()
        .into_iter()
        .filter(|request| request.path.ends_with("/artifacts"))
        .collect()
}

const ALICE_PASSWORD: &str = "alice-Pa55word-7f3Kq";
const ROBOT_SECRET: &str = "robot-S3cret-q9Zx2";
const OIDC_SECRET: &str = "oidc-cli-S3cret-w8Jm";

/// A small registry with every shape that matters:
/// - `skaha`: a two-tag artifact and a one-tag one carrying the global label (12), an unlabelled
///   repository, and one carrying only the fuzzy decoy `desktop-app-legacy` (13);
/// - `cirada`: a nested repository `astro/casa` with a tagged and an untagged labelled artifact,
///   and `ds9` labelled only with the project's own `desktop-app` label (40), plus `topcat` with
///   both labels;
/// - `secret`: private, readable by alice, the robot `robot$secret+menu` and the OIDC user bob.
fn registry() -> HarborData {
    HarborData {
        labels: vec![
            Label::global(12, "desktop-app"),
            Label::global(13, "desktop-app-legacy"),
            Label::global(14, "notebook"),
            Label::project(40, "desktop-app", "cirada"),
        ],
        projects: vec![
            Project::public("skaha")
                .repository(
                    Repository::new("terminal")
                        .artifact(Artifact::new(&["1.0"], &[12, 14]))
                        .artifact(Artifact::new(&["1.1.2", "latest"], &[12])),
                )
                .repository(Repository::new("notebook").artifact(Artifact::new(&["2.0"], &[14])))
                .repository(Repository::new("legacy").artifact(Artifact::new(&["0.9"], &[13]))),
            Project::public("cirada")
                .repository(
                    Repository::new("astro/casa")
                        .artifact(Artifact::new(&[], &[12]))
                        .artifact(Artifact::new(&["6.5.6"], &[12])),
                )
                .repository(Repository::new("ds9").artifact(Artifact::new(&["8.6"], &[40])))
                .repository(Repository::new("topcat").artifact(Artifact::new(&["4.9"], &[12, 40]))),
            Project::private("secret")
                .member("alice")
                .member("bob")
                .repository(Repository::new("vault").artifact(Artifact::new(&["3.1"], &[12]))),
        ],
        users: vec![
            User::local("alice", ALICE_PASSWORD),
            User::oidc("bob", OIDC_SECRET),
        ],
        robots: vec![Robot::project("secret", "menu", ROBOT_SECRET)],
    }
}

/// The references an anonymous sync of [`registry`] must produce.
/// The menu's images of the public projects: `terminal:latest` is the same artifact as
/// `terminal:1.1.2`, so it folds into that entry.
fn public_images(registry: &str) -> BTreeSet<String> {
    [
        "skaha/terminal:1.0",
        "skaha/terminal:1.1.2",
        "cirada/astro/casa:6.5.6",
        "cirada/ds9:8.6",
        "cirada/topcat:4.9",
    ]
    .iter()
    .map(|rest| format!("{registry}/{rest}"))
    .collect()
}

// ---------------------------------------------------------------------------------------------
// The fake itself, against Harbor's documented behaviour.

struct Got {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Got {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|err| panic!("{err}: {}", self.body))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

/// `GET base + path_and_query` exactly as written (no re-encoding), optionally with Basic auth.
fn get(base: &str, path_and_query: &str, auth: Option<(&str, &str)>) -> Got {
    let authorization = auth.map(|(user, secret)| {
        format!(
            "Basic {}",
            base64_encode(format!("{user}:{secret}").as_bytes())
        )
    });
    get_as(base, path_and_query, authorization.as_deref())
}

/// [`get`] with the `Authorization` header given whole.
fn get_as(base: &str, path_and_query: &str, authorization: Option<&str>) -> Got {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut request = reqwest::Client::new().get(format!("{base}{path_and_query}"));
        if let Some(authorization) = authorization {
            request = request.header(reqwest::header::AUTHORIZATION, authorization);
        }
        let response = request.send().await.unwrap();
        Got {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response.text().await.unwrap(),
        }
    })
}

#[test]
fn fake_harbor_pages_like_harbor() {
    let fake = FakeHarbor::start(HarborConfig::new(HarborData::synthetic(25, 0, 0)));
    let url = fake.url();

    let first = get(&url, "/api/v2.0/projects", None);
    assert_eq!(first.status, 200);
    assert_eq!(
        first.json().as_array().unwrap().len(),
        10,
        "default page_size"
    );
    assert_eq!(first.header("x-total-count"), Some("25"));
    assert_eq!(
        first.header("link"),
        Some("</api/v2.0/projects?page=2&page_size=10>; rel=\"next\"")
    );
    assert!(first.header("x-request-id").is_some());

    let second = get(&url, "/api/v2.0/projects?page=2&with_detail=false", None);
    assert_eq!(
        second.header("link"),
        Some(
            "</api/v2.0/projects?page=1&page_size=10&with_detail=false>; rel=\"prev\" , \
             </api/v2.0/projects?page=3&page_size=10&with_detail=false>; rel=\"next\""
        )
    );
    assert!(second.json()[0].get("metadata").is_none());

    let last = get(&url, "/api/v2.0/projects?page=3", None);
    assert_eq!(last.json().as_array().unwrap().len(), 5);
    assert_eq!(
        last.header("link"),
        Some("</api/v2.0/projects?page=2&page_size=10>; rel=\"prev\"")
    );

    let past = get(&url, "/api/v2.0/projects?page=9&page_size=10", None);
    assert_eq!((past.status, past.body.as_str()), (200, "[]"));
    assert_eq!(past.header("x-total-count"), Some("25"));
    assert_eq!(past.header("link"), None);

    let too_big = get(&url, "/api/v2.0/projects?page_size=101", None);
    assert_eq!(too_big.status, 422);
    assert_eq!(
        too_big.body,
        "{\"errors\":[{\"code\":\"UNPROCESSABLE_ENTITY\",\"message\":\"validation failure list:\\n\
         page_size in query should be less than or equal to 100\"}]}\n"
    );

    let unlimited = get(&url, "/api/v2.0/projects?page_size=-1", None);
    assert_eq!(unlimited.json().as_array().unwrap().len(), 25);
    assert_eq!(unlimited.header("link"), None);
    assert_eq!(
        unlimited.json()[0]["metadata"]["public"],
        serde_json::json!("true"),
        "metadata values are strings"
    );
}

#[test]
fn fake_harbor_has_harbors_quirks() {
    let fake = FakeHarbor::start(HarborConfig::new(registry()));
    let url = fake.url();
    let artifacts = "/api/v2.0/projects/cirada/repositories/astro%252Fcasa/artifacts";

    // Nested names must be encoded twice; once is a 404 behind nginx.
    let once = get(
        &url,
        "/api/v2.0/projects/cirada/repositories/astro%2Fcasa/artifacts",
        None,
    );
    assert_eq!(once.status, 404);
    assert_eq!(once.json()["errors"][0]["code"], "NOT_FOUND");
    let twice = get(&url, artifacts, None);
    assert_eq!(twice.status, 200);
    let list = twice.json();
    assert_eq!(list.as_array().unwrap().len(), 2);
    // Arrays are `null`, never `[]` and never left out; labels only with `with_label=true`.
    for artifact in list.as_array().unwrap() {
        assert_eq!(artifact["labels"], serde_json::Value::Null);
        assert_eq!(artifact["references"], serde_json::Value::Null);
        assert_eq!(artifact["repository_name"], "cirada/astro/casa");
    }
    assert_eq!(list[1]["tags"], serde_json::Value::Null, "the untagged one");
    let labelled = get(&url, &format!("{artifacts}?with_label=true"), None).json();
    assert_eq!(labelled[0]["labels"][0]["name"], "desktop-app");
    assert_eq!(labelled[0]["tags"][0]["name"], "6.5.6");

    // The `q` label filter: an AND-list of IDs separated by spaces, nothing else.
    let terminal = "/api/v2.0/projects/skaha/repositories/terminal/artifacts";
    let and = |q: &str| get(&url, &format!("{terminal}?q={q}"), None);
    assert_eq!(and("labels%3D(12)").json().as_array().unwrap().len(), 2);
    assert_eq!(
        and("labels%3D(12%2014)").json().as_array().unwrap().len(),
        1
    );
    assert_eq!(and("labels%3D(13)").json().as_array().unwrap().len(), 0);
    let comma = and("labels%3D(12%2C%2014)");
    assert_eq!(comma.status, 400);
    assert_eq!(
        comma.json()["errors"][0]["message"],
        "the query string must contain \"=\" and the key/value cannot be empty"
    );
    for bad in ["labels%3D12", "labels%3D%7B12%2014%7D"] {
        let got = and(bad);
        assert_eq!(got.status, 400, "{bad}");
        assert_eq!(
            got.json()["errors"][0]["message"],
            "the value of \"labels\" query can only be integer list with intersetion relationship"
        );
    }
    // Unknown keys are ignored: everything comes back.
    assert_eq!(
        and("label%3Ddesktop-app").json().as_array().unwrap().len(),
        2
    );
    // A repository that does not exist in a readable project is an empty list.
    let missing = get(
        &url,
        "/api/v2.0/projects/skaha/repositories/nope/artifacts",
        None,
    );
    assert_eq!((missing.status, missing.body.as_str()), (200, "[]"));

    // Labels: the scope is required, `p` needs a project, `name` is fuzzy.
    let labels = |query: &str| get(&url, &format!("/api/v2.0/labels?{query}"), None);
    assert_eq!(labels("name=desktop-app").status, 400);
    assert_eq!(
        labels("scope=x").json()["errors"][0]["message"],
        "invalid scope: x"
    );
    assert_eq!(
        labels("scope=p").json()["errors"][0]["message"],
        "must with project ID when to query project labels"
    );
    let fuzzy = labels("scope=g&name=desktop-app").json();
    let names: Vec<&str> = fuzzy
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["desktop-app", "desktop-app-legacy"]);
    let cirada_id = get(&url, "/api/v2.0/projects?name=cirada", None).json()[0]["project_id"]
        .as_i64()
        .unwrap();
    let local = labels(&format!("scope=p&project_id={cirada_id}&name=desktop")).json();
    assert_eq!(local[0]["id"], 40);
    assert_eq!(local[0]["scope"], "p");

    // Auth: the version only for authenticated callers; wrong credentials are anonymous.
    let info = |auth| get(&url, "/api/v2.0/systeminfo", auth).json();
    assert!(info(None).get("harbor_version").is_none());
    assert!(
        info(Some(("alice", ALICE_PASSWORD)))
            .get("harbor_version")
            .is_some()
    );
    assert!(
        info(Some(("alice", "wrong")))
            .get("harbor_version")
            .is_none()
    );
    assert!(
        info(Some(("robot$secret+menu", ROBOT_SECRET)))
            .get("harbor_version")
            .is_some()
    );
    let project_names = |auth| -> Vec<String> {
        get(&url, "/api/v2.0/projects", auth)
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(project_names(None), ["cirada", "skaha"]);
    assert_eq!(project_names(Some(("alice", "wrong"))), ["cirada", "skaha"]);
    assert_eq!(
        project_names(Some(("alice", ALICE_PASSWORD))),
        ["cirada", "secret", "skaha"]
    );
    let private = "/api/v2.0/projects/secret/repositories";
    let anonymous = get(&url, private, None);
    assert_eq!(anonymous.status, 401);
    assert_eq!(
        anonymous.body,
        "{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"unauthorized\"}]}\n"
    );
    assert_eq!(
        anonymous.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(
        get(&url, private, Some(("alice", ALICE_PASSWORD))).status,
        200
    );
    // A project that does not exist looks like a private one, not like a 404.
    assert_eq!(
        get(&url, "/api/v2.0/projects/nope/repositories", None).status,
        401
    );
    // An OIDC CLI secret works on the whitelist only.
    let bob = Some(("bob", OIDC_SECRET));
    assert_eq!(get(&url, private, bob).status, 200);
    assert_eq!(get(&url, "/api/v2.0/projects/secret", bob).status, 401);
    // Unknown routes get the envelope.
    let unknown = get(&url, "/api/v2.0/nothing/here", None);
    assert_eq!(unknown.status, 404);
    assert_eq!(
        unknown.json()["errors"][0]["message"],
        "path /api/v2.0/nothing/here was not found"
    );
}

#[test]
fn fake_harbor_misbehaves_on_demand() {
    let fake = FakeHarbor::start(HarborConfig::new(registry()));
    let url = fake.url();
    fake.add_fault(Fault::first(1, FaultKind::Status(429)).on("/labels"));
    fake.add_fault(Fault::always(FaultKind::Status(502)).on("/systeminfo"));
    fake.add_fault(Fault::always(FaultKind::InvalidJson).on("name=skaha"));
    let limited = get(&url, "/api/v2.0/labels?scope=g", None);
    assert_eq!(limited.status, 429);
    assert_eq!(limited.header("retry-after"), Some("1"));
    assert_eq!(limited.json()["errors"][0]["code"], "TOO_MANY_REQUEST");
    assert_eq!(get(&url, "/api/v2.0/labels?scope=g", None).status, 200);
    let gateway = get(&url, "/api/v2.0/systeminfo", None);
    assert_eq!(gateway.status, 502);
    assert!(gateway.body.contains("<center>nginx</center>"));
    let broken = get(&url, "/api/v2.0/projects?name=skaha", None);
    assert_eq!(broken.status, 200);
    assert!(serde_json::from_str::<serde_json::Value>(&broken.body).is_err());

    let log = fake.requests();
    assert_eq!(log.len(), 4);
    assert_eq!(log[0].status, Some(429));
    assert_eq!(log[0].param("scope").as_deref(), Some("g"));
    assert_eq!(log[2].status, Some(502));
}

/// Every syncing account of [`registry`]: anonymous, a local user, a robot, an OIDC CLI secret.
fn sync_as_everyone(fake: &FakeHarbor) {
    let accounts: [Option<(&str, &str)>; 4] = [
        None,
        Some(("alice", ALICE_PASSWORD)),
        Some(("robot$secret+menu", ROBOT_SECRET)),
        Some(("bob", OIDC_SECRET)),
    ];
    for account in accounts {
        let home = Home::new();
        let mut run = sync(&home, fake);
        if let Some((user, secret)) = account {
            run = run
                .env("ARCADE_HARBOR_USERNAME", user)
                .env("ARCADE_HARBOR_SECRET", secret);
        }
        run.ok();
    }
}

/// Asserts that the fake's answer to `path_and_query` is one Harbor's swagger declares.
#[track_caller]
fn assert_answer_in_contract(url: &str, path_and_query: &str, authorization: Option<&str>) -> u16 {
    let got = get_as(url, path_and_query, authorization);
    let path = path_and_query.split('?').next().unwrap_or_default();
    let problems = Contract::harbor().response_problems(
        "GET",
        path,
        got.status,
        &|name| got.header(name).map(str::to_owned),
        &got.body,
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    got.status
}

#[test]
fn arcade_asks_harbor_only_what_its_swagger_declares() {
    let fake = FakeHarbor::start(HarborConfig::new(registry()));
    sync_as_everyone(&fake);
    let log = fake.requests();
    assert!(log.iter().all(|r| r.status == Some(200)), "{log:#?}");
    fake.assert_requests_in_contract();

    // Paging past a hundred of everything, where `page` and `page_size` matter.
    let big = FakeHarbor::start(HarborConfig::new(HarborData::synthetic(130, 3, 2)));
    sync(&Home::new(), &big).ok();
    big.assert_requests_in_contract();
}

#[test]
fn the_contract_check_catches_what_harbor_would_not_accept_or_send() {
    let contract = Contract::harbor();
    let request = |path: &str, query: &str| LoggedRequest {
        method: "GET".to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
        authorization: None,
        skaha_token: None,
        content_type: None,
        user_agent: None,
        body: String::new(),
        status: Some(200),
        at: Instant::now(),
    };
    let projects = "/api/v2.0/projects";
    assert!(
        contract
            .request_problems(&request(projects, "page=2&page_size=100"))
            .is_empty()
    );
    for (path, query, problem) in [
        (projects, "page_size=101", "above the maximum 100"),
        (projects, "page=first", "should be an integer"),
        (projects, "with_detail=yes", "should be true or false"),
        (
            projects,
            "labels=12",
            "declares no query parameter \"labels\"",
        ),
        ("/api/v2.0/images", "", "matches no path"),
        ("/api/v1.0/projects", "", "outside the contract's base path"),
    ] {
        let problems = contract.request_problems(&request(path, query));
        assert!(
            problems.iter().any(|p| p.contains(problem)),
            "{path}?{query}: {problems:?}"
        );
    }

    let answer = |status: u16, total: Option<&str>, body: &str| {
        let total = total.map(str::to_owned);
        contract.response_problems("GET", projects, status, &move |_| total.clone(), body)
    };
    let project = r#"{"project_id": 1, "name": "skaha", "metadata": {"public": "true"}}"#;
    assert!(answer(200, Some("1"), &format!("[{project}]")).is_empty());
    assert!(answer(200, Some("0"), "null").is_empty(), "Go's nil slice");
    for (status, total, body, problem) in [
        (200, None, "[]", "header X-Total-Count is missing"),
        (
            200,
            Some("1"),
            r#"[{"project_id": "1"}]"#,
            "project_id should be integer",
        ),
        (
            200,
            Some("1"),
            r#"[{"name": "x", "owner": 1}]"#,
            "body[0].owner is not declared",
        ),
        (200, Some("1"), r#"{"name": "x"}"#, "body should be array"),
        (200, Some("1"), "[{", "not JSON"),
        (418, Some("1"), "[]", "declares no such status"),
    ] {
        let problems = answer(status, total, body);
        assert!(
            problems.iter().any(|p| p.contains(problem)),
            "{status} {body}: {problems:?}"
        );
    }
    let one = |body: &str| {
        contract.response_problems("GET", "/api/v2.0/projects/skaha", 200, &|_| None, body)
    };
    assert!(one(project).is_empty(), "{:?}", one(project));
    assert!(
        one("null")
            .iter()
            .any(|p| p.contains("body should be object")),
        "{:?}",
        one("null")
    );
}

#[test]
fn fake_harbor_answers_as_its_swagger_declares() {
    let fake = FakeHarbor::start(HarborConfig::new(registry()));
    let url = fake.url();
    // Everything arcade asks, as each account, answered again the same way.
    sync_as_everyone(&fake);
    let log = fake.requests();
    for request in &log {
        let status =
            assert_answer_in_contract(&url, &request.uri(), request.authorization.as_deref());
        assert_eq!(Some(status), request.status);
    }
    // And what the fake answers besides: single objects, other filters, and its refusals.
    let alice = format!(
        "Basic {}",
        base64_encode(format!("alice:{ALICE_PASSWORD}").as_bytes())
    );
    let casa = "/api/v2.0/projects/cirada/repositories/astro%252Fcasa/artifacts";
    let cases: [(&str, Option<&str>, u16); 15] = [
        ("/api/v2.0/systeminfo", None, 200),
        ("/api/v2.0/systeminfo", Some(&alice), 200),
        ("/api/v2.0/projects/skaha", None, 200),
        ("/api/v2.0/projects/secret", Some(&alice), 200),
        ("/api/v2.0/projects/secret", None, 401),
        (
            "/api/v2.0/projects?page_size=0&with_detail=true",
            Some(&alice),
            200,
        ),
        (
            "/api/v2.0/labels?scope=p&project_id=2&name=desktop",
            None,
            200,
        ),
        (&format!("{casa}?with_label=true&with_tag=true"), None, 200),
        (&format!("{casa}?q=tags%3Dnil"), None, 200),
        (&format!("{casa}/6.5.6?with_label=true"), None, 200),
        ("/api/v2.0/projects/nowhere/repositories", Some(&alice), 403),
        // Harbor lists a repository that does not exist as empty, without looking it up.
        (
            "/api/v2.0/projects/skaha/repositories/none/artifacts",
            None,
            200,
        ),
        // A nested name encoded once is split by Harbor's router: no such path.
        (
            "/api/v2.0/projects/cirada/repositories/astro%2Fcasa/artifacts",
            None,
            404,
        ),
        ("/api/v2.0/projects?page_size=500", None, 422),
        (&format!("{casa}?q=labels%3D12"), None, 400),
    ];
    for (path_and_query, authorization, status) in cases {
        assert_eq!(
            assert_answer_in_contract(&url, path_and_query, authorization),
            status,
            "{path_and_query}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The walk.

#[test]
fn anonymous_sync_builds_a_valid_menu_of_labelled_artifacts() {
    let home = Home::new();
    let fake = FakeHarbor::start(HarborConfig::new(registry()));
    let outcome = sync_json(&home, &fake);

    let registry = fake.registry();
    assert_eq!(menu_images(&home), public_images(&registry));
    assert_eq!(outcome["source"], "harbor");
    assert_eq!(outcome["images"], 6);
    assert_eq!(outcome["entries"], 5, "latest folds into 1.1.2");
    assert_eq!(outcome["projects"], 2);
    let entries = menu_entries(&home);
    let names: BTreeSet<(&str, &str)> = entries
        .iter()
        .map(|(menu, name, _)| (menu.as_str(), name.as_str()))
        .collect();
    assert!(
        names.contains(&("cirada", "astro/casa:6.5.6")),
        "{entries:#?}"
    );
    assert!(
        names.contains(&("skaha", "terminal:1.1.2 (latest)")),
        "{entries:#?}"
    );

    assert_eq!(
        desktop_files::validate_home(&home),
        public_images(&registry)
    );
    let menu = support::menu_as_read_by_pyxdg(&home);
    assert!(menu.starts_with("[Astro Software]\n"), "{menu}");
    assert!(menu.contains("  [cirada]\n"), "{menu}");
    assert!(menu.contains("astro/casa:6.5.6\t"), "{menu}");
    assert!(menu.contains("terminal:1.1.2 (latest)\t"), "{menu}");
    assert!(
        !menu.contains("[Other]"),
        "entries leaked into Other:\n{menu}"
    );

    // Anonymous: no credentials sent, no credential check, nothing private asked for.
    let log = fake.requests();
    assert!(log.iter().all(|r| r.authorization.is_none()), "{log:#?}");
    assert!(log.iter().all(|r| !r.path.contains("systeminfo")));
    assert!(log.iter().all(|r| !r.path.contains("/secret")));
    assert!(log.iter().all(|r| r.status == Some(200)), "{log:#?}");
}

#[test]
fn label_names_resolve_to_global_and_project_ids_and_their_union() {
    let home = Home::new();
    let fake = FakeHarbor::start(HarborConfig::new(registry()));
    sync(&home, &fake).ok();
    let registry = fake.registry();
    let images = menu_images(&home);
    // ds9 carries only cirada's own `desktop-app` label; topcat carries both, once in the menu.
    assert!(images.contains(&format!("{registry}/cirada/ds9:8.6")));
    assert_eq!(
        menu_entries(&home)
            .iter()
            .filter(|(_, name, _)| name == "topcat:4.9")
            .count(),
        1
    );
    // The fuzzy decoy `desktop-app-legacy` (13) and the `notebook` label are never used.
    assert!(
        !images
            .iter()
            .any(|image| image.contains("legacy") || image.contains("notebook"))
    );

    let labels: Vec<LoggedRequest> = fake.requests_to("/labels");
    let global: Vec<_> = labels
        .iter()
        .filter(|r| r.param("scope").as_deref() == Some("g"))
        .collect();
    assert_eq!(global.len(), 1);
    assert_eq!(global[0].param("name").as_deref(), Some("desktop-app"));
    let per_project: BTreeSet<String> = labels
        .iter()
        .filter(|r| r.param("scope").as_deref() == Some("p"))
        .map(|r| r.param("project_id").unwrap())
        .collect();
    assert_eq!(per_project.len(), 2, "one project-label lookup per project");

    let mut queries: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for request in artifact_requests(&fake) {
        assert_eq!(request.param("with_label").as_deref(), Some("true"));
        let project = request.path.split('/').nth(4).unwrap().to_owned();
        queries
            .entry(project)
            .or_default()
            .insert(request.param("q").unwrap());
    }
    assert_eq!(queries["skaha"], strings(&["labels=(12)"]));
    assert_eq!(queries["cirada"], strings(&["labels=(12)", "labels=(40)"]));
}

#[test]
fn a_label_found_only_by_fuzzy_match_is_a_clear_error() {
    let home = Home::new();
    let mut data = registry();
    data.labels = vec![Label::global(13, "desktop-app-legacy")];
    let fake = FakeHarbor::start(HarborConfig::new(data));
    let run = sync(&home, &fake).fails();
    let line = check_failure(&run, &fake.url());
    assert!(line.contains("no label named \"desktop-app\""), "{run}");
    assert!(artifact_requests(&fake).is_empty());
    assert!(!home.applications().exists(), "{}", home.listing());
}

#[test]
fn pages_through_more_than_a_hundred_projects_repositories_and_artifacts() {
    let home = Home::new();
    let mut data = HarborData {
        labels: vec![Label::global(1, "desktop-app")],
        ..HarborData::default()
    };
    let mut big = Project::public("big");
    for r in 0..130 {
        big = big.repository(
            Repository::new(&format!("app{r:03}")).artifact(Artifact::new(&["1.0"], &[1])),
        );
    }
    let mut hundred = Project::public("hundred");
    for r in 0..100 {
        hundred = hundred.repository(
            Repository::new(&format!("tool{r:03}")).artifact(Artifact::new(&["2.0"], &[1])),
        );
    }
    let mut deep = Repository::new("versions");
    for a in 0..150 {
        deep = deep.artifact(Artifact::new(&[&format!("0.{a}")], &[1]));
    }
    data.projects.push(big);
    data.projects.push(hundred);
    data.projects.push(Project::public("deep").repository(deep));
    for p in 0..117 {
        data.projects.push(Project::public(&format!("empty{p:03}")));
    }
    let fake = FakeHarbor::start(HarborConfig::new(data));
    let outcome = sync_json(&home, &fake);
    assert_eq!(outcome["entries"], 380, "{outcome:#}");
    assert_eq!(outcome["projects"], 3);
    let images = menu_images(&home);
    assert_eq!(images.len(), 380);
    let registry = fake.registry();
    for expected in [
        "big/app129:1.0",
        "big/app000:1.0",
        "hundred/tool099:2.0",
        "deep/versions:0.149",
        "deep/versions:0.0",
    ] {
        assert!(
            images.contains(&format!("{registry}/{expected}")),
            "{expected}"
        );
    }

    let log = fake.requests();
    assert!(log.iter().all(|r| r.status == Some(200)));
    for request in &log {
        assert_eq!(
            request.param("page_size").as_deref(),
            Some("100"),
            "every list asks for 100 items, never more: {}",
            request.uri()
        );
    }
    let pages = |path_end: &str| -> Vec<String> {
        log.iter()
            .filter(|r| r.path.ends_with(path_end))
            .map(|r| r.param("page").unwrap())
            .collect()
    };
    assert_eq!(pages("/api/v2.0/projects"), ["1", "2"]);
    assert_eq!(pages("/projects/big/repositories"), ["1", "2"]);
    assert_eq!(pages("/repositories/versions/artifacts"), ["1", "2"]);
    // Exactly 100 repositories: X-Total-Count says there is no second page to ask for.
    assert_eq!(pages("/projects/hundred/repositories"), ["1"]);
    assert_eq!(pages("/projects/empty000/repositories"), ["1"]);
}

#[test]
fn untagged_multi_tag_and_nested_repositories() {
    let home = Home::new();
    let fake = FakeHarbor::start(HarborConfig::new(registry()));
    let outcome = sync_json(&home, &fake);
    let registry = fake.registry();

    // The tags of a multi-tag artifact share one entry.
    let entries = menu_entries(&home);
    let terminal: BTreeSet<&str> = entries
        .iter()
        .filter(|(menu, _, _)| menu.starts_with("skaha"))
        .map(|(_, name, _)| name.as_str())
        .collect();
    assert_eq!(terminal, ["terminal:1.0", "terminal:1.1.2 (latest)"].into());

    // The untagged artifact is left out, and said so.
    let skipped: Vec<&str> = outcome["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert!(
        skipped[0].contains("cirada/astro/casa@sha256:") && skipped[0].contains("untagged"),
        "{skipped:?}"
    );
    assert!(!menu_images(&home).iter().any(|i| i.contains('@')));
    // The human summary warns about it on stderr.
    let run = sync(&home, &fake).ok();
    assert!(run.stderr.contains("untagged"), "{run}");

    // The nested repository was asked for encoded twice, and never got a 404.
    let nested: Vec<LoggedRequest> = fake.requests_to("/repositories/astro");
    assert!(!nested.is_empty());
    for request in &nested {
        assert!(
            request
                .path
                .contains("/repositories/astro%252Fcasa/artifacts"),
            "{}",
            request.path
        );
        assert_eq!(request.status, Some(200));
    }
    assert!(fake.requests().iter().all(|r| r.status == Some(200)));
    let casa = entries
        .iter()
        .find(|(_, _, image)| image.contains("casa"))
        .unwrap();
    assert_eq!(casa.1, "astro/casa:6.5.6");
    assert_eq!(casa.2, format!("{registry}/cirada/astro/casa:6.5.6"));
}

#[test]
fn private_projects_are_invisible_anonymously_and_visible_with_credentials() {
    let home = Home::new();
    let fake = FakeHarbor::start(HarborConfig::new(registry()));
    let vault = format!("{}/secret/vault:3.1", fake.registry());

    sync(&home, &fake).ok();
    assert!(!menu_images(&home).contains(&vault));

    let secret_file = home.write("secrets/harbor", &format!("{ALICE_PASSWORD}\n"));
    home.write_config(&format!(
        "[harbor]\nusername = \"alice\"\nsecret_file = \"{}\"\n",
        secret_file.display()
    ));
    fake.reset_stats();
    let outcome = sync_json(&home, &fake);
    let mut expected = public_images(&fake.registry());
    expected.insert(vault.clone());
    assert_eq!(menu_images(&home), expected);
    assert_eq!(outcome["projects"], 3);

    // The credentials were checked first, then sent with every request as Basic auth.
    let log = fake.requests();
    assert!(log[0].path.ends_with("/systeminfo"), "{log:#?}");
    for request in &log {
        assert_eq!(
            request.basic_credentials(),
            Some(("alice".to_owned(), ALICE_PASSWORD.to_owned())),
            "{}",
            request.uri()
        );
    }
}

#[test]
fn a_robot_account_from_the_environment() {
    let home = Home::new();
    let fake = FakeHarbor::start(HarborConfig::new(registry()));
    sync(&home, &fake)
        .env("ARCADE_HARBOR_USERNAME", "robot$secret+menu")
        .env("ARCADE_HARBOR_SECRET", ROBOT_SECRET)
        .ok();
    assert!(menu_images(&home).contains(&format!("{}/secret/vault:3.1", fake.registry())));
    let expected = format!(
        "Basic {}",
        base64_encode(format!("robot$secret+menu:{ROBOT_SECRET}").as_bytes())
    );
    assert!(
        fake.requests()
            .iter()
            .all(|r| r.authorization.as_deref() == Some(expected.as_str()))
    );
}

#[test]
fn an_oidc_cli_secret_works_because_only_whitelisted_endpoints_are_used() {
    let home = Home::new();
    let fake = FakeHarbor::start(HarborConfig::new(registry()));
    let secret_file = home.write("bob-cli-secret", OIDC_SECRET);
    sync(&home, &fake)
        .env("ARCADE_HARBOR_USERNAME", "bob")
        .env("ARCADE_HARBOR_SECRET_FILE", &secret_file)
        .ok();
    assert!(menu_images(&home).contains(&format!("{}/secret/vault:3.1", fake.registry())));
    assert!(fake.requests().iter().all(|r| r.status == Some(200)));
}

#[test]
fn secrets_never_appear_in_output_or_files() {
    let home = Home::new();
    let fake = FakeHarbor::start(HarborConfig::new(registry()));
    let secret_file = home.write("secrets/alice", ALICE_PASSWORD);
    home.write_config(&format!(
        "[harbor]\nusername = \"alice\"\nsecret_file = \"{}\"\n",
        secret_file.display()
    ));
    let outputs = [
        sync(&home, &fake).args(["-vv"]).ok(),
        sync(&home, &fake).args(["-vv", "--json"]).ok(),
        home.arcade().args(["config"]).ok(),
        home.arcade().args(["config", "--json"]).ok(),
        home.arcade().args(["-vv", "menu", "list"]).ok(),
        // From the environment, and with a wrong secret, which fails.
        sync(&home, &fake)
            .args(["-vv"])
            .env("ARCADE_HARBOR_SECRET", "wrong-S3cret-from-env")
            .fails(),
        home.arcade()
            .args(["config"])
            .env("ARCADE_HARBOR_SECRET", "wrong-S3cret-from-env")
            .ok(),
    ];
    for run in &outputs {
        for secret in [ALICE_PASSWORD, "wrong-S3cret-from-env"] {
            assert!(
                !run.stdout.contains(secret) && !run.stderr.contains(secret),
                "a secret leaked in arcade {}:\n{run}",
                run.args
            );
        }
    }
    let config = &outputs[2].stdout;
    assert!(config.contains("harbor_username = alice"), "{config}");
    assert!(config.contains("(set, from file"), "{config}");
    // -vv did log something, so the check above is not vacuous.
    assert!(!outputs[0].stderr.is_empty(), "{}", outputs[0]);
    for (path, bytes) in snapshot(&home) {
        if path.starts_with("secrets") {
            continue;
        }
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(ALICE_PASSWORD),
            "the secret is in {}",
            path.display()
        );
    }
}

#[test]
fn credentials_in_the_url_are_refused_and_never_printed() {
    let home = Home::new();
    let fake = FakeHarbor::start(HarborConfig::new(registry()));
    let url = fake
        .url()
        .replace("http://", &format!("http://alice:{ALICE_PASSWORD}@"));
    let run = home
        .arcade()
        .args(["menu", "sync", "--source", "harbor", "--url", &url, "-vv"])
        .fails();
    let line = run.error_line();
    assert!(
        line.contains("must not carry a user name or password") && line.contains(&fake.url()),
        "{run}"
    );
    assert!(
        !run.stderr.contains(ALICE_PASSWORD) && !run.stdout.contains(ALICE_PASSWORD),
        "{run}"
    );
    assert!(fake.requests().is_empty(), "nothing was sent");
}

#[test]
fn a_url_that_is_not_harbors_root_is_named_as_such() {
    let home = Home::new();
    let fake = FakeHarbor::start(HarborConfig::new(registry()));
    let url = format!("{}/harbor", fake.url());
    let run = home
        .arcade()
        .args(["menu", "sync", "--source", "harbor", "--url", &url])
        .fails();
    let line = check_failure(&run, &url);
    assert!(line.contains("is not a Harbor v2.0 API"), "{run}");
    assert_eq!(fake.requests().len(), 1, "it stops at the first 404");
}

/// The progress bar shows on a terminal during a long sync, and never in a pipe.
#[test]
fn a_progress_bar_shows_on_a_terminal_and_never_in_a_pipe() {
    let fake = FakeHarbor::start(HarborConfig {
        latency: Duration::from_millis(150),
        ..HarborConfig::new(HarborData::synthetic(4, 3, 1))
    });
    let piped = sync(&Home::new(), &fake).ok();
    assert!(!piped.stderr.contains("listing repositories"), "{piped}");
    assert!(
        piped.stderr.is_empty() || !piped.stderr.contains('\r'),
        "{piped}"
    );

    let home = Home::new();
    // A terminal has a TERM; on a dumb one (none), indicatif rightly draws nothing it cannot
    // erase.
    let terminal = sync(&home, &fake).env("TERM", "xterm").run_in_terminal();
    assert_eq!(terminal.code, Some(0), "{terminal}");
    assert!(
        terminal.stdout.contains("listing repositories"),
        "{terminal}"
    );
    assert!(
        terminal.stdout.contains("/12"),
        "twelve repositories to list: {terminal}"
    );
    assert_eq!(menu_images(&home).len(), 12);
}

#[test]
fn requests_run_concurrently_within_the_configured_bound() {
    for concurrency in [3, 7] {
        let home = Home::new();
        home.write_config(&format!("concurrency = {concurrency}\n"));
        let mut config = HarborConfig::new(HarborData::synthetic(4, 10, 1));
        config.latency = Duration::from_millis(25);
        let fake = FakeHarbor::start(config);
        let outcome = sync_json(&home, &fake);
        assert_eq!(outcome["entries"], 40);
        let max = fake.max_in_flight();
        assert!(
            max > 1 && max <= concurrency,
            "concurrency = {concurrency}: {max} requests were in flight at once"
        );
        if concurrency == 7 {
            assert!(max > 3, "a higher bound is used: at most {max} in flight");
        }
    }
}

#[test]
fn transient_errors_are_retried() {
    let home = Home::new();
    let fake = FakeHarbor::start(HarborConfig::new(registry()));
    fake.add_fault(Fault::first(2, FaultKind::Status(503)));
    fake.add_fault(Fault::first(1, FaultKind::Status(429)).on("/projects/skaha/repositories"));
    fake.add_fault(Fault::first(1, FaultKind::Status(500)).on("/artifacts"));
    fake.add_fault(Fault::first(1, FaultKind::Status(502)).on("/projects/cirada/repositories"));
    fake.add_fault(Fault::first(1, FaultKind::Truncate).on("/api/v2.0/projects?"));
    let outcome = sync_json(&home, &fake);
    assert_eq!(
        menu_images(&home),
        public_images(&fake.registry()),
        "{outcome:#}"
    );

    let log = fake.requests();
    let statuses: Vec<u16> = log.iter().filter_map(|r| r.status).collect();
    for status in [503, 429, 500, 502] {
        assert!(
            statuses.contains(&status),
            "{status} never happened: {statuses:?}"
        );
    }
    assert_eq!(statuses.iter().filter(|s| **s == 503).count(), 2);
    // The truncated answer was asked for again.
    let projects: Vec<&LoggedRequest> = log
        .iter()
        .filter(|r| r.path == "/api/v2.0/projects")
        .collect();
    assert_eq!(projects.len(), 2, "{projects:#?}");
    // `Retry-After: 1` was honoured.
    let limited: Vec<&LoggedRequest> = log
        .iter()
        .filter(|r| r.path == "/api/v2.0/projects/skaha/repositories")
        .collect();
    assert_eq!(limited[0].status, Some(429));
    assert!(
        limited[1].at.duration_since(limited[0].at) >= Duration::from_millis(950),
        "retried {:?} after a 429 with Retry-After: 1",
        limited[1].at.duration_since(limited[0].at)
    );
}

// ---------------------------------------------------------------------------------------------
// Failures keep the last good menu byte for byte and print one error line naming the URL.

/// A home with a good menu from `fake` (and `config`, if any), and its snapshot.
fn good_menu(fake: &FakeHarbor, config: &str) -> (Home, BTreeMap<PathBuf, Vec<u8>>) {
    let home = Home::new();
    if !config.is_empty() {
        home.write_config(config);
    }
    sync(&home, fake).ok();
    assert!(!menu_images(&home).is_empty());
    let before = snapshot(&home);
    (home, before)
}

#[test]
fn failure_server_down() {
    let fake = FakeHarbor::start(HarborConfig::new(registry()));
    let (home, before) = good_menu(&fake, "");
    let url = fake.url();
    drop(fake);
    let run = home
        .arcade()
        .args(["menu", "sync", "--source", "harbor", "--url", &url])
        .fails();
    let line = check_failure(&run, &url);
    assert!(line.contains("cannot connect"), "{run}");
    assert_eq!(line.matches(&url).count(), 1, "the URL once: {line}");
    assert_same_files(&before, &snapshot(&home));
}

#[test]
fn failure_timeout() {
    let fake = FakeHarbor::start(HarborConfig::new(registry()));
    let (home, before) = good_menu(&fake, "timeout_secs = 1\ndeadline_secs = 3\n");
    fake.add_fault(Fault::always(FaultKind::Hang).on("/repositories"));
    fake.reset_stats();
    // The request hangs for good: only the 3 s deadline ends the sync, and the message says so.
    let run = sync(&home, &fake).fails();
    let line = check_failure(&run, &fake.url());
    assert!(line.contains("within 3 s"), "{run}");
    assert_same_files(&before, &snapshot(&home));
    // Each request timed out after a second and was tried again.
    let hung = fake.requests_to("/projects/skaha/repositories");
    assert!(hung.len() >= 2, "{hung:#?}");
    assert!(hung.iter().all(|r| r.status.is_none()));
    assert!(hung[1].at.duration_since(hung[0].at) >= Duration::from_secs(1));
}

#[test]
fn a_hang_that_passes_is_retried_after_the_timeout() {
    let home = Home::new();
    home.write_config("timeout_secs = 1\n");
    let fake = FakeHarbor::start(HarborConfig::new(registry()));
    fake.add_fault(Fault::first(1, FaultKind::Hang).on("/projects/cirada/repositories"));
    let started = Instant::now();
    sync(&home, &fake).ok();
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(menu_images(&home), public_images(&fake.registry()));
}

#[test]
fn failure_persistent_server_error() {
    let fake = FakeHarbor::start(HarborConfig::new(registry()));
    let (home, before) = good_menu(&fake, "");
    fake.add_fault(Fault::always(FaultKind::Status(500)).on("/projects/skaha/repositories?"));
    fake.reset_stats();
    let run = sync(&home, &fake).fails();
    let line = check_failure(
        &run,
        &format!("{}/api/v2.0/projects/skaha/repositories", fake.url()),
    );
    assert!(line.contains("500"), "{run}");
    assert_same_files(&before, &snapshot(&home));
    let tries = fake.requests_to("/projects/skaha/repositories").len();
    assert!((2..=6).contains(&tries), "tried {tries} times");
}

#[test]
fn failure_invalid_json() {
    let fake = FakeHarbor::start(HarborConfig::new(registry()));
    let (home, before) = good_menu(&fake, "");
    fake.add_fault(Fault::always(FaultKind::InvalidJson).on("/repositories/ds9/artifacts"));
    let run = sync(&home, &fake).fails();
    let line = check_failure(
        &run,
        &format!("{}/api/v2.0/projects/cirada/repositories/ds9", fake.url()),
    );
    assert!(line.contains("not the JSON expected"), "{run}");
    assert_same_files(&before, &snapshot(&home));
}

#[test]
fn failure_truncated_body() {
    let fake = FakeHarbor::start(HarborConfig::new(registry()));
    let (home, before) = good_menu(&fake, "");
    fake.add_fault(Fault::always(FaultKind::Truncate).on("/labels"));
    let run = sync(&home, &fake).fails();
    let line = check_failure(&run, &format!("{}/api/v2.0/labels", fake.url()));
    assert!(line.contains("cut off"), "{run}");
    assert_same_files(&before, &snapshot(&home));
}

#[test]
fn failure_bad_credentials() {
    let fake = FakeHarbor::start(HarborConfig::new(registry()));
    let home = Home::new();
    let secret = home.write("secret", ALICE_PASSWORD);
    home.write_config(&format!(
        "[harbor]\nusername = \"alice\"\nsecret_file = \"{}\"\n",
        secret.display()
    ));
    sync(&home, &fake).ok();
    let before = snapshot(&home);
    let run = sync(&home, &fake)
        .env("ARCADE_HARBOR_SECRET", "not-alices-password")
        .fails();
    let line = check_failure(&run, &fake.url());
    assert!(
        line.contains("credentials") && line.contains("alice"),
        "{run}"
    );
    assert_same_files(&before, &snapshot(&home));
    // Nothing but the credential check was asked.
    let last = fake.requests().into_iter().last().unwrap();
    assert!(last.path.ends_with("/systeminfo"));
}

#[test]
fn failure_unauthorized_on_a_private_project() {
    let fake = FakeHarbor::start(HarborConfig::new(registry()));
    let home = Home::new();
    sync(&home, &fake)
        .env("ARCADE_HARBOR_USERNAME", "alice")
        .env("ARCADE_HARBOR_SECRET", ALICE_PASSWORD)
        .ok();
    let before = snapshot(&home);
    fake.add_fault(Fault::always(FaultKind::Status(401)).on("/projects/secret/"));
    let run = sync(&home, &fake)
        .env("ARCADE_HARBOR_USERNAME", "alice")
        .env("ARCADE_HARBOR_SECRET", ALICE_PASSWORD)
        .fails();
    let line = check_failure(&run, &format!("{}/api/v2.0/projects/secret/", fake.url()));
    assert!(line.contains("401"), "{run}");
    assert_same_files(&before, &snapshot(&home));
}

#[test]
fn failure_label_missing() {
    let fake = FakeHarbor::start(HarborConfig::new(registry()));
    let (home, before) = good_menu(&fake, "");
    let mut data = registry();
    data.labels.retain(|label| label.name != "desktop-app");
    fake.set_data(data);
    let run = sync(&home, &fake).fails();
    let line = check_failure(&run, &fake.url());
    assert!(line.contains("\"desktop-app\""), "{run}");
    assert_same_files(&before, &snapshot(&home));
}

#[test]
fn failure_empty_result_unless_allowed() {
    let fake = FakeHarbor::start(HarborConfig::new(registry()));
    let (home, before) = good_menu(&fake, "");
    let mut data = registry();
    for project in &mut data.projects {
        for repository in &mut project.repositories {
            for artifact in &mut repository.artifacts {
                artifact.labels.clear();
            }
        }
    }
    fake.set_data(data);
    let run = sync(&home, &fake).fails();
    let line = check_failure(&run, &fake.url());
    assert!(line.contains("--allow-empty"), "{run}");
    assert_same_files(&before, &snapshot(&home));

    let outcome = sync(&home, &fake)
        .args(["--allow-empty", "--json"])
        .ok()
        .json();
    assert_eq!(outcome["entries"], 0);
    assert!(menu_images(&home).is_empty());
    assert!(
        desktop_files::generated(&home)
            .iter()
            .all(|path| path.extension().is_some_and(|ext| ext == "directory"))
    );
}

// ---------------------------------------------------------------------------------------------
// TLS.

fn start_tls(pki: &TestPki) -> FakeHarbor {
    FakeHarbor::start_on(HarborConfig::new(registry()), pki.tls(false))
}

#[test]
fn https_with_a_private_ca_needs_ca_file() {
    let pki = TestPki::new();
    let fake = start_tls(&pki);
    assert!(fake.url().starts_with("https://127.0.0.1:"));

    let home = Home::new();
    let run = home
        .arcade()
        .args([
            "menu",
            "sync",
            "--source",
            "harbor",
            "--url",
            &fake.url(),
            "-vv",
        ])
        .fails();
    let line = check_failure(&run, &fake.url());
    assert!(
        line.contains("not trusted") && line.contains("ca_file"),
        "{run}"
    );
    assert_eq!(line.matches(&fake.url()).count(), 1, "the URL once: {line}");
    // Not retried: no amount of trying makes a certificate trusted.
    assert!(!run.stderr.contains("retrying"), "{run}");
    assert!(!home.applications().exists());
    assert!(
        fake.requests().is_empty(),
        "no request got through the handshake"
    );

    let ca = home.write("pki/ca.pem", &pki.ca_pem);
    home.write_config(&format!("ca_file = \"{}\"\n", ca.display()));
    sync(&home, &fake).ok();
    assert_eq!(menu_images(&home), public_images(&fake.registry()));

    // The CA also comes from the environment.
    let other = Home::new();
    let ca = other.write("ca.pem", &pki.ca_pem);
    sync(&other, &fake).env("ARCADE_CA_FILE", &ca).ok();
    assert_eq!(menu_images(&other), public_images(&fake.registry()));
}

// ---------------------------------------------------------------------------------------------
// Hostile registry data.

#[test]
fn hostile_names_stay_inside_the_menu() {
    // The OCI grammar, written here independently of arcade's.
    fn is_path_component(part: &str) -> bool {
        let b = part.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || b"._-".contains(c))
    }
    fn is_oci_tag(tag: &str) -> bool {
        let b = tag.as_bytes();
        !b.is_empty()
            && b.len() <= 128
            && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || b"._-".contains(c))
    }
    let data = HarborData::hostile();
    let long = "l".repeat(300);
    let fake = FakeHarbor::start(HarborConfig::new(data.clone()));
    let home = Home::new();
    let outcome = sync_json(&home, &fake);

    // What must be in the menu: every reference that is an image name by the OCI grammar (and
    // so fits a desktop entry unchanged); the rest is left out and reported.
    let registry = fake.registry();
    let mut expected = BTreeSet::new();
    let mut n_skipped = 0;
    for project in &data.projects {
        for repository in &project.repositories {
            for tag in &repository.artifacts[0].tags {
                let reference = format!("{registry}/{}/{}:{tag}", project.name, repository.name);
                let name_ok = format!("{}/{}", project.name, repository.name)
                    .split('/')
                    .all(is_path_component);
                if name_ok && is_oci_tag(tag) && reference.len() <= 1024 {
                    expected.insert(reference);
                } else {
                    n_skipped += 1;
                }
            }
        }
    }
    // Odd but valid names get in: nested paths, `.`/`_`/`-` inside, a 300-character name.
    for part in [
        "/odd-but_valid.name/nested/deeper/app:1.0",
        &format!("/{long}:1.0"),
    ] {
        assert!(expected.iter().any(|r| r.contains(part)), "{part}");
    }
    assert_eq!(menu_images(&home), expected);
    let skipped = outcome["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), n_skipped, "{outcome:#}");
    assert!(
        skipped
            .iter()
            .any(|s| s.as_str().unwrap().contains("new\\nline")),
        "{outcome:#}"
    );

    // Every file is valid, inside the XDG directories, and runs exactly the reference.
    assert_eq!(desktop_files::validate_home(&home), expected);
    let allowed = [
        ".local/share/applications/arcade/",
        ".local/share/desktop-directories/",
        ".local/share/icons/",
        ".local/share/arcade/",
        ".config/menus/applications-merged/",
        ".cache/arcade/",
    ];
    for path in snapshot(&home).keys() {
        let text = path.to_str().unwrap();
        assert!(
            allowed.iter().any(|prefix| text.starts_with(prefix)),
            "arcade wrote {text} outside its directories"
        );
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(
            name.len() <= 255
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-._".contains(c)),
            "unsafe file name {name:?}"
        );
    }
    assert!(!home.path().join("pwned").exists());
    let menu = support::menu_as_read_by_pyxdg(&home);
    assert!(!menu.contains("[Other]"), "{menu}");
    assert_eq!(
        menu.lines().filter(|line| line.contains('\t')).count(),
        expected.len(),
        "{menu}"
    );
}
