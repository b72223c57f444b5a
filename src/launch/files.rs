//! The files a launch opens (`arcade launch IMAGE FILE…`, or a file manager through a menu
//! entry's `%F`): checked and resolved before anything starts, added to the app's command, shared
//! with a local container at the same absolute path, and on skaha told apart by whether the app's
//! pod can see them.
//!
//! Invariants:
//! - a file that does not exist, a folder, or a name that cannot travel as text is an error
//!   before anything starts; symlinks are resolved, so the app gets the real path;
//! - a local container sees each file at the path the host has it, its folder bind-mounted
//!   read-write (apps write region files and tables beside their data); a folder the system or
//!   other sessions need (`/`, `/tmp`, `/usr`, `/run`, …) is never shared whole: the file alone
//!   is;
//! - the files reach the app as the last arguments of its command, which the per-launch
//!   `command.sh` holds, so an image's `startup.sh` that runs its argument unquoted (`exec $@`)
//!   still passes a path with spaces whole.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{Error, Request, Result, Target};
use crate::x11::WindowInfo;

/// The mark `command.sh` puts in the app's environment, so arcade can tell, once a window maps,
/// whether the image's `startup.sh` ran the command it was given (and so the files).
pub const COMMAND_MARK: (&str, &str) = ("ARCADE_COMMAND", "1");

/// The program that opens files in an app whose program is not its name: Debian packages DS9 as
/// `saods9`, with the program `ds9`.
const PROGRAMS: &[(&str, &str)] = &[("saods9", "ds9")];

/// Folders never shared with an app whole, only a file in them alone: sharing them would hand
/// the app the system's or other users' files, or every display's socket.
const NEVER_WHOLE: &[&str] = &[
    "/", "/tmp", "/var", "/var/tmp", "/home", "/root", "/opt", "/srv", "/mnt", "/media",
];

/// Folders whose insides are never shared whole: the container's own system and the contract's
/// paths would be covered by the host's.
const NEVER_INSIDE: &[&str] = &[
    "/usr",
    "/etc",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/boot",
    "/dev",
    "/proc",
    "/sys",
    "/run",
    "/tmp/.X11-unix",
    "/skaha",
    super::contract::HOME,
];

/// Checks and resolves the files to open, relative ones against `cwd`: each must exist and be a
/// file; the result is its real absolute path, as text without control characters (it travels
/// over D-Bus and into a shell script).
pub fn resolve(paths: &[PathBuf], cwd: &Path) -> Result<Vec<PathBuf>> {
    paths.iter().map(|path| resolve_one(path, cwd)).collect()
}

fn resolve_one(path: &Path, cwd: &Path) -> Result<PathBuf> {
    let given = cwd.join(path);
    let shown = given.display();
    let real = match std::fs::canonicalize(&given) {
        Ok(real) => real,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NotFound(format!(
                "there is no file {shown} to open (nothing was started)"
            )));
        }
        Err(source) => {
            return Err(Error::Io {
                action: "open",
                path: given,
                source,
            });
        }
    };
    if real.is_dir() {
        return Err(Error::Invalid(format!(
            "{shown} is a folder; give the files in it to open"
        )));
    }
    match real.to_str() {
        Some(text) if !text.chars().any(char::is_control) => Ok(real),
        _ => Err(Error::Invalid(format!(
            "the name of {} is not text without control characters, which arcade cannot pass \
             to an app; rename it",
            crate::catalog::printable(&real.to_string_lossy())
        ))),
    }
}

/// The program that opens files in `app`: its name, unless [`PROGRAMS`] says otherwise.
fn program_for(app: &str) -> &str {
    PROGRAMS
        .iter()
        .find(|(name, _)| *name == app)
        .map_or(app, |(_, program)| program)
}

