//! skaha as a catalog source (`GET /skaha/v1/image?type=…`): authentication, the type filter,
//! grouping by project, and failures that keep the last good menu. Also the stand-in's app
//! lifecycle, driven through arcade's skaha client, since the launch tests build on it.

use std::collections::BTreeSet;
use std::time::Duration;

use arcade::config::{Secret, SkahaAuth};
use arcade::skaha::Status;
use arcade::{http, skaha};

use crate::support::contract::Contract;
use crate::support::desktop_files;
use crate::support::fake_http::{Fault, FaultKind, LoggedRequest};
use crate::support::menu_state::{
    assert_same_files, check_failure, menu_entries, menu_images, snapshot,
};
use crate::support::skaha::{AppScript, FakeSkaha, SkahaConfig, SkahaImage};
use crate::support::tls::TestPki;
use crate::support::{self, Arcade, Home};

const SESSION_TOKEN: &str = "c2Vzc2lvbi10b2tlbg~c2lnbmF0dXJl";
const BEARER_TOKEN: &str = "bearer-T0ken-4kq8";

fn images() -> Vec<SkahaImage> {
    vec![
        SkahaImage::new(
            "images.canfar.net/skaha/terminal:1.0",
            &["desktop-app", "headless"],
        ),
        SkahaImage::new("images.canfar.net/skaha/terminal:1.1", &["desktop-app"]),
        SkahaImage::new(
            "images.canfar.net/cirada/astro/casa:6.5.6",
            &["desktop-app"],
        ),
        SkahaImage::new(
            "images.canfar.net/lsst/ds9:8.6",
            &["desktop-app", "notebook"],
        ),
        SkahaImage::new("images.canfar.net/skaha/notebook-scipy:0.2", &["notebook"]),
        SkahaImage::new("images.canfar.net/skaha/carta:4.0", &["carta"]),
        SkahaImage::new("no-tag-here", &["desktop-app"]),
    ]
}

fn desktop_apps() -> BTreeSet<String> {
    [
        "images.canfar.net/skaha/terminal:1.0",
        "images.canfar.net/skaha/terminal:1.1",
        "images.canfar.net/cirada/astro/casa:6.5.6",
        "images.canfar.net/lsst/ds9:8.6",
    ]
    .iter()
    .map(|id| (*id).to_owned())
    .collect()
}

fn fake() -> FakeSkaha {
    FakeSkaha::start(SkahaConfig {
        images: images(),
        session_tokens: vec![SESSION_TOKEN.to_owned()],
        bearer_tokens: vec![BEARER_TOKEN.to_owned()],
        ..SkahaConfig::default()
    })
}

fn sync(home: &Home, url: &str) -> Arcade {
    home.arcade()
        .args(["menu", "sync", "--source", "skaha", "--url", url])
}

/// A sync with the session token, as inside a platform desktop.
fn sync_in_session(home: &Home, fake: &FakeSkaha) -> Arcade {
    sync(home, &fake.root_url()).env("DESKTOP_SESSION_APP_TOKEN", SESSION_TOKEN)
}

#[test]
fn the_session_token_builds_a_menu_grouped_by_project() {
    let home = Home::new();
    let fake = fake();
    let outcome = sync_in_session(&home, &fake).args(["--json"]).ok().json();

    assert_eq!(outcome["source"], "skaha");
    assert_eq!(outcome["url"], fake.url(), "the URL completed with /skaha");
    assert_eq!(menu_images(&home), desktop_apps());
    let menus: BTreeSet<String> = menu_entries(&home)
        .into_iter()
        .map(|(menu, _, _)| menu.split('/').next().unwrap().to_owned())
        .collect();
    assert_eq!(menus, ["cirada", "lsst", "skaha"].map(str::to_owned).into());
    assert!(
        menu_entries(&home)
            .iter()
            .any(|(menu, name, _)| menu == "cirada" && name == "astro/casa:6.5.6")
    );
    let skipped = outcome["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{outcome:#}");
    assert!(skipped[0].as_str().unwrap().contains("no-tag-here"));

    assert_eq!(desktop_files::validate_home(&home), desktop_apps());
    let menu = support::menu_as_read_by_pyxdg(&home);
    assert!(menu.contains("  [lsst]\n    ds9:8.6\t"), "{menu}");
    assert!(!menu.contains("[Other]"), "{menu}");

    let requests = fake.requests();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    let request = &requests[0];
    assert_eq!(request.path, "/skaha/v1/image");
    assert_eq!(request.param("type").as_deref(), Some("desktop-app"));
    assert_eq!(request.skaha_token.as_deref(), Some(SESSION_TOKEN));
    assert_eq!(request.authorization, None);
    fake.assert_requests_in_contract();
}

