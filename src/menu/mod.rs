//! The Astro Software menu: from a [`Catalog`] to the set of XDG files that show it.
//!
//! [`plan`] is pure: it turns a catalog and the menu options into the exact bytes of every file
//! (entries, directories, the merged menu, icons, desktop shortcuts) plus the [`Tree`] they show.
//! [`plan_each`] hands out the same files one at a time, so a sync can write them as they come.
//! [`install`] owns the disk: it applies a plan atomically, touching only files it wrote.
//!
//! Layout on disk (all per user, nothing under `/etc`):
//! - `$XDG_DATA_HOME/applications/arcade/*.desktop` (desktop file IDs `arcade-*.desktop`)
//! - `$XDG_DATA_HOME/desktop-directories/arcade-*.directory`
//! - `$XDG_CONFIG_HOME/menus/applications-merged/arcade-astro-software.menu`
//! - `$XDG_DATA_HOME/icons/hicolor/{scalable,48x48}/apps/arcade-*.{svg,png}`
//! - optional shortcuts in the desktop folder, `arcade-*.desktop`
//! - for apps that open files: the VOTable type, `$XDG_DATA_HOME/mime/packages/arcade-votable.xml`,
//!   and the site's default apps, `$XDG_DATA_HOME/applications/mimeapps.list` ([`mime`])

pub mod caches;
pub mod desktop_entry;
pub mod icons;
pub mod install;
pub mod installed;
pub mod menu_xml;
pub mod mime;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::catalog::{Catalog, Image};
use crate::labels::IconSource;
use desktop_entry::Entry;

/// The vendor prefix of every file name and desktop file ID we write.
pub const VENDOR: &str = "arcade";
/// The subfolder of `applications/` holding our entries; it makes their IDs `arcade-*.desktop`.
pub const APPLICATIONS_SUBDIR: &str = VENDOR;
/// The merged menu file name.
pub const MENU_FILE: &str = "arcade-astro-software.menu";
/// The `.directory` file of the top menu.
pub const TOP_DIRECTORY: &str = "arcade-astro-software.directory";
/// The category every entry carries; unregistered categories must start with `X-`.
pub const CATEGORY: &str = "X-AstroSoftware";
/// The top menu's display name.
pub const TOP_NAME: &str = "Astro Software";

/// What the operator can choose about the menu's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Absolute path of the `arcade` binary that entries run.
    pub launcher: PathBuf,
    /// An app with more versions than this gets its own submenu.
    pub submenu_threshold: usize,
    /// Apps (`name` or `project/name`) that get a desktop shortcut to their newest version.
    pub shortcuts: Vec<String>,
    /// `StartupWMClass` per app name; apps not listed get the xterm default.
    pub wm_classes: BTreeMap<String, String>,
    /// The right-click resource choices of entries whose image names none of its own.
    pub presets: Vec<crate::labels::Resources>,
    /// Whether the launch backend offers GPUs; without, presets asking for one are left out
    /// (an image's label may name one that skaha could not give).
    pub gpus: bool,
    /// The file types each app opens (`menu.mime_types`), over [`KNOWN_MIME_TYPES`].
    pub mime_types: BTreeMap<String, Vec<String>>,
    /// The site's default app per file type (`menu.mime_defaults`), over
    /// [`mime::KNOWN_DEFAULTS`].
    pub mime_defaults: BTreeMap<String, String>,
}

/// The window class of the default command, xterm.
pub const DEFAULT_WM_CLASS: &str = "XTerm";

/// The window classes of the astronomy apps arcade knows, read from their real windows
/// (Debian's saods9 8.4, topcat 4.8, aladin 12 under Xvfb), so a window manager can end a
/// menu's busy cursor on its own; `menu.wm_class` adds to and overrides them.
pub const KNOWN_WM_CLASSES: &[(&str, &str)] = &[
    ("ds9", "Ds9.tcl"),
    ("saods9", "Ds9.tcl"),
    ("topcat", "uk-ac-starlink-topcat-Driver"),
    ("aladin", "cds-aladin-Aladin"),
];

/// The file types the astronomy apps arcade knows open, each app's main type first: DS9, CARTA
/// and Aladin open FITS images; TOPCAT opens VOTables, FITS tables and CSV. `menu.mime_types`
/// adds to and overrides them (an empty list: the app opens no files); aliases are added in
/// [`mime::types_for`].
pub const KNOWN_MIME_TYPES: &[(&str, &[&str])] = &[
    ("ds9", &[mime::FITS]),
    ("saods9", &[mime::FITS]),
    ("carta", &[mime::FITS]),
    ("aladin", &[mime::FITS]),
    ("topcat", &[mime::VOTABLE, mime::FITS, "text/csv"]),
];

