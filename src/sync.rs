//! One menu sync: fetch the catalog from the configured source, keep it as the last good
//! catalog, and install the menu it describes.
//!
//! Invariant: the installed menu changes only after a complete, non-empty catalog was fetched
//! (or read from the cache with `--offline`); any failure before that leaves every file as it was.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::catalog::{self, Catalog, Provenance};
use crate::config::{Settings, SkahaAuth, Source};
use crate::harbor::{self, Harbor, Progress};
use crate::menu::{self, install};
use crate::{http, skaha};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Harbor(#[from] harbor::Error),
    #[error(transparent)]
    Skaha(#[from] skaha::Error),
    #[error(transparent)]
    Http(#[from] http::Error),
    #[error(transparent)]
    Catalog(#[from] catalog::Error),
    #[error(transparent)]
    Install(#[from] install::Error),
    #[error("{url} did not finish listing images within {seconds} s")]
    Deadline { url: String, seconds: u64 },
    #[error(
        "{url} lists no images labelled {label:?}; keeping the last good menu \
         (pass --allow-empty to empty it)"
    )]
    Empty { url: String, label: String },
    #[error(
        "no saved catalog at {path} yet: run `arcade menu sync` once while the registry is reachable"
    )]
    NoCache { path: PathBuf },
    #[error(
        "{url} lists {images} images ({text_kib} KiB of names), more than a menu holds (at most \
         {max_images} images, {max_text_mib} MiB of names); keeping the last good menu"
    )]
    TooLarge {
        url: String,
        images: usize,
        text_kib: usize,
        max_images: usize,
        max_text_mib: usize,
    },
    #[error("failed to find the arcade binary for menu entries: {0}")]
    Launcher(std::io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Whether the source could not be reached at all (refused, unanswered, too slow), where
    /// the last good catalog can stand in.
    pub fn is_unreachable(&self) -> bool {
        let http = match self {
            Error::Deadline { .. } => return true,
            Error::Http(err)
            | Error::Harbor(harbor::Error::Http(err))
            | Error::Skaha(skaha::Error::Http(err)) => err,
            _ => return false,
        };
        matches!(
            http,
            http::Error::Connect { .. } | http::Error::Timeout { .. }
        )
    }
}
/// The largest catalog a sync takes, whatever its source sends: images, and bytes of their
/// references and digests. It keeps a whole sync, fetching, planning and writing, within 100 MB
/// (a re-sync of 30,000 entries holds the old menu's tree and records and the new one's), where
/// a hostile registry could otherwise list images without end. Real registries list hundreds.
pub const LIMITS: harbor::Limits = harbor::Limits {
    images: 30_000,
    text: 4 << 20,
};

/// How to run a sync.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mode {
    /// Build from the last good catalog instead of the source.
    pub offline: bool,
    /// Decide everything, write nothing.
    pub dry_run: bool,
    /// Give up at once when another sync holds the lock, instead of waiting for it (the desktop
    /// startup hook must not wait).
    pub no_lock_wait: bool,
}

/// What a sync did, for the CLI summary, `--json` and the daemon's `Refresh()`.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub source: String,
    pub url: String,
    pub offline: bool,
    pub images: usize,
    pub entries: usize,
    pub projects: usize,
    pub written: usize,
    pub unchanged: usize,
    pub removed: usize,
    /// Entries that were not in the previous menu, and entries no longer in it.
    pub added_entries: usize,
    pub removed_entries: usize,
    /// With `--dry-run`: the references of the entries the sync would add and remove.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub would_add: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub would_remove: Vec<String>,
    pub skipped: Vec<String>,
    pub missing_shortcuts: Vec<String>,
    pub kept_modified: Vec<PathBuf>,
    pub skipped_foreign: Vec<PathBuf>,
    pub warnings: Vec<String>,
    pub dry_run: bool,
    pub seconds: f64,
    /// Seconds since the Unix epoch when the catalog was fetched.
    pub fetched_at: u64,
}

