//! The audit log over HTTP: SCIM writes and management actions are
//! recorded with actor, before/after and cause; queries filter and page;
//! the export is JSON lines; verification passes on an untouched chain and
//! names the first bad seq after a row is altered, deleted or reordered
//! directly in the database.

use diesel::{Connection, RunQueryDsl};
use reqwest::Method;
use scim_server::tokens::Scope;
use serde_json::{Value, json};

use crate::groups::{PATCH_OP, USER};
use crate::harness::{Backend, Ctx};

/// Runs SQL on the test database behind the server's back.
pub fn tamper(ctx: &Ctx, sql: &str) {
    match ctx.backend() {
        Backend::Sqlite => {
            let mut c = diesel::SqliteConnection::establish(&ctx.db.url).expect("sqlite");
            diesel::sql_query(sql).execute(&mut c).expect(sql);
        }
        Backend::Postgres => {
            let mut c = diesel::PgConnection::establish(&ctx.db.url).expect("postgres");
            diesel::sql_query(sql).execute(&mut c).expect(sql);
        }
    }
}

async fn audit(ctx: &Ctx, token: &str, query: &str) -> Value {
    ctx.send(Method::GET, &format!("/api/v1/audit{query}"), token, None)
        .await
        .expect(200)
        .body
}

async fn verify(ctx: &Ctx, token: &str) -> Value {
    ctx.send(Method::GET, "/api/v1/audit/verify", token, None)
        .await
        .expect(200)
        .body
}

/// A verification with the hashes, key id, time and signature replaced by
/// placeholders (after checking their form).
pub fn redact_verification(mut v: Value) -> Value {
    let hex64 = |x: &Value| {
        x.as_str()
            .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    assert!(hex64(&v["headHash"]), "{v}");
    v["headHash"] = json!("<hash>");
    if v["keyId"].is_string() {
        v["keyId"] = json!("<key id>");
    }
    if v["checkpoint"].is_object() {
        let seq = v["checkpoint"]["seq"].clone();
        assert!(hex64(&v["checkpoint"]["hash"]), "{v}");
        v["checkpoint"]["hash"] = json!("<hash>");
        v["checkpoint"]["head"] = json!(format!("{seq}:<hash>"));
        v["checkpoint"]["at"] = json!("<time>");
        if v["checkpoint"]["signature"].is_string() {
            assert!(hex64(&v["checkpoint"]["signature"]), "{v}");
            v["checkpoint"]["signature"] = json!("<signature>");
        }
    }
    v
}

fn actions(page: &Value) -> Vec<String> {
    page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect()
}

/// Five SCIM writes: user a created and patched, group g created with a
/// as member, user a deleted (which also patches g). Returns (a, g).
pub async fn some_writes(ctx: &Ctx, scim: &str) -> (String, String) {
    let a = ctx
        .create(
            "/scim/v2/Users",
            scim,
            json!({"schemas": [USER], "userName": "a", "password": "s3cret-Pa55"}),
        )
        .await
        .id();
    ctx.send(
        Method::PATCH,
        &format!("/scim/v2/Users/{a}"),
        scim,
        Some(&json!({"schemas": [PATCH_OP], "Operations": [
            {"op": "replace", "path": "displayName", "value": "A"}]})),
    )
    .await
    .expect(200);
    let g = ctx
        .create(
            "/scim/v2/Groups",
            scim,
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                   "displayName": "g", "members": [{"value": a}]}),
        )
        .await
        .id();
    ctx.send(Method::DELETE, &format!("/scim/v2/Users/{a}"), scim, None)
        .await
        .expect(204);
    (a, g)
}

