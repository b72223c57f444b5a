//! Opening data files with the menu's apps: which file types each app opens, the VOTable type
//! arcade adds to the MIME database, and the site's default apps. Pure: the files come out as
//! parts of the plan, installed and removed like every other file arcade writes.
//!
//! An entry for an app that opens files lists them in `MimeType` and ends its `Exec` in `%F`, so
//! file managers offer it under "Open With". A site's default for a type goes into arcade's own
//! `$XDG_DATA_HOME/applications/mimeapps.list`, which the MIME applications spec reads after the
//! user's `$XDG_CONFIG_HOME/mimeapps.list`: a choice of the user's always comes first, and arcade
//! never writes to the user's file.
//! See: <https://specifications.freedesktop.org/mime-apps-spec/latest/>,
//! <https://specifications.freedesktop.org/shared-mime-info-spec/latest/>

use std::collections::BTreeMap;

use super::{File, Root, Tree, TreeEntry};
use crate::catalog::{self, Catalog, Image};

/// FITS, as shared-mime-info 2.2 and later name it.
pub const FITS: &str = "application/fits";
/// VOTable, the IVOA's XML table format, under the name TOPCAT's and Aladin's own Debian entries
/// use; shared-mime-info has no type for it, so arcade adds one ([`votable_package`]).
pub const VOTABLE: &str = "application/x-votable+xml";

/// The names older shared-mime-info (before 2.2) and `file(1)` give a type, written beside it
/// so an entry is offered whichever name a desktop's database uses.
const ALIASES: &[(&str, &[&str])] = &[(FITS, &["image/fits", "image/x-fits"])];

/// The default app for a type when the site names none (`menu.mime_defaults`): the platform's
/// user guide promises that a double-clicked FITS file opens in DS9.
pub const KNOWN_DEFAULTS: &[(&str, &str)] = &[(FITS, "ds9"), (VOTABLE, "topcat")];

/// Where arcade's share of the MIME database goes, under `$XDG_DATA_HOME`.
pub const PACKAGE: &str = "mime/packages/arcade-votable.xml";
/// arcade's list of default apps, under `$XDG_DATA_HOME`.
pub const MIMEAPPS: &str = "applications/mimeapps.list";

/// The types an entry for `app` lists: configured (`menu.mime_types`), else built in
/// ([`super::KNOWN_MIME_TYPES`]), each followed by its aliases; empty for an app that opens no
/// files.
pub fn types_for<'a>(app: &str, configured: &'a BTreeMap<String, Vec<String>>) -> Vec<&'a str> {
    let named: Vec<&str> = match configured.get(app) {
        Some(types) => types.iter().map(String::as_str).collect(),
        None => super::KNOWN_MIME_TYPES
            .iter()
            .find(|(name, _)| *name == app)
            .map(|(_, types)| types.to_vec())
            .unwrap_or_default(),
    };
    with_aliases(named)
}

/// Each type followed by its aliases, once each.
fn with_aliases<'a>(named: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let mut types: Vec<&str> = Vec::new();
    for name in named {
        let aliases = ALIASES
            .iter()
            .find(|(canonical, _)| *canonical == name)
            .map_or(&[][..], |(_, aliases)| aliases);
        for name in std::iter::once(name).chain(aliases.iter().copied()) {
            if !types.contains(&name) {
                types.push(name);
            }
        }
    }
    types
}

/// The types an entry for `app` lists, as [`types_for`], unless the image's own `mime-types`
/// label names some: then those, each followed by its aliases.
pub fn types_of<'a>(
    app: &str,
    about: Option<&'a crate::labels::About>,
    configured: &'a BTreeMap<String, Vec<String>>,
) -> Vec<&'a str> {
    match about.filter(|about| !about.mime_types.is_empty()) {
        Some(about) => with_aliases(about.mime_types.iter().map(String::as_str)),
        None => types_for(app, configured),
    }
}

/// Whether `app` opens files at all.
pub fn opens_files(app: &str, configured: &BTreeMap<String, Vec<String>>) -> bool {
    !types_for(app, configured).is_empty()
}

