//! Servers to test against, and a runner for the `scimctl` binary.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

const SCIMCTL: &str = env!("CARGO_BIN_EXE_scimctl");

/// The pinned version of the PyPI server.
const SCIM2_SERVER: &str = "scim2-server[cursor]==0.8.3";

/// A service provider under test.
#[derive(Debug, Clone)]
pub struct Target {
    /// A short name, for messages.
    pub name: &'static str,
    /// The SCIM base URL.
    pub base: String,
    /// A bearer token, if the server wants one.
    pub token: Option<String>,
    /// Whether `GET /Users` and `GET /Groups` (lists) are served.
    pub lists: bool,
}

/// What one run of the binary did.
#[derive(Debug)]
pub struct Run {
    /// The exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Self {
        Self {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Asserts exit code 0 and returns standard output.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(
            self.code, 0,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        &self.stdout
    }

    /// Asserts success and parses standard output as one JSON document.
    #[track_caller]
    pub fn json(&self) -> Value {
        let out = self.ok();
        serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
    }

    /// Asserts exit code `code` and one `error: ...` line on standard
    /// error; returns that line.
    #[track_caller]
    pub fn fails(&self, code: i32) -> &str {
        assert_eq!(
            self.code, code,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        let line = self.stderr.trim_end();
        assert!(
            line.starts_with("error: ") && !line.contains('\n'),
            "not one error line: {line:?}"
        );
        line
    }
}

/// `scimctl` without any `SCIMCTL_` variables from the environment.
pub fn bare() -> Command {
    let mut cmd = Command::new(SCIMCTL);
    for (key, _) in std::env::vars() {
        if key.starts_with("SCIMCTL_") {
            cmd.env_remove(key);
        }
    }
    cmd.stdin(Stdio::null());
    cmd
}

impl Target {
    /// `scimctl` pointed at this server through the environment.
    pub fn cmd(&self) -> Command {
        let mut cmd = bare();
        cmd.env("SCIMCTL_URL", &self.base)
            .env("SCIMCTL_TIMEOUT", "20");
        if let Some(t) = &self.token {
            cmd.env("SCIMCTL_TOKEN", t);
        }
        cmd
    }

    /// Runs `scimctl args...`.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.cmd().args(args).output().expect("run scimctl"))
    }

    /// Runs `scimctl args...` with `input` on standard input.
    pub fn run_with_input(&self, args: &[&str], input: &str) -> Run {
        use std::io::Write as _;
        let mut child = self
            .cmd()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run scimctl");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(input.as_bytes()).expect("write stdin");
        drop(stdin);
        Run::from(child.wait_with_output().expect("wait for scimctl"))
    }

    /// The users whose userName starts with `prefix`, by listing.
    pub fn users_with_prefix(&self, prefix: &str) -> Vec<Value> {
        let filter = format!("userName sw \"{prefix}\"");
        let list = self
            .run(&["users", "list", "--filter", &filter, "--json"])
            .json();
        list.as_array().expect("a JSON array").clone()
    }
}

/// A name no other test uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{}x{n}x", std::process::id())
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}

