//! The HTTP client shared by the Harbor and skaha clients: TLS, timeouts, retries, size limits
//! and one mapping from transport and status failures to [`Error`].
//!
//! TLS is always verified (system roots plus Mozilla's, plus an optional extra CA bundle);
//! `http://` URLs are allowed for registries on private networks. Transient failures (connect,
//! timeout, truncated body, 5xx, 429) are retried with exponential backoff and jitter, honouring
//! a capped `Retry-After`.
//!
//! Invariant: a client and its clones (one sync) hold at most [`BODY_BUDGET`] bytes of answers
//! at once, read or being read, and at most [`MAX_BODY`] of one, whatever servers send and
//! however many requests are in flight.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::{RequestBuilder, StatusCode, header::HeaderMap};
use serde::de::DeserializeOwned;

/// The most we read of one response; a hostile server cannot make us hold more. Real answers
/// (a page of 100 artifacts, skaha's image list) are well under a megabyte.
const MAX_BODY: usize = 8 << 20;
/// The most the answers a client holds at once may take, counted as their buffers' capacity:
/// with tens of requests in flight, each answer's own cap is not enough. An answer that would
/// take more fails as transient, so it is asked again once others are done.
const BODY_BUDGET: usize = 24 << 20;
/// How much of an error answer's body a status error keeps, for the API's module to read.
const ERROR_BODY: usize = 16 << 10;
/// Attempts per request, the first included.
const ATTEMPTS: u32 = 4;
/// The longest we sleep before a retry, whatever `Retry-After` asks.
const MAX_RETRY_SLEEP: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to set up the HTTP client: {0}")]
    Setup(String),
    #[error("failed to read CA bundle {path}: {message}")]
    CaFile { path: PathBuf, message: String },
    #[error("failed to read client certificate {path}: {message}")]
    Identity { path: PathBuf, message: String },
    #[error("cannot connect to {url}: {message}")]
    Connect { url: String, message: String },
    #[error(
        "{url} presented a TLS certificate that is not trusted ({message}); if a private CA signed \
         it, set ca_file in the config or ARCADE_CA_FILE"
    )]
    Certificate { url: String, message: String },
    #[error(
        "{url} refused the TLS handshake for want of a client certificate it accepts ({message}); \
         set skaha.cert_file or ARCADE_SKAHA_CERT_FILE to a PEM with your certificate and its key"
    )]
    ClientCertificate { url: String, message: String },
    #[error("{url} did not answer within {seconds} s")]
    Timeout { url: String, seconds: u64 },
    /// A non-2xx answer. `message` is what the server said, first line of its body unless the
    /// API's own module read its error format (see [`Error::with_message`]); `body` keeps the
    /// start of the body for that.
    #[error("{url} answered {status}{}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Status {
        url: String,
        status: StatusCode,
        message: Option<String>,
        body: Vec<u8>,
        retry_after: Option<Duration>,
    },
    #[error("the answer from {url} was cut off: {message}")]
    Body { url: String, message: String },
    #[error("the answer from {url} is larger than {} MiB", MAX_BODY >> 20)]
    TooLarge { url: String },
    #[error(
        "the answer from {url} does not fit in the {} MiB the answers in flight may take together",
        BODY_BUDGET >> 20
    )]
    OverBudget { url: String },
    #[error("the answer from {url} is not the JSON expected: {message}")]
    Json { url: String, message: String },
    #[error("{url} failed: {message}")]
    Other { url: String, message: String },
}

