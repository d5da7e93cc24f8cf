//! The provisioning engine end to end: a second instance of our server is
//! the downstream application; users assigned upstream appear there, changes
//! arrive as minimal PATCHes, unassigning deactivates or deletes them.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use scim_server::provision::{Engine, EngineOptions};
use scim_server::secrets::SecretKey;
use scim_server::store::{ChangeLogStore, ProvisioningQueue, Storage, TenantStore};
use scim_server::tokens::Scope;
use serde_json::{Value, json};

use crate::groups::{PATCH_OP, group, user};
use crate::harness::{Ctx, TEST_SECRET_KEY};

pub(crate) const APPS: &str = "/api/v1/applications";
pub(crate) const ASSIGNMENTS: &str = "/api/v1/assignments";

pub(crate) fn engine(ctx: &Ctx, owner: &str) -> Engine {
    let storage: Arc<dyn Storage> = Arc::new(ctx.store.clone());
    Engine::new(
        storage,
        Some(SecretKey::from_base64(TEST_SECRET_KEY).unwrap()),
        EngineOptions {
            owner: owner.into(),
            backoff_base: Duration::from_millis(10),
            backoff_cap: Duration::from_millis(50),
            ..crate::harness::engine_options()
        },
    )
}

pub(crate) struct Setup {
    pub(crate) down: Ctx,
    pub(crate) down_token: String,
    pub(crate) admin: String,
    pub(crate) scim: String,
    pub(crate) app: i64,
}

pub(crate) async fn setup(ctx: &Ctx, policy: Value) -> Setup {
    let down = Ctx::start(ctx.backend()).await.expect("downstream");
    let down_token = down.token("downstream", &[Scope::Write]);
    let admin = ctx.token("acme", &[Scope::Admin]);
    let scim = ctx.token("acme", &[Scope::Write]);
    let app = ctx
        .create(
            APPS,
            &admin,
            json!({
                "name": "downstream",
                "baseUrl": down.scim_base(),
                "credentials": {"type": "bearer", "token": down_token},
                "deprovision": policy,
            }),
        )
        .await
        .body["id"]
        .as_i64()
        .unwrap();
    Setup {
        down,
        down_token,
        admin,
        scim,
        app,
    }
}

