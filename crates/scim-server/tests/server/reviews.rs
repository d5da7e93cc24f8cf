//! Access reviews end to end: a second instance of our server is the
//! downstream application; a reviewer's revoke removes the assignment and
//! the engine deactivates the account there; unreviewed items follow the
//! campaign's default at the due date; results export as CSV and JSON; the
//! decisions and their consequences are in the audit log, chained by cause.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use scim_server::provision::{Engine, EngineOptions};
use scim_server::secrets::SecretKey;
use scim_server::store::{ReviewStore, Storage, TenantStore, TokenStore};
use scim_server::tokens::{Scope, Scopes};
use serde_json::{Value, json};

use crate::groups::USER;
use crate::harness::{Ctx, TEST_SECRET_KEY};

const REVIEWS: &str = "/api/v1/reviews";

fn engine(ctx: &Ctx) -> Engine {
    let storage: Arc<dyn Storage> = Arc::new(ctx.store.clone());
    Engine::new(
        storage,
        Some(SecretKey::from_base64(TEST_SECRET_KEY).unwrap()),
        EngineOptions {
            owner: "reviews-test".into(),
            backoff_base: Duration::from_millis(10),
            backoff_cap: Duration::from_millis(50),
            ..crate::harness::engine_options()
        },
    )
}

/// A token of tenant `acme` and its id.
fn token(ctx: &Ctx, scopes: &[Scope]) -> (String, i64) {
    let tenant = ctx.store.ensure_tenant("acme").unwrap();
    let t = ctx
        .store
        .create_token(tenant.id, "test", Scopes::of(scopes))
        .unwrap();
    (t.secret, t.info.id)
}

fn due_in(secs: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::seconds(secs)).to_rfc3339()
}

async fn user(ctx: &Ctx, scim: &str, name: &str) -> String {
    ctx.create(
        "/scim/v2/Users",
        scim,
        json!({"schemas": [USER], "userName": name, "active": true}),
    )
    .await
    .id()
}

async fn assign(ctx: &Ctx, admin: &str, app: i64, user: &str) -> i64 {
    ctx.create(
        "/api/v1/assignments",
        admin,
        json!({"applicationId": app, "resourceId": user}),
    )
    .await
    .body["id"]
        .as_i64()
        .unwrap()
}

async fn app(ctx: &Ctx, admin: &str, name: &str, base: &str, token: &str) -> i64 {
    ctx.create(
        "/api/v1/applications",
        admin,
        json!({"name": name, "baseUrl": base,
               "credentials": {"type": "bearer", "token": token},
               "deprovision": {"action": "deactivate"}}),
    )
    .await
    .body["id"]
        .as_i64()
        .unwrap()
}

/// The downstream account of `user_name`.
async fn downstream(down: &Ctx, token: &str, user_name: &str) -> Value {
    let page = down
        .send(
            Method::GET,
            &format!("/scim/v2/Users?filter=userName%20eq%20%22{user_name}%22"),
            token,
            None,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(page["totalResults"], 1, "{page}");
    page["Resources"][0].clone()
}

fn item_of<'a>(items: &'a Value, user_name: &str) -> &'a Value {
    items["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["userName"] == user_name)
        .unwrap_or_else(|| panic!("no item for {user_name}: {items}"))
}