/// The window class `app`'s windows carry, when known: configured, else built in.
pub fn known_wm_class<'a>(app: &str, configured: &'a BTreeMap<String, String>) -> Option<&'a str> {
    configured.get(app).map(String::as_str).or_else(|| {
        KNOWN_WM_CLASSES
            .iter()
            .find(|(name, _)| *name == app)
            .map(|(_, class)| *class)
    })
}

/// The `StartupWMClass` of an entry for `app`: its known class, else xterm's (the platform's
/// default app).
pub fn wm_class_for<'a>(app: &str, configured: &'a BTreeMap<String, String>) -> &'a str {
    known_wm_class(app, configured).unwrap_or(DEFAULT_WM_CLASS)
}

/// Which base directory a generated file lives under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Root {
    /// `$XDG_DATA_HOME`
    Data,
    /// `$XDG_CONFIG_HOME`
    Config,
    /// The user's desktop folder.
    Desktop,
}

/// One file of a plan: where it goes and its exact bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub root: Root,
    pub path: PathBuf,
    pub content: Vec<u8>,
    /// Desktop shortcuts are made executable, which file managers take as "trusted launcher".
    pub executable: bool,
}

/// The menu as a user sees it, stored with the install so `arcade menu list` shows what is there.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tree {
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub menus: Vec<Tree>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entries: Vec<TreeEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeEntry {
    pub name: String,
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    pub desktop_id: String,
}

/// A desktop shortcut that was planned, for the summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shortcut {
    pub app: String,
    pub image: String,
}

/// Everything a sync will put on disk.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub files: Vec<File>,
    pub tree: Tree,
    pub shortcuts: Vec<Shortcut>,
    /// Shortcut names the catalog has no image for.
    pub missing_shortcuts: Vec<String>,
}

impl Plan {
    pub fn n_entries(&self) -> usize {
        fn count(tree: &Tree) -> usize {
            tree.entries.len() + tree.menus.iter().map(count).sum::<usize>()
        }
        count(&self.tree)
    }
}

/// A submenu of the project menu, or a run of entries shown inline.
enum Item<'a> {
    Submenu {
        name: String,
        id: String,
        icon: &'static str,
        versions: Vec<Version<'a>>,
    },
    Entries(Vec<Version<'a>>),
}

struct Version<'a> {
    image: &'a Image,
    /// `image.launch_reference()`, built once: the file name, the entry and the tree all use it.
    reference: String,
    label: String,
    file_name: String,
}

/// Turns a catalog into the files of its menu.
pub fn plan(catalog: &Catalog, options: &Options) -> Plan {
    let mut files = Vec::new();
    let planned = plan_each(catalog, options, &mut |file| {
        files.push(file);
        Ok::<(), std::convert::Infallible>(())
    });
    let mut plan = match planned {
        Ok(plan) => plan,
        Err(never) => match never {},
    };
    plan.files = files;
    plan
}

