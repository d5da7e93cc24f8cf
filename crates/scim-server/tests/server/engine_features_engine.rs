//! The engine's features end to end against a second instance of our
//! server: the real request log (with paging), deactivateThenDelete
//! (durable across a restart, cancelled by a reassignment), the
//! per-application rate limit, and reconciliation (drift, orphans,
//! missing accounts, repair, dry run, runs, schedule).

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::groups::{PATCH_OP, USER, user};
use crate::harness::Ctx;
use crate::provisioning::{
    APPS, ASSIGNMENTS, Setup, assign, downstream_user, engine, remote_id, setup,
};

async fn log_page(ctx: &Ctx, s: &Setup, query: &str) -> Value {
    ctx.send(
        Method::GET,
        &format!("/api/v1/provisioning/log?application={}&{query}", s.app),
        &s.admin,
        None,
    )
    .await
    .expect(200)
    .body
}

async fn unassign(ctx: &Ctx, s: &Setup, assignment: i64) {
    ctx.send(
        Method::DELETE,
        &format!("{ASSIGNMENTS}/{assignment}"),
        &s.admin,
        None,
    )
    .await
    .expect(204);
}

backend_test!(log_records_every_exchange_with_paging, |ctx| async move {
    let s = setup(&ctx, json!({"action": "deactivate"})).await;
    let worker = engine(&ctx, "w1");
    let alice = ctx
        .create(
            "/scim/v2/Users",
            &s.scim,
            json!({"schemas": [USER], "userName": "alice", "password": "Sup3r-secret!"}),
        )
        .await
        .id();
    let a = assign(&ctx, &s, &alice).await;
    worker.drain(5).await.unwrap();
    unassign(&ctx, &s, a).await;
    worker.drain(5).await.unwrap();
    let remote = remote_id(&ctx, &s, &alice).await.unwrap();
    // Newest first: the verification read, the deactivation, the create.
    let log = log_page(&ctx, &s, &format!("user={alice}")).await;
    let seen: Vec<(String, Value)> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["method"].as_str().unwrap().to_owned(),
                e["status"].clone(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("GET".to_string(), json!(200)),
            ("PATCH".to_string(), json!(200)),
            ("POST".to_string(), json!(201)),
        ],
        "{log}"
    );
    let read = &log["items"][0];
    assert_eq!(
        read["url"],
        json!(format!("{}/Users/{remote}", s.down.scim_base()))
    );
    assert_eq!(read["response"]["active"], false);
    assert_eq!(read["resourceType"], "User");
    assert!(read["durationMs"].as_i64().unwrap() >= 0);
    assert!(!log.to_string().contains("Sup3r-secret!"));
    assert!(!log.to_string().contains(&s.down_token));

    // Paging: one at a time, newest first, following `next`.
    let first = log_page(&ctx, &s, &format!("user={alice}&limit=1")).await;
    assert_eq!(first["items"].as_array().unwrap().len(), 1);
    assert_eq!(first["items"][0]["id"], log["items"][0]["id"]);
    let next = first["next"].as_i64().expect("a next page");
    let second = log_page(&ctx, &s, &format!("user={alice}&limit=2&before={next}")).await;
    assert_eq!(second["items"][0]["id"], log["items"][1]["id"]);
    assert_eq!(second["items"][1]["id"], log["items"][2]["id"]);
    assert_eq!(second["next"], Value::Null);

    // A target that refuses connections: the failed attempt is logged
    // with its error and no status.
    let dead = ctx
        .create(
            APPS,
            &s.admin,
            json!({"name": "gone", "baseUrl": "http://127.0.0.1:9/scim/v2"}),
        )
        .await
        .body["id"]
        .as_i64()
        .unwrap();
    ctx.create(
        ASSIGNMENTS,
        &s.admin,
        json!({"applicationId": dead, "resourceId": alice}),
    )
    .await;
    worker.drain(1).await.unwrap();
    let failed = ctx
        .send(
            Method::GET,
            &format!("/api/v1/provisioning/log?application={dead}"),
            &s.admin,
            None,
        )
        .await
        .expect(200)
        .body;
    let entry = &failed["items"][0];
    assert_eq!(entry["method"], "POST", "{failed}");
    assert_eq!(entry["status"], Value::Null);
    assert!(!entry["error"].as_str().unwrap().is_empty());
});

