//! The catalog: which desktop-app images exist, independent of where the list came from.
//!
//! Every source (Harbor, skaha, a JSON file) produces a [`Catalog`]; the menu and the launcher only
//! ever see this model. The module also owns the JSON shape of catalog files, which is the shape of
//! skaha's `GET /image` answer, so a saved skaha response is a valid catalog file and the cached
//! "last good catalog" is readable by hand.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The longest image reference we accept. Real references are far shorter; the bound keeps a
/// hostile registry from making us write megabyte-long menu entries.
const MAX_REFERENCE_LEN: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to read catalog {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("catalog {path} is not valid JSON: {source}")]
    Json {
        path: String,
        source: serde_json::Error,
    },
    #[error("failed to write catalog {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why an image reference was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("image reference is empty")]
    Empty,
    #[error("image reference is longer than {MAX_REFERENCE_LEN} bytes")]
    TooLong,
    #[error("image reference contains a control character")]
    ControlCharacter,
    #[error(
        "image reference contains {0:?}, which no image name holds and a desktop entry cannot \
         carry unchanged"
    )]
    Unrepresentable(char),
    #[error("image reference {0:?} has no tag (expected registry/project/repository:tag)")]
    NoTag(String),
    #[error("image reference {0:?} has no project (expected registry/project/repository:tag)")]
    NoProject(String),
    #[error("image reference {0:?} has an empty path component")]
    EmptyComponent(String),
    #[error(
        "tag {0:?} is not a valid OCI tag (at most 128 of A-Z a-z 0-9 _ . -, not starting with . \
         or -)"
    )]
    InvalidTag(String),
    #[error(
        "name {0:?} is not an image name (path components of letters, digits and . _ - inside, \
         after a host with an optional port)"
    )]
    InvalidName(String),
}

/// Whether `tag` follows the OCI distribution spec's tag grammar,
/// `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
/// See: https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pulling-manifests
pub fn is_oci_tag(tag: &str) -> bool {
    let mut bytes = tag.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphanumeric() || b == b'_')
        && tag.len() <= 128
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Whether `registry/project/repository` holds only what image names hold: OCI's path
/// components (letters, digits, and `.`, `_`, `-` inside, never first or last, so no `..`) after
/// a registry host with an optional port. Upper case is let through, as some registries report
/// it.
/// See: https://github.com/distribution/reference/blob/main/reference.go
fn is_name(name: &str) -> bool {
    fn component(part: &str) -> bool {
        let bytes = part.as_bytes();
        !bytes.is_empty()
            && bytes[0].is_ascii_alphanumeric()
            && bytes[bytes.len() - 1].is_ascii_alphanumeric()
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    }
    let mut parts = name.split('/');
    let registry = parts.next().unwrap_or_default();
    let host = match registry.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => registry,
    };
    component(host) && parts.all(component)
}

/// Text from outside (a reference a user typed, a name a registry sent) as it can be shown on
/// a terminal: control characters escaped, so none reaches the terminal as a command.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(
        text.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

/// One launchable image version: `registry/project/repository:tag`.
///
/// Invariant: no field is empty and none contains a control character, so every field can be
/// written on one line of a desktop entry; `repository` may contain `/` (nested repositories).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Image {
    pub registry: String,
    pub project: String,
    pub repository: String,
    pub tag: String,
    pub digest: Option<String>,
    /// Whether the digest came with the reference (`repo:tag@sha256:…`), so it pins the image
    /// to launch; otherwise it is what the registry reported, for information.
    pub pinned: bool,
    /// What the image says of itself through its labels, when it says anything.
    pub about: Option<std::sync::Arc<crate::labels::About>>,
}

impl Image {
    /// Parses `registry/project/repository[/more]:tag[@digest]`, the form skaha and the platform use.
    pub fn parse(reference: &str) -> Result<Image, ReferenceError> {
        check_text(reference)?;
        let (name, digest) = match reference.split_once('@') {
            Some((name, digest)) => (name, Some(digest.to_owned())),
            None => (reference, None),
        };
        // The tag is after the last ':' that follows the last '/', so `host:5000/p/r:1` works.
        let last_slash = name.rfind('/').unwrap_or(0);
        let (path, tag) = match name[last_slash..].rfind(':') {
            Some(colon) => (&name[..last_slash + colon], &name[last_slash + colon + 1..]),
            None => return Err(ReferenceError::NoTag(reference.to_owned())),
        };
        if tag.is_empty() {
            return Err(ReferenceError::NoTag(reference.to_owned()));
        }
        let mut parts = path.splitn(3, '/');
        let (Some(registry), Some(project), Some(repository)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(ReferenceError::NoProject(reference.to_owned()));
        };
        if registry.is_empty()
            || project.is_empty()
            || repository.is_empty()
            || repository.split('/').any(str::is_empty)
        {
            return Err(ReferenceError::EmptyComponent(reference.to_owned()));
        }
        check_parts(path, tag)?;
        Ok(Image {
            registry: registry.to_owned(),
            project: project.to_owned(),
            repository: repository.to_owned(),
            tag: tag.to_owned(),
            pinned: digest.is_some(),
            digest,
            about: None,
        })
    }

