//! /Users by id: create, read, replace, patch, delete; passwords,
//! uniqueness, projection, media types, scopes and tenants.

use reqwest::Method;
use scim_core::schema::SchemaRegistry;
use scim_server::store::{ChangeLogStore, ChangeOp, ResourceStore, TenantStore};
use scim_server::tokens::Scope;
use serde_json::{Value, json};

use crate::harness::{Ctx, redact, scim_error};

pub const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// RFC 7643 section 8.2's user, trimmed.
pub fn bjensen() -> Value {
    json!({
        "schemas": [USER],
        "externalId": "701984",
        "userName": "bjensen@example.com",
        "name": {"formatted": "Ms. Barbara J Jensen, III", "familyName": "Jensen", "givenName": "Barbara"},
        "displayName": "Babs Jensen",
        "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}],
        "active": true,
        "password": "t1meMa$heen"
    })
}

/// The document served for [`bjensen`] with id `<bjensen>`.
fn bjensen_served(version: u32) -> Value {
    json!({
        "schemas": [USER],
        "id": "<bjensen>",
        "externalId": "701984",
        "userName": "bjensen@example.com",
        "name": {"formatted": "Ms. Barbara J Jensen, III", "familyName": "Jensen", "givenName": "Barbara"},
        "displayName": "Babs Jensen",
        "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}],
        "active": true,
        "meta": {
            "resourceType": "User",
            "created": "<time>",
            "lastModified": "<time>",
            "version": format!("W/\"{version}\""),
            "location": "<base>/Users/<bjensen>"
        }
    })
}

backend_test!(create_get_replace_patch_delete, |ctx| async move {
    let token = ctx.token("acme", &[Scope::Write]);
    let base = ctx.scim_base();
    let created = ctx.create("/scim/v2/Users", &token, bjensen()).await;
    let id = created.id();
    let ids = [(id.as_str(), "<bjensen>")];
    assert_eq!(created.header("content-type"), "application/scim+json");
    assert_eq!(redact(&created.body, &base, &ids), bjensen_served(1));
    assert_eq!(created.header("location"), created.body["meta"]["location"]);
    assert_eq!(created.header("etag"), "W/\"1\"");
    assert_eq!(
        created.body["meta"]["created"],
        created.body["meta"]["lastModified"]
    );

    // The password is stored as an Argon2id hash.
    let users = SchemaRegistry::core().resource_schema("User").unwrap();
    let tenant = ctx.store.ensure_tenant("acme").unwrap().id;
    let stored = ctx
        .store
        .get_resource(tenant, &users, &id)
        .unwrap()
        .unwrap();
    let hash = stored.document["password"].as_str().unwrap().to_owned();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(scim_server::password::verify("t1meMa$heen", &hash));

    let path = format!("/scim/v2/Users/{id}");
    let got = ctx.send(Method::GET, &path, &token, None).await.expect(200);
    assert_eq!(got.body, created.body);
    assert_eq!(got.header("etag"), "W/\"1\"");

    // PUT: readOnly values ignored, omitted password keeps the hash.
    let mut put = bjensen();
    put.as_object_mut().unwrap().remove("password");
    put["id"] = json!("attacker-chosen");
    put["meta"] = json!({"version": "W/\"99\"", "created": "2000-01-01T00:00:00Z"});
    put["displayName"] = json!("Barbara");
    let replaced = ctx
        .send(Method::PUT, &path, &token, Some(&put))
        .await
        .expect(200);
    let mut expected = bjensen_served(2);
    expected["displayName"] = json!("Barbara");
    assert_eq!(redact(&replaced.body, &base, &ids), expected);
    assert_eq!(
        replaced.body["meta"]["created"],
        created.body["meta"]["created"]
    );
    assert_eq!(replaced.header("etag"), "W/\"2\"");
    let stored = ctx
        .store
        .get_resource(tenant, &users, &id)
        .unwrap()
        .unwrap();
    assert_eq!(stored.document["password"], hash.as_str());

    // The same PUT again changes nothing: same version, no change-log row.
    let again = ctx
        .send(Method::PUT, &path, &token, Some(&put))
        .await
        .expect(200);
    assert_eq!(again.body, replaced.body);

    // PATCH answers 200 with the resource, `attributes` honoured.
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "nickName", "value": "Babs"}]});
    let patched = ctx
        .send(
            Method::PATCH,
            &format!("{path}?attributes=nickName"),
            &token,
            Some(&patch),
        )
        .await
        .expect(200);
    assert_eq!(
        redact(&patched.body, &base, &ids),
        json!({"schemas": [USER], "id": "<bjensen>", "nickName": "Babs"})
    );
    assert_eq!(patched.header("etag"), "W/\"3\"");
    // A PATCH that changes nothing keeps the version.
    let same = ctx
        .send(Method::PATCH, &path, &token, Some(&patch))
        .await
        .expect(200);
    assert_eq!(same.header("etag"), "W/\"3\"");
    assert_eq!(same.body["meta"]["version"], "W/\"3\"");

    let ops: Vec<(ChangeOp, i64)> = ctx
        .store
        .changes_after(tenant, 0, 100)
        .unwrap()
        .into_iter()
        .map(|c| (c.op, c.version))
        .collect();
    assert_eq!(
        ops,
        [
            (ChangeOp::Create, 1),
            (ChangeOp::Replace, 2),
            (ChangeOp::Patch, 3)
        ]
    );

    let deleted = ctx
        .send(Method::DELETE, &path, &token, None)
        .await
        .expect(204);
    assert_eq!(deleted.body, Value::Null);
    let gone = ctx.send(Method::GET, &path, &token, None).await.expect(404);
    assert_eq!(
        gone.body,
        scim_error(404, None, &format!("User '{id}' not found"))
    );
    ctx.send(Method::DELETE, &path, &token, None)
        .await
        .expect(404);
    let last = ctx.store.changes_after(tenant, 0, 100).unwrap();
    assert_eq!(
        last.last().map(|c| (c.op, c.version)),
        Some((ChangeOp::Delete, 4))
    );
});