/// Builds the HTTP client the settings ask for (timeouts, CA bundle, client certificate).
pub fn http_client(settings: &Settings) -> Result<http::Client> {
    Ok(http::Client::new(&http::ClientConfig {
        timeout: settings.timeout,
        ca_file: settings.ca_file.clone(),
        identity_file: match &settings.skaha.auth {
            SkahaAuth::Certificate(path) if settings.source == Source::Skaha => Some(path.clone()),
            _ => None,
        },
        backoff: None,
    })?)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// Fetches the catalog from the configured source, within the settings' deadline.
pub async fn fetch(
    settings: &Settings,
    progress: Arc<dyn Progress>,
) -> Result<(Catalog, Provenance)> {
    let provenance = Provenance {
        source: settings.source.to_string(),
        url: match settings.source {
            Source::File => settings
                .catalog
                .as_ref()
                .map(|path| path.display().to_string())
                .unwrap_or_default(),
            _ => settings.url.clone(),
        },
        label: settings.label.clone(),
        fetched_at: now(),
    };
    let work = async {
        match settings.source {
            Source::Harbor => {
                let harbor = Arc::new(Harbor::new(
                    http_client(settings)?,
                    &settings.url,
                    settings.harbor_auth.clone(),
                    settings.concurrency,
                    LIMITS,
                )?);
                Ok::<_, Error>(harbor.fetch(&settings.label, progress).await?)
            }
            Source::Skaha => {
                let skaha = skaha::Skaha::new(
                    http_client(settings)?,
                    &settings.url,
                    &settings.skaha.api_version,
                    settings.skaha.auth.clone(),
                );
                Ok(skaha.images(&settings.label).await?)
            }
            Source::File => {
                // `resolve` guarantees a catalog path for the file source.
                let path = settings
                    .catalog
                    .as_deref()
                    .unwrap_or(std::path::Path::new(""));
                Ok(catalog::read_file(path, Some(&settings.label))?.0)
            }
        }
    };
    let catalog = tokio::time::timeout(settings.deadline, work)
        .await
        .map_err(|_| Error::Deadline {
            url: provenance.url.clone(),
            seconds: settings.deadline.as_secs(),
        })??;
    check_size(&catalog, &provenance.url)?;
    if catalog.images.is_empty() && !settings.allow_empty {
        return Err(Error::Empty {
            url: provenance.url,
            label: settings.label.clone(),
        });
    }
    let mut catalog = catalog;
    crate::remote_icons::resolve(
        &mut catalog,
        &http_client(settings)?,
        &settings.dirs.cache_home.join("arcade/icons"),
    )
    .await;
    Ok((catalog, provenance))
}

/// Refuses a catalog beyond [`LIMITS`] (Harbor's fetch stops at them already; skaha and files
/// are checked here).
fn check_size(catalog: &Catalog, url: &str) -> Result<()> {
    let text: usize = catalog.images.iter().map(harbor::Limits::text_of).sum();
    if catalog.images.len() > LIMITS.images || text > LIMITS.text {
        return Err(Error::TooLarge {
            url: url.to_owned(),
            images: catalog.images.len(),
            text_kib: text >> 10,
            max_images: LIMITS.images,
            max_text_mib: LIMITS.text >> 20,
        });
    }
    Ok(())
}

/// Reads the last good catalog.
pub fn read_cache(settings: &Settings) -> Result<(Catalog, Provenance)> {
    read_cache_at(settings.dirs.cached_catalog(), &settings.label)
}

/// [`read_cache`] from the cache at `path`, naming `label` when the file does not.
fn read_cache_at(path: PathBuf, label: &str) -> Result<(Catalog, Provenance)> {
    if let Some(dir) = path.parent() {
        install::check_own_dir(dir)?;
    }
    // Read as arcade's own file: a FIFO or a link there is refused instead of waited on.
    let text = match install::read_own(&path) {
        Ok(bytes) => String::from_utf8(bytes).map_err(|err| catalog::Error::Read {
            path: path.display().to_string(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, err),
        })?,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NoCache { path });
        }
        Err(source) => {
            return Err(catalog::Error::Read {
                path: path.display().to_string(),
                source,
            }
            .into());
        }
    };
    let (catalog, provenance) = catalog::parse_file(&text, &path, None)?;
    drop(text);
    let provenance = provenance.unwrap_or(Provenance {
        source: "cache".to_owned(),
        url: path.display().to_string(),
        label: label.to_owned(),
        fetched_at: 0,
    });
    Ok((catalog, provenance))
}

