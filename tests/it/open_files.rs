//! Opening data files with the menu's apps (issue 13), one test or a few per point of the issue,
//! each through the real binary and real tools: entries that list file types and take the files
//! (`%F`), read back by the validators; the VOTable type and the desktop's caches as GLib (`gio`)
//! and xdg-utils read them, gone after `menu clean`; the user's own default apps untouched;
//! files given on the command line, or by `gio open` and `xdg-open`, reaching the real DS9 and
//! TOPCAT at the same path; an image's `startup.sh` that drops them, and skaha, told to the user.
//!
//! Tests are named `r13_<point>_…` after the point they show.
// See: issue 13, "Double-click a FITS file: open data files in desktop-app containers".

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::dbus::Bus;
use crate::support::desk::{Desk, Engine, launch_id, on_each_engine};
use crate::support::desktop_files::{self, read_entry};
use crate::support::images::{self, Spec};
use crate::support::real_apps::{self, App, Kind};
use crate::support::skaha::{FakeSkaha, SkahaConfig};
use crate::support::{self, Arcade, Home, Run, require_tool};

// ---------------------------------------------------------------------------------------------
// Fixtures of this file.

/// The file type names the tests expect, as the issue gives them.
const FITS: &str = "application/fits";
const VOTABLE: &str = "application/x-votable+xml";

/// A catalog entry as skaha lists it, labelled a desktop app.
fn entry(id: &str) -> Value {
    json!({"id": id, "types": ["desktop-app"]})
}

fn write_catalog(home: &Home, ids: &[&str]) -> PathBuf {
    let entries: Vec<Value> = ids.iter().map(|id| entry(id)).collect();
    home.write(
        "catalog.json",
        &serde_json::to_string_pretty(&entries).unwrap(),
    )
}

/// `arcade menu sync` from a catalog file.
fn sync(arcade: Arcade, catalog: &Path) -> Run {
    arcade
        .args(["menu", "sync", "--catalog"])
        .args([catalog])
        .ok()
}

/// A small but real FITS image (a 10×10 8-bit array): one header block, one data block.
fn fits_bytes() -> Vec<u8> {
    let cards = [
        "SIMPLE  =                    T",
        "BITPIX  =                    8",
        "NAXIS   =                    2",
        "NAXIS1  =                   10",
        "NAXIS2  =                   10",
        "END",
    ];
    let mut bytes: Vec<u8> = cards
        .iter()
        .flat_map(|card| format!("{card:<80}").into_bytes())
        .collect();
    bytes.resize(2880, b' ');
    bytes.extend((0..100u8).map(|n| n * 2));
    bytes.resize(5760, 0);
    bytes
}

/// A one-column VOTable 1.3 of three rows.
const VOTABLE_TEXT: &str = "<?xml version=\"1.0\"?>\n\
<VOTABLE version=\"1.3\" xmlns=\"http://www.ivoa.net/xml/VOTable/v1.3\">\n\
 <RESOURCE><TABLE name=\"t\"><FIELD name=\"x\" datatype=\"int\"/>\n\
  <DATA><TABLEDATA><TR><TD>1</TD></TR><TR><TD>2</TD></TR><TR><TD>3</TD></TR></TABLEDATA></DATA>\n\
 </TABLE></RESOURCE>\n\
</VOTABLE>\n";

/// A folder whose name has spaces and non-ASCII letters (and, where `comma`, a comma, which an
/// engine's `--mount` reads as CSV), holding `m31.fits` and `t.vot`, open to the app's user.
fn data_folder(home: &Home, comma: bool) -> PathBuf {
    let name = if comma { "My Data, ü" } else { "My Data ü" };
    let folder = home.path().join(name);
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("m31.fits"), fits_bytes()).unwrap();
    std::fs::write(folder.join("t.vot"), VOTABLE_TEXT).unwrap();
    // Apps run as another user than the test (root): they read the files and write beside them.
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o777)).unwrap();
    folder
}

