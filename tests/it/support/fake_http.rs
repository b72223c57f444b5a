//! The core every HTTP stand-in (Harbor, skaha) is built on: a real server on 127.0.0.1 with a
//! port of its own, plain or TLS ([`Transport`]), that logs every request, counts how many are in
//! flight, misbehaves on demand ([`Fault`]s and latency, changeable while it runs), checks its log
//! against the service's published contract, and closes its port when dropped.
//!
//! A stand-in brings only what is its own ([`Service`]): a handler that answers a request without
//! waiting, the body it sends with a failure status, and its contract. The URL and query codecs
//! the services share are here too.
//!
//! This file uses only axum, tokio and std, and of its parent module only
//! `contract.rs`, so a benchmark can include it with `#[path]` beside `harbor.rs`.

#![allow(dead_code)]

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::extract::connect_info::Connected;
use axum::http::{HeaderMap, HeaderValue, Method, Request, Response, header};
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::contract::Contract;

// ---------------------------------------------------------------------------------------------
// Requests, their log, and faults.

/// A request as it arrived, before any decoding.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub method: Method,
    /// The path as sent, still percent-encoded.
    pub path: String,
    /// The query as sent, still percent-encoded; empty when there is none.
    pub query: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Incoming {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// The path and query as sent: `/api/v2.0/projects?page=1`.
    pub fn uri(&self) -> String {
        if self.query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{}", self.path, self.query)
        }
    }
}

/// One request in the log.
#[derive(Debug, Clone)]
pub struct LoggedRequest {
    pub method: String,
    /// The path as sent, still percent-encoded.
    pub path: String,
    /// The query as sent, still percent-encoded.
    pub query: String,
    pub authorization: Option<String>,
    /// The `x-auth-token-skaha` header.
    pub skaha_token: Option<String>,
    pub content_type: Option<String>,
    pub user_agent: Option<String>,
    pub body: String,
    /// The status answered; `None` while unanswered (or never answered: a hang).
    pub status: Option<u16>,
    /// When it arrived.
    pub at: Instant,
}

impl LoggedRequest {
    /// The path and query as sent.
    pub fn uri(&self) -> String {
        if self.query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{}", self.path, self.query)
        }
    }

    /// A query parameter, decoded; the first one when repeated.
    pub fn param(&self, name: &str) -> Option<String> {
        parse_query(&self.query)
            .into_iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value)
    }

    /// The user and secret of a `Basic` authorization header.
    pub fn basic_credentials(&self) -> Option<(String, String)> {
        basic_credentials(self.authorization.as_deref()?)
    }
}

/// What goes wrong, when a [`Fault`] hits.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultKind {
    /// Answer with this status. The body is what the service sends for it (Harbor's error envelope,
    /// nginx's HTML page for 502, 503 and 504); 429 comes with `Retry-After: 1`.
    Status(u16),
    /// Answer 200 with a body that is not JSON, labelled as JSON.
    InvalidJson,
    /// Answer normally, but declare the whole body's length, send half of it and close.
    Truncate,
    /// Never answer.
    Hang,
    /// Wait this long, then answer normally.
    Delay(Duration),
}

/// A misbehaviour for matching requests: every one, or only the first `times`.
#[derive(Debug, Clone)]
pub struct Fault {
    pub kind: FaultKind,
    /// Only requests whose path-and-query as sent contain this.
    pub path_contains: Option<String>,
    pub method: Option<Method>,
    /// How many matching requests it hits; `None` for all of them.
    pub times: Option<usize>,
}

impl Fault {
    pub fn always(kind: FaultKind) -> Fault {
        Fault {
            kind,
            path_contains: None,
            method: None,
            times: None,
        }
    }

    pub fn first(times: usize, kind: FaultKind) -> Fault {
        Fault {
            times: Some(times),
            ..Fault::always(kind)
        }
    }

    /// Limits the fault to requests whose path and query (as sent) contain `text`.
    pub fn on(mut self, text: &str) -> Fault {
        self.path_contains = Some(text.to_owned());
        self
    }

    pub fn method(mut self, method: Method) -> Fault {
        self.method = Some(method);
        self
    }

    fn matches(&self, request: &Incoming) -> bool {
        self.method.as_ref().is_none_or(|m| *m == request.method)
            && self
                .path_contains
                .as_deref()
                .is_none_or(|text| request.uri().contains(text))
    }
}

/// A service's answer to a request, decided without waiting.
pub type Handler = Arc<dyn Fn(&Incoming) -> Response<Body> + Send + Sync>;
/// The body a service sends with a failure status.
pub type ErrorPage = fn(u16) -> Response<Body>;

