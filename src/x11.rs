//! The X11 side of a launch: opening the session's display with its authority, the per-launch
//! wildcard cookie, startup notification, and finding the launched app's first window.
//!
//! x11rb is blocking; callers run [`Watcher`] on a thread of its own. Windows are matched to a
//! launch by evidence, not by timing: the host PID of the window's client (from the X-Resource
//! extension), the client machine name (the container's unique hostname) or the startup ID.
//! See: `shared/reference/launchers-and-xdg.md` B4 (startup notification) and
//! `shared/reference/crates-and-runtime.md` §2.4.

use std::collections::HashSet;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use x11rb::connection::{Connection as _, RequestConnection as _};
use x11rb::errors::ConnectError;
use x11rb::protocol::Event;
use x11rb::protocol::res::{self, ClientIdMask, ClientIdSpec, ConnectionExt as _};
use x11rb::protocol::xproto::{
    AtomEnum, ChangeWindowAttributesAux, ClientMessageEvent, ConnectionExt as _, CreateWindowAux,
    EventMask, MapState, PropMode, Window, WindowClass,
};
use x11rb::reexports::x11rb_protocol::parse_display::{self, ParsedDisplay};
use x11rb::reexports::x11rb_protocol::xauth;
use x11rb::rust_connection::{DefaultStream, RustConnection};
use x11rb::wrapper::ConnectionExt as _;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("DISPLAY is not set: arcade shows apps on an X display and needs to know which")]
    NoDisplay,
    #[error("DISPLAY={0:?} is not a valid X display name")]
    BadDisplay(String),
    #[error("cannot open display {display}: {message}")]
    Connect { display: String, message: String },
    #[error(
        "display {display} refused the connection: {reason} (check that XAUTHORITY points at \
         this display's cookie)"
    )]
    Refused { display: String, reason: String },
    #[error("the connection to display {display} failed: {message}")]
    Protocol { display: String, message: String },
    #[error("failed to write the X cookie {path}: {source}")]
    Cookie {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A parsed `DISPLAY` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Display {
    pub name: String,
    pub number: u16,
    pub screen: u16,
    /// The host of a TCP display; `None` for a local one.
    pub host: Option<String>,
}

impl Display {
    pub fn parse(name: &str) -> Result<Display> {
        let parsed: ParsedDisplay = parse_display::parse_display(Some(name))
            .map_err(|_| Error::BadDisplay(name.to_owned()))?;
        let host = match parsed.host.as_str() {
            "" | "unix" => None,
            host => Some(host.to_owned()),
        };
        Ok(Display {
            name: name.to_owned(),
            number: parsed.display,
            screen: parsed.screen,
            host: host.filter(|_| parsed.protocol.as_deref() != Some("unix")),
        })
    }

    /// The display from `$DISPLAY`.
    pub fn from_env() -> Result<Display> {
        let name = std::env::var("DISPLAY")
            .ok()
            .filter(|name| !name.is_empty())
            .ok_or(Error::NoDisplay)?;
        Display::parse(&name)
    }

    /// The server's Unix socket, for local displays.
    pub fn socket(&self) -> Option<PathBuf> {
        self.host
            .is_none()
            .then(|| PathBuf::from(format!("/tmp/.X11-unix/X{}", self.number)))
    }
}

/// The cookie used to connect, as found in `$XAUTHORITY` (empty when the server needs none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cookie {
    pub name: Vec<u8>,
    pub data: Vec<u8>,
}

impl Cookie {
    /// An `.Xauthority` file with this cookie for any host (FamilyWild), so it matches inside a
    /// container whose hostname differs from ours.
    pub fn wildcard_file(&self, display: u16) -> Vec<u8> {
        fn field(out: &mut Vec<u8>, bytes: &[u8]) {
            // Xauthority fields are at most 65535 bytes; cookies and names are far shorter.
            out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
            out.extend_from_slice(bytes);
        }
        let mut out = Vec::new();
        out.extend_from_slice(&0xffff_u16.to_be_bytes());
        field(&mut out, b"");
        field(&mut out, display.to_string().as_bytes());
        field(&mut out, &self.name);
        field(&mut out, &self.data);
        out
    }

    pub fn is_empty(&self) -> bool {
        self.name.is_empty()
    }
}

