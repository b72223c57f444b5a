//! `arcade menu` from a catalog file: the files written, their validity, and what a menu reader
//! makes of them.

use crate::support::{self, Home};

#[test]
fn sample_catalog_builds_a_valid_menu() {
    let home = Home::new();
    let catalog = support::sample_catalog();
    home.arcade()
        .args(["menu", "sync", "--source", "file", "--catalog"])
        .args([&catalog])
        .ok();
    let files = support::generated_entries(&home);
    assert!(files.len() > 20, "{}", home.listing());
    support::validate_desktop_files(&files);
    let menu = support::menu_as_read_by_pyxdg(&home);
    assert!(menu.starts_with("[Astro Software]\n  [cirada]\n"), "{menu}");
    assert!(menu.contains("\n    [casa]\n      casa:6.6.5\t"), "{menu}");
    assert!(!menu.contains("[Other]"), "entries leaked into Other:\n{menu}");
}