#[test]
fn a_bearer_token_from_the_environment() {
    let home = Home::new();
    let fake = fake();
    sync(&home, &fake.url())
        .env("ARCADE_SKAHA_TOKEN", BEARER_TOKEN)
        .ok();
    assert_eq!(menu_images(&home), desktop_apps());
    let request = &fake.requests()[0];
    assert_eq!(
        request.authorization.as_deref(),
        Some(format!("Bearer {BEARER_TOKEN}").as_str())
    );
    assert_eq!(request.skaha_token, None);

    // Inside a desktop session the session token wins over a bearer token.
    fake.reset_stats();
    sync_in_session(&home, &fake)
        .env("ARCADE_SKAHA_TOKEN", BEARER_TOKEN)
        .ok();
    let request = &fake.requests()[0];
    assert_eq!(request.skaha_token.as_deref(), Some(SESSION_TOKEN));
    assert_eq!(request.authorization, None);
}

#[test]
fn a_token_file_from_the_config() {
    let home = Home::new();
    let fake = fake();
    let token = home.write("tokens/skaha", &format!("{BEARER_TOKEN}\n"));
    home.write_config(&format!("[skaha]\ntoken_file = \"{}\"\n", token.display()));
    sync(&home, &fake.url()).ok();
    assert_eq!(menu_images(&home), desktop_apps());
    assert_eq!(
        fake.requests()[0].authorization.as_deref(),
        Some(format!("Bearer {BEARER_TOKEN}").as_str())
    );
    let config = home.arcade().args(["config"]).ok();
    assert!(!config.stdout.contains(BEARER_TOKEN), "{config}");
    assert!(
        config.stdout.contains("bearer token (set, from file"),
        "{config}"
    );
}

/// A client certificate (a PEM with the certificate and its key, like CADC's proxy
/// certificates) authenticates to a skaha that demands one; without it the handshake fails, in
/// one clear line, and the menu stays.
#[test]
fn a_client_certificate_authenticates_over_tls() {
    let pki = TestPki::new();
    let fake = FakeSkaha::start_on(
        SkahaConfig {
            images: images(),
            certificate_callers: true,
            ..SkahaConfig::default()
        },
        pki.tls(true),
    );
    let url = fake.root_url();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let home = Home::new();
    let ca = home.write("pki/ca.pem", &pki.ca_pem);
    let cert = home.write("pki/cadcproxy.pem", &pki.client_pem);
    home.write_config(&format!(
        "ca_file = \"{}\"\n[skaha]\ncert_file = \"{}\"\n",
        ca.display(),
        cert.display()
    ));
    sync(&home, &url).ok();
    assert_eq!(menu_images(&home), desktop_apps());
    let requests = fake.requests();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    assert_eq!(requests[0].authorization, None);
    assert_eq!(requests[0].skaha_token, None);
    let config = home.arcade().args(["config", "--json"]).ok().json();
    assert_eq!(
        config["skaha_auth"],
        format!("client certificate {}", cert.display()),
        "{config:#}"
    );

    // Without the certificate, the handshake fails: one line naming skaha, the menu kept.
    home.write_config(&format!("ca_file = \"{}\"\n", ca.display()));
    let before = snapshot(&home);
    let run = sync(&home, &url).args(["-vv"]).fails();
    let line = run.error_line();
    assert!(line.contains(&url), "{run}");
    assert!(
        line.contains("client certificate") && line.contains("skaha.cert_file"),
        "{run}"
    );
    assert!(!run.stderr.contains("retrying"), "no retry can help: {run}");
    assert_same_files(&before, &snapshot(&home));
    assert_eq!(
        fake.requests().len(),
        1,
        "no request got through the handshake"
    );
}

