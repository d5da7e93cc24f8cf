//! The lifecycle management API: validation of playbooks and rules (clear
//! 400s, 404s, 409s), manual playbook runs with per-user, per-action
//! results, previews, the blast-radius refusal, and rule-granted group
//! memberships taken back when the rule stops matching.

use reqwest::Method;
use serde_json::{Value, json};

use crate::groups::{GROUP, PATCH_OP, USER};
use crate::harness::scim_error;
use crate::lifecycle_jml::{ENTERPRISE, World, api, engine, lifecycle};

async fn user(ctx: &crate::harness::Ctx, w: &World, name: &str, dept: &str) -> String {
    ctx.create(
        "/scim/v2/Users",
        &w.hr,
        json!({"schemas": [USER, ENTERPRISE], "userName": name, "active": true,
               ENTERPRISE: {"department": dept}}),
    )
    .await
    .id()
}

fn detail(v: &Value) -> String {
    v["detail"].as_str().unwrap_or_default().to_owned()
}

backend_test!(
    bad_playbooks_and_rules_are_refused_clearly,
    |ctx| async move {
        let w = World::new(&ctx).await;
        let post = |path: &'static str, body: Value| {
            let ctx = &ctx;
            let w = &w;
            async move { api(ctx, w, Method::POST, path, Some(body)).await }
        };
        // A rule whose filter does not parse: 400 invalidFilter.
        let r = post(
            "/api/v1/rules",
            json!({"name": "x", "event": "joiner", "filter": "title eq", "playbooks": []}),
        )
        .await
        .expect(400);
        assert_eq!(r.body["scimType"], "invalidFilter", "{}", r.body);
        // An unknown attribute of the schema is invalidFilter too.
        let r = post(
            "/api/v1/rules",
            json!({"name": "x", "event": "joiner", "filter": "shoeSize gt 3"}),
        )
        .await
        .expect(400);
        assert_eq!(r.body["scimType"], "invalidFilter", "{}", r.body);
        let r = post(
            "/api/v1/rules",
            json!({"name": "x", "event": "retiree", "filter": "title pr"}),
        )
        .await
        .expect(400);
        assert!(
            detail(&r.body).contains("joiner, mover or leaver"),
            "{}",
            r.body
        );
        let r = post(
            "/api/v1/rules",
            json!({"name": "x", "event": "joiner", "filter": "title pr", "playbooks": ["nope"]}),
        )
        .await
        .expect(400);
        assert!(detail(&r.body).contains("no playbook"), "{}", r.body);
        let r = post(
            "/api/v1/rules",
            json!({"name": "x", "event": "joiner", "filter": "title pr", "revokeAfterSeconds": 5}),
        )
        .await
        .expect(400);
        assert!(detail(&r.body).contains("leaver rules only"), "{}", r.body);

        // Playbooks: unknown application, unknown action, bad attribute path.
        let r = post(
            "/api/v1/playbooks",
            json!({"name": "p", "actions": [{"type": "assignApplication", "application": "Fax"}]}),
        )
        .await
        .expect(400);
        assert_eq!(
            r.body,
            scim_error(
                400,
                Some("invalidValue"),
                "action 0: no application named 'Fax'"
            )
        );
        let r = post(
            "/api/v1/playbooks",
            json!({"name": "p", "actions": [{"type": "launchRocket"}]}),
        )
        .await
        .expect(400);
        assert!(
            detail(&r.body).starts_with("action 0: unknown variant"),
            "{}",
            r.body
        );
        let r = post(
        "/api/v1/playbooks",
        json!({"name": "p", "actions": [{"type": "setAttributes", "attributes": {"shoeSize": 9}}]}),
    )
    .await
    .expect(400);
        assert!(detail(&r.body).starts_with("action 0:"), "{}", r.body);
        let r = post("/api/v1/playbooks", json!({"name": "p", "actions": {}}))
            .await
            .expect(400);
        assert!(detail(&r.body).contains("array"), "{}", r.body);

        // Duplicates, unknown ids, a playbook in use.
        let pb = post(
        "/api/v1/playbooks",
        json!({"name": "p", "actions": [{"type": "assignApplication", "application": "Slack"}]}),
    )
    .await
    .expect(201)
    .body;
        post("/api/v1/playbooks", json!({"name": "p", "actions": []}))
            .await
            .expect(409);
        post(
            "/api/v1/rules",
            json!({"name": "r", "event": "mover", "filter": "title pr", "playbooks": [pb["id"]]}),
        )
        .await
        .expect(201);
        let r = api(
            &ctx,
            &w,
            Method::DELETE,
            &format!("/api/v1/playbooks/{}", pb["id"]),
            None,
        )
        .await
        .expect(409);
        assert!(detail(&r.body).contains("used by rule"), "{}", r.body);
        api(&ctx, &w, Method::GET, "/api/v1/rules/999", None)
            .await
            .expect(404);
        api(&ctx, &w, Method::GET, "/api/v1/playbooks/999", None)
            .await
            .expect(404);
        api(&ctx, &w, Method::GET, "/api/v1/users/nobody/access", None)
            .await
            .expect(404);
        api(&ctx, &w, Method::PATCH, "/api/v1/rules", None)
            .await
            .expect(405);
        // The SCIM scope does not reach the management API.
        let res = ctx.send(Method::GET, "/api/v1/rules", &w.hr, None).await;
        assert_eq!(res.status.as_u16(), 403);
        // A run needs users; an unknown user is a failed result, not an error.
        post_run(
            &ctx,
            &w,
            pb["id"].as_i64().unwrap(),
            json!({"users": []}),
            400,
        )
        .await;
        let run = post_run(
            &ctx,
            &w,
            pb["id"].as_i64().unwrap(),
            json!({"users": ["ghost"]}),
            201,
        )
        .await;
        assert_eq!(run["results"][0]["status"], "failed", "{run}");
    }
);

