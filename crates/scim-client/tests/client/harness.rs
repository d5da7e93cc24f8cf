//! Real servers for the tests: the PyPI package `scim2-server` in a venv
//! under the target directory, on free loopback ports.
//!
//! Starting one takes seconds (Python imports), so tests that only need a
//! server with the default configuration share one ([`shared`]) and keep
//! out of each other's way with distinct names; tests that need another
//! configuration or a clean store start their own. Every server exits when
//! its standard input closes, so none outlives the test process, however
//! that process ends.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The pinned version of the server under test.
const SCIM2_SERVER: &str = "scim2-server[cursor]==0.8.3";

/// The venv, created once per target directory; `None` when no venv can
/// be created on this machine.
fn venv() -> Option<&'static Path> {
    static VENV: OnceLock<Option<PathBuf>> = OnceLock::new();
    static SETUP: Mutex<()> = Mutex::new(());
    let _guard = SETUP.lock().unwrap_or_else(|p| p.into_inner());
    VENV.get_or_init(create_venv).as_deref()
}

fn create_venv() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("scim2-server-venv");
    let python = dir.join("bin").join("python");
    let marker = dir.join(".installed");
    if marker.exists() && std::fs::read_to_string(&marker).ok().as_deref() == Some(SCIM2_SERVER) {
        return Some(dir);
    }
    let created = Command::new("python3")
        .args(["-m", "venv", "--clear"])
        .arg(&dir)
        .status();
    if !matches!(created, Ok(s) if s.success()) {
        eprintln!("note: skipping the scim2-server tests: `python3 -m venv` failed ({created:?})");
        return None;
    }
    let installed = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .arg(SCIM2_SERVER)
        .status()
        .expect("run pip");
    assert!(installed.success(), "pip install {SCIM2_SERVER} failed");
    std::fs::write(&marker, SCIM2_SERVER).expect("write the venv marker");
    Some(dir)
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}

/// Options of a scim2-server instance.
#[derive(Debug, Default, Clone)]
pub struct ServerOptions {
    /// Accept only this bearer token.
    pub bearer_token: Option<String>,
    /// Announce RFC 9865 cursor pagination (as well as index).
    pub cursor: bool,
}

/// A running scim2-server, stopped on drop.
#[derive(Debug)]
pub struct Scim2Server {
    child: Child,
    /// Closing it stops the server.
    _stdin: ChildStdin,
    /// Where it listens.
    pub addr: SocketAddr,
}

/// Runs the scim2-server command, exiting as soon as standard input closes.
const LAUNCHER: &str = "
import os, sys, threading
def watch():
    sys.stdin.buffer.read()
    os._exit(0)
threading.Thread(target=watch, daemon=True).start()
from scim2_server.testserver.cli import main
main()
";

/// The server shared by the tests that need the default configuration.
pub fn shared() -> Option<&'static Scim2Server> {
    static SHARED: OnceLock<Option<Scim2Server>> = OnceLock::new();
    SHARED
        .get_or_init(|| Scim2Server::start(&ServerOptions::default()))
        .as_ref()
}

impl Scim2Server {
    /// Starts a server, or `None` (with a note printed) when the venv
    /// cannot be created here.
    pub fn start(options: &ServerOptions) -> Option<Self> {
        let venv = venv()?;
        let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let config = if options.cursor {
            let path = tmp.join("scim2-server-cursor-config.json");
            std::fs::write(&path, CURSOR_CONFIG).expect("write the config");
            Some(path)
        } else {
            None
        };
        // A port can be taken between finding it free and binding it: try a
        // few. Bounded: three ports, thirty seconds each.
        for _ in 0..3 {
            let port = free_port();
            let mut cmd = Command::new(venv.join("bin").join("python"));
            cmd.args(["-c", LAUNCHER, "--hostname", "127.0.0.1"])
                .args(["--port", &port.to_string()])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .env("SCIM2_SERVER_SECRET", "test-secret-for-cursors-0123456789");
            if let Some(token) = &options.bearer_token {
                cmd.args(["--bearer-token", token]);
            }
            if let Some(c) = &config {
                cmd.arg("--service-provider-config").arg(c);
            }
            let mut child = cmd.spawn().expect("start scim2-server");
            let stdin = child.stdin.take().expect("piped stdin");
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    return Some(Self {
                        child,
                        _stdin: stdin,
                        addr,
                    });
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("scim2-server did not start");
    }

    /// The SCIM base URL.
    pub fn base(&self) -> String {
        format!("http://{}/v2", self.addr)
    }
}

impl Drop for Scim2Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The shared server, or a server of its own with these options; returns
/// from the test (the note is printed once) when no venv can be made.
#[macro_export]
macro_rules! server_or_skip {
    () => {
        match $crate::harness::shared() {
            Some(s) => s,
            None => return,
        }
    };
    ($opts:expr) => {
        match $crate::harness::Scim2Server::start($opts) {
            Some(s) => s,
            None => return,
        }
    };
}

const CURSOR_CONFIG: &str = r#"{
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
    "patch": {"supported": true},
    "bulk": {"supported": true, "maxOperations": 1000, "maxPayloadSize": 1048576},
    "filter": {"supported": true, "maxResults": 1000},
    "changePassword": {"supported": true},
    "sort": {"supported": true},
    "etag": {"supported": true},
    "pagination": {
        "cursor": true, "index": true, "defaultPaginationMethod": "index",
        "defaultPageSize": 20, "maxPageSize": 7, "cursorTimeout": 600
    }
}"#;
