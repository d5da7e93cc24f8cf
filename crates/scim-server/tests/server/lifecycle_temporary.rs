//! Temporary access: a contractor's access ends at its end time while the
//! server is restarted (the scheduler finds it after the restart); an
//! extension is recorded; the engine does not provision before the start.

use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use reqwest::Method;
use serde_json::json;

use crate::groups::USER;
use crate::harness::Ctx;
use crate::lifecycle_jml::{World, engine, lifecycle};

fn at(secs: i64) -> String {
    (Utc::now() + chrono::Duration::seconds(secs)).to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Polls `check` every 200 ms for at most `limit`.
async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < limit {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

backend_test!(
    contractor_access_expires_across_a_restart,
    |ctx| async move {
        let mut ctx: Ctx = ctx;
        let w = World::new(&ctx).await;
        let carl = ctx
            .create(
                "/scim/v2/Users",
                &w.hr,
                json!({"schemas": [USER], "userName": "carl", "active": true,
                       "userType": "Contractor"}),
            )
            .await
            .id();
        let grant = ctx
            .create(
                "/api/v1/assignments",
                &w.admin,
                json!({"applicationId": w.app("Trello"), "resourceId": carl,
                       "validUntil": at(3), "reason": "Q4 campaign", "grantedBy": "alice"}),
            )
            .await
            .body;
        assert_eq!(grant["reason"], "Q4 campaign");
        assert_eq!(grant["grantedBy"], "alice");
        let id = grant["id"].as_i64().unwrap();
        // An extension, recorded.
        let ext = ctx
            .send(
                Method::POST,
                &format!("/api/v1/assignments/{id}/extend"),
                &w.admin,
                Some(&json!({"validUntil": at(5), "reason": "campaign ran late"})),
            )
            .await
            .expect(200)
            .body;
        assert_eq!(ext["reason"], "campaign ran late");
        let exts = ctx
            .send(
                Method::GET,
                &format!("/api/v1/assignments/{id}/extensions"),
                &w.admin,
                None,
            )
            .await
            .expect(200)
            .body;
        assert_eq!(exts["totalResults"], 1, "{exts}");
        // An extension into the past is refused.
        ctx.send(
            Method::POST,
            &format!("/api/v1/assignments/{id}/extend"),
            &w.admin,
            Some(&json!({"validUntil": at(-60)})),
        )
        .await
        .expect(400);

        engine(&ctx).drain(5).await.unwrap();
        assert_eq!(w.account("Trello", "carl").await, Some(true));

        // The server goes down before the end time and comes back after it,
        // with its evaluator and provisioning workers running.
        ctx.restart_with(|_| {});
        tokio::time::sleep(Duration::from_secs(6)).await;
        ctx.restart_with(|s| {
            s.lifecycle_interval = 0.2;
            s.provisioning_workers = 1;
            s.provisioning_interval = 0.2;
        });
        let gone = eventually(Duration::from_secs(30), || async {
            w.account("Trello", "carl").await == Some(false)
        })
        .await;
        assert!(
            gone,
            "the contractor's account was deactivated after the restart"
        );
        // The engine records the outcome just after the answer arrives.
        let revoked = eventually(Duration::from_secs(10), || async {
            let access = ctx
                .send(
                    Method::GET,
                    &format!("/api/v1/users/{carl}/access"),
                    &w.admin,
                    None,
                )
                .await
                .expect(200)
                .body;
            access["applications"][0]["state"] == "revoked"
        })
        .await;
        assert!(revoked, "the access view shows the access revoked");
        let events = ctx
            .send(
                Method::GET,
                &format!("/api/v1/users/{carl}/lifecycle"),
                &w.admin,
                None,
            )
            .await
            .expect(200)
            .body;
        assert!(
            events["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["event"] == "expired" && e["detail"]["assignmentId"] == json!(id)),
            "{events}"
        );
    }
);

backend_test!(
    access_starts_at_its_start_time_not_before,
    |ctx| async move {
        let w = World::new(&ctx).await;
        let lc = lifecycle(&ctx);
        let worker = engine(&ctx);
        let dana = ctx
            .create(
                "/scim/v2/Users",
                &w.hr,
                json!({"schemas": [USER], "userName": "dana", "active": true}),
            )
            .await
            .id();
        ctx.create(
            "/api/v1/assignments",
            &w.admin,
            json!({"applicationId": w.app("Slack"), "resourceId": dana,
                   "validFrom": at(2), "validUntil": at(3600)}),
        )
        .await;
        worker.drain(5).await.unwrap();
        assert_eq!(
            w.account("Slack", "dana").await,
            None,
            "not before validFrom"
        );
        let access = ctx
            .send(
                Method::GET,
                &format!("/api/v1/users/{dana}/access"),
                &w.admin,
                None,
            )
            .await
            .expect(200)
            .body;
        assert_eq!(access["applications"][0]["state"], "scheduled", "{access}");
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let r = lc.drain(5).await.unwrap();
        assert_eq!(r.started, 1, "{r:?}");
        worker.drain(5).await.unwrap();
        assert_eq!(w.account("Slack", "dana").await, Some(true));
        let access = ctx
            .send(
                Method::GET,
                &format!("/api/v1/users/{dana}/access"),
                &w.admin,
                None,
            )
            .await
            .expect(200)
            .body;
        assert_eq!(
            access["applications"][0]["state"], "provisioned",
            "{access}"
        );
        assert!(
            access["applications"][0]["expiresAt"].is_string(),
            "{access}"
        );
    }
);
