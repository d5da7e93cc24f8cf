//! The effective-access model end to end (issue 14 observations 1 and 7,
//! issue 20 observation 7): birthright access follows the rules that match
//! now, whatever event brought the user there; a leaver's grants are
//! suspended, not forgotten; a leaver rule's grace keeps access working
//! until it ends; access through nested groups reaches the engine; the
//! views never say `provisioned` for an account the engine deactivated.

use reqwest::Method;
use serde_json::{Value, json};

use crate::groups::{GROUP, PATCH_OP, USER};
use crate::lifecycle_jml::{ENTERPRISE, World, api, engine, lifecycle};

async fn set(ctx: &crate::harness::Ctx, w: &World, id: &str, path: &str, value: Value) {
    ctx.send(
        Method::PATCH,
        &format!("/scim/v2/Users/{id}"),
        &w.hr,
        Some(&json!({"schemas": [PATCH_OP], "Operations": [
            {"op": "replace", "path": path, "value": value}]})),
    )
    .await
    .expect(200);
}

async fn access(ctx: &crate::harness::Ctx, w: &World, id: &str) -> Value {
    api(
        ctx,
        w,
        Method::GET,
        &format!("/api/v1/users/{id}/access"),
        None,
    )
    .await
    .expect(200)
    .body
}

fn app_entry<'a>(access: &'a Value, name: &str) -> &'a Value {
    access["applications"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["application"] == json!(name))
        .unwrap_or_else(|| panic!("{name} in {access}"))
}

const FIVE: [&str; 5] = [
    "Slack",
    "Trello",
    "Mailchimp",
    "Google Workspace",
    "Semrush",
];

// Observation 1: a joiner rule's grants are birthright. The Marketing
// Manager moved to another role and back ends with the five applications
// (it ended with none when joiner rules held only from a joiner event).
backend_test!(
    a_manager_moved_away_and_back_gets_the_role_access_again,
    |ctx| async move {
        let w = World::new(&ctx).await;
        let lc = lifecycle(&ctx);
        let worker = engine(&ctx);
        ctx.create(
            "/api/v1/playbooks",
            &w.admin,
            serde_json::from_str(include_str!(
                "../../../../examples/playbooks/marketing-manager.json"
            ))
            .unwrap(),
        )
        .await;
        ctx.create(
            "/api/v1/playbooks",
            &w.admin,
            json!({"name": "analysts", "actions": [
                {"type": "assignApplication", "application": "Tableau"}]}),
        )
        .await;
        ctx.create(
            "/api/v1/rules",
            &w.admin,
            json!({"name": "marketing managers", "event": "joiner",
                   "filter": format!("{ENTERPRISE}:department eq \"Marketing\" and title eq \"Manager\""),
                   "playbooks": ["Marketing Manager"]}),
        )
        .await;
        ctx.create(
            "/api/v1/rules",
            &w.admin,
            json!({"name": "analysts", "event": "joiner",
                   "filter": "title eq \"Analyst\"", "playbooks": ["analysts"]}),
        )
        .await;
        let jane = ctx
            .create(
                "/scim/v2/Users",
                &w.hr,
                json!({"schemas": [USER, ENTERPRISE], "userName": "jane", "active": true,
                       "title": "Manager", ENTERPRISE: {"department": "Marketing"}}),
            )
            .await
            .id();
        lc.drain(5).await.unwrap();
        worker.drain(10).await.unwrap();
        assert_eq!(w.active_in("jane").await, FIVE);

        // Moved into another role (a joiner rule too): its access comes,
        // the manager's goes.
        set(&ctx, &w, &jane, "title", json!("Analyst")).await;
        lc.drain(5).await.unwrap();
        worker.drain(10).await.unwrap();
        assert_eq!(w.active_in("jane").await, ["Tableau"]);

        // And back: the five applications again, Tableau gone.
        set(&ctx, &w, &jane, "title", json!("Manager")).await;
        lc.drain(5).await.unwrap();
        worker.drain(10).await.unwrap();
        assert_eq!(w.active_in("jane").await, FIVE);
        let view = access(&ctx, &w, &jane).await;
        for name in FIVE {
            let a = app_entry(&view, name);
            assert_eq!(a["state"], "provisioned", "{a}");
            assert_eq!(a["grants"][0]["why"], "rule", "{a}");
        }
        assert_eq!(app_entry(&view, "Tableau")["state"], "revoked", "{view}");
    }
);

