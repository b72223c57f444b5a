//! What an image says of itself through its labels: the OCI annotations
//! (`org.opencontainers.image.title`, `.description`, …) and arcade's own under
//! `net.canfar.arcade.`, parsed once here, checked and bounded, so that whatever a registry sends
//! can only ever become plain, short text in a menu entry.
//!
//! The labels (all optional):
//!
//! | label | meaning |
//! |---|---|
//! | `org.opencontainers.image.title` | the entry's name |
//! | `org.opencontainers.image.description` | its comment |
//! | `org.opencontainers.image.url`, `.documentation` | where to read about it |
//! | `org.opencontainers.image.version` | the app's version |
//! | `net.canfar.arcade.icon` | `data:image/png;base64,…`, `data:image/svg+xml;base64,…`, or an `https://` URL on the registry's own host |
//! | `net.canfar.arcade.categories` | `;`-separated desktop categories; only `X-` ones are kept, so the app shows only under Astro Software |
//! | `net.canfar.arcade.keywords` | `;`-separated search words |
//! | `net.canfar.arcade.mime-types` | `;`-separated MIME types the app opens |
//! | `net.canfar.arcade.wm-class` | the class of the app's windows (`StartupWMClass`) |
//! | `net.canfar.arcade.resources` | the default resources, `cores=2,ram=8[,gpus=1]` |
//! | `net.canfar.arcade.presets` | right-click resource choices, `4/16;8/32;8/32/1` (cores/GB[/GPUs]) |

use std::collections::BTreeMap;

/// The longest name a label may give (longer is cut).
const MAX_TITLE: usize = 64;
/// The longest comment a label may give (longer is cut).
const MAX_DESCRIPTION: usize = 300;
/// The longest other text value kept.
const MAX_TEXT: usize = 200;
/// The most items a list label may give.
const MAX_ITEMS: usize = 16;
/// The largest icon accepted, in bytes.
pub const MAX_ICON: usize = 64 << 10;
/// The most resource presets kept.
const MAX_PRESETS: usize = 4;

/// The labels arcade reads.
pub const TITLE: &str = "org.opencontainers.image.title";
pub const DESCRIPTION: &str = "org.opencontainers.image.description";
pub const URL: &str = "org.opencontainers.image.url";
pub const DOCUMENTATION: &str = "org.opencontainers.image.documentation";
pub const VERSION: &str = "org.opencontainers.image.version";
pub const ICON: &str = "net.canfar.arcade.icon";
pub const CATEGORIES: &str = "net.canfar.arcade.categories";
pub const KEYWORDS: &str = "net.canfar.arcade.keywords";
pub const MIME_TYPES: &str = "net.canfar.arcade.mime-types";
pub const WM_CLASS: &str = "net.canfar.arcade.wm-class";
pub const RESOURCES: &str = "net.canfar.arcade.resources";
pub const PRESETS: &str = "net.canfar.arcade.presets";

/// Every label arcade reads, in the order `about` writes them back.
pub const KNOWN: &[&str] = &[
    TITLE,
    DESCRIPTION,
    URL,
    DOCUMENTATION,
    VERSION,
    ICON,
    CATEGORIES,
    KEYWORDS,
    MIME_TYPES,
    WM_CLASS,
    RESOURCES,
    PRESETS,
];

/// Cores, memory and GPUs for an app.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Resources {
    pub cores: u32,
    pub ram_gb: u32,
    pub gpus: u32,
}

impl Resources {
    /// `4 cores, 16 GB` (and `, 1 GPU`).
    pub fn describe(&self) -> String {
        let mut text = format!(
            "{}, {} GB",
            crate::text::count(self.cores as usize, "core", "cores"),
            self.ram_gb
        );
        if self.gpus > 0 {
            text.push_str(&format!(
                ", {}",
                crate::text::count(self.gpus as usize, "GPU", "GPUs")
            ));
        }
        text
    }

    /// `cores/ram[/gpus]`, as presets are written.
    pub fn slashed(&self) -> String {
        if self.gpus > 0 {
            format!("{}/{}/{}", self.cores, self.ram_gb, self.gpus)
        } else {
            format!("{}/{}", self.cores, self.ram_gb)
        }
    }