/// A desktop program (gio, xdg-mime, xdg-open) with the same environment `arcade` gets, in a
/// UTF-8 locale as a desktop session has (xdg-utils' `mimetype` refuses non-ASCII names in
/// none), and no desktop named, so xdg-utils takes its generic path.
fn desktop_tool(arcade: &Arcade, program: &str, package: &str) -> Command {
    let mut command = Command::new(require_tool(program, package));
    command.env_clear();
    for (key, value) in arcade.command.get_envs() {
        if let Some(value) = value {
            command.env(key, value);
        }
    }
    command.env("LANG", "C.UTF-8").stdin(Stdio::null());
    command
}

/// What a desktop program printed, trimmed; panics when it fails.
#[track_caller]
fn output_of(mut command: Command) -> String {
    let output = command.output().expect("run a desktop tool");
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// The file type GLib gives a file.
fn gio_type(home: &Home, file: &Path) -> String {
    let mut gio = desktop_tool(&home.arcade(), "gio", "libglib2.0-bin");
    gio.args(["info", "--attributes=standard::content-type"])
        .arg(file);
    let text = output_of(gio);
    text.lines()
        .find_map(|line| line.trim().strip_prefix("standard::content-type: "))
        .unwrap_or_else(|| panic!("no content type in {text}"))
        .to_owned()
}

/// `gio mime TYPE`: the default app (`None`: none) and the apps offered under "Open With"
/// (GLib's recommended ones).
fn gio_mime(home: &Home, mime_type: &str) -> (Option<String>, Vec<String>) {
    let mut gio = desktop_tool(&home.arcade(), "gio", "libglib2.0-bin");
    gio.args(["mime", mime_type]);
    let text = output_of(gio);
    let default = text
        .lines()
        .next()
        .and_then(|line| line.rsplit_once(": "))
        .map(|(_, id)| id.trim().to_owned());
    let recommended = text
        .split("Recommended applications:")
        .nth(1)
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|line| line.ends_with(".desktop"))
        .map(str::to_owned)
        .collect();
    (default, recommended)
}

/// `xdg-mime query ARGS`.
fn xdg_mime_query(home: &Home, args: &[&str]) -> String {
    let mut xdg_mime = desktop_tool(&home.arcade(), "xdg-mime", "xdg-utils");
    xdg_mime.arg("query").args(args);
    output_of(xdg_mime)
}

/// The desktop file ID of the menu entry that launches `image`.
#[track_caller]
fn desktop_id(home: &Home, image: &str) -> String {
    desktop_files::generated(home)
        .into_iter()
        .filter(|path| path.starts_with(home.applications()))
        .find(|path| read_entry(path).desktop_entry("X-Arcade-Image") == Some(image))
        .map(|path| format!("arcade-{}", path.file_name().unwrap().to_string_lossy()))
        .unwrap_or_else(|| panic!("no entry for {image}:\n{}", home.listing()))
}

/// The argv of a process, as the kernel has it.
fn cmdline(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .split(|byte| *byte == 0)
        .filter(|arg| !arg.is_empty())
        .map(|arg| String::from_utf8_lossy(arg).into_owned())
        .collect()
}

/// The bodies of the `Notify` calls a `dbus-monitor` log shows.
fn notification_bodies(monitor: &str) -> Vec<String> {
    monitor
        .split("member=Notify")
        .skip(1)
        .filter_map(|call| {
            let strings: Vec<&str> = call.split("\n   string \"").skip(1).collect();
            let (body, _) = strings.get(3)?.split_once("\"\n   array [")?;
            Some(body.to_owned())
        })
        .collect()
}

/// The tools whose caches arcade keeps: without them the tests would prove nothing.
fn require_cache_tools() {
    require_tool("update-mime-database", "shared-mime-info");
    require_tool("update-desktop-database", "desktop-file-utils");
}

// ---------------------------------------------------------------------------------------------
// 1. Entries for apps that open files carry `MimeType=` and `%F`.