/// The menu options from the settings, with entries running this very binary.
pub fn menu_options(settings: &Settings) -> Result<menu::Options> {
    let launcher = std::env::current_exe().map_err(Error::Launcher)?;
    // Exec is an ASCII string in which readers disagree about `%%`; a binary at such a path
    // cannot be written into a menu entry faithfully.
    let text = launcher.to_string_lossy();
    if let Some(c) = text
        .chars()
        .find(|c| !c.is_ascii() || c.is_ascii_control() || *c == '%')
    {
        return Err(Error::Launcher(std::io::Error::other(format!(
            "its path {text:?} contains {c:?}, which a desktop entry's Exec cannot carry; \
             install arcade under another path"
        ))));
    }
    Ok(menu::Options {
        launcher,
        submenu_threshold: settings.menu.submenu_threshold,
        // Without a desktop folder there is nowhere to put shortcuts; the sync says so.
        shortcuts: if settings.menu.desktop_dir.is_some() {
            settings.menu.shortcuts.clone()
        } else {
            Vec::new()
        },
        wm_classes: settings.menu.wm_classes.clone(),
        presets: presets(settings),
        gpus: gpus_offered(settings),
        mime_types: settings.menu.mime_types.clone(),
        mime_defaults: settings.menu.mime_defaults.clone(),
    })
}

/// The site's resource presets, with one more that has a GPU when the backend offers GPUs and
/// none of them has one.
fn presets(settings: &Settings) -> Vec<crate::labels::Resources> {
    let mut presets: Vec<crate::labels::Resources> = settings
        .menu
        .presets
        .iter()
        .filter_map(|preset| crate::labels::Resources::parse_slashed(preset))
        .collect();
    if gpus_offered(settings) && !presets.iter().any(|preset| preset.gpus > 0) {
        let biggest = presets
            .iter()
            .max()
            .copied()
            .unwrap_or(crate::labels::Resources {
                cores: 8,
                ram_gb: 32,
                gpus: 0,
            });
        presets.push(crate::labels::Resources { gpus: 1, ..biggest });
    }
    presets
}

/// Whether the launch backend can give an app a GPU: a local engine on a host with an NVIDIA
/// device (skaha takes no GPU count for desktop-apps).
fn gpus_offered(settings: &Settings) -> bool {
    settings.launch.backend != crate::config::Backend::Skaha
        && std::path::Path::new("/dev/nvidia0").exists()
}

/// Where the settings install the menu.
pub fn target(settings: &Settings) -> install::Target {
    install::Target {
        data: settings.dirs.data_home.clone(),
        config: settings.dirs.config_home.clone(),
        // Unused when there is no desktop folder: no shortcut is planned then.
        desktop: settings
            .menu
            .desktop_dir
            .clone()
            .unwrap_or_else(|| settings.dirs.home.join("Desktop")),
        state: settings.dirs.data_home.join("arcade"),
    }
}

/// Runs a whole sync: fetch (or read the cache), save the catalog, install the menu.
pub async fn run(settings: &Settings, mode: Mode, progress: Arc<dyn Progress>) -> Result<Outcome> {
    let started = std::time::Instant::now();
    // Offline, the cache is read in the blocking task below, by the thread that then plans from
    // it: memory freed there is reused by the plan instead of staying with another thread's heap.
    let fetched = if mode.offline {
        None
    } else {
        Some(fetch(settings, progress).await?)
    };
    let cache_path = settings.dirs.cached_catalog();
    let label = settings.label.clone();
    let options = menu_options(settings);
    let target = target(settings);
    // Reading, planning and writing are CPU and file work; keep them off the async workers.
    let installed = tokio::task::spawn_blocking(move || -> Result<Installed> {
        let (catalog, provenance) = match fetched {
            Some(fetched) => fetched,
            None => read_cache_at(cache_path.clone(), &label)?,
        };
        install_catalog(catalog, provenance, &options?, &target, &cache_path, mode)
    })
    .await
    .expect("menu install task panicked")?;
    Ok(outcome(settings, mode, installed, started.elapsed()))
}

