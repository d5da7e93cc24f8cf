//! Application-side roles of assignments reach the downstream account as
//! its `roles`: added and removed by PATCH as grants come, change their
//! role, expire and go, merged with the user's own roles where the mapping
//! sends them; a rule's playbook that names another role changes the
//! account too; reconciliation judges only the roles the engine grants.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::groups::USER;
use crate::harness::Ctx;
use crate::lifecycle_jml::{World, api, engine, lifecycle};

/// Runs playbook `id` on `user` by hand; answers the run.
async fn run(ctx: &Ctx, w: &World, id: &Value, user: &str) -> Value {
    api(
        ctx,
        w,
        Method::POST,
        &format!("/api/v1/playbooks/{id}/runs"),
        Some(json!({"users": [user]})),
    )
    .await
    .expect(201)
    .body
}

/// The method and request of the newest exchange with `app` about `user`.
async fn last_sent(ctx: &Ctx, w: &World, app: &str, user: &str) -> (String, String) {
    let log = api(
        ctx,
        w,
        Method::GET,
        &format!(
            "/api/v1/provisioning/log?application={}&user={user}",
            w.app(app)
        ),
        None,
    )
    .await
    .expect(200)
    .body;
    let last = &log["items"][0];
    (
        last["method"].as_str().unwrap_or_default().to_owned(),
        last["request"].to_string(),
    )
}

backend_test!(
    assignment_roles_reach_the_downstream_account,
    |ctx| async move {
        let w = World::new(&ctx).await;
        let lc = lifecycle(&ctx);
        let worker = engine(&ctx);
        // Tableau's mapping also sends the user's own roles; Slack's does not.
        api(
            &ctx,
            &w,
            Method::PATCH,
            &format!("/api/v1/applications/{}", w.app("Tableau")),
            Some(
                json!({"mapping": {"userName": "userName", "displayName": "displayName",
                                "active": "active", "externalId": "id", "roles": "roles"}}),
            ),
        )
        .await
        .expect(200);
        let rita = ctx
            .create(
                "/scim/v2/Users",
                &w.hr,
                json!({"schemas": [USER], "userName": "rita", "active": true,
                   "roles": [{"value": "auditor"}]}),
            )
            .await
            .id();

        // A manual grant has no role: the account holds the user's own.
        ctx.create(
            "/api/v1/assignments",
            &w.admin,
            json!({"applicationId": w.app("Tableau"), "resourceId": rita}),
        )
        .await;
        worker.drain(5).await.unwrap();
        assert_eq!(w.roles("Tableau", "rita").await, ["auditor"]);

        // A playbook grants a role: added by a PATCH of the same account.
        let editors = ctx
            .create(
                "/api/v1/playbooks",
                &w.admin,
                json!({"name": "Tableau editors", "actions": [
                {"type": "assignApplication", "application": "Tableau", "role": "editor"},
                {"type": "assignApplication", "application": "Slack", "role": "member"}]}),
            )
            .await
            .body;
        run(&ctx, &w, &editors["id"], &rita).await;
        let r = worker.drain(5).await.unwrap();
        assert_eq!((r.sent, r.failed), (2, 0), "{r:?}");
        assert_eq!(w.roles("Tableau", "rita").await, ["auditor", "editor"]);
        let (method, request) = last_sent(&ctx, &w, "Tableau", &rita).await;
        assert_eq!(method, "PATCH");
        assert!(
            request.contains("editor") && !request.contains("userName"),
            "{request}"
        );
        // Slack does not map the user's own roles: only the granted one.
        let slack = w.account_doc("Slack", "rita").await.unwrap();
        assert_eq!(slack["roles"], json!([{"value": "member"}]), "{slack}");

        // Temporary access with a role: added, then removed when it ends,
        // while the other grants keep the account.
        let viewers = ctx
            .create(
                "/api/v1/playbooks",
                &w.admin,
                json!({"name": "Tableau viewers, briefly", "actions": [
                {"type": "assignApplication", "application": "Tableau", "role": "viewer",
                 "validForSeconds": 2}]}),
            )
            .await
            .body;
        run(&ctx, &w, &viewers["id"], &rita).await;
        worker.drain(5).await.unwrap();
        assert_eq!(
            w.roles("Tableau", "rita").await,
            ["auditor", "editor", "viewer"]
        );
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert_eq!(lc.drain(5).await.unwrap().expired, 1);
        worker.drain(5).await.unwrap();
        assert_eq!(w.roles("Tableau", "rita").await, ["auditor", "editor"]);
        assert_eq!(w.account("Tableau", "rita").await, Some(true));
        let (method, request) = last_sent(&ctx, &w, "Tableau", &rita).await;
        assert_eq!(
            (method.as_str(), request.contains("viewer")),
            ("PATCH", true)
        );

        // The playbook names another role and runs again: the assignment's
        // role changes, and the account's with it.
        let changed = json!({"name": "Tableau editors", "actions": [
        {"type": "assignApplication", "application": "Tableau", "role": "publisher"},
        {"type": "assignApplication", "application": "Slack", "role": "member"}]});
        api(
            &ctx,
            &w,
            Method::PUT,
            &format!("/api/v1/playbooks/{}", editors["id"]),
            Some(changed),
        )
        .await
        .expect(200);
        let again = run(&ctx, &w, &editors["id"], &rita).await;
        let statuses: Vec<&Value> = again["results"][0]["actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| &a["status"])
            .collect();
        assert_eq!(statuses, [&json!("roleChanged"), &json!("unchanged")]);
        let r = worker.drain(5).await.unwrap();
        assert_eq!((r.sent, r.failed), (1, 0), "only Tableau changes: {r:?}");
        assert_eq!(w.roles("Tableau", "rita").await, ["auditor", "publisher"]);

        // The playbook's grant goes: its role goes, the manual grant keeps
        // the account active with the user's own role.
        let list = api(
            &ctx,
            &w,
            Method::GET,
            &format!("/api/v1/assignments?user={rita}"),
            None,
        )
        .await
        .expect(200)
        .body;
        let source = format!("playbook:{}", editors["id"]);
        let grant = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["applicationId"] == json!(w.app("Tableau")) && a["source"] == json!(source))
            .unwrap()["id"]
            .clone();
        api(
            &ctx,
            &w,
            Method::DELETE,
            &format!("/api/v1/assignments/{grant}"),
            None,
        )
        .await
        .expect(204);
        worker.drain(5).await.unwrap();
        assert_eq!(w.roles("Tableau", "rita").await, ["auditor"]);
        assert_eq!(w.account("Tableau", "rita").await, Some(true));
        assert_eq!(worker.drain(5).await.unwrap().sent, 0, "settled");
    }
);