/// The request as a local engine runs it: with files, the app's command (the one asked for,
/// else the program of an app that opens files) gets them as its last arguments.
pub fn local_request(
    request: &Request,
    target: &Target,
    mime_types: &BTreeMap<String, Vec<String>>,
) -> Result<Request> {
    if request.files.is_empty() {
        return Ok(request.clone());
    }
    // Checked again here: the daemon launches a while after its caller looked.
    let files = resolve(&request.files, Path::new("/"))?;
    let mut command = if !request.command.is_empty() {
        request.command.clone()
    } else if !target.mime_types.is_empty()
        || crate::menu::mime::opens_files(&target.app, mime_types)
    {
        vec![program_for(&target.app).to_owned()]
    } else {
        return Err(Error::Invalid(format!(
            "{} opens no files that arcade knows of (menu.mime_types); name the program that \
             opens them after --, as in `arcade launch {} FILE -- PROGRAM`",
            crate::catalog::printable(&target.label),
            crate::catalog::printable(&target.app)
        )));
    };
    command.extend(files.iter().map(|file| file.display().to_string()));
    Ok(Request {
        command,
        files,
        ..request.clone()
    })
}

/// What a local container binds at the same path to see `files`: each file's folder, or the file
/// alone in a folder never shared whole; none inside another.
pub fn binds(files: &[PathBuf]) -> Vec<PathBuf> {
    let mut binds: Vec<PathBuf> = Vec::new();
    for file in files {
        let bind = match file.parent() {
            Some(folder) if shares_whole(folder) => folder.to_owned(),
            _ => file.clone(),
        };
        if !binds.contains(&bind) {
            binds.push(bind);
        }
    }
    let all = binds.clone();
    binds.retain(|bind| {
        !all.iter()
            .any(|other| other != bind && bind.starts_with(other))
    });
    binds
}

fn shares_whole(folder: &Path) -> bool {
    !NEVER_WHOLE.iter().any(|never| folder == Path::new(never))
        && !NEVER_INSIDE.iter().any(|never| folder.starts_with(never))
}

/// What to tell the user when a window of an app given files maps: whether the image's
/// `startup.sh` ran its own command instead of arcade's, so the files were not opened. `None`
/// when the command ran, or when there is no telling (no PID for the window, or its environment
/// cannot be read).
pub fn unopened(window: &WindowInfo, files: &[PathBuf], label: &str) -> Option<String> {
    if files.is_empty() {
        return None;
    }
    let environ = std::fs::read(format!("/proc/{}/environ", window.pid?)).ok()?;
    let (key, value) = COMMAND_MARK;
    let mark = format!("{key}={value}");
    if environ
        .split(|byte| *byte == 0)
        .any(|entry| entry == mark.as_bytes())
    {
        return None;
    }
    Some(format!(
        "{} opened without {}: its image's /skaha/startup.sh runs its own command and ignores \
         the one it is given; open {} from the app",
        crate::catalog::printable(label),
        list(files),
        if files.len() == 1 { "it" } else { "them" },
    ))
}

/// What to tell the user about files given to an app on skaha, which starts desktop-apps with
/// no arguments: the app can open those in storage its pod shares with the desktop (`/arc`, and
/// the home, which the platform keeps there) once it is up; the others must be copied there.
pub fn skaha_notice(files: &[PathBuf], home: &Path, label: &str) -> Option<String> {
    if files.is_empty() {
        return None;
    }
    let home = std::fs::canonicalize(home).unwrap_or_else(|_| home.to_owned());
    let (shared, unshared): (Vec<PathBuf>, Vec<PathBuf>) = files
        .iter()
        .cloned()
        .partition(|file| file.starts_with("/arc") || file.starts_with(&home));
    let label = crate::catalog::printable(label);
    let mut sentences = Vec::new();
    if !shared.is_empty() {
        sentences.push(format!(
            "skaha starts {label} without arguments: open {} from the app, which sees {} at the \
             same path",
            list(&shared),
            if shared.len() == 1 { "it" } else { "them" }
        ));
    }
    if !unshared.is_empty() {
        sentences.push(format!(
            "{} {} not in storage {label} shares with the desktop (your home and /arc): copy {} \
             there, then open {} from the app",
            list(&unshared),
            if unshared.len() == 1 { "is" } else { "are" },
            if unshared.len() == 1 { "it" } else { "them" },
            if unshared.len() == 1 { "it" } else { "them" },
        ));
    }
    Some(sentences.join("; "))
}