/// Reads the MIT-MAGIC-COOKIE-1 for display `number` from an `.Xauthority` file: a sequence of
/// entries, each a big-endian u16 family and four length-prefixed fields (address, display number,
/// auth name, auth data). An entry with an empty number matches every display.
pub fn read_cookie_file(path: &Path, number: u16) -> Option<Cookie> {
    fn field<'a>(bytes: &'a [u8], at: &mut usize) -> Option<&'a [u8]> {
        let len = u16::from_be_bytes([*bytes.get(*at)?, *bytes.get(*at + 1)?]) as usize;
        let value = bytes.get(*at + 2..*at + 2 + len)?;
        *at += 2 + len;
        Some(value)
    }
    let bytes = std::fs::read(path).ok()?;
    let wanted = number.to_string();
    let mut at = 0;
    while at + 2 <= bytes.len() {
        at += 2;
        let _address = field(&bytes, &mut at)?;
        let entry_number = field(&bytes, &mut at)?;
        let name = field(&bytes, &mut at)?;
        let data = field(&bytes, &mut at)?;
        if (entry_number.is_empty() || entry_number == wanted.as_bytes())
            && name == b"MIT-MAGIC-COOKIE-1"
        {
            return Some(Cookie {
                name: name.to_vec(),
                data: data.to_vec(),
            });
        }
    }
    None
}

/// Opens the display the way Xlib would (same addresses, same cookie lookup; `xauthority`, when
/// given, replaces `$XAUTHORITY`), and returns the connection, its screen and the cookie used.
pub fn connect(
    display: &Display,
    xauthority: Option<&Path>,
) -> Result<(RustConnection, usize, Cookie)> {
    let parsed = parse_display::parse_display(Some(&display.name))
        .map_err(|_| Error::BadDisplay(display.name.clone()))?;
    let mut last_error = None;
    for address in parsed.connect_instruction() {
        let (stream, (family, peer)) = match DefaultStream::connect(&address) {
            Ok(found) => found,
            Err(err) => {
                last_error = Some(err.to_string());
                continue;
            }
        };
        let (name, data) = match xauthority {
            Some(path) => read_cookie_file(path, parsed.display)
                .map(|cookie| (cookie.name, cookie.data))
                .unwrap_or_default(),
            None => xauth::get_auth(family, &peer, parsed.display)
                .ok()
                .flatten()
                .unwrap_or_default(),
        };
        let cookie = Cookie {
            name: name.clone(),
            data: data.clone(),
        };
        let screen = usize::from(parsed.screen);
        return match RustConnection::connect_to_stream_with_auth_info(stream, screen, name, data) {
            Ok(conn) => Ok((conn, screen, cookie)),
            Err(ConnectError::SetupFailed(failed)) => Err(Error::Refused {
                display: display.name.clone(),
                reason: String::from_utf8_lossy(&failed.reason).trim().to_owned(),
            }),
            Err(ConnectError::SetupAuthenticate(failed)) => Err(Error::Refused {
                display: display.name.clone(),
                reason: String::from_utf8_lossy(&failed.reason).trim().to_owned(),
            }),
            Err(err) => Err(Error::Connect {
                display: display.name.clone(),
                message: err.to_string(),
            }),
        };
    }
    Err(Error::Connect {
        display: display.name.clone(),
        message: last_error.unwrap_or_else(|| "no address to connect to".to_owned()),
    })
}

/// Writes a wildcard cookie file readable only by its owner.
pub fn write_cookie(path: &Path, cookie: &Cookie, display: u16) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| Error::Cookie {
            path: path.to_owned(),
            source,
        })?;
    file.write_all(&cookie.wildcard_file(display))
        .map_err(|source| Error::Cookie {
            path: path.to_owned(),
            source,
        })
}

/// A per-launch authorization from the X server's SECURITY extension: its id (to revoke it)
/// and the cookie a client presents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub id: u32,
    pub cookie: Cookie,
}

/// The reply of `SecurityGenerateAuthorization`: the authorization's id and its data.
struct GenerateReply {
    id: u32,
    data: Vec<u8>,
}

