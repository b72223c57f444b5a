//! A real X server per test: Xvfb on a free display, with its own MIT-MAGIC-COOKIE, and queries
//! that prove what is on screen. [`Screen`] is what the tests need of any display they sit at,
//! this Xvfb or a pod desktop (`real_apps::PodDesktop`, an Xvfb that skaha's pods reach over TCP).

use std::io::Read as _;
use std::os::fd::FromRawFd as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use x11rb::connection::Connection as _;
use x11rb::protocol::xproto::{AtomEnum, ConnectionExt as _, MapState};
use x11rb::rust_connection::RustConnection;

use super::require_tool;

/// A running Xvfb, killed on drop.
pub struct Xvfb {
    child: Child,
    pub number: u32,
    /// The cookie file clients need (`XAUTHORITY`).
    pub auth: PathBuf,
    _dir: tempfile::TempDir,
}

/// A top-level window as the X server sees it.
#[derive(Debug, Clone)]
pub struct Window {
    pub id: u32,
    pub title: String,
    pub class: String,
    pub client_machine: String,
    pub viewable: bool,
}

impl Xvfb {
    /// Starts Xvfb with `-displayfd` (so it picks a free display) and its own cookie.
    pub fn start() -> Xvfb {
        let xvfb = require_tool("Xvfb", "xvfb");
        let xauth = require_tool("xauth", "xauth");
        let dir = tempfile::tempdir().expect("create a folder for the X cookie");
        let auth = dir.path().join("Xauthority");
        let mut random = [0u8; 16];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut file| file.read_exact(&mut random))
            .expect("read /dev/urandom");
        let cookie: String = random.iter().map(|byte| format!("{byte:02x}")).collect();
        let add = |display: &str| {
            let status = Command::new(&xauth)
                .arg("-f")
                .arg(&auth)
                .args(["-q", "add", display, "MIT-MAGIC-COOKIE-1", &cookie])
                .stderr(Stdio::null())
                .status()
                .expect("run xauth");
            assert!(status.success(), "xauth add failed");
        };
        // The server loads every cookie in the file whatever its display number, and the number
        // is only known once Xvfb picked it: start with a placeholder entry, add the real one
        // (which clients look up) afterwards.
        add(":65535");
        let (read_fd, write_fd) = pipe();
        let mut command = Command::new(xvfb);
        // SAFETY: fcntl is async-signal-safe; it lets only Xvfb inherit the write end (the pipe
        // is close-on-exec, so parallel tests' children do not keep it open).
        unsafe {
            use std::os::unix::process::CommandExt as _;
            command.pre_exec(move || {
                libc::fcntl(write_fd, libc::F_SETFD, 0);
                Ok(())
            });
        }
        let child = command
            .args(["-displayfd", &write_fd.to_string()])
            .args(["-screen", "0", "1024x768x24", "-nolisten", "tcp"])
            // A session's server always has clients (window manager, panel), so it never resets.
            // Xvfb alone resets each time its last client leaves, and while it does, it refuses
            // connections: an app started with --no-wait, or a test's own query, then fails to
            // open the display at random.
            .arg("-noreset")
            .arg("-auth")
            .arg(&auth)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start Xvfb");
        // SAFETY: the child has its own copy of the write end; closing ours lets the read end see
        // end-of-file if Xvfb dies before writing.
        unsafe { libc::close(write_fd) };
        // SAFETY: `read_fd` is a pipe end we own and nothing else uses.
        let mut reader = unsafe { std::fs::File::from_raw_fd(read_fd) };
        let mut text = String::new();
        let mut byte = [0u8; 1];
        while reader.read(&mut byte).unwrap_or(0) == 1 && byte[0] != b'\n' {
            text.push(byte[0] as char);
        }
        let number: u32 = text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("Xvfb did not report a display number ({text:?})"));
        add(&format!(":{number}"));
        let xvfb = Xvfb {
            child,
            number,
            auth,
            _dir: dir,
        };
        xvfb.wait_ready();
        xvfb
    }

    pub fn display(&self) -> String {
        format!(":{}", self.number)
    }

    fn wait_ready(&self) {
        super::wait_for(
            "Xvfb to accept connections",
            Duration::from_secs(10),
            || self.connect().ok().map(|_| ()),
        );
    }

    /// Connects with the cookie.
    pub fn connect(&self) -> Result<RustConnection, String> {
        // An explicit stream and cookie: the test process's own environment stays untouched.
        let stream = x11rb::rust_connection::DefaultStream::connect(
            &x11rb::reexports::x11rb_protocol::parse_display::ConnectAddress::Socket(format!(
                "/tmp/.X11-unix/X{}",
                self.number
            )),
        )
        .map_err(|err| err.to_string())?
        .0;
        let (name, data) = read_cookie(&self.auth, self.number).ok_or("no cookie")?;
        RustConnection::connect_to_stream_with_auth_info(stream, 0, name, data)
            .map_err(|err| err.to_string())
    }

    /// The top-level windows (children of the root), with their title, class and client machine.
    pub fn windows(&self) -> Vec<Window> {
        top_level_windows(&self.connect().expect("connect to Xvfb"))
    }

    /// The viewable window titled `title`, if any.
    pub fn window_titled(&self, title: &str) -> Option<Window> {
        self.windows()
            .into_iter()
            .find(|window| window.viewable && window.title == title)
    }

    /// Broadcasts one startup-notification message as a launcher does; see [`send_startup_on`].
    pub fn send_startup(&self, message: &str) {
        send_startup_on(&self.connect().expect("connect to Xvfb"), message);
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A display the tests sit at: arcade and local clients reach it through its socket file with
/// its cookie, and the tests read it the same way, whatever else reaches it (pods over TCP).
pub trait Screen {
    /// `DISPLAY` for local clients, `:N`.
    fn display(&self) -> String;

    /// The cookie file local clients need (`XAUTHORITY`).
    fn auth(&self) -> PathBuf;

    /// A connection through the socket file, with the cookie.
    fn connect(&self) -> Result<RustConnection, String>;

    /// The top-level windows, as [`top_level_windows`] reports them.
    fn windows(&self) -> Vec<Window> {
        let conn = self
            .connect()
            .unwrap_or_else(|err| panic!("connect to {}: {err}", self.display()));
        top_level_windows(&conn)
    }

    /// The viewable window titled `title`, if any.
    fn window_titled(&self, title: &str) -> Option<Window> {
        self.windows()
            .into_iter()
            .find(|window| window.viewable && window.title == title)
    }

    /// Broadcasts one startup-notification message, as [`send_startup_on`] does.
    fn send_startup(&self, message: &str) {
        let conn = self
            .connect()
            .unwrap_or_else(|err| panic!("connect to {}: {err}", self.display()));
        send_startup_on(&conn, message);
    }
}

impl Screen for Xvfb {
    fn display(&self) -> String {
        Xvfb::display(self)
    }

    fn auth(&self) -> PathBuf {
        self.auth.clone()
    }

    fn connect(&self) -> Result<RustConnection, String> {
        Xvfb::connect(self)
    }
}

/// A display shared with a stand-in that needs it too (the skaha stand-in starts pods on it).
impl<S: Screen> Screen for std::sync::Arc<S> {
    fn display(&self) -> String {
        (**self).display()
    }

    fn auth(&self) -> PathBuf {
        (**self).auth()
    }

    fn connect(&self) -> Result<RustConnection, String> {
        (**self).connect()
    }
}

/// The children of `conn`'s root window, with their title, class and client machine.
pub fn top_level_windows(conn: &RustConnection) -> Vec<Window> {
    let root = conn.setup().roots[0].root;
    let tree = conn.query_tree(root).unwrap().reply().unwrap();
    let text = |window: u32, atom: AtomEnum| -> String {
        conn.get_property(false, window, atom, AtomEnum::ANY, 0, 1024)
            .ok()
            .and_then(|cookie| cookie.reply().ok())
            .map(|reply| String::from_utf8_lossy(&reply.value).into_owned())
            .unwrap_or_default()
    };
    tree.children
        .iter()
        .map(|&id| {
            let viewable = conn
                .get_window_attributes(id)
                .ok()
                .and_then(|cookie| cookie.reply().ok())
                .is_some_and(|attrs| attrs.map_state == MapState::VIEWABLE);
            Window {
                id,
                title: text(id, AtomEnum::WM_NAME),
                class: text(id, AtomEnum::WM_CLASS)
                    .replace('\0', " ")
                    .trim()
                    .to_owned(),
                client_machine: text(id, AtomEnum::WM_CLIENT_MACHINE),
                viewable,
            }
        })
        .collect()
}

/// Broadcasts one startup-notification message (`new: ID=…`) as a launcher does before it
/// runs an entry's `Exec`: from a window of its own (never mapped), in 20-byte client
/// messages to the root window, the first `_NET_STARTUP_INFO_BEGIN`.
/// See: https://specifications.freedesktop.org/startup-notification-spec/0.1/
pub fn send_startup_on(conn: &RustConnection, message: &str) {
    use x11rb::protocol::xproto::{ClientMessageEvent, CreateWindowAux, EventMask, WindowClass};
    let root = conn.setup().roots[0].root;
    let atom = |name: &[u8]| conn.intern_atom(false, name).unwrap().reply().unwrap().atom;
    let (begin, more) = (atom(b"_NET_STARTUP_INFO_BEGIN"), atom(b"_NET_STARTUP_INFO"));
    let sender = conn.generate_id().unwrap();
    conn.create_window(
        0,
        sender,
        root,
        0,
        0,
        1,
        1,
        0,
        WindowClass::INPUT_ONLY,
        0,
        &CreateWindowAux::new(),
    )
    .unwrap();
    let mut bytes = message.as_bytes().to_vec();
    bytes.push(0);
    for (i, chunk) in bytes.chunks(20).enumerate() {
        let mut data = [0u8; 20];
        data[..chunk.len()].copy_from_slice(chunk);
        let kind = if i == 0 { begin } else { more };
        let event = ClientMessageEvent::new(8, sender, kind, data);
        conn.send_event(false, root, EventMask::PROPERTY_CHANGE, event)
            .unwrap();
    }
    conn.destroy_window(sender).unwrap();
    // A round trip, so the server has handled every message before this returns.
    x11rb::wrapper::ConnectionExt::sync(conn).unwrap();
}

fn pipe() -> (i32, i32) {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe2(2) to fill.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe failed");
    (fds[0], fds[1])
}

/// Reads the MIT-MAGIC-COOKIE-1 for `display` from an Xauthority file.
fn read_cookie(path: &Path, display: u32) -> Option<(Vec<u8>, Vec<u8>)> {
    fn field(bytes: &[u8], at: &mut usize) -> Option<Vec<u8>> {
        let len = u16::from_be_bytes([*bytes.get(*at)?, *bytes.get(*at + 1)?]) as usize;
        let value = bytes.get(*at + 2..*at + 2 + len)?.to_vec();
        *at += 2 + len;
        Some(value)
    }
    let bytes = std::fs::read(path).ok()?;
    let mut at = 0;
    while at < bytes.len() {
        at += 2; // family
        let _address = field(&bytes, &mut at)?;
        let number = field(&bytes, &mut at)?;
        let name = field(&bytes, &mut at)?;
        let data = field(&bytes, &mut at)?;
        if number == display.to_string().as_bytes() {
            return Some((name, data));
        }
    }
    None
}

/// What a [`StartupListener`] saw on the root window, in the order the X server delivered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// A startup-notification message (`new: …`, `remove: …`).
    Startup(String),
    /// A top-level window was mapped (a `MapNotify` from the root's substructure).
    Mapped(u32),
}

