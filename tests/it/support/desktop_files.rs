//! Desktop entry files (`.desktop`, `.directory`) read back by independent readers, never by
//! arcade's own code: the real `desktop-file-validate`, python-xdg's validator, and the
//! `freedesktop-desktop-entry` crate, through which every generated file is also held to what
//! arcade's generator promises for its kind (menu entry, desktop shortcut, menu directory).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use freedesktop_desktop_entry::{DesktopEntry, GenericEntry};

use super::{Home, require_tool};

/// The spec version arcade writes (`desktop-file-validate` 0.26 rejects 1.5).
const SPEC_VERSION: &str = "1.4";
/// The category every menu entry carries, so menus place it under Astro Software only.
const CATEGORY: &str = "X-AstroSoftware";

/// Reads a `.desktop` file with the crate; panics when it does not parse.
#[track_caller]
pub fn read_entry(path: &Path) -> DesktopEntry {
    DesktopEntry::from_path(path.to_owned(), None::<&[&str]>)
        .unwrap_or_else(|err| panic!("{} does not parse: {err}", path.display()))
}

/// Reads a `.directory` file with the crate's generic reader (its `DesktopEntry` takes only
/// `.desktop` paths, from which it derives an application ID); panics when it does not parse.
#[track_caller]
pub fn read_directory(path: &Path) -> GenericEntry {
    GenericEntry::from_path(path)
        .unwrap_or_else(|err| panic!("{} does not parse: {err}", path.display()))
}

/// A key of a `.directory` file's `[Desktop Entry]` group.
pub fn directory_key<'a>(entry: &'a GenericEntry, key: &str) -> Option<&'a str> {
    entry.group("Desktop Entry")?.entry(key)
}

/// The arcade binary as generated entries name it (the canonical path of the running binary).
pub fn launcher() -> String {
    std::fs::canonicalize(env!("CARGO_BIN_EXE_arcade"))
        .unwrap()
        .display()
        .to_string()
}

/// Every generated `.desktop` and `.directory` file of a home (entries, directories, shortcuts in
/// `~/Desktop`), sorted.
pub fn generated(home: &Home) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in [
        home.applications(),
        home.data().join("desktop-directories"),
        home.desktop(),
    ] {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                let path = entry.path();
                if path
                    .extension()
                    .is_some_and(|ext| ext == "desktop" || ext == "directory")
                {
                    files.push(path);
                }
            }
        }
    }
    files.sort();
    files
}

/// Runs every validator on each file and reads each with the crate; panics on the first error
/// or warning any of them reports.
#[track_caller]
pub fn validate(files: &[PathBuf]) {
    assert!(!files.is_empty(), "no files to validate");
    run_desktop_file_validate(files);
    run_pyxdg_validator(files);
    for path in files {
        if path.extension().is_some_and(|ext| ext == "directory") {
            read_directory(path);
        } else {
            read_entry(path);
        }
    }
}

/// [`validate`], and each file checked against what arcade promises for its kind.
#[track_caller]
pub fn validate_generated(files: &[PathBuf]) {
    validate(files);
    for path in files {
        check_generated(path);
    }
}

/// [`validate_generated`] on every generated file of a home; the images its application entries
/// (menu entries and shortcuts) launch.
#[track_caller]
pub fn validate_home(home: &Home) -> BTreeSet<String> {
    let files = generated(home);
    validate_generated(&files);
    entry_images(&files)
}

/// The images (`X-Arcade-Image`) the application entries among `files` launch, each entry
/// checked against arcade's promises.
#[track_caller]
pub fn entry_images(files: &[PathBuf]) -> BTreeSet<String> {
    files
        .iter()
        .filter(|path| path.extension().is_some_and(|ext| ext == "desktop"))
        .map(|path| check_generated(path).expect("an application entry has an image"))
        .collect()
}