impl x11rb::x11_utils::TryParse for GenerateReply {
    fn try_parse(value: &[u8]) -> std::result::Result<(Self, &[u8]), x11rb::errors::ParseError> {
        use x11rb::errors::ParseError;
        // 1 reply, 1 unused, 2 sequence, 4 length, 4 id, 2 data length, 18 unused, data.
        let header = value.get(..32).ok_or(ParseError::InsufficientData)?;
        let length = u32::from_ne_bytes(header[4..8].try_into().expect("4 bytes")) as usize;
        let id = u32::from_ne_bytes(header[8..12].try_into().expect("4 bytes"));
        let n = u16::from_ne_bytes(header[12..14].try_into().expect("2 bytes")) as usize;
        let data = value
            .get(32..32 + n)
            .ok_or(ParseError::InsufficientData)?
            .to_vec();
        let end = (32 + length * 4).min(value.len());
        Ok((GenerateReply { id, data }, &value[end..]))
    }
}

/// Asks the server for a new, trusted MIT-MAGIC-COOKIE-1 authorization of its own, to give one
/// launch instead of the display's master cookie, so it can be revoked when the app ends.
/// `None` when the server has no SECURITY extension. It expires `timeout` seconds after the
/// last client using it went (a backstop: it is revoked when the app ends).
/// See: https://www.x.org/releases/X11R7.7/doc/xextproto/security.html
fn generate_authorization(
    conn: &RustConnection,
    display: &str,
    timeout: u32,
) -> Result<Option<Authorization>> {
    let Some(extension) = conn
        .extension_information("SECURITY")
        .map_err(|err| protocol(display)(err.into()))?
    else {
        return Ok(None);
    };
    const NAME: &[u8] = b"MIT-MAGIC-COOKIE-1";
    // Timeout and trust level (trusted: the app may use every extension, as with the master
    // cookie).
    let mask: u32 = 0b11;
    let values = [timeout, 0u32];
    let pad = (4 - NAME.len() % 4) % 4;
    let length = (12 + NAME.len() + pad + values.len() * 4) / 4;
    let mut request = Vec::with_capacity(length * 4);
    request.push(extension.major_opcode);
    request.push(1); // SecurityGenerateAuthorization
    request.extend_from_slice(&(length as u16).to_ne_bytes());
    request.extend_from_slice(&(NAME.len() as u16).to_ne_bytes());
    request.extend_from_slice(&0u16.to_ne_bytes()); // no data: the server makes the cookie
    request.extend_from_slice(&mask.to_ne_bytes());
    request.extend_from_slice(NAME);
    request.extend(std::iter::repeat_n(0u8, pad));
    for value in values {
        request.extend_from_slice(&value.to_ne_bytes());
    }
    let reply: GenerateReply = conn
        .send_request_with_reply(&[std::io::IoSlice::new(&request)], Vec::new())
        .map_err(|err| protocol(display)(err.into()))?
        .reply()
        .map_err(|err| protocol(display)(err.into()))?;
    Ok(Some(Authorization {
        id: reply.id,
        cookie: Cookie {
            name: NAME.to_vec(),
            data: reply.data,
        },
    }))
}

/// Revokes a launch's authorization: clients using it are disconnected, and it opens the
/// display no more. Best effort, since the app has ended by then: a display that is gone has
/// revoked everything already.
pub fn revoke_authorization(display: &Display, xauthority: Option<&Path>, id: u32) -> Result<()> {
    let (conn, _, _) = connect(display, xauthority)?;
    let Some(extension) = conn
        .extension_information("SECURITY")
        .map_err(|err| protocol(&display.name)(err.into()))?
    else {
        return Ok(());
    };
    let mut request = Vec::with_capacity(8);
    request.push(extension.major_opcode);
    request.push(2); // SecurityRevokeAuthorization
    request.extend_from_slice(&2u16.to_ne_bytes());
    request.extend_from_slice(&id.to_ne_bytes());
    conn.send_request_without_reply(&[std::io::IoSlice::new(&request)], Vec::new())
        .map_err(|err| protocol(&display.name)(err.into()))?
        .check()
        .map_err(|err| protocol(&display.name)(err.into()))
}

x11rb::atom_manager! {
    Atoms: AtomsCookie {
        _NET_STARTUP_INFO_BEGIN,
        _NET_STARTUP_INFO,
        _NET_STARTUP_ID,
        UTF8_STRING,
        _ARCADE_TIME,
        _NET_WM_NAME,
        _NET_WM_WINDOW_TYPE,
        _NET_WM_WINDOW_TYPE_SPLASH,
    }
}