// Observation 7: a leaver whose only access was a group. The engine
// deactivates the account; the view must not say `provisioned`.
backend_test!(
    a_leaver_whose_only_access_is_a_group_is_shown_suspended,
    |ctx| async move {
        let w = World::new(&ctx).await;
        let lc = lifecycle(&ctx);
        let worker = engine(&ctx);
        let bob = ctx
            .create(
                "/scim/v2/Users",
                &w.hr,
                json!({"schemas": [USER], "userName": "bob", "active": true}),
            )
            .await
            .id();
        let group = ctx
            .create(
                "/scim/v2/Groups",
                &w.hr,
                json!({"schemas": [GROUP], "displayName": "Support",
                       "members": [{"value": bob}]}),
            )
            .await
            .id();
        ctx.create(
            "/api/v1/assignments",
            &w.admin,
            json!({"applicationId": w.app("Slack"), "resourceId": group}),
        )
        .await;
        lc.drain(5).await.unwrap();
        worker.drain(10).await.unwrap();
        assert_eq!(w.account("Slack", "bob").await, Some(true));
        let view = access(&ctx, &w, &bob).await;
        let slack = app_entry(&view, "Slack");
        assert_eq!(slack["state"], "provisioned", "{view}");
        assert_eq!(slack["grants"][0]["why"], "group", "{view}");
        assert_eq!(slack["grants"][0]["groupName"], "Support", "{view}");

        set(&ctx, &w, &bob, "active", json!(false)).await;
        lc.drain(5).await.unwrap();
        worker.drain(10).await.unwrap();
        assert_eq!(w.account("Slack", "bob").await, Some(false));
        let view = access(&ctx, &w, &bob).await;
        let slack = app_entry(&view, "Slack");
        assert_eq!(slack["provisioningStatus"], "deprovisioned", "{view}");
        assert_eq!(slack["state"], "suspended", "{view}");
        assert_eq!(slack["granted"], false, "{view}");
        let app_view = api(
            &ctx,
            &w,
            Method::GET,
            &format!("/api/v1/applications/{}/access", w.app("Slack")),
            None,
        )
        .await
        .expect(200)
        .body;
        assert_eq!(app_view["users"][0]["state"], "suspended", "{app_view}");

        // Back: the group still grants it.
        set(&ctx, &w, &bob, "active", json!(true)).await;
        lc.drain(5).await.unwrap();
        worker.drain(10).await.unwrap();
        assert_eq!(w.account("Slack", "bob").await, Some(true));
    }
);

// Issue 20 observation 7: `active=false` then `active=true` restores the
// manual and playbook-run grants (they used to be deleted).
backend_test!(
    a_reactivated_user_gets_manual_and_playbook_grants_back,
    |ctx| async move {
        let w = World::new(&ctx).await;
        let lc = lifecycle(&ctx);
        let worker = engine(&ctx);
        let kim = ctx
            .create(
                "/scim/v2/Users",
                &w.hr,
                json!({"schemas": [USER], "userName": "kim", "active": true}),
            )
            .await
            .id();
        ctx.create(
            "/api/v1/assignments",
            &w.admin,
            json!({"applicationId": w.app("Trello"), "resourceId": kim}),
        )
        .await;
        let pb = ctx
            .create(
                "/api/v1/playbooks",
                &w.admin,
                json!({"name": "tools", "actions": [
                    {"type": "assignApplication", "application": "Semrush"}]}),
            )
            .await
            .body["id"]
            .as_i64()
            .unwrap();
        api(
            &ctx,
            &w,
            Method::POST,
            &format!("/api/v1/playbooks/{pb}/runs"),
            Some(json!({"users": [kim]})),
        )
        .await
        .expect(201);
        lc.drain(5).await.unwrap();
        worker.drain(10).await.unwrap();
        assert_eq!(w.active_in("kim").await, ["Trello", "Semrush"]);

        set(&ctx, &w, &kim, "active", json!(false)).await;
        lc.drain(5).await.unwrap();
        worker.drain(10).await.unwrap();
        assert!(w.active_in("kim").await.is_empty());
        let list = api(
            &ctx,
            &w,
            Method::GET,
            &format!("/api/v1/assignments?user={kim}"),
            None,
        )
        .await
        .expect(200)
        .body;
        assert_eq!(list["totalResults"], 2, "suspended, not forgotten: {list}");

        set(&ctx, &w, &kim, "active", json!(true)).await;
        lc.drain(5).await.unwrap();
        worker.drain(10).await.unwrap();
        assert_eq!(w.active_in("kim").await, ["Trello", "Semrush"]);
    }
);

