//! A third-party downstream: the PyPI package `scim2-server` (an in-memory
//! SCIM server in Python) receives users from the engine: create, minimal
//! PATCH, deactivate, delete, and adoption of an account it already has.
//!
//! The executable comes from `SCIM_TEST_SCIM2_SERVER` (set by
//! `./scripts/test`); when unset, a venv with the pinned requirements of
//! `conformance-tests/scim2-server/requirements.txt` is created under
//! `target/tmp`. Without Python or pip the test fails, never skips.
//!
//! Quirks of scim2-server 0.8.3 this relies on or works around:
//! - it serves SCIM at the root (`/Users`) as well as under `/v2`, and its
//!   `meta.location` always says `/v2`; the application uses the root;
//! - it keeps resources in memory only: a restart forgets them;
//! - without `--bearer-token` it accepts any request; the test gives one;
//! - it answers PATCH with 200 and the full resource.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Method;
use scim_server::provision::Engine;
use scim_server::secrets::SecretKey;
use scim_server::store::Storage;
use scim_server::tokens::Scope;
use serde_json::{Value, json};

use crate::engine_faults::{converge, test_options};
use crate::fault_proxy::FaultProxy;
use crate::groups::{PATCH_OP, USER};
use crate::harness::{Ctx, TEST_SECRET_KEY};

/// The environment variable naming the scim2-server executable.
pub const SCIM2_SERVER_ENV: &str = "SCIM_TEST_SCIM2_SERVER";

const REQUIREMENTS: &str =
    include_str!("../../../../conformance-tests/scim2-server/requirements.txt");