/// Files named in a sentence: `a`, `a and b`, `a, b and 3 more`.
fn list(files: &[PathBuf]) -> String {
    let names: Vec<String> = files
        .iter()
        .map(|file| file.display().to_string())
        .collect();
    match names.as_slice() {
        [one] => one.clone(),
        [first, second] => format!("{first} and {second}"),
        [first, second, rest @ ..] => format!("{first}, {second} and {} more", rest.len()),
        [] => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_relative_paths_and_symlinks_and_refuses_what_is_not_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("My Data ü");
        std::fs::create_dir(&folder).unwrap();
        std::fs::write(folder.join("m31.fits"), "SIMPLE  =").unwrap();
        std::os::unix::fs::symlink(folder.join("m31.fits"), dir.path().join("link.fits")).unwrap();
        let real = std::fs::canonicalize(folder.join("m31.fits")).unwrap();
        assert_eq!(
            resolve(
                &["My Data ü/m31.fits".into(), "link.fits".into()],
                dir.path()
            )
            .unwrap(),
            [real.clone(), real]
        );
        let missing = resolve(&["gone.fits".into()], dir.path()).unwrap_err();
        assert!(matches!(missing, Error::NotFound(_)), "{missing}");
        assert!(missing.to_string().contains("gone.fits"), "{missing}");
        assert!(matches!(
            resolve(&["My Data ü".into()], dir.path()),
            Err(Error::Invalid(_))
        ));
    }

    #[test]
    fn a_folder_is_shared_whole_unless_the_system_needs_it() {
        let files: Vec<PathBuf> = [
            "/data/My Data/m31.fits",
            "/data/My Data/m33.fits",
            "/data/My Data/sub/t.vot",
            "/tmp/loose.fits",
            "/usr/share/doc/x/sample.fits",
            "/m.fits",
        ]
        .into_iter()
        .map(PathBuf::from)
        .collect();
        assert_eq!(
            binds(&files),
            [
                PathBuf::from("/data/My Data"),
                "/tmp/loose.fits".into(),
                "/usr/share/doc/x/sample.fits".into(),
                "/m.fits".into(),
            ]
        );
        assert_eq!(
            binds(&["/tmp/.X11-unix/sneaky".into()]),
            [PathBuf::from("/tmp/.X11-unix/sneaky")]
        );
    }

    #[test]
    fn files_go_last_in_the_command_of_an_app_that_opens_them() {
        let dir = tempfile::tempdir().unwrap();
        let file = std::fs::canonicalize(dir.path()).unwrap().join("a b.fits");
        std::fs::write(&file, "").unwrap();
        let target = |app: &str| Target {
            image: format!("h/p/{app}:1"),
            label: format!("{app}:1"),
            app: app.to_owned(),
            resources: None,
            mime_types: Vec::new(),
        };
        let request = Request {
            files: vec![file.clone()],
            ..Request::default()
        };
        let none = BTreeMap::new();
        let file_arg = file.display().to_string();
        assert_eq!(
            local_request(&request, &target("saods9"), &none)
                .unwrap()
                .command,
            ["ds9", file_arg.as_str()]
        );
        assert!(local_request(&request, &target("terminal"), &none).is_err());
        let with_command = Request {
            command: vec!["fv".into()],
            ..request
        };
        assert_eq!(
            local_request(&with_command, &target("terminal"), &none)
                .unwrap()
                .command,
            ["fv", file_arg.as_str()]
        );
    }

    #[test]
    fn on_skaha_files_outside_shared_storage_are_named_with_what_to_do() {
        let home = Path::new("/arc/home/me");
        let notice = skaha_notice(
            &["/arc/projects/m31.fits".into(), "/tmp/x.fits".into()],
            home,
            "ds9:8.4",
        )
        .unwrap();
        assert!(
            notice.contains("open /arc/projects/m31.fits from the app"),
            "{notice}"
        );
        assert!(
            notice.contains("/tmp/x.fits is not in storage ds9:8.4 shares with the desktop"),
            "{notice}"
        );
        assert!(notice.contains("copy it there"), "{notice}");
        assert_eq!(skaha_notice(&[], home, "ds9:8.4"), None);
    }
}
