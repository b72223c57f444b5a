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
//!
//! Invariant: what a fetch holds is bounded whatever the server sends, so a sync stays within
//! its memory budget: `http` bounds the bodies in flight; a page holding more items than asked
//! for is refused while it is parsed, as are listings longer than [`MAX_LISTED`]; tags and
//! labels beyond [`MAX_PER_ARTIFACT`] are left out; over-long names are skipped, and the names
//! held stop at [`MAX_NAMES`]; at most [`PROJECTS_AT_ONCE`] projects and
//! [`REPOSITORIES_AT_ONCE`] repositories of each are walked at once; the catalog stops at the
//! [`Limits`] the caller sets; and the list of skipped images keeps [`MAX_NOTES`] short lines.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::de::{self, DeserializeOwned};
use serde::{Deserialize, Deserializer};
use tokio::sync::Semaphore;

use crate::catalog::{Catalog, Image};
use crate::config::HarborAuth;
use crate::http;

/// Harbor rejects `page_size` above 100 with 422.
const PAGE_SIZE: u64 = 100;
/// A listing (projects, a project's repositories, a repository's labelled artifacts) longer than
/// this is refused rather than walked: a registry that large is not a menu.
const MAX_LISTED: usize = 10_000;
/// Project and repository names longer than this are skipped whole (a shorter one too long for
/// a reference has its images skipped one by one, as any unusable reference is).
const MAX_NAME: usize = 4096;
/// Bytes of project and repository names (each counted with [`NAME_OVERHEAD`]) a fetch may hold:
/// the projects' names and, for the projects walked at once, their repositories' names.
const MAX_NAMES: usize = 8 << 20;
const NAME_OVERHEAD: usize = 64;
/// Tags and labels read per artifact; the rest are left out (tags come newest first).
const MAX_PER_ARTIFACT: usize = 100;
/// Projects walked at once, and repositories of each project walked at once: each walk waits
/// for its requests, and a registry listing many would otherwise hold them all in memory.
const PROJECTS_AT_ONCE: usize = 64;
const REPOSITORIES_AT_ONCE: usize = 16;
/// Lines kept about skipped images, each cut to [`NOTE_LEN`] bytes; the rest are counted.
const MAX_NOTES: usize = 1_000;
const NOTE_LEN: usize = 300;

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
    #[error("{url} lists more than {MAX_LISTED} items; refusing to walk them")]
    TooManyListed { url: String },
    #[error(
        "harbor at {url} lists more projects and repositories than a menu holds ({} MiB of \
         names); refusing them and keeping the last good menu",
        MAX_NAMES >> 20
    )]
    TooManyNames { url: String },
    #[error(
        "harbor at {url} lists more labelled images than a menu holds (at most {images} images, \
         {text_mib} MiB of names); refusing it and keeping the last good menu"
    )]
    TooManyImages {
        url: String,
        images: usize,
        text_mib: usize,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The most a fetched catalog may hold: images, and bytes of their references and digests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub images: usize,
    pub text: usize,
}

impl Limits {
    /// What an image counts against [`Limits::text`].
    pub fn text_of(image: &Image) -> usize {
        image.registry.len()
            + image.project.len()
            + image.repository.len()
            + image.tag.len()
            + image.digest.as_ref().map_or(0, String::len)
    }
}

/// A JSON array read into at most `MAX` items; the rest are counted in `dropped` without being
/// kept, so an answer of many tiny items costs no more memory than its first `MAX`. `null`
/// reads as empty, as Harbor sends empty arrays.
struct Capped<T, const MAX: usize> {
    items: Vec<T>,
    dropped: usize,
}

impl<T, const MAX: usize> Default for Capped<T, MAX> {
    fn default() -> Self {
        Capped {
            items: Vec::new(),
            dropped: 0,
        }
    }
}