backend_test!(a_review_revokes_an_account_downstream, |ctx| async move {
    let down = Ctx::start(ctx.backend()).await.expect("downstream");
    let down_token = down.token("downstream", &[Scope::Write]);
    let (admin, _) = token(&ctx, &[Scope::Admin]);
    let (scim, _) = token(&ctx, &[Scope::Write]);
    // The reviewer needs no admin scope: being listed is enough.
    let (reviewer, reviewer_id) = token(&ctx, &[Scope::Read]);
    let crm = app(&ctx, &admin, "crm", &down.scim_base(), &down_token).await;
    let alice = user(&ctx, &scim, "alice").await;
    let bob = user(&ctx, &scim, "bob").await;
    assign(&ctx, &admin, crm, &alice).await;
    let bob_assignment = assign(&ctx, &admin, crm, &bob).await;
    let worker = engine(&ctx);
    assert_eq!(worker.drain(5).await.unwrap().sent, 2);
    assert_eq!(downstream(&down, &down_token, "bob").await["active"], true);

    let campaign = ctx
        .create(
            REVIEWS,
            &admin,
            json!({"name": "CRM Q4", "scope": {"type": "application", "id": crm},
                   "reviewers": [format!("token:{reviewer_id}")],
                   "dueAt": due_in(86400), "defaultDecision": "keep"}),
        )
        .await
        .body;
    let id = campaign["id"].as_i64().unwrap();
    assert_eq!(campaign["status"], "open");
    assert_eq!(
        campaign["progress"],
        json!({"total": 2, "kept": 0, "revoked": 0, "pending": 2})
    );

    let items = ctx
        .send(
            Method::GET,
            &format!("{REVIEWS}/{id}/items"),
            &reviewer,
            None,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(items["totalResults"], 2);
    let alice_item = item_of(&items, "alice")["id"].as_i64().unwrap();
    let bob_item = item_of(&items, "bob");
    assert_eq!(bob_item["applicationName"], "crm");
    assert_eq!(bob_item["assignmentId"], bob_assignment);
    assert_eq!(bob_item["decision"], Value::Null);
    let bob_item = bob_item["id"].as_i64().unwrap();

    let decide = |item: i64, body: Value, token: String| {
        let ctx = &ctx;
        async move {
            ctx.send(
                Method::POST,
                &format!("{REVIEWS}/{id}/items/{item}/decision"),
                &token,
                Some(&body),
            )
            .await
        }
    };
    // A revoke without a reason is refused, as is an unknown decision.
    for body in [
        json!({"decision": "revoke"}),
        json!({"decision": "revoke", "comment": "   "}),
        json!({"decision": "maybe", "comment": "x"}),
        json!({"decision": "keep", "note": "x"}),
    ] {
        let res = decide(bob_item, body.clone(), reviewer.clone())
            .await
            .expect(400);
        assert!(res.body["detail"].is_string(), "{body}: {}", res.body);
    }
    // Not a reviewer of this campaign (admin or not).
    decide(bob_item, json!({"decision": "keep"}), admin.clone())
        .await
        .expect(403);
    decide(bob_item, json!({"decision": "keep"}), scim.clone())
        .await
        .expect(403);
    decide(999, json!({"decision": "keep"}), reviewer.clone())
        .await
        .expect(404);

    let kept = decide(alice_item, json!({"decision": "keep"}), reviewer.clone())
        .await
        .expect(200)
        .body;
    assert_eq!(kept["outcome"], "kept");
    let revoked = decide(
        bob_item,
        json!({"decision": "revoke", "comment": "left the sales team"}),
        reviewer.clone(),
    )
    .await
    .expect(200)
    .body;
    assert_eq!(revoked["decision"], "revoke");
    assert_eq!(revoked["outcome"], "revoked");
    assert_eq!(revoked["decidedBy"], json!(format!("token:{reviewer_id}")));
    decide(bob_item, json!({"decision": "keep"}), reviewer.clone())
        .await
        .expect(409);

    // The engine takes bob's account away downstream; alice keeps hers.
    let report = worker.drain(5).await.unwrap();
    assert_eq!(report.sent, 1, "{report:?}");
    assert_eq!(downstream(&down, &down_token, "bob").await["active"], false);
    assert_eq!(
        downstream(&down, &down_token, "alice").await["active"],
        true
    );

    // Results: JSON and CSV.
    let export = ctx
        .send(
            Method::GET,
            &format!("{REVIEWS}/{id}/export"),
            &reviewer,
            None,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(
        export["campaign"]["progress"],
        json!({"total": 2, "kept": 1, "revoked": 1, "pending": 0})
    );
    assert_eq!(export["items"].as_array().unwrap().len(), 2);
    let res = ctx
        .client
        .get(ctx.url(&format!("{REVIEWS}/{id}/export?format=csv")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = res.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "itemId,userId,userName,applicationId,applicationName,assignmentId,decision,comment,decidedBy,decidedAt,outcome"
    );
    assert_eq!(lines.len(), 3, "{csv}");
    let bob_line = lines.iter().find(|l| l.contains(",bob,")).unwrap();
    assert!(
        bob_line.contains(&format!(",revoke,left the sales team,token:{reviewer_id},")),
        "{bob_line}"
    );
    assert!(bob_line.ends_with(",revoked"), "{bob_line}");
    ctx.send(
        Method::GET,
        &format!("{REVIEWS}/{id}/export?format=xml"),
        &admin,
        None,
    )
    .await
    .expect(400);

    // The audit log holds the causal chain: decision -> assignment removed
    // -> account deactivated downstream.
    let log = ctx
        .send(Method::GET, "/api/v1/audit?limit=1000", &admin, None)
        .await
        .expect(200)
        .body;
    let entries = log["entries"].as_array().unwrap();
    let find = |action: &str, target: &str| {
        entries
            .iter()
            .find(|e| e["action"] == action && e["targetId"] == target)
            .unwrap_or_else(|| panic!("no {action} of {target}: {log}"))
    };
    let decision = find("review.decide", &bob_item.to_string());
    assert_eq!(decision["after"]["comment"], "left the sales team");
    assert_eq!(decision["before"]["decision"], Value::Null);
    let removal = find("assignment.delete", &bob_assignment.to_string());
    assert_eq!(removal["cause"], decision["seq"]);
    assert_eq!(removal["actor"], json!(format!("token:{reviewer_id}")));
    let deprovisioned = find("provisioning.deprovisioned", &format!("{crm}/{bob}"));
    assert_eq!(deprovisioned["actor"], "system:engine");
    // ... caused by the removal, which the decision caused.
    assert_eq!(deprovisioned["cause"], removal["seq"], "{log}");
    assert_eq!(deprovisioned["subject"], json!(bob));
    // Everything about bob, in order.
    let about_bob = ctx
        .send(
            Method::GET,
            &format!("/api/v1/audit?subject={bob}"),
            &admin,
            None,
        )
        .await
        .expect(200)
        .body;
    let actions: Vec<&str> = about_bob["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "user.create",
            "assignment.create",
            "provisioning.provisioned",
            "review.decide",
            "assignment.delete",
            "provisioning.deprovisioned"
        ],
        "{about_bob}"
    );
    assert_eq!(deprovisioned["after"]["status"], "deprovisioned");
    assert!(find("review.create", &id.to_string())["after"]["name"] == "CRM Q4");
    let v = ctx
        .send(Method::GET, "/api/v1/audit/verify", &admin, None)
        .await
        .expect(200)
        .body;
    assert_eq!(v["valid"], true, "{v}");
});

backend_test!(
    unreviewed_items_follow_the_default_at_the_due_date,
    |ctx| async move {
        let (admin, _) = token(&ctx, &[Scope::Admin]);
        let (scim, _) = token(&ctx, &[Scope::Write]);
        let hr = app(&ctx, &admin, "hr", "http://127.0.0.1:9/scim/v2", "x").await;
        let wiki = app(&ctx, &admin, "wiki", "http://127.0.0.1:9/scim/v2", "x").await;
        let carol = user(&ctx, &scim, "carol").await;
        let dave = user(&ctx, &scim, "dave").await;
        let erin = user(&ctx, &scim, "erin").await;
        assign(&ctx, &admin, hr, &carol).await;
        assign(&ctx, &admin, wiki, &carol).await;
        assign(&ctx, &admin, hr, &dave).await;
        let erin_hr = assign(&ctx, &admin, hr, &erin).await;
        // A group scope covers the group's direct members only.
        let team = ctx
            .create(
                "/scim/v2/Groups",
                &scim,
                json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                   "displayName": "team", "members": [{"value": carol}, {"value": dave}]}),
            )
            .await
            .id();
        let by_group = ctx
            .create(
                REVIEWS,
                &admin,
                json!({"name": "team", "scope": {"type": "group", "id": team},
                   "dueAt": due_in(86400)}),
            )
            .await
            .body;
        assert_eq!(by_group["progress"]["total"], 3, "{by_group}");
        assert_eq!(by_group["defaultDecision"], "keep");

        // Everyone, revoking by default, due in two seconds.
        let all = ctx
            .create(
                REVIEWS,
                &admin,
                json!({"name": "everyone", "scope": {"type": "all"},
                   "dueAt": due_in(2), "defaultDecision": "revoke"}),
            )
            .await
            .body;
        let id = all["id"].as_i64().unwrap();
        assert_eq!(all["progress"]["total"], 4);
        let items = ctx
            .send(Method::GET, &format!("{REVIEWS}/{id}/items"), &admin, None)
            .await
            .expect(200)
            .body;
        let erin_item = item_of(&items, "erin")["id"].as_i64().unwrap();
        // No reviewers listed: admin tokens decide.
        ctx.send(
            Method::POST,
            &format!("{REVIEWS}/{id}/items/{erin_item}/decision"),
            &admin,
            Some(&json!({"decision": "keep", "comment": "still on call"})),
        )
        .await
        .expect(200);
        let pending = ctx
            .send(
                Method::GET,
                &format!("{REVIEWS}/{id}/items?pending=true"),
                &admin,
                None,
            )
            .await
            .expect(200)
            .body;
        assert_eq!(pending["totalResults"], 3);

        // Not due yet: nothing happens.
        assert_eq!(ctx.store.close_due(chrono::Utc::now()).unwrap(), 0);
        // It falls due while no scheduler looks (the test server's looks every
        // 30 s); a scheduler started afterwards, as after a restart, closes it
        // at its first look.
        tokio::time::sleep(Duration::from_millis(2100)).await;
        let storage: Arc<dyn Storage> = Arc::new(ctx.store.clone());
        let scheduler = tokio::spawn(scim_server::api::reviews::run_scheduler(
            storage,
            Duration::from_millis(100),
        ));
        let mut closed = Value::Null;
        for _ in 0..50 {
            closed = ctx
                .send(Method::GET, &format!("{REVIEWS}/{id}"), &admin, None)
                .await
                .expect(200)
                .body;
            if closed["status"] == "closed" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        scheduler.abort();
        assert_eq!(closed["status"], "closed", "{closed}");
        assert_eq!(
            closed["progress"],
            json!({"total": 4, "kept": 1, "revoked": 3, "pending": 0})
        );
        let items = ctx
            .send(Method::GET, &format!("{REVIEWS}/{id}/items"), &admin, None)
            .await
            .expect(200)
            .body;
        let dave_item = item_of(&items, "dave");
        assert_eq!(dave_item["decidedBy"], "system:reviews");
        assert_eq!(dave_item["outcome"], "revoked");
        assert!(dave_item["comment"].as_str().unwrap().contains("due date"));
        // Only erin's kept access remains.
        let left = ctx
            .send(Method::GET, "/api/v1/assignments", &admin, None)
            .await
            .expect(200)
            .body;
        let ids: Vec<i64> = left["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_i64().unwrap())
            .collect();
        assert_eq!(ids, [erin_hr]);

        // The other campaign's items now point at removed access.
        let group_id = by_group["id"].as_i64().unwrap();
        let closed_group = ctx
            .send(
                Method::POST,
                &format!("{REVIEWS}/{group_id}/close"),
                &admin,
                None,
            )
            .await
            .expect(200)
            .body;
        assert_eq!(closed_group["progress"]["kept"], 3);
        ctx.send(
            Method::POST,
            &format!("{REVIEWS}/{group_id}/close"),
            &admin,
            None,
        )
        .await
        .expect(409);
        ctx.send(
            Method::POST,
            &format!("{REVIEWS}/{id}/items/{erin_item}/decision"),
            &admin,
            Some(&json!({"decision": "keep"})),
        )
        .await
        .expect(409);
    }
);

backend_test!(review_requests_are_checked, |ctx| async move {
    let (admin, _) = token(&ctx, &[Scope::Admin]);
    let (scim, _) = token(&ctx, &[Scope::Write]);
    let good = json!({"name": "x", "scope": {"type": "all"}, "dueAt": due_in(60)});
    ctx.send(Method::POST, REVIEWS, &scim, Some(&good))
        .await
        .expect(403);
    ctx.send(Method::GET, REVIEWS, &scim, None)
        .await
        .expect(403);
    for (field, bad) in [
        ("scope", json!({"type": "application", "id": 42})),
        ("scope", json!({"type": "group", "id": "no-such-group"})),
        ("scope", json!({"type": "everyone"})),
        ("dueAt", json!("2020-01-01T00:00:00Z")),
        ("dueAt", json!(17)),
        ("defaultDecision", json!("delete")),
        ("reviewers", json!(["bob"])),
        ("name", json!("")),
    ] {
        let mut body = good.clone();
        body[field] = bad.clone();
        let res = ctx
            .send(Method::POST, REVIEWS, &admin, Some(&body))
            .await
            .expect(400);
        assert!(res.body["detail"].is_string(), "{field}: {}", res.body);
    }
    ctx.send(Method::GET, &format!("{REVIEWS}/77"), &admin, None)
        .await
        .expect(404);
    ctx.send(Method::POST, &format!("{REVIEWS}/77/close"), &admin, None)
        .await
        .expect(404);
    ctx.send(Method::DELETE, REVIEWS, &admin, None)
        .await
        .expect(405);
    // An empty campaign is fine; other tenants do not see it.
    let c = ctx.create(REVIEWS, &admin, good).await.body;
    assert_eq!(c["progress"]["total"], 0);
    let other = ctx.token("other", &[Scope::Admin]);
    ctx.send(Method::GET, &format!("{REVIEWS}/{}", c["id"]), &other, None)
        .await
        .expect(404);
    let list = ctx
        .send(Method::GET, REVIEWS, &admin, None)
        .await
        .expect(200)
        .body;
    assert_eq!(list["totalResults"], 1);
});