/// The default app for each type: the site's (`menu.mime_defaults`, where an empty name takes a
/// built-in default away), else the built-in ones.
pub fn defaults(configured: &BTreeMap<String, String>) -> BTreeMap<&str, &str> {
    let mut defaults: BTreeMap<&str, &str> = KNOWN_DEFAULTS.iter().copied().collect();
    for (mime_type, app) in configured {
        defaults.insert(mime_type, app);
    }
    defaults.retain(|_, app| !app.is_empty());
    defaults
}

/// The MIME files of a plan: the VOTable package when an entry opens VOTables, and arcade's
/// `mimeapps.list` when a default app for some type is in the menu.
pub fn files(catalog: &Catalog, tree: &Tree, options: &super::Options) -> Vec<File> {
    let mut files = Vec::new();
    let opens_votables = catalog
        .images
        .iter()
        .any(|image| types_for(image.app_name(), &options.mime_types).contains(&VOTABLE));
    if opens_votables {
        files.push(File {
            root: Root::Data,
            path: PACKAGE.into(),
            content: votable_package().into_bytes(),
            executable: false,
        });
    }
    let chosen = default_entries(catalog, tree, options);
    if !chosen.is_empty() {
        files.push(File {
            root: Root::Data,
            path: MIMEAPPS.into(),
            content: mimeapps_list(&chosen).into_bytes(),
            executable: false,
        });
    }
    files
}

/// The desktop file ID of each type's default app, for the defaults whose app is in the menu
/// and opens that type: its newest release, as desktop shortcuts choose it.
fn default_entries<'a>(
    catalog: &Catalog,
    tree: &'a Tree,
    options: &super::Options,
) -> BTreeMap<String, &'a str> {
    let mut chosen = BTreeMap::new();
    for (mime_type, app) in defaults(&options.mime_defaults) {
        let Some(image) = catalog::default_choice(&catalog.find(app)) else {
            continue;
        };
        if !types_for(image.app_name(), &options.mime_types).contains(&mime_type) {
            continue;
        }
        if let Some(entry) = entry_of(tree, image) {
            chosen.insert(mime_type.to_owned(), entry.desktop_id.as_str());
        }
    }
    chosen
}

/// The tree's entry for `image`: its own, or the one its tag was folded into (same repository,
/// same digest).
fn entry_of<'a>(tree: &'a Tree, image: &Image) -> Option<&'a TreeEntry> {
    let reference = image.launch_reference();
    let repository = format!("{}/{}/{}:", image.registry, image.project, image.repository);
    let same_digest = |entry: &TreeEntry| {
        image.digest.is_some()
            && entry.digest == image.digest
            && entry.image.starts_with(&repository)
    };
    tree.entries
        .iter()
        .find(|entry| entry.image == reference)
        .or_else(|| tree.entries.iter().find(|entry| same_digest(entry)))
        .or_else(|| tree.menus.iter().find_map(|menu| entry_of(menu, image)))
}

/// arcade's `mimeapps.list`: the default apps, and a group that marks the file as arcade's
/// (readers ignore groups they do not know).
fn mimeapps_list(chosen: &BTreeMap<String, &str>) -> String {
    let mut text = String::from(
        "# Written by arcade menu sync: the site's default apps for file types. Choices of your\n\
         # own (in ~/.config/mimeapps.list) come first; `arcade menu clean` removes this file.\n\
         [Default Applications]\n",
    );
    for (mime_type, desktop_id) in chosen {
        text.push_str(&format!("{mime_type}={desktop_id};\n"));
    }
    text.push_str("\n[X-Arcade]\nX-Arcade-Generated=true\n");
    text
}