impl<'de, T: Deserialize<'de>, const MAX: usize> Deserialize<'de> for Capped<T, MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Items<T, const MAX: usize>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>, const MAX: usize> de::Visitor<'de> for Items<T, MAX> {
            type Value = Capped<T, MAX>;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an array or null")
            }

            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Capped::default())
            }

            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Capped::default())
            }

            fn visit_some<D: Deserializer<'de>>(self, inner: D) -> Result<Self::Value, D::Error> {
                inner.deserialize_seq(self)
            }

            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut capped = Capped::default();
                while capped.items.len() < MAX {
                    match seq.next_element()? {
                        Some(item) => capped.items.push(item),
                        None => return Ok(capped),
                    }
                }
                while seq.next_element::<de::IgnoredAny>()?.is_some() {
                    capped.dropped += 1;
                }
                Ok(capped)
            }
        }

        deserializer.deserialize_option(Items::<T, MAX>(PhantomData))
    }
}

/// One page of a listing: at most a page's worth of items, or the answer is refused while it
/// is parsed (Harbor never sends more than asked for).
struct Page<T>(Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Page<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let capped = Capped::<T, { PAGE_SIZE as usize }>::deserialize(deserializer)?;
        if capped.dropped > 0 {
            return Err(de::Error::custom(format!(
                "a page of {PAGE_SIZE} holds {} items",
                PAGE_SIZE as usize + capped.dropped
            )));
        }
        Ok(Page(capped.items))
    }
}

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

#[derive(Deserialize)]
struct Artifact {
    digest: Option<String>,
    #[serde(default)]
    tags: Capped<Tag, MAX_PER_ARTIFACT>,
    /// `None` when the answer has no labels at all (Harbor leaves them out without
    /// `with_label=true`), as opposed to an empty list.
    labels: Option<Capped<Label, MAX_PER_ARTIFACT>>,
    /// What Harbor's image processor read from the image: its config, whose `Labels` are the
    /// image's own (absent for an index).
    #[serde(default)]
    extra_attrs: Option<ExtraAttrs>,
}

#[derive(Deserialize, Default)]
struct ExtraAttrs {
    #[serde(default)]
    config: Option<ImageConfig>,
}

#[derive(Deserialize, Default)]
struct ImageConfig {
    /// Any JSON: a label whose value is not a string is left out, not a reason to refuse the page.
    #[serde(default, rename = "Labels")]
    labels: Option<BTreeMap<String, serde_json::Value>>,
}

impl Artifact {
    /// The image's labels that arcade reads, as text.
    fn image_labels(&self) -> Option<BTreeMap<String, String>> {
        let labels = self
            .extra_attrs
            .as_ref()?
            .config
            .as_ref()?
            .labels
            .as_ref()?;
        let known: BTreeMap<String, String> = labels
            .iter()
            .filter(|(key, _)| crate::labels::KNOWN.contains(&key.as_str()))
            .filter_map(|(key, value)| Some((key.clone(), value.as_str()?.to_owned())))
            .collect();
        (!known.is_empty()).then_some(known)
    }
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

/// What a fetch has taken in so far, against its [`Limits`].
#[derive(Default)]
struct Taken {
    images: AtomicUsize,
    text: AtomicUsize,
    /// Bytes of names held, given back as projects are done.
    names: AtomicUsize,
    notes: AtomicUsize,
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
    /// Projects walked at once.
    projects_at_once: usize,
    limits: Limits,
    taken: Taken,
}

impl Harbor {
    pub fn new(
        client: http::Client,
        url: &str,
        auth: Option<HarborAuth>,
        concurrency: usize,
        limits: Limits,
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
            projects_at_once: concurrency.clamp(1, PROJECTS_AT_ONCE),
            limits,
            taken: Taken::default(),
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

    /// Hands every item of a paged listing to `each`, page by page, so only what `each` keeps
    /// stays in memory. `query` is the URL's query without paging parameters.
    async fn list_each<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &str,
        mut each: impl FnMut(T) -> Result<()>,
    ) -> Result<()> {
        let mut listed = 0;
        let mut page = 1;
        loop {
            let separator = if query.is_empty() { "" } else { "&" };
            let url = format!(
                "{}{path}?{query}{separator}page={page}&page_size={PAGE_SIZE}",
                self.api
            );
            let (Page(batch), response): (Page<T>, _) = self.get(&url).await?;
            let total = response.header_u64("x-total-count");
            // The body is not needed once parsed, and counts against the budget until dropped.
            drop(response);
            let n = batch.len() as u64;
            listed += batch.len();
            for item in batch {
                each(item)?;
            }
            let done = match total {
                Some(total) => page * PAGE_SIZE >= total || n == 0,
                None => n < PAGE_SIZE,
            };
            if done {
                return Ok(());
            }
            if listed >= MAX_LISTED {
                return Err(Error::TooManyListed { url });
            }
            page += 1;
        }
    }