/// The known astronomy apps list their file types (with FITS's older names), a site's
/// `menu.mime_types` adds and takes away, apps that open nothing list nothing, and every file
/// passes the validators, whose readers place the files last in the command.
#[test]
fn r13_1_entries_of_apps_that_open_files_list_their_types_and_take_the_files() {
    let home = Home::new();
    home.write_config("[menu]\nmime_types = { terminal = [\"Text/Plain\"], aladin = [] }\n");
    let ids = [
        "images.canfar.net/skaha/ds9:8.4",
        "images.canfar.net/skaha/topcat:4.8",
        "images.canfar.net/skaha/carta:4.1",
        "images.canfar.net/skaha/aladin:12.0",
        "images.canfar.net/skaha/terminal:1.0",
        "images.canfar.net/skaha/casa:6.5",
    ];
    sync(home.arcade(), &write_catalog(&home, &ids));
    let types = |image: &str| -> Vec<String> {
        let path = desktop_files::generated(&home)
            .into_iter()
            .find(|path| read_entry(path).desktop_entry("X-Arcade-Image") == Some(image))
            .unwrap();
        let entry = read_entry(&path);
        entry
            .mime_type()
            .unwrap_or_default()
            .into_iter()
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let fits = [FITS, "image/fits", "image/x-fits"];
    assert_eq!(types(ids[0]), fits);
    assert_eq!(
        types(ids[1]),
        [VOTABLE, FITS, "image/fits", "image/x-fits", "text/csv"]
    );
    assert_eq!(types(ids[2]), fits);
    assert!(types(ids[3]).is_empty(), "the site took aladin's away");
    assert_eq!(types(ids[4]), ["text/plain"]);
    assert!(types(ids[5]).is_empty());
    desktop_files::validate_home(&home);

    // A type that is not one is refused, naming the key.
    home.write_config("[menu]\nmime_types = { ds9 = [\"fits\"] }\n");
    let run = home.arcade().args(["menu", "sync", "--offline"]).fails();
    assert!(
        run.error_line().contains("menu.mime_types.ds9") && run.error_line().contains("\"fits\""),
        "{run}"
    );
}

// ---------------------------------------------------------------------------------------------
// 2. The VOTable type, and the caches, kept for arcade's own files only; clean removes them.

/// After a sync GLib and xdg-utils know VOTables (by name and by content) and offer arcade's
/// apps for FITS and VOTable files; a sync that changes nothing leaves the caches alone; `menu
/// clean` takes arcade's type, entries and defaults out of the caches, keeps a user's own entry
/// there, and leaves no cache of nothing behind.
#[test]
fn r13_2_the_votable_type_and_the_caches_follow_the_menu_and_clean_takes_them_away() {
    require_cache_tools();
    require_tool("mimetype", "libfile-mimeinfo-perl");
    let home = Home::new();
    let folder = data_folder(&home, false);
    let vot = folder.join("t.vot");
    let unnamed = home.write("table", VOTABLE_TEXT);
    let user_entry = home.write(
        ".local/share/applications/user-viewer.desktop",
        "[Desktop Entry]\nType=Application\nName=Viewer\nExec=/bin/true %F\n\
         MimeType=application/fits;\n",
    );
    let ds9 = "images.canfar.net/skaha/ds9:8.4";
    let topcat = "images.canfar.net/skaha/topcat:4.8";
    let catalog = write_catalog(
        &home,
        &[ds9, topcat, "images.canfar.net/skaha/terminal:1.0"],
    );
    assert_ne!(
        gio_type(&home, &vot),
        VOTABLE,
        "known before arcade installed it"
    );

    sync(home.arcade(), &catalog);
    let (ds9_id, topcat_id) = (desktop_id(&home, ds9), desktop_id(&home, topcat));
    assert_eq!(gio_type(&home, &vot), VOTABLE);
    assert_eq!(gio_type(&home, &unnamed), VOTABLE, "by its root element");
    assert_eq!(
        xdg_mime_query(&home, &["filetype", vot.to_str().unwrap()]),
        VOTABLE
    );
    let (default, offered) = gio_mime(&home, FITS);
    assert_eq!(default.as_deref(), Some(ds9_id.as_str()), "{offered:?}");
    for id in [&ds9_id, &topcat_id, &"user-viewer.desktop".to_owned()] {
        assert!(
            offered.contains(id),
            "{id} not under Open With: {offered:?}"
        );
    }
    let (default, offered) = gio_mime(&home, VOTABLE);
    assert_eq!(default.as_deref(), Some(topcat_id.as_str()));
    assert!(!offered.contains(&ds9_id), "{offered:?}");
    assert_eq!(
        xdg_mime_query(&home, &["default", VOTABLE]),
        topcat_id,
        "xdg-utils reads the same caches"
    );

    let data = home.data();
    let caches = [
        data.join("mime/mime.cache"),
        data.join("applications/mimeinfo.cache"),
    ];
    let times = || -> Vec<_> {
        caches
            .iter()
            .map(|cache| std::fs::metadata(cache).unwrap().modified().unwrap())
            .collect()
    };
    let before = times();
    sync(home.arcade(), &catalog);
    assert_eq!(
        times(),
        before,
        "a sync that changed nothing rebuilt a cache"
    );

    home.arcade().args(["menu", "clean"]).ok();
    assert!(!data.join("mime").exists(), "{}", home.listing());
    assert!(!data.join("applications/mimeapps.list").exists());
    let cache = std::fs::read_to_string(&caches[1]).unwrap();
    assert!(!cache.contains("arcade-"), "{cache}");
    assert!(
        cache.contains("application/fits=user-viewer.desktop;"),
        "{cache}"
    );
    assert!(user_entry.exists());
    assert_ne!(gio_type(&home, &vot), VOTABLE);
    // (The host's own apps for FITS, an image viewer say, may be offered too.)
    let (_, offered) = gio_mime(&home, FITS);
    assert!(
        offered.contains(&"user-viewer.desktop".to_owned()),
        "{offered:?}"
    );
    assert!(
        !offered.iter().any(|id| id.starts_with("arcade-")),
        "{offered:?}"
    );

    // Without the user's entry, the cache would list nothing: it goes too.
    std::fs::remove_file(&user_entry).unwrap();
    sync(home.arcade(), &catalog);
    home.arcade().args(["menu", "clean"]).ok();
    assert!(!caches[1].exists(), "{}", home.listing());
    assert!(!data.join("mime").exists(), "{}", home.listing());
}

// ---------------------------------------------------------------------------------------------
// 3. The user's choices stay.

/// A default the user chose stays theirs, as xdg-utils and GLib read it, and their
/// `mimeapps.list` is not touched; arcade's apps are offered beside it; a site default applies
/// to a type the user chose nothing for.
#[test]
fn r13_3_the_users_default_stays_and_a_site_default_fills_only_the_gaps() {
    require_cache_tools();
    let home = Home::new();
    home.write(
        ".local/share/applications/user-viewer.desktop",
        "[Desktop Entry]\nType=Application\nName=Viewer\nExec=/bin/true %F\n\
         MimeType=application/fits;\n",
    );
    let mut set_default = desktop_tool(&home.arcade(), "xdg-mime", "xdg-utils");
    set_default.args(["default", "user-viewer.desktop", FITS]);
    output_of(set_default);
    let users_list = home.config().join("mimeapps.list");
    let users_bytes = std::fs::read(&users_list).expect("xdg-mime wrote the user's list");
    let chosen = xdg_mime_query(&home, &["default", FITS]);
    assert_eq!(chosen, "user-viewer.desktop");

    home.write_config("[menu]\nmime_defaults = { \"text/csv\" = \"topcat\" }\n");
    let ds9 = "images.canfar.net/skaha/ds9:8.4";
    let topcat = "images.canfar.net/skaha/topcat:4.8";
    sync(home.arcade(), &write_catalog(&home, &[ds9, topcat]));

    assert_eq!(xdg_mime_query(&home, &["default", FITS]), chosen);
    assert_eq!(std::fs::read(&users_list).unwrap(), users_bytes);
    let (default, offered) = gio_mime(&home, FITS);
    assert_eq!(default.as_deref(), Some("user-viewer.desktop"));
    assert!(
        offered.contains(&desktop_id(&home, ds9)) && offered.contains(&desktop_id(&home, topcat)),
        "{offered:?}"
    );
    let (default, _) = gio_mime(&home, "text/csv");
    assert_eq!(default, Some(desktop_id(&home, topcat)));
}

// ---------------------------------------------------------------------------------------------
// 4. Files reach the app.

/// The real apps: `gio open` of a FITS file and `xdg-open` of a VOTable (given relative to its
/// folder, whose name has spaces and non-ASCII letters) start DS9 and TOPCAT from images shaped
/// like the platform's (a `startup.sh` that execs its argument), through the session's daemon,
/// each with the file as its argument at the path the host has it; their main windows map.
#[test]
fn r13_4_gio_open_and_xdg_open_start_the_right_app_with_the_file() {
    require_cache_tools();
    require_tool("mimetype", "libfile-mimeinfo-perl");
    let images = real_apps::podman_images();
    let execs = images.reference(Kind::Execs);
    let tag = execs.rsplit(':').next().unwrap();
    let ds9 = podman_tag(&execs, &format!("localhost/arcade-fits/ds9:{tag}"));
    let topcat = podman_tag(&execs, &format!("localhost/arcade-fits/topcat:{tag}"));

    let desk = Desk::new(Engine::Podman);
    let catalog = write_catalog(&desk.home, &[&ds9, &topcat]);
    // A JVM's first window takes seconds even on an idle machine; tests share two cores.
    desk.home.write_config(&format!(
        "source = \"file\"\ncatalog = \"{}\"\n[launch]\nbackend = \"podman\"\nwait_secs = 150\n",
        catalog.display()
    ));
    let bus = Bus::start(&desk.home, &desk.env());
    sync(desk.arcade(), &catalog);
    let folder = data_folder(&desk.home, false);
    let session = desk.arcade().env("DBUS_SESSION_BUS_ADDRESS", &bus.address);
    let conn = desk.xvfb.connect().expect("connect to Xvfb");
    let logs = || desk.arcade().args(["ps", "--json"]).run().to_string();

    // gio opens the file and returns; the entry's arcade waits on for the window.
    let fits = folder.join("m31.fits");
    let gio_log = desk.home.path().join("gio.log");
    let mut gio = desktop_tool(&session, "gio", "libglib2.0-bin");
    gio.args(["open"])
        .arg(&fits)
        .stdout(std::fs::File::create(&gio_log).unwrap())
        .stderr(std::fs::File::create(&gio_log).unwrap());
    assert!(gio.status().unwrap().success(), "gio open failed");
    let window = real_apps::wait_for_main(
        App::Ds9,
        || desk.xvfb.windows(),
        || format!("{}\n{}", std::fs::read_to_string(&gio_log).unwrap(), logs()),
    );
    let pid = real_apps::client_pid(&conn, window.id).expect("a PID for DS9's window");
    let argv = cmdline(pid);
    assert_eq!(argv.last().map(String::as_str), fits.to_str(), "{argv:?}");

    // xdg-open (xdg-utils' generic path) runs the entry's arcade until the window maps.
    let mut xdg_open = desktop_tool(&session, "xdg-open", "xdg-utils");
    xdg_open.current_dir(&folder).arg("t.vot");
    let opened = xdg_open.output().unwrap();
    assert!(
        opened.status.success(),
        "xdg-open failed: {}{}\n{}",
        String::from_utf8_lossy(&opened.stdout),
        String::from_utf8_lossy(&opened.stderr),
        logs()
    );
    let window = real_apps::wait_for_main(App::Topcat, || desk.xvfb.windows(), logs);
    let pid = real_apps::client_pid(&conn, window.id).expect("a PID for TOPCAT's window");
    let argv = cmdline(pid);
    let vot = folder.join("t.vot");
    assert_eq!(argv.last().map(String::as_str), vot.to_str(), "{argv:?}");

    // Two launches, one of each image, by the daemon.
    let ps = desk.arcade().args(["ps", "--json"]).ok().json();
    let mut launched: Vec<&str> = ps
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["image"].as_str().unwrap())
        .collect();
    launched.sort_unstable();
    assert_eq!(launched, [ds9.as_str(), topcat.as_str()], "{ps:#}");
}