async fn post_run(
    ctx: &crate::harness::Ctx,
    w: &World,
    pb: i64,
    body: Value,
    status: u16,
) -> Value {
    api(
        ctx,
        w,
        Method::POST,
        &format!("/api/v1/playbooks/{pb}/runs"),
        Some(body),
    )
    .await
    .expect(status)
    .body
}

backend_test!(playbook_runs_report_per_user_per_action, |ctx| async move {
    let w = World::new(&ctx).await;
    let worker = engine(&ctx);
    let group = ctx
        .create(
            "/scim/v2/Groups",
            &w.hr,
            json!({"schemas": [GROUP], "displayName": "Marketing"}),
        )
        .await
        .id();
    let ann = user(&ctx, &w, "ann", "Marketing").await;
    let bob = user(&ctx, &w, "bob", "Marketing").await;
    let pb = ctx
        .create(
            "/api/v1/playbooks",
            &w.admin,
            json!({"name": "onboard", "actions": [
                {"type": "assignApplication", "application": "Slack", "validForSeconds": 86400},
                {"type": "addToGroup", "group": "Marketing"},
                {"type": "setAttributes", "attributes": {"userType": "Employee"}},
            ]}),
        )
        .await
        .body;
    assert_eq!(pb["actions"][1]["groupId"], json!(group));
    let id = pb["id"].as_i64().unwrap();
    let preview = api(
        &ctx,
        &w,
        Method::POST,
        &format!("/api/v1/playbooks/{id}/preview"),
        Some(json!({"users": [ann, bob]})),
    )
    .await
    .expect(200)
    .body;
    assert_eq!(preview["impact"]["usersAffected"], 2, "{preview}");
    assert_eq!(preview["impact"]["applications"][0]["accountsCreated"], 2);
    // The preview wrote nothing.
    let none = api(
        &ctx,
        &w,
        Method::GET,
        &format!("/api/v1/assignments?user={ann}"),
        None,
    )
    .await
    .expect(200)
    .body;
    assert_eq!(none["totalResults"], 0);

    let run = post_run(
        &ctx,
        &w,
        id,
        json!({"users": [ann, bob], "reason": "onboarding"}),
        201,
    )
    .await;
    let statuses: Vec<Vec<&str>> = run["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            u["actions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["status"].as_str().unwrap())
                .collect()
        })
        .collect();
    assert_eq!(
        statuses,
        [
            ["granted", "added", "applied"],
            ["granted", "added", "applied"]
        ]
    );
    let stored = api(
        &ctx,
        &w,
        Method::GET,
        &format!("/api/v1/runs/{}", run["id"]),
        None,
    )
    .await
    .expect(200)
    .body;
    assert_eq!(stored["results"], run["results"]);
    assert_eq!(stored["source"], "manual");
    // Effects: the group, the attribute, the assignment with its end.
    let g = ctx
        .send(
            Method::GET,
            &format!("/scim/v2/Groups/{group}"),
            &w.hr,
            None,
        )
        .await
        .expect(200)
        .body;
    assert_eq!(g["members"].as_array().unwrap().len(), 2, "{g}");
    let a = ctx
        .send(Method::GET, &format!("/scim/v2/Users/{ann}"), &w.hr, None)
        .await
        .expect(200)
        .body;
    assert_eq!(a["userType"], "Employee");
    let access = api(
        &ctx,
        &w,
        Method::GET,
        &format!("/api/v1/users/{ann}/access"),
        None,
    )
    .await
    .expect(200)
    .body;
    let grant = &access["applications"][0]["grants"][0];
    assert_eq!(grant["why"], "playbook", "{access}");
    assert_eq!(grant["playbookId"], json!(id));
    assert_eq!(grant["reason"], "onboarding");
    assert!(
        access["applications"][0]["expiresAt"].is_string(),
        "{access}"
    );
    // Running again changes nothing.
    let again = post_run(&ctx, &w, id, json!({"users": [ann]}), 201).await;
    assert_eq!(again["results"][0]["actions"][0]["status"], "unchanged");
    worker.drain(5).await.unwrap();
    assert_eq!(w.account("Slack", "ann").await, Some(true));
    assert_eq!(w.account("Slack", "bob").await, Some(true));
});