backend_test!(
    a_rules_playbook_naming_another_role_changes_the_account,
    |ctx| async move {
        let w = World::new(&ctx).await;
        let lc = lifecycle(&ctx);
        let worker = engine(&ctx);
        let analysts = ctx
            .create(
                "/api/v1/playbooks",
                &w.admin,
                json!({"name": "Analysts", "actions": [
                {"type": "assignApplication", "application": "Tableau", "role": "analyst"}]}),
            )
            .await
            .body;
        ctx.create(
            "/api/v1/rules",
            &w.admin,
            json!({"name": "analysts", "event": "mover", "filter": "title eq \"Analyst\"",
               "playbooks": [analysts["id"]]}),
        )
        .await;
        let rob = ctx
            .create(
                "/scim/v2/Users",
                &w.hr,
                json!({"schemas": [USER], "userName": "rob", "active": true, "title": "Analyst"}),
            )
            .await
            .id();
        lc.drain(5).await.unwrap();
        worker.drain(5).await.unwrap();
        let account = w.account_doc("Tableau", "rob").await.unwrap();
        assert_eq!(account["roles"], json!([{"value": "analyst"}]), "{account}");

        // Saving the playbook re-evaluates everyone: the rule's assignment
        // takes the new role, and the account follows.
        api(
            &ctx,
            &w,
            Method::PUT,
            &format!("/api/v1/playbooks/{}", analysts["id"]),
            Some(json!({"name": "Analysts", "actions": [
            {"type": "assignApplication", "application": "Tableau", "role": "explorer"}]})),
        )
        .await
        .expect(200);
        // The preview shows the change before the evaluator makes it.
        let same_title = json!({"schemas": [crate::groups::PATCH_OP], "Operations": [
            {"op": "replace", "path": "title", "value": "Analyst"}]});
        let preview = api(
            &ctx,
            &w,
            Method::POST,
            &format!("/api/v1/users/{rob}/preview"),
            Some(same_title),
        )
        .await
        .expect(200)
        .body;
        let change = &preview["decision"]["rolesChanged"][0];
        assert_eq!(
            (&change["from"], &change["role"]),
            (&json!("analyst"), &json!("explorer")),
            "{preview}"
        );
        lc.drain(5).await.unwrap();
        let r = worker.drain(5).await.unwrap();
        assert_eq!((r.sent, r.failed), (1, 0), "{r:?}");
        assert_eq!(w.roles("Tableau", "rob").await, ["explorer"]);
        let access = api(
            &ctx,
            &w,
            Method::GET,
            &format!("/api/v1/users/{rob}/access"),
            None,
        )
        .await
        .expect(200)
        .body;
        assert_eq!(
            access["applications"][0]["grants"][0]["role"], "explorer",
            "{access}"
        );
        let events = api(
            &ctx,
            &w,
            Method::GET,
            &format!("/api/v1/users/{rob}/lifecycle"),
            None,
        )
        .await
        .expect(200)
        .body;
        assert_eq!(
            events["items"][0]["detail"]["rolesChanged"][0]["role"], "explorer",
            "{events}"
        );
    }
);

