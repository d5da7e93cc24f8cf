//! /Groups: members (Users and nested Groups) with `$ref` and `display`,
//! the computed `User.groups`, memberships kept by deletes, uniqueness of
//! displayName.

use reqwest::Method;
use scim_server::store::{ChangeLogStore, ChangeOp, TenantStore};
use scim_server::tokens::Scope;
use serde_json::{Value, json};

use crate::harness::{Backend, Ctx, redact, scim_error};

pub const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

pub async fn user(ctx: &Ctx, token: &str, user_name: &str, display: Option<&str>) -> String {
    let mut body = json!({"schemas": [USER], "userName": user_name});
    if let Some(d) = display {
        body["displayName"] = json!(d);
    }
    ctx.create("/scim/v2/Users", token, body).await.id()
}

pub async fn group(ctx: &Ctx, token: &str, name: &str, members: &[&str]) -> String {
    let members: Vec<Value> = members.iter().map(|m| json!({"value": m})).collect();
    let mut body = json!({"schemas": [GROUP], "displayName": name});
    if !members.is_empty() {
        body["members"] = json!(members);
    }
    ctx.create("/scim/v2/Groups", token, body).await.id()
}

async fn get(ctx: &Ctx, token: &str, path: &str) -> Value {
    ctx.send(Method::GET, path, token, None)
        .await
        .expect(200)
        .body
}