backend_test!(user_name_is_unique_case_insensitively, |ctx| async move {
    let token = ctx.token("acme", &[Scope::Write]);
    ctx.create(
        "/scim/v2/Users",
        &token,
        json!({"schemas": [USER], "userName": "Alice"}),
    )
    .await;
    let res = ctx
        .send(
            Method::POST,
            "/scim/v2/Users",
            &token,
            Some(&json!({"schemas": [USER], "userName": "ALICE"})),
        )
        .await
        .expect(409);
    assert_eq!(
        res.body,
        scim_error(
            409,
            Some("uniqueness"),
            "userName 'ALICE' is already in use"
        )
    );
    // Another tenant may use the name.
    let other = ctx.token("other", &[Scope::Write]);
    ctx.create(
        "/scim/v2/Users",
        &other,
        json!({"schemas": [USER], "userName": "alice"}),
    )
    .await;
    // Renaming into a taken name is 409 too.
    let bob = ctx
        .create(
            "/scim/v2/Users",
            &token,
            json!({"schemas": [USER], "userName": "bob"}),
        )
        .await;
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "userName", "value": "alice"}]});
    let res = ctx
        .send(
            Method::PATCH,
            &format!("/scim/v2/Users/{}", bob.id()),
            &token,
            Some(&patch),
        )
        .await
        .expect(409);
    assert_eq!(res.body["scimType"], "uniqueness");
});

backend_test!(projection_on_get_and_post, |ctx| async move {
    let token = ctx.token("acme", &[Scope::Write]);
    let created = ctx
        .send(
            Method::POST,
            "/scim/v2/Users?attributes=userName,emails.value",
            &token,
            Some(&bjensen()),
        )
        .await
        .expect(201);
    let id = created.id();
    assert_eq!(
        created.body,
        json!({"schemas": [USER], "id": id, "userName": "bjensen@example.com",
               "emails": [{"value": "bjensen@example.com"}]})
    );
    // Headers stay complete whatever the projection.
    assert_eq!(created.header("etag"), "W/\"1\"");
    assert!(
        created
            .header("location")
            .ends_with(&format!("/Users/{id}"))
    );
    let res = ctx
        .send(
            Method::GET,
            &format!("/scim/v2/Users/{id}?excludedAttributes=emails,name,meta,groups"),
            &token,
            None,
        )
        .await
        .expect(200);
    assert_eq!(
        res.body,
        json!({"schemas": [USER], "id": id, "externalId": "701984",
               "userName": "bjensen@example.com", "displayName": "Babs Jensen", "active": true})
    );
    // Asking for the password does not return it.
    let res = ctx
        .send(
            Method::GET,
            &format!("/scim/v2/Users/{id}?attributes=password"),
            &token,
            None,
        )
        .await
        .expect(200);
    assert_eq!(res.body, json!({"schemas": [USER], "id": id}));
    let res = ctx
        .send(
            Method::GET,
            &format!("/scim/v2/Users/{id}?attributes=userName&excludedAttributes=name"),
            &token,
            None,
        )
        .await
        .expect(400);
    assert_eq!(res.body["scimType"], "invalidValue");
});