/// The real `desktop-file-validate`.
#[track_caller]
fn run_desktop_file_validate(files: &[PathBuf]) {
    let validator = require_tool("desktop-file-validate", "desktop-file-utils");
    for chunk in files.chunks(200) {
        let output = Command::new(&validator)
            .args(chunk)
            .output()
            .expect("run desktop-file-validate");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        // Hints (such as "no registered main category", which is on purpose: only X- categories
        // keep our entries out of other menus) are not errors.
        let errors: Vec<&str> = text
            .lines()
            .filter(|line| line.contains("error:") || line.contains("warning:"))
            .collect();
        assert!(
            output.status.success() && errors.is_empty(),
            "desktop-file-validate rejected the files:\n{text}"
        );
    }
}

/// python-xdg's validator.
#[track_caller]
fn run_pyxdg_validator(files: &[PathBuf]) {
    const SCRIPT: &str = r#"
import sys, xdg.DesktopEntry, xdg.Exceptions
for path in sys.argv[1:]:
    entry = xdg.DesktopEntry.DesktopEntry()
    entry.parse(path)
    try:
        entry.validate()
    except xdg.Exceptions.ValidationError:
        pass
    # Only X- categories is on purpose: it keeps the entries out of every other menu.
    for message in entry.errors + entry.warnings:
        if message.strip() != "Missing main category":
            print(path + ": " + message)
"#;
    let python = Path::new("/usr/bin/python3");
    assert!(
        python.is_file(),
        "/usr/bin/python3 is missing: apt-get install python3-xdg (.ci/run installs it)"
    );
    for chunk in files.chunks(200) {
        let output = Command::new(python)
            .arg("-c")
            .arg(SCRIPT)
            .args(chunk)
            .stdin(Stdio::null())
            .output()
            .expect("run python3");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.trim().is_empty(),
            "python-xdg rejected the files (apt-get install python3-xdg):\n{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// What a generated file is, by where arcade puts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `applications/arcade/*.desktop`: in the menu.
    MenuEntry,
    /// Any other `.desktop`: on the user's desktop.
    Shortcut,
    /// `desktop-directories/*.directory`: a menu's name and icon.
    Directory,
}

fn kind_of(path: &Path) -> Kind {
    let parent = |n: usize| {
        path.ancestors()
            .nth(n)
            .and_then(Path::file_name)
            .and_then(|name| name.to_str())
    };
    match path.extension().and_then(|ext| ext.to_str()) {
        Some("directory") => Kind::Directory,
        Some("desktop") if parent(1) == Some("arcade") && parent(2) == Some("applications") => {
            Kind::MenuEntry
        }
        Some("desktop") => Kind::Shortcut,
        _ => panic!("{} is not a desktop entry file", path.display()),
    }
}

/// Checks a generated file against what arcade promises for its kind; the image an application
/// entry launches.
#[track_caller]
pub fn check_generated(path: &Path) -> Option<String> {
    let kind = kind_of(path);
    // A menu entry's desktop file ID takes the vendor prefix from its folder
    // (`applications/arcade/x.desktop` is `arcade-x.desktop`); other files carry it in their name.
    let name = match kind {
        Kind::MenuEntry => read_entry(path).id().to_owned(),
        Kind::Shortcut | Kind::Directory => {
            path.file_name().unwrap().to_string_lossy().into_owned()
        }
    };
    assert!(
        name.starts_with("arcade-"),
        "{} ({name}) lacks the vendor prefix",
        path.display()
    );
    match kind {
        Kind::Directory => {
            check_directory(path);
            None
        }
        kind => Some(check_application(path, kind)),
    }
}

/// A menu's `.directory`: a named, iconed directory marked as arcade's.
#[track_caller]
fn check_directory(path: &Path) {
    let entry = read_directory(path);
    let key = |key: &str| directory_key(&entry, key);
    let what = path.display();
    assert_eq!(key("Type"), Some("Directory"), "{what}");
    assert_eq!(key("Version"), Some(SPEC_VERSION), "{what}");
    assert!(key("Name").is_some_and(|name| !name.is_empty()), "{what}");
    assert!(key("Icon").is_some_and(is_icon_name), "{what}");
    assert_eq!(key("X-Arcade-Generated"), Some("true"), "{what}");
}

/// A menu entry or shortcut: it runs the absolute arcade binary with `launch --from-menu IMAGE`
/// for its image and nothing else (but the files it opens, when it lists file types), read as the
/// crate and as the spec read `Exec`, with startup notification and a window class; a menu entry
/// is filed under arcade's category only, a shortcut in no menu. Returns the image.
#[track_caller]
fn check_application(path: &Path, kind: Kind) -> String {
    let entry = read_entry(path);
    let what = format!(
        "{}:\n{}",
        path.display(),
        std::fs::read_to_string(path).unwrap()
    );
    let image = entry
        .desktop_entry("X-Arcade-Image")
        .unwrap_or_else(|| panic!("no X-Arcade-Image in {what}"))
        .to_owned();
    assert_eq!(entry.type_(), Some("Application"), "{what}");
    assert_eq!(entry.version(), Some(SPEC_VERSION), "{what}");
    assert!(
        entry
            .name(&[] as &[&str])
            .is_some_and(|name| !name.is_empty()),
        "{what}"
    );
    // The comment names the image: alone, or after the image's own description.
    assert!(
        entry.comment(&[] as &[&str]).is_some_and(|comment| {
            comment.starts_with(&image) || comment.ends_with(&format!(" ({image})"))
        }),
        "{what}"
    );
    // Apps get the icons arcade installs into the user's theme.
    assert!(
        entry
            .icon()
            .is_some_and(|icon| is_icon_name(icon) && icon.starts_with("arcade-")),
        "{what}"
    );
    let launcher = launcher();
    assert!(Path::new(&launcher).is_absolute());
    assert_eq!(entry.try_exec(), Some(launcher.as_str()), "{what}");
    let expected = [launcher.as_str(), "launch", "--from-menu", image.as_str()];
    assert_eq!(entry.parse_exec().unwrap(), expected, "{what}");
    let exec = entry.exec().unwrap_or_else(|| panic!("no Exec in {what}"));
    assert_eq!(spec_exec_args(exec), expected, "{what}");
    // An entry that lists file types takes the files last, each an argument of its own.
    let files = ["/data/My Data ü/m31.fits", "/data/t.vot"];
    let opened: Vec<&str> = expected.iter().chain(&files).copied().collect();
    match entry.mime_type() {
        Some(types) => {
            assert!(types.iter().any(|t| !t.is_empty()), "{what}");
            assert!(exec.ends_with(" %F"), "{what}");
            assert_eq!(spec_exec_args_with(exec, &files), opened, "{what}");
            assert_eq!(
                entry.parse_exec_with_uris(&files, &[] as &[&str]).unwrap(),
                opened
            );
        }
        None => assert!(!exec.contains('%'), "{what}"),
    }
    assert!(!entry.terminal(), "{what}");
    assert!(entry.startup_notify(), "{what}");
    assert!(
        entry
            .startup_wm_class()
            .is_some_and(|class| !class.is_empty()),
        "{what}"
    );
    // Each right-click action launches the same image with resources and nothing else.
    for action in entry.actions().unwrap_or_default() {
        if action.is_empty() {
            continue;
        }
        let exec = entry
            .action_exec(action)
            .unwrap_or_else(|| panic!("no Exec in action {action} of {what}"));
        let args = spec_exec_args(exec);
        assert_eq!(entry.parse_exec_action(action).unwrap(), args, "{what}");
        assert_eq!(args[..3], expected[..3], "{what}");
        assert_eq!(
            args.last().map(String::as_str),
            Some(image.as_str()),
            "{what}"
        );
        let flags = &args[3..args.len() - 1];
        assert!(
            flags.chunks(2).all(|pair| pair.len() == 2
                && ["--cores", "--ram", "--gpus"].contains(&pair[0].as_str())
                && pair[1].parse::<u32>().is_ok()),
            "action {action} passes more than resources: {what}"
        );
        assert!(
            entry
                .action_entry(action, "Name")
                .is_some_and(|name| !name.is_empty()),
            "{what}"
        );
    }
    match kind {
        Kind::MenuEntry => {
            // The list ends with `;`, which the crate reads as a last, empty item.
            let categories: Vec<&str> = entry
                .categories()
                .unwrap_or_default()
                .into_iter()
                .filter(|category| !category.is_empty())
                .collect();
            assert!(categories.contains(&CATEGORY), "{what}");
            assert!(categories.iter().all(|c| c.starts_with("X-")), "{what}");
            assert!(entry.desktop_entry("X-Arcade-Project").is_some(), "{what}");
        }
        Kind::Shortcut => {
            assert_eq!(entry.categories(), None, "a shortcut in a menu: {what}");
            assert!(entry.desktop_entry("X-Arcade-Shortcut").is_some(), "{what}");
        }
        Kind::Directory => unreachable!("a directory is not an application"),
    }
    image
}

/// An icon named from the theme (`arcade-casa`, `folder`), not a path or a file name.
fn is_icon_name(icon: &str) -> bool {
    !icon.is_empty() && !icon.contains(['/', '.'])
}

/// Splits a desktop entry's `Exec` value (general escapes already undone) as the Desktop Entry
/// spec says: double-quoted arguments with `\"`, `` \` ``, `\$`, `\\` escapes, then `%%` → `%`.
/// Panics on anything a spec-compliant launcher would reject or expand (a field code, a reserved
/// character outside quotes), since arcade's entries must contain neither.
pub fn spec_exec_args(exec: &str) -> Vec<String> {
    spec_exec_args_with(exec, &[])
}

/// [`spec_exec_args`] for a launch that opens `files`, which the field code `%F` (alone, unquoted)
/// stands for; any other field code panics.
pub fn spec_exec_args_with(exec: &str, files: &[&str]) -> Vec<String> {
    let mut args = Vec::new();
    let mut chars = exec.chars().peekable();
    loop {
        while chars.next_if(|c| *c == ' ').is_some() {}
        let Some(first) = chars.next() else {
            break;
        };
        let mut arg = String::new();
        if first == '"' {
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(c @ ('"' | '`' | '$' | '\\')) => arg.push(c),
                        other => panic!("invalid escape \\{other:?} in Exec {exec:?}"),
                    },
                    Some(c) => arg.push(c),
                    None => panic!("unterminated quote in Exec {exec:?}"),
                }
            }
            assert!(
                matches!(chars.peek(), None | Some(' ')),
                "a quoted argument runs into more text in Exec {exec:?}"
            );
        } else {
            arg.push(first);
            while let Some(c) = chars.next_if(|c| *c != ' ') {
                arg.push(c);
            }
            if arg == "%F" {
                args.extend(files.iter().map(|file| (*file).to_owned()));
                continue;
            }
            for reserved in [
                '"', '\'', '\\', '>', '<', '~', '|', '&', ';', '$', '*', '?', '#', '(', ')', '`',
            ] {
                assert!(
                    !arg.contains(reserved),
                    "reserved character {reserved:?} outside quotes in Exec {exec:?}"
                );
            }
        }
        args.push(expand_percent(&arg, exec));
    }
    args
}

/// Undoes `%%` in one `Exec` argument; panics on a field code.
fn expand_percent(arg: &str, exec: &str) -> String {
    let mut expanded = String::new();
    let mut rest = arg.chars();
    while let Some(c) = rest.next() {
        if c == '%' {
            match rest.next() {
                Some('%') => expanded.push('%'),
                other => panic!("field code %{other:?} in Exec {exec:?}"),
            }
        } else {
            expanded.push(c);
        }
    }
    expanded
}
