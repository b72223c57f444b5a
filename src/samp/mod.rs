//! SAMP, the IVOA's Simple Application Messaging Protocol, across a session's apps: a hub of
//! arcade's own (the Standard Profile of SAMP 1.3 over XML-RPC), which the daemon runs for each
//! desktop session, and what users see of it.
//!
//! - [`serve`] runs a hub: it binds, replaces a lockfile whose hub is gone, writes its own,
//!   serves until told to stop, and removes its lockfile. It reports what happens as
//!   [`Notice`]s and, when asked, keeps a [`status`] file that `arcade samp` reads.
//! - `hub.rs` routes messages; `callback.rs` translates clients' callback URLs by the address
//!   their registration came from (clients in pods and containers advertise addresses only
//!   they can use) and delivers to them; `xmlrpc.rs` and `wire.rs` are the protocol.
//! - `session.rs` is the daemon's side: the session's shared network (a podman pod, or a docker
//!   container whose network the apps join) and the hub process in it.
//!
//! Invariants: a lockfile is only ever replaced whole, and removed only by the hub whose secret
//! it holds; a lockfile whose hub answers is never replaced.

pub mod callback;
pub mod hub;
pub mod lockfile;
pub mod session;
pub mod status;
pub mod wire;
pub mod xmlrpc;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use hub::Hub;
use lockfile::Lockfile;