backend_test!(
    members_are_served_with_ref_display_and_type,
    |ctx| async move {
        let token = ctx.token("acme", &[Scope::Write]);
        let base = ctx.scim_base();
        let alice = user(&ctx, &token, "alice", Some("Alice A")).await;
        let bob = user(&ctx, &token, "bob", None).await;
        let inner = group(&ctx, &token, "Inner", &[]).await;
        let created = ctx
            .create(
                "/scim/v2/Groups",
                &token,
                json!({"schemas": [GROUP], "displayName": "Tour Guides", "members": [
                    {"value": alice, "display": "Team lead", "$ref": "https://evil.example/x"},
                    {"value": bob, "type": "User"},
                    {"value": inner},
                    {"value": alice}
                ]}),
            )
            .await;
        let ids = [
            (created.id(), "<guides>"),
            (alice.clone(), "<alice>"),
            (bob.clone(), "<bob>"),
            (inner.clone(), "<inner>"),
        ];
        let ids: Vec<(&str, &str)> = ids.iter().map(|(a, b)| (a.as_str(), *b)).collect();
        let expected = json!({
            "schemas": [GROUP],
            "id": "<guides>",
            "displayName": "Tour Guides",
            "members": [
                {"value": "<alice>", "$ref": "<base>/Users/<alice>", "display": "Team lead", "type": "User"},
                {"value": "<bob>", "$ref": "<base>/Users/<bob>", "display": "bob", "type": "User"},
                {"value": "<inner>", "$ref": "<base>/Groups/<inner>", "display": "Inner", "type": "Group"}
            ],
            "meta": {"resourceType": "Group", "created": "<time>", "lastModified": "<time>",
                     "version": "W/\"1\"", "location": "<base>/Groups/<guides>"}
        });
        assert_eq!(redact(&created.body, &base, &ids), expected);
        let path = format!("/scim/v2/Groups/{}", created.id());
        assert_eq!(get(&ctx, &token, &path).await, created.body);

        // Renaming a member shows at once where the group stores no display
        // for it (computed when served); a display the client gave stays.
        let patch = json!({"schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "path": "displayName", "value": "Bob B"}]});
        for who in [&alice, &bob] {
            ctx.send(
                Method::PATCH,
                &format!("/scim/v2/Users/{who}"),
                &token,
                Some(&patch),
            )
            .await
            .expect(200);
        }
        let got = get(&ctx, &token, &path).await;
        assert_eq!(got["members"][0]["display"], "Team lead");
        assert_eq!(got["members"][1]["display"], "Bob B");
        assert_eq!(got["meta"]["version"], "W/\"1\"");

        // A PATCH can set a member's display, and re-adding the member with
        // a display replaces it.
        let patch = json!({"schemas": [PATCH_OP], "Operations": [
            {"op": "replace", "path": format!("members[value eq \"{bob}\"].display"), "value": "Bobby"},
            {"op": "add", "path": "members", "value": [{"value": alice, "display": "Lead"}]}
        ]});
        let res = ctx
            .send(Method::PATCH, &path, &token, Some(&patch))
            .await
            .expect(200);
        let displays: Vec<&str> = res.body["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["display"].as_str().unwrap())
            .collect();
        assert_eq!(displays, ["Lead", "Bobby", "Inner"]);
        assert_eq!(get(&ctx, &token, &path).await, res.body);

        // Large groups: excluding members reads no member names.
        let slim = get(&ctx, &token, &format!("{path}?excludedAttributes=members")).await;
        assert!(slim.get("members").is_none());
        let values = get(&ctx, &token, &format!("{path}?attributes=members.value")).await;
        assert_eq!(
            values["members"],
            json!([{"value": alice}, {"value": bob}, {"value": inner}])
        );
    }
);

backend_test!(bad_members_are_400, |ctx| async move {
    let token = ctx.token("acme", &[Scope::Write]);
    let other = ctx.token("other", &[Scope::Write]);
    let foreign = user(&ctx, &other, "foreign", None).await;
    let alice = user(&ctx, &token, "alice", None).await;
    let res = ctx
        .send(
            Method::POST,
            "/scim/v2/Groups",
            &token,
            Some(&json!({"schemas": [GROUP], "displayName": "g",
                "members": [{"value": alice}, {"value": "no-such-id"}]})),
        )
        .await
        .expect(400);
    assert_eq!(
        res.body,
        scim_error(
            400,
            Some("invalidValue"),
            "members: no User or Group with id 'no-such-id' exists"
        )
    );
    // Another tenant's user does not exist here.
    let res = ctx
        .send(
            Method::POST,
            "/scim/v2/Groups",
            &token,
            Some(&json!({"schemas": [GROUP], "displayName": "g", "members": [{"value": foreign}]})),
        )
        .await
        .expect(400);
    assert!(res.body["detail"].as_str().unwrap().contains(&foreign));
    // A wrong type.
    let res = ctx
        .send(
            Method::POST,
            "/scim/v2/Groups",
            &token,
            Some(&json!({"schemas": [GROUP], "displayName": "g",
                "members": [{"value": alice, "type": "Group"}]})),
        )
        .await
        .expect(400);
    assert_eq!(
        res.body["detail"],
        format!("members: '{alice}' is a User, not a Group")
    );
    // Itself, by PATCH and by PUT.
    let g = group(&ctx, &token, "g", &[]).await;
    let path = format!("/scim/v2/Groups/{g}");
    let patch = json!({"schemas": [PATCH_OP],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": g}]}]});
    let res = ctx
        .send(Method::PATCH, &path, &token, Some(&patch))
        .await
        .expect(400);
    assert_eq!(res.body["scimType"], "invalidValue");
    assert!(
        res.body["detail"]
            .as_str()
            .unwrap()
            .contains("member of itself")
    );
    let put = json!({"schemas": [GROUP], "displayName": "g", "members": [{"value": g}]});
    ctx.send(Method::PUT, &path, &token, Some(&put))
        .await
        .expect(400);
    // Nothing was written.
    assert_eq!(get(&ctx, &token, &path).await["meta"]["version"], "W/\"1\"");
});

backend_test!(user_groups_are_direct_and_indirect, |ctx| async move {
    let token = ctx.token("acme", &[Scope::Write]);
    let base = ctx.scim_base();
    // The client's `groups` is ignored: it is readOnly and computed.
    let alice = ctx
        .create(
            "/scim/v2/Users",
            &token,
            json!({"schemas": [USER], "userName": "alice",
                   "groups": [{"value": "forged", "display": "Admins"}]}),
        )
        .await;
    assert!(alice.body.get("groups").is_none());
    let alice = alice.id();
    let team = group(&ctx, &token, "Team", &[&alice]).await;
    let dept = group(&ctx, &token, "Dept", &[&team]).await;
    let org = group(&ctx, &token, "Org", &[&dept, &alice]).await;
    // A cycle: Team also contains Org.
    let patch = json!({"schemas": [PATCH_OP],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": org}]}]});
    ctx.send(
        Method::PATCH,
        &format!("/scim/v2/Groups/{team}"),
        &token,
        Some(&patch),
    )
    .await
    .expect(200);
    let ids = [
        (alice.as_str(), "<alice>"),
        (team.as_str(), "<team>"),
        (dept.as_str(), "<dept>"),
        (org.as_str(), "<org>"),
    ];
    let got = get(
        &ctx,
        &token,
        &format!("/scim/v2/Users/{alice}?attributes=groups"),
    )
    .await;
    assert_eq!(
        redact(&got, &base, &ids),
        json!({"schemas": [USER], "id": "<alice>", "groups": [
            {"value": "<team>", "$ref": "<base>/Groups/<team>", "display": "Team", "type": "direct"},
            {"value": "<org>", "$ref": "<base>/Groups/<org>", "display": "Org", "type": "direct"},
            {"value": "<dept>", "$ref": "<base>/Groups/<dept>", "display": "Dept", "type": "indirect"}
        ]})
    );
    // Groups come before meta in the full document.
    let full = get(&ctx, &token, &format!("/scim/v2/Users/{alice}")).await;
    let keys: Vec<&String> = full.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["schemas", "id", "userName", "groups", "meta"]);
    let slim = get(
        &ctx,
        &token,
        &format!("/scim/v2/Users/{alice}?excludedAttributes=groups"),
    )
    .await;
    assert!(slim.get("groups").is_none());
});

backend_test!(deleting_a_user_removes_its_memberships, |ctx| async move {
    let token = ctx.token("acme", &[Scope::Write]);
    let alice = user(&ctx, &token, "alice", None).await;
    let bob = user(&ctx, &token, "bob", None).await;
    let g1 = group(&ctx, &token, "g1", &[&alice, &bob]).await;
    let g2 = group(&ctx, &token, "g2", &[&alice]).await;
    let untouched = group(&ctx, &token, "g3", &[&bob]).await;
    let tenant = ctx.store.ensure_tenant("acme").unwrap().id;
    let seq = ctx
        .store
        .changes_after(tenant, 0, 100)
        .unwrap()
        .last()
        .unwrap()
        .seq;

    ctx.send(
        Method::DELETE,
        &format!("/scim/v2/Users/{alice}"),
        &token,
        None,
    )
    .await
    .expect(204);
    let g1_doc = get(&ctx, &token, &format!("/scim/v2/Groups/{g1}")).await;
    assert_eq!(g1_doc["meta"]["version"], "W/\"2\"");
    assert_eq!(g1_doc["members"].as_array().unwrap().len(), 1);
    assert_eq!(g1_doc["members"][0]["value"], bob.as_str());
    let g2_doc = get(&ctx, &token, &format!("/scim/v2/Groups/{g2}")).await;
    assert_eq!(g2_doc["meta"]["version"], "W/\"2\"");
    assert!(g2_doc.get("members").is_none());
    let g3_doc = get(&ctx, &token, &format!("/scim/v2/Groups/{untouched}")).await;
    assert_eq!(g3_doc["meta"]["version"], "W/\"1\"");
    // One change-log row per group touched, then the deletion.
    let changes: Vec<(String, ChangeOp, i64)> = ctx
        .store
        .changes_after(tenant, seq, 100)
        .unwrap()
        .into_iter()
        .map(|c| (c.resource_id, c.op, c.version))
        .collect();
    assert_eq!(
        changes,
        [
            (g1.clone(), ChangeOp::Patch, 2),
            (g2.clone(), ChangeOp::Patch, 2),
            (alice.clone(), ChangeOp::Delete, 2)
        ]
    );

    // Deleting a nested group updates its parents; its members lose it.
    let parent = group(&ctx, &token, "parent", &[&g1]).await;
    ctx.send(
        Method::DELETE,
        &format!("/scim/v2/Groups/{g1}"),
        &token,
        None,
    )
    .await
    .expect(204);
    let parent_doc = get(&ctx, &token, &format!("/scim/v2/Groups/{parent}")).await;
    assert!(parent_doc.get("members").is_none());
    assert_eq!(parent_doc["meta"]["version"], "W/\"2\"");
    let bob_doc = get(&ctx, &token, &format!("/scim/v2/Users/{bob}")).await;
    assert_eq!(bob_doc["groups"].as_array().unwrap().len(), 1);
    assert_eq!(bob_doc["groups"][0]["value"], untouched.as_str());
});

backend_test!(display_name_is_unique_per_tenant, |ctx| async move {
    let token = ctx.token("acme", &[Scope::Write]);
    group(&ctx, &token, "Sales", &[]).await;
    let res = ctx
        .send(
            Method::POST,
            "/scim/v2/Groups",
            &token,
            Some(&json!({"schemas": [GROUP], "displayName": "SALES"})),
        )
        .await
        .expect(409);
    assert_eq!(
        res.body,
        scim_error(
            409,
            Some("uniqueness"),
            "displayName 'SALES' is already in use"
        )
    );
    let other = ctx.token("other", &[Scope::Write]);
    group(&ctx, &other, "Sales", &[]).await;
    // The schema says so.
    let schema = get(
        &ctx,
        &token,
        "/scim/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:Group",
    )
    .await;
    let display = schema["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "displayName")
        .unwrap()
        .clone();
    assert_eq!(display["uniqueness"], "server");
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn display_name_uniqueness_can_be_turned_off() {
    let ctx = Ctx::start_with(Backend::Sqlite, |s| s.unique_group_names = false)
        .await
        .unwrap();
    let token = ctx.token("acme", &[Scope::Write]);
    group(&ctx, &token, "Sales", &[]).await;
    group(&ctx, &token, "sales", &[]).await;
    group(&ctx, &token, "Sales", &[]).await;
}

backend_test!(group_put_and_patch_keep_memberships, |ctx| async move {
    let token = ctx.token("acme", &[Scope::Write]);
    let alice = user(&ctx, &token, "alice", None).await;
    let bob = user(&ctx, &token, "bob", None).await;
    let g = group(&ctx, &token, "g", &[&alice]).await;
    let path = format!("/scim/v2/Groups/{g}");
    let put = json!({"schemas": [GROUP], "displayName": "g", "members": [{"value": bob}]});
    let res = ctx
        .send(Method::PUT, &path, &token, Some(&put))
        .await
        .expect(200);
    assert_eq!(res.body["members"][0]["value"], bob.as_str());
    let alice_doc = get(&ctx, &token, &format!("/scim/v2/Users/{alice}")).await;
    assert!(alice_doc.get("groups").is_none());
    let bob_doc = get(&ctx, &token, &format!("/scim/v2/Users/{bob}")).await;
    assert_eq!(bob_doc["groups"][0]["value"], g.as_str());
    let patch = json!({"schemas": [PATCH_OP], "Operations": [
        {"op": "remove", "path": format!("members[value eq \"{bob}\"]")},
        {"op": "add", "path": "members", "value": [{"value": alice}]}
    ]});
    let res = ctx
        .send(Method::PATCH, &path, &token, Some(&patch))
        .await
        .expect(200);
    assert_eq!(
        res.body["members"],
        json!([{
        "value": alice, "$ref": format!("{}/Users/{alice}", ctx.scim_base()),
        "display": "alice", "type": "User"}])
    );
    let bob_doc = get(&ctx, &token, &format!("/scim/v2/Users/{bob}")).await;
    assert!(bob_doc.get("groups").is_none());
});