/// What we learn about a mapped top-level window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WindowInfo {
    pub window: u32,
    /// The client that created it: the base of its resource ids, the same for all its windows.
    pub client: u32,
    /// The host PID of the client that created it (X-Resource extension); `None` for a client
    /// the server knows no process of, such as one connected over TCP (a pod).
    pub pid: Option<u32>,
    pub client_machine: Option<String>,
    pub startup_id: Option<String>,
    /// `WM_CLASS`: its instance (res_name) and class (res_class).
    pub instance: Option<String>,
    pub class: Option<String>,
    pub title: Option<String>,
    /// A splash screen (`_NET_WM_WINDOW_TYPE_SPLASH`): shown while the app loads, not the app.
    pub splash: bool,
}

impl WindowInfo {
    /// Whether its `WM_CLASS` names `class`, as instance or class (as `StartupWMClass` does).
    pub fn has_class(&self, class: &str) -> bool {
        self.class.as_deref() == Some(class) || self.instance.as_deref() == Some(class)
    }
}

/// A connection watching the root window for new top-level windows, which can also send startup
/// notification messages.
pub struct Watcher {
    conn: RustConnection,
    display: String,
    root: Window,
    /// A small unmapped window of ours: the sender of startup messages and a property target for
    /// reading the server time.
    own: Window,
    atoms: Atoms,
    has_res: bool,
    screen: usize,
    tracked: HashSet<Window>,
}

fn protocol(display: &str) -> impl Fn(x11rb::errors::ReplyOrIdError) -> Error + '_ {
    move |err| Error::Protocol {
        display: display.to_owned(),
        message: err.to_string(),
    }
}

impl Watcher {
    /// Connects and starts watching; windows created from now on are seen.
    pub fn connect(display: &Display, xauthority: Option<&Path>) -> Result<(Watcher, Cookie)> {
        let (conn, screen, cookie) = connect(display, xauthority)?;
        let name = display.name.clone();
        let root = conn.setup().roots[screen].root;
        let atoms = Atoms::new(&conn)
            .map_err(|err| protocol(&name)(err.into()))?
            .reply()
            .map_err(|err| protocol(&name)(err.into()))?;
        let has_res = conn
            .extension_information(res::X11_EXTENSION_NAME)
            .ok()
            .flatten()
            .is_some();
        conn.change_window_attributes(
            root,
            &ChangeWindowAttributesAux::new().event_mask(EventMask::SUBSTRUCTURE_NOTIFY),
        )
        .map_err(|err| protocol(&name)(err.into()))?;
        let own = conn.generate_id().map_err(|err| protocol(&name)(err))?;
        conn.create_window(
            x11rb::COPY_DEPTH_FROM_PARENT,
            own,
            root,
            -100,
            -100,
            1,
            1,
            0,
            WindowClass::INPUT_ONLY,
            x11rb::COPY_FROM_PARENT,
            &CreateWindowAux::new()
                .override_redirect(1)
                .event_mask(EventMask::PROPERTY_CHANGE),
        )
        .map_err(|err| protocol(&name)(err.into()))?;
        conn.flush().map_err(|err| protocol(&name)(err.into()))?;
        Ok((
            Watcher {
                conn,
                display: name,
                root,
                own,
                atoms,
                has_res,
                screen,
                tracked: HashSet::new(),
            },
            cookie,
        ))
    }

    pub fn screen(&self) -> usize {
        self.screen
    }

    /// A new authorization for one launch; `None` without the SECURITY extension.
    pub fn generate_authorization(&self, timeout: u32) -> Result<Option<Authorization>> {
        generate_authorization(&self.conn, &self.display, timeout)
    }

    /// Whether the server can tell the PID of a window's client.
    pub fn has_res(&self) -> bool {
        self.has_res
    }

    /// The X server's current time, for startup IDs (`…_TIME<t>`), from a property change on our
    /// own window.
    pub fn server_time(&mut self) -> Result<u32> {
        self.conn
            .change_property8(
                PropMode::REPLACE,
                self.own,
                self.atoms._ARCADE_TIME,
                AtomEnum::STRING,
                b"",
            )
            .map_err(|err| protocol(&self.display)(err.into()))?;
        self.conn
            .flush()
            .map_err(|err| protocol(&self.display)(err.into()))?;
        loop {
            let event = self
                .conn
                .wait_for_event()
                .map_err(|err| protocol(&self.display)(err.into()))?;
            match event {
                Event::PropertyNotify(ev) if ev.window == self.own => return Ok(ev.time),
                other => self.handle(other),
            }
        }
    }