/// Installs the menu of a catalog under the install lock, then saves the catalog as the last
/// good one (unless it came from there).
fn install_catalog(
    catalog: Catalog,
    provenance: Provenance,
    options: &menu::Options,
    target: &install::Target,
    cache_path: &std::path::Path,
    mode: Mode,
) -> Result<Installed> {
    let lock = if mode.dry_run {
        None
    } else {
        Some(if mode.no_lock_wait {
            install::lock_within(target, std::time::Duration::ZERO)?
        } else {
            install::lock(target)?
        })
    };
    // Checked before anything is written, so a cache folder that is a link fails the sync
    // with every file as it was.
    let cache_dir = cache_path.parent().unwrap_or(std::path::Path::new("."));
    install::check_own_dir(cache_dir)?;
    // The manifest (and an unfinished sync's journal) is read once: it gives the previous menu
    // for the summary and what the install owns. Files are written as they are planned.
    let mut installer = install::Installer::new(target, mode.dry_run);
    let plan = menu::plan_each(&catalog, options, &mut |file| installer.put(file))?;
    let changes = entry_changes(installer.previous_tree(), &plan.tree, mode.dry_run);
    let mut report = installer.finish(&plan.tree, &plan.shortcuts)?;
    if !mode.dry_run {
        // The desktop reads file types and "Open With" from caches, not from the files.
        let opens_files = catalog.images.iter().any(|image| {
            let types = menu::mime::types_of(
                image.app_name(),
                image.about.as_deref(),
                &options.mime_types,
            );
            !types.is_empty()
        });
        let changed = report.written + report.removed > 0;
        report
            .warnings
            .extend(menu::caches::refresh(&target.data, changed, opens_files));
    }
    // The catalog is saved as the last good one only once the menu it describes is installed,
    // under the same lock, so the cache and the menu always agree. It is written straight from
    // the catalog: for a large registry its text is megabytes.
    if !mode.offline && !mode.dry_run {
        // A killed sync may have left a temporary file of this write.
        install::remove_temporary_files(cache_dir);
        install::write_atomic_with(cache_path, 0o644, true, |out| {
            catalog::write_file_text(&catalog, &provenance, out)
        })?;
    }
    drop(lock);
    Ok(Installed {
        images: catalog.images.len(),
        label_problems: catalog.label_problems,
        skipped: catalog.skipped,
        provenance,
        plan,
        report,
        changes,
    })
}

/// The summary of a sync.
fn outcome(
    settings: &Settings,
    mode: Mode,
    installed: Installed,
    took: std::time::Duration,
) -> Outcome {
    let Installed {
        images: n_images,
        label_problems,
        skipped,
        provenance,
        plan,
        report,
        changes,
    } = installed;
    let no_desktop = (settings.menu.desktop_dir.is_none() && !settings.menu.shortcuts.is_empty())
        .then(|| {
            "no desktop shortcuts: the desktop folder is turned off (XDG_DESKTOP_DIR is the home \
             folder)"
                .to_owned()
        });
    Outcome {
        source: provenance.source,
        url: provenance.url,
        offline: mode.offline,
        images: n_images,
        entries: plan.n_entries(),
        projects: plan.tree.menus.len(),
        written: report.written,
        unchanged: report.unchanged,
        removed: report.removed,
        added_entries: changes.n_added,
        removed_entries: changes.n_removed,
        would_add: changes.added,
        would_remove: changes.removed,
        skipped,
        missing_shortcuts: plan.missing_shortcuts.clone(),
        kept_modified: report.kept_modified,
        skipped_foreign: report.skipped_foreign,
        warnings: report
            .warnings
            .into_iter()
            .chain(no_desktop)
            .chain(label_problems)
            .collect(),
        dry_run: mode.dry_run,
        seconds: took.as_secs_f64(),
        fetched_at: provenance.fetched_at,
    }
}

/// What the blocking part of [`run`] hands back.
struct Installed {
    images: usize,
    /// Labels of images that could not be used, and why.
    label_problems: Vec<String>,
    skipped: Vec<String>,
    provenance: Provenance,
    /// The plan without its files, which went to disk as they were planned.
    plan: menu::Plan,
    report: install::Report,
    changes: Changes,
}

/// The entries (by image reference) added and removed between two trees: counted, and named
/// only when `named` (a dry run lists them; a real sync of a large registry need not hold them).
pub fn entry_changes(before: &menu::Tree, after: &menu::Tree, named: bool) -> Changes {
    // Borrowed, not copied: a large menu has tens of thousands of references on each side.
    fn collect<'a>(tree: &'a menu::Tree, out: &mut std::collections::HashSet<&'a str>) {
        out.extend(tree.entries.iter().map(|entry| entry.image.as_str()));
        for menu in &tree.menus {
            collect(menu, out);
        }
    }
    let (mut old, mut new) = (Default::default(), Default::default());
    collect(before, &mut old);
    collect(after, &mut new);
    let names = |set: std::collections::hash_set::Difference<'_, &str, _>| -> Vec<String> {
        if !named {
            return Vec::new();
        }
        let mut names: Vec<String> = set.map(|name| (*name).to_owned()).collect();
        names.sort_unstable();
        names
    };
    Changes {
        n_added: new.difference(&old).count(),
        n_removed: old.difference(&new).count(),
        added: names(new.difference(&old)),
        removed: names(old.difference(&new)),
    }
}

/// What a sync changes in the menu's entries.
#[derive(Debug, Default)]
pub struct Changes {
    pub n_added: usize,
    pub n_removed: usize,
    /// The references, when asked for.
    pub added: Vec<String>,
    pub removed: Vec<String>,
}