backend_test!(
    scim_writes_are_recorded_with_before_and_after,
    |ctx| async move {
        let scim = ctx.token("acme", &[Scope::Write]);
        let admin = ctx.token("acme", &[Scope::Admin]);
        let (a, g) = some_writes(&ctx, &scim).await;

        let page = audit(&ctx, &admin, "").await;
        assert_eq!(
            actions(&page),
            [
                "user.create",
                "user.patch",
                "group.create",
                "group.patch",
                "user.delete"
            ],
            "{page}"
        );
        let entries = page["entries"].as_array().unwrap();
        let seqs: Vec<i64> = entries.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
        assert_eq!(seqs, [1, 2, 3, 4, 5]);
        assert_eq!(page["next"], Value::Null);
        // The actor is the SCIM token (token ids: scim 1, admin 2).
        assert!(entries.iter().all(|e| e["actor"] == "token:1"), "{page}");
        assert_eq!(entries[0]["targetType"], "User");
        assert_eq!(entries[0]["targetId"], json!(a));
        assert_eq!(entries[0]["before"], Value::Null);
        assert_eq!(entries[0]["after"]["userName"], "a");
        assert!(
            !page.to_string().contains("s3cret") && !page.to_string().contains("password"),
            "no password, hashed or not, in the audit log: {page}"
        );
        assert_eq!(entries[1]["before"]["displayName"], Value::Null);
        assert_eq!(entries[1]["after"]["displayName"], "A");
        // Deleting a user rewrites the group that held it, in the same
        // transaction: both are recorded.
        assert_eq!(entries[3]["targetId"], json!(g));
        assert_eq!(entries[3]["before"]["members"][0]["value"], json!(a));
        assert_eq!(entries[3]["after"].get("members"), None, "{}", entries[3]);
        assert_eq!(entries[4]["before"]["userName"], "a");
        assert_eq!(entries[4]["after"], Value::Null);
        // Each entry is chained to the previous one.
        assert_eq!(entries[0]["prevHash"], json!("0".repeat(64)));
        for w in entries.windows(2) {
            assert_eq!(w[1]["prevHash"], w[0]["hash"]);
        }

        // Filters and paging.
        assert_eq!(
            actions(&audit(&ctx, &admin, "?action=user.*").await),
            ["user.create", "user.patch", "user.delete"]
        );
        assert_eq!(
            actions(&audit(&ctx, &admin, &format!("?targetType=Group&targetId={g}")).await),
            ["group.create", "group.patch"]
        );
        assert_eq!(
            actions(&audit(&ctx, &admin, "?actor=token:2").await).len(),
            0
        );
        assert_eq!(
            actions(&audit(&ctx, &admin, &format!("?subject={a}")).await),
            ["user.create", "user.patch", "user.delete"]
        );
        assert_eq!(entries[3]["subject"], json!(g));
        let first = audit(&ctx, &admin, "?limit=2").await;
        assert_eq!(actions(&first), ["user.create", "user.patch"]);
        assert_eq!(first["next"], 2);
        let second = audit(&ctx, &admin, "?limit=2&after=2").await;
        assert_eq!(actions(&second), ["group.create", "group.patch"]);
        let last = audit(&ctx, &admin, "?limit=2&after=4").await;
        assert_eq!(actions(&last), ["user.delete"]);
        assert_eq!(last["next"], Value::Null);
        assert_eq!(
            actions(&audit(&ctx, &admin, "?until=2000-01-01T00:00:00Z").await).len(),
            0
        );
        assert_eq!(
            actions(&audit(&ctx, &admin, "?since=2000-01-01T00:00:00Z").await).len(),
            5
        );

        // Management actions carry the admin token.
        let app = ctx
            .create(
                "/api/v1/applications",
                &admin,
                json!({"name": "app", "baseUrl": "http://127.0.0.1:9/scim/v2"}),
            )
            .await
            .body["id"]
            .as_i64()
            .unwrap();
        let b = ctx
            .create(
                "/scim/v2/Users",
                &scim,
                json!({"schemas": [USER], "userName": "b"}),
            )
            .await
            .id();
        let assignment = ctx
            .create(
                "/api/v1/assignments",
                &admin,
                json!({"applicationId": app, "resourceId": b}),
            )
            .await
            .body["id"]
            .as_i64()
            .unwrap();
        ctx.send(
            Method::DELETE,
            &format!("/api/v1/assignments/{assignment}"),
            &admin,
            None,
        )
        .await
        .expect(204);
        let mgmt = audit(&ctx, &admin, "?actor=token:2").await;
        assert_eq!(
            actions(&mgmt),
            [
                "application.create",
                "assignment.create",
                "assignment.delete"
            ],
            "{mgmt}"
        );
        let deleted = &mgmt["entries"][2];
        assert_eq!(deleted["before"]["resourceId"], json!(b));
        assert_eq!(deleted["before"]["applicationId"], json!(app));
        assert!(!mgmt.to_string().contains("credentials"));

        // The export: every entry, one JSON document per line.
        let res = ctx
            .client
            .get(ctx.url("/api/v1/audit/export?action=user.*"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(
            res.headers()["content-type"].to_str().unwrap(),
            "application/x-ndjson"
        );
        let text = res.text().await.unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let exported: Vec<&str> = lines
            .iter()
            .map(|l| l["action"].as_str().unwrap())
            .collect();
        assert_eq!(
            exported,
            ["user.create", "user.patch", "user.delete", "user.create"]
        );

        let v = verify(&ctx, &admin).await;
        assert_eq!(
            redact_verification(v),
            json!({"valid": true, "keyed": true, "keyId": "<key id>", "checked": 9, "headSeq": 9,
                   "headHash": "<hash>", "keyedFrom": 1, "unkeyedEntries": 0, "uncheckedMacs": 0,
                   "firstBadSeq": null, "reason": null, "expectedHead": null,
                   "checkpoint": {"head": "9:<hash>", "seq": 9, "hash": "<hash>", "at": "<time>",
                                  "signature": "<signature>"}})
        );
    }
);

backend_test!(
    audit_needs_admin_and_checks_its_parameters,
    |ctx| async move {
        let scim = ctx.token("acme", &[Scope::Write]);
        let admin = ctx.token("acme", &[Scope::Admin]);
        ctx.send(Method::GET, "/api/v1/audit", &scim, None)
            .await
            .expect(403);
        ctx.send(Method::GET, "/api/v1/audit/verify", &scim, None)
            .await
            .expect(403);
        for bad in [
            "?limit=0",
            "?limit=1001",
            "?since=yesterday",
            "?until=2026-13-01T00:00:00Z",
            "?after=x",
            "?colour=blue",
        ] {
            let res = ctx
                .send(Method::GET, &format!("/api/v1/audit{bad}"), &admin, None)
                .await
                .expect(400);
            assert!(res.body["detail"].is_string(), "{bad}: {}", res.body);
        }
        ctx.send(Method::POST, "/api/v1/audit", &admin, Some(&json!({})))
            .await
            .expect(405);
        // Another tenant sees its own (empty, valid) chain.
        let other = ctx.token("other", &[Scope::Admin]);
        ctx.create(
            "/scim/v2/Users",
            &scim,
            json!({"schemas": [USER], "userName": "x"}),
        )
        .await;
        assert_eq!(actions(&audit(&ctx, &other, "").await).len(), 0);
        assert_eq!(verify(&ctx, &other).await["valid"], true);
        assert_eq!(verify(&ctx, &admin).await["checked"], 1);
    }
);

backend_test!(
    verify_names_the_first_altered_deleted_or_reordered_row,
    |ctx| async move {
        let scim = ctx.token("acme", &[Scope::Write]);
        let admin = ctx.token("acme", &[Scope::Admin]);
        some_writes(&ctx, &scim).await;
        assert_eq!(verify(&ctx, &admin).await["valid"], true);
        let original: String = {
            let page = audit(&ctx, &admin, "?after=1&limit=1").await;
            page["entries"][0]["after"].to_string()
        };

        // Altered: someone rewrites what a change did.
        tamper(
            &ctx,
            r#"UPDATE audit_log SET after_json = '{"displayName":"Mallory"}' WHERE seq = 2"#,
        );
        let v = verify(&ctx, &admin).await;
        assert_eq!(v["valid"], false, "{v}");
        assert_eq!(v["firstBadSeq"], 2, "{v}");
        assert!(v["reason"].as_str().unwrap().contains("altered"), "{v}");
        // Put back exactly as it was: valid again.
        tamper(
            &ctx,
            &format!(
                "UPDATE audit_log SET after_json = '{}' WHERE seq = 2",
                original.replace('\'', "''")
            ),
        );
        assert_eq!(verify(&ctx, &admin).await["valid"], true);

        // Altered who did it.
        tamper(
            &ctx,
            "UPDATE audit_log SET actor = 'token:99' WHERE seq = 4",
        );
        assert_eq!(verify(&ctx, &admin).await["firstBadSeq"], 4);
        tamper(&ctx, "UPDATE audit_log SET actor = 'token:1' WHERE seq = 4");
        assert_eq!(verify(&ctx, &admin).await["valid"], true);

        // Reordered: rows 2 and 3 swap places.
        tamper(&ctx, "UPDATE audit_log SET seq = 100 WHERE seq = 2");
        tamper(&ctx, "UPDATE audit_log SET seq = 2 WHERE seq = 3");
        tamper(&ctx, "UPDATE audit_log SET seq = 3 WHERE seq = 100");
        assert_eq!(verify(&ctx, &admin).await["firstBadSeq"], 2);
        tamper(&ctx, "UPDATE audit_log SET seq = 100 WHERE seq = 2");
        tamper(&ctx, "UPDATE audit_log SET seq = 2 WHERE seq = 3");
        tamper(&ctx, "UPDATE audit_log SET seq = 3 WHERE seq = 100");
        assert_eq!(verify(&ctx, &admin).await["valid"], true);

        // Deleted from the middle.
        tamper(&ctx, "DELETE FROM audit_log WHERE seq = 3");
        let v = verify(&ctx, &admin).await;
        assert_eq!(v["valid"], false);
        assert_eq!(v["firstBadSeq"], 3, "{v}");
        assert!(v["reason"].as_str().unwrap().contains("missing"), "{v}");
        assert_eq!(v["checked"], 2);

        // Deleted from the end: the chain head still remembers it.
        tamper(&ctx, "DELETE FROM audit_log WHERE seq >= 3");
        let v = verify(&ctx, &admin).await;
        assert_eq!(v["firstBadSeq"], 3, "{v}");
        assert_eq!(v["headSeq"], 5);
    }
);

backend_test!(bulk_operations_are_recorded_one_by_one, |ctx| async move {
    let scim = ctx.token("acme", &[Scope::Write]);
    let admin = ctx.token("acme", &[Scope::Admin]);
    let res = ctx
        .send(
            Method::POST,
            "/scim/v2/Bulk",
            &scim,
            Some(&json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                "Operations": [
                    {"method": "POST", "path": "/Users", "bulkId": "u",
                     "data": {"schemas": [USER], "userName": "bulk-u"}},
                    {"method": "POST", "path": "/Groups", "bulkId": "g",
                     "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                              "displayName": "bulk-g", "members": [{"value": "bulkId:u"}]}},
                    {"method": "POST", "path": "/Users", "bulkId": "dup",
                     "data": {"schemas": [USER], "userName": "bulk-u"}}
                ]
            })),
        )
        .await
        .expect(200);
    assert_eq!(res.body["Operations"][2]["status"], "409", "{}", res.body);
    let page = audit(&ctx, &admin, "").await;
    // The failed operation wrote nothing and recorded nothing.
    assert_eq!(actions(&page), ["user.create", "group.create"], "{page}");
    assert_eq!(page["entries"][1]["after"]["displayName"], "bulk-g");
    assert_eq!(verify(&ctx, &admin).await["valid"], true);

    // The OpenAPI document is served without a token.
    let doc: Value = ctx
        .client
        .get(ctx.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/audit/verify"]["get"].is_object());
});

backend_test!(
    concurrent_writers_keep_one_unbroken_chain,
    |ctx| async move {
        let scim = ctx.token("acme", &[Scope::Write]);
        let admin = ctx.token("acme", &[Scope::Admin]);
        let creates = (0..24).map(|i| {
            let (ctx, scim) = (&ctx, &scim);
            async move {
                ctx.create(
                    "/scim/v2/Users",
                    scim,
                    json!({"schemas": [USER], "userName": format!("c{i}")}),
                )
                .await
            }
        });
        futures::future::join_all(creates).await;
        let page = audit(&ctx, &admin, "").await;
        let seqs: Vec<i64> = page["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["seq"].as_i64().unwrap())
            .collect();
        assert_eq!(seqs, (1..=24).collect::<Vec<i64>>());
        assert_eq!(
            redact_verification(verify(&ctx, &admin).await),
            json!({"valid": true, "keyed": true, "keyId": "<key id>", "checked": 24, "headSeq": 24,
                   "headHash": "<hash>", "keyedFrom": 1, "unkeyedEntries": 0, "uncheckedMacs": 0,
                   "firstBadSeq": null, "reason": null, "expectedHead": null,
                   "checkpoint": {"head": "24:<hash>", "seq": 24, "hash": "<hash>", "at": "<time>",
                                  "signature": "<signature>"}})
        );
    }
);

/// `scim-server audit verify --tenant acme` on the test database, with the
/// test server's key.
fn cli_verify(ctx: &Ctx) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_scim-server"));
    for (key, _) in std::env::vars() {
        if key.starts_with("SCIM_") {
            cmd.env_remove(key);
        }
    }
    // With the server's key: the entries carry MACs that only it checks.
    cmd.env("SCIM_SECRET_KEY", crate::harness::TEST_SECRET_KEY);
    cmd.args([
        "--database-url",
        &ctx.db.url,
        "audit",
        "verify",
        "--tenant",
        "acme",
    ])
    .output()
    .expect("run scim-server audit verify")
}

backend_test!(
    the_server_cli_verifies_the_chain_in_the_database,
    |ctx| async move {
        let scim = ctx.token("acme", &[Scope::Write]);
        some_writes(&ctx, &scim).await;
        let ok = cli_verify(&ctx);
        let stdout = String::from_utf8_lossy(&ok.stdout);
        assert!(
            ok.status.success(),
            "{stdout} {}",
            String::from_utf8_lossy(&ok.stderr)
        );
        assert!(stdout.contains("verifies: 5 entries"), "{stdout}");
        tamper(
            &ctx,
            "UPDATE audit_log SET target_id = 'someone-else' WHERE seq = 2",
        );
        let broken = cli_verify(&ctx);
        let stderr = String::from_utf8_lossy(&broken.stderr);
        assert_eq!(broken.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("broken at seq 2"), "{stderr}");
    }
);