/// Waits until `addr` accepts connections or `child` exits.
fn wait_for(addr: SocketAddr, child: &mut Child, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// A server process that exits when its standard input closes: when the
/// value is dropped, or when the test process ends however it ends (the
/// shared servers live in statics, which are never dropped).
#[derive(Debug)]
struct Server {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

/// Runs `$0 "$@"` in the background and kills it when standard input
/// closes.
const WATCHDOG: &str = r#""$0" "$@" </dev/null & pid=$!; cat >/dev/null; kill $pid; wait $pid"#;

// ---- our scim-server ----------------------------------------------------

/// The `scim-server` binary: `SCIMCTL_TEST_SCIM_SERVER`, else the one next
/// to `scimctl`, brought up to date with `cargo build` once per run (a
/// no-op when `cargo test --workspace` has just built it).
fn scim_server_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("SCIMCTL_TEST_SCIM_SERVER") {
            return PathBuf::from(p);
        }
        let dir = Path::new(SCIMCTL).parent().expect("a directory");
        let mut cargo = Command::new(env!("CARGO"));
        cargo
            .args([
                "build",
                "--quiet",
                "-p",
                "scim-server",
                "--bin",
                "scim-server",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if dir.file_name().is_some_and(|d| d == "release") {
            cargo.arg("--release");
        }
        let status = cargo.status().expect("run cargo build -p scim-server");
        assert!(status.success(), "cargo build -p scim-server failed");
        dir.join(format!("scim-server{}", std::env::consts::EXE_SUFFIX))
    })
    .clone()
}

/// A `scim-server` command with a clean `SCIM_` environment.
fn scim_server(db: &Path) -> Command {
    let mut cmd = Command::new(scim_server_bin());
    clear_scim_env(&mut cmd);
    cmd.arg("--database-url").arg(db);
    cmd
}

fn clear_scim_env(cmd: &mut Command) {
    for (key, _) in std::env::vars() {
        if key.starts_with("SCIM_") {
            cmd.env_remove(key);
        }
    }
}

struct Ours {
    _server: Server,
    _dir: tempfile::TempDir,
    target: Target,
    read_token: String,
    admin_token: String,
}

/// `scim-server token create` for tenant `t` with one scope.
fn create_token(db: &Path, scope: &str) -> String {
    let out = scim_server(db)
        .args(["token", "create", "--tenant", "t", "--scope", scope])
        .output()
        .expect("run scim-server token create");
    assert!(
        out.status.success(),
        "token create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("UTF-8")
        .trim()
        .to_string()
}

fn start_ours() -> Ours {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let db = dir.path().join("scim.db");
    let token = create_token(&db, "scim:write");
    let read_token = create_token(&db, "scim:read");
    let admin_token = create_token(&db, "admin");
    // A port can be taken between finding it free and binding it: try a few.
    for _ in 0..3 {
        let port = free_port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut sh = Command::new("sh");
        clear_scim_env(&mut sh);
        // Its applications point at servers on this machine (see start_own).
        sh.env("SCIM_OUTBOUND_ALLOW", "127.0.0.0/8,::1");
        let mut child = sh
            .args(["-c", WATCHDOG])
            .arg(scim_server_bin())
            .arg("--database-url")
            .arg(&db)
            .args(["--bind", &addr.to_string(), "--workers", "2", "serve"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start scim-server");
        let stdin = child.stdin.take();
        if wait_for(addr, &mut child, Duration::from_secs(30)) {
            let base = format!("http://{addr}/scim/v2");
            let lists = serves_lists(&base, &token);
            if !lists {
                eprintln!(
                    "note: scim-server does not list /Users yet; listing steps run on scim2-server only"
                );
            }
            return Ours {
                _server: Server { child, stdin },
                _dir: dir,
                read_token,
                admin_token,
                target: Target {
                    name: "scim-server",
                    base,
                    token: Some(token),
                    lists,
                },
            };
        }
        drop(Server { child, stdin });
    }
    panic!("scim-server did not start");
}

/// A server of our own for one test (dropped: stopped), with its
/// database in a temporary directory.
#[derive(Debug)]
pub struct OwnServer {
    _server: Server,
    dir: tempfile::TempDir,
    /// `http://127.0.0.1:port`.
    pub root: String,
}

impl OwnServer {
    /// A token of tenant `t` with one scope.
    pub fn token(&self, scope: &str) -> String {
        create_token(&self.dir.path().join("scim.db"), scope)
    }
}

/// Starts our `scim-server` with extra environment variables and global
/// flags (before `serve`).
pub fn start_own(env: &[(&str, &str)], flags: &[&str]) -> OwnServer {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let db = dir.path().join("scim.db");
    // Creates (and migrates) the database before the server opens it.
    create_token(&db, "scim:read");
    for _ in 0..3 {
        let port = free_port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut sh = Command::new("sh");
        clear_scim_env(&mut sh);
        // Downstream servers in these tests listen on this machine, which
        // the outbound policy refuses by default.
        sh.env("SCIM_OUTBOUND_ALLOW", "127.0.0.0/8,::1");
        for (k, v) in env {
            sh.env(k, v);
        }
        let mut child = sh
            .args(["-c", WATCHDOG])
            .arg(scim_server_bin())
            .arg("--database-url")
            .arg(&db)
            .args(["--bind", &addr.to_string(), "--workers", "2"])
            .args(flags)
            .arg("serve")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start scim-server");
        let stdin = child.stdin.take();
        if wait_for(addr, &mut child, Duration::from_secs(30)) {
            return OwnServer {
                _server: Server { child, stdin },
                dir,
                root: format!("http://{addr}"),
            };
        }
        drop(Server { child, stdin });
    }
    panic!("scim-server did not start");
}

/// Whether `GET /Users` answers with a ListResponse (asked through scimctl).
fn serves_lists(base: &str, token: &str) -> bool {
    let t = Target {
        name: "probe",
        base: base.into(),
        token: Some(token.into()),
        lists: false,
    };
    let run = t.run(&["users", "list", "--limit", "1", "--json"]);
    run.code == 0
}

fn ours_server() -> &'static Ours {
    static OURS: OnceLock<Ours> = OnceLock::new();
    OURS.get_or_init(start_ours)
}

/// Our server, shared by the tests (they use distinct names).
pub fn ours() -> Target {
    ours_server().target.clone()
}

/// Our server with a token that may only read.
pub fn ours_read_only() -> Target {
    let server = ours_server();
    Target {
        token: Some(server.read_token.clone()),
        ..server.target.clone()
    }
}

/// Our server with a token of the `admin` scope (the management API).
pub fn ours_admin() -> Target {
    let server = ours_server();
    Target {
        token: Some(server.admin_token.clone()),
        ..server.target.clone()
    }
}

// ---- the PyPI scim2-server ---------------------------------------------

fn venv() -> Option<&'static Path> {
    static VENV: OnceLock<Option<PathBuf>> = OnceLock::new();
    static SETUP: Mutex<()> = Mutex::new(());
    let _guard = SETUP.lock().unwrap_or_else(|p| p.into_inner());
    VENV.get_or_init(create_venv).as_deref()
}

fn create_venv() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("scim2-server-venv");
    let marker = dir.join(".installed");
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(SCIM2_SERVER) {
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
    let installed = Command::new(dir.join("bin").join("python"))
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

/// Runs scim2-server, exiting as soon as standard input closes, so that
/// none outlives the test process.
const LAUNCHER: &str = "
import os, sys, threading
def watch():
    sys.stdin.buffer.read()
    os._exit(0)
threading.Thread(target=watch, daemon=True).start()
from scim2_server.testserver.cli import main
main()
";

struct Scim2 {
    _server: Server,
    target: Target,
}

fn start_scim2() -> Option<Scim2> {
    let venv = venv()?;
    for _ in 0..3 {
        let port = free_port();
        let mut child = Command::new(venv.join("bin").join("python"))
            .args(["-c", LAUNCHER, "--hostname", "127.0.0.1"])
            .args(["--port", &port.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .env("SCIM2_SERVER_SECRET", "test-secret-for-cursors-0123456789")
            .spawn()
            .expect("start scim2-server");
        let stdin = child.stdin.take();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        if wait_for(addr, &mut child, Duration::from_secs(30)) {
            return Some(Scim2 {
                _server: Server { child, stdin },
                target: Target {
                    name: "scim2-server",
                    base: format!("http://{addr}/v2"),
                    token: None,
                    lists: true,
                },
            });
        }
        drop(Server { child, stdin });
    }
    panic!("scim2-server did not start");
}

/// The PyPI server, shared; `None` (with a note) when no venv can be made.
pub fn scim2() -> Option<Target> {
    static SCIM2: OnceLock<Option<Scim2>> = OnceLock::new();
    SCIM2
        .get_or_init(start_scim2)
        .as_ref()
        .map(|s| s.target.clone())
}

/// A test run against both servers: `both!(name, |target| { ... })`
/// makes `name::scim_server` and `name::scim2_server`.
macro_rules! both {
    ($name:ident, |$t:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)] // reason: not every body uses every import
            use super::*;

            fn body($t: &$crate::harness::Target) $body

            #[test]
            fn scim_server() {
                body(&$crate::harness::ours());
            }

            #[test]
            fn scim2_server() {
                if let Some(t) = $crate::harness::scim2() {
                    body(&t);
                }
            }
        }
    };
}