backend_test!(blast_radius_refuses_unless_confirmed, |ctx| async move {
    let w = World::new(&ctx).await;
    let worker = engine(&ctx);
    let mut users = Vec::new();
    for name in ["u1", "u2", "u3", "u4"] {
        let id = user(&ctx, &w, name, "Ops").await;
        ctx.create(
            "/api/v1/assignments",
            &w.admin,
            json!({"applicationId": w.app("Slack"), "resourceId": id}),
        )
        .await;
        users.push(id);
    }
    worker.drain(10).await.unwrap();
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
    let three = json!({"users": users[..3]});
    let preview = api(
        &ctx,
        &w,
        Method::POST,
        &format!("/api/v1/playbooks/{pb}/preview"),
        Some(three.clone()),
    )
    .await
    .expect(200)
    .body;
    assert_eq!(preview["blastRadiusExceeded"], true, "{preview}");
    assert_eq!(
        preview["impact"]["applications"][0]["accountsDeactivated"],
        3
    );
    let refused = post_run(&ctx, &w, pb, three.clone(), 409).await;
    assert!(
        detail(&refused).contains("'Slack' would lose 3 of 4 accounts"),
        "{refused}"
    );
    // Nothing happened.
    worker.drain(5).await.unwrap();
    assert_eq!(w.account("Slack", "u1").await, Some(true));
    // One user is within the threshold... of 20%? 1 of 4 is 25%, but a
    // single account never trips it.
    post_run(&ctx, &w, pb, json!({"users": [users[3]]}), 201).await;
    let mut confirmed = three;
    confirmed["confirm"] = json!(true);
    post_run(&ctx, &w, pb, confirmed, 201).await;
    worker.drain(10).await.unwrap();
    for name in ["u1", "u2", "u3", "u4"] {
        assert_eq!(w.account("Slack", name).await, Some(false), "{name}");
    }
});

backend_test!(
    rule_previews_and_group_grants_follow_the_condition,
    |ctx| async move {
        let w = World::new(&ctx).await;
        let lc = lifecycle(&ctx);
        let group = ctx
            .create(
                "/scim/v2/Groups",
                &w.hr,
                json!({"schemas": [GROUP], "displayName": "Engineering"}),
            )
            .await
            .id();
        let eve = user(&ctx, &w, "eve", "Engineering").await;
        user(&ctx, &w, "fay", "Finance").await;
        lc.drain(5).await.unwrap();
        ctx.create(
            "/api/v1/playbooks",
            &w.admin,
            json!({"name": "engineers", "actions": [
            {"type": "addToGroup", "group": "Engineering"},
            {"type": "assignApplication", "application": "Trello"}]}),
        )
        .await;
        let rule = json!({"name": "engineering", "event": "mover",
                      "filter": format!("{ENTERPRISE}:department eq \"Engineering\""),
                      "playbooks": ["engineers"]});
        let preview = api(
            &ctx,
            &w,
            Method::POST,
            "/api/v1/rules/preview",
            Some(rule.clone()),
        )
        .await
        .expect(200)
        .body;
        assert_eq!(preview["usersExamined"], 2, "{preview}");
        assert_eq!(preview["impact"]["usersAffected"], 1, "{preview}");
        assert_eq!(preview["changes"][0]["userId"], json!(eve));
        // Previewing saved nothing.
        let rules = api(&ctx, &w, Method::GET, "/api/v1/rules", None)
            .await
            .expect(200)
            .body;
        assert_eq!(rules["totalResults"], 0);

        let saved = ctx.create("/api/v1/rules", &w.admin, rule).await.body;
        lc.drain(5).await.unwrap();
        let members = |g: Value| g["members"].as_array().cloned().unwrap_or_default().len();
        let g = ctx
            .send(
                Method::GET,
                &format!("/scim/v2/Groups/{group}"),
                &w.hr,
                None,
            )
            .await
            .expect(200)
            .body;
        assert_eq!(members(g), 1, "the rule added eve to the group");
        // Eve moves to Finance: the rule's group membership and grant go.
        ctx.send(
            Method::PATCH,
            &format!("/scim/v2/Users/{eve}"),
            &w.hr,
            Some(&json!({"schemas": [PATCH_OP], "Operations": [
            {"op": "replace", "path": format!("{ENTERPRISE}:department"), "value": "Finance"}]})),
        )
        .await
        .expect(200);
        lc.drain(5).await.unwrap();
        let g = ctx
            .send(
                Method::GET,
                &format!("/scim/v2/Groups/{group}"),
                &w.hr,
                None,
            )
            .await
            .expect(200)
            .body;
        assert_eq!(members(g), 0, "the rule's membership was taken back");
        let left = api(
            &ctx,
            &w,
            Method::GET,
            &format!("/api/v1/assignments?user={eve}"),
            None,
        )
        .await
        .expect(200)
        .body;
        assert_eq!(left["totalResults"], 0, "{left}");
        // Deleting the rule works and is idempotent to evaluate.
        api(
            &ctx,
            &w,
            Method::DELETE,
            &format!("/api/v1/rules/{}", saved["id"]),
            None,
        )
        .await
        .expect(204);
        lc.drain(5).await.unwrap();
    }
);