    /// Builds an image from parts a registry reported, checking the same rules as [`Image::parse`].
    pub fn from_parts(
        registry: &str,
        project: &str,
        repository: &str,
        tag: &str,
        digest: Option<&str>,
    ) -> Result<Image, ReferenceError> {
        let image = Image {
            registry: registry.to_owned(),
            project: project.to_owned(),
            repository: repository.to_owned(),
            tag: tag.to_owned(),
            digest: digest.map(str::to_owned),
            pinned: false,
            about: None,
        };
        let reference = image.reference();
        check_text(&reference)?;
        if let Some(digest) = digest {
            check_text(digest)?;
        }
        if [registry, project, repository, tag]
            .iter()
            .any(|part| part.is_empty())
            || repository.split('/').any(str::is_empty)
        {
            return Err(ReferenceError::EmptyComponent(reference));
        }
        check_parts(&format!("{registry}/{project}/{repository}"), tag)?;
        Ok(image)
    }

    /// The full reference without digest, e.g. `images.canfar.net/skaha/terminal:1.0`.
    pub fn reference(&self) -> String {
        format!(
            "{}/{}/{}:{}",
            self.registry, self.project, self.repository, self.tag
        )
    }

    /// The reference to launch: [`Image::reference`], with the digest when it pins the image.
    pub fn launch_reference(&self) -> String {
        match (&self.digest, self.pinned) {
            (Some(digest), true) => format!("{}@{digest}", self.reference()),
            _ => self.reference(),
        }
    }

    /// Whether two images have the same [`Image::reference`], without building either string.
    pub fn same_reference(&self, other: &Image) -> bool {
        fn parts(image: &Image) -> [&str; 7] {
            [
                &image.registry,
                "/",
                &image.project,
                "/",
                &image.repository,
                ":",
                &image.tag,
            ]
        }
        let (a, b) = (parts(self), parts(other));
        let len = |parts: &[&str; 7]| parts.iter().map(|part| part.len()).sum::<usize>();
        len(&a) == len(&b)
            && a.iter()
                .flat_map(|part| part.bytes())
                .eq(b.iter().flat_map(|part| part.bytes()))
    }

    /// What the menu shows for this version: `repository:tag`, e.g. `terminal:1.0`.
    pub fn label(&self) -> String {
        format!("{}:{}", self.repository, self.tag)
    }

    /// The application name: the last path segment of the repository (`casa` for `astro/casa`).
    pub fn app_name(&self) -> &str {
        self.repository
            .rsplit('/')
            .next()
            .unwrap_or(&self.repository)
    }
}

impl fmt::Display for Image {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reference())
    }
}

/// The OCI grammar of a reference's name and tag.
fn check_parts(name: &str, tag: &str) -> Result<(), ReferenceError> {
    if !is_oci_tag(tag) {
        return Err(ReferenceError::InvalidTag(tag.to_owned()));
    }
    if !is_name(name) {
        return Err(ReferenceError::InvalidName(name.to_owned()));
    }
    Ok(())
}

fn check_text(text: &str) -> Result<(), ReferenceError> {
    if text.is_empty() {
        return Err(ReferenceError::Empty);
    }
    if text.len() > MAX_REFERENCE_LEN {
        return Err(ReferenceError::TooLong);
    }
    // Nearly every reference is printable ASCII without `%`, which one pass over the bytes shows;
    // only the rest needs the closer looks below.
    let plain = text
        .bytes()
        .all(|b| (b' '..=b'~').contains(&b) && b != b'%');
    if !plain && text.chars().any(char::is_control) {
        return Err(ReferenceError::ControlCharacter);
    }
    // A reference goes on an engine's command line after its options; one that starts like an
    // option would be read as one.
    if text.starts_with('-') {
        return Err(ReferenceError::Unrepresentable('-'));
    }
    if plain {
        return Ok(());
    }
    // `Exec` is an ASCII `string` in the Desktop Entry spec, and readers disagree on what `%%`
    // inside a quoted argument means (GLib reads `%`, others keep `%%`), so neither can reach the
    // launcher unchanged. Real image names never contain them; leaving such an image out, and
    // saying so, beats a menu entry that launches something else.
    if let Some(c) = text.chars().find(|c| !c.is_ascii() || *c == '%') {
        return Err(ReferenceError::Unrepresentable(c));
    }
    Ok(())
}