/// What went wrong running a hub.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to listen on {address}: {source}")]
    Bind {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("failed to {action} the SAMP lockfile {path}: {source}")]
    Lockfile {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "a SAMP hub already answers at {url} (its lockfile is {path}); arcade's hub leaves it be"
    )]
    AnotherHub { url: String, path: PathBuf },
    #[error("no address to bind the hub to: {0}")]
    NoAddress(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a hub reports as it runs: one JSON object per line when `arcade samp hub --notices`
/// prints them, which is how the daemon follows its session's hub.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "notice", rename_all = "kebab-case")]
pub enum Notice {
    /// Serving at `url`, with its lockfile written.
    Ready {
        url: String,
        lockfile: PathBuf,
    },
    /// The lockfile found at the start named a hub that did not answer, or said nothing usable.
    ReplacedStale {
        lockfile: PathBuf,
        url: Option<String>,
    },
    Registered {
        id: String,
        from: IpAddr,
    },
    Unregistered {
        id: String,
    },
    /// The hub could not deliver to a client (the first failure of a run).
    Unreachable {
        id: String,
        name: Option<String>,
        url: String,
        error: String,
    },
    /// The lockfile had gone or been replaced by a hub that does not answer: written again.
    Restored {
        lockfile: PathBuf,
    },
    /// Another hub that answers has taken the lockfile over.
    Superseded {
        lockfile: PathBuf,
        url: String,
    },
}

/// How to run a hub.
#[derive(Debug, Clone)]
pub struct Options {
    /// The address to listen on and advertise.
    pub address: IpAddr,
    /// 0 for any free port.
    pub port: u16,
    pub lockfile: PathBuf,
    /// Who the lockfile is given to, when this process runs as root (the apps' user).
    pub owner: Option<(u32, u32)>,
    /// Where to keep the status file `arcade samp` reads.
    pub status: Option<PathBuf>,
    /// Where to keep the hub's state, and carry on from it when it is there: a hub started
    /// again after dying keeps its URL, secret and clients.
    pub state: Option<PathBuf>,
}

/// How often the hub checks that its lockfile is still there and still its own.
const GUARD_EVERY: Duration = Duration::from_secs(2);

/// How long a hub named by an existing lockfile may take to answer a ping.
const PING_WITHIN: Duration = Duration::from_secs(2);

/// Runs a hub until `stop` completes, then tells its clients, removes its lockfile and status.
pub async fn serve(
    options: Options,
    notices: mpsc::UnboundedSender<Notice>,
    stop: impl Future<Output = ()>,
) -> Result<()> {
    let (listener, url, resumed) = listen(&options).await?;
    let secret = match &resumed {
        Some(saved) => saved.secret.clone(),
        None => random_hex(16),
    };
    let stale = check_existing(&options.lockfile, &secret).await?;
    let text = Lockfile::text(&secret, &url, std::process::id());
    write_lockfile(&options, &text)?;
    if let Some(stale) = stale {
        let _ = notices.send(stale);
    }
    let hub = match resumed {
        Some(saved) => {
            tracing::info!(url, "SAMP hub carrying on from its saved state");
            Hub::resume(saved, notices.clone())
        }
        None => Hub::new(secret.clone(), notices.clone()),
    };
    let _ = notices.send(Notice::Ready {
        url: url.clone(),
        lockfile: options.lockfile.clone(),
    });
    tracing::info!(url, lockfile = %options.lockfile.display(), "SAMP hub ready");
    let status = status::Writer::new(&options, &url);
    tokio::select! {
        () = accept(Arc::clone(&hub), listener) => {}
        () = guard(&options, &text, &secret, &notices) => {}
        () = status.keep(&hub) => {}
        () = stop => {}
    }
    tracing::info!(url, "SAMP hub stopping");
    hub.shut_down().await;
    lockfile::remove_if_ours(&options.lockfile, &secret);
    status.remove();
    Ok(())
}

/// Listens where the saved state says the hub was (so its clients find it again), else on the
/// address and port asked for; the URL; and the saved state, when the hub carries on from it.
async fn listen(
    options: &Options,
) -> Result<(tokio::net::TcpListener, String, Option<hub::Saved>)> {
    let saved = options
        .state
        .as_deref()
        .and_then(hub::Saved::read)
        .filter(|saved| saved.url_address() == Some(options.address));
    let mut attempts = Vec::new();
    if let Some(port) = saved.as_ref().and_then(hub::Saved::port) {
        attempts.push((port, saved));
    }
    attempts.push((options.port, None));
    let mut last = None;
    for (port, saved) in attempts {
        let address = SocketAddr::new(options.address, port);
        match tokio::net::TcpListener::bind(address).await {
            Ok(listener) => {
                let bound = listener
                    .local_addr()
                    .map_err(|source| Error::Bind { address, source })?;
                let url = wire::Endpoint {
                    host: bound.ip().to_string(),
                    port: bound.port(),
                    path: "/xmlrpc".to_owned(),
                }
                .url();
                return Ok((listener, url, saved));
            }
            Err(source) => last = Some(Error::Bind { address, source }),
        }
    }
    Err(last.expect("at least one address was tried"))
}

/// What to make of a lockfile found at the start: nothing there (or nothing usable, or a hub
/// that does not answer) is replaced, reported as a notice; a hub that answers is left be. One
/// with `own_secret` is this hub's from before it was started again.
async fn check_existing(path: &Path, own_secret: &str) -> Result<Option<Notice>> {
    let found = Lockfile::read(path).map_err(|source| Error::Lockfile {
        action: "read",
        path: path.to_owned(),
        source,
    })?;
    let exists = path.exists();
    match found {
        None if !exists => Ok(None),
        Some(found) if found.secret == own_secret => Ok(None),
        None => Ok(Some(Notice::ReplacedStale {
            lockfile: path.to_owned(),
            url: None,
        })),
        Some(found) if lockfile::answers(&found.url, PING_WITHIN).await => Err(Error::AnotherHub {
            url: found.url,
            path: path.to_owned(),
        }),
        Some(found) => Ok(Some(Notice::ReplacedStale {
            lockfile: path.to_owned(),
            url: Some(found.url),
        })),
    }
}

fn write_lockfile(options: &Options, text: &str) -> Result<()> {
    // Only root may give a file away; anyone else writes it as the apps' user already.
    // SAFETY: geteuid only reads the process's credentials.
    let owner = options.owner.filter(|_| unsafe { libc::geteuid() } == 0);
    lockfile::write(&options.lockfile, text, owner).map_err(|source| Error::Lockfile {
        action: "write",
        path: options.lockfile.clone(),
        source,
    })
}

/// Serves XML-RPC calls, one task per connection.
async fn accept(hub: Arc<Hub>, listener: tokio::net::TcpListener) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of descriptors, say: wait a moment rather than spin.
                tracing::warn!("failed to accept a SAMP connection: {err}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let hub = Arc::clone(&hub);
        tokio::spawn(async move {
            if let Err(err) = answer(&hub, stream, peer).await {
                tracing::debug!(%peer, "SAMP connection: {err}");
            }
        });
    }
}

