//! /Bulk (RFC 7644 section 3.7): the RFC examples, circular references,
//! failOnErrors, limits, unresolvable references, per-operation versions.

use reqwest::Method;
use scim_server::tokens::Scope;
use serde_json::{Value, json};

use crate::groups::{GROUP, USER};
use crate::harness::{Backend, Ctx, redact};

const BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
const BULK_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";

async fn bulk(ctx: &Ctx, token: &str, body: Value) -> Value {
    let res = ctx
        .send(Method::POST, "/scim/v2/Bulk", token, Some(&body))
        .await;
    let res = res.expect(200);
    assert_eq!(res.header("content-type"), "application/scim+json");
    assert_eq!(res.body["schemas"], json!([BULK_RESPONSE]));
    res.body
}

/// The id at the end of a location.
fn id_of(location: &Value) -> String {
    location
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned()
}

backend_test!(rfc_3_7_2_bulk_id_references, |ctx| async move {
    let token = ctx.token("acme", &[Scope::Write]);
    let base = ctx.scim_base();
    let res = bulk(
        &ctx,
        &token,
        json!({
            "schemas": [BULK_REQUEST],
            "Operations": [
                {"method": "POST", "path": "/Users", "bulkId": "qwerty",
                 "data": {"schemas": [USER], "userName": "Alice"}},
                {"method": "POST", "path": "/Groups", "bulkId": "ytrewq",
                 "data": {"schemas": [GROUP], "displayName": "Tour Guides",
                          "members": [{"type": "User", "value": "bulkId:qwerty"}]}}
            ]
        }),
    )
    .await;
    let alice = id_of(&res["Operations"][0]["location"]);
    let guides = id_of(&res["Operations"][1]["location"]);
    let ids = [(alice.as_str(), "<alice>"), (guides.as_str(), "<guides>")];
    assert_eq!(
        redact(&res, &base, &ids),
        json!({"schemas": [BULK_RESPONSE], "Operations": [
            {"location": "<base>/Users/<alice>", "method": "POST", "bulkId": "qwerty",
             "version": "W/\"1\"", "status": "201"},
            {"location": "<base>/Groups/<guides>", "method": "POST", "bulkId": "ytrewq",
             "version": "W/\"1\"", "status": "201"}
        ]})
    );
    let group = ctx
        .send(
            Method::GET,
            &format!("/scim/v2/Groups/{guides}"),
            &token,
            None,
        )
        .await
        .expect(200);
    assert_eq!(
        redact(&group.body["members"], &base, &ids),
        json!([{"value": "<alice>", "$ref": "<base>/Users/<alice>", "display": "Alice", "type": "User"}])
    );
});

backend_test!(
    rfc_3_7_1_circular_references_are_resolved,
    |ctx| async move {
        let token = ctx.token("acme", &[Scope::Write]);
        let res = bulk(
            &ctx,
            &token,
            json!({
                "schemas": [BULK_REQUEST],
                "Operations": [
                    {"method": "POST", "path": "/Groups", "bulkId": "qwerty",
                     "data": {"schemas": [GROUP], "displayName": "Group A",
                              "members": [{"type": "Group", "value": "bulkId:ytrewq"}]}},
                    {"method": "POST", "path": "/Groups", "bulkId": "ytrewq",
                     "data": {"schemas": [GROUP], "displayName": "Group B",
                              "members": [{"type": "Group", "value": "bulkId:qwerty"}]}}
                ]
            }),
        )
        .await;
        let ops = res["Operations"].as_array().unwrap();
        assert_eq!(ops.len(), 2);
        let a = id_of(&ops[0]["location"]);
        let b = id_of(&ops[1]["location"]);
        for (op, id, other) in [(&ops[0], &a, &b), (&ops[1], &b, &a)] {
            assert_eq!(op["status"], "201");
            let got = ctx
                .send(Method::GET, &format!("/scim/v2/Groups/{id}"), &token, None)
                .await
                .expect(200);
            assert_eq!(got.body["members"][0]["value"], other.as_str());
            assert_eq!(got.body["members"].as_array().unwrap().len(), 1);
            // The version reported is the one after the references were added.
            assert_eq!(op["version"], got.body["meta"]["version"]);
        }
        assert_eq!(ops[0]["version"], "W/\"2\"");
        assert_eq!(ops[1]["version"], "W/\"1\"");
    }
);