/// Orders tags newest first: semver-aware (`1.10` before `1.9`), a leading `v` ignored, tags that
/// are not versions at all (`latest`) after every version, then by text so the order is total.
pub fn compare_tags_newest_first(a: &str, b: &str) -> Ordering {
    TagKey::new(a).cmp(&TagKey::new(b))
}

/// A tag parsed once for sorting, in the order of [`compare_tags_newest_first`]: parsing a version
/// costs far more than comparing two, so sorts of thousands of images parse each tag only once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagKey<'a> {
    version: Option<versions::Versioning>,
    text: &'a str,
}

impl<'a> TagKey<'a> {
    pub fn new(tag: &'a str) -> TagKey<'a> {
        let trimmed = match tag.strip_prefix(['v', 'V']) {
            Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => rest,
            _ => tag,
        };
        let version = trimmed
            .starts_with(|c: char| c.is_ascii_digit())
            .then(|| versions::Versioning::new(trimmed))
            .flatten();
        TagKey { version, text: tag }
    }
}

impl TagKey<'_> {
    /// Whether the tag names a pre-release: after its version numbers come words like `beta`,
    /// `rc` or `dev` (`5.0-beta`, `1.0.0-rc1`, `3.1.dev2`), or PEP 440's `a1`/`b2` (`7.0.0a1`).
    /// A number alone after a dash is a build (`6.5.6-22`), not a pre-release. One is never the
    /// version chosen for a user who did not name one, unless nothing else exists.
    pub fn is_prerelease(&self) -> bool {
        if self.version.is_none() {
            return false;
        }
        let lower = self.text.to_ascii_lowercase();
        let rest = lower
            .trim_start_matches('v')
            .trim_start_matches(|c: char| c.is_ascii_digit() || c == '.');
        let pep440 = rest
            .strip_prefix(['a', 'b'])
            .is_some_and(|after| after.starts_with(|c: char| c.is_ascii_digit()));
        pep440
            || ["alpha", "beta", "rc", "pre", "dev", "preview", "snapshot"]
                .iter()
                .any(|word| rest.contains(word))
    }
}

/// The version chosen when a user names an app but no tag (name lookup, desktop shortcuts):
/// the newest that is not a pre-release, else the newest. `images` is newest first.
pub fn default_choice<'a>(images: &[&'a Image]) -> Option<&'a Image> {
    images
        .iter()
        .find(|image| !TagKey::new(&image.tag).is_prerelease())
        .or(images.first())
        .copied()
}

impl Ord for TagKey<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        match (&self.version, &other.version) {
            (Some(a), Some(b)) => b.cmp(a).then_with(|| self.text.cmp(other.text)),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => self.text.cmp(other.text),
        }
    }
}

impl PartialOrd for TagKey<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Where a catalog came from, kept with the cached copy so `--offline` can say how old it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    pub source: String,
    pub url: String,
    pub label: String,
    /// Seconds since the Unix epoch.
    pub fetched_at: u64,
}

/// The images a source reported, plus what it had to leave out and why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    pub images: Vec<Image>,
    /// One line per image the source reported but the catalog could not hold (no tag, a control
    /// character in its name, …), so that nothing is skipped silently.
    pub skipped: Vec<String>,
    /// One line per label an image carries that could not be used, and why.
    pub label_problems: Vec<String>,
}

impl Catalog {
    /// Adds another part of the same source's catalog (one project's, say) to this one.
    pub fn absorb(&mut self, part: Catalog) {
        self.images.extend(part.images);
        self.skipped.extend(part.skipped);
        self.label_problems.extend(part.label_problems);
    }

    /// Gives `image` what its labels say (checked: see [`crate::labels`]); what cannot be used
    /// is recorded, not silently dropped.
    pub fn read_labels(&mut self, image: &mut Image, labels: &BTreeMap<String, String>) {
        let host = image
            .registry
            .split(':')
            .next()
            .unwrap_or(&image.registry)
            .to_owned();
        let (about, problems) = crate::labels::About::from_labels(labels, &host);
        image.about = about.map(std::sync::Arc::new);
        for problem in problems {
            self.label_problems
                .push(format!("{}: {problem}", printable(&image.reference())));
        }
    }