#[test]
fn the_label_is_the_image_type() {
    let home = Home::new();
    let fake = fake();
    sync_in_session(&home, &fake)
        .args(["--label", "notebook"])
        .ok();
    assert_eq!(
        menu_images(&home),
        [
            "images.canfar.net/lsst/ds9:8.6",
            "images.canfar.net/skaha/notebook-scipy:0.2"
        ]
        .map(str::to_owned)
        .into()
    );
    assert_eq!(
        fake.requests()[0].param("type").as_deref(),
        Some("notebook")
    );

    // A type skaha does not know is its 400, reported with the URL; the menu stays.
    let before = snapshot(&home);
    let run = sync_in_session(&home, &fake)
        .args(["--label", "desktop-apps"])
        .fails();
    let line = check_failure(&run, &format!("{}/v1/image?type=desktop-apps", fake.url()));
    assert!(line.contains("400"), "{run}");
    assert_same_files(&before, &snapshot(&home));
}

#[test]
fn the_api_version_comes_from_the_config() {
    let home = Home::new();
    let fake = FakeSkaha::start(SkahaConfig {
        api_version: "v2".to_owned(),
        images: images(),
        session_tokens: vec![SESSION_TOKEN.to_owned()],
        ..SkahaConfig::default()
    });
    let run = sync_in_session(&home, &fake).fails();
    check_failure(&run, &format!("{}/v1/image", fake.url()));
    home.write_config("[skaha]\napi_version = \"v2\"\n");
    sync_in_session(&home, &fake).ok();
    assert_eq!(menu_images(&home), desktop_apps());
    assert_eq!(fake.requests().last().unwrap().path, "/skaha/v2/image");
}

#[test]
fn refused_credentials_are_a_clear_error_and_keep_the_menu() {
    let home = Home::new();
    let fake = fake();
    sync_in_session(&home, &fake).ok();
    let before = snapshot(&home);

    let run = sync(&home, &fake.url())
        .env("DESKTOP_SESSION_APP_TOKEN", "expired-t0ken")
        .fails();
    let line = check_failure(&run, &fake.url());
    assert!(line.contains("refused") && line.contains("401"), "{run}");
    assert!(line.contains("check the token"), "{run}");
    assert!(!run.stderr.contains("expired-t0ken"), "{run}");
    assert_same_files(&before, &snapshot(&home));

    let run = sync(&home, &fake.url()).fails();
    let line = check_failure(&run, &fake.url());
    assert!(line.contains("DESKTOP_SESSION_APP_TOKEN"), "{run}");
    assert_same_files(&before, &snapshot(&home));

    // A 403 from the service is reported the same way.
    fake.add_fault(Fault::always(FaultKind::Status(403)).on("/image"));
    let run = sync_in_session(&home, &fake).fails();
    let line = check_failure(&run, &fake.url());
    assert!(line.contains("403"), "{run}");
    assert_same_files(&before, &snapshot(&home));
}

#[test]
fn invalid_json_fails_and_keeps_the_menu() {
    let home = Home::new();
    let fake = fake();
    sync_in_session(&home, &fake).ok();
    let before = snapshot(&home);
    fake.add_fault(Fault::always(FaultKind::InvalidJson).on("/image"));
    let run = sync_in_session(&home, &fake).fails();
    let line = check_failure(&run, &format!("{}/v1/image", fake.url()));
    assert!(line.contains("not the JSON expected"), "{run}");
    assert_same_files(&before, &snapshot(&home));
}