backend_test!(
    references_in_paths_nested_values_and_forward,
    |ctx| async move {
        let token = ctx.token("acme", &[Scope::Write]);
        let ext = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
        let res = bulk(
            &ctx,
            &token,
            json!({
                "schemas": [BULK_REQUEST],
                "Operations": [
                    // A forward reference in a PATCH path: runs after the POST.
                    {"method": "PATCH", "path": "/Users/bulkId:boss",
                     "data": {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                              "Operations": [{"op": "replace", "path": "title", "value": "Boss"}]}},
                    {"method": "POST", "path": "/Users", "bulkId": "worker",
                     "data": {"schemas": [USER, ext], "userName": "worker",
                              ext: {"manager": {"value": "bulkId:boss"}}}},
                    {"method": "POST", "path": "/Users", "bulkId": "boss",
                     "data": {"schemas": [USER], "userName": "boss"}}
                ]
            }),
        )
        .await;
        let ops = res["Operations"].as_array().unwrap();
        assert_eq!(ops.len(), 3, "{res}");
        assert_eq!(ops[0]["status"], "200", "{res}");
        assert_eq!(ops[1]["status"], "201");
        assert_eq!(ops[2]["status"], "201");
        let worker = id_of(&ops[1]["location"]);
        let boss = id_of(&ops[2]["location"]);
        assert_eq!(ops[0]["location"], ops[2]["location"]);
        let got = ctx
            .send(
                Method::GET,
                &format!("/scim/v2/Users/{worker}"),
                &token,
                None,
            )
            .await
            .expect(200);
        assert_eq!(got.body[ext]["manager"]["value"], boss.as_str());
        assert_eq!(ops[1]["version"], got.body["meta"]["version"]);
        let got = ctx
            .send(Method::GET, &format!("/scim/v2/Users/{boss}"), &token, None)
            .await
            .expect(200);
        assert_eq!(got.body["title"], "Boss");
    }
);

backend_test!(put_patch_delete_with_versions, |ctx| async move {
    let token = ctx.token("acme", &[Scope::Write]);
    let id = ctx
        .create(
            "/scim/v2/Users",
            &token,
            json!({"schemas": [USER], "userName": "u"}),
        )
        .await
        .id();
    let path = format!("/Users/{id}");
    let res = bulk(
        &ctx,
        &token,
        json!({
            "schemas": [BULK_REQUEST],
            "Operations": [
                {"method": "PUT", "path": path, "version": "W/\"1\"",
                 "data": {"schemas": [USER], "userName": "u", "nickName": "n"}},
                {"method": "PATCH", "path": path, "version": "W/\"1\"",
                 "data": {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                          "Operations": [{"op": "remove", "path": "nickName"}]}},
                {"method": "DELETE", "path": path, "version": "W/\"2\""},
                {"method": "DELETE", "path": path}
            ]
        }),
    )
    .await;
    let base = ctx.scim_base();
    assert_eq!(
        redact(&res, &base, &[(&id, "<u>")]),
        json!({"schemas": [BULK_RESPONSE], "Operations": [
            {"location": "<base>/Users/<u>", "method": "PUT", "version": "W/\"2\"", "status": "200"},
            {"method": "PATCH", "status": "412", "response": {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                "status": "412", "detail": "the resource is at version W/\"2\", not W/\"1\""}},
            {"location": "<base>/Users/<u>", "method": "DELETE", "status": "204"},
            {"method": "DELETE", "status": "404", "response": {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                "status": "404", "detail": "User '<u>' not found"}}
        ]})
    );
});