/// The scim2-server executable: from the environment, or a venv under
/// `target/tmp` created (once per test run) with the pinned requirements.
pub fn scim2_server_bin() -> PathBuf {
    static READY: Mutex<Option<PathBuf>> = Mutex::new(None);
    if let Some(path) = std::env::var_os(SCIM2_SERVER_ENV).filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let mut ready = READY.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(path) = ready.as_ref() {
        return path.clone();
    }
    let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("scim2-server-venv");
    let bin = venv.join("bin").join("scim2-server");
    let stamp = venv.join("requirements.txt");
    let current = std::fs::read_to_string(&stamp).ok().as_deref() == Some(REQUIREMENTS);
    if !(bin.exists() && current) {
        let run = |cmd: &mut Command, what: &str| {
            let out = cmd.output().unwrap_or_else(|e| {
                panic!("{what}: {e}; set {SCIM2_SERVER_ENV} or install python3")
            });
            assert!(
                out.status.success(),
                "{what} failed; set {SCIM2_SERVER_ENV} to a scim2-server executable\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        if !venv.join("bin").join("python").exists() {
            run(
                Command::new("python3").args(["-m", "venv"]).arg(&venv),
                "python3 -m venv",
            );
        }
        std::fs::write(venv.join("requirements.in.txt"), REQUIREMENTS).expect("requirements");
        run(
            Command::new(venv.join("bin").join("pip"))
                .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
                .arg(venv.join("requirements.in.txt")),
            "pip install scim2-server",
        );
        std::fs::write(&stamp, REQUIREMENTS).expect("stamp");
    }
    *ready = Some(bin.clone());
    bin
}

/// A running scim2-server on a free loopback port; killed when dropped.
pub struct Scim2Server {
    child: Child,
    /// `http://127.0.0.1:PORT` (SCIM is served at the root).
    pub base: String,
    pub token: String,
}

impl Drop for Scim2Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Scim2Server {
    pub async fn start() -> Self {
        let bin = scim2_server_bin();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let token = "scim2-test-token".to_owned();
        let child = Command::new(&bin)
            .args(["--hostname", "127.0.0.1", "--port", &port.to_string()])
            .args(["--bearer-token", &token])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        let mut server = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            token,
        };
        let client = reqwest::Client::new();
        let started = Instant::now();
        loop {
            let ok = client
                .get(format!("{}/ServiceProviderConfig", server.base))
                .bearer_auth(&server.token)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                return server;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("scim2-server exited: {status}");
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "scim2-server did not answer within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends a request straight to it; returns status and JSON body.
    pub async fn send(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = reqwest::Client::new()
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req
                .header("content-type", "application/scim+json")
                .body(b.to_string());
        }
        let res = req.send().await.expect("scim2-server request");
        let status = res.status().as_u16();
        let bytes = res.bytes().await.expect("body");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// The users with this userName.
    pub async fn users_named(&self, user_name: &str) -> Vec<Value> {
        let filter = format!("userName eq \"{user_name}\"");
        let path = format!(
            "/Users?filter={}",
            filter.replace(' ', "%20").replace('"', "%22")
        );
        let (status, list) = self.send(Method::GET, &path, None).await;
        assert_eq!(status, 200, "{list}");
        list["Resources"].as_array().cloned().unwrap_or_default()
    }

    /// The one user with this userName.
    pub async fn one_user(&self, user_name: &str) -> Value {
        let found = self.users_named(user_name).await;
        assert_eq!(found.len(), 1, "{user_name}: {found:?}");
        found[0].clone()
    }
}

async fn patch(ctx: &Ctx, token: &str, id: &str, path: &str, value: Value) {
    ctx.send(
        Method::PATCH,
        &format!("/scim/v2/Users/{id}"),
        token,
        Some(&json!({"schemas": [PATCH_OP], "Operations": [
            {"op": "replace", "path": path, "value": value}
        ]})),
    )
    .await
    .expect(200);
}

backend_test!(
    scim2_server_receives_users_from_the_engine,
    |ctx| async move {
        let s2 = Scim2Server::start().await;
        // The proxy only records what the engine sends.
        let proxy = Arc::new(FaultProxy::start(&s2.base).await);
        let admin = ctx.token("acme", &[Scope::Admin]);
        let scim = ctx.token("acme", &[Scope::Write]);
        let app = ctx
            .create(
                "/api/v1/applications",
                &admin,
                json!({
                    "name": "scim2-server",
                    "baseUrl": proxy.root(),
                    "credentials": {"type": "bearer", "token": s2.token},
                    "deprovision": {"action": "delete"},
                }),
            )
            .await
            .body["id"]
            .as_i64()
            .unwrap();
        let storage: Arc<dyn Storage> = Arc::new(ctx.store.clone());
        let worker = Engine::new(
            storage,
            Some(SecretKey::from_base64(TEST_SECRET_KEY).unwrap()),
            test_options(),
        );
        let settle = || converge(&ctx, app, &admin, &worker, Duration::from_secs(30));

        // An account made by hand before we knew it: adopted, not duplicated.
        let (status, body) = s2
            .send(
                Method::POST,
                "/Users",
                Some(json!({"schemas": [USER], "userName": "carol", "displayName": "C. by hand"})),
            )
            .await;
        assert_eq!(status, 201, "{body}");

        let mut ids = Vec::new();
        for (name, display) in [("alice", "Alice"), ("bob", "Bob"), ("carol", "Carol")] {
            let id = ctx
                .create(
                    "/scim/v2/Users",
                    &scim,
                    json!({"schemas": [USER], "userName": name, "displayName": display,
                       "active": true,
                       "name": {"givenName": display, "familyName": "Example"},
                       "emails": [{"value": format!("{name}@example.com"), "type": "work",
                                   "primary": true}]}),
                )
                .await
                .id();
            ctx.create(
                "/api/v1/assignments",
                &admin,
                json!({"applicationId": app, "resourceId": id}),
            )
            .await;
            ids.push(id);
        }
        settle().await;
        let alice = s2.one_user("alice").await;
        assert_eq!(alice["externalId"], json!(ids[0]));
        assert_eq!(alice["displayName"], "Alice");
        assert_eq!(alice["active"], true);
        assert_eq!(alice["emails"][0]["value"], "alice@example.com");
        assert_eq!(s2.one_user("bob").await["externalId"], json!(ids[1]));
        let carol = s2.one_user("carol").await;
        assert_eq!(carol["externalId"], json!(ids[2]), "adopted and updated");
        assert_eq!(carol["displayName"], "Carol");

        // A change arrives as a minimal PATCH.
        proxy.clear();
        patch(&ctx, &scim, &ids[0], "displayName", json!("Alice A.")).await;
        settle().await;
        let alice_id = alice["id"].as_str().unwrap();
        let sent: Vec<Value> = proxy
            .seen_matching("PATCH", &format!("/Users/{alice_id}"))
            .into_iter()
            .map(|s| s.body)
            .collect();
        assert_eq!(
            sent,
            vec![json!({"schemas": [PATCH_OP], "Operations": [
                {"op": "replace", "path": "displayName", "value": "Alice A."}
            ]})]
        );
        assert_eq!(s2.one_user("alice").await["displayName"], "Alice A.");

        // Deactivated upstream: a leaver's grants are suspended, and the
        // account is deprovisioned per the application's policy (delete).
        patch(&ctx, &scim, &ids[0], "active", json!(false)).await;
        settle().await;
        assert!(s2.users_named("alice").await.is_empty());

        // Unassigned (policy delete): deleted downstream.
        let assignments = ctx
            .send(
                Method::GET,
                &format!("/api/v1/assignments?application={app}"),
                &admin,
                None,
            )
            .await
            .expect(200)
            .body;
        let bob_assignment = assignments["items"]
            .as_array()
            .or(assignments["Resources"].as_array())
            .and_then(|items| items.iter().find(|a| a["resourceId"] == json!(ids[1])))
            .and_then(|a| a["id"].as_i64())
            .unwrap_or_else(|| panic!("bob's assignment in {assignments}"));
        ctx.send(
            Method::DELETE,
            &format!("/api/v1/assignments/{bob_assignment}"),
            &admin,
            None,
        )
        .await
        .expect(204);
        settle().await;
        assert!(s2.users_named("bob").await.is_empty());
        // Deleted upstream: deleted downstream too.
        ctx.send(
            Method::DELETE,
            &format!("/scim/v2/Users/{}", ids[0]),
            &scim,
            None,
        )
        .await
        .expect(204);
        settle().await;
        assert!(s2.users_named("alice").await.is_empty());
        assert_eq!(s2.users_named("carol").await.len(), 1);
    }
);