    /// Broadcasts one startup notification message (`new: …`, `remove: …`) to the root window.
    pub fn send_startup(&self, message: &str) -> Result<()> {
        let mut bytes = message.as_bytes().to_vec();
        bytes.push(0);
        for (i, chunk) in bytes.chunks(20).enumerate() {
            let mut data = [0u8; 20];
            data[..chunk.len()].copy_from_slice(chunk);
            let kind = if i == 0 {
                self.atoms._NET_STARTUP_INFO_BEGIN
            } else {
                self.atoms._NET_STARTUP_INFO
            };
            let event = ClientMessageEvent::new(8, self.own, kind, data);
            self.conn
                .send_event(false, self.root, EventMask::PROPERTY_CHANGE, event)
                .map_err(|err| protocol(&self.display)(err.into()))?;
        }
        // A round trip, not just a flush: if we exit with events left unread, the server sees a
        // reset connection and may drop requests it has not read yet, such as this message.
        self.conn
            .sync()
            .map_err(|err| protocol(&self.display)(err.into()))?;
        Ok(())
    }

    /// Waits for a mapped top-level window that `matches` (never a splash screen), until
    /// `deadline` or `cancel`.
    pub fn wait_for_window(
        &mut self,
        matches: &dyn Fn(&WindowInfo) -> bool,
        deadline: Instant,
        cancel: &AtomicBool,
    ) -> Result<Option<(WindowInfo, Instant)>> {
        loop {
            while let Some(event) = self
                .conn
                .poll_for_event()
                .map_err(|err| protocol(&self.display)(err.into()))?
            {
                let at = Instant::now();
                // The first window is the first the app maps that the user sees as the app's:
                // a dialog counts, a splash screen does not.
                if let Some(window) = self.mapped_window(&event)
                    && let Some(info) = self.inspect(window)
                    && !info.splash
                    && matches(&info)
                {
                    return Ok(Some((info, at)));
                }
                self.handle(event);
            }
            let now = Instant::now();
            if cancel.load(Ordering::Relaxed) || now >= deadline {
                return Ok(None);
            }
            let wait = (deadline - now).min(Duration::from_millis(50));
            let mut fds = [libc::pollfd {
                fd: self.conn.stream().as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            }];
            // SAFETY: `fds` is a valid array of one pollfd for the duration of the call.
            unsafe { libc::poll(fds.as_mut_ptr(), 1, wait.as_millis() as libc::c_int) };
        }
    }

    /// Tracks new top-level windows; returns a window that just became mapped. Override-redirect
    /// windows (menus, tooltips, a toolkit's 1x1 helpers) are no app's window.
    fn mapped_window(&mut self, event: &Event) -> Option<Window> {
        match event {
            Event::CreateNotify(ev)
                if ev.parent == self.root && ev.window != self.own && !ev.override_redirect =>
            {
                // Follow the window itself, so its MapNotify arrives even after a window manager
                // reparents it into a frame.
                let _ = self.conn.change_window_attributes(
                    ev.window,
                    &ChangeWindowAttributesAux::new().event_mask(EventMask::STRUCTURE_NOTIFY),
                );
                self.tracked.insert(ev.window);
                // It may have been mapped before our request arrived.
                let mapped = self
                    .conn
                    .get_window_attributes(ev.window)
                    .ok()
                    .and_then(|cookie| cookie.reply().ok())
                    .is_some_and(|attrs| attrs.map_state != MapState::UNMAPPED);
                mapped.then_some(ev.window)
            }
            Event::MapNotify(ev) if self.tracked.contains(&ev.window) => Some(ev.window),
            _ => None,
        }
    }

    fn handle(&mut self, event: Event) {
        if let Event::DestroyNotify(ev) = event {
            self.tracked.remove(&ev.window);
        }
    }

