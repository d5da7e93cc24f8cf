//! What Okta sends, in the shapes its SCIM 2.0 provisioning documentation
//! publishes: create user (with password and an empty `groups`),
//! deactivate with a path-less replace, PUT of the whole user, group
//! member PATCH and rename.

use reqwest::Method;
use scim_core::schema::SchemaRegistry;
use scim_server::store::{ResourceStore, TenantStore};
use scim_server::tokens::Scope;
use serde_json::{Value, json};

use crate::groups::{GROUP, PATCH_OP, USER};
use crate::harness::redact;

fn okta_user() -> Value {
    json!({
        "schemas": [USER],
        "userName": "test.user@okta.local",
        "name": {"givenName": "Test", "familyName": "User"},
        "emails": [{"primary": true, "value": "test.user@okta.local", "type": "work"}],
        "displayName": "Test User",
        "locale": "en-US",
        "externalId": "00ujl29u0le5T6Aj10h7",
        "groups": [],
        "password": "1mz050nq",
        "active": true
    })
}

backend_test!(okta_create_deactivate_and_put_user, |ctx| async move {
    let token = ctx.token("okta", &[Scope::Write]);
    let created = ctx.create("/scim/v2/Users", &token, okta_user()).await;
    let id = created.id();
    let path = format!("/scim/v2/Users/{id}");
    assert_eq!(
        redact(&created.body, &ctx.scim_base(), &[(&id, "<id>")]),
        json!({
            "schemas": [USER],
            "id": "<id>",
            "externalId": "00ujl29u0le5T6Aj10h7",
            "userName": "test.user@okta.local",
            "name": {"givenName": "Test", "familyName": "User"},
            "emails": [{"primary": true, "value": "test.user@okta.local", "type": "work"}],
            "displayName": "Test User",
            "locale": "en-US",
            "active": true,
            "meta": {"resourceType": "User", "created": "<time>", "lastModified": "<time>",
                     "version": "W/\"1\"", "location": "<base>/Users/<id>"}
        })
    );

    // Deactivation: a path-less replace.
    let res = ctx
        .send(
            Method::PATCH,
            &path,
            &token,
            Some(&json!({"schemas": [PATCH_OP],
                "Operations": [{"op": "replace", "value": {"active": false}}]})),
        )
        .await
        .expect(200);
    assert_eq!(res.body["active"], false);
    assert_eq!(res.header("etag"), "W/\"2\"");

    // PUT of the whole user, echoing id and meta, without the password.
    let put = json!({
        "schemas": [USER],
        "id": id,
        "userName": "test.user@okta.local",
        "name": {"givenName": "Another", "middleName": "", "familyName": "User"},
        "emails": [{"primary": true, "value": "test.user@okta.local", "type": "work"}],
        "active": true,
        "groups": [],
        "meta": {"resourceType": "User"}
    });
    let res = ctx
        .send(Method::PUT, &path, &token, Some(&put))
        .await
        .expect(200);
    assert_eq!(res.body["name"]["givenName"], "Another");
    assert_eq!(res.body["active"], true);
    assert!(res.body.get("displayName").is_none());
    assert!(res.body.get("password").is_none());
    // The password set at creation is still the stored one.
    let users = SchemaRegistry::core().resource_schema("User").unwrap();
    let tenant = ctx.store.ensure_tenant("okta").unwrap().id;
    let stored = ctx
        .store
        .get_resource(tenant, &users, &id)
        .unwrap()
        .unwrap();
    assert!(scim_server::password::verify(
        "1mz050nq",
        stored.document["password"].as_str().unwrap()
    ));
    // Okta's password change: a replace of password.
    ctx.send(
        Method::PATCH,
        &path,
        &token,
        Some(&json!({"schemas": [PATCH_OP],
            "Operations": [{"op": "replace", "value": {"password": "n3wPassw0rd"}}]})),
    )
    .await
    .expect(200);
    let stored = ctx
        .store
        .get_resource(tenant, &users, &id)
        .unwrap()
        .unwrap();
    assert!(scim_server::password::verify(
        "n3wPassw0rd",
        stored.document["password"].as_str().unwrap()
    ));
});

backend_test!(okta_group_members_and_rename, |ctx| async move {
    let token = ctx.token("okta", &[Scope::Write]);
    let first = ctx.create("/scim/v2/Users", &token, okta_user()).await.id();
    let mut second = okta_user();
    second["userName"] = json!("second@okta.local");
    let second = ctx.create("/scim/v2/Users", &token, second).await.id();
    let group = ctx
        .create(
            "/scim/v2/Groups",
            &token,
            json!({"schemas": [GROUP], "displayName": "Test SCIMv2",
                   "members": [{"value": first, "display": "test.user@okta.local"}]}),
        )
        .await;
    let id = group.id();
    let path = format!("/scim/v2/Groups/{id}");
    let res = ctx
        .send(
            Method::PATCH,
            &path,
            &token,
            Some(&json!({"schemas": [PATCH_OP], "Operations": [
                {"op": "remove", "path": format!("members[value eq \"{first}\"]")},
                {"op": "add", "path": "members",
                 "value": [{"value": second, "display": "second@okta.local"}]}
            ]})),
        )
        .await
        .expect(200);
    assert_eq!(res.body["members"][0]["value"], second.as_str());
    // Okta's display is kept as sent (members.display is readWrite).
    assert_eq!(res.body["members"][0]["display"], "second@okta.local");
    assert_eq!(res.body["members"].as_array().unwrap().len(), 1);
    // Rename: a path-less replace echoing the id.
    let res = ctx
        .send(
            Method::PATCH,
            &path,
            &token,
            Some(&json!({"schemas": [PATCH_OP], "Operations": [
                {"op": "replace", "value": {"id": id, "displayName": "Test SCIMv2 renamed"}}
            ]})),
        )
        .await
        .expect(200);
    assert_eq!(res.body["displayName"], "Test SCIMv2 renamed");
    assert_eq!(res.body["meta"]["version"], "W/\"3\"");
    // Okta's PUT of a group with the full member list.
    let res = ctx
        .send(
            Method::PUT,
            &path,
            &token,
            Some(
                &json!({"schemas": [GROUP], "id": id, "displayName": "Test SCIMv2 renamed",
                "members": [{"value": first, "display": "x"}, {"value": second, "display": "y"}]}),
            ),
        )
        .await
        .expect(200);
    assert_eq!(res.body["members"].as_array().unwrap().len(), 2);
    assert_eq!(res.body["members"][0]["display"], "x");
    assert_eq!(res.body["members"][1]["display"], "y");
});