backend_test!(media_types_and_bad_bodies, |ctx| async move {
    let token = ctx.token("acme", &[Scope::Write]);
    let body = json!({"schemas": [USER], "userName": "plain-json"}).to_string();
    let res = ctx
        .client
        .post(ctx.url("/scim/v2/Users"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    assert_eq!(res.headers()["content-type"], "application/scim+json");
    let res = ctx
        .client
        .post(ctx.url("/scim/v2/Users"))
        .bearer_auth(&token)
        .header("content-type", "text/plain")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 415);
    for bad in ["{", "[1,2", "\"userName\"", ""] {
        let res = ctx
            .client
            .post(ctx.url("/scim/v2/Users"))
            .bearer_auth(&token)
            .header("content-type", "application/scim+json")
            .body(bad)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 400, "{bad:?}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["scimType"], "invalidSyntax", "{bad:?}");
    }
    // A JSON value that is not a resource.
    let res = ctx
        .send(Method::POST, "/scim/v2/Users", &token, Some(&json!([1])))
        .await
        .expect(400);
    assert_eq!(res.body["scimType"], "invalidSyntax");
    let res = ctx
        .send(
            Method::POST,
            "/scim/v2/Users",
            &token,
            Some(&json!({"schemas": [USER]})),
        )
        .await
        .expect(400);
    assert_eq!(res.body["scimType"], "invalidValue");
});

backend_test!(scopes_and_tenants, |ctx| async move {
    let writer = ctx.token("acme", &[Scope::Write]);
    let reader = ctx.token("acme", &[Scope::Read]);
    let other = ctx.token("other", &[Scope::Write]);
    let id = ctx.create("/scim/v2/Users", &writer, bjensen()).await.id();
    let path = format!("/scim/v2/Users/{id}");
    ctx.send(Method::GET, &path, &reader, None)
        .await
        .expect(200);
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": false}]});
    for (method, body) in [
        (Method::PUT, Some(bjensen())),
        (Method::PATCH, Some(patch.clone())),
        (Method::DELETE, None),
    ] {
        let res = ctx
            .send(method.clone(), &path, &reader, body.as_ref())
            .await
            .expect(403);
        assert_eq!(res.body["status"], "403", "{method}");
    }
    ctx.send(Method::POST, "/scim/v2/Users", &reader, Some(&bjensen()))
        .await
        .expect(403);
    // Another tenant sees nothing, and can change nothing.
    ctx.send(Method::GET, &path, &other, None).await.expect(404);
    ctx.send(Method::PATCH, &path, &other, Some(&patch))
        .await
        .expect(404);
    ctx.send(Method::DELETE, &path, &other, None)
        .await
        .expect(404);
    // No token at all.
    let res = ctx.client.get(ctx.url(&path)).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 401);
    // Other methods on the collection are 405.
    let res = ctx
        .send(Method::DELETE, "/scim/v2/Users", &writer, None)
        .await
        .expect(405);
    assert_eq!(res.header("allow"), "GET, POST");
    let res = ctx
        .send(Method::POST, &path, &writer, Some(&bjensen()))
        .await
        .expect(405);
    assert_eq!(res.header("allow"), "GET, PUT, PATCH, DELETE");
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_base_url_is_the_location() {
    let ctx = Ctx::start_with(crate::harness::Backend::Sqlite, |s| {
        s.base_url = Some("https://scim.example.com/v2".into());
    })
    .await
    .unwrap();
    let token = ctx.token("acme", &[Scope::Write]);
    let created = ctx.create("/scim/v2/Users", &token, bjensen()).await;
    let expected = format!("https://scim.example.com/v2/Users/{}", created.id());
    assert_eq!(created.header("location"), expected);
    assert_eq!(created.body["meta"]["location"], expected.as_str());
}
