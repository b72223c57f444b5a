//! The SAMP Standard Profile lockfile: how clients find the hub (its XML-RPC URL) and prove
//! they may use it (the secret). Written whole and renamed into place, readable by its owner
//! only; read back to tell a live hub from a stale file.
//! See: <https://www.ivoa.net/documents/SAMP/20190517/REC-SAMP-1.3-20190517.html#tth_sEc4.3>

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::wire::{self, Endpoint};
use super::xmlrpc;

/// What a lockfile says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lockfile {
    pub secret: String,
    pub url: String,
    /// Every `key=value` line, the two above included.
    pub keys: BTreeMap<String, String>,
}

impl Lockfile {
    /// Reads a lockfile's text; `None` when it lacks the secret or the URL.
    pub fn parse(text: &str) -> Option<Lockfile> {
        let keys: BTreeMap<String, String> = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| line.split_once('='))
            .map(|(key, value)| (key.trim().to_owned(), value.trim().to_owned()))
            .collect();
        Some(Lockfile {
            secret: keys.get("samp.secret")?.clone(),
            url: keys.get("samp.hub.xmlrpc.url")?.clone(),
            keys,
        })
    }

    /// The lockfile at `path`; `Ok(None)` when there is none or it says nothing usable.
    pub fn read(path: &Path) -> std::io::Result<Option<Lockfile>> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(Lockfile::parse(&text)),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// The text of a lockfile for a hub at `url`, `pid` being the hub's process.
    pub fn text(secret: &str, url: &str, pid: u32) -> String {
        format!(
            "# SAMP Standard Profile lockfile, written by arcade's session hub.\n\
             # Its clients are listed by `arcade samp`.\n\
             samp.secret={secret}\n\
             samp.hub.xmlrpc.url={url}\n\
             samp.profile.version=1.3\n\
             arcade.hub.pid={pid}\n"
        )
    }
}

/// Writes `text` to `path` as a whole: a private temporary file beside it, given to `owner`
/// (when this process may), renamed over the old one. Clients never read half a lockfile.
pub fn write(path: &Path, text: &str, owner: Option<(u32, u32)>) -> std::io::Result<()> {
    use std::io::Write as _;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut temporary = tempfile::Builder::new()
        .prefix(".samp-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .tempfile_in(dir)?;
    temporary.write_all(text.as_bytes())?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::fchown(temporary.as_file(), Some(uid), Some(gid))?;
    }
    temporary.as_file().sync_all()?;
    temporary.persist(path).map_err(|err| err.error)?;
    Ok(())
}

/// Removes the lockfile at `path` if it is still the one with `secret`: a lockfile another hub
/// has written since is its, and stays.
pub fn remove_if_ours(path: &Path, secret: &str) -> bool {
    match Lockfile::read(path) {
        Ok(Some(lockfile)) if lockfile.secret == secret => std::fs::remove_file(path).is_ok(),
        _ => false,
    }
}

/// Whether a hub answers `samp.hub.ping` at `url` within `timeout`.
pub async fn answers(url: &str, timeout: Duration) -> bool {
    let Ok(endpoint) = Endpoint::parse(url) else {
        return false;
    };
    let call = xmlrpc::call("samp.hub.ping", &[]);
    match wire::post(&endpoint, &call, timeout).await {
        Ok(body) => matches!(xmlrpc::parse_response(&body), Ok(Ok(_))),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_it_writes_and_what_others_write() {
        let ours =
            Lockfile::parse(&Lockfile::text("s3cret", "http://10.0.0.1:4567/xmlrpc", 42)).unwrap();
        assert_eq!(ours.secret, "s3cret");
        assert_eq!(ours.url, "http://10.0.0.1:4567/xmlrpc");
        assert_eq!(ours.keys["samp.profile.version"], "1.3");

        // JSAMP's, with a date in a comment and a key of its own.
        let jsamp = "#SAMP Standard Profile lockfile written 2026-12-07T09:00:00\n\
                     # Note contact URL hostname may be configured using jsamp.localhost property\n\
                     samp.secret=5c4b1cd2b8c3a0a8\n\
                     samp.hub.xmlrpc.url=http://127.0.0.1:36153/xmlrpc\n\
                     samp.profile.version=1.3\n\
                     jsamp.version=1.3.7\n";
        let read = Lockfile::parse(jsamp).unwrap();
        assert_eq!(read.url, "http://127.0.0.1:36153/xmlrpc");
        assert_eq!(read.keys["jsamp.version"], "1.3.7");

        assert_eq!(Lockfile::parse("samp.secret=x\n"), None);
        assert_eq!(Lockfile::parse("garbage\n\0\0"), None);
    }

    #[test]
    fn written_whole_private_and_removed_only_when_ours() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".samp");
        write(
            &path,
            &Lockfile::text("one", "http://127.0.0.1:1/xmlrpc", 1),
            None,
        )
        .unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!remove_if_ours(&path, "two"));
        assert!(path.exists());
        assert!(remove_if_ours(&path, "one"));
        assert!(!path.exists());
        // Nothing else was left in the folder.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
