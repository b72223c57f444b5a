//! The Harbor v2.0 catalog source: every artifact carrying a label, across all visible projects.
//!
//! The walk uses only endpoints on Harbor's OIDC-CLI-secret whitelist, so every kind of login
//! works: resolve the label name to its IDs (`/labels`, global and per project scope), page
//! through `/projects`, each project's `/repositories`, and each repository's `/artifacts` filtered
//! server-side with `q=labels=(ID)`. It copes with what real Harbor sends (arrays as `null`,
//! untagged artifacts, several tags per artifact, nested repository names that must be encoded
//! twice in the path) and with what it does (bad credentials silently treated as anonymous).
//! Only this module knows Harbor's JSON.
//! See: `shared/reference/harbor-api.md` and Harbor's `api/v2.0/swagger.yaml`.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;

use crate::catalog::{Catalog, Image};
use crate::config::HarborAuth;
use crate::http;

/// Harbor rejects `page_size` above 100 with 422.
const PAGE_SIZE: u64 = 100;
/// A listing that claims more pages than this is refused rather than walked forever.
const MAX_PAGES: u64 = 2_000;

/// Characters kept as they are in a path segment; everything else is percent-encoded.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Http(#[from] http::Error),
    #[error(
        "harbor at {url} did not accept the credentials of {username:?} (it treats bad credentials \
         as anonymous, so they were checked with /systeminfo): check the user name and secret"
    )]
    CredentialsIgnored { url: String, username: String },
    #[error("harbor at {url} has no label named {label:?} (neither global nor in any project)")]
    NoSuchLabel { url: String, label: String },
    #[error("{url} is not a Harbor v2.0 API: {detail}")]
    NotHarbor { url: String, detail: String },
    #[error(
        "the registry URL {url} carries credentials, which would be printed and logged: give the \
         user in harbor.username (or ARCADE_HARBOR_USERNAME) and the secret in a file named by \
         harbor.secret_file (or ARCADE_HARBOR_SECRET_FILE)"
    )]
    CredentialsInUrl { url: String },
    #[error(
        "{url} claims more than {} pages of results; refusing to walk them",
        MAX_PAGES
    )]
    TooManyPages { url: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Deserialize)]
struct Project {
    project_id: i64,
    name: String,
}

#[derive(Debug, Deserialize)]
struct Repository {
    name: String,
}

#[derive(Debug, Deserialize)]
struct Label {
    id: i64,
    name: String,
}

#[derive(Debug, Deserialize)]
struct Tag {
    name: String,
}

#[derive(Debug, Deserialize)]
struct Artifact {
    digest: Option<String>,
    tags: Option<Vec<Tag>>,
    labels: Option<Vec<Label>>,
}

#[derive(Debug, Deserialize)]
struct SystemInfo {
    harbor_version: Option<String>,
}

/// How a fetch reports progress (the CLI draws a bar with it; the daemon ignores it).
pub trait Progress: Send + Sync {
    fn found_repositories(&self, n: u64);
    fn finished_repository(&self);
}

impl Progress for () {
    fn found_repositories(&self, _: u64) {}
    fn finished_repository(&self) {}
}

/// A Harbor API client for one registry.
pub struct Harbor {
    client: http::Client,
    /// `https://host/api/v2.0`
    api: String,
    /// `host[:port]`, the registry part of image references.
    registry: String,
    auth: Option<HarborAuth>,
    permits: Semaphore,
}