    /// Reads `4/16` or `4/16/1`.
    pub fn parse_slashed(text: &str) -> Option<Resources> {
        let mut parts = text.trim().split('/');
        let cores = parts.next()?.trim().parse().ok()?;
        let ram_gb = parts.next()?.trim().parse().ok()?;
        let gpus = match parts.next() {
            Some(gpus) => gpus.trim().parse().ok()?,
            None => 0,
        };
        (parts.next().is_none() && (1..=256).contains(&cores) && (1..=4096).contains(&ram_gb))
            .then_some(Resources {
                cores,
                ram_gb,
                gpus: gpus.min(16),
            })
    }
}

/// Where an icon comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IconSource {
    /// Inline: its checked bytes and kind.
    Inline { kind: IconKind, bytes: Vec<u8> },
    /// On the registry's own host, fetched (and checked) when the menu is synced.
    Url(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IconKind {
    Png,
    Svg,
}

impl IconKind {
    pub fn extension(self) -> &'static str {
        match self {
            IconKind::Png => "png",
            IconKind::Svg => "svg",
        }
    }
}

/// What an image says of itself: each field checked, bounded and free of control characters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct About {
    pub title: Option<String>,
    pub description: Option<String>,
    pub url: Option<String>,
    pub documentation: Option<String>,
    pub version: Option<String>,
    pub icon: Option<IconSource>,
    pub categories: Vec<String>,
    pub keywords: Vec<String>,
    pub mime_types: Vec<String>,
    pub wm_class: Option<String>,
    pub resources: Option<Resources>,
    pub presets: Vec<Resources>,
}

/// A label that could not be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub label: String,
    pub reason: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "label {}: {}", self.label, self.reason)
    }
}

impl About {
    /// Reads the labels an image carries; `registry_host` is the only host an icon URL may
    /// name. Labels it does not know are ignored; ones it cannot use are reported.
    pub fn from_labels(
        labels: &BTreeMap<String, String>,
        registry_host: &str,
    ) -> (Option<About>, Vec<Problem>) {
        let mut problems = Vec::new();
        let mut about = About::default();
        for (key, value) in labels {
            if !KNOWN.contains(&key.as_str()) {
                continue;
            }
            if let Err(reason) = about.read(key, value, registry_host) {
                problems.push(Problem {
                    label: key.clone(),
                    reason,
                });
            }
        }
        let any = about != About::default();
        (any.then_some(about), problems)
    }

    fn read(&mut self, key: &str, value: &str, registry_host: &str) -> Result<(), String> {
        match key {
            TITLE => self.title = Some(text(value, MAX_TITLE)?),
            DESCRIPTION => self.description = Some(text(value, MAX_DESCRIPTION)?),
            URL => self.url = Some(web_url(value)?),
            DOCUMENTATION => self.documentation = Some(web_url(value)?),
            VERSION => self.version = Some(text(value, MAX_TEXT)?),
            ICON => self.icon = Some(icon(value, registry_host)?),
            CATEGORIES => {
                let all = list(value)?;
                let (kept, dropped): (Vec<_>, Vec<_>) =
                    all.into_iter().partition(|c| is_own_category(c));
                self.categories = kept;
                if !dropped.is_empty() {
                    return Err(format!(
                        "left out {} (only X- categories are kept, so the app shows only under \
                         Astro Software)",
                        dropped.join(", ")
                    ));
                }
            }
            KEYWORDS => self.keywords = list(value)?,
            MIME_TYPES => {
                let all = list(value)?;
                if let Some(bad) = all.iter().find(|t| !is_mime_type(t)) {
                    return Err(format!("{bad:?} is not a MIME type"));
                }
                self.mime_types = all;
            }
            WM_CLASS => {
                let class = text(value, MAX_TEXT)?;
                if class.contains(char::is_whitespace) {
                    return Err("a window class has no spaces".to_owned());
                }
                self.wm_class = Some(class);
            }
            RESOURCES => self.resources = Some(resources(value)?),
            PRESETS => {
                let presets: Option<Vec<Resources>> = value
                    .split(';')
                    .filter(|item| !item.trim().is_empty())
                    .map(Resources::parse_slashed)
                    .collect();
                let mut presets =
                    presets.ok_or("presets are cores/GB or cores/GB/GPUs, separated by ;")?;
                presets.truncate(MAX_PRESETS);
                self.presets = presets;
            }
            _ => {}
        }
        Ok(())
    }