/// The shared state of a running server: the log, the gauge, the knobs.
pub struct Core {
    log: Mutex<Vec<LoggedRequest>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    latency: Mutex<Duration>,
    faults: Mutex<Vec<Fault>>,
    error_page: ErrorPage,
    next_request_id: AtomicU64,
}

struct InFlight<'a>(&'a Core);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Core {
    fn enter(&self) -> InFlight<'_> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(self)
    }

    fn record(&self, request: &Incoming) -> usize {
        let header = |name: &str| request.header(name).map(str::to_owned);
        let mut log = self.log.lock().unwrap();
        log.push(LoggedRequest {
            method: request.method.to_string(),
            path: request.path.clone(),
            query: request.query.clone(),
            authorization: header("authorization"),
            skaha_token: header("x-auth-token-skaha"),
            content_type: header("content-type"),
            user_agent: header("user-agent"),
            body: String::from_utf8_lossy(&request.body).into_owned(),
            status: None,
            at: Instant::now(),
        });
        log.len() - 1
    }

    /// The fault that hits this request, if any, counting it against its budget.
    fn take_fault(&self, request: &Incoming) -> Option<FaultKind> {
        let mut faults = self.faults.lock().unwrap();
        for fault in faults.iter_mut() {
            if !fault.matches(request) {
                continue;
            }
            match &mut fault.times {
                Some(0) => continue,
                Some(n) => *n -= 1,
                None => {}
            }
            return Some(fault.kind.clone());
        }
        None
    }

    async fn answer(
        &self,
        handler: &Handler,
        request: Incoming,
        cutter: Option<Cutter>,
    ) -> Response<Body> {
        let position = self.record(&request);
        let _in_flight = self.enter();
        let latency = *self.latency.lock().unwrap();
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let mut response = match self.take_fault(&request) {
            None => handler(&request),
            Some(FaultKind::Delay(delay)) => {
                tokio::time::sleep(delay).await;
                handler(&request)
            }
            Some(FaultKind::Hang) => std::future::pending().await,
            Some(FaultKind::Status(status)) => {
                let mut response = (self.error_page)(status);
                if status == 429 {
                    response
                        .headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                }
                response
            }
            Some(FaultKind::InvalidJson) => Response::builder()
                .status(200)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(
                    "<html><body><h1>Harbor is being upgraded</h1></body></html>\n",
                ))
                .unwrap(),
            Some(FaultKind::Truncate) => {
                let (parts, body) = handler(&request).into_parts();
                let body = axum::body::to_bytes(body, usize::MAX)
                    .await
                    .unwrap_or_default();
                if let Some(cutter) = cutter {
                    cutter.cut_after_body((body.len() / 2).max(1));
                }
                Response::from_parts(parts, Body::from(body))
            }
        };
        let request_id = match request.header("x-request-id") {
            Some(id) => id.to_owned(),
            None => {
                let n = self.next_request_id.fetch_add(1, Ordering::SeqCst);
                let x = splitmix(n ^ u64::from(std::process::id()));
                format!(
                    "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
                    x >> 32,
                    (x >> 16) & 0xffff,
                    x & 0xfff,
                    (x >> 52) & 0xfff,
                    splitmix(x) & 0xffff_ffff_ffff
                )
            }
        };
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert("x-request-id", value);
        }
        self.log.lock().unwrap()[position].status = Some(response.status().as_u16());
        response
    }
}

/// How far a connection's next response may go before it is cut.
#[derive(Debug, Default)]
enum Cut {
    /// Everything goes through.
    #[default]
    Pass,
    /// The next response's head goes through, then `body_bytes` of its body.
    AwaitHead { body_bytes: usize, carry: Vec<u8> },
    /// This many more body bytes go through.
    Body { left: usize },
    /// Nothing more goes out: the connection fails.
    Done,
}

/// A handle on one connection that lets a handler cut its own response short: the head (with
/// the full `Content-Length`) and part of the body are sent, then the connection is closed, as
/// when a proxy dies mid-answer.
#[derive(Debug, Clone, Default)]
pub struct Cutter(Arc<Mutex<Cut>>);

impl Cutter {
    fn cut_after_body(&self, body_bytes: usize) {
        *self.0.lock().unwrap() = Cut::AwaitHead {
            body_bytes,
            carry: Vec::new(),
        };
    }

    /// Where `\r\n\r\n` ends in `buf`, counting the `carry` bytes written before it.
    fn head_end(carry: &[u8], buf: &[u8]) -> Option<usize> {
        let joined: Vec<u8> = carry.iter().chain(buf).copied().collect();
        joined
            .windows(4)
            .position(|window| window == b"\r\n\r\n")
            .map(|start| start + 4 - carry.len())
    }

