//! Integration tests: the `arcade` binary against real tools (desktop-file-validate, python-xdg,
//! Xvfb, dbus-daemon, podman, dockerd) and stand-ins only for the HTTP services (Harbor, skaha).

mod support;

mod architecture;
mod daemon;
mod desktop_use;
mod harbor_source;
mod image_check;
mod labels;
mod launch;
mod menu;
mod menu_faults;
mod open_files;
mod real_apps;
mod real_apps_skaha;
mod samp;
mod skaha_launch;
mod skaha_source;