/// [`plan`], handing each file to `put` as soon as it is made instead of collecting them, and
/// returning the plan without its files. A large menu's file texts are most of a sync's memory,
/// and this way they can be written while the rest is still being planned. The files come in the
/// order [`plan`] lists them; an error from `put` stops the planning and is returned.
pub fn plan_each<E>(
    catalog: &Catalog,
    options: &Options,
    put: &mut dyn FnMut(File) -> Result<(), E>,
) -> Result<Plan, E> {
    let mut plan = Plan::default();
    let mut names = UniqueNames::default();
    let launcher = options.launcher.to_string_lossy();

    // Group by project, then by repository; the catalog is sorted newest tag first already, but
    // sort again so `plan` does not depend on the caller having normalized.
    let mut projects: BTreeMap<&str, BTreeMap<&str, Vec<&Image>>> = BTreeMap::new();
    for image in &catalog.images {
        projects
            .entry(&image.project)
            .or_default()
            .entry(&image.repository)
            .or_default()
            .push(image);
    }

    // The merged menu is written project by project as each is planned, so the menus' lists of
    // entries need not all be kept until the end.
    let mut merged = menu_xml::Merged::new(TOP_NAME, TOP_DIRECTORY);
    let mut top_tree = Tree {
        name: TOP_NAME.to_owned(),
        ..Tree::default()
    };
    put(directory_file(TOP_DIRECTORY, TOP_NAME, icons::ASTRO))?;

    for (project, repositories) in &projects {
        let project_id = names.claim(&format!("project-{}", slug(project)), project);
        let project_directory = format!("{VENDOR}-{project_id}.directory");
        put(directory_file(&project_directory, project, "folder"))?;
        let items = project_items(project, repositories, &mut names, options);
        let mut project_menu = menu_xml::Menu::new(project_id, project_directory);
        let project_tree = put_project(
            project,
            &items,
            &mut project_menu,
            &Placing {
                launcher: &launcher,
                category: &format!("{CATEGORY}-{}", slug(project)),
                options,
            },
            put,
        )?;
        merged.add(&project_menu);
        top_tree.menus.push(project_tree);
    }

    put(File {
        root: Root::Config,
        path: Path::new("menus/applications-merged").join(MENU_FILE),
        content: merged.finish().into_bytes(),
        executable: false,
    })?;
    for file in icons::files() {
        put(file)?;
    }
    // The images' own icons, each picture once.
    let mut seen = HashSet::new();
    for image in &catalog.images {
        if let Some(IconSource::Inline { kind, bytes }) =
            image.about.as_deref().and_then(|about| about.icon.as_ref())
            && seen.insert(bytes.as_slice())
        {
            put(icons::from_label(*kind, bytes).1)?;
        }
    }
    for file in plan_shortcuts(&mut plan, catalog, options) {
        put(file)?;
    }
    for file in mime::files(catalog, &top_tree, options) {
        put(file)?;
    }
    plan.tree = top_tree;
    Ok(plan)
}

/// A project's items: each repository's versions, newest first, as entries of the project's
/// menu or, above the threshold, as a submenu of their own; submenus first, then single
/// entries, the usual menu convention and the order the tree records.
fn project_items<'a>(
    project: &str,
    repositories: &BTreeMap<&str, Vec<&'a Image>>,
    names: &mut UniqueNames,
    options: &Options,
) -> Vec<Item<'a>> {
    let project_slug = slug(project);
    let mut items = Vec::new();
    for (repository, images) in repositories {
        let mut images = images.clone();
        // Each tag is parsed once, not once per comparison.
        images.sort_by_cached_key(|image| {
            let image: &Image = image;
            crate::catalog::TagKey::new(&image.tag)
        });
        let repository_slug = slug(repository);
        let versions: Vec<Version> = fold_digests(&images)
            .into_iter()
            .map(|(image, label)| {
                let reference = image.launch_reference();
                let file_name = format!(
                    "{}.desktop",
                    names.claim(
                        &format!("{project_slug}-{repository_slug}-{}", slug(&image.tag)),
                        &reference,
                    )
                );
                Version {
                    image,
                    reference,
                    label,
                    file_name,
                }
            })
            .collect();
        let icon = icons::for_app(images[0].app_name());
        // A project of one app needs no level for the app: its versions are the project's.
        if versions.len() > options.submenu_threshold && repositories.len() > 1 {
            let id = names.claim(
                &format!("app-{project_slug}-{repository_slug}"),
                &format!("{project}/{repository}"),
            );
            items.push(Item::Submenu {
                name: (*repository).to_owned(),
                id,
                icon,
                versions,
            });
        } else {
            items.push(Item::Entries(versions));
        }
    }
    items.sort_by_key(|item| matches!(item, Item::Entries(_)));
    items
}

/// The longest name an entry shows; a longer one is cut with `…` (the Comment keeps the whole
/// reference), so one odd tag cannot stretch a submenu across the screen.
const MAX_SHOWN_NAME: usize = 64;

/// One entry per image, where tags of one digest (one registry) fold into the entry of the
/// first, newest, tag: `terminal:1.1 (latest)`. `images` is newest first; names are made unique
/// across registries and capped at [`MAX_SHOWN_NAME`].
fn fold_digests<'a>(images: &[&'a Image]) -> Vec<(&'a Image, String)> {
    let mut folded: Vec<(&Image, Vec<&str>)> = Vec::new();
    let mut by_digest: HashMap<(&str, &str), usize> = HashMap::new();
    for image in images {
        if let Some(digest) = &image.digest
            && let Some(&at) = by_digest.get(&(image.registry.as_str(), digest.as_str()))
        {
            folded[at].1.push(&image.tag);
            continue;
        }
        if let Some(digest) = &image.digest {
            by_digest.insert((&image.registry, digest), folded.len());
        }
        folded.push((image, Vec::new()));
    }
    let primaries: Vec<&Image> = folded.iter().map(|(image, _)| *image).collect();
    let labels = version_labels(&primaries);
    folded
        .into_iter()
        .zip(labels)
        .map(|((image, others), label)| {
            let label = if others.is_empty() {
                label
            } else {
                format!("{label} ({})", others.join(", "))
            };
            (image, cap(&label))
        })
        .collect()
}