impl Error {
    /// Whether trying again may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Connect { .. }
            | Error::Timeout { .. }
            | Error::Body { .. }
            | Error::OverBudget { .. } => true,
            Error::Status { status, .. } => {
                status.is_server_error() || *status == StatusCode::TOO_MANY_REQUESTS
            }
            _ => false,
        }
    }

    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Error::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// A status error re-described by the module that knows the API's error format: `read`
    /// gets the start of the body and returns the message, if it finds one.
    pub fn with_message(self, read: impl FnOnce(&[u8]) -> Option<String>) -> Error {
        match self {
            Error::Status {
                url,
                status,
                message,
                body,
                retry_after,
            } => Error::Status {
                url,
                status,
                message: read(&body).or(message),
                body,
                retry_after,
            },
            other => other,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How to build a client.
#[derive(Debug, Clone, Default)]
pub struct ClientConfig {
    pub timeout: Duration,
    pub ca_file: Option<PathBuf>,
    /// A PEM file holding a client certificate and its private key.
    pub identity_file: Option<PathBuf>,
    /// Base delay before the first retry; doubles each time.
    pub backoff: Option<Duration>,
}

/// A reqwest client with our retry policy.
#[derive(Debug, Clone)]
pub struct Client {
    inner: reqwest::Client,
    timeout: Duration,
    backoff: Duration,
    /// Bytes of answers held, shared with clones.
    held: Arc<AtomicUsize>,
}

/// A successful response: its headers and its body, read in full. The body counts against its
/// client's [`BODY_BUDGET`] until the response is dropped.
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub url: String,
    _held: Held,
}

/// A share of a client's [`BODY_BUDGET`], given back when dropped.
#[derive(Debug)]
struct Held {
    total: Arc<AtomicUsize>,
    bytes: usize,
}

impl Held {
    /// Takes `more` bytes if the budget has them.
    fn grow(&mut self, more: usize) -> bool {
        let taken = self
            .total
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                held.checked_add(more).filter(|after| *after <= BODY_BUDGET)
            });
        if taken.is_ok() {
            self.bytes += more;
        }
        taken.is_ok()
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.total.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

impl Response {
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|err| Error::Json {
            url: self.url.clone(),
            message: err.to_string(),
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// An integer header such as `X-Total-Count`.
    pub fn header_u64(&self, name: &str) -> Option<u64> {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse().ok())
    }
}

impl Client {
    pub fn new(config: &ClientConfig) -> Result<Client> {
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("arcade/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(config.timeout)
            .timeout(config.timeout)
            .https_only(false)
            // Redirects could carry credentials to another host; the APIs we call do not redirect.
            .redirect(reqwest::redirect::Policy::none());
        if let Some(path) = &config.ca_file {
            for certificate in read_ca_bundle(path)? {
                builder = builder.add_root_certificate(certificate);
            }
        }
        if let Some(path) = &config.identity_file {
            let pem = std::fs::read(path).map_err(|err| Error::Identity {
                path: path.clone(),
                message: err.to_string(),
            })?;
            let identity = reqwest::Identity::from_pem(&pem).map_err(|err| Error::Identity {
                path: path.clone(),
                message: err.to_string(),
            })?;
            builder = builder.identity(identity);
        }
        let inner = builder
            .build()
            .map_err(|err| Error::Setup(error_chain(&err)))?;
        Ok(Client {
            inner,
            timeout: config.timeout,
            backoff: config.backoff.unwrap_or(Duration::from_millis(250)),
            held: Arc::default(),
        })
    }

    /// Sends the request `make` builds, retrying transient failures, and returns a 2xx response.
    pub async fn send(
        &self,
        url: &str,
        make: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Response> {
        let mut attempt = 1;
        loop {
            match self.send_once(url, make(&self.inner)).await {
                Ok(response) => return Ok(response),
                Err(err) if err.is_transient() && attempt < ATTEMPTS => {
                    let delay = self.retry_delay(&err, attempt);
                    tracing::debug!(%url, attempt, ?delay, "retrying after: {err}");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Err(err) => return Err(err),
            }
        }
    }

    fn retry_delay(&self, err: &Error, attempt: u32) -> Duration {
        if let Error::Status {
            retry_after: Some(after),
            ..
        } = err
        {
            return (*after).min(MAX_RETRY_SLEEP);
        }
        let base = self.backoff * 2u32.pow(attempt - 1);
        (base + jitter(base / 2)).min(MAX_RETRY_SLEEP)
    }

    /// Sends the request once, for requests that must not be repeated (a POST that starts an
    /// app: one that reached the server but lost its answer would start a second). Status and
    /// transport failures map to [`Error`] as for [`Client::send`]; a timeout is
    /// [`Error::Timeout`], after which the request may or may not have been carried out.
    pub async fn send_unretried(
        &self,
        url: &str,
        make: impl FnOnce(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Response> {
        self.send_once(url, make(&self.inner)).await
    }

    async fn send_once(&self, url: &str, request: RequestBuilder) -> Result<Response> {
        let response = request
            .send()
            .await
            .map_err(|err| self.transport(url, &err))?;
        let status = response.status();
        let headers = response.headers().clone();
        let (body, held) = self.read_body(url, response, status.is_success()).await?;
        if !status.is_success() {
            return Err(Error::Status {
                url: url.to_owned(),
                status,
                message: first_line(&body),
                body,
                retry_after: retry_after(&headers),
            });
        }
        Ok(Response {
            status,
            headers,
            body,
            url: url.to_owned(),
            _held: held,
        })
    }

    /// Reads a body within [`MAX_BODY`] and the client's [`BODY_BUDGET`]; of an error answer,
    /// only the first [`ERROR_BODY`] bytes, which is all a status error keeps.
    async fn read_body(
        &self,
        url: &str,
        mut response: reqwest::Response,
        success: bool,
    ) -> Result<(Vec<u8>, Held)> {
        let limit = if success { MAX_BODY } else { ERROR_BODY };
        let mut held = Held {
            total: Arc::clone(&self.held),
            bytes: 0,
        };
        let mut body: Vec<u8> = Vec::new();
        loop {
            let chunk = match response.chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => return Ok((body, held)),
                Err(err) if err.is_timeout() => {
                    return Err(Error::Timeout {
                        url: url.to_owned(),
                        seconds: self.timeout.as_secs(),
                    });
                }
                Err(err) => {
                    return Err(Error::Body {
                        url: url.to_owned(),
                        message: describe(&err),
                    });
                }
            };
            let wanted = body.len() + chunk.len();
            if wanted > limit {
                if !success {
                    body.extend_from_slice(&chunk[..limit - body.len()]);
                    return Ok((body, held));
                }
                return Err(Error::TooLarge {
                    url: url.to_owned(),
                });
            }
            if wanted > body.capacity() {
                // The buffer grows as a Vec would, and the budget pays for its whole capacity.
                let capacity = wanted.max(body.capacity() * 2).max(8 << 10).min(limit);
                if !held.grow(capacity - body.capacity()) {
                    return Err(Error::OverBudget {
                        url: url.to_owned(),
                    });
                }
                body.reserve_exact(capacity - body.len());
            }
            body.extend_from_slice(&chunk);
        }
    }

    fn transport(&self, url: &str, err: &reqwest::Error) -> Error {
        if err.is_timeout() {
            Error::Timeout {
                url: url.to_owned(),
                seconds: self.timeout.as_secs(),
            }
        } else if let Some(message) = certificate_problem(err) {
            // Trying again cannot make a certificate trusted.
            Error::Certificate {
                url: url.to_owned(),
                message,
            }
        } else if let Some(message) = client_certificate_refused(err) {
            Error::ClientCertificate {
                url: url.to_owned(),
                message,
            }
        } else if err.is_body() || err.is_decode() {
            Error::Body {
                url: url.to_owned(),
                message: describe(err),
            }
        } else {
            // A connection closed before the status line also lands here; it is worth a retry.
            Error::Connect {
                url: url.to_owned(),
                message: describe(err),
            }
        }
    }

    /// Sends `GET url` and decodes the JSON answer.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        url: &str,
        decorate: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<(T, Response)> {
        let response = self.send(url, |client| decorate(client.get(url))).await?;
        let value = response.json()?;
        Ok((value, response))
    }
}

/// The error text of an error and its sources, e.g. "error sending request: connection refused".
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// A reqwest error and its causes without the URL reqwest puts in its own text: our errors name
/// the URL once already.
fn describe(err: &reqwest::Error) -> String {
    let text = error_chain(err);
    match err.url() {
        Some(url) => text.replace(&format!(" for url ({url})"), ""),
        None => text,
    }
}

/// The cause that says the server's TLS certificate was refused (rustls: "invalid peer
/// certificate: …"), when that is why a request failed. reqwest does not expose its TLS errors as
/// types, so the causes are read as text; the request's own text is skipped because it holds the
/// URL.
fn certificate_problem(err: &dyn std::error::Error) -> Option<String> {
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if text.contains("invalid peer certificate") {
            return Some(text);
        }
        source = cause.source();
    }
    None
}

/// The cause that says the server refused our client certificate, or the lack of one: a TLS
/// alert it sent about certificates (a server's own certificate refused by us is
/// [`certificate_problem`] instead).
fn client_certificate_refused(err: &dyn std::error::Error) -> Option<String> {
    const ALERTS: [&str; 5] = [
        "CertificateRequired",
        "BadCertificate",
        "UnknownCA",
        "CertificateUnknown",
        "CertificateExpired",
    ];
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if let Some(alert) = text.split("received fatal alert: ").nth(1)
            && ALERTS.iter().any(|name| alert.starts_with(name))
        {
            return Some(format!("it sent the TLS alert {alert}"));
        }
        source = cause.source();
    }
    None
}

/// A short message from an error body: its first line of text, cut to a readable length.
pub fn first_line(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let line = text.lines().map(str::trim).find(|line| !line.is_empty())?;
    let mut line: String = line.chars().filter(|c| !c.is_control()).take(200).collect();
    if line.len() < text.trim().len() {
        line.push('…');
    }
    Some(line)
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// A random duration up to `max`, from the standard library's randomly keyed hasher, so retries
/// from many desktops do not arrive in step.
pub fn jitter(max: Duration) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    let nanos = max.as_nanos().max(1) as u64;
    Duration::from_nanos(hasher.finish() % nanos)
}

fn read_ca_bundle(path: &Path) -> Result<Vec<reqwest::Certificate>> {
    let pem = std::fs::read(path).map_err(|err| Error::CaFile {
        path: path.to_owned(),
        message: err.to_string(),
    })?;
    let certificates =
        reqwest::Certificate::from_pem_bundle(&pem).map_err(|err| Error::CaFile {
            path: path.to_owned(),
            message: err.to_string(),
        })?;
    if certificates.is_empty() {
        return Err(Error::CaFile {
            path: path.to_owned(),
            message: "no PEM certificate in it".to_owned(),
        });
    }
    Ok(certificates)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_say_their_first_line() {
        assert_eq!(first_line(b"\n  oops\nmore").as_deref(), Some("oops…"));
        assert_eq!(first_line(b""), None);
        let error = Error::Status {
            url: "u".into(),
            status: StatusCode::UNAUTHORIZED,
            message: first_line(b"{}"),
            body: b"{}".to_vec(),
            retry_after: None,
        };
        let error = error.with_message(|body| (body == b"{}").then(|| "read".to_owned()));
        assert!(error.to_string().ends_with(": read"), "{error}");
    }

    #[test]
    fn finds_certificate_problems_among_the_causes() {
        #[derive(Debug)]
        struct Request(std::io::Error);
        impl std::fmt::Display for Request {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("error sending request for url (https://certificate.example/)")
            }
        }
        impl std::error::Error for Request {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let refused = Request(std::io::Error::other(
            "invalid peer certificate: UnknownIssuer",
        ));
        assert_eq!(
            certificate_problem(&refused).as_deref(),
            Some("invalid peer certificate: UnknownIssuer")
        );
        let closed = Request(std::io::Error::other("connection refused"));
        assert_eq!(certificate_problem(&closed), None);
        let error = Error::Certificate {
            url: "https://h".into(),
            message: "invalid peer certificate: UnknownIssuer".into(),
        };
        assert!(!error.is_transient());
        assert!(error.to_string().contains("ca_file"), "{error}");
    }

    #[test]
    fn answers_share_one_budget_until_dropped() {
        let total = Arc::new(AtomicUsize::new(0));
        let held = |bytes| Held {
            total: Arc::clone(&total),
            bytes,
        };
        let mut first = held(0);
        assert!(first.grow(BODY_BUDGET - 10));
        let mut second = held(0);
        assert!(!second.grow(11), "over the budget");
        assert!(second.grow(10));
        drop(first);
        assert_eq!(total.load(Ordering::Relaxed), 10);
        assert!(second.grow(BODY_BUDGET - 10));
        drop(second);
        assert_eq!(total.load(Ordering::Relaxed), 0);
        assert!(Error::OverBudget { url: "u".into() }.is_transient());
    }

    #[test]
    fn classifies_transient_errors() {
        let status = |code: u16| Error::Status {
            url: "u".into(),
            status: StatusCode::from_u16(code).unwrap(),
            message: None,
            body: Vec::new(),
            retry_after: None,
        };
        assert!(status(503).is_transient());
        assert!(status(429).is_transient());
        assert!(!status(401).is_transient());
        assert!(!status(404).is_transient());
        assert!(
            !Error::Json {
                url: "u".into(),
                message: "m".into()
            }
            .is_transient()
        );
    }
}