// Observation 7: a leaver rule's `revokeAfterSeconds` is a grace period.
// The account keeps working through it (it was deactivated at once, before
// the evaluator had even looked), and is deactivated when it ends.
backend_test!(
    a_leaver_grace_keeps_access_until_it_ends,
    |ctx| async move {
        let w = World::new(&ctx).await;
        let lc = lifecycle(&ctx);
        let worker = engine(&ctx);
        ctx.create(
            "/api/v1/rules",
            &w.admin,
            json!({"name": "leavers keep access a moment", "event": "leaver",
                   "filter": "userName pr", "revokeAfterSeconds": 2}),
        )
        .await;
        let lea = ctx
            .create(
                "/scim/v2/Users",
                &w.hr,
                json!({"schemas": [USER], "userName": "lea", "active": true}),
            )
            .await
            .id();
        ctx.create(
            "/api/v1/assignments",
            &w.admin,
            json!({"applicationId": w.app("Slack"), "resourceId": lea}),
        )
        .await;
        lc.drain(5).await.unwrap();
        worker.drain(10).await.unwrap();
        assert_eq!(w.account("Slack", "lea").await, Some(true));

        set(&ctx, &w, &lea, "active", json!(false)).await;
        // The engine runs before the evaluator: it must not deactivate.
        worker.drain(10).await.unwrap();
        assert_eq!(w.account("Slack", "lea").await, Some(true), "pending");
        lc.drain(5).await.unwrap();
        worker.drain(10).await.unwrap();
        assert_eq!(w.account("Slack", "lea").await, Some(true), "grace");
        let view = access(&ctx, &w, &lea).await;
        let slack = app_entry(&view, "Slack");
        assert_eq!(slack["entitlement"], "grace", "{view}");
        assert_eq!(slack["state"], "provisioned", "{view}");
        assert!(slack["graceUntil"].is_string(), "{view}");
        assert_eq!(slack["expiresAt"], slack["graceUntil"], "{view}");

        // Past the grace (bounded wait): the schedule tells the engine.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            lc.drain(5).await.unwrap();
            worker.drain(10).await.unwrap();
            if w.account("Slack", "lea").await == Some(false) {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "grace never ended");
        }
        let view = access(&ctx, &w, &lea).await;
        let slack = app_entry(&view, "Slack");
        assert_eq!(slack["state"], "suspended", "{view}");
        assert_eq!(slack["graceUntil"], Value::Null, "{view}");
    }
);

// Nested groups: access granted to a parent group reaches the members of
// its member groups, and leaves with them.
backend_test!(
    access_through_nested_groups_reaches_the_engine,
    |ctx| async move {
        let w = World::new(&ctx).await;
        let worker = engine(&ctx);
        let lc = lifecycle(&ctx);
        let ned = ctx
            .create(
                "/scim/v2/Users",
                &w.hr,
                json!({"schemas": [USER], "userName": "ned", "active": true}),
            )
            .await
            .id();
        let emea = ctx
            .create(
                "/scim/v2/Groups",
                &w.hr,
                json!({"schemas": [GROUP], "displayName": "EMEA Sales",
                       "members": [{"value": ned}]}),
            )
            .await
            .id();
        let sales = ctx
            .create(
                "/scim/v2/Groups",
                &w.hr,
                json!({"schemas": [GROUP], "displayName": "Sales"}),
            )
            .await
            .id();
        ctx.create(
            "/api/v1/assignments",
            &w.admin,
            json!({"applicationId": w.app("Semrush"), "resourceId": sales}),
        )
        .await;
        lc.drain(5).await.unwrap();
        worker.drain(10).await.unwrap();
        assert_eq!(w.account("Semrush", "ned").await, None);

        // EMEA Sales joins Sales: ned gets the account.
        ctx.send(
            Method::PATCH,
            &format!("/scim/v2/Groups/{sales}"),
            &w.hr,
            Some(&json!({"schemas": [PATCH_OP], "Operations": [
                {"op": "add", "path": "members", "value": [{"value": emea}]}]})),
        )
        .await
        .expect(200);
        lc.drain(5).await.unwrap();
        worker.drain(10).await.unwrap();
        assert_eq!(w.account("Semrush", "ned").await, Some(true));
        let view = access(&ctx, &w, &ned).await;
        let semrush = app_entry(&view, "Semrush");
        assert_eq!(semrush["grants"][0]["groupName"], "Sales", "{view}");
        assert_eq!(
            semrush["grants"][0]["groupPath"],
            json!(["EMEA Sales", "Sales"]),
            "{view}"
        );

        // And leaves: the account is deactivated.
        ctx.send(
            Method::PATCH,
            &format!("/scim/v2/Groups/{sales}"),
            &w.hr,
            Some(&json!({"schemas": [PATCH_OP], "Operations": [
                {"op": "remove", "path": format!("members[value eq \"{emea}\"]")}]})),
        )
        .await
        .expect(200);
        lc.drain(5).await.unwrap();
        worker.drain(10).await.unwrap();
        assert_eq!(w.account("Semrush", "ned").await, Some(false));
    }
);