    /// Sorts images by project, repository and newest tag first, and drops exact duplicates
    /// (the same reference reported twice, e.g. through a global and a project label).
    pub fn normalize(&mut self) {
        // Each tag is parsed once up front and the images are sorted through their indices, so
        // the keys can borrow from the images; the sort is stable, as a plain `sort_by` was.
        let mut order: Vec<usize> = (0..self.images.len()).collect();
        {
            let images = &self.images;
            let keys: Vec<TagKey> = images.iter().map(|image| TagKey::new(&image.tag)).collect();
            order.sort_by(|&a, &b| {
                let (x, y) = (&images[a], &images[b]);
                (&x.registry, &x.project, &x.repository)
                    .cmp(&(&y.registry, &y.project, &y.repository))
                    .then_with(|| keys[a].cmp(&keys[b]))
            });
        }
        let mut slots: Vec<Option<Image>> = std::mem::take(&mut self.images)
            .into_iter()
            .map(Some)
            .collect();
        self.images = order
            .into_iter()
            // `order` is a permutation, so every slot is taken exactly once.
            .filter_map(|index| slots[index].take())
            .collect();
        self.images.dedup_by(|a, b| a.same_reference(b));
    }

    /// The app name closest to a misspelt one, if one is close enough to be meant.
    pub fn suggest(&self, wrong: &str) -> Option<&str> {
        let wrong = wrong.split(':').next().unwrap_or(wrong);
        let mut best: Option<(usize, &str)> = None;
        for image in &self.images {
            let name = image.app_name();
            let distance = strsim::damerau_levenshtein(wrong, name);
            if distance <= (name.len() / 3).max(1) && best.is_none_or(|(d, _)| distance < d) {
                best = Some((distance, name));
            }
        }
        best.map(|(_, name)| name)
    }

    /// Finds images by a user's short name: a full reference, `name`, `name:tag`, `repo/path:tag`
    /// or `project/name[:tag]`. Returns every match, newest first.
    pub fn find(&self, query: &str) -> Vec<&Image> {
        let (name, tag) = match query.rsplit_once(':') {
            Some((name, tag)) if !tag.contains('/') => (name, Some(tag)),
            _ => (query, None),
        };
        let mut found: Vec<&Image> = self
            .images
            .iter()
            .filter(|image| {
                let name_matches = image.app_name() == name
                    || image.repository == name
                    || format!("{}/{}", image.project, image.repository) == name
                    || format!("{}/{}/{}", image.registry, image.project, image.repository) == name;
                name_matches && tag.is_none_or(|tag| image.tag == tag)
            })
            .collect();
        found.sort_by(|a, b| compare_tags_newest_first(&a.tag, &b.tag));
        found
    }
}

/// One image as a source lists it, before its reference is checked: the common ground of the
/// skaha source and catalog files, neither of whose wire types this module needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub reference: String,
    /// The labels (skaha's image types) it carries; empty when the source does not say.
    pub types: Vec<String>,
    pub digest: Option<String>,
    /// The image's own labels (its config's `Labels`), when the source has them.
    pub labels: Option<BTreeMap<String, String>>,
}

impl From<FileImage> for Listing {
    fn from(entry: FileImage) -> Listing {
        Listing {
            reference: entry.id,
            types: entry.types,
            digest: entry.digest,
            labels: entry.labels,
        }
    }
}

/// One entry of a catalog file. The file format is arcade's own; its array form has the shape
/// of skaha's `GET /image` answer, so a saved answer works as a catalog file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileImage {
    pub id: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The image's own labels, as its config holds them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
}

/// A catalog file: either a bare skaha-style array or this object with provenance.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CatalogFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
    pub images: Vec<FileImage>,
}

/// Turns catalog file entries into a catalog; see [`from_listings`].
pub fn from_file_images(entries: Vec<FileImage>, label: Option<&str>) -> Catalog {
    from_listings(entries.into_iter().map(Listing::from), label)
}

/// Turns listed images into a catalog, keeping those that carry `label` (every entry when
/// `label` is `None`). Entries with an unusable reference are recorded in `skipped`.
pub fn from_listings(entries: impl IntoIterator<Item = Listing>, label: Option<&str>) -> Catalog {
    let mut builder = Builder::new(label);
    for entry in entries {
        builder.add(entry);
    }
    builder.finish()
}

/// A catalog made one listing at a time, so a large file's entries need not all be held first.
struct Builder<'a> {
    catalog: Catalog,
    label: Option<&'a str>,
    read: LabelsRead,
}

/// Label sets already read, with what they made: the tags and versions of one app usually carry
/// the same labels, and reading them (an icon decoded and checked) is the costly part of a
/// large catalog. Their problems are told once, for the first image that carried them.
#[derive(Debug, Default)]
pub struct LabelsRead(HashMap<BTreeMap<String, String>, Option<Arc<crate::labels::About>>>);

