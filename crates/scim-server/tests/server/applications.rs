//! The management API: applications (credentials sealed, never returned),
//! assignments, and the due marks writes leave for the provisioning engine.

use reqwest::Method;
use scim_server::store::{ApplicationStore, TenantStore};
use scim_server::tokens::Scope;
use serde_json::{Value, json};

use crate::groups::{PATCH_OP, group, user};
use crate::harness::{Backend, Ctx, scim_error};

const APPS: &str = "/api/v1/applications";
const ASSIGNMENTS: &str = "/api/v1/assignments";

fn app_body(name: &str) -> Value {
    json!({
        "name": name,
        "baseUrl": "http://127.0.0.1:9/scim/v2/",
        "credentials": {"type": "bearer", "token": "downstream-secret-token"},
    })
}

async fn status(ctx: &Ctx, admin: &str, app: i64) -> Value {
    ctx.send(
        Method::GET,
        &format!("{APPS}/{app}/provisioning"),
        admin,
        None,
    )
    .await
    .expect(200)
    .body
}

backend_test!(
    applications_crud_never_returns_credentials,
    |ctx| async move {
        let admin = ctx.token("acme", &[Scope::Admin]);
        let res = ctx.create(APPS, &admin, app_body("wiki")).await;
        assert_eq!(res.header("content-type"), "application/json");
        let id = res.body["id"].as_i64().unwrap();
        let mut shown = res.body.clone();
        assert!(shown["created"].as_str().unwrap().ends_with('Z'));
        shown["created"] = json!("<time>");
        assert_eq!(
            shown,
            json!({
                "id": id,
                "name": "wiki",
                "baseUrl": "http://127.0.0.1:9/scim/v2",
                "credentials": {"type": "bearer", "set": true},
                "mapping": {
                    "userName": "userName", "name": "name", "displayName": "displayName",
                    "emails": "emails", "active": "active", "externalId": "id"
                },
                "managedAttributes": ["userName", "name", "displayName", "emails", "active", "externalId"],
                "deprovision": {"action": "deactivate"},
                "rateLimit": {"maxConcurrency": 4},
                "enabled": true,
                "reconcileInterval": null,
                "lastReconciled": null,
                "groupDeprovision": "delete",
                "quarantine": null,
                "created": "<time>"
            })
        );
        assert!(!res.body.to_string().contains("downstream-secret-token"));

        // The sealed token is not in the database in the clear either.
        let tenant = ctx.store.find_tenant("acme").unwrap().unwrap();
        let stored = ctx.store.list_applications(tenant.id).unwrap();
        let sealed = stored[0].fields.credentials.clone().unwrap();
        assert!(!sealed.windows(10).any(|w| w == b"downstream"));

        // Same name again: 409.
        let again = ctx
            .send(Method::POST, APPS, &admin, Some(&app_body("wiki")))
            .await
            .expect(409);
        assert_eq!(again.body["scimType"], "uniqueness");

        // PATCH: rename, pause, new mapping and policy; credentials kept.
        let patched = ctx
            .send(
                Method::PATCH,
                &format!("{APPS}/{id}"),
                &admin,
                Some(&json!({
                    "name": "wiki2",
                    "enabled": false,
                    "mapping": {"userName": "userName", "title": {"constant": "Staff"}},
                    "deprovision": {"action": "deactivateThenDelete", "graceSeconds": 3600},
                    "rateLimit": {"requestsPerSecond": 5.0, "maxConcurrency": 2}
                })),
            )
            .await
            .expect(200);
        assert_eq!(patched.body["name"], "wiki2");
        assert_eq!(patched.body["enabled"], false);
        assert_eq!(
            patched.body["credentials"],
            json!({"type": "bearer", "set": true})
        );
        assert_eq!(
            patched.body["managedAttributes"],
            json!(["userName", "title"])
        );
        assert_eq!(
            patched.body["rateLimit"],
            json!({"requestsPerSecond": 5.0, "maxConcurrency": 2})
        );

        let list = ctx.send(Method::GET, APPS, &admin, None).await.expect(200);
        assert_eq!(list.body["totalResults"], 1);
        assert_eq!(list.body["items"][0], patched.body);
        let got = ctx
            .send(Method::GET, &format!("{APPS}/{id}"), &admin, None)
            .await
            .expect(200);
        assert_eq!(got.body, patched.body);

        // Invalid input: 400 with the SCIM error shape.
        for bad in [
            json!({"name": "x"}),
            json!({"name": "x", "baseUrl": "ftp://x"}),
            json!({"name": "x", "baseUrl": "http://x", "mapping": {"a": 1}}),
            json!({"name": "x", "baseUrl": "http://x", "deprovision": {"action": "wipe"}}),
            json!({"name": "x", "baseUrl": "http://x", "surprise": true}),
        ] {
            let res = ctx.send(Method::POST, APPS, &admin, Some(&bad)).await;
            assert_eq!(res.status.as_u16(), 400, "{bad}: {}", res.body);
            assert_eq!(res.body["scimType"], "invalidValue", "{bad}");
        }

        // Other tenants do not see it.
        let other = ctx.token("other", &[Scope::Admin]);
        ctx.send(Method::GET, &format!("{APPS}/{id}"), &other, None)
            .await
            .expect(404);
        let list = ctx.send(Method::GET, APPS, &other, None).await.expect(200);
        assert_eq!(list.body["totalResults"], 0);

        ctx.send(Method::DELETE, &format!("{APPS}/{id}"), &admin, None)
            .await
            .expect(204);
        ctx.send(Method::GET, &format!("{APPS}/{id}"), &admin, None)
            .await
            .expect(404);
    }
);