backend_test!(fail_on_errors_stops_processing, |ctx| async move {
    let token = ctx.token("acme", &[Scope::Write]);
    ctx.create(
        "/scim/v2/Users",
        &token,
        json!({"schemas": [USER], "userName": "taken"}),
    )
    .await;
    let ops = json!([
        {"method": "POST", "path": "/Users", "bulkId": "a",
         "data": {"schemas": [USER], "userName": "TAKEN"}},
        {"method": "POST", "path": "/Users", "bulkId": "b",
         "data": {"schemas": [USER], "userName": "fresh"}},
        {"method": "POST", "path": "/Groups", "bulkId": "c",
         "data": {"schemas": [GROUP], "displayName": "g", "members": [{"value": "bulkId:a"}]}}
    ]);
    let res = bulk(
        &ctx,
        &token,
        json!({"schemas": [BULK_REQUEST], "failOnErrors": 1, "Operations": ops}),
    )
    .await;
    assert_eq!(
        res["Operations"],
        json!([{"method": "POST", "bulkId": "a", "status": "409", "response": {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "409",
            "scimType": "uniqueness", "detail": "userName 'TAKEN' is already in use"}}])
    );
    // Without failOnErrors everything runs; the reference to the failed
    // POST cannot be resolved (409).
    let res = bulk(
        &ctx,
        &token,
        json!({"schemas": [BULK_REQUEST], "Operations": ops}),
    )
    .await;
    let statuses: Vec<&str> = res["Operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["409", "201", "409"]);
    assert_eq!(
        res["Operations"][2]["response"]["detail"],
        "bulkId 'a' cannot be resolved: the operation that creates it failed or did not run"
    );
});

backend_test!(unresolvable_and_malformed_operations, |ctx| async move {
    let token = ctx.token("acme", &[Scope::Write]);
    // A group held back for a POST that then fails is deleted again.
    let res = bulk(
        &ctx,
        &token,
        json!({"schemas": [BULK_REQUEST], "Operations": [
            {"method": "POST", "path": "/Groups", "bulkId": "g",
             "data": {"schemas": [GROUP], "displayName": "g", "members": [{"value": "bulkId:u"}]}},
            {"method": "POST", "path": "/Users", "bulkId": "u", "data": {"schemas": [USER]}},
            {"method": "POST", "path": "/Groups", "data": {"schemas": [GROUP], "displayName": "h",
             "members": [{"value": "bulkId:nowhere"}]}},
            {"method": "POST", "path": "/Devices", "data": {}},
            {"method": "PUT", "path": "/Users", "data": {}},
            {"method": "PATCH", "path": "/Users/x"}
        ]}),
    )
    .await;
    let ops = res["Operations"].as_array().unwrap();
    let summary: Vec<(&str, Option<&str>)> = ops
        .iter()
        .map(|o| {
            (
                o["status"].as_str().unwrap(),
                o["response"]["scimType"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("409", None),
            ("400", Some("invalidValue")),
            ("400", Some("invalidValue")),
            ("404", None),
            ("400", Some("invalidSyntax")),
            ("400", Some("invalidSyntax"))
        ],
        "{res}"
    );
    assert!(ops[0].get("location").is_none());
    assert_eq!(
        ops[2]["response"]["detail"],
        "bulkId 'nowhere' is not defined by any POST in this request"
    );
    // No group "g" was left behind: the name is free.
    ctx.create(
        "/scim/v2/Groups",
        &token,
        json!({"schemas": [GROUP], "displayName": "g"}),
    )
    .await;

    // Whole-request errors.
    let res = ctx
        .send(
            Method::POST,
            "/scim/v2/Bulk",
            &token,
            Some(&json!({"schemas": [BULK_REQUEST], "Operations": [
                {"method": "POST", "path": "/Users", "bulkId": "x", "data": {"schemas": [USER], "userName": "1"}},
                {"method": "POST", "path": "/Users", "bulkId": "x", "data": {"schemas": [USER], "userName": "2"}}
            ]})),
        )
        .await
        .expect(400);
    assert_eq!(res.body["scimType"], "invalidValue");
    let res = ctx
        .send(
            Method::POST,
            "/scim/v2/Bulk",
            &token,
            Some(&json!({"Operations": []})),
        )
        .await
        .expect(400);
    assert_eq!(res.body["scimType"], "invalidSyntax");
    let res = ctx
        .send(
            Method::POST,
            "/scim/v2/Bulk",
            &token,
            Some(&json!({"schemas": [BULK_REQUEST], "Operations": [{"method": "GET", "path": "/Users"}]})),
        )
        .await
        .expect(400);
    assert_eq!(res.body["scimType"], "invalidSyntax");
    let reader = ctx.token("acme", &[Scope::Read]);
    ctx.send(
        Method::POST,
        "/scim/v2/Bulk",
        &reader,
        Some(&json!({"schemas": [BULK_REQUEST], "Operations": []})),
    )
    .await
    .expect(403);
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_are_advertised_and_enforced() {
    let ctx = Ctx::start_with(Backend::Sqlite, |s| {
        s.bulk_max_operations = 2;
        s.max_body_bytes = 4096;
    })
    .await
    .unwrap();
    let token = ctx.token("acme", &[Scope::Write]);
    let spc = ctx
        .send(Method::GET, "/scim/v2/ServiceProviderConfig", &token, None)
        .await
        .expect(200);
    assert_eq!(
        spc.body["bulk"],
        json!({"supported": true, "maxOperations": 2, "maxPayloadSize": 4096})
    );
    let op =
        json!({"method": "POST", "path": "/Users", "data": {"schemas": [USER], "userName": "x"}});
    let res = ctx
        .send(
            Method::POST,
            "/scim/v2/Bulk",
            &token,
            Some(&json!({"schemas": [BULK_REQUEST], "Operations": [op, op, op]})),
        )
        .await
        .expect(413);
    assert_eq!(
        res.body,
        crate::harness::scim_error(
            413,
            None,
            "the bulk request has 3 operations; maxOperations is 2"
        )
    );
    let big = json!({"schemas": [BULK_REQUEST], "Operations": [
        {"method": "POST", "path": "/Users", "data": {"schemas": [USER], "userName": "x".repeat(5000)}}
    ]});
    let res = ctx
        .send(Method::POST, "/scim/v2/Bulk", &token, Some(&big))
        .await
        .expect(413);
    assert_eq!(res.body["status"], "413");
    // Nothing was created by either.
    let res = bulk(
        &ctx,
        &token,
        json!({"schemas": [BULK_REQUEST], "Operations": [op]}),
    )
    .await;
    assert_eq!(res["Operations"][0]["status"], "201");
}

// Found by the `bulk` fuzz target: a POST created without a forward
// reference (its manager, bulkId b0) is deleted by a later operation before
// b0 exists. When b0 is created, the held-back manager has nothing left to
// go into: the POST's 201 stands (it did create the user, which the DELETE
// then removed), and neither operation is reported as failed.
backend_test!(
    a_post_deleted_before_its_forward_reference_resolves_keeps_its_success,
    |ctx| async move {
        let token = ctx.token("default", &[Scope::Write]);
        let enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
        let body = bulk(
            &ctx,
            &token,
            json!({"schemas": [BULK_REQUEST], "Operations": [
                {"method": "POST", "path": "/Users", "bulkId": "b1",
                 "data": {"schemas": [USER, enterprise], "userName": "report",
                          enterprise: {"manager": {"value": "bulkId:b0"}}}},
                {"method": "DELETE", "path": "/Users/bulkId:b1"},
                {"method": "POST", "path": "/Users", "bulkId": "b0",
                 "data": {"schemas": [USER], "userName": "boss"}}
            ]}),
        )
        .await;
        let statuses: Vec<&Value> = body["Operations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|op| &op["status"])
            .collect();
        assert_eq!(
            statuses,
            [&json!("201"), &json!("204"), &json!("201")],
            "{body}"
        );
        let report = id_of(&body["Operations"][0]["location"]);
        ctx.send(
            Method::GET,
            &format!("/scim/v2/Users/{report}"),
            &token,
            None,
        )
        .await
        .expect(404);
        let boss = id_of(&body["Operations"][2]["location"]);
        ctx.send(Method::GET, &format!("/scim/v2/Users/{boss}"), &token, None)
            .await
            .expect(200);
    }
);