impl LabelsRead {
    /// Gives `image` what `labels` say, read once per set (see [`Catalog::read_labels`]).
    pub fn apply(
        &mut self,
        catalog: &mut Catalog,
        image: &mut Image,
        labels: &BTreeMap<String, String>,
    ) {
        match self.0.get(labels) {
            Some(about) => image.about.clone_from(about),
            None => {
                catalog.read_labels(image, labels);
                self.0.insert(labels.clone(), image.about.clone());
            }
        }
    }
}

impl<'a> Builder<'a> {
    fn new(label: Option<&'a str>) -> Builder<'a> {
        Builder {
            catalog: Catalog::default(),
            label,
            read: LabelsRead::default(),
        }
    }

    fn add(&mut self, entry: Listing) {
        if let Some(label) = self.label
            && !entry.types.is_empty()
            && !entry.types.iter().any(|t| t == label)
        {
            return;
        }
        match Image::parse(&entry.reference) {
            Ok(mut image) => {
                if image.digest.is_none() {
                    image.digest = entry.digest.filter(|d| check_text(d).is_ok());
                }
                if let Some(labels) = &entry.labels {
                    self.read.apply(&mut self.catalog, &mut image, labels);
                }
                self.catalog.images.push(image);
            }
            Err(err) => self
                .catalog
                .skipped
                .push(format!("{:?}: {err}", entry.reference)),
        }
    }

    fn finish(mut self) -> Catalog {
        self.catalog.normalize();
        self.catalog
    }
}

/// The `images` of a catalog file, each turned into the catalog's image as it is read.
struct ImagesSeed<'b, 'a>(&'b mut Builder<'a>);

impl<'de> serde::de::DeserializeSeed<'de> for ImagesSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> serde::de::Visitor<'de> for ImagesSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a list of images")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(entry) = seq.next_element::<FileImage>()? {
            self.0.add(Listing::from(entry));
        }
        Ok(())
    }
}

/// A catalog file in object form: its provenance, and its images read into the builder.
struct FileSeed<'b, 'a>(&'b mut Builder<'a>);

impl<'de> serde::de::DeserializeSeed<'de> for FileSeed<'_, '_> {
    type Value = Option<Provenance>;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Option<Provenance>, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for FileSeed<'_, '_> {
    type Value = Option<Provenance>;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a catalog file: an object with images and, optionally, provenance")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> Result<Option<Provenance>, A::Error> {
        let mut provenance = None;
        let mut images = false;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "provenance" => provenance = map.next_value::<Option<Provenance>>()?,
                "images" if images => return Err(serde::de::Error::duplicate_field("images")),
                "images" => {
                    map.next_value_seed(ImagesSeed(&mut *self.0))?;
                    images = true;
                }
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        if !images {
            return Err(serde::de::Error::missing_field("images"));
        }
        Ok(provenance)
    }
}

/// Parses catalog file text (array or object form). Returns the catalog and its provenance.
pub fn parse_file(
    text: &str,
    path: &Path,
    label: Option<&str>,
) -> Result<(Catalog, Option<Provenance>)> {
    let json_error = |source| Error::Json {
        path: path.display().to_string(),
        source,
    };
    // A file is skaha's bare array or our object with provenance. Choosing by the first character
    // parses once (serde's untagged enums buffer the whole document first) and gives the errors
    // of the form actually meant. Entries become images as they are read.
    let mut builder = Builder::new(label);
    let mut json = serde_json::Deserializer::from_str(text);
    let provenance = if text.trim_start().starts_with('[') {
        serde::de::DeserializeSeed::deserialize(ImagesSeed(&mut builder), &mut json)
            .map_err(json_error)?;
        None
    } else {
        serde::de::DeserializeSeed::deserialize(FileSeed(&mut builder), &mut json)
            .map_err(json_error)?
    };
    json.end().map_err(json_error)?;
    Ok((builder.finish(), provenance))
}

/// Reads a catalog file from disk.
pub fn read_file(path: &Path, label: Option<&str>) -> Result<(Catalog, Option<Provenance>)> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse_file(&text, path, label)
}

/// Renders a catalog as a catalog file (object form), the format of the cached last good catalog.
pub fn to_file_text(catalog: &Catalog, provenance: &Provenance) -> String {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail, and the text is JSON, so UTF-8.
    write_file_text(catalog, provenance, &mut out).expect("catalog serializes");
    String::from_utf8(out).expect("JSON is UTF-8")
}