    /// How much of `buf` may be written now.
    fn limit(&self, buf: &[u8]) -> usize {
        match &*self.0.lock().unwrap() {
            Cut::Pass => buf.len(),
            Cut::AwaitHead { body_bytes, carry } => Cutter::head_end(carry, buf)
                .map_or(buf.len(), |end| (end + body_bytes).min(buf.len())),
            Cut::Body { left } => (*left).min(buf.len()),
            Cut::Done => 0,
        }
    }

    /// Accounts for `written` bytes having gone out.
    fn advance(&self, written: &[u8]) {
        let mut cut = self.0.lock().unwrap();
        let next = match &mut *cut {
            Cut::Pass | Cut::Done => return,
            Cut::AwaitHead { body_bytes, carry } => match Cutter::head_end(carry, written) {
                Some(end) => match body_bytes.checked_sub(written.len() - end) {
                    Some(left) if left > 0 => Cut::Body { left },
                    _ => Cut::Done,
                },
                None => {
                    carry.extend_from_slice(written);
                    let keep = carry.len().saturating_sub(3);
                    carry.drain(..keep);
                    return;
                }
            },
            Cut::Body { left } => match left.checked_sub(written.len()) {
                Some(left) if left > 0 => Cut::Body { left },
                _ => Cut::Done,
            },
        };
        *cut = next;
    }
}

/// A listener whose connections carry a [`Cutter`].
struct CutListener<L> {
    inner: L,
}

struct CutIo<I> {
    io: I,
    cutter: Cutter,
}

impl<L: Listener> Listener for CutListener<L> {
    type Io = CutIo<L::Io>;
    type Addr = L::Addr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (io, addr) = self.inner.accept().await;
        let cutter = Cutter::default();
        (CutIo { io, cutter }, addr)
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

impl<L: Listener> Connected<IncomingStream<'_, CutListener<L>>> for Cutter {
    fn connect_info(stream: IncomingStream<'_, CutListener<L>>) -> Cutter {
        stream.io().cutter.clone()
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for CutIo<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for CutIo<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        let limit = this.cutter.limit(buf);
        if limit == 0 && !buf.is_empty() {
            ready!(Pin::new(&mut this.io).poll_flush(cx))?;
            return Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the fake server cut this answer short",
            )));
        }
        let written = ready!(Pin::new(&mut this.io).poll_write(cx, &buf[..limit]))?;
        this.cutter.advance(&buf[..written]);
        Poll::Ready(Ok(written))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// How a stand-in listens: what it makes of the bound TCP socket, and the URL scheme that goes
/// with it. [`Plain`] is HTTP; `tls.rs` makes the HTTPS one.
pub trait Transport: Send + 'static {
    type Listener: Listener<Addr: std::fmt::Debug>;

    /// `http` or `https`, for [`Server::url`].
    fn scheme(&self) -> &'static str;

    /// The listener the server accepts connections from.
    fn listen(self, tcp: tokio::net::TcpListener) -> Self::Listener;
}

/// Plain HTTP.
pub struct Plain;

impl Transport for Plain {
    type Listener = tokio::net::TcpListener;

    fn scheme(&self) -> &'static str {
        "http"
    }

    fn listen(self, tcp: tokio::net::TcpListener) -> tokio::net::TcpListener {
        tcp
    }
}

/// What a stand-in brings to the core.
pub struct Service {
    pub handler: Handler,
    pub error_page: ErrorPage,
    /// The contract the service publishes, which its callers' requests must keep to. A function,
    /// so the contract is read only by the tests that check it.
    pub contract: fn() -> &'static Contract,
    /// Added before every answer; other requests are answered meanwhile.
    pub latency: Duration,
    /// Faults in force from the start.
    pub faults: Vec<Fault>,
}

/// A running stand-in: an axum app on 127.0.0.1 served by its own tokio runtime, whose worker
/// threads run in the background. Dropping it closes the port.
pub struct Server {
    runtime: Option<tokio::runtime::Runtime>,
    addr: SocketAddr,
    url: String,
    core: Arc<Core>,
    contract: fn() -> &'static Contract,
}