impl Harbor {
    pub fn new(
        client: http::Client,
        url: &str,
        auth: Option<HarborAuth>,
        concurrency: usize,
    ) -> Result<Harbor> {
        let mut parsed = reqwest::Url::parse(url).map_err(|err| Error::NotHarbor {
            url: url.to_owned(),
            detail: err.to_string(),
        })?;
        if let Some(auth) = &auth
            && parsed.scheme() == "http"
        {
            tracing::warn!(
                user = auth.username,
                "sending Harbor credentials over plain http to {}; use https outside a trusted \
                 network",
                parsed.host_str().unwrap_or_default()
            );
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            // Both setters only fail for URLs that cannot have credentials in the first place.
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            return Err(Error::CredentialsInUrl {
                url: parsed.to_string(),
            });
        }
        let host = parsed.host_str().ok_or_else(|| Error::NotHarbor {
            url: url.to_owned(),
            detail: "the URL has no host".to_owned(),
        })?;
        let registry = match parsed.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        let root = url.trim_end_matches('/');
        let api = if root.ends_with("/api/v2.0") {
            root.to_owned()
        } else {
            format!("{root}/api/v2.0")
        };
        Ok(Harbor {
            client,
            api,
            registry,
            auth,
            permits: Semaphore::new(concurrency),
        })
    }

    async fn get<T: DeserializeOwned>(&self, url: &str) -> Result<(T, http::Response)> {
        // The semaphore is never closed, so acquiring cannot fail.
        let _permit = self.permits.acquire().await.expect("semaphore open");
        let auth = self.auth.clone();
        Ok(self
            .client
            .get_json(url, move |request| match &auth {
                Some(auth) => request.basic_auth(&auth.username, Some(auth.secret.expose())),
                None => request,
            })
            .await
            .map_err(|err| err.with_message(error_message))?)
    }

    /// Every item of a paged listing. `query` is the URL's query without paging parameters.
    async fn list_all<T: DeserializeOwned>(&self, path: &str, query: &str) -> Result<Vec<T>> {
        let mut items = Vec::new();
        let mut page = 1;
        loop {
            let separator = if query.is_empty() { "" } else { "&" };
            let url = format!(
                "{}{path}?{query}{separator}page={page}&page_size={PAGE_SIZE}",
                self.api
            );
            let (batch, response): (Option<Vec<T>>, _) = self.get(&url).await?;
            // Past the last page Harbor sends `[]`; a `null` list is treated the same.
            let batch = batch.unwrap_or_default();
            let n = batch.len() as u64;
            items.extend(batch);
            let total = response.header_u64("x-total-count");
            let done = match total {
                Some(total) => page * PAGE_SIZE >= total || n == 0,
                None => n < PAGE_SIZE,
            };
            if done {
                return Ok(items);
            }
            page += 1;
            if page > MAX_PAGES {
                return Err(Error::TooManyPages { url });
            }
        }
    }

    /// Fails when credentials are configured but Harbor ignores them.
    async fn check_credentials(&self) -> Result<()> {
        let Some(auth) = &self.auth else {
            return Ok(());
        };
        let url = format!("{}/systeminfo", self.api);
        let (info, _): (SystemInfo, _) = self.get(&url).await?;
        if info.harbor_version.is_none() {
            return Err(Error::CredentialsIgnored {
                url: self.api.clone(),
                username: auth.username.clone(),
            });
        }
        Ok(())
    }

    async fn label_ids(&self, label: &str, scope: &str) -> Result<BTreeSet<i64>> {
        let query = format!("scope={scope}&name={}", utf8_percent_encode(label, SEGMENT));
        let labels: Vec<Label> = self.list_all("/labels", &query).await?;
        // `name=` is a fuzzy match: keep exact names only.
        Ok(labels
            .into_iter()
            .filter(|found| found.name == label)
            .map(|found| found.id)
            .collect())
    }

    /// A 404 from an endpoint every Harbor v2.0 has means the URL is not Harbor's root.
    fn not_harbor(&self, err: Error, endpoint: &str) -> Error {
        match err {
            Error::Http(http::Error::Status { status, .. })
                if status == reqwest::StatusCode::NOT_FOUND =>
            {
                Error::NotHarbor {
                    url: self.api.clone(),
                    detail: format!(
                        "GET {endpoint} answered 404 Not Found; give the registry's root URL, \
                         e.g. https://images.canfar.net"
                    ),
                }
            }
            other => other,
        }
    }