/// `text` cut to [`MAX_SHOWN_NAME`] characters, ending in `…` when cut.
fn cap(text: &str) -> String {
    if text.chars().count() <= MAX_SHOWN_NAME {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(MAX_SHOWN_NAME - 1).collect();
    cut.push('…');
    cut
}

/// What every entry of a project is placed with.
struct Placing<'a> {
    launcher: &'a str,
    category: &'a str,
    options: &'a Options,
}

/// Hands out a project's files (submenu folders and entries), filling its menu; returns its
/// tree.
fn put_project<E>(
    project: &str,
    items: &[Item<'_>],
    project_menu: &mut menu_xml::Menu,
    placing: &Placing<'_>,
    put: &mut dyn FnMut(File) -> Result<(), E>,
) -> Result<Tree, E> {
    let mut project_tree = Tree {
        name: project.to_owned(),
        ..Tree::default()
    };
    for item in items {
        match item {
            Item::Submenu {
                name,
                id,
                icon,
                versions,
            } => {
                let directory = format!("{VENDOR}-{id}.directory");
                put(directory_file(&directory, name, icon))?;
                let mut submenu = menu_xml::Menu::new(id.clone(), directory);
                let mut sub_tree = Tree {
                    name: name.clone(),
                    ..Tree::default()
                };
                for version in versions {
                    put(add_version(&mut submenu, &mut sub_tree, version, placing))?;
                }
                project_menu
                    .layout
                    .push(menu_xml::LayoutItem::Menu(id.clone()));
                project_menu.menus.push(submenu);
                project_tree.menus.push(sub_tree);
            }
            Item::Entries(versions) => {
                for version in versions {
                    put(add_version(
                        project_menu,
                        &mut project_tree,
                        version,
                        placing,
                    ))?;
                }
            }
        }
    }
    Ok(project_tree)
}

/// The entry file of one version; records it in the menu and the tree.
fn add_version(
    menu: &mut menu_xml::Menu,
    tree: &mut Tree,
    version: &Version,
    placing: &Placing<'_>,
) -> File {
    let (launcher, project_category, options) =
        (placing.launcher, placing.category, placing.options);
    let desktop_id = format!("{VENDOR}-{}", version.file_name);
    let content = application_entry(
        version.image,
        &version.reference,
        &version.label,
        launcher,
        project_category,
        options,
    );
    let file = File {
        root: Root::Data,
        path: Path::new("applications")
            .join(APPLICATIONS_SUBDIR)
            .join(&version.file_name),
        content: content.into_bytes(),
        executable: false,
    };
    menu.include.push(desktop_id.clone());
    menu.layout
        .push(menu_xml::LayoutItem::File(desktop_id.clone()));
    tree.entries.push(TreeEntry {
        name: version.label.clone(),
        image: version.reference.clone(),
        digest: version.image.digest.clone(),
        desktop_id,
    });
    file
}

/// Labels for the versions of one repository: `repo:tag`, with the registry added where two
/// registries hold the same `repo:tag` in one project, so no two menu items read the same.
fn version_labels(images: &[&Image]) -> Vec<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for image in images {
        *seen.entry(image.label()).or_default() += 1;
    }
    images
        .iter()
        .map(|image| {
            let label = image.label();
            if seen[&label] > 1 {
                format!("{label} ({})", image.registry)
            } else {
                label
            }
        })
        .collect()
}