/// Gives an image another name in podman; the new name.
fn podman_tag(image: &str, name: &str) -> String {
    let status = images::podman()
        .args(["tag", image, name])
        .status()
        .expect("run podman tag");
    assert!(status.success(), "podman tag {image} {name} failed");
    name.to_owned()
}

/// A small image whose `startup.sh` execs its argument, as most platform images do.
fn execs_image() -> Spec {
    Spec::new("fits-execs").file("/skaha/startup.sh", "#!/bin/sh\nexec \"$@\"\n", 0o755)
}

on_each_engine! {
    /// A file given through a symlink reaches the app at its real path, in its folder (spaces, a
    /// comma, non-ASCII letters) bound read-write at the same path: the app reads the file and
    /// writes beside it, and only then opens its window.
    fn r13_4_the_files_folder_is_shared_read_write_at_the_same_path(desk) {
        let image = desk.build(&execs_image());
        let folder = data_folder(&desk.home, true);
        let real = folder.join("m31.fits");
        let link = desk.home.path().join("link.fits");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        // Shell builtins only: the test image has a shell and xterm.
        let script = "read -r first < \"$1\"; printf '%s\\n' \"$first\" > \"$1.copy\" && \
                      exec xterm -title copied";
        let run = desk.launch(&[
            image.as_str(),
            link.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            script,
            "sh",
        ]);
        assert_eq!(run.code, Some(0), "{run}");
        let id = desk.launch_id(&run);
        desk.window("copied", &id);
        let copy = std::fs::read(folder.join("m31.fits.copy")).expect("the app wrote beside");
        assert!(copy.starts_with(b"SIMPLE  ="), "{}", String::from_utf8_lossy(&copy));
        let mounts = desk.inspect(&id, "{{json .Mounts}}");
        let mounts: Vec<Value> = serde_json::from_str(&mounts).unwrap();
        let shared = mounts
            .iter()
            .find(|mount| mount["Source"] == json!(folder))
            .unwrap_or_else(|| panic!("{folder:?} not bound: {mounts:#?}"));
        assert_eq!(shared["Destination"], json!(folder), "{shared}");
        assert_eq!(shared["RW"], json!(true), "{shared}");
    }
}