impl Server {
    /// Serves `service` on a free port of 127.0.0.1 through `transport`.
    pub fn start(transport: impl Transport, service: Service) -> Server {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("fake-http")
            .enable_all()
            .build()
            .expect("start a tokio runtime for a fake server");
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").expect("bind a fake server on 127.0.0.1");
        listener
            .set_nonblocking(true)
            .expect("make the fake server's socket non-blocking");
        let addr = listener.local_addr().expect("the fake server's address");
        let core = Arc::new(Core {
            log: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            latency: Mutex::new(service.latency),
            faults: Mutex::new(service.faults),
            error_page: service.error_page,
            next_request_id: AtomicU64::new(1),
        });
        let app = router(Arc::clone(&core), service.handler);
        let url = format!("{}://{addr}", transport.scheme());
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener)
                .expect("hand the fake server's socket to tokio");
            let listener = CutListener {
                inner: transport.listen(listener),
            };
            let _ = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<Cutter>(),
            )
            .await;
        });
        Server {
            runtime: Some(runtime),
            addr,
            url,
            core,
            contract: service.contract,
        }
    }

    /// `http://127.0.0.1:<port>` (or `https://…`).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.core.log.lock().unwrap().clone()
    }

    /// The requests whose path (as sent, percent-encoded) contains `text`.
    pub fn requests_to(&self, text: &str) -> Vec<LoggedRequest> {
        self.requests()
            .into_iter()
            .filter(|request| request.path.contains(text))
            .collect()
    }

    /// Panics naming every request so far that the service's contract does not declare.
    #[track_caller]
    pub fn assert_requests_in_contract(&self) {
        (self.contract)().assert_requests(&self.requests());
    }

    /// The most requests that were being answered at the same time.
    pub fn max_in_flight(&self) -> usize {
        self.core.max_in_flight.load(Ordering::SeqCst)
    }

    /// Forgets the log and the gauge's maximum.
    pub fn reset_stats(&self) {
        self.core.log.lock().unwrap().clear();
        self.core
            .max_in_flight
            .store(self.core.in_flight.load(Ordering::SeqCst), Ordering::SeqCst);
    }

    pub fn set_latency(&self, latency: Duration) {
        *self.core.latency.lock().unwrap() = latency;
    }

    /// Adds a fault after those already set (the first that matches a request wins).
    pub fn add_fault(&self, fault: Fault) {
        self.core.faults.lock().unwrap().push(fault);
    }

    pub fn clear_faults(&self) {
        self.core.faults.lock().unwrap().clear();
    }
}

/// The app: every request, whatever its path, goes through the core to the handler.
fn router(core: Arc<Core>, handler: Handler) -> Router {
    Router::new().fallback(move |request: Request<Body>| {
        let core = Arc::clone(&core);
        let handler = Arc::clone(&handler);
        async move {
            let cutter = request
                .extensions()
                .get::<ConnectInfo<Cutter>>()
                .map(|info| info.0.clone());
            let (parts, body) = request.into_parts();
            let body = axum::body::to_bytes(body, 16 << 20)
                .await
                .map(|bytes| bytes.to_vec())
                .unwrap_or_default();
            let incoming = Incoming {
                method: parts.method,
                path: parts.uri.path().to_owned(),
                query: parts.uri.query().unwrap_or("").to_owned(),
                headers: parts.headers,
                body,
            };
            core.answer(&handler, incoming, cutter).await
        }
    })
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            // Inside an async context a runtime may not block, so it is let go in the background.
            if tokio::runtime::Handle::try_current().is_ok() {
                runtime.shutdown_background();
            } else {
                runtime.shutdown_timeout(Duration::from_secs(2));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// URL and query codecs.

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Decodes `%XX` sequences (leaving malformed ones as they are), like nginx does with a path.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(high), Some(low)) = (hex_value(bytes[i + 1]), hex_value(bytes[i + 2]))
        {
            out.push(high * 16 + low);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Go's `url.QueryUnescape`: `+` is a space and a malformed `%` is an error.
pub fn query_unescape(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let pair = bytes
                    .get(i + 1)
                    .copied()
                    .and_then(hex_value)
                    .zip(bytes.get(i + 2).copied().and_then(hex_value));
                let Some((high, low)) = pair else {
                    let end = (i + 3).min(bytes.len());
                    return Err(format!(
                        "invalid URL escape \"{}\"",
                        String::from_utf8_lossy(&bytes[i..end])
                    ));
                };
                out.push(high * 16 + low);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Splits and decodes a query string (`+` is a space), keeping order and repeats.
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |text: &str| percent_decode(&text.replace('+', " "));
            (decode(key), decode(value))
        })
        .collect()
}

/// Percent-encodes everything but ASCII letters, digits and `-._~`.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// Decodes standard base64 (with or without padding); `None` when it is not base64.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut buffer = 0u32;
    let mut bits = 0;
    for byte in text.trim_end_matches('=').bytes() {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    Some(out)
}

/// Encodes standard base64 with padding.
pub fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, byte)| n | u32::from(*byte) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The user and secret of an `Authorization: Basic …` value.
pub fn basic_credentials(authorization: &str) -> Option<(String, String)> {
    let (scheme, encoded) = authorization.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(base64_decode(encoded.trim())?).ok()?;
    let (user, secret) = decoded.split_once(':')?;
    Some((user.to_owned(), secret.to_owned()))
}

/// A 64-bit mix (splitmix64's finaliser): made-up but stable ids and digests.
pub fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}
