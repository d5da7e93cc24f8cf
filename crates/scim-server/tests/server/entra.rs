//! What Microsoft Entra ID sends, in the shapes its SCIM provisioning
//! documentation publishes: users with the enterprise extension, PATCH
//! with capitalised ops and "False" strings, member adds and value-list
//! removals with `"$ref": null`, group renames. (Its `GET
//! /Users?filter=userName eq "..."` belongs to the query tests.)

use reqwest::Method;
use scim_server::tokens::Scope;
use serde_json::{Value, json};

use crate::groups::{GROUP, PATCH_OP, USER};
use crate::harness::{Ctx, redact};
use crate::users::ENTERPRISE;

fn entra_user() -> Value {
    json!({
        "schemas": [USER, ENTERPRISE],
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1",
        "active": true,
        "emails": [{
            "primary": true,
            "type": "work",
            "value": "Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com"
        }],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
        "roles": [],
        ENTERPRISE: {"employeeNumber": "1234", "department": "Sales"}
    })
}

async fn patch(ctx: &Ctx, token: &str, path: &str, ops: Value) -> Value {
    let body = json!({"schemas": [PATCH_OP], "Operations": ops});
    ctx.send(Method::PATCH, path, token, Some(&body))
        .await
        .expect(200)
        .body
}

backend_test!(
    entra_create_user_with_enterprise_extension,
    |ctx| async move {
        let token = ctx.token("contoso", &[Scope::Write]);
        let created = ctx.create("/scim/v2/Users", &token, entra_user()).await;
        let id = created.id();
        assert_eq!(
            redact(&created.body, &ctx.scim_base(), &[(&id, "<id>")]),
            json!({
                "schemas": [USER, ENTERPRISE],
                "id": "<id>",
                "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
                "userName": "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1",
                "active": true,
                "emails": [{
                    "primary": true,
                    "type": "work",
                    "value": "Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com"
                }],
                "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
                ENTERPRISE: {"employeeNumber": "1234", "department": "Sales"},
                "meta": {"resourceType": "User", "created": "<time>", "lastModified": "<time>",
                         "version": "W/\"1\"", "location": "<base>/Users/<id>"}
            })
        );
        // Entra retries a create it timed out on: 409, not a second user.
        let res = ctx
            .send(Method::POST, "/scim/v2/Users", &token, Some(&entra_user()))
            .await
            .expect(409);
        assert_eq!(res.body["scimType"], "uniqueness");
    }
);

backend_test!(
    entra_patch_user_capitalised_ops_and_strings,
    |ctx| async move {
        let token = ctx.token("contoso", &[Scope::Write]);
        let id = ctx
            .create("/scim/v2/Users", &token, entra_user())
            .await
            .id();
        let path = format!("/scim/v2/Users/{id}");
        let manager = ctx
            .create(
                "/scim/v2/Users",
                &token,
                json!({"schemas": [USER], "userName": "boss"}),
            )
            .await
            .id();
        let body = patch(
        &ctx,
        &token,
        &path,
        json!([
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "updatedEmail@microsoft.com"},
            {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
            {"op": "Replace", "path": "active", "value": "False"},
            {"op": "Add", "path": format!("{ENTERPRISE}:manager"), "value": manager},
            {"op": "Add", "value": {"name.givenName": "Barbara",
                                    format!("{ENTERPRISE}:costCenter"): "4130"}}
        ]),
    )
    .await;
        assert_eq!(body["emails"][0]["value"], "updatedEmail@microsoft.com");
        assert_eq!(body["name"]["familyName"], "updatedFamilyName");
        assert_eq!(body["name"]["givenName"], "Barbara");
        assert_eq!(body["active"], false);
        assert_eq!(body[ENTERPRISE]["manager"]["value"], manager.as_str());
        assert_eq!(body[ENTERPRISE]["costCenter"], "4130");
        assert_eq!(body["meta"]["version"], "W/\"2\"");
        // "True" back, compliant form.
        let body = patch(
            &ctx,
            &token,
            &path,
            json!([{"op": "replace", "path": "active", "value": "True"}]),
        )
        .await;
        assert_eq!(body["active"], true);
        // Clearing the manager the way Entra does.
        let body = patch(
            &ctx,
            &token,
            &path,
            json!([{"op": "Replace", "path": format!("{ENTERPRISE}:manager"), "value": ""}]),
        )
        .await;
        assert!(body[ENTERPRISE].get("manager").is_none(), "{body}");
    }
);

backend_test!(entra_group_members_and_rename, |ctx| async move {
    let token = ctx.token("contoso", &[Scope::Write]);
    let a = ctx
        .create(
            "/scim/v2/Users",
            &token,
            json!({"schemas": [USER], "userName": "a"}),
        )
        .await
        .id();
    let b = ctx
        .create(
            "/scim/v2/Users",
            &token,
            json!({"schemas": [USER], "userName": "b"}),
        )
        .await
        .id();
    // The create shape lists a Microsoft schema URN with no attributes.
    let group = ctx
        .create(
            "/scim/v2/Groups",
            &token,
            json!({
                "schemas": [GROUP, "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
                "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
                "displayName": "displayName",
                "meta": {"resourceType": "Group"}
            }),
        )
        .await;
    assert_eq!(group.body["schemas"], json!([GROUP]));
    let path = format!("/scim/v2/Groups/{}", group.id());
    let body = patch(
        &ctx,
        &token,
        &path,
        json!([{"op": "Add", "path": "members",
                "value": [{"$ref": null, "value": a}, {"$ref": null, "value": b}]}]),
    )
    .await;
    let members: Vec<&str> = body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap())
        .collect();
    assert_eq!(members, [a.as_str(), b.as_str()]);
    let body = patch(
        &ctx,
        &token,
        &path,
        json!([{"op": "Remove", "path": "members", "value": [{"$ref": null, "value": a}]}]),
    )
    .await;
    assert_eq!(body["members"].as_array().unwrap().len(), 1);
    assert_eq!(body["members"][0]["value"], b.as_str());
    let body = patch(
        &ctx,
        &token,
        &path,
        json!([{"op": "Replace", "path": "displayName",
                "value": "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"}]),
    )
    .await;
    assert_eq!(
        body["displayName"],
        "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"
    );
    assert_eq!(body["meta"]["version"], "W/\"4\"");
    // Removing a member that is not there is no change.
    let body = patch(
        &ctx,
        &token,
        &path,
        json!([{"op": "Remove", "path": "members", "value": [{"$ref": null, "value": a}]}]),
    )
    .await;
    assert_eq!(body["meta"]["version"], "W/\"4\"");
    // Adding a member that does not exist is a clear 400.
    let res = ctx
        .send(
            Method::PATCH,
            &path,
            &token,
            Some(&json!({"schemas": [PATCH_OP], "Operations": [
                {"op": "Add", "path": "members", "value": [{"$ref": null, "value": "8b5a7e5e-0000"}]}
            ]})),
        )
        .await
        .expect(400);
    assert_eq!(
        res.body["detail"],
        "members: no User or Group with id '8b5a7e5e-0000' exists"
    );
});
