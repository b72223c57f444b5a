//! Real astronomy apps (SAOImage DS9, TOPCAT, Aladin from Debian's packages) in images shaped
//! like the platform's: each app's main window maps on a real X server with the class arcade
//! will look for, run by bare podman as an arbitrary uid; and in pods that reach the desktop over
//! TCP, the windows carry the pod's host name only when the toolkit sets one, and no PID.

use crate::support::real_apps::{self, App, Kind, Pod, PodDesktop};
use crate::support::xvfb::Xvfb;

/// Runs `app` as the platform would run it in the image without a `startup.sh`, and checks its
/// main window: its class, and the host PID the X server knows for it, which must be a process
/// in the container.
fn main_window_maps(app: App) {
    let images = real_apps::podman_images();
    let xvfb = Xvfb::start();
    let folder = tempfile::tempdir().expect("create a folder for the cookie");
    let container = real_apps::run_local(
        &images.reference(Kind::Bare),
        &xvfb,
        folder.path(),
        &[app.command()],
    );
    let window = real_apps::wait_for_main(app, || xvfb.windows(), || container.logs());
    let (instance, class) = app.main_class();
    assert_eq!(window.class, format!("{instance} {class}"), "{window:?}");

    let conn = xvfb.connect().expect("connect to Xvfb");
    let pid = real_apps::client_pid(&conn, window.id)
        .unwrap_or_else(|| panic!("XRes knows no PID for {window:?}"));
    let namespace = |pid: u32| std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
    assert_eq!(
        namespace(pid),
        namespace(container.pid()),
        "the window's client (PID {pid}) is not in the container's PID namespace"
    );
}

#[test]
fn ds9_maps_its_main_window() {
    main_window_maps(App::Ds9);
}

#[test]
fn topcat_maps_its_main_window() {
    main_window_maps(App::Topcat);
}

#[test]
fn aladin_maps_its_main_window() {
    main_window_maps(App::Aladin);
}

/// Three pods on one desktop, one per kind of image: DS9's window (Tk) carries no client machine,
/// so only its class and title tell it apart; the platform's xterm, run by a `startup.sh` that
/// execs it or by the platform itself, carries the pod's host name. Over TCP the X server knows
/// no PID for any of them.
#[test]
fn pods_reach_the_desktop_over_tcp_under_their_host_names() {
    let images = real_apps::podman_images();
    let desktop = PodDesktop::start();
    let ds9 = Pod::run(&images.reference(Kind::Runs(App::Ds9)), "ds9-8-4", &desktop);
    let execs = Pod::run(&images.reference(Kind::Execs), "terminal-1-0", &desktop);
    let bare = Pod::run(&images.reference(Kind::Bare), "astro-apps-1-0", &desktop);

    let window = real_apps::wait_for_main(App::Ds9, || desktop.windows(), || ds9.logs());
    assert_eq!(window.client_machine, "", "{window:?}");
    let conn = desktop.connect().expect("connect to the pod desktop");
    assert_eq!(real_apps::client_pid(&conn, window.id), None, "{window:?}");

    for pod in [&execs, &bare] {
        let window = real_apps::wait_for_window(
            &format!("the xterm of pod {}", pod.host_name),
            || desktop.windows(),
            || pod.logs(),
            |window| window.viewable && window.title == pod.host_name,
        );
        assert_eq!(window.class, "xterm XTerm", "{window:?}");
        assert_eq!(window.client_machine, pod.host_name, "{window:?}");
        assert_eq!(real_apps::client_pid(&conn, window.id), None, "{window:?}");
    }
}