    /// Lists every labelled artifact as catalog images.
    pub async fn fetch(
        self: Arc<Self>,
        label: &str,
        progress: Arc<dyn Progress>,
    ) -> Result<Catalog> {
        // The first requests are the ones that find out whether this is Harbor at all.
        self.check_credentials()
            .await
            .map_err(|err| self.not_harbor(err, "/systeminfo"))?;
        let global = self
            .label_ids(label, "g")
            .await
            .map_err(|err| self.not_harbor(err, "/labels"))?;
        let projects: Vec<Project> = self
            .list_all("/projects", "with_detail=false")
            .await
            .map_err(|err| self.not_harbor(err, "/projects"))?;

        let mut tasks = tokio::task::JoinSet::new();
        for project in projects {
            let harbor = Arc::clone(&self);
            let global = global.clone();
            let label = label.to_owned();
            let progress = Arc::clone(&progress);
            tasks.spawn(async move {
                harbor
                    .fetch_project(project, &label, global, progress.as_ref())
                    .await
            });
        }

        let mut catalog = Catalog::default();
        let mut any_label = !global.is_empty();
        while let Some(joined) = tasks.join_next().await {
            // A panicking task is a bug; surface it rather than lose its project silently.
            let project = joined.expect("harbor project task panicked")?;
            any_label |= project.had_label;
            catalog.images.extend(project.catalog.images);
            catalog.skipped.extend(project.catalog.skipped);
        }
        if !any_label {
            return Err(Error::NoSuchLabel {
                url: self.api.clone(),
                label: label.to_owned(),
            });
        }
        catalog.normalize();
        Ok(catalog)
    }

    async fn fetch_project(
        &self,
        project: Project,
        label: &str,
        global: BTreeSet<i64>,
        progress: &dyn Progress,
    ) -> Result<ProjectResult> {
        let project_scope = format!("p&project_id={}", project.project_id);
        let repositories_path = format!(
            "/projects/{}/repositories",
            utf8_percent_encode(&project.name, SEGMENT)
        );
        let (local, repositories) = tokio::try_join!(
            self.label_ids(label, &project_scope),
            self.list_all::<Repository>(&repositories_path, ""),
        )?;
        let ids: BTreeSet<i64> = global.union(&local).copied().collect();
        let mut result = ProjectResult {
            had_label: !local.is_empty(),
            catalog: Catalog::default(),
        };
        progress.found_repositories(repositories.len() as u64);
        if ids.is_empty() {
            for _ in &repositories {
                progress.finished_repository();
            }
            return Ok(result);
        }

        let mut pending = futures_util::stream::FuturesUnordered::new();
        for repository in &repositories {
            pending.push(self.fetch_repository(&project.name, &repository.name, &ids, label));
        }
        use futures_util::StreamExt as _;
        while let Some(repository) = pending.next().await {
            let catalog = repository?;
            progress.finished_repository();
            result.catalog.images.extend(catalog.images);
            result.catalog.skipped.extend(catalog.skipped);
        }
        Ok(result)
    }