/// A file that is not there is a clear error naming it, and nothing starts: no container, no
/// launch record.
#[test]
fn r13_4_a_missing_file_is_an_error_before_anything_starts() {
    let desk = Desk::new(Engine::Podman);
    let missing = desk.home.path().join("My Data ü/gone.fits");
    let run = desk
        .arcade()
        .args(["launch", "localhost/arcade-test/never-pulled:1"])
        .args([&missing])
        .fails();
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.error_line().contains(missing.to_str().unwrap()),
        "{run}"
    );
    assert!(desk.containers().is_empty());
    let launches = desk.home.state().join("arcade/launches");
    assert!(
        std::fs::read_dir(&launches).map_or(true, |mut dir| dir.next().is_none()),
        "{}",
        desk.home.listing()
    );
    // A folder is no file either.
    let run = desk
        .arcade()
        .args(["launch", "localhost/arcade-test/never-pulled:1"])
        .args([desk.home.path()])
        .fails();
    assert!(run.error_line().contains("is a folder"), "{run}");
}

/// An image whose `startup.sh` runs its own command drops the files: the window maps, and a
/// desktop notification (from the daemon that launched it) and the launch's log say so.
#[test]
fn r13_4_an_image_that_ignores_its_argument_is_told_in_a_notification() {
    let desk = Desk::new(Engine::Podman);
    let image = desk.build(&Spec::new("fits-ignores").file(
        "/skaha/startup.sh",
        "#!/bin/sh\n# Runs its own app, as the platform's ds9 image does.\nexec xterm -title ignored\n",
        0o755,
    ));
    let bus = Bus::start(&desk.home, &desk.env());
    let monitor = bus.monitor();
    let folder = data_folder(&desk.home, false);
    let fits = folder.join("m31.fits");
    let run = desk
        .arcade()
        .env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
        .args(["launch", "--from-menu", image.as_str()])
        .args([&fits])
        .args(["--", "xterm"])
        .run();
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stdout.contains("by the arcade daemon"), "{run}");
    let id = launch_id(&run);
    desk.window("ignored", &id);
    let bodies = support::wait_for("the Notify call", Duration::from_secs(20), || {
        Some(notification_bodies(&monitor.text())).filter(|bodies| !bodies.is_empty())
    });
    let body = &bodies[0];
    assert!(
        body.contains("opened without") && body.contains(fits.to_str().unwrap()),
        "{body}"
    );
    assert!(body.contains("startup.sh"), "{body}");
    let logs = desk.arcade().args(["logs", &id]).ok();
    assert!(logs.stdout.contains("opened without"), "{logs}");
}

