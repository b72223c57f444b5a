//! Icons that images' labels name by URL on the registry's own host: fetched once per sync and
//! URL, checked like inline icons, kept in the cache folder, and turned into inline icons so the
//! menu and the saved catalog never depend on the network again.
//!
//! A fetch that fails leaves the last copy fetched, or else the app's own icon, and a warning:
//! an icon never fails a sync.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::StreamExt as _;

use crate::catalog::{Catalog, printable};
use crate::http;
use crate::labels::{self, IconKind, IconSource};

/// At most this many distinct icon URLs are fetched in one sync; the rest keep the app's icon.
pub const MAX_URLS: usize = 64;

/// A copy fetched this recently is used without asking again.
const FRESH: Duration = Duration::from_secs(24 * 60 * 60);

/// Fetches at once.
const CONCURRENCY: usize = 4;

/// All of a sync's icon fetches end within this: a slow icon host delays the menu by no more.
const PHASE: Duration = Duration::from_secs(15);

/// Replaces every URL icon in `catalog` by the checked picture it names: from `cache_dir` when
/// fetched within a day, else from the registry (kept in `cache_dir`), else the stale copy. A
/// URL that gives nothing usable is dropped from its images (they keep the app's icon) and
/// recorded in the catalog's label problems.
pub async fn resolve(catalog: &mut Catalog, client: &http::Client, cache_dir: &Path) {
    let urls: Vec<String> = {
        let mut urls: Vec<String> = catalog
            .images
            .iter()
            .filter_map(|image| match image.about.as_deref()?.icon.as_ref()? {
                IconSource::Url(url) => Some(url.clone()),
                IconSource::Inline { .. } => None,
            })
            .collect();
        urls.sort();
        urls.dedup();
        urls
    };
    if urls.is_empty() {
        return;
    }
    let mut failures: BTreeMap<String, String> = BTreeMap::new();
    for url in urls.iter().skip(MAX_URLS) {
        failures.insert(
            url.clone(),
            format!("not fetched: one sync fetches at most {MAX_URLS} icon URLs"),
        );
    }
    // A cache folder that is not a real folder of ours is not used: through a link, kept icons
    // would be written wherever it points.
    let deadline = tokio::time::Instant::now() + PHASE;
    let cache_dir = Arc::new(
        crate::menu::install::check_own_dir(cache_dir)
            .and_then(|()| crate::menu::install::create_dirs(cache_dir))
            .map_err(|err| tracing::warn!("not keeping fetched icons: {err}"))
            .ok()
            .map(|()| cache_dir.to_owned()),
    );
    let fetched: HashMap<String, Result<(IconKind, Vec<u8>), String>> =
        futures_util::stream::iter(urls.into_iter().take(MAX_URLS))
            .map(|url| {
                let cache_dir = Arc::clone(&cache_dir);
                async move {
                    let icon = one(client, &url, cache_dir.as_deref(), deadline).await;
                    (url, icon)
                }
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
    for (url, icon) in &fetched {
        if let Err(reason) = icon {
            failures.insert(url.clone(), reason.clone());
        }
    }
    for image in &mut catalog.images {
        let Some(IconSource::Url(url)) = image.about.as_deref().and_then(|a| a.icon.as_ref())
        else {
            continue;
        };
        let icon = match fetched.get(url) {
            Some(Ok((kind, bytes))) => Some(IconSource::Inline {
                kind: *kind,
                bytes: bytes.clone(),
            }),
            _ => None,
        };
        if let Some(reason) = failures.get(url) {
            catalog.label_problems.push(format!(
                "{}: label {}: {} ({reason}); the entry keeps the app's icon",
                printable(&image.reference()),
                labels::ICON,
                printable(url),
            ));
        }
        if let Some(about) = image.about.as_mut() {
            Arc::make_mut(about).icon = icon;
        }
    }
}

/// The picture at `url`: fresh from the cache, fetched, or stale from the cache.
async fn one(
    client: &http::Client,
    url: &str,
    cache_dir: Option<&Path>,
    deadline: tokio::time::Instant,
) -> Result<(IconKind, Vec<u8>), String> {
    let path = cache_dir.map(|dir| cache_path(dir, url));
    let cached = path.as_deref().and_then(read_cached);
    if let Some((icon, age)) = &cached
        && *age < FRESH
    {
        return Ok(icon.clone());
    }
    let fetched = async {
        let response = client
            .send(url, |client| client.get(url))
            .await
            .map_err(|err| err.to_string())?;
        let content_type = response
            .headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let kind = sniff(&response.body, &content_type)
            .ok_or("the answer is neither a PNG nor an SVG picture")?;
        labels::check_icon(kind, &response.body)?;
        Ok::<_, String>((kind, response.body))
    };
    let fetched = tokio::time::timeout_at(deadline, fetched)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {} s", PHASE.as_secs())));
    match (fetched, cached) {
        (Ok(icon), _) => {
            // The cache is a convenience: an icon that cannot be kept is still used.
            if let Some(path) = &path
                && let Err(err) = crate::menu::install::write_atomic(path, &icon.1, 0o644, false)
            {
                tracing::debug!("failed to keep icon {url} in {}: {err}", path.display());
            }
            Ok(icon)
        }
        (Err(reason), Some((icon, _))) => {
            tracing::warn!("failed to fetch icon {url} ({reason}); using the copy fetched before");
            Ok(icon)
        }
        (Err(reason), None) => Err(reason),
    }
}

/// Where the copy of `url` is kept: named by the URL's hash, so no part of a label ever becomes
/// a path.
fn cache_path(cache_dir: &Path, url: &str) -> PathBuf {
    let digest = ring::digest::digest(&ring::digest::SHA256, url.as_bytes());
    let name: String = digest.as_ref()[..16]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    cache_dir.join(name)
}

/// A kept copy, checked again (the cache folder is the user's to change), and its age.
fn read_cached(path: &Path) -> Option<((IconKind, Vec<u8>), Duration)> {
    let metadata = std::fs::symlink_metadata(path).ok()?;
    if !metadata.is_file() || metadata.len() > labels::MAX_ICON as u64 {
        return None;
    }
    let bytes = std::fs::read(path).ok()?;
    let kind = sniff(&bytes, "")?;
    labels::check_icon(kind, &bytes).ok()?;
    let age = metadata
        .modified()
        .ok()
        .and_then(|modified| SystemTime::now().duration_since(modified).ok())
        .unwrap_or(Duration::MAX);
    Some(((kind, bytes), age))
}

/// A picture's kind, from its first bytes: PNG's signature, or SVG markup (the content type
/// alone is not trusted, as a server may call anything `image/png`).
fn sniff(bytes: &[u8], content_type: &str) -> Option<IconKind> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Some(IconKind::Png);
    }
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).to_ascii_lowercase();
    let head = head.trim_start_matches('\u{feff}').trim_start();
    let markup = head.starts_with("<svg") || head.starts_with("<?xml");
    let svg_type = content_type.is_empty() || content_type.starts_with("image/svg+xml");
    (markup && svg_type && head.contains("<svg")).then_some(IconKind::Svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_pictures() {
        assert_eq!(
            sniff(b"\x89PNG\r\n\x1a\nrest", "text/html"),
            Some(IconKind::Png)
        );
        assert_eq!(
            sniff(b"<?xml version='1.0'?><svg/>", "image/svg+xml"),
            Some(IconKind::Svg)
        );
        assert_eq!(sniff(b"  <svg xmlns='x'/>", ""), Some(IconKind::Svg));
        assert_eq!(sniff(b"<html><svg/></html>", "image/svg+xml"), None);
        assert_eq!(sniff(b"<svg/>", "text/html"), None);
        assert_eq!(sniff(b"GIF89a", "image/gif"), None);
    }

    #[test]
    fn cache_names_never_come_from_the_url() {
        let path = cache_path(Path::new("/c"), "https://r/../../etc/passwd");
        assert_eq!(path.parent(), Some(Path::new("/c")));
        assert_eq!(path.file_name().unwrap().len(), 32);
    }
}