    async fn fetch_repository(
        &self,
        project: &str,
        full_name: &str,
        ids: &BTreeSet<i64>,
        label: &str,
    ) -> Result<Catalog> {
        let mut catalog = Catalog::default();
        // `Repository.name` includes the project; the path wants the rest, encoded twice so
        // nested names survive the proxy's decoding (`a/b` → `a%252Fb`).
        let Some(repository) = full_name
            .strip_prefix(project)
            .and_then(|rest| rest.strip_prefix('/'))
            .filter(|rest| !rest.is_empty())
        else {
            catalog.skipped.push(format!(
                "repository {full_name:?} is not inside project {project:?}"
            ));
            return Ok(catalog);
        };
        let once = utf8_percent_encode(repository, SEGMENT).to_string();
        let twice = utf8_percent_encode(&once, SEGMENT).to_string();
        let path = format!(
            "/projects/{}/repositories/{twice}/artifacts",
            utf8_percent_encode(project, SEGMENT)
        );
        let mut seen_digests = HashSet::new();
        for id in ids {
            let query = format!("q=labels%3D%28{id}%29&with_label=true&with_tag=true");
            let artifacts: Vec<Artifact> = self.list_all(&path, &query).await?;
            for artifact in artifacts {
                let digest = artifact.digest.clone().unwrap_or_default();
                if !digest.is_empty() && !seen_digests.insert(digest.clone()) {
                    continue;
                }
                // Harbor ignores query keys it does not know; check the label ourselves too.
                if let Some(labels) = &artifact.labels
                    && !labels
                        .iter()
                        .any(|found| ids.contains(&found.id) || found.name == label)
                {
                    continue;
                }
                let tags = artifact.tags.unwrap_or_default();
                if tags.is_empty() {
                    catalog.skipped.push(format!(
                        "{}/{project}/{repository}@{digest}: untagged artifact",
                        self.registry
                    ));
                    continue;
                }
                for tag in tags {
                    let digest = (!digest.is_empty()).then_some(digest.as_str());
                    match Image::from_parts(&self.registry, project, repository, &tag.name, digest)
                    {
                        Ok(image) => catalog.images.push(image),
                        Err(err) => catalog
                            .skipped
                            .push(format!("{project}/{repository}:{:?}: {err}", tag.name)),
                    }
                }
            }
        }
        Ok(catalog)
    }
}

struct ProjectResult {
    had_label: bool,
    catalog: Catalog,
}

/// The message of Harbor's error envelope, `{"errors":[{"code":…,"message":…}]}`.
fn error_message(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Errors {
        errors: Option<Vec<ErrorItem>>,
    }
    #[derive(Deserialize)]
    struct ErrorItem {
        message: Option<String>,
    }
    let errors: Errors = serde_json::from_slice(body).ok()?;
    errors
        .errors?
        .into_iter()
        .find_map(|item| item.message)
        .map(|message| {
            message
                .chars()
                .filter(|c| !c.is_control())
                .take(200)
                .collect()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_harbor_error_envelopes() {
        assert_eq!(
            error_message(br#"{"errors":[{"code":"UNAUTHORIZED","message":"unauthorized"}]}"#)
                .as_deref(),
            Some("unauthorized")
        );
        assert_eq!(error_message(b"oops"), None);
    }

    #[test]
    fn encodes_nested_repositories_twice() {
        let once = utf8_percent_encode("astro/casa", SEGMENT).to_string();
        assert_eq!(once, "astro%2Fcasa");
        assert_eq!(
            utf8_percent_encode(&once, SEGMENT).to_string(),
            "astro%252Fcasa"
        );
    }

    #[test]
    fn reads_nulls_as_empty() {
        let artifact: Artifact = serde_json::from_str(
            r#"{"digest":"sha256:1","tags":null,"labels":null,"references":null,"extra":1}"#,
        )
        .unwrap();
        assert!(artifact.tags.is_none());
        assert!(artifact.labels.is_none());
    }

    #[test]
    fn refuses_credentials_in_the_url_without_repeating_them() {
        let client = http::Client::new(&http::ClientConfig {
            timeout: std::time::Duration::from_secs(1),
            ..Default::default()
        })
        .unwrap();
        let err = Harbor::new(client, "https://robot:hunter2@h.example/", None, 1)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("https://h.example/"), "{err}");
        assert!(!err.contains("hunter2") && !err.contains("robot"), "{err}");
    }

    #[test]
    fn registry_is_host_and_port() {
        let client = http::Client::new(&http::ClientConfig {
            timeout: std::time::Duration::from_secs(1),
            ..Default::default()
        })
        .unwrap();
        let harbor = Harbor::new(client.clone(), "http://127.0.0.1:8080/", None, 1).unwrap();
        assert_eq!(harbor.registry, "127.0.0.1:8080");
        assert_eq!(harbor.api, "http://127.0.0.1:8080/api/v2.0");
        let harbor = Harbor::new(client, "https://images.canfar.net", None, 1).unwrap();
        assert_eq!(harbor.registry, "images.canfar.net");
    }
}