    /// The labels this says, as they would be written (for the catalog cache).
    pub fn to_labels(&self) -> BTreeMap<String, String> {
        let mut labels = BTreeMap::new();
        let mut put = |key: &str, value: Option<String>| {
            if let Some(value) = value {
                labels.insert(key.to_owned(), value);
            }
        };
        put(TITLE, self.title.clone());
        put(DESCRIPTION, self.description.clone());
        put(URL, self.url.clone());
        put(DOCUMENTATION, self.documentation.clone());
        put(VERSION, self.version.clone());
        put(
            ICON,
            self.icon.as_ref().map(|icon| match icon {
                IconSource::Url(url) => url.clone(),
                IconSource::Inline { kind, bytes } => {
                    use base64::Engine as _;
                    let mime = match kind {
                        IconKind::Png => "image/png",
                        IconKind::Svg => "image/svg+xml",
                    };
                    format!(
                        "data:{mime};base64,{}",
                        base64::engine::general_purpose::STANDARD.encode(bytes)
                    )
                }
            }),
        );
        let joined = |items: &[String]| (!items.is_empty()).then(|| items.join(";"));
        put(CATEGORIES, joined(&self.categories));
        put(KEYWORDS, joined(&self.keywords));
        put(MIME_TYPES, joined(&self.mime_types));
        put(WM_CLASS, self.wm_class.clone());
        put(
            RESOURCES,
            self.resources.map(|r| {
                let mut text = format!("cores={},ram={}", r.cores, r.ram_gb);
                if r.gpus > 0 {
                    text.push_str(&format!(",gpus={}", r.gpus));
                }
                text
            }),
        );
        let presets: Vec<String> = self.presets.iter().map(Resources::slashed).collect();
        put(PRESETS, joined(&presets));
        labels
    }
}

/// One line of plain text: no control characters, at most `max` characters (cut with `…`).
fn text(value: &str, max: usize) -> Result<String, String> {
    let value = value.trim();
    if value.is_empty() {
        return Err("it is empty".to_owned());
    }
    if value.chars().any(char::is_control) {
        return Err("it holds a control character (a line break, say)".to_owned());
    }
    if value.chars().count() <= max {
        return Ok(value.to_owned());
    }
    let mut cut: String = value.chars().take(max - 1).collect();
    cut.push('…');
    Ok(cut)
}

/// A `;`-separated list of short words, none empty or odd.
fn list(value: &str) -> Result<Vec<String>, String> {
    let items: Vec<String> = value
        .split(';')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect();
    if items.len() > MAX_ITEMS {
        return Err(format!("more than {MAX_ITEMS} items"));
    }
    if let Some(bad) = items
        .iter()
        .find(|item| item.len() > 64 || item.chars().any(|c| c.is_control() || c == '%'))
    {
        // `printable` escapes control characters already; quoting it again would double them.
        return Err(format!(
            "\"{}\" is not a plain word",
            crate::catalog::printable(bad)
        ));
    }
    Ok(items)
}

