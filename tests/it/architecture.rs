//! The invariants of `ARCHITECTURE.md` that a search of the source can check: which module may
//! name which crate or do which thing. Each test fails with the file and line that broke it.

use std::path::{Path, PathBuf};

/// Every `.rs` file under `src/`, with its lines that are code (comments left out).
fn sources() -> Vec<(PathBuf, Vec<(usize, String)>)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read src") {
            let path = entry.expect("read src").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                out.push(path);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    walk(&root.join("src"), &mut files);
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("read a source file");
            let code = text
                .lines()
                .enumerate()
                .filter(|(_, line)| !line.trim_start().starts_with("//"))
                .map(|(n, line)| (n + 1, line.to_owned()))
                .collect();
            let relative = path.strip_prefix(root).expect("under the root").to_owned();
            (relative, code)
        })
        .collect()
}

/// Asserts that `needle` appears in code only in the files `allowed` (paths from the root).
#[track_caller]
fn only_in(needle: &str, allowed: &[&str]) {
    let mut found = Vec::new();
    for (path, lines) in sources() {
        if allowed.iter().any(|allowed| path == Path::new(allowed)) {
            continue;
        }
        for (n, line) in lines {
            // A word of its own: `println!` is not found inside `eprintln!`.
            let standalone = line.match_indices(needle).any(|(at, _)| {
                !line[..at]
                    .chars()
                    .next_back()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_')
            });
            if standalone {
                found.push(format!("{}:{n}: {}", path.display(), line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "{needle:?} outside {allowed:?}:\n{}",
        found.join("\n")
    );
}

#[test]
fn only_bus_knows_zbus() {
    only_in("zbus", &["src/bus.rs"]);
}

#[test]
fn only_cli_writes_to_stdout() {
    for needle in ["println!", "print!(", "stdout()"] {
        only_in(needle, &["src/cli.rs"]);
    }
}

#[test]
fn anyhow_only_at_the_top() {
    only_in("anyhow", &["src/cli.rs", "src/daemon.rs", "src/main.rs"]);
}

#[test]
fn only_the_lifecycle_saves_launch_records() {
    only_in(
        ".save(",
        &["src/launch/lifecycle.rs", "src/launch/record.rs"],
    );
}

#[test]
fn one_function_names_containers() {
    only_in(
        "\"arcade-{",
        &["src/launch/engine.rs", "src/launch/watch.rs"],
    );
}

#[test]
fn every_request_goes_through_the_one_http_client() {
    only_in(".send()", &["src/http.rs"]);
    only_in("reqwest::Client", &["src/http.rs"]);
}

#[test]
fn only_skaha_reads_skaha_statuses() {
    for word in [
        "\"Running\"",
        "\"Completed\"",
        "\"Pending\"",
        "\"Terminating\"",
    ] {
        only_in(word, &["src/skaha.rs"]);
    }
}

#[test]
fn the_menu_never_sees_http_or_wire_types() {
    for (path, lines) in sources() {
        if !path.starts_with("src/menu") {
            continue;
        }
        for (n, line) in lines {
            for needle in ["reqwest", "crate::http", "crate::harbor", "crate::skaha"] {
                assert!(
                    !line.contains(needle),
                    "{}:{n} names {needle}: {line}",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn the_catalog_does_no_io_but_catalog_files() {
    for needle in ["tokio", "reqwest", "std::process", "std::net"] {
        let (_, lines) = sources()
            .into_iter()
            .find(|(path, _)| path == Path::new("src/catalog.rs"))
            .expect("src/catalog.rs");
        for (n, line) in lines {
            assert!(!line.contains(needle), "src/catalog.rs:{n}: {line}");
        }
    }
}

#[test]
fn x11_blocks_and_knows_no_runtime() {
    only_in_not("src/x11.rs", "tokio");
}

fn only_in_not(file: &str, needle: &str) {
    let (_, lines) = sources()
        .into_iter()
        .find(|(path, _)| path == Path::new(file))
        .unwrap_or_else(|| panic!("no {file}"));
    for (n, line) in lines {
        assert!(!line.contains(needle), "{file}:{n} names {needle}: {line}");
    }
}

#[test]
fn every_source_file_says_what_it_owns() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (path, _) in sources() {
        let text = std::fs::read_to_string(root.join(&path)).unwrap();
        assert!(
            text.starts_with("//!"),
            "{} does not open with a //! line",
            path.display()
        );
    }
}

#[test]
fn the_menu_plan_is_pure_and_only_the_caches_run_programs() {
    for (path, lines) in sources() {
        if !path.starts_with("src/menu") {
            continue;
        }
        let pure = ["src/menu/mod.rs", "src/menu/mime.rs"]
            .iter()
            .any(|planner| path == Path::new(planner));
        for (n, line) in lines {
            if path != Path::new("src/menu/caches.rs") {
                assert!(
                    !line.contains("std::process"),
                    "{}:{n} runs a program: {line}",
                    path.display()
                );
            }
            if pure {
                assert!(
                    !line.contains("std::fs"),
                    "{}:{n} touches the disk: {line}",
                    path.display()
                );
            }
        }
    }
}