fn application_entry(
    image: &Image,
    reference: &str,
    label: &str,
    launcher: &str,
    project_category: &str,
    options: &Options,
) -> String {
    let app = image.app_name();
    let about = image.about.as_deref();
    let wm_class = about
        .and_then(|about| about.wm_class.as_deref())
        .unwrap_or_else(|| wm_class_for(app, &options.wm_classes));
    let comment = match about.and_then(|about| about.description.as_deref()) {
        Some(description) => format!("{description} ({reference})"),
        None => format!("{reference} in a container"),
    };
    let icon = match about.and_then(|about| about.icon.as_ref()) {
        Some(IconSource::Inline { bytes, .. }) => icons::label_name(bytes),
        _ => icons::for_app(app).to_owned(),
    };
    let mut categories = vec![CATEGORY, project_category];
    let mut words = vec![app, image.project.as_str(), "astronomy"];
    if let Some(about) = about {
        categories.extend(about.categories.iter().map(String::as_str));
        words.extend(about.keywords.iter().map(String::as_str));
    }
    let presets = presets_for(about, options);
    let ids: Vec<String> = presets.iter().map(action_id).collect();
    let mut entry = Entry::application();
    entry
        .string("Name", &shown_name(label, image, about))
        .string("Comment", &comment)
        .string("Icon", &icon)
        .string("TryExec", launcher);
    add_exec(&mut entry, launcher, reference, app, about, options);
    entry
        .boolean("Terminal", false)
        .list("Categories", &categories)
        .list("Keywords", &keywords(&words))
        .boolean("StartupNotify", true)
        .string("StartupWMClass", wm_class)
        .string("X-Arcade-Image", reference)
        .string("X-Arcade-Project", &image.project);
    if let Some(digest) = &image.digest {
        entry.string("X-Arcade-Digest", digest);
    }
    if !ids.is_empty() {
        entry.list(
            "Actions",
            &ids.iter().map(String::as_str).collect::<Vec<_>>(),
        );
    }
    for (preset, id) in presets.iter().zip(&ids) {
        let (cores, ram, gpus) = (
            preset.cores.to_string(),
            preset.ram_gb.to_string(),
            preset.gpus.to_string(),
        );
        let mut args = vec!["launch", "--from-menu", "--cores", &cores, "--ram", &ram];
        if preset.gpus > 0 {
            args.extend(["--gpus", gpus.as_str()]);
        }
        args.push(reference);
        entry.action(
            id,
            &format!("More resources: {}", preset.describe()),
            launcher,
            args,
        );
    }
    entry.into_text()
}

/// An entry's name: the image's own title, with the version part of its label, when it gives
/// one; else the label. Capped, like every shown name.
fn shown_name(label: &str, image: &Image, about: Option<&crate::labels::About>) -> String {
    match about.and_then(|about| about.title.as_deref()) {
        Some(title) => {
            let version = label
                .strip_prefix(&format!("{}:", image.repository))
                .unwrap_or(label);
            cap(&format!("{title} {version}"))
        }
        None => label.to_owned(),
    }
}

/// The right-click resource choices of an entry: the image's own, else the site's; none with a
/// GPU when the backend offers none.
fn presets_for(
    about: Option<&crate::labels::About>,
    options: &Options,
) -> Vec<crate::labels::Resources> {
    let presets = match about {
        Some(about) if !about.presets.is_empty() => &about.presets,
        _ => &options.presets,
    };
    presets
        .iter()
        .filter(|preset| options.gpus || preset.gpus == 0)
        .copied()
        .collect()
}

/// A `[Desktop Action]` id for a preset: `cores4-ram16[-gpus1]`.
fn action_id(preset: &crate::labels::Resources) -> String {
    let mut id = format!("cores{}-ram{}", preset.cores, preset.ram_gb);
    if preset.gpus > 0 {
        id.push_str(&format!("-gpus{}", preset.gpus));
    }
    id
}

/// Adds `Exec` (`arcade launch --from-menu REFERENCE`), and, for an app that opens files, the
/// field code `%F` for them and the `MimeType` they may have.
/// The image's own `mime-types` label wins over what arcade knows of the app.
fn add_exec(
    entry: &mut Entry,
    launcher: &str,
    reference: &str,
    app: &str,
    about: Option<&crate::labels::About>,
    options: &Options,
) {
    let args = ["launch", "--from-menu", reference];
    let types = mime::types_of(app, about, &options.mime_types);
    if types.is_empty() {
        entry.exec(launcher, args);
    } else {
        entry
            .exec_opening_files(launcher, args)
            .list("MimeType", &types);
    }
}

/// Search words for `Keywords`: a `;` inside a name splits it into two words instead of being
/// written as the spec's `\;` list escape, which some readers (the `freedesktop-desktop-entry`
/// crate) refuse, failing the whole file; for searching, the split words serve as well.
fn keywords<'a>(names: &[&'a str]) -> Vec<&'a str> {
    let mut words: Vec<&str> = Vec::new();
    for word in names.iter().flat_map(|name| name.split(';')) {
        if !word.trim().is_empty() && !words.contains(&word) {
            words.push(word);
        }
    }
    words
}

