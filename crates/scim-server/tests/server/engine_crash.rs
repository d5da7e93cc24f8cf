//! The engine's process killed in the middle of a run: the real
//! `scim-server serve` binary with provisioning workers pushes many users
//! through a slow proxy to a downstream server, is SIGKILLed, the source
//! changes while it is dead, and a restarted process converges the
//! downstream with no duplicate and nothing missing.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::engine_faults::{converge_by_status, downstream_users};
use crate::fault_proxy::FaultProxy;
use crate::groups::{PATCH_OP, USER};
use crate::harness::{Ctx, TEST_SECRET_KEY};
use scim_server::tokens::Scope;

const BIN: &str = env!("CARGO_BIN_EXE_scim-server");
const USERS: usize = 120;

/// `scim-server serve` on `db` with two workers, a short lease and a quick
/// poll; the HTTP side listens on a free port and is not used.
fn start_workers(db: &str) -> Child {
    let mut cmd = Command::new(BIN);
    for (key, _) in std::env::vars() {
        if key.starts_with("SCIM_") {
            cmd.env_remove(key);
        }
    }
    cmd.args(["serve", "--database-url", db, "--bind", "127.0.0.1:0"])
        .args(["--secret-key", TEST_SECRET_KEY])
        .args(["--provisioning-workers", "2"])
        .args(["--outbound-allow", "127.0.0.0/8,::1"])
        .args(["--provisioning-interval", "0.05"])
        .args(["--provisioning-lease", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start scim-server")
}

/// Kills the process with SIGKILL (no graceful shutdown) and reaps it.
fn kill_hard(mut child: Child) {
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
}

backend_test!(
    a_killed_engine_restarts_and_converges_without_duplicates,
    |ctx| async move {
        let down = Ctx::start(ctx.backend()).await.expect("downstream");
        let proxy = FaultProxy::start(&down.base).await;
        // Every request takes a while: the kill lands mid-run, with
        // requests in flight (which the proxy still delivers).
        proxy.set_delay(Duration::from_millis(25));
        let down_token = down.token("downstream", &[Scope::Write]);
        let admin = ctx.token("acme", &[Scope::Admin]);
        let scim = ctx.token("acme", &[Scope::Write]);
        let app = ctx
            .create(
                "/api/v1/applications",
                &admin,
                json!({
                    "name": "slow",
                    "baseUrl": proxy.scim_base(),
                    "credentials": {"type": "bearer", "token": down_token},
                    "deprovision": {"action": "deactivate"},
                }),
            )
            .await
            .body["id"]
            .as_i64()
            .unwrap();
        let mut ids = Vec::new();
        let mut assignments = Vec::new();
        for i in 0..USERS {
            let id = ctx
                .create(
                    "/scim/v2/Users",
                    &scim,
                    json!({"schemas": [USER], "userName": format!("crash{i:03}"),
                           "displayName": format!("Crash {i}")}),
                )
                .await
                .id();
            let a = ctx
                .create(
                    "/api/v1/assignments",
                    &admin,
                    json!({"applicationId": app, "resourceId": id}),
                )
                .await
                .body["id"]
                .as_i64()
                .unwrap();
            ids.push(id);
            assignments.push(a);
        }

        let worker = start_workers(&ctx.db.url);
        // Kill it once a third of the accounts exist downstream.
        let started = Instant::now();
        loop {
            let n = downstream_users(&down, &down_token).await.len();
            if n >= USERS / 3 {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the workers provisioned only {n} users in 60 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        kill_hard(worker);
        let at_kill = downstream_users(&down, &down_token).await.len();
        assert!(at_kill < USERS, "killed mid-run ({at_kill} of {USERS})");

        // While it is dead: ten renamed, ten unassigned.
        for id in &ids[..10] {
            ctx.send(
                Method::PATCH,
                &format!("/scim/v2/Users/{id}"),
                &scim,
                Some(&json!({"schemas": [PATCH_OP], "Operations": [
                    {"op": "replace", "path": "displayName", "value": "Renamed"}
                ]})),
            )
            .await
            .expect(200);
        }
        for a in &assignments[10..20] {
            ctx.send(
                Method::DELETE,
                &format!("/api/v1/assignments/{a}"),
                &admin,
                None,
            )
            .await
            .expect(204);
        }

        let worker = start_workers(&ctx.db.url);
        converge_by_status(&ctx, app, &admin, Duration::from_secs(120)).await;
        kill_hard(worker);

        let users = downstream_users(&down, &down_token).await;
        for (i, id) in ids.iter().enumerate() {
            let held: Vec<&Value> = users
                .iter()
                .filter(|u| u["externalId"] == json!(id))
                .collect();
            let by_name = users
                .iter()
                .filter(|u| u["userName"] == json!(format!("crash{i:03}")))
                .count();
            assert!(held.len() <= 1 && by_name <= 1, "crash{i:03} duplicated");
            if (10..20).contains(&i) {
                // Unassigned: deactivated if it had been created, else absent.
                assert!(held.iter().all(|u| u["active"] == json!(false)), "{held:?}");
            } else {
                assert_eq!(held.len(), 1, "crash{i:03} missing");
                let display = if i < 10 {
                    "Renamed".to_owned()
                } else {
                    format!("Crash {i}")
                };
                assert_eq!(held[0]["displayName"], json!(display), "{}", held[0]);
                assert_ne!(held[0]["active"], json!(false), "{}", held[0]);
            }
        }
        assert!(
            users.len() <= USERS,
            "no stranger downstream: {}",
            users.len()
        );
        let conflicts = proxy
            .seen_matching("POST", "/Users")
            .iter()
            .filter(|s| s.status == Some(409))
            .count();
        eprintln!("killed at {at_kill} of {USERS}; creates adopted after a 409: {conflicts}");
    }
);