    /// Every item of a paged listing, kept when `keep` returns it.
    async fn list_all<T: DeserializeOwned, U>(
        &self,
        path: &str,
        query: &str,
        mut keep: impl FnMut(T) -> Result<Option<U>>,
    ) -> Result<Vec<U>> {
        let mut items = Vec::new();
        self.list_each(path, query, |item| {
            items.extend(keep(item)?);
            Ok(())
        })
        .await?;
        Ok(items)
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
        // `name=` is a fuzzy match: keep exact names only.
        let ids = self
            .list_all("/labels", &query, |found: Label| {
                Ok((found.name == label).then_some(found.id))
            })
            .await?;
        Ok(ids.into_iter().collect())
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
        let mut skipped = Vec::new();
        let projects: Vec<Project> = self
            .list_all("/projects", "with_detail=false", |project: Project| {
                Ok(self
                    .hold_name(&project.name, &mut skipped)?
                    .then_some(project))
            })
            .await
            .map_err(|err| self.not_harbor(err, "/projects"))?;

        let mut catalog = Catalog {
            skipped,
            ..Catalog::default()
        };
        let mut any_label = !global.is_empty();
        let mut projects = projects.into_iter();
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            // A window of projects at a time: each task holds its project's repositories.
            while tasks.len() < self.projects_at_once {
                let Some(project) = projects.next() else {
                    break;
                };
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
            let Some(joined) = tasks.join_next().await else {
                break;
            };
            // A panicking task is a bug; surface it rather than lose its project silently.
            let project = joined.expect("harbor project task panicked")?;
            any_label |= project.had_label;
            catalog.absorb(project.catalog);
        }
        if !any_label {
            return Err(Error::NoSuchLabel {
                url: self.api.clone(),
                label: label.to_owned(),
            });
        }
        let unnoted = self
            .taken
            .notes
            .load(Ordering::Relaxed)
            .saturating_sub(MAX_NOTES);
        if unnoted > 0 {
            catalog
                .skipped
                .push(format!("… and {unnoted} more left out"));
        }
        catalog.normalize();
        Ok(catalog)
    }

    /// Whether a project or repository name is short enough to keep (noting it when it is
    /// not); a kept name counts against [`MAX_NAMES`] until [`Harbor::release_names`].
    fn hold_name(&self, name: &str, skipped: &mut Vec<String>) -> Result<bool> {
        if name.len() > MAX_NAME {
            self.note(
                skipped,
                format!("{name:?}: a name longer than {MAX_NAME} bytes"),
            );
            return Ok(false);
        }
        let size = name.len() + NAME_OVERHEAD;
        if self.taken.names.fetch_add(size, Ordering::Relaxed) + size > MAX_NAMES {
            return Err(Error::TooManyNames {
                url: self.api.clone(),
            });
        }
        Ok(true)
    }

    /// Gives back what [`Harbor::hold_name`] counted for `names`, once they are dropped.
    fn release_names<'n>(&self, names: impl IntoIterator<Item = &'n String>) {
        let size: usize = names
            .into_iter()
            .map(|name| name.len() + NAME_OVERHEAD)
            .sum();
        self.taken.names.fetch_sub(size, Ordering::Relaxed);
    }