fn directory_file(file_name: &str, name: &str, icon: &str) -> File {
    let mut entry = Entry::directory();
    entry
        .string("Name", name)
        .string("Icon", icon)
        .boolean("X-Arcade-Generated", true);
    File {
        root: Root::Data,
        path: Path::new("desktop-directories").join(file_name),
        content: entry.into_text().into_bytes(),
        executable: false,
    }
}

/// The desktop shortcuts' files; records them (and those without an image) in the plan.
fn plan_shortcuts(plan: &mut Plan, catalog: &Catalog, options: &Options) -> Vec<File> {
    let launcher = options.launcher.to_string_lossy();
    let mut names = UniqueNames::default();
    let mut files = Vec::new();
    for wanted in &options.shortcuts {
        let Some(image) = crate::catalog::default_choice(&catalog.find(wanted)) else {
            plan.missing_shortcuts.push(wanted.clone());
            continue;
        };
        let reference = image.launch_reference();
        let app = image.app_name();
        let mut entry = Entry::application();
        entry
            .string("Name", app)
            .string(
                "Comment",
                &format!("{reference} in a container (newest release)"),
            )
            .string("Icon", icons::for_app(app))
            .string("TryExec", &launcher);
        let about = image.about.as_deref();
        add_exec(&mut entry, &launcher, &reference, app, about, options);
        let wm_class = about
            .and_then(|about| about.wm_class.as_deref())
            .unwrap_or_else(|| wm_class_for(app, &options.wm_classes));
        entry
            .boolean("Terminal", false)
            .boolean("StartupNotify", true)
            .string("StartupWMClass", wm_class)
            .string("X-Arcade-Image", &reference)
            .string("X-Arcade-Shortcut", wanted);
        let file_name = format!(
            "{VENDOR}-{}.desktop",
            names.claim(&format!("shortcut-{}", slug(wanted)), wanted)
        );
        files.push(File {
            root: Root::Desktop,
            path: PathBuf::from(file_name),
            content: entry.into_text().into_bytes(),
            executable: true,
        });
        plan.shortcuts.push(Shortcut {
            app: wanted.clone(),
            image: reference,
        });
    }
    files
}

/// Makes a file-name-safe, readable fragment: lowercase ASCII letters and digits, other runs of
/// characters become one `-`, at most 40 bytes. Uniqueness comes from [`UniqueNames`], not here.
pub fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
        if out.len() >= 40 {
            break;
        }
    }
    let trimmed = out.trim_end_matches('-');
    if trimmed.is_empty() {
        "x".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// Hands out names `<readable>-<hash>` where the hash is taken from the full identity, so names
/// are stable across syncs and distinct identities never share a file, even when their readable
/// parts are equal (`a_b` and `a.b`) or truncated.
#[derive(Default)]
struct UniqueNames {
    taken: HashSet<String>,
}

impl UniqueNames {
    fn claim(&mut self, readable: &str, identity: &str) -> String {
        let digest = ring::digest::digest(&ring::digest::SHA256, identity.as_bytes());
        let hex = hex(&digest.as_ref()[..6]);
        let mut name = format!("{readable}-{hex}");
        // Two identities sharing 48 bits of SHA-256 is all but impossible; if it happens, a counter
        // keeps them apart rather than one overwriting the other.
        let mut n = 2;
        while !self.taken.insert(name.clone()) {
            name = format!("{readable}-{hex}-{n}");
            n += 1;
        }
        name
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 15)]));
    }
    out
}