#[test]
fn an_empty_image_list_keeps_the_menu() {
    let home = Home::new();
    let fake = fake();
    sync_in_session(&home, &fake).ok();
    let before = snapshot(&home);
    fake.set_images(Vec::new());
    let run = sync_in_session(&home, &fake).fails();
    let line = check_failure(&run, &fake.url());
    assert!(line.contains("--allow-empty"), "{run}");
    assert_same_files(&before, &snapshot(&home));
}

#[test]
fn a_slow_server_within_the_timeout_is_fine_and_a_slower_one_times_out() {
    let home = Home::new();
    home.write_config("timeout_secs = 1\ndeadline_secs = 3\n");
    let fake = fake();
    fake.set_latency(Duration::from_millis(400));
    sync_in_session(&home, &fake).ok();
    assert_eq!(menu_images(&home), desktop_apps());
    let before = snapshot(&home);

    fake.add_fault(Fault::always(FaultKind::Delay(Duration::from_secs(5))).on("/image"));
    fake.reset_stats();
    // Each answer takes 5 s, so only the 3 s deadline makes this fail (and says so).
    let run = sync_in_session(&home, &fake).fails();
    let line = check_failure(&run, &fake.url());
    assert!(line.contains("within"), "{run}");
    assert_same_files(&before, &snapshot(&home));
    let tries = fake.requests();
    assert!(
        tries.len() >= 2,
        "a timed-out request is tried again: {tries:#?}"
    );
    assert!(tries.iter().all(|r| r.status.is_none()));
}

#[test]
fn transient_failures_are_retried() {
    let home = Home::new();
    let fake = fake();
    fake.add_fault(Fault::first(1, FaultKind::Status(503)));
    fake.add_fault(Fault::first(1, FaultKind::Truncate));
    sync_in_session(&home, &fake).ok();
    assert_eq!(menu_images(&home), desktop_apps());
    let statuses: Vec<Option<u16>> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [Some(503), Some(200), Some(200)]);
}

// ---------------------------------------------------------------------------------------------
// The stand-in's desktop-app lifecycle, through arcade's skaha client.

fn client(fake: &FakeSkaha, token: &str) -> skaha::Skaha {
    let client = http::Client::new(&http::ClientConfig {
        timeout: Duration::from_secs(5),
        backoff: Some(Duration::from_millis(10)),
        ..http::ClientConfig::default()
    })
    .unwrap();
    skaha::Skaha::new(
        client,
        &fake.url(),
        "v1",
        SkahaAuth::SessionToken(Secret::new(token.to_owned(), "test".to_owned())),
    )
}

fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