    /// Adds a line about something left out, cut short, while fewer than [`MAX_NOTES`] were.
    fn note(&self, skipped: &mut Vec<String>, mut text: String) {
        if self.taken.notes.fetch_add(1, Ordering::Relaxed) >= MAX_NOTES {
            return;
        }
        if text.len() > NOTE_LEN {
            let mut end = NOTE_LEN;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
            text.push('…');
        }
        skipped.push(text);
    }

    /// Counts an image against the fetch's [`Limits`].
    fn take(&self, image: &Image) -> Result<()> {
        let text = Limits::text_of(image);
        let images = self.taken.images.fetch_add(1, Ordering::Relaxed) + 1;
        let total = self.taken.text.fetch_add(text, Ordering::Relaxed) + text;
        if images > self.limits.images || total > self.limits.text {
            return Err(Error::TooManyImages {
                url: self.api.clone(),
                images: self.limits.images,
                text_mib: self.limits.text >> 20,
            });
        }
        Ok(())
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
        let mut result = ProjectResult {
            had_label: false,
            catalog: Catalog::default(),
        };
        let mut notes = Vec::new();
        let (local, repositories) = tokio::try_join!(
            self.label_ids(label, &project_scope),
            self.list_all(&repositories_path, "", |repository: Repository| {
                Ok(self
                    .hold_name(&repository.name, &mut notes)?
                    .then_some(repository.name))
            }),
        )?;
        result.catalog.skipped = notes;
        let ids: BTreeSet<i64> = global.union(&local).copied().collect();
        result.had_label = !local.is_empty();
        progress.found_repositories(repositories.len() as u64);
        if ids.is_empty() {
            for _ in &repositories {
                progress.finished_repository();
            }
            self.release_names(&repositories);
            return Ok(result);
        }

        use futures_util::StreamExt as _;
        // By index: a closure taking a borrowed name would make the future not provably `Send`.
        let walks = (0..repositories.len())
            .map(|n| self.fetch_repository(&project.name, &repositories[n], &ids, label));
        let mut walks = futures_util::stream::iter(walks).buffer_unordered(REPOSITORIES_AT_ONCE);
        while let Some(repository) = walks.next().await {
            let catalog = repository?;
            progress.finished_repository();
            result.catalog.absorb(catalog);
        }
        drop(walks);
        self.release_names(&repositories);
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
            self.note(
                &mut catalog.skipped,
                format!("repository {full_name:?} is not inside project {project:?}"),
            );
            return Ok(catalog);
        };
        let once = utf8_percent_encode(repository, SEGMENT).to_string();
        let twice = utf8_percent_encode(&once, SEGMENT).to_string();
        let path = format!(
            "/projects/{}/repositories/{twice}/artifacts",
            utf8_percent_encode(project, SEGMENT)
        );
        let mut seen_digests = HashSet::new();
        let mut labels_read = crate::catalog::LabelsRead::default();
        for id in ids {
            let query = format!("q=labels%3D%28{id}%29&with_label=true&with_tag=true");
            self.list_each(&path, &query, |artifact: Artifact| {
                self.add_artifact(
                    artifact,
                    (project, repository),
                    (ids, label),
                    (&mut seen_digests, &mut labels_read),
                    &mut catalog,
                )
            })
            .await?;
        }
        Ok(catalog)
    }

    /// Adds an artifact's tags to `catalog` as images, once per digest, if it carries the label.
    fn add_artifact(
        &self,
        artifact: Artifact,
        (project, repository): (&str, &str),
        (ids, label): (&BTreeSet<i64>, &str),
        (seen_digests, labels_read): (&mut HashSet<String>, &mut crate::catalog::LabelsRead),
        catalog: &mut Catalog,
    ) -> Result<()> {
        let image_labels = artifact.image_labels();
        let digest = artifact.digest.unwrap_or_default();
        if !digest.is_empty() && !seen_digests.insert(digest.clone()) {
            return Ok(());
        }
        // Harbor ignores query keys it does not know; check the label ourselves too.
        if let Some(labels) = &artifact.labels
            && !labels
                .items
                .iter()
                .any(|found| ids.contains(&found.id) || found.name == label)
        {
            return Ok(());
        }
        let tags = artifact.tags;
        if tags.items.is_empty() {
            let text = format!(
                "{}/{project}/{repository}@{digest}: untagged artifact",
                self.registry
            );
            self.note(&mut catalog.skipped, text);
            return Ok(());
        }
        if tags.dropped > 0 {
            let text = format!(
                "{}/{project}/{repository}@{digest}: {} tags beyond the newest {MAX_PER_ARTIFACT}",
                self.registry, tags.dropped
            );
            self.note(&mut catalog.skipped, text);
        }
        let digest = (!digest.is_empty()).then_some(digest.as_str());
        // The labels are the artifact's: read (and their problems told) once, for its first tag.
        let mut about: Option<Option<std::sync::Arc<crate::labels::About>>> = None;
        for tag in tags.items {
            match Image::from_parts(&self.registry, project, repository, &tag.name, digest) {
                Ok(mut image) => {
                    if let Some(labels) = &image_labels {
                        match &about {
                            Some(read) => image.about.clone_from(read),
                            None => {
                                labels_read.apply(catalog, &mut image, labels);
                                about = Some(image.about.clone());
                            }
                        }
                    }
                    self.take(&image)?;
                    catalog.images.push(image);
                }
                Err(err) => {
                    let text = format!("{project}/{repository}:{:?}: {err}", tag.name);
                    self.note(&mut catalog.skipped, text);
                }
            }
        }
        Ok(())
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
        assert!(artifact.tags.items.is_empty());
        assert!(artifact.labels.is_none());
    }

    const LIMITS: Limits = Limits {
        images: 10,
        text: 1000,
    };

    #[test]
    fn pages_and_lists_are_read_only_to_their_caps() {
        let page: Page<Repository> =
            serde_json::from_str(r#"[{"name":"a"},{"name":"b","extra":[1,2]}]"#).unwrap();
        assert_eq!(page.0.len(), 2);
        let page: Page<Repository> = serde_json::from_str("null").unwrap();
        assert!(page.0.is_empty());
        // Many tiny items are refused while they are parsed, not after.
        let many = format!("[{}{{\"name\":\"x\"}}]", "{\"name\":\"x\"},".repeat(100));
        let err = serde_json::from_str::<Page<Repository>>(&many)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("holds 101 items"), "{err}");
        let tags = (0..150)
            .map(|n| format!("{{\"name\":\"{n}\"}}"))
            .collect::<Vec<_>>()
            .join(",");
        let artifact: Artifact =
            serde_json::from_str(&format!(r#"{{"digest":"d","tags":[{tags}],"labels":[]}}"#))
                .unwrap();
        assert_eq!(artifact.tags.items.len(), MAX_PER_ARTIFACT);
        assert_eq!(artifact.tags.items[0].name, "0", "the newest are kept");
        assert_eq!(artifact.tags.dropped, 50);
        assert!(
            artifact
                .labels
                .is_some_and(|labels| labels.items.is_empty())
        );
    }

    #[test]
    fn refuses_credentials_in_the_url_without_repeating_them() {
        let client = http::Client::new(&http::ClientConfig {
            timeout: std::time::Duration::from_secs(1),
            ..Default::default()
        })
        .unwrap();
        let err = Harbor::new(client, "https://robot:hunter2@h.example/", None, 1, LIMITS)
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
        let harbor =
            Harbor::new(client.clone(), "http://127.0.0.1:8080/", None, 1, LIMITS).unwrap();
        assert_eq!(harbor.registry, "127.0.0.1:8080");
        assert_eq!(harbor.api, "http://127.0.0.1:8080/api/v2.0");
        let harbor = Harbor::new(client, "https://images.canfar.net", None, 1, LIMITS).unwrap();
        assert_eq!(harbor.registry, "images.canfar.net");
    }
}