/// The VOTable type for shared-mime-info: XML (so it is also offered to XML tools) named by the
/// extensions VOTables carry and by its root element, `VOTABLE`, in each namespace the IVOA gave
/// it (1.3 onwards share one) or in none, as older files have it. The magic rule finds one
/// without an extension, above plain XML's priority.
pub fn votable_package() -> String {
    let namespaces = [
        "http://www.ivoa.net/xml/VOTable/v1.3",
        "http://www.ivoa.net/xml/VOTable/v1.2",
        "http://www.ivoa.net/xml/VOTable/v1.1",
        "http://www.ivoa.net/xml/VOTable/v1.0",
        "",
    ];
    let mut roots = String::new();
    for namespace in namespaces {
        roots.push_str(&format!(
            "    <root-XML namespaceURI=\"{namespace}\" localName=\"VOTABLE\"/>\n"
        ));
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <!-- Written by arcade menu sync: the VOTable type, which shared-mime-info lacks. -->\n\
         <mime-info xmlns=\"http://www.freedesktop.org/standards/shared-mime-info\">\n  \
           <mime-type type=\"{VOTABLE}\">\n    \
             <comment>VOTable</comment>\n    \
             <acronym>VOTable</acronym>\n    \
             <expanded-acronym>Virtual Observatory Table</expanded-acronym>\n    \
             <sub-class-of type=\"application/xml\"/>\n    \
             <generic-icon name=\"x-office-spreadsheet\"/>\n    \
             <glob pattern=\"*.vot\"/>\n    \
             <glob pattern=\"*.votable\"/>\n    \
             <magic priority=\"50\">\n      \
               <match type=\"string\" value=\"&lt;VOTABLE\" offset=\"0:1024\"/>\n    \
             </magic>\n\
         {roots}  \
           </mime-type>\n\
         </mime-info>\n"
    )
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn catalog(ids: &[&str]) -> Catalog {
        crate::catalog::of_ids(ids)
    }

    fn options() -> super::super::Options {
        super::super::Options {
            launcher: "/usr/bin/arcade".into(),
            submenu_threshold: 5,
            shortcuts: vec![],
            wm_classes: BTreeMap::new(),
            presets: vec![],
            gpus: false,
            mime_types: BTreeMap::new(),
            mime_defaults: BTreeMap::new(),
        }
    }

    #[test]
    fn known_apps_open_their_types_with_aliases_and_the_site_overrides_them() {
        let none = BTreeMap::new();
        assert_eq!(
            types_for("ds9", &none),
            ["application/fits", "image/fits", "image/x-fits"]
        );
        assert_eq!(
            types_for("topcat", &none),
            [VOTABLE, FITS, "image/fits", "image/x-fits", "text/csv"]
        );
        assert!(types_for("terminal", &none).is_empty());
        let site: BTreeMap<String, Vec<String>> = [
            ("ds9".to_owned(), vec![]),
            ("glue".to_owned(), vec!["text/csv".to_owned()]),
        ]
        .into();
        assert!(!opens_files("ds9", &site));
        assert_eq!(types_for("glue", &site), ["text/csv"]);
    }

    #[test]
    fn defaults_go_to_the_newest_release_of_an_app_that_opens_the_type() {
        let catalog = catalog(&[
            "h/skaha/ds9:8.4",
            "h/skaha/ds9:8.5",
            "h/skaha/ds9:9.0-beta",
            "h/skaha/topcat:4.8",
            "h/skaha/terminal:1.0",
        ]);
        let mut options = options();
        let plan = super::super::plan(&catalog, &options);
        let list = plan
            .files
            .iter()
            .find(|file| file.path == Path::new(MIMEAPPS))
            .map(|file| String::from_utf8_lossy(&file.content).into_owned())
            .unwrap();
        let ds9 = entry_of(&plan.tree, catalog.find("ds9:8.5")[0]).unwrap();
        assert!(
            list.contains(&format!("\napplication/fits={};\n", ds9.desktop_id)),
            "{list}"
        );
        assert!(
            list.contains("\napplication/x-votable+xml=arcade-"),
            "{list}"
        );
        assert!(
            plan.files
                .iter()
                .any(|file| file.path == Path::new(PACKAGE))
        );

        // A default whose app does not open the type, or is not in the menu, is left out; an
        // empty name takes a built-in default away.
        options.mime_defaults = [
            ("application/fits".to_owned(), String::new()),
            ("text/csv".to_owned(), "terminal".to_owned()),
            ("text/plain".to_owned(), "emacs".to_owned()),
        ]
        .into();
        options.mime_types = [("topcat".to_owned(), vec!["text/csv".to_owned()])].into();
        let plan = super::super::plan(&catalog, &options);
        assert!(
            !plan
                .files
                .iter()
                .any(|file| file.path == Path::new(MIMEAPPS) || file.path == Path::new(PACKAGE))
        );
    }
}