/// Writes [`to_file_text`]'s text to `out` as it is produced: for a large catalog this saves
/// holding the whole text (and a copy of every entry) in memory at once.
pub fn write_file_text(
    catalog: &Catalog,
    provenance: &Provenance,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    /// [`CatalogFile`] with borrowed parts; it serializes to the same text.
    #[derive(Serialize)]
    struct FileRef<'a> {
        provenance: &'a Provenance,
        images: ImagesRef<'a>,
    }
    struct ImagesRef<'a> {
        images: &'a [Image],
        label: &'a str,
        /// Each image's labels, made once per `About` the images share.
        labels: &'a HashMap<*const crate::labels::About, BTreeMap<String, String>>,
    }
    /// [`FileImage`] with borrowed parts.
    #[derive(Serialize)]
    struct ImageRef<'a> {
        id: String,
        types: [&'a str; 1],
        #[serde(skip_serializing_if = "Option::is_none")]
        digest: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        labels: Option<&'a BTreeMap<String, String>>,
    }
    impl Serialize for ImagesRef<'_> {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.collect_seq(self.images.iter().map(|image| {
                ImageRef {
                    id: image.launch_reference(),
                    types: [self.label],
                    digest: image.digest.as_deref(),
                    labels: image
                        .about
                        .as_ref()
                        .and_then(|about| self.labels.get(&Arc::as_ptr(about))),
                }
            }))
        }
    }
    let mut labels = HashMap::new();
    for about in catalog
        .images
        .iter()
        .filter_map(|image| image.about.as_ref())
    {
        labels
            .entry(Arc::as_ptr(about))
            .or_insert_with(|| about.to_labels());
    }
    let mut out = std::io::BufWriter::with_capacity(64 << 10, out);
    let file = FileRef {
        provenance,
        images: ImagesRef {
            images: &catalog.images,
            label: &provenance.label,
            labels: &labels,
        },
    };
    serde_json::to_writer_pretty(&mut out, &file)?;
    out.write_all(b"\n")?;
    out.flush()
}