#[test]
fn fake_skaha_runs_desktop_apps_through_their_lifecycle() {
    let fake = fake();
    let session = SkahaConfig::default().sessions[0].clone();
    let skaha = client(&fake, SESSION_TOKEN);
    block_on(async {
        let context = skaha.context().await.unwrap();
        assert_eq!(context.cores.as_ref().unwrap().default, Some(2.0));
        assert!(context.check("ram", Some(16.0)).is_ok());

        // Pending for two reads, then Running.
        let image = "images.canfar.net/skaha/terminal:1.0";
        let app_id = skaha
            .launch_app(&session, image, Some(4), Some(16))
            .await
            .unwrap();
        assert_eq!(app_id.len(), 3);
        assert!(app_id.chars().all(|c| c.is_ascii_alphanumeric()));
        let mut statuses = Vec::new();
        for _ in 0..3 {
            statuses.push(skaha.app(&session, &app_id).await.unwrap().status.unwrap());
        }
        assert_eq!(
            statuses,
            [Status::Pending, Status::Pending, Status::Running]
        );
        let listed = skaha.apps(&session).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].appid.as_deref(), Some(app_id.as_str()));
        assert_eq!(listed[0].image.as_deref(), Some(image));

        // Other scripts, chosen per test.
        fake.set_app_script(AppScript::FailedAfter(0));
        let failing = skaha.launch_app(&session, image, None, None).await.unwrap();
        assert_eq!(
            skaha.app(&session, &failing).await.unwrap().status,
            Some(Status::Failed)
        );
        fake.set_app_script(AppScript::PendingForever);
        let stuck = skaha.launch_app(&session, image, None, None).await.unwrap();
        for _ in 0..5 {
            let app = skaha.app(&session, &stuck).await.unwrap();
            assert_eq!(app.status, Some(Status::Pending));
        }
        fake.set_app_status(&stuck, "Terminating");
        let app = skaha.app(&session, &stuck).await.unwrap();
        assert_eq!(app.status, Some(Status::Terminating));

        // Stop, then it is gone.
        skaha.delete_app(&session, &app_id).await.unwrap();
        assert!(matches!(
            skaha.app(&session, &app_id).await,
            Err(skaha::Error::NoSuchApp { .. })
        ));
        assert!(matches!(
            skaha.delete_app(&session, &app_id).await,
            Err(skaha::Error::NoSuchApp { .. })
        ));

        // Options the context does not offer, and unknown sessions, are refused.
        assert!(
            skaha
                .launch_app(&session, image, Some(3), None)
                .await
                .is_err()
        );
        assert!(
            skaha
                .launch_app("nosuchid", image, None, None)
                .await
                .is_err()
        );

        // 401 and 403 on demand are refusals.
        fake.add_fault(Fault::first(1, FaultKind::Status(403)).on("/app"));
        assert!(matches!(
            skaha.apps(&session).await,
            Err(skaha::Error::Refused { .. })
        ));
        let outsider = client(&fake, "not-a-token");
        assert!(matches!(
            outsider.launch_app(&session, image, None, None).await,
            Err(skaha::Error::Refused { .. })
        ));
    });

    // The posted form, as the platform's launcher sends it.
    let apps = fake.apps();
    assert_eq!(apps.len(), 3);
    assert_eq!(
        apps[0].field("image"),
        Some("images.canfar.net/skaha/terminal:1.0")
    );
    assert_eq!(apps[0].field("cores"), Some("4"));
    assert_eq!(apps[0].field("ram"), Some("16"));
    assert!(apps[0].deleted);
    assert_eq!(apps[1].field("cores"), None);
    let post = fake
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .unwrap();
    assert_eq!(post.path, format!("/skaha/v1/session/{session}/app"));
    assert_eq!(
        post.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(post.skaha_token.as_deref(), Some(SESSION_TOKEN));
    assert!(
        post.body
            .contains("image=images.canfar.net%2Fskaha%2Fterminal%3A1.0"),
        "{}",
        post.body
    );
}

#[test]
fn the_contract_check_reads_skahas_form_fields_as_its_parameters() {
    let post = |body: &str| LoggedRequest {
        method: "POST".to_owned(),
        path: "/skaha/v1/session/abc123/app".to_owned(),
        query: String::new(),
        authorization: None,
        skaha_token: Some("token".to_owned()),
        content_type: Some("application/x-www-form-urlencoded".to_owned()),
        user_agent: None,
        body: body.to_owned(),
        status: Some(200),
        at: std::time::Instant::now(),
    };
    let contract = Contract::skaha();
    assert!(
        contract
            .request_problems(&post(
                "image=images.canfar.net%2Fskaha%2Fterminal%3A1.0&cores=2"
            ))
            .is_empty()
    );
    for (body, problem) in [
        ("image=x&gpus=1", "declares no query parameter \"gpus\""),
        ("cores=2", "the required parameter image is missing"),
    ] {
        let problems = contract.request_problems(&post(body));
        assert!(
            problems.iter().any(|p| p.contains(problem)),
            "{body}: {problems:?}"
        );
    }
    let mut put = post("image=x");
    put.method = "PUT".to_owned();
    let problems = contract.request_problems(&put);
    assert!(
        problems.iter().any(|p| p.contains("not an operation")),
        "{problems:?}"
    );
}