backend_test!(
    deactivate_then_delete_waits_for_the_grace_period,
    |ctx| async move {
        let s = setup(
            &ctx,
            json!({"action": "deactivateThenDelete", "graceSeconds": 2}),
        )
        .await;
        let worker = engine(&ctx, "w1");
        let alice = user(&ctx, &s.scim, "alice", None).await;
        let bob = user(&ctx, &s.scim, "bob", None).await;
        let a1 = assign(&ctx, &s, &alice).await;
        let b1 = assign(&ctx, &s, &bob).await;
        worker.drain(5).await.unwrap();
        let (ra, rb) = (
            remote_id(&ctx, &s, &alice).await.unwrap(),
            remote_id(&ctx, &s, &bob).await.unwrap(),
        );
        unassign(&ctx, &s, a1).await;
        unassign(&ctx, &s, b1).await;
        worker.drain(5).await.unwrap();
        // Deactivated now, not deleted.
        assert_eq!(downstream_user(&s, &ra).await.unwrap()["active"], false);
        assert_eq!(downstream_user(&s, &rb).await.unwrap()["active"], false);
        assert_eq!(worker.drain(5).await.unwrap().claimed, 0, "not due yet");
        // Bob is reassigned within the grace period: the delete is off.
        assign(&ctx, &s, &bob).await;
        worker.drain(5).await.unwrap();
        assert_eq!(downstream_user(&s, &rb).await.unwrap()["active"], true);

        // A new worker (as after a restart) deletes Alice once the grace
        // period has passed; the due time was stored, not held in memory.
        drop(worker);
        tokio::time::sleep(Duration::from_millis(2300)).await;
        let restarted = engine(&ctx, "w2");
        let report = restarted.drain(5).await.unwrap();
        assert_eq!(report.sent, 1, "{report:?}");
        assert!(downstream_user(&s, &ra).await.is_none(), "alice deleted");
        assert_eq!(downstream_user(&s, &rb).await.unwrap()["active"], true);
        let log = log_page(&ctx, &s, &format!("user={alice}")).await;
        assert_eq!(log["items"][0]["method"], "DELETE", "{log}");
        assert_eq!(restarted.drain(5).await.unwrap().claimed, 0);
    }
);

backend_test!(
    rate_limit_spaces_requests_to_an_application,
    |ctx| async move {
        let s = setup(&ctx, json!({"action": "deactivate"})).await;
        ctx.send(
            Method::PATCH,
            &format!("{APPS}/{}", s.app),
            &s.admin,
            Some(&json!({"rateLimit": {"requestsPerSecond": 4, "maxConcurrency": 2}})),
        )
        .await
        .expect(200);
        let worker = engine(&ctx, "w1");
        for i in 0..8 {
            let id = user(&ctx, &s.scim, &format!("user{i}"), None).await;
            assign(&ctx, &s, &id).await;
        }
        let started = Instant::now();
        let report = worker.drain(5).await.unwrap();
        let took = started.elapsed();
        assert_eq!(report.sent, 8, "{report:?}");
        // A bucket of 4 then 4 per second: the last 4 wait about 1 s.
        assert!(took >= Duration::from_millis(900), "{took:?}");
        let log = log_page(&ctx, &s, "limit=100").await;
        assert_eq!(log["items"].as_array().unwrap().len(), 8);
    }
);

async fn reconcile(ctx: &Ctx, s: &Setup, body: Value) -> Value {
    ctx.send(
        Method::POST,
        &format!("{APPS}/{}/reconcile", s.app),
        &s.admin,
        Some(&body),
    )
    .await
    .expect(200)
    .body
}

