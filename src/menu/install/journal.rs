//! The install journal, `journal` beside the manifest: before a sync writes a file, it appends the
//! file's path and the hash of its new content, so a sync that is killed or fails partway leaves
//! a list of every file it may have written. The next sync or `clean` takes a file listed there,
//! holding one of the listed hashes, as arcade's: it finishes or undoes what was started, removes
//! the temporary files such a sync left, and removes the journal once a saved manifest records
//! the outcome.
//!
//! One line per file, `{"path":…,"sha256":…}`, appended a batch at a time in one write, so a kill
//! cuts off at most the last line, which reading skips. A path may appear several times (each
//! interrupted sync appends); every hash listed counts.
//!
//! The journal is not synced to disk, like the files it lists (see `save_manifest`): it guards
//! against a killed process and failed writes, for which the page cache is as good as the disk.
//! After a power cut, a file whose line was lost and that no later menu plans stays behind.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write as _};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{Digest, Result, hex_digest, io_error, owned};

/// An open journal, appended to by one sync.
pub struct Journal {
    file: fs::File,
    path: PathBuf,
}

#[derive(Deserialize)]
struct Line {
    path: PathBuf,
    #[serde(with = "hex_digest")]
    sha256: Digest,
}

impl Journal {
    /// Opens the journal at `path` for appending, creating it.
    pub fn open(path: &Path) -> Result<Journal> {
        let file = owned::open_own(
            path,
            fs::OpenOptions::new().append(true).create(true).mode(0o644),
        )
        .map_err(io_error("open journal", path))?;
        Ok(Journal {
            file,
            path: path.to_owned(),
        })
    }

    /// Appends one line per file in a single write; returns once the kernel has them, so a
    /// file written after this is listed even if the process is killed right then.
    pub fn append<'a>(
        &mut self,
        entries: impl IntoIterator<Item = (&'a Path, &'a Digest)>,
    ) -> Result<()> {
        let mut text = Vec::new();
        for (path, sha256) in entries {
            let path_text = path.to_str().ok_or_else(|| {
                io_error("write journal", &self.path)(io::Error::other(format!(
                    "{} is not UTF-8",
                    path.display()
                )))
            })?;
            text.extend_from_slice(b"{\"path\":");
            // Writing a string into a Vec cannot fail.
            serde_json::to_writer(&mut text, path_text).expect("a string serializes");
            text.extend_from_slice(b",\"sha256\":\"");
            text.extend_from_slice(crate::menu::hex(sha256).as_bytes());
            text.extend_from_slice(b"\"}\n");
        }
        (&self.file)
            .write_all(&text)
            .map_err(io_error("write journal", &self.path))
    }
}

/// What an earlier sync left in its journal.
#[derive(Debug, Default)]
pub struct Found {
    /// Each path listed, with every hash listed for it.
    pub files: HashMap<PathBuf, Vec<Digest>>,
    /// A journal was there (even one that could not be read): the sync that left it did not
    /// finish, so the next one must save its manifest and remove the journal.
    pub present: bool,
    pub warning: Option<String>,
}

/// Reads the journal at `path`, if there is one.
pub fn read(path: &Path) -> Found {
    let bytes = match owned::read_own(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Found::default(),
        Err(err) => {
            return Found {
                present: true,
                warning: Some(format!(
                    "failed to read the journal {} of an unfinished sync ({err}); files it \
                     listed are not taken as arcade's",
                    path.display()
                )),
                ..Found::default()
            };
        }
    };
    let mut files: HashMap<PathBuf, Vec<Digest>> = HashMap::new();
    for line in bytes.split(|b| *b == b'\n') {
        // A line a kill cut short does not parse: the file it was about was not written yet.
        if let Ok(Line { path, sha256 }) = serde_json::from_slice::<Line>(line) {
            let hashes = files.entry(path).or_default();
            if !hashes.contains(&sha256) {
                hashes.push(sha256);
            }
        }
    }
    Found {
        files,
        present: true,
        warning: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_and_reads_back_skipping_a_cut_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal");
        let (a, b) = ([1; 32], [2; 32]);
        let mut journal = Journal::open(&path).unwrap();
        journal
            .append([
                (Path::new("/x/a \"quoted\".desktop"), &a),
                (Path::new("/x/b"), &b),
            ])
            .unwrap();
        drop(journal);
        // A second sync appends: the same path with another hash, and a line cut short.
        let mut journal = Journal::open(&path).unwrap();
        journal.append([(Path::new("/x/b"), &a)]).unwrap();
        (&journal.file)
            .write_all(b"{\"path\":\"/x/c\",\"sha")
            .unwrap();
        let found = read(&path);
        assert!(found.present);
        assert_eq!(found.warning, None);
        assert_eq!(found.files.len(), 2);
        assert_eq!(found.files[Path::new("/x/a \"quoted\".desktop")], [a]);
        assert_eq!(found.files[Path::new("/x/b")], [b, a]);
        assert!(!read(&dir.path().join("none")).present);
    }
}