/// Collects the startup-notification messages broadcast on a display's root window, and the
/// top-level windows mapped there, in one ordered timeline: the X server delivers both to one
/// connection in the order they happened on the server, so "mapped before remove:" is a fact
/// of the server, not of the test's timing.
pub struct StartupListener {
    seen: std::sync::Arc<std::sync::Mutex<Vec<Seen>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StartupListener {
    pub fn start(screen: &impl Screen) -> StartupListener {
        use x11rb::protocol::Event;
        use x11rb::protocol::xproto::{ChangeWindowAttributesAux, EventMask};
        let conn = screen
            .connect()
            .unwrap_or_else(|err| panic!("connect to {}: {err}", screen.display()));
        let root = conn.setup().roots[0].root;
        let begin = conn
            .intern_atom(false, b"_NET_STARTUP_INFO_BEGIN")
            .unwrap()
            .reply()
            .unwrap()
            .atom;
        let more = conn
            .intern_atom(false, b"_NET_STARTUP_INFO")
            .unwrap()
            .reply()
            .unwrap()
            .atom;
        conn.change_window_attributes(
            root,
            &ChangeWindowAttributesAux::new()
                .event_mask(EventMask::PROPERTY_CHANGE | EventMask::SUBSTRUCTURE_NOTIFY),
        )
        .unwrap();
        x11rb::wrapper::ConnectionExt::sync(&conn).unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread = {
            let seen = std::sync::Arc::clone(&seen);
            let stop = std::sync::Arc::clone(&stop);
            std::thread::spawn(move || {
                // Messages are reassembled per sending window, as receivers must.
                let mut partial: std::collections::HashMap<u32, Vec<u8>> = Default::default();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    match conn.poll_for_event() {
                        Ok(Some(Event::ClientMessage(ev)))
                            if ev.type_ == begin || ev.type_ == more =>
                        {
                            let buffer = partial.entry(ev.window).or_default();
                            if ev.type_ == begin {
                                buffer.clear();
                            }
                            for byte in ev.data.as_data8() {
                                if byte == 0 {
                                    let text = String::from_utf8_lossy(buffer).into_owned();
                                    seen.lock().unwrap().push(Seen::Startup(text));
                                    buffer.clear();
                                    break;
                                }
                                buffer.push(byte);
                            }
                        }
                        Ok(Some(Event::MapNotify(ev))) if ev.event == root => {
                            seen.lock().unwrap().push(Seen::Mapped(ev.window));
                        }
                        Ok(Some(_)) => {}
                        Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                        Err(_) => return,
                    }
                }
            })
        };
        StartupListener {
            seen,
            stop,
            thread: Some(thread),
        }
    }

    /// The startup-notification messages, in order.
    pub fn messages(&self) -> Vec<String> {
        self.timeline()
            .into_iter()
            .filter_map(|seen| match seen {
                Seen::Startup(text) => Some(text),
                Seen::Mapped(_) => None,
            })
            .collect()
    }

    /// Messages and mapped windows, in the order the server delivered them.
    pub fn timeline(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for StartupListener {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