backend_test!(
    reconcile_reports_drift_orphans_missing_and_repairs,
    |ctx| async move {
        let s = setup(&ctx, json!({"action": "deactivate"})).await;
        let worker = engine(&ctx, "w1");
        let alice = user(&ctx, &s.scim, "alice", Some("Alice")).await;
        let bob = user(&ctx, &s.scim, "bob", Some("Bob")).await;
        assign(&ctx, &s, &alice).await;
        assign(&ctx, &s, &bob).await;
        worker.drain(5).await.unwrap();
        let (ra, rb) = (
            remote_id(&ctx, &s, &alice).await.unwrap(),
            remote_id(&ctx, &s, &bob).await.unwrap(),
        );
        // Someone edits Alice at the target, deletes Bob there, and adds
        // an account we do not know.
        s.down
            .send(
                Method::PATCH,
                &format!("/scim/v2/Users/{ra}"),
                &s.down_token,
                Some(&json!({"schemas": [PATCH_OP], "Operations": [
                    {"op": "replace", "path": "displayName", "value": "Hacked"}
                ]})),
            )
            .await
            .expect(200);
        s.down
            .send(
                Method::DELETE,
                &format!("/scim/v2/Users/{rb}"),
                &s.down_token,
                None,
            )
            .await
            .expect(204);
        let mallory = s
            .down
            .create(
                "/scim/v2/Users",
                &s.down_token,
                json!({"schemas": [USER], "userName": "mallory"}),
            )
            .await
            .id();

        // A dry run reports and stores nothing.
        let dry = reconcile(&ctx, &s, json!({"dryRun": true, "repair": true})).await;
        assert_eq!(
            dry["counts"],
            json!({"remoteUsers": 2, "remoteGroups": 0, "matched": 1, "drifted": 1,
                   "orphans": 1, "missing": 1, "repaired": 0}),
            "{dry}"
        );
        assert_eq!(dry["runId"], Value::Null);
        let kinds: Vec<&str> = dry["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds.len(), 3, "{dry}");
        let drift = dry["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["kind"] == "drift")
            .unwrap();
        assert_eq!(drift["resourceId"], json!(alice));
        assert!(
            drift["detail"].as_str().unwrap().contains("displayName"),
            "{drift}"
        );
        let runs_path = format!("{APPS}/{}/reconcile/runs", s.app);
        let runs = ctx
            .send(Method::GET, &runs_path, &s.admin, None)
            .await
            .expect(200)
            .body;
        assert_eq!(runs["totalResults"], 0);
        assert_eq!(
            downstream_user(&s, &ra).await.unwrap()["displayName"],
            "Hacked"
        );

        // A stored run without repair; its findings and the orphans list.
        let run = reconcile(&ctx, &s, json!({})).await;
        let run_id = run["runId"].as_i64().unwrap();
        assert_eq!(run["counts"]["repaired"], 0);
        let shown = ctx
            .send(
                Method::GET,
                &format!("{runs_path}/{run_id}?kind=missing"),
                &s.admin,
                None,
            )
            .await
            .expect(200)
            .body;
        assert_eq!(shown["run"]["status"], "succeeded");
        assert_eq!(shown["run"]["trigger"], "manual");
        assert_eq!(shown["items"][0]["resourceId"], json!(bob), "{shown}");
        let orphans = ctx
            .send(
                Method::GET,
                &format!("{APPS}/{}/orphans", s.app),
                &s.admin,
                None,
            )
            .await
            .expect(200)
            .body;
        assert_eq!(orphans["items"].as_array().unwrap().len(), 1);
        assert_eq!(orphans["items"][0]["remoteId"], json!(mallory));
        assert_eq!(orphans["items"][0]["name"], "mallory");

        // Repair: the engine brings Alice back and recreates Bob.
        let repaired = reconcile(&ctx, &s, json!({"repair": true})).await;
        assert_eq!(repaired["counts"]["repaired"], 2, "{repaired}");
        let report = worker.drain(5).await.unwrap();
        assert_eq!(report.sent, 2, "{report:?}");
        assert_eq!(
            downstream_user(&s, &ra).await.unwrap()["displayName"],
            "Alice"
        );
        let rb2 = remote_id(&ctx, &s, &bob).await.expect("bob again");
        assert_eq!(downstream_user(&s, &rb2).await.unwrap()["userName"], "bob");
        let after = reconcile(&ctx, &s, json!({})).await;
        assert_eq!(after["counts"]["drifted"], 0, "{after}");
        assert_eq!(after["counts"]["missing"], 0, "{after}");
        assert_eq!(after["counts"]["orphans"], 1);
        assert_eq!(after["counts"]["matched"], 2);
        // The pages read are in the log.
        let log = log_page(&ctx, &s, "limit=5").await;
        assert!(
            log["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["method"] == "GET" && e["url"].as_str().unwrap().contains("/Users?")),
            "{log}"
        );

        // Bad input: clear errors.
        let bad = ctx
            .send(
                Method::POST,
                &format!("{APPS}/{}/reconcile", s.app),
                &s.admin,
                Some(&json!({"repiar": true})),
            )
            .await
            .expect(400);
        assert!(bad.body["detail"].as_str().unwrap().contains("repiar"));
        ctx.send(
            Method::POST,
            &format!("{APPS}/999999/reconcile"),
            &s.admin,
            Some(&json!({})),
        )
        .await
        .expect(404);
        ctx.send(Method::GET, &format!("{runs_path}/999999"), &s.admin, None)
            .await
            .expect(404);
    }
);

backend_test!(scheduled_reconcile_runs_when_due, |ctx| async move {
    let s = setup(&ctx, json!({"action": "deactivate"})).await;
    let worker = engine(&ctx, "w1");
    // Not scheduled: nothing runs.
    worker.reconcile_scheduled().await.unwrap();
    let runs_path = format!("{APPS}/{}/reconcile/runs", s.app);
    let runs = ctx
        .send(Method::GET, &runs_path, &s.admin, None)
        .await
        .expect(200)
        .body;
    assert_eq!(runs["totalResults"], 0);
    let bad = ctx
        .send(
            Method::PATCH,
            &format!("{APPS}/{}", s.app),
            &s.admin,
            Some(&json!({"reconcileInterval": 5})),
        )
        .await
        .expect(400);
    assert!(
        bad.body["detail"]
            .as_str()
            .unwrap()
            .contains("reconcileInterval")
    );
    let app = ctx
        .send(
            Method::PATCH,
            &format!("{APPS}/{}", s.app),
            &s.admin,
            Some(&json!({"reconcileInterval": 3600})),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(app["reconcileInterval"], 3600);
    worker.reconcile_scheduled().await.unwrap();
    // Another worker right after: the slot is taken.
    engine(&ctx, "w2").reconcile_scheduled().await.unwrap();
    let runs = ctx
        .send(Method::GET, &runs_path, &s.admin, None)
        .await
        .expect(200)
        .body;
    assert_eq!(runs["totalResults"], 1, "{runs}");
    assert_eq!(runs["items"][0]["trigger"], "scheduled");
    assert_eq!(runs["items"][0]["repair"], true);
    let app = ctx
        .send(Method::GET, &format!("{APPS}/{}", s.app), &s.admin, None)
        .await
        .expect(200)
        .body;
    assert!(app["lastReconciled"].is_string(), "{app}");
    // Turned off again with null.
    let app = ctx
        .send(
            Method::PATCH,
            &format!("{APPS}/{}", s.app),
            &s.admin,
            Some(&json!({"reconcileInterval": null})),
        )
        .await
        .expect(200)
        .body;
    assert_eq!(app["reconcileInterval"], Value::Null);
});