// ---------------------------------------------------------------------------------------------
// 5. skaha.

/// skaha starts desktop-apps with no arguments: the launch goes ahead, asking skaha for the
/// image alone, and the user is told which files to open from the app (those in the home, which
/// the pod shares) and which to copy into shared storage first, each named.
#[test]
fn r13_5_on_skaha_files_are_told_apart_by_the_storage_the_pod_shares() {
    const TOKEN: &str = "ZGVza3RvcC1hcHAtdG9rZW4~c2lnbmF0dXJl";
    const IMAGE: &str = "images.canfar.net/skaha/ds9:8.4";
    let desk = Desk::without_engine();
    let fake = FakeSkaha::start(SkahaConfig {
        session_tokens: vec![TOKEN.to_owned()],
        ..SkahaConfig::default()
    });
    desk.home
        .write_config("[launch]\nwait_secs = 30\n[skaha]\npoll_timeout_secs = 30\n");
    let shared = data_folder(&desk.home, false).join("m31.fits");
    let elsewhere = tempfile::tempdir().unwrap();
    let unshared = elsewhere.path().join("m33.fits");
    std::fs::write(&unshared, fits_bytes()).unwrap();
    let arcade = || {
        desk.arcade()
            .env("DESKTOP_SESSION_APP_TOKEN", TOKEN)
            .env("ARCADE_SESSION_ID", &SkahaConfig::default().sessions[0])
            // What is told does not wait for the window: it is known once skaha took the app.
            .args(["launch", "--no-wait", "--backend", "skaha", "--url"])
            .args([fake.root_url(), IMAGE.to_owned()])
    };

    let run = arcade().args([&shared, &unshared]).run();
    assert_eq!(run.code, Some(0), "{run}");
    let warning = run
        .stderr
        .lines()
        .find(|line| line.starts_with("arcade: warning: "))
        .unwrap_or_else(|| panic!("no warning:\n{run}"));
    let unshared = std::fs::canonicalize(&unshared).unwrap();
    assert!(
        warning.contains(&format!("open {} from the app", shared.display())),
        "{warning}"
    );
    assert!(
        warning.contains(&format!("{} is not in storage", unshared.display()))
            && warning.contains("copy it there"),
        "{warning}"
    );
    let apps = fake.apps();
    assert_eq!(apps.len(), 1, "{apps:#?}");
    let fields: Vec<&str> = apps[0].fields.iter().map(|(key, _)| key.as_str()).collect();
    assert_eq!(
        fields,
        ["image"],
        "skaha takes the image and resources only"
    );

    // A missing file stops the launch before skaha is asked.
    let run = arcade().args([elsewhere.path().join("gone.fits")]).fails();
    assert_eq!(run.code, Some(1), "{run}");
    assert_eq!(fake.apps().len(), 1);
}