    /// Reads what identifies a window's client; `None` when the window is already gone.
    fn inspect(&self, window: Window) -> Option<WindowInfo> {
        let pid = if self.has_res {
            self.conn
                .res_query_client_ids(&[ClientIdSpec {
                    client: window,
                    mask: ClientIdMask::LOCAL_CLIENT_PID,
                }])
                .ok()
                .and_then(|cookie| cookie.reply().ok())
                .and_then(|reply| {
                    reply
                        .ids
                        .iter()
                        .find(|id| id.spec.mask.contains(ClientIdMask::LOCAL_CLIENT_PID))
                        .and_then(|id| id.value.first().copied())
                })
        } else {
            None
        };
        let text = |atom: u32| -> Option<String> {
            let reply = self
                .conn
                .get_property(false, window, atom, AtomEnum::ANY, 0, 1024)
                .ok()?
                .reply()
                .ok()?;
            (!reply.value.is_empty()).then(|| {
                String::from_utf8_lossy(&reply.value)
                    .trim_end_matches('\0')
                    .to_owned()
            })
        };
        let client_machine = text(AtomEnum::WM_CLIENT_MACHINE.into());
        let startup_id = text(self.atoms._NET_STARTUP_ID);
        let (instance, class) = match text(AtomEnum::WM_CLASS.into()) {
            Some(both) => {
                let mut parts = both.split('\0');
                (
                    parts.next().map(str::to_owned),
                    parts.next().map(str::to_owned),
                )
            }
            None => (None, None),
        };
        let title = text(self.atoms._NET_WM_NAME).or_else(|| text(AtomEnum::WM_NAME.into()));
        let splash = self
            .conn
            .get_property(
                false,
                window,
                self.atoms._NET_WM_WINDOW_TYPE,
                AtomEnum::ATOM,
                0,
                32,
            )
            .ok()
            .and_then(|cookie| cookie.reply().ok())
            .and_then(|reply| {
                reply.value32().map(|mut types| {
                    types.any(|kind| kind == self.atoms._NET_WM_WINDOW_TYPE_SPLASH)
                })
            })
            .unwrap_or(false);
        Some(WindowInfo {
            window,
            client: window & !self.conn.setup().resource_id_mask,
            pid,
            client_machine,
            startup_id,
            instance,
            class,
            title,
            splash,
        })
    }
}

/// Quotes a startup notification value: `"…"` with `"` and `\` escaped.
pub fn startup_value(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        if !c.is_control() {
            out.push(c);
        }
    }
    out.push('"');
    out
}

/// Whether the process `pid` carries `KEY=VALUE` in its environment (readable for our own
/// processes, and for all of them as root).
pub fn process_has_env(pid: u32, key: &str, value: &str) -> bool {
    let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
        return false;
    };
    let wanted = format!("{key}={value}");
    environ
        .split(|byte| *byte == 0)
        .any(|entry| entry == wanted.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_displays() {
        let local = Display::parse(":77").unwrap();
        assert_eq!(
            (local.number, local.screen, local.host.clone()),
            (77, 0, None)
        );
        assert_eq!(local.socket(), Some(PathBuf::from("/tmp/.X11-unix/X77")));
        let remote = Display::parse("10.0.0.5:1.0").unwrap();
        assert_eq!(remote.host.as_deref(), Some("10.0.0.5"));
        assert_eq!(remote.socket(), None);
        assert!(Display::parse("nonsense").is_err());
    }

    #[test]
    fn writes_wildcard_cookies() {
        let cookie = Cookie {
            name: b"MIT-MAGIC-COOKIE-1".to_vec(),
            data: vec![1, 2, 3],
        };
        let bytes = cookie.wildcard_file(5);
        assert_eq!(&bytes[..2], &[0xff, 0xff]);
        assert_eq!(&bytes[2..4], &[0, 0]);
        assert_eq!(&bytes[4..7], &[0, 1, b'5']);
        assert_eq!(&bytes[7..9], &[0, 18]);
        assert!(bytes.ends_with(&[0, 3, 1, 2, 3]));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth");
        write_cookie(&path, &cookie, 5).unwrap();
        assert_eq!(read_cookie_file(&path, 5), Some(cookie.clone()));
        assert_eq!(read_cookie_file(&path, 6), None);
    }

    #[test]
    fn quotes_startup_values() {
        assert_eq!(startup_value(r#"a "b" \c"#), r#""a \"b\" \\c""#);
    }
}
