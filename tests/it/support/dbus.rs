//! A private session bus per test: a real `dbus-daemon` with arcade's shipped D-Bus service
//! file installed (pointing at the binary under test), so activation works as on a desktop.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::{Home, require_tool};

/// A running `dbus-daemon`, killed on drop (which ends the arcade daemon it may have started).
pub struct Bus {
    child: Child,
    pub address: String,
    _dir: tempfile::TempDir,
}

/// The service file arcade ships, with the binary under test in place of `/usr/bin/arcade`.
fn service_file(services: &Path) {
    let shipped = include_str!("../../../xdg/dbus-1/services/net.canfar.Arcade1.service");
    assert!(shipped.contains("Exec=/usr/bin/arcade daemon"), "{shipped}");
    let text = shipped.replace("/usr/bin/arcade", env!("CARGO_BIN_EXE_arcade"));
    std::fs::write(services.join("net.canfar.Arcade1.service"), text).unwrap();
}

impl Bus {
    /// Starts a bus whose activated services get `env` (the test home's XDG folders, display…).
    pub fn start(home: &Home, env: &[(&str, std::ffi::OsString)]) -> Bus {
        Bus::start_with(home, env, true)
    }

    /// A bus on which arcade is not installed as a D-Bus service: nothing starts the daemon.
    pub fn start_without_service(home: &Home) -> Bus {
        Bus::start_with(home, &[], false)
    }

    fn start_with(home: &Home, env: &[(&str, std::ffi::OsString)], installed: bool) -> Bus {
        let daemon = require_tool("dbus-daemon", "dbus");
        let dir = tempfile::tempdir().expect("create a folder for the bus");
        let services = dir.path().join("services");
        std::fs::create_dir_all(&services).unwrap();
        if installed {
            service_file(&services);
        }
        let config = dir.path().join("session.conf");
        std::fs::write(
            &config,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <servicedir>{services}</servicedir>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
                socket = dir.path().join("bus").display(),
                services = services.display(),
            ),
        )
        .unwrap();
        let mut command = Command::new(daemon);
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home.path())
            .env("XDG_CONFIG_HOME", home.config())
            .env("XDG_DATA_HOME", home.data())
            .env("XDG_CACHE_HOME", home.cache())
            .env("XDG_STATE_HOME", home.state())
            .env("XDG_CONFIG_DIRS", home.sysconf())
            .env("XDG_RUNTIME_DIR", home.path().join("run"));
        for (key, value) in env {
            command.env(key, value);
        }
        // Activated services (the arcade daemon) log to the bus's stderr: keep it for failures.
        let log = std::fs::File::create(dir.path().join("bus.log")).unwrap();
        let mut child = command
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--print-address=1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start dbus-daemon");
        let mut address = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut address)
            .expect("read the bus address");
        assert!(!address.trim().is_empty(), "dbus-daemon printed no address");
        Bus {
            child,
            address: address.trim().to_owned(),
            _dir: dir,
        }
    }

    /// What the bus and the services it started printed (the arcade daemon's log).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("bus.log")).unwrap_or_default()
    }

    /// `busctl` on this bus, an independent client.
    pub fn busctl(&self) -> Command {
        let mut command = Command::new(require_tool("busctl", "systemd"));
        command.arg(format!("--address={}", self.address));
        command
    }

    /// Calls a method of arcade's interface with busctl; returns (success, stdout+stderr).
    pub fn call(&self, method: &str, signature_and_args: &[&str]) -> (bool, String) {
        let output = self
            .busctl()
            .args([
                "--timeout=30",
                "call",
                // Arguments such as `-title` are values, not busctl options.
                "--",
                "net.canfar.Arcade1",
                "/net/canfar/Arcade1",
                "net.canfar.Arcade1.Launcher",
                method,
            ])
            .args(signature_and_args)
            .output()
            .expect("run busctl");
        (
            output.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        )
    }

    /// Calls a method with `gdbus`, which names the D-Bus error of a failed call;
    /// `args` are GVariant texts. Returns (success, stdout+stderr).
    pub fn gdbus_call(&self, method: &str, args: &[&str]) -> (bool, String) {
        let output = Command::new(require_tool("gdbus", "libglib2.0-bin"))
            .args(["call", "--address", &self.address])
            .args([
                "--dest",
                "net.canfar.Arcade1",
                "--object-path",
                "/net/canfar/Arcade1",
            ])
            .args(["--method", &format!("net.canfar.Arcade1.Launcher.{method}")])
            .arg("--")
            .args(args)
            .output()
            .expect("run gdbus");
        (
            output.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        )
    }

    /// A property of arcade's interface, as busctl prints it (`s "ok: 2 entries"`).
    pub fn property(&self, name: &str) -> String {
        let output = self
            .busctl()
            .args([
                "get-property",
                "net.canfar.Arcade1",
                "/net/canfar/Arcade1",
                "net.canfar.Arcade1.Launcher",
                name,
            ])
            .output()
            .expect("run busctl");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Calls a method of the bus itself (`org.freedesktop.DBus`) with busctl; what it printed.
    fn call_bus(&self, method: &str, signature_and_args: &[&str]) -> String {
        let output = self
            .busctl()
            .args([
                "call",
                "org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus",
                method,
            ])
            .args(signature_and_args)
            .output()
            .expect("run busctl");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Whether a name has an owner on the bus.
    pub fn has_owner(&self, name: &str) -> bool {
        self.call_bus("NameHasOwner", &["s", name]).trim() == "b true"
    }

    /// The process id of a name's owner.
    #[track_caller]
    pub fn owner_pid(&self, name: &str) -> u32 {
        let text = self.call_bus("GetConnectionUnixProcessID", &["s", name]);
        text.trim()
            .strip_prefix("u ")
            .and_then(|pid| pid.parse().ok())
            .unwrap_or_else(|| panic!("no owner of {name}: {text}"))
    }

    /// Records the bus's traffic for `arcade`'s interface (and notifications) with
    /// `dbus-monitor`, another independent client.
    pub fn monitor(&self) -> Monitor {
        let log = tempfile::NamedTempFile::new().unwrap();
        // dbus-monitor writes through stdio, block-buffered into a file: ask for lines.
        let child = Command::new(require_tool("stdbuf", "coreutils"))
            .arg("-oL")
            .arg(require_tool("dbus-monitor", "dbus"))
            .args(["--address", &self.address])
            .arg("interface='net.canfar.Arcade1.Launcher'")
            .arg("interface='org.freedesktop.Notifications'")
            .stdout(log.reopen().unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dbus-monitor");
        // dbus-monitor prints its own connection's NameAcquired once it listens.
        super::wait_for(
            "dbus-monitor to listen",
            std::time::Duration::from_secs(5),
            || {
                std::fs::read_to_string(log.path())
                    .ok()
                    .filter(|text| !text.is_empty())
                    .map(|_| ())
            },
        );
        Monitor { child, log }
    }
}

impl Bus {
    /// Stops the bus, as when a session ends.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A running `dbus-monitor` and what it printed.
pub struct Monitor {
    child: Child,
    log: tempfile::NamedTempFile,
}

impl Monitor {
    pub fn text(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    pub fn path(&self) -> PathBuf {
        self.log.path().to_owned()
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