// Observation 4: a reviewer's revoke of access a rule grants sticks (an
// exclusion), through the next unrelated HR edit; so does an
// administrator's `removeAccess` run. Exclusions are listed, block a manual
// grant (409 naming them), and lifting one brings the access back.
backend_test!(
    revokes_of_rule_granted_access_stick_as_exclusions,
    |ctx| async move {
        use scim_server::store::{TenantStore, TokenStore};
        use scim_server::tokens::{Scope, Scopes};
        let w = World::new(&ctx).await;
        let lc = lifecycle(&ctx);
        let worker = engine(&ctx);
        let tenant = ctx.store.ensure_tenant("acme").unwrap();
        let reviewer = ctx
            .store
            .create_token(tenant.id, "reviewer", Scopes::of(&[Scope::Read]))
            .unwrap();
        ctx.create(
            "/api/v1/playbooks",
            &w.admin,
            json!({"name": "sales", "actions": [
                {"type": "assignApplication", "application": "Slack"}]}),
        )
        .await;
        ctx.create(
            "/api/v1/rules",
            &w.admin,
            json!({"name": "sales", "event": "mover",
                   "filter": format!("{ENTERPRISE}:department eq \"Sales\""),
                   "playbooks": ["sales"]}),
        )
        .await;
        let sam = ctx
            .create(
                "/scim/v2/Users",
                &w.hr,
                json!({"schemas": [USER, ENTERPRISE], "userName": "sam", "active": true,
                       ENTERPRISE: {"department": "Sales"}}),
            )
            .await
            .id();
        lc.drain(5).await.unwrap();
        worker.drain(10).await.unwrap();
        assert_eq!(w.account("Slack", "sam").await, Some(true));

        // The review revokes it.
        let campaign = ctx
            .create(
                "/api/v1/reviews",
                &w.admin,
                json!({"name": "Slack", "scope": {"type": "application", "id": w.app("Slack")},
                       "reviewers": [format!("token:{}", reviewer.info.id)],
                       "dueAt": (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339(),
                       "defaultDecision": "keep"}),
            )
            .await
            .body;
        let cid = campaign["id"].as_i64().unwrap();
        let items = ctx
            .send(
                Method::GET,
                &format!("/api/v1/reviews/{cid}/items"),
                &reviewer.secret,
                None,
            )
            .await
            .expect(200)
            .body;
        let item = items["items"][0]["id"].as_i64().unwrap();
        let decided = ctx
            .send(
                Method::POST,
                &format!("/api/v1/reviews/{cid}/items/{item}/decision"),
                &reviewer.secret,
                Some(&json!({"decision": "revoke", "comment": "left the deal desk"})),
            )
            .await
            .expect(200)
            .body;
        assert_eq!(decided["outcome"], "excluded", "{decided}");
        lc.drain(5).await.unwrap();
        worker.drain(10).await.unwrap();
        assert_eq!(w.account("Slack", "sam").await, Some(false));

        // An unrelated HR edit: the rule still matches, the exclusion wins.
        set(&ctx, &w, &sam, "title", json!("Account Executive")).await;
        lc.drain(5).await.unwrap();
        worker.drain(10).await.unwrap();
        assert_eq!(w.account("Slack", "sam").await, Some(false), "it sticks");
        let view = access(&ctx, &w, &sam).await;
        let slack = app_entry(&view, "Slack");
        assert_eq!(slack["state"], "excluded", "{view}");
        assert_eq!(slack["exclusion"]["source"], json!(format!("review:{cid}")));
        assert_eq!(
            slack["grants"][0]["why"], "rule",
            "the reason is still shown"
        );

        let list = api(
            &ctx,
            &w,
            Method::GET,
            &format!("/api/v1/exclusions?user={sam}"),
            None,
        )
        .await
        .expect(200)
        .body;
        assert_eq!(list["totalResults"], 1, "{list}");
        assert_eq!(list["items"][0]["userName"], "sam");
        assert_eq!(list["items"][0]["reason"], "left the deal desk");
        let xid = list["items"][0]["id"].as_i64().unwrap();

        // A manual grant of the excluded pair names the exclusion.
        let refused = api(
            &ctx,
            &w,
            Method::POST,
            "/api/v1/assignments",
            Some(json!({"applicationId": w.app("Slack"), "resourceId": sam})),
        )
        .await
        .expect(409)
        .body;
        assert!(
            refused["detail"]
                .as_str()
                .unwrap()
                .contains(&format!("exclusion {xid}")),
            "{refused}"
        );
        // A second exclusion of the pair, a bad user, a bad body: clear errors.
        api(
            &ctx,
            &w,
            Method::POST,
            "/api/v1/exclusions",
            Some(json!({"applicationId": w.app("Slack"), "userId": sam})),
        )
        .await
        .expect(409);
        api(
            &ctx,
            &w,
            Method::POST,
            "/api/v1/exclusions",
            Some(json!({"applicationId": w.app("Slack"), "userId": "ghost"})),
        )
        .await
        .expect(400);
        api(
            &ctx,
            &w,
            Method::POST,
            "/api/v1/exclusions",
            Some(json!({"applicationId": 99999, "userId": sam})),
        )
        .await
        .expect(400);
        api(
            &ctx,
            &w,
            Method::POST,
            "/api/v1/exclusions",
            Some(json!({"application": 1})),
        )
        .await
        .expect(400);
        api(&ctx, &w, Method::DELETE, "/api/v1/exclusions/99999", None)
            .await
            .expect(404);

        // Lifted: the rule grants it again.
        api(
            &ctx,
            &w,
            Method::DELETE,
            &format!("/api/v1/exclusions/{xid}"),
            None,
        )
        .await
        .expect(204);
        lc.drain(5).await.unwrap();
        worker.drain(10).await.unwrap();
        assert_eq!(w.account("Slack", "sam").await, Some(true));

        // An administrator's removeAccess run: the same, an exclusion.
        let pb = ctx
            .create(
                "/api/v1/playbooks",
                &w.admin,
                json!({"name": "offboard slack", "actions": [
                    {"type": "removeAccess", "application": "Slack"}]}),
            )
            .await
            .body["id"]
            .as_i64()
            .unwrap();
        let run = api(
            &ctx,
            &w,
            Method::POST,
            &format!("/api/v1/playbooks/{pb}/runs"),
            Some(json!({"users": [sam], "reason": "security incident"})),
        )
        .await
        .expect(201)
        .body;
        assert_eq!(
            run["results"][0]["actions"][0]["detail"]["excluded"],
            json!([w.app("Slack")]),
            "{run}"
        );
        lc.drain(5).await.unwrap();
        worker.drain(10).await.unwrap();
        assert_eq!(w.account("Slack", "sam").await, Some(false));
        set(&ctx, &w, &sam, "title", json!("Senior Account Executive")).await;
        lc.drain(5).await.unwrap();
        worker.drain(10).await.unwrap();
        assert_eq!(w.account("Slack", "sam").await, Some(false), "it sticks");
        let list = api(&ctx, &w, Method::GET, "/api/v1/exclusions", None)
            .await
            .expect(200)
            .body;
        assert_eq!(list["items"][0]["source"], "removeAccess", "{list}");
    }
);