backend_test!(management_api_needs_the_admin_scope, |ctx| async move {
    let writer = ctx.token("acme", &[Scope::Write]);
    let res = ctx.send(Method::GET, APPS, &writer, None).await.expect(403);
    assert_eq!(
        res.body,
        scim_error(403, None, "the token does not have the 'admin' scope")
    );
    ctx.send(Method::POST, ASSIGNMENTS, &writer, Some(&json!({})))
        .await
        .expect(403);
    // And admin alone reads no SCIM resources.
    let admin = ctx.token("acme", &[Scope::Admin]);
    ctx.send(Method::GET, "/scim/v2/Users/x", &admin, None)
        .await
        .expect(403);
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_refused_without_a_secret_key() {
    let ctx = Ctx::start_with(Backend::Sqlite, |s| s.secret_key = None)
        .await
        .expect("sqlite");
    let admin = ctx.token("acme", &[Scope::Admin]);
    let res = ctx
        .send(Method::POST, APPS, &admin, Some(&app_body("wiki")))
        .await
        .expect(400);
    assert!(
        res.body["detail"]
            .as_str()
            .unwrap()
            .contains("SCIM_SECRET_KEY"),
        "{}",
        res.body
    );
    // Without credentials it is fine.
    let mut body = app_body("wiki");
    body["credentials"] = json!({"type": "none"});
    ctx.create(APPS, &admin, body).await;
}

backend_test!(writes_mark_assigned_pairs_due, |ctx| async move {
    let admin = ctx.token("acme", &[Scope::Admin]);
    let scim = ctx.token("acme", &[Scope::Write]);
    let app = ctx.create(APPS, &admin, app_body("wiki")).await.body["id"]
        .as_i64()
        .unwrap();
    let alice = user(&ctx, &scim, "alice", None).await;
    let bob = user(&ctx, &scim, "bob", None).await;
    let carol = user(&ctx, &scim, "carol", None).await;
    // Nothing assigned: nothing due.
    assert_eq!(status(&ctx, &admin, app).await["pairs"], json!([]));

    let a = ctx
        .create(
            ASSIGNMENTS,
            &admin,
            json!({"applicationId": app, "resourceId": alice}),
        )
        .await;
    assert_eq!(a.body["resourceType"], "User");
    assert_eq!(a.body["source"], "manual");
    let dup = ctx
        .send(
            Method::POST,
            ASSIGNMENTS,
            &admin,
            Some(&json!({"applicationId": app, "resourceId": alice})),
        )
        .await
        .expect(409);
    assert_eq!(dup.body["scimType"], "uniqueness");
    ctx.send(
        Method::POST,
        ASSIGNMENTS,
        &admin,
        Some(&json!({"applicationId": app, "resourceId": "nobody"})),
    )
    .await
    .expect(400);

    // A group assignment covers its members.
    let team = group(&ctx, &scim, "team", &[&bob]).await;
    ctx.create(
        ASSIGNMENTS,
        &admin,
        json!({"applicationId": app, "resourceId": team}),
    )
    .await;
    let st = status(&ctx, &admin, app).await;
    let due: Vec<&str> = st["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["resourceId"].as_str().unwrap())
        .collect();
    assert_eq!(due.len(), 3, "{st}");
    for id in [&alice, &bob, &team] {
        assert!(due.contains(&id.as_str()), "{id} in {st}");
    }
    assert_eq!(st["counts"]["pending"], 3);
    assert_eq!(st["due"], 3);

    // Carol joining the group makes her pair due too.
    ctx.send(
        Method::PATCH,
        &format!("/scim/v2/Groups/{team}"),
        &scim,
        Some(&json!({"schemas": [PATCH_OP], "Operations": [
            {"op": "add", "path": "members", "value": [{"value": carol}]}
        ]})),
    )
    .await
    .expect(200);
    let st = status(&ctx, &admin, app).await;
    assert_eq!(st["counts"]["pending"], 4, "{st}");

    // Listing by application and by user.
    let list = ctx
        .send(
            Method::GET,
            &format!("{ASSIGNMENTS}?application={app}&user={alice}"),
            &admin,
            None,
        )
        .await
        .expect(200);
    assert_eq!(list.body["totalResults"], 1);
    let assignment = list.body["items"][0]["id"].as_i64().unwrap();
    let all = ctx
        .send(
            Method::GET,
            &format!("{ASSIGNMENTS}?application={app}"),
            &admin,
            None,
        )
        .await
        .expect(200);
    assert_eq!(all.body["totalResults"], 2);

    ctx.send(
        Method::DELETE,
        &format!("{ASSIGNMENTS}/{assignment}"),
        &admin,
        None,
    )
    .await
    .expect(204);
    ctx.send(
        Method::DELETE,
        &format!("{ASSIGNMENTS}/{assignment}"),
        &admin,
        None,
    )
    .await
    .expect(404);
    // Alice's pair stays, due: the engine has to deprovision her.
    let st = status(&ctx, &admin, app).await;
    assert!(
        st["pairs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["resourceId"] == json!(alice) && p["due"] == json!(true)),
        "{st}"
    );
    let bad = ctx
        .send(
            Method::GET,
            &format!("{APPS}/{app}/provisioning?status=weird"),
            &admin,
            None,
        )
        .await
        .expect(400);
    assert_eq!(bad.body["scimType"], "invalidValue");
});