/// A category of arcade's own kind: `X-` and letters, digits or `-`.
fn is_own_category(category: &str) -> bool {
    category.len() > 2
        && category.starts_with("X-")
        && category[2..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// `type/subtype`, with the characters RFC 6838 allows in names.
fn is_mime_type(value: &str) -> bool {
    let name = |part: &str| {
        !part.is_empty()
            && part.len() <= 127
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    matches!(value.split_once('/'), Some((kind, sub)) if name(kind) && name(sub))
}

/// An `http(s)://` URL of printable ASCII, with no spaces or quotes.
fn web_url(value: &str) -> Result<String, String> {
    let value = value.trim();
    let plain = value.len() <= 512
        && value
            .bytes()
            .all(|b| (b'!'..=b'~').contains(&b) && !b"\"'<>\\`%".contains(&b));
    if plain && (value.starts_with("https://") || value.starts_with("http://")) {
        Ok(value.to_owned())
    } else {
        Err("not a plain http(s) URL".to_owned())
    }
}

/// `cores=2,ram=8[,gpus=1]`.
fn resources(value: &str) -> Result<Resources, String> {
    let mut resources = Resources::default();
    for part in value.split(',') {
        let (key, number) = part
            .split_once('=')
            .ok_or("resources are cores=N,ram=GB[,gpus=N]")?;
        let number: u32 = number
            .trim()
            .parse()
            .map_err(|_| format!("{:?} is not a number", number.trim()))?;
        match key.trim() {
            "cores" => resources.cores = number,
            "ram" => resources.ram_gb = number,
            "gpus" => resources.gpus = number,
            other => return Err(format!("{other:?} is not cores, ram or gpus")),
        }
    }
    if !(1..=256).contains(&resources.cores) || !(1..=4096).contains(&resources.ram_gb) {
        return Err("cores must be 1–256 and ram 1–4096 GB".to_owned());
    }
    Ok(resources)
}

/// An icon label: an inline PNG or SVG, checked, or a URL on the registry's host.
fn icon(value: &str, registry_host: &str) -> Result<IconSource, String> {
    use base64::Engine as _;
    let value = value.trim();
    if let Some(rest) = value.strip_prefix("https://") {
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let host = authority.split(':').next().unwrap_or_default();
        if host.is_empty() || authority.contains('@') || host != registry_host {
            return Err(format!(
                "an icon URL must be on the registry's own host {registry_host}, not {host:?}"
            ));
        }
        return web_url(value).map(IconSource::Url);
    }
    let (kind, data) = if let Some(data) = value.strip_prefix("data:image/png;base64,") {
        (IconKind::Png, data)
    } else if let Some(data) = value.strip_prefix("data:image/svg+xml;base64,") {
        (IconKind::Svg, data)
    } else {
        return Err(
            "an icon is data:image/png;base64,…, data:image/svg+xml;base64,… or an https URL on \
             the registry's host"
                .to_owned(),
        );
    };
    if data.len() > MAX_ICON * 4 / 3 + 4 {
        return Err(format!("the icon is larger than {} KiB", MAX_ICON >> 10));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|_| "the icon's base64 does not decode".to_owned())?;
    check_icon(kind, &bytes)?;
    Ok(IconSource::Inline { kind, bytes })
}

/// Checks an icon's bytes: a PNG at most 512 pixels square, or an SVG with no script, no
/// event handler, no external reference; at most [`MAX_ICON`] bytes either way.
pub fn check_icon(kind: IconKind, bytes: &[u8]) -> Result<(), String> {
    if bytes.len() > MAX_ICON {
        return Err(format!("the icon is larger than {} KiB", MAX_ICON >> 10));
    }
    match kind {
        IconKind::Png => check_png(bytes),
        IconKind::Svg => check_svg(bytes),
    }
}

fn check_png(bytes: &[u8]) -> Result<(), String> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if !bytes.starts_with(SIGNATURE) || bytes.get(12..16) != Some(b"IHDR") {
        return Err("the icon is not a PNG".to_owned());
    }
    let number =
        |at: usize| -> u32 { u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) };
    if bytes.len() < 24 {
        return Err("the PNG is cut short".to_owned());
    }
    let (width, height) = (number(16), number(20));
    if width == 0 || height == 0 || width > 512 || height > 512 {
        return Err(format!("the PNG is {width}x{height}; at most 512x512"));
    }
    Ok(())
}

fn check_svg(bytes: &[u8]) -> Result<(), String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(bytes);
    let mut root = None;
    let mut buf = Vec::new();
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|err| format!("the SVG is not well-formed XML: {err}"))?;
        match &event {
            Event::Start(element) | Event::Empty(element) => {
                let name = element.local_name().as_ref().to_lowercase();
                root.get_or_insert_with(|| name.clone());
                if matches!(name.as_str(), "script" | "foreignobject" | "iframe") {
                    return Err(format!("the SVG holds a <{name}>"));
                }
                for attribute in element.attributes() {
                    let attribute =
                        attribute.map_err(|err| format!("the SVG is not well-formed: {err}"))?;
                    let key = attribute.key.local_name().as_ref().to_lowercase();
                    let value = attribute.value.to_lowercase();
                    if key.starts_with("on") {
                        return Err(format!("the SVG has an event handler ({key})"));
                    }
                    let external = value.contains("javascript:")
                        || value.contains("url(http")
                        || value.contains("url(file")
                        || ((key == "href" || key == "src")
                            && !value.trim_start().starts_with('#')
                            && !value.trim_start().starts_with("data:image/"));
                    if external {
                        return Err(format!("the SVG refers outside itself ({key}={value:?})"));
                    }
                }
            }
            Event::DocType(_) => return Err("the SVG has a DOCTYPE (entities)".to_owned()),
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    match root.as_deref() {
        Some("svg") => Ok(()),
        _ => Err("the icon is not an SVG".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect()
    }

    fn png(width: u32, height: u32) -> Vec<u8> {
        let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        bytes.extend(width.to_be_bytes());
        bytes.extend(height.to_be_bytes());
        bytes.extend([8, 6, 0, 0, 0]);
        bytes
    }

    fn data_url(mime: &str, bytes: &[u8]) -> String {
        use base64::Engine as _;
        format!(
            "data:{mime};base64,{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        )
    }

    #[test]
    fn reads_what_an_image_says_and_writes_it_back() {
        let icon = data_url("image/png", &png(48, 48));
        let given = labels(&[
            (TITLE, "SAOImage DS9"),
            (DESCRIPTION, "Astronomical imaging and data visualization"),
            (URL, "https://ds9.si.edu"),
            (ICON, &icon),
            (CATEGORIES, "X-Imaging;X-Astro"),
            (KEYWORDS, "fits;image"),
            (MIME_TYPES, "application/fits;image/fits"),
            (WM_CLASS, "Ds9.tcl"),
            (RESOURCES, "cores=2,ram=8"),
            (PRESETS, "4/16;8/32/1"),
            ("com.example.other", "ignored"),
        ]);
        let (about, problems) = About::from_labels(&given, "images.canfar.net");
        assert!(problems.is_empty(), "{problems:?}");
        let about = about.unwrap();
        assert_eq!(about.title.as_deref(), Some("SAOImage DS9"));
        assert_eq!(about.categories, ["X-Imaging", "X-Astro"]);
        assert_eq!(
            about.resources,
            Some(Resources {
                cores: 2,
                ram_gb: 8,
                gpus: 0
            })
        );
        assert_eq!(about.presets[1].describe(), "8 cores, 32 GB, 1 GPU");
        let (again, _) = About::from_labels(&about.to_labels(), "images.canfar.net");
        assert_eq!(again.unwrap(), about);
    }

    #[test]
    fn hostile_labels_get_nowhere() {
        let long = "x".repeat(5000);
        let script_svg = data_url(
            "image/svg+xml",
            b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
        );
        let external_svg = data_url(
            "image/svg+xml",
            b"<svg xmlns='http://www.w3.org/2000/svg'><image href='file:///etc/passwd'/></svg>",
        );
        let huge_png = data_url("image/png", &png(10_000, 10_000));
        for (label, value) in [
            (TITLE, "Evil\nExec=rm -rf ~"),
            (ICON, script_svg.as_str()),
            (ICON, external_svg.as_str()),
            (ICON, huge_png.as_str()),
            (ICON, "https://evil.example.org/icon.png"),
            (ICON, "/etc/passwd"),
            (MIME_TYPES, "application/fits;not a type"),
            (CATEGORIES, "Science;X-Ok"),
            (RESOURCES, "cores=100000,ram=1"),
            (WM_CLASS, "two words"),
            (KEYWORDS, "a%b"),
            (URL, "javascript:alert(1)"),
        ] {
            let (_, problems) = About::from_labels(&labels(&[(label, value)]), "images.canfar.net");
            assert_eq!(problems.len(), 1, "{label}={value:?} was taken");
        }
        // Long text is cut, not refused.
        let (about, problems) = About::from_labels(&labels(&[(TITLE, &long)]), "h");
        assert!(problems.is_empty());
        assert_eq!(about.unwrap().title.unwrap().chars().count(), MAX_TITLE);
        // A category list keeps its X- categories and says what it left out.
        let (about, problems) = About::from_labels(&labels(&[(CATEGORIES, "Science;X-Ok")]), "h");
        assert_eq!(about.unwrap().categories, ["X-Ok"]);
        assert!(problems[0].reason.contains("Science"), "{problems:?}");
    }

    #[test]
    fn icons_on_the_registry_host_are_taken() {
        let (about, problems) = About::from_labels(
            &labels(&[(ICON, "https://images.canfar.net/icons/ds9.png")]),
            "images.canfar.net",
        );
        assert!(problems.is_empty());
        assert_eq!(
            about.unwrap().icon,
            Some(IconSource::Url(
                "https://images.canfar.net/icons/ds9.png".to_owned()
            ))
        );
        let svg = b"<svg xmlns='http://www.w3.org/2000/svg'><circle r='4' fill='url(#g)'/></svg>";
        assert_eq!(check_icon(IconKind::Svg, svg), Ok(()));
    }
}