/// Reads one call from a connection and writes its answer.
async fn answer(
    hub: &Arc<Hub>,
    mut stream: tokio::net::TcpStream,
    peer: SocketAddr,
) -> std::io::Result<()> {
    let (reader, writer) = stream.split();
    let request = tokio::time::timeout(
        Duration::from_secs(30),
        wire::read_request(reader, &peer.to_string()),
    )
    .await;
    let request = match request {
        Ok(Ok(request)) => request,
        Ok(Err(err)) => {
            let body = xmlrpc::fault(1, &err.to_string());
            return wire::write_response(writer, 400, "Bad Request", &body).await;
        }
        Err(_) => return Ok(()),
    };
    if request.method != "POST" {
        let body = xmlrpc::fault(1, "SAMP hubs take XML-RPC calls by POST");
        return wire::write_response(writer, 405, "Method Not Allowed", &body).await;
    }
    let call = String::from_utf8(request.body)
        .map_err(|_| "the call is not UTF-8".to_owned())
        .and_then(|text| xmlrpc::parse_call(&text).map_err(|err| err.to_string()));
    let body = match call {
        Ok(call) => match hub.handle(&call.method, call.params, peer.ip()).await {
            Ok(value) => xmlrpc::response(&value),
            Err(fault) => {
                tracing::debug!(method = call.method, %peer, "fault: {fault}");
                xmlrpc::fault(1, &fault)
            }
        },
        Err(err) => xmlrpc::fault(1, &err),
    };
    wire::write_response(writer, 200, "OK", &body).await
}

/// Keeps the lockfile in place: one removed (DS9 removes a lockfile whose hub it cannot reach)
/// or replaced by a hub that does not answer is written again; one taken over by a hub that
/// answers is left to it, and said once.
async fn guard(
    options: &Options,
    text: &str,
    secret: &str,
    notices: &mpsc::UnboundedSender<Notice>,
) {
    let mut superseded_by: Option<String> = None;
    loop {
        tokio::time::sleep(GUARD_EVERY).await;
        let found = Lockfile::read(&options.lockfile).ok().flatten();
        let other = match found {
            Some(found) if found.secret == secret => {
                superseded_by = None;
                continue;
            }
            Some(found) => Some(found.url),
            None => None,
        };
        if let Some(url) = &other
            && lockfile::answers(url, PING_WITHIN).await
        {
            if superseded_by.as_deref() != Some(url) {
                tracing::warn!(url, "another SAMP hub took over the lockfile");
                let _ = notices.send(Notice::Superseded {
                    lockfile: options.lockfile.clone(),
                    url: url.clone(),
                });
                superseded_by = Some(url.clone());
            }
            continue;
        }
        match write_lockfile(options, text) {
            Ok(()) => {
                tracing::info!(lockfile = %options.lockfile.display(), "SAMP lockfile restored");
                let _ = notices.send(Notice::Restored {
                    lockfile: options.lockfile.clone(),
                });
            }
            Err(err) => tracing::warn!("{err}"),
        }
    }
}

/// `n` random bytes as hex: secrets and private keys.
pub fn random_hex(n: usize) -> String {
    use ring::rand::SecureRandom as _;
    let mut bytes = vec![0u8; n];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system's random source");
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The address a hub in a platform desktop listens on: the desktop's own, so that app pods,
/// each at an address of its own, reach it. The first address of an interface that is up and
/// not loopback (a pod has one).
pub fn desktop_address() -> Result<IpAddr> {
    let mut found = Vec::new();
    // SAFETY: getifaddrs allocates a list that freeifaddrs releases; entries are read only in
    // between, and their addresses only as the family they declare.
    unsafe {
        let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
        if libc::getifaddrs(&mut list) != 0 {
            return Err(Error::NoAddress(
                std::io::Error::last_os_error().to_string(),
            ));
        }
        let mut entry = list;
        while !entry.is_null() {
            let ifa = &*entry;
            let up = ifa.ifa_flags & libc::IFF_UP as u32 != 0;
            if up
                && !ifa.ifa_addr.is_null()
                && i32::from((*ifa.ifa_addr).sa_family) == libc::AF_INET
            {
                let inet = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                let address = std::net::Ipv4Addr::from(u32::from_be(inet.sin_addr.s_addr));
                if !address.is_loopback() {
                    found.push(IpAddr::V4(address));
                }
            }
            entry = ifa.ifa_next;
        }
        libc::freeifaddrs(list);
    }
    found.into_iter().next().ok_or_else(|| {
        Error::NoAddress("no network interface here has an IPv4 address other than loopback".into())
    })
}