backend_test!(
    reconcile_judges_only_the_roles_it_grants,
    |ctx| async move {
        let w = World::new(&ctx).await;
        let worker = engine(&ctx);
        let tableau = w.app("Tableau");
        let una = ctx
            .create(
                "/scim/v2/Users",
                &w.hr,
                json!({"schemas": [USER], "userName": "una", "active": true}),
            )
            .await
            .id();
        let viv = ctx
            .create(
                "/scim/v2/Users",
                &w.hr,
                json!({"schemas": [USER], "userName": "viv", "active": true}),
            )
            .await
            .id();
        ctx.create(
            "/api/v1/assignments",
            &w.admin,
            json!({"applicationId": tableau, "resourceId": una}),
        )
        .await;
        let editors = ctx
            .create(
                "/api/v1/playbooks",
                &w.admin,
                json!({"name": "Tableau editors", "actions": [
                {"type": "assignApplication", "application": "Tableau", "role": "editor"}]}),
            )
            .await
            .body;
        run(&ctx, &w, &editors["id"], &viv).await;
        worker.drain(5).await.unwrap();

        // At the application: Una gets a role of its own, Viv loses ours.
        let token = &w
            .down_tokens
            .iter()
            .find(|(n, _)| n == "Tableau")
            .unwrap()
            .1;
        for (name, op) in [
            (
                "una",
                json!({"op": "add", "path": "roles", "value": [{"value": "guest"}]}),
            ),
            ("viv", json!({"op": "remove", "path": "roles"})),
        ] {
            let id = w.account_doc("Tableau", name).await.unwrap()["id"].clone();
            w.down
                .send(
                    Method::PATCH,
                    &format!("/scim/v2/Users/{}", id.as_str().unwrap()),
                    token,
                    Some(&json!({"schemas": [crate::groups::PATCH_OP], "Operations": [op]})),
                )
                .await
                .expect(200);
        }
        let report = api(
            &ctx,
            &w,
            Method::POST,
            &format!("/api/v1/applications/{tableau}/reconcile"),
            Some(json!({"repair": true})),
        )
        .await
        .expect(200)
        .body;
        assert_eq!(report["counts"]["drifted"], 1, "{report}");
        let run = api(
            &ctx,
            &w,
            Method::GET,
            &format!(
                "/api/v1/applications/{tableau}/reconcile/runs/{}?kind=drift",
                report["runId"]
            ),
            None,
        )
        .await
        .expect(200)
        .body;
        let drift = &run["items"][0];
        assert_eq!(drift["resourceId"], json!(viv), "{run}");
        assert!(
            drift["detail"].as_str().unwrap().contains("roles"),
            "{drift}"
        );
        worker.drain(5).await.unwrap();
        assert_eq!(w.roles("Tableau", "viv").await, ["editor"]);
        assert_eq!(w.roles("Tableau", "una").await, ["guest"], "left alone");
        assert_eq!(worker.drain(5).await.unwrap().sent, 0, "settled");
    }
);