/// Draws the tree with box-drawing characters, one menu or entry per line.
pub fn render_tree(tree: &Tree) -> String {
    fn walk(tree: &Tree, prefix: &str, out: &mut String) {
        let n = tree.menus.len() + tree.entries.len();
        let lines = tree
            .menus
            .iter()
            .map(|menu| (menu.name.as_str(), Some(menu)))
            .chain(tree.entries.iter().map(|entry| (entry.name.as_str(), None)));
        for (i, (name, menu)) in lines.enumerate() {
            let last = i + 1 == n;
            let _ = writeln!(out, "{prefix}{}{name}", if last { "└── " } else { "├── " });
            if let Some(menu) = menu {
                let deeper = format!("{prefix}{}", if last { "    " } else { "│   " });
                walk(menu, &deeper, out);
            }
        }
    }
    let mut out = format!("{}\n", tree.name);
    walk(tree, "", &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog(ids: &[&str]) -> Catalog {
        crate::catalog::of_ids(ids)
    }

    fn options() -> Options {
        Options {
            launcher: "/usr/bin/arcade".into(),
            submenu_threshold: 2,
            shortcuts: vec!["casa".into(), "nothing".into()],
            wm_classes: BTreeMap::new(),
            presets: vec![],
            gpus: false,
            mime_types: BTreeMap::new(),
            mime_defaults: BTreeMap::new(),
        }
    }

    #[test]
    fn an_images_labels_describe_its_entry() {
        use crate::labels::{self, Resources};
        let mut catalog = catalog(&["h/cirada/ds9:8.4"]);
        let png: Vec<u8> = {
            let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
            bytes.extend(48u32.to_be_bytes());
            bytes.extend(48u32.to_be_bytes());
            bytes.extend([8, 6, 0, 0, 0]);
            bytes
        };
        catalog.images[0].about = Some(std::sync::Arc::new(labels::About {
            title: Some("SAOImage DS9".into()),
            description: Some("Astronomical imaging".into()),
            icon: Some(IconSource::Inline {
                kind: labels::IconKind::Png,
                bytes: png,
            }),
            categories: vec!["X-Imaging".into()],
            keywords: vec!["fits".into()],
            wm_class: Some("Ds9.tcl".into()),
            presets: vec![Resources {
                cores: 16,
                ram_gb: 64,
                gpus: 0,
            }],
            ..labels::About::default()
        }));
        let mut options = options();
        options.presets = vec![Resources {
            cores: 4,
            ram_gb: 16,
            gpus: 0,
        }];
        let plan = plan(&catalog, &options);
        let entry = plan
            .files
            .iter()
            .find(|file| file.path.to_string_lossy().ends_with(".desktop"))
            .unwrap();
        let text = String::from_utf8_lossy(&entry.content);
        for line in [
            "Name=SAOImage DS9 8.4",
            "Comment=Astronomical imaging (h/cirada/ds9:8.4)",
            "Categories=X-AstroSoftware;X-AstroSoftware-cirada;X-Imaging;",
            "StartupWMClass=Ds9.tcl",
            "Actions=cores16-ram64;",
            "[Desktop Action cores16-ram64]",
            "Name=More resources: 16 cores, 64 GB",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
        }
        let icon = text.lines().find_map(|l| l.strip_prefix("Icon=")).unwrap();
        assert!(icon.starts_with("arcade-img-"), "{icon}");
        assert!(plan.files.iter().any(|file| {
            file.path
                .ends_with(format!("icons/hicolor/48x48/apps/{icon}.png"))
        }));
    }

    #[test]
    fn an_images_mime_types_label_makes_it_open_files() {
        let mut catalog = catalog(&["h/cirada/fv:5.5", "h/cirada/plain:1"]);
        catalog.images[0].about = Some(std::sync::Arc::new(crate::labels::About {
            mime_types: vec!["application/fits".into(), "text/csv".into()],
            ..crate::labels::About::default()
        }));
        let plan = plan(&catalog, &options());
        let entry = |app: &str| {
            let file = plan
                .files
                .iter()
                .find(|file| {
                    let name = file.path.to_string_lossy();
                    name.ends_with(".desktop") && name.contains(app)
                })
                .unwrap();
            String::from_utf8_lossy(&file.content).into_owned()
        };
        let fv = entry("fv");
        assert!(
            fv.lines()
                .any(|l| l == "MimeType=application/fits;image/fits;image/x-fits;text/csv;"),
            "{fv}"
        );
        assert!(
            fv.lines()
                .any(|l| l.starts_with("Exec=") && l.ends_with(" %F")),
            "{fv}"
        );
        let plain = entry("plain");
        assert!(
            !plain.contains("MimeType") && !plain.contains("%F"),
            "{plain}"
        );
    }

    #[test]
    fn a_gpu_preset_shows_only_where_the_backend_offers_gpus() {
        use crate::labels::Resources;
        let catalog = catalog(&["h/cirada/ds9:8.4"]);
        let mut options = options();
        options.presets = ["4/16", "8/32/1"]
            .iter()
            .filter_map(|text| Resources::parse_slashed(text))
            .collect();
        let actions = |options: &Options| {
            let plan = plan(&catalog, options);
            let entry = plan
                .files
                .iter()
                .find(|file| file.path.to_string_lossy().ends_with(".desktop"))
                .unwrap();
            String::from_utf8_lossy(&entry.content)
                .lines()
                .find_map(|line| line.strip_prefix("Actions=").map(str::to_owned))
        };
        assert_eq!(actions(&options).as_deref(), Some("cores4-ram16;"));
        options.gpus = true;
        assert_eq!(
            actions(&options).as_deref(),
            Some("cores4-ram16;cores8-ram32-gpus1;")
        );
    }

    #[test]
    fn tags_of_one_digest_fold_into_one_entry() {
        let mut catalog = catalog(&["h/skaha/terminal:1.0", "h/skaha/terminal:1.1"]);
        let mut latest = Image::parse("h/skaha/terminal:latest").unwrap();
        latest.digest = catalog.images[0].digest.clone();
        assert_eq!(catalog.images[0].tag, "1.1");
        catalog.images.push(latest);
        catalog.normalize();
        let plan = plan(&catalog, &options());
        assert_eq!(
            render_tree(&plan.tree),
            "Astro Software\n└── skaha\n    ├── terminal:1.1 (latest)\n    └── terminal:1.0\n"
        );
        assert_eq!(plan.n_entries(), 2);
    }

    #[test]
    fn a_project_of_one_app_has_no_level_for_the_app() {
        let plan = plan(
            &catalog(&["h/casa/casa:6.5", "h/casa/casa:6.6", "h/casa/casa:7.0"]),
            &options(),
        );
        assert_eq!(
            render_tree(&plan.tree),
            "Astro Software\n└── casa\n    ├── casa:7.0\n    ├── casa:6.6\n    └── casa:6.5\n"
        );
    }

    #[test]
    fn long_names_are_capped_and_the_comment_keeps_the_reference() {
        let tag = "x".repeat(120);
        let reference = format!("h/p/app:{tag}");
        let plan = plan(&catalog(&[reference.as_str()]), &options());
        let name = &plan.tree.menus[0].entries[0].name;
        assert_eq!(name.chars().count(), MAX_SHOWN_NAME);
        assert!(name.ends_with('…'), "{name}");
        let entry = plan
            .files
            .iter()
            .find(|file| file.path.extension().is_some_and(|ext| ext == "desktop"))
            .unwrap();
        let text = String::from_utf8_lossy(&entry.content);
        assert!(
            text.contains(&format!("Comment={reference} in a container")),
            "{text}"
        );
    }

    #[test]
    fn builds_the_tree() {
        let plan = plan(
            &catalog(&[
                "h/skaha/terminal:1.0",
                "h/skaha/casa:6.9",
                "h/skaha/casa:6.10",
                "h/skaha/casa:5.0",
                "h/other/terminal:1.0",
            ]),
            &options(),
        );
        assert_eq!(
            render_tree(&plan.tree),
            "Astro Software\n\
             ├── other\n\
             │   └── terminal:1.0\n\
             └── skaha\n    \
                 ├── casa\n    \
                 │   ├── casa:6.10\n    \
                 │   ├── casa:6.9\n    \
                 │   └── casa:5.0\n    \
                 └── terminal:1.0\n"
        );
        assert_eq!(plan.n_entries(), 5);
        assert_eq!(plan.shortcuts.len(), 1);
        assert_eq!(plan.shortcuts[0].image, "h/skaha/casa:6.10");
        assert_eq!(plan.missing_shortcuts, ["nothing"]);
    }

    #[test]
    fn same_repo_and_tag_in_two_projects_get_two_files() {
        let plan = plan(
            &catalog(&["h/a/terminal:1.0", "h/b/terminal:1.0"]),
            &options(),
        );
        let entries: HashSet<&Path> = plan
            .files
            .iter()
            .filter(|f| f.path.extension().is_some_and(|e| e == "desktop"))
            .filter(|f| f.root == Root::Data)
            .map(|f| f.path.as_path())
            .collect();
        assert_eq!(entries.len(), 2);
    }

    #[test]
    fn slugs_are_safe() {
        assert_eq!(slug("../../etc/passwd"), "etc-passwd");
        assert_eq!(slug("Ünïcode ☃"), "n-code");
        assert_eq!(slug("$()"), "x");
        assert!(slug(&"a".repeat(500)).len() <= 40);
    }

    #[test]
    fn keywords_need_no_list_escape() {
        assert_eq!(
            keywords(&["a;b", "p", "astronomy", "a"]),
            ["a", "b", "p", "astronomy"]
        );
        assert_eq!(keywords(&[";", "x"]), ["x"]);
    }

    #[test]
    fn plans_are_deterministic() {
        let a = plan(&catalog(&["h/p/r:1", "h/p/r:2"]), &options());
        let b = plan(&catalog(&["h/p/r:2", "h/p/r:1"]), &options());
        assert_eq!(a.files, b.files);
    }
}