pub(crate) async fn remote_id(ctx: &Ctx, s: &Setup, user_id: &str) -> Option<String> {
    let st = ctx
        .send(
            Method::GET,
            &format!("{APPS}/{}/provisioning", s.app),
            &s.admin,
            None,
        )
        .await
        .expect(200)
        .body;
    st["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["resourceId"] == json!(user_id))
        .and_then(|p| p["remoteId"].as_str().map(str::to_owned))
}

pub(crate) async fn downstream_user(s: &Setup, remote: &str) -> Option<Value> {
    let res = s
        .down
        .send(
            Method::GET,
            &format!("/scim/v2/Users/{remote}"),
            &s.down_token,
            None,
        )
        .await;
    (res.status.as_u16() == 200).then_some(res.body)
}

pub(crate) async fn assign(ctx: &Ctx, s: &Setup, id: &str) -> i64 {
    ctx.create(
        ASSIGNMENTS,
        &s.admin,
        json!({"applicationId": s.app, "resourceId": id}),
    )
    .await
    .body["id"]
        .as_i64()
        .unwrap()
}

backend_test!(
    assigned_user_appears_changes_patch_unassign_deactivates,
    |ctx| async move {
        let s = setup(&ctx, json!({"action": "deactivate"})).await;
        let worker = engine(&ctx, "w1");
        let alice = ctx
            .create(
                "/scim/v2/Users",
                &s.scim,
                json!({"schemas": [crate::groups::USER], "userName": "alice",
                   "displayName": "Alice", "active": true,
                   "emails": [{"value": "alice@example.com", "type": "work"}]}),
            )
            .await
            .id();
        // Not assigned: nothing to do.
        assert_eq!(worker.drain(5).await.unwrap().claimed, 0);

        let assignment = assign(&ctx, &s, &alice).await;
        let report = worker.drain(5).await.unwrap();
        assert_eq!(report.sent, 1, "{report:?}");
        let remote = remote_id(&ctx, &s, &alice).await.expect("a remote id");
        let down = downstream_user(&s, &remote).await.expect("downstream user");
        assert_eq!(down["userName"], "alice");
        assert_eq!(down["externalId"], json!(alice));
        assert_eq!(down["displayName"], "Alice");
        assert_eq!(down["active"], true);

        // Nothing changed: nothing sent.
        assert_eq!(worker.drain(5).await.unwrap().sent, 0);

        // A change arrives as a minimal PATCH.
        ctx.send(
            Method::PATCH,
            &format!("/scim/v2/Users/{alice}"),
            &s.scim,
            Some(&json!({"schemas": [PATCH_OP], "Operations": [
                {"op": "replace", "path": "displayName", "value": "Alice A."}
            ]})),
        )
        .await
        .expect(200);
        assert_eq!(worker.drain(5).await.unwrap().sent, 1);
        let down = downstream_user(&s, &remote).await.unwrap();
        assert_eq!(down["displayName"], "Alice A.");
        let log = ctx
            .send(
                Method::GET,
                &format!(
                    "/api/v1/provisioning/log?application={}&user={alice}",
                    s.app
                ),
                &s.admin,
                None,
            )
            .await
            .expect(200)
            .body;
        let latest = &log["items"][0];
        assert_eq!(latest["method"], "PATCH", "{log}");
        assert_eq!(
            latest["url"],
            json!(format!("{}/Users/{remote}", s.down.scim_base()))
        );
        assert_eq!(
            latest["request"]["Operations"],
            json!([{"op": "replace", "path": "displayName", "value": "Alice A."}]),
            "{log}"
        );
        assert_eq!(latest["status"], 200);
        assert_eq!(log["items"][1]["method"], "POST");
        assert!(
            !log.to_string().contains(&s.down_token),
            "no secret in the log"
        );

        // Unassigning deactivates downstream.
        ctx.send(
            Method::DELETE,
            &format!("{ASSIGNMENTS}/{assignment}"),
            &s.admin,
            None,
        )
        .await
        .expect(204);
        assert_eq!(worker.drain(5).await.unwrap().sent, 1);
        let down = downstream_user(&s, &remote).await.unwrap();
        assert_eq!(down["active"], false);
        let st = ctx
            .send(
                Method::GET,
                &format!("{APPS}/{}/provisioning", s.app),
                &s.admin,
                None,
            )
            .await
            .expect(200)
            .body;
        assert_eq!(st["counts"]["deprovisioned"], 1, "{st}");
        assert_eq!(st["due"], 0);

        // Assigning again reactivates the same account: no duplicate.
        assign(&ctx, &s, &alice).await;
        assert_eq!(worker.drain(5).await.unwrap().sent, 1);
        assert_eq!(
            remote_id(&ctx, &s, &alice).await.as_deref(),
            Some(remote.as_str())
        );
        assert_eq!(downstream_user(&s, &remote).await.unwrap()["active"], true);
    }
);

backend_test!(
    group_assignment_covers_members_and_delete_policy_deletes,
    |ctx| async move {
        let s = setup(&ctx, json!({"action": "delete"})).await;
        let worker = engine(&ctx, "w1");
        let bob = user(&ctx, &s.scim, "bob", None).await;
        let carol = user(&ctx, &s.scim, "carol", None).await;
        let team = group(&ctx, &s.scim, "team", &[&bob, &carol]).await;
        assign(&ctx, &s, &team).await;
        worker.drain(5).await.unwrap();
        let bob_remote = remote_id(&ctx, &s, &bob).await.expect("bob provisioned");
        let carol_remote = remote_id(&ctx, &s, &carol)
            .await
            .expect("carol provisioned");
        assert!(downstream_user(&s, &bob_remote).await.is_some());

        // Carol leaves the group: deleted downstream (policy delete).
        ctx.send(
            Method::PATCH,
            &format!("/scim/v2/Groups/{team}"),
            &s.scim,
            Some(&json!({"schemas": [PATCH_OP], "Operations": [
                {"op": "remove", "path": format!("members[value eq \"{carol}\"]")}
            ]})),
        )
        .await
        .expect(200);
        worker.drain(5).await.unwrap();
        assert!(downstream_user(&s, &carol_remote).await.is_none());
        assert!(downstream_user(&s, &bob_remote).await.is_some());

        // Bob deleted upstream: deleted downstream.
        ctx.send(
            Method::DELETE,
            &format!("/scim/v2/Users/{bob}"),
            &s.scim,
            None,
        )
        .await
        .expect(204);
        worker.drain(5).await.unwrap();
        assert!(downstream_user(&s, &bob_remote).await.is_none());
    }
);

backend_test!(
    an_abandoned_claim_is_taken_again_after_its_lease,
    |ctx| async move {
        let s = setup(&ctx, json!({"action": "deactivate"})).await;
        let dan = user(&ctx, &s.scim, "dan", None).await;
        assign(&ctx, &s, &dan).await;
        // A worker claims the pair and dies before sending anything.
        let claimed = ctx
            .store
            .claim_due("crashed", Duration::from_millis(300), 10)
            .unwrap();
        assert_eq!(claimed.len(), 1);
        let worker = engine(&ctx, "w2");
        // The lease holds: nobody else takes it.
        assert_eq!(worker.run_once().await.unwrap().claimed, 0);
        tokio::time::sleep(Duration::from_millis(400)).await;
        let report = worker.drain(5).await.unwrap();
        assert_eq!(report.sent, 1, "{report:?}");
        let remote = remote_id(&ctx, &s, &dan).await.unwrap();
        assert!(downstream_user(&s, &remote).await.is_some());
        // Exactly one account downstream.
        let tenant = s.down.store.find_tenant("downstream").unwrap().unwrap();
        let users = s
            .down
            .store
            .changes_after(tenant.id, 0, 100)
            .unwrap()
            .into_iter()
            .filter(|c| c.resource_type == "User" && c.op == scim_server::store::ChangeOp::Create)
            .count();
        assert_eq!(users, 1);
    }
);

backend_test!(a_target_down_backs_off_then_converges, |ctx| async move {
    let s = setup(&ctx, json!({"action": "deactivate"})).await;
    // Point the application at a port nobody listens on.
    ctx.send(
        Method::PATCH,
        &format!("{APPS}/{}", s.app),
        &s.admin,
        Some(&json!({"baseUrl": "http://127.0.0.1:9/scim/v2"})),
    )
    .await
    .expect(200);
    let erin = user(&ctx, &s.scim, "erin", None).await;
    assign(&ctx, &s, &erin).await;
    let worker = engine(&ctx, "w1");
    let r = worker.run_once().await.unwrap();
    assert_eq!(r.failed, 1, "{r:?}");
    let st = ctx
        .send(
            Method::GET,
            &format!("{APPS}/{}/provisioning", s.app),
            &s.admin,
            None,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(st["counts"]["failed"], 1, "{st}");
    assert_eq!(st["pairs"][0]["attempts"], 1);
    assert!(st["pairs"][0]["lastError"].is_string());
    // The target comes back.
    ctx.send(
        Method::PATCH,
        &format!("{APPS}/{}", s.app),
        &s.admin,
        Some(&json!({"baseUrl": s.down.scim_base()})),
    )
    .await
    .expect(200);
    tokio::time::sleep(Duration::from_millis(100)).await;
    worker.drain(5).await.unwrap();
    let remote = remote_id(&ctx, &s, &erin).await.expect("provisioned");
    assert!(downstream_user(&s, &remote).await.is_some());
});

backend_test!(
    the_background_worker_provisions_through_the_api_alone,
    |ctx| async move {
        // An upstream server running one worker, polling every 50 ms.
        let up = Ctx::start_with(ctx.backend(), |s| {
            s.provisioning_workers = 1;
            s.provisioning_interval = 0.05;
        })
        .await
        .unwrap();
        let s = setup(&up, json!({"action": "deactivate"})).await;
        let frank = user(&up, &s.scim, "frank", None).await;
        let assignment = assign(&up, &s, &frank).await;
        let mut remote = None;
        for _ in 0..100 {
            remote = remote_id(&up, &s, &frank).await;
            if remote.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let remote = remote.expect("the worker provisioned frank");
        assert_eq!(
            downstream_user(&s, &remote).await.unwrap()["userName"],
            "frank"
        );
        up.send(
            Method::DELETE,
            &format!("{ASSIGNMENTS}/{assignment}"),
            &s.admin,
            None,
        )
        .await
        .expect(204);
        let mut active = json!(true);
        for _ in 0..100 {
            active = downstream_user(&s, &remote).await.unwrap()["active"].clone();
            if active == json!(false) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(active, json!(false));
    }
);

backend_test!(
    a_pair_failing_too_often_is_dead_until_replayed,
    |ctx| async move {
        let s = setup(&ctx, json!({"action": "deactivate"})).await;
        ctx.send(
            Method::PATCH,
            &format!("{APPS}/{}", s.app),
            &s.admin,
            Some(&json!({"baseUrl": "http://127.0.0.1:9/scim/v2"})),
        )
        .await
        .expect(200);
        let gina = user(&ctx, &s.scim, "gina", None).await;
        assign(&ctx, &s, &gina).await;
        let storage: Arc<dyn Storage> = Arc::new(ctx.store.clone());
        let worker = Engine::new(
            storage,
            Some(SecretKey::from_base64(TEST_SECRET_KEY).unwrap()),
            EngineOptions {
                owner: "w1".into(),
                max_attempts: 2,
                backoff_base: Duration::from_millis(1),
                backoff_cap: Duration::from_millis(1),
                ..crate::harness::engine_options()
            },
        );
        for _ in 0..2 {
            worker.run_once().await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Dead: no longer claimed.
        assert_eq!(worker.run_once().await.unwrap().claimed, 0);
        let dead = ctx
            .send(
                Method::GET,
                &format!("/api/v1/provisioning/dead-letters?application={}", s.app),
                &s.admin,
                None,
            )
            .await
            .expect(200)
            .body;
        assert_eq!(dead["totalResults"], 1, "{dead}");
        assert_eq!(dead["items"][0]["resourceId"], json!(gina));
        assert_eq!(dead["items"][0]["status"], "dead");
        assert_eq!(dead["items"][0]["attempts"], 2);

        // The target is back. The settings change marks the pairs due, but a
        // dead pair waits for a replay.
        ctx.send(
            Method::PATCH,
            &format!("{APPS}/{}", s.app),
            &s.admin,
            Some(&json!({"baseUrl": s.down.scim_base()})),
        )
        .await
        .expect(200);
        assert_eq!(
            worker.run_once().await.unwrap().claimed,
            0,
            "dead stays dead"
        );
        let replay = ctx
            .send(
                Method::POST,
                "/api/v1/provisioning/dead-letters/replay",
                &s.admin,
                Some(&json!({"applicationId": s.app, "resourceId": gina})),
            )
            .await
            .expect(200);
        assert_eq!(replay.body, json!({"replayed": 1}));
        assert_eq!(worker.drain(5).await.unwrap().sent, 1);
        let remote = remote_id(&ctx, &s, &gina).await.unwrap();
        assert!(downstream_user(&s, &remote).await.is_some());
    }
);

backend_test!(dry_run_plan_then_provision_on_demand, |ctx| async move {
    let s = setup(&ctx, json!({"action": "deactivate"})).await;
    let hana = user(&ctx, &s.scim, "hana", None).await;
    assign(&ctx, &s, &hana).await;
    let plan = ctx
        .send(
            Method::GET,
            &format!("{APPS}/{}/plan", s.app),
            &s.admin,
            None,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(plan["create"].as_array().unwrap().len(), 1, "{plan}");
    assert_eq!(plan["create"][0]["resourceId"], json!(hana));
    assert_eq!(plan["create"][0]["method"], "POST");
    assert_eq!(plan["create"][0]["body"]["userName"], "hana");
    assert_eq!(plan["change"], json!([]));
    // The dry run sent nothing.
    let log = ctx
        .send(Method::GET, "/api/v1/provisioning/log", &s.admin, None)
        .await
        .expect(200)
        .body;
    assert_eq!(log["totalResults"], 0);

    // On demand: synchronous, answers what was sent and answered.
    let res = ctx
        .send(
            Method::POST,
            &format!("{APPS}/{}/provision/{hana}", s.app),
            &s.admin,
            None,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(res["status"], "provisioned", "{res}");
    let remote = res["remoteId"].as_str().unwrap().to_owned();
    assert_eq!(res["sent"][0]["method"], "POST");
    assert_eq!(res["sent"][0]["status"], 201);
    assert_eq!(res["sent"][0]["response"]["id"], json!(remote));
    assert!(downstream_user(&s, &remote).await.is_some());
    // Nothing left to do for the queue or the plan.
    assert_eq!(engine(&ctx, "w1").drain(5).await.unwrap().sent, 0);
    let plan = ctx
        .send(
            Method::GET,
            &format!("{APPS}/{}/plan", s.app),
            &s.admin,
            None,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(plan["unchanged"], 1, "{plan}");
    ctx.send(
        Method::POST,
        &format!("{APPS}/{}/provision/nobody", s.app),
        &s.admin,
        None,
    )
    .await
    .expect(404);
});

/// A stub target answering every request with `status` (and `Retry-After:
/// 2` for 429), on a thread; returns its SCIM base URL.
fn failing_target(status: u16) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/scim/v2", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
            let mut buf = [0u8; 8192];
            let _ = stream.read(&mut buf);
            let reason = if status == 429 {
                "Too Many Requests\r\nRetry-After: 2"
            } else {
                "Internal Server Error"
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    base
}

backend_test!(
    answers_429_and_500_back_off_then_converge,
    |ctx| async move {
        let s = setup(&ctx, json!({"action": "deactivate"})).await;
        // A backoff long enough that "not claimed again at once" holds on a
        // loaded machine; the settings change below makes it due at once.
        let worker = Engine::new(
            Arc::new(ctx.store.clone()),
            Some(SecretKey::from_base64(TEST_SECRET_KEY).unwrap()),
            EngineOptions {
                owner: "w1".into(),
                backoff_base: Duration::from_millis(300),
                backoff_cap: Duration::from_millis(300),
                ..crate::harness::engine_options()
            },
        );
        let ivan = user(&ctx, &s.scim, "ivan", None).await;
        assign(&ctx, &s, &ivan).await;
        for status in [429u16, 500] {
            ctx.send(
                Method::PATCH,
                &format!("{APPS}/{}", s.app),
                &s.admin,
                Some(&json!({"baseUrl": failing_target(status)})),
            )
            .await
            .expect(200);
            let attempted = chrono::Utc::now();
            let r = worker.run_once().await.unwrap();
            assert_eq!(r.failed, 1, "{status}: {r:?}");
            // Backing off: not claimed again at once.
            assert_eq!(worker.run_once().await.unwrap().claimed, 0, "{status}");
            let st = ctx
                .send(
                    Method::GET,
                    &format!("{APPS}/{}/provisioning", s.app),
                    &s.admin,
                    None,
                )
                .await
                .expect(200)
                .body;
            assert_eq!(st["pairs"][0]["status"], "failed", "{st}");
            if status == 429 {
                // Retry-After: 2 is honoured (the backoff alone is under 400 ms).
                let next = chrono::DateTime::parse_from_rfc3339(
                    st["pairs"][0]["nextAttemptAt"].as_str().unwrap(),
                )
                .unwrap();
                // Shown to the second: at least 2 s after the attempt,
                // less under a second of truncation.
                assert!(
                    next > attempted + chrono::Duration::milliseconds(1000),
                    "{st}"
                );
            }
            let log = ctx
                .send(Method::GET, "/api/v1/provisioning/log", &s.admin, None)
                .await
                .expect(200)
                .body;
            assert_eq!(log["items"][0]["status"], json!(status), "{log}");
        }
        // The real target: converges, one account.
        ctx.send(
            Method::PATCH,
            &format!("{APPS}/{}", s.app),
            &s.admin,
            Some(&json!({"baseUrl": s.down.scim_base()})),
        )
        .await
        .expect(200);
        assert_eq!(worker.drain(5).await.unwrap().sent, 1);
        let remote = remote_id(&ctx, &s, &ivan).await.unwrap();
        assert_eq!(
            downstream_user(&s, &remote).await.unwrap()["userName"],
            "ivan"
        );
    }
);

backend_test!(
    an_application_failing_repeatedly_is_quarantined_and_says_why,
    |ctx| async move {
        let s = setup(&ctx, json!({"action": "deactivate"})).await;
        ctx.send(
            Method::PATCH,
            &format!("{APPS}/{}", s.app),
            &s.admin,
            Some(&json!({"baseUrl": failing_target(500)})),
        )
        .await
        .expect(200);
        for name in ["q1", "q2", "q3"] {
            let id = user(&ctx, &s.scim, name, None).await;
            assign(&ctx, &s, &id).await;
        }
        let storage: Arc<dyn Storage> = Arc::new(ctx.store.clone());
        let worker = Engine::new(
            storage,
            Some(SecretKey::from_base64(TEST_SECRET_KEY).unwrap()),
            EngineOptions {
                owner: "w1".into(),
                batch: 1,
                quarantine_after: 2,
                backoff_base: Duration::from_millis(1),
                backoff_cap: Duration::from_millis(1),
                ..crate::harness::engine_options()
            },
        );
        assert_eq!(worker.run_once().await.unwrap().failed, 1);
        assert_eq!(worker.run_once().await.unwrap().failed, 1);
        // Quarantined: the third pair waits.
        assert_eq!(worker.run_once().await.unwrap().claimed, 0);
        let app = ctx
            .send(Method::GET, &format!("{APPS}/{}", s.app), &s.admin, None)
            .await
            .expect(200)
            .body;
        assert_eq!(app["quarantine"]["consecutiveFailures"], 2, "{app}");
        assert!(
            app["quarantine"]["reason"]
                .as_str()
                .unwrap()
                .contains("2 failed requests in a row"),
            "{app}"
        );
    }
);