/// A catalog of `ids`, each its own image (a digest of its own), with no labels: the fixture of
/// other modules' unit tests.
#[cfg(test)]
pub fn of_ids(ids: &[&str]) -> Catalog {
    from_file_images(
        ids.iter()
            .map(|id| FileImage {
                id: (*id).into(),
                types: vec![],
                digest: Some(format!("sha256:{}", id.replace(['/', ':'], "-"))),
                labels: None,
            })
            .collect(),
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_follow_the_oci_grammar() {
        for good in ["1.0", "latest", "_x", "v1.2.3-rc1", &"a".repeat(128)] {
            assert!(is_oci_tag(good), "{good}");
        }
        for bad in ["", ".1", "-1", "$(id)", "a;b", "ü", "1%", &"a".repeat(129)] {
            assert!(!is_oci_tag(bad), "{bad}");
        }
        assert!(matches!(
            Image::parse("h/p/r:$(reboot)"),
            Err(ReferenceError::InvalidTag(_))
        ));
        assert!(matches!(
            Image::from_parts("h", "p", "r", "a;b", None),
            Err(ReferenceError::InvalidTag(_))
        ));
        for bad in [
            "h/p/r$x:1",
            "../../tmp/x:1",
            "h/../p/x:1",
            "h/p/.x:1",
            "h:/p/x:1",
        ] {
            assert!(
                matches!(Image::parse(bad), Err(ReferenceError::InvalidName(_))),
                "{bad}"
            );
        }
        for good in [
            "host:5000/p/x:1",
            "127.0.0.1:45511/cirada/astro/casa:6.5.6",
            "h/P_Q/a-b.c:1",
        ] {
            assert!(Image::parse(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn tells_pre_releases() {
        for tag in [
            "5.0-beta",
            "1.0.0-rc1",
            "7.0.0a1",
            "v2.0.0-alpha.1",
            "3.1.dev2",
        ] {
            assert!(
                TagKey::new(tag).is_prerelease(),
                "{tag}: {:?}",
                TagKey::new(tag)
            );
        }
        for tag in ["4.1", "1.0.0", "latest", "2024.03", "6.5.6-1"] {
            assert!(
                !TagKey::new(tag).is_prerelease(),
                "{tag}: {:?}",
                TagKey::new(tag)
            );
        }
    }

    #[test]
    fn pre_releases_are_never_the_default_choice() {
        let catalog = from_file_images(
            ["5.0-beta", "4.1", "4.0", "6.0.0-rc1", "7.0.0a1", "latest"]
                .iter()
                .map(|tag| FileImage {
                    id: format!("h/p/carta:{tag}"),
                    types: vec![],
                    digest: None,
                    labels: None,
                })
                .collect(),
            None,
        );
        let found = catalog.find("carta");
        assert_eq!(found[0].tag, "7.0.0a1", "newest first");
        assert_eq!(default_choice(&found).unwrap().tag, "4.1");
        let only_betas = from_file_images(
            vec![FileImage {
                id: "h/p/carta:5.0-beta".into(),
                types: vec![],
                digest: None,
                labels: None,
            }],
            None,
        );
        assert_eq!(
            default_choice(&only_betas.find("carta")).unwrap().tag,
            "5.0-beta"
        );
    }

    #[test]
    fn control_characters_are_shown_escaped() {
        assert_eq!(printable("h/p/r:1"), "h/p/r:1");
        assert_eq!(printable("a\u{1b}[31mb\n"), "a\\u{1b}[31mb\\n");
    }

    #[test]
    fn parses_platform_references() {
        let image = Image::parse("images.canfar.net/skaha/terminal:1.0").unwrap();
        assert_eq!(image.registry, "images.canfar.net");
        assert_eq!(image.project, "skaha");
        assert_eq!(image.repository, "terminal");
        assert_eq!(image.tag, "1.0");
        assert_eq!(image.label(), "terminal:1.0");

        let nested = Image::parse("host:5000/proj/astro/casa:6.5.6@sha256:abc").unwrap();
        assert_eq!(nested.registry, "host:5000");
        assert_eq!(nested.repository, "astro/casa");
        assert_eq!(nested.app_name(), "casa");
        assert_eq!(nested.digest.as_deref(), Some("sha256:abc"));
        assert_eq!(nested.reference(), "host:5000/proj/astro/casa:6.5.6");
    }

    #[test]
    fn refuses_unusable_references() {
        assert_eq!(Image::parse(""), Err(ReferenceError::Empty));
        assert!(matches!(
            Image::parse("host/proj/repo"),
            Err(ReferenceError::NoTag(_))
        ));
        assert!(matches!(
            Image::parse("host:5000/repo"),
            Err(ReferenceError::NoTag(_))
        ));
        assert!(matches!(
            Image::parse("proj/repo:1"),
            Err(ReferenceError::NoProject(_))
        ));
        assert!(matches!(
            Image::parse("h/p//r:1"),
            Err(ReferenceError::EmptyComponent(_))
        ));
        assert_eq!(
            Image::parse("h/p/r:1\nExec=evil"),
            Err(ReferenceError::ControlCharacter)
        );
        assert_eq!(
            Image::parse(&format!("h/p/{}:1", "a".repeat(2000))),
            Err(ReferenceError::TooLong)
        );
        assert_eq!(
            Image::parse("--volume=/:/h:ro/p/r:1"),
            Err(ReferenceError::Unrepresentable('-'))
        );
        assert_eq!(
            Image::parse("h/p/r:100%"),
            Err(ReferenceError::Unrepresentable('%'))
        );
        assert_eq!(
            Image::parse("h/ünï/r:1"),
            Err(ReferenceError::Unrepresentable('ü'))
        );
        assert_eq!(
            Image::from_parts("h", "p", "r", "1%", None),
            Err(ReferenceError::Unrepresentable('%'))
        );
    }

    #[test]
    fn refuses_names_no_image_has() {
        assert!(matches!(
            Image::parse("h/p q/it's \"$(rm -rf ~)\";../x:1"),
            Err(ReferenceError::InvalidName(_))
        ));
        assert!(matches!(
            Image::parse("h/p/x:1 0"),
            Err(ReferenceError::InvalidTag(_))
        ));
    }

    #[test]
    fn orders_tags_newest_first() {
        let mut tags = vec![
            "1.9",
            "latest",
            "1.10",
            "v1.11",
            "1.0.0",
            "1.0.0-rc1",
            "2",
            "nightly",
        ];
        tags.sort_by(|a, b| compare_tags_newest_first(a, b));
        assert_eq!(
            tags,
            [
                "2",
                "v1.11",
                "1.10",
                "1.9",
                "1.0.0",
                "1.0.0-rc1",
                "latest",
                "nightly"
            ]
        );
    }

    #[test]
    fn normalize_sorts_stably_and_drops_duplicates() {
        let image = |reference: &str, digest: &str| {
            let mut image = Image::parse(reference).unwrap();
            image.digest = Some(digest.to_owned());
            image
        };
        let mut catalog = Catalog {
            images: vec![
                image("h/p/r:1.9", "a"),
                image("h/p/a:latest", "b"),
                image("h/p/r:1.10", "c"),
                image("h/o/r:1", "d"),
                image("h/p/r:1.9", "e"),
                image("h/p/a:2", "f"),
            ],
            skipped: Vec::new(),
            label_problems: Vec::new(),
        };
        catalog.normalize();
        let found: Vec<(String, &str)> = catalog
            .images
            .iter()
            .map(|image| (image.reference(), image.digest.as_deref().unwrap()))
            .collect();
        assert_eq!(
            found,
            [
                ("h/o/r:1".to_owned(), "d"),
                ("h/p/a:2".to_owned(), "f"),
                ("h/p/a:latest".to_owned(), "b"),
                ("h/p/r:1.10".to_owned(), "c"),
                // The first of two equal references is kept.
                ("h/p/r:1.9".to_owned(), "a"),
            ]
        );
        assert!(image("h/p/r:1", "x").same_reference(&image("h/p/r:1", "y")));
        assert!(!image("h/p/r:1", "x").same_reference(&image("h/p/r:10", "x")));
    }

    #[test]
    fn finds_by_short_name() {
        let catalog = from_file_images(
            [
                "h/skaha/casa:6.5",
                "h/skaha/casa:6.10",
                "h/other/casa:1",
                "h/skaha/terminal:1.0",
            ]
            .into_iter()
            .map(|id| FileImage {
                id: id.into(),
                types: vec![],
                digest: None,
                labels: None,
            })
            .collect(),
            None,
        );
        let found: Vec<String> = catalog.find("casa").iter().map(|i| i.reference()).collect();
        assert_eq!(
            found,
            ["h/skaha/casa:6.10", "h/skaha/casa:6.5", "h/other/casa:1"]
        );
        assert_eq!(catalog.find("skaha/casa:6.5").len(), 1);
        assert_eq!(catalog.find("terminal:1.0").len(), 1);
        assert!(catalog.find("topcat").is_empty());
    }

    #[test]
    fn reads_skaha_shaped_files_and_filters_by_label() {
        let text = r#"[
            {"id": "images.canfar.net/skaha/terminal:1.0", "types": ["desktop-app", "headless"], "digest": "sha256:1"},
            {"id": "images.canfar.net/skaha/notebook:1.0", "types": ["notebook"]},
            {"id": "no-tag-here", "types": ["desktop-app"]}
        ]"#;
        let (catalog, provenance) =
            parse_file(text, Path::new("x.json"), Some("desktop-app")).unwrap();
        assert!(provenance.is_none());
        assert_eq!(catalog.images.len(), 1);
        assert_eq!(catalog.images[0].digest.as_deref(), Some("sha256:1"));
        assert_eq!(catalog.skipped.len(), 1);
    }

    #[test]
    fn cache_round_trips() {
        let mut catalog = Catalog::default();
        catalog
            .images
            .push(Image::parse("h/p/r:1@sha256:9").unwrap());
        let provenance = Provenance {
            source: "harbor".into(),
            url: "https://h".into(),
            label: "desktop-app".into(),
            fetched_at: 7,
        };
        let text = to_file_text(&catalog, &provenance);
        // The streamed text is what serializing the owned file form gives.
        let owned = CatalogFile {
            provenance: Some(provenance.clone()),
            images: vec![FileImage {
                // The digest pins it (it came with the reference), so the id keeps it.
                id: "h/p/r:1@sha256:9".into(),
                types: vec!["desktop-app".into()],
                digest: Some("sha256:9".into()),
                labels: None,
            }],
        };
        assert_eq!(text, serde_json::to_string_pretty(&owned).unwrap() + "\n");
        let (back, back_provenance) =
            parse_file(&text, Path::new("c.json"), Some("desktop-app")).unwrap();
        assert_eq!(back, catalog);
        assert_eq!(back_provenance, Some(provenance));
    }

    #[test]
    fn images_with_the_same_labels_share_what_they_say() {
        let text = r#"{"images": [
            {"id": "h/p/a:1", "labels": {"org.opencontainers.image.title": "A", "net.canfar.arcade.resources": "x"}},
            {"id": "h/p/a:2", "labels": {"org.opencontainers.image.title": "A", "net.canfar.arcade.resources": "x"}},
            {"id": "h/p/b:1", "labels": {"org.opencontainers.image.title": "B"}}
        ], "unknown": [1, 2]}"#;
        let (catalog, provenance) = parse_file(text, Path::new("c.json"), None).unwrap();
        assert_eq!(provenance, None);
        let about = |n: usize| catalog.images[n].about.clone().expect("labels read");
        let (a2, a1, b) = (about(0), about(1), about(2));
        assert_eq!(catalog.images[0].tag, "2");
        assert!(Arc::ptr_eq(&a1, &a2), "one set of labels is read once");
        assert!(!Arc::ptr_eq(&a1, &b));
        assert_eq!(b.title.as_deref(), Some("B"));
        // The bad resources label of the shared set is told once.
        assert_eq!(
            catalog.label_problems.len(),
            1,
            "{:?}",
            catalog.label_problems
        );
        for bad in [r#"{"provenance": null}"#, r#"{"images": [], "images": []}"#] {
            let err = parse_file(bad, Path::new("c.json"), None).unwrap_err();
            assert!(err.to_string().contains("c.json"), "{err}");
        }
    }
}
