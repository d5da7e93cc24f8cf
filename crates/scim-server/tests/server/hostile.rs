//! Hostile input: SQL metacharacters and LIKE wildcards as plain data,
//! attacker-supplied id / meta / groups, huge and deeply nested bodies,
//! oversized PATCH requests, odd ids in URLs.

use reqwest::Method;
use scim_server::tokens::Scope;
use serde_json::{Value, json};

use crate::groups::{GROUP, PATCH_OP, USER};

backend_test!(sql_metacharacters_are_plain_data, |ctx| async move {
    let token = ctx.token("acme", &[Scope::Write]);
    let names = [
        "'; DROP TABLE resources; --",
        "a_c",
        "abc",
        "a%c",
        "%",
        "_",
        "\\",
        "x\" OR \"1\"=\"1",
        "Robert'); DELETE FROM memberships; --",
    ];
    let mut ids = Vec::new();
    for name in names {
        let res = ctx
            .create(
                "/scim/v2/Users",
                &token,
                json!({"schemas": [USER], "userName": name, "displayName": name}),
            )
            .await;
        assert_eq!(res.body["userName"], name);
        ids.push(res.id());
    }
    // Wildcards matched nothing else: every name was free.
    for (id, name) in ids.iter().zip(names) {
        let got = ctx
            .send(Method::GET, &format!("/scim/v2/Users/{id}"), &token, None)
            .await
            .expect(200);
        assert_eq!(got.body["userName"], name);
    }
    let refs: Vec<Value> = ids.iter().map(|id| json!({"value": id})).collect();
    let group = ctx
        .create(
            "/scim/v2/Groups",
            &token,
            json!({"schemas": [GROUP], "displayName": "'; DROP TABLE memberships; --",
                   "members": refs}),
        )
        .await;
    let displays: Vec<&str> = group.body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["display"].as_str().unwrap())
        .collect();
    assert_eq!(displays, names);
    // Injection through a member id or a URL id finds nothing.
    for evil in ["' OR '1'='1", "%", "_"] {
        let res = ctx
            .send(
                Method::POST,
                "/scim/v2/Groups",
                &token,
                Some(
                    &json!({"schemas": [GROUP], "displayName": evil, "members": [{"value": evil}]}),
                ),
            )
            .await
            .expect(400);
        assert_eq!(res.body["scimType"], "invalidValue");
    }
    for path in [
        "/scim/v2/Users/'%20OR%20'1'='1",
        "/scim/v2/Users/%25",
        "/scim/v2/Users/_",
    ] {
        ctx.send(Method::GET, path, &token, None).await.expect(404);
    }
    // The same case-folded name is still a conflict, wildcards or not.
    let res = ctx
        .send(
            Method::POST,
            "/scim/v2/Users",
            &token,
            Some(&json!({"schemas": [USER], "userName": "A_C"})),
        )
        .await
        .expect(409);
    assert_eq!(res.body["scimType"], "uniqueness");
});

backend_test!(
    attacker_supplied_id_meta_and_groups_are_ignored,
    |ctx| async move {
        let token = ctx.token("acme", &[Scope::Write]);
        let victim = ctx
            .create(
                "/scim/v2/Groups",
                &token,
                json!({"schemas": [GROUP], "displayName": "Admins"}),
            )
            .await
            .id();
        let forged = json!({
            "schemas": [USER],
            "id": victim,
            "userName": "mallory",
            "groups": [{"value": victim, "display": "Admins", "type": "direct"}],
            "meta": {"resourceType": "Group", "version": "W/\"99\"", "created": "2000-01-01T00:00:00Z",
                     "lastModified": "2000-01-01T00:00:00Z", "location": "https://evil.example/x"}
        });
        let created = ctx.create("/scim/v2/Users", &token, forged.clone()).await;
        let id = created.id();
        assert_ne!(id, victim);
        assert!(created.body.get("groups").is_none());
        assert_eq!(created.body["meta"]["resourceType"], "User");
        assert_eq!(created.body["meta"]["version"], "W/\"1\"");
        assert_ne!(created.body["meta"]["created"], "2000-01-01T00:00:00Z");
        assert_eq!(
            created.body["meta"]["location"],
            format!("{}/Users/{id}", ctx.scim_base())
        );
        // The group was not touched and has no members.
        let group = ctx
            .send(
                Method::GET,
                &format!("/scim/v2/Groups/{victim}"),
                &token,
                None,
            )
            .await
            .expect(200);
        assert!(group.body.get("members").is_none());
        assert_eq!(group.body["meta"]["version"], "W/\"1\"");
        // PUT: the same forgeries are ignored.
        let path = format!("/scim/v2/Users/{id}");
        let res = ctx
            .send(Method::PUT, &path, &token, Some(&forged))
            .await
            .expect(200);
        assert_eq!(res.body["id"], id.as_str());
        assert!(res.body.get("groups").is_none());
        // PATCH naming a readOnly attribute by path is refused.
        for target in ["id", "groups", "meta"] {
            let res = ctx
                .send(
                    Method::PATCH,
                    &path,
                    &token,
                    Some(&json!({"schemas": [PATCH_OP], "Operations": [
                    {"op": "replace", "path": target, "value": victim}]})),
                )
                .await;
            assert_eq!(res.status.as_u16(), 400, "{target}: {}", res.body);
        }
        let still = ctx.send(Method::GET, &path, &token, None).await.expect(200);
        assert_eq!(still.body["id"], id.as_str());
        assert!(still.body.get("groups").is_none());
    }
);

backend_test!(huge_and_deep_bodies_are_refused_cleanly, |ctx| async move {
    let token = ctx.token("acme", &[Scope::Write]);
    // 10 MB: 413 before it is read.
    let big = json!({"schemas": [USER], "userName": "x".repeat(10 * 1024 * 1024)});
    let res = ctx
        .send(Method::POST, "/scim/v2/Users", &token, Some(&big))
        .await
        .expect(413);
    assert_eq!(res.body["status"], "413");
    // Nesting far beyond any schema: 400, no crash.
    let depth = 100_000;
    let deep = format!(
        "{{\"schemas\":[\"{USER}\"],\"userName\":\"d\",\"x\":{}{}}}",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let res = ctx
        .client
        .post(ctx.url("/scim/v2/Users"))
        .bearer_auth(&token)
        .header("content-type", "application/scim+json")
        .body(deep.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["scimType"], "invalidSyntax");
    let res = ctx
        .client
        .post(ctx.url("/scim/v2/Bulk"))
        .bearer_auth(&token)
        .header("content-type", "application/scim+json")
        .body(deep)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
    // Deep but parseable values in a resource are refused by the schema.
    let mut nested = json!("leaf");
    for _ in 0..100 {
        nested = json!({"a": nested});
    }
    let res = ctx
        .send(
            Method::POST,
            "/scim/v2/Users",
            &token,
            Some(&json!({"schemas": [USER], "userName": "n", "name": nested})),
        )
        .await
        .expect(400);
    assert_eq!(res.body["scimType"], "invalidValue");
    // Not UTF-8.
    let res = ctx
        .client
        .post(ctx.url("/scim/v2/Users"))
        .bearer_auth(&token)
        .header("content-type", "application/scim+json")
        .body(vec![b'{', 0xff, 0xfe, b'}'])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
    // The server is fine afterwards.
    ctx.create(
        "/scim/v2/Users",
        &token,
        json!({"schemas": [USER], "userName": "ok"}),
    )
    .await;
});

backend_test!(patch_with_too_many_operations_is_413, |ctx| async move {
    let token = ctx.token("acme", &[Scope::Write]);
    let id = ctx
        .create(
            "/scim/v2/Users",
            &token,
            json!({"schemas": [USER], "userName": "p"}),
        )
        .await
        .id();
    let ops: Vec<Value> = (0..10_000)
        .map(|i| json!({"op": "replace", "path": "nickName", "value": format!("n{i}")}))
        .collect();
    let path = format!("/scim/v2/Users/{id}");
    let res = ctx
        .send(
            Method::PATCH,
            &path,
            &token,
            Some(&json!({"schemas": [PATCH_OP], "Operations": ops})),
        )
        .await
        .expect(413);
    assert_eq!(
        res.body["detail"],
        "a PATCH request may hold at most 1000 operations; this one has 10000"
    );
    let got = ctx.send(Method::GET, &path, &token, None).await.expect(200);
    assert_eq!(got.body["meta"]["version"], "W/\"1\"");
    // Malformed PatchOp messages are 400s naming the problem.
    for bad in [
        json!({"Operations": [{"op": "replace", "path": "nickName", "value": "x"}]}),
        json!({"schemas": [PATCH_OP], "Operations": [{"op": "explode", "path": "nickName"}]}),
        json!({"schemas": [PATCH_OP], "Operations": "nope"}),
        json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "nick[[[", "value": 1}]}),
    ] {
        let res = ctx.send(Method::PATCH, &path, &token, Some(&bad)).await;
        assert_eq!(res.status.as_u16(), 400, "{bad}: {}", res.body);
        assert!(res.body["scimType"].is_string(), "{}", res.body);
    }
});

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const SEARCH: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
const BULK: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";

/// Asserts a 400 with `scimType`, naming U+0000 in the detail.
#[track_caller]
fn refused(res: crate::harness::Res, scim_type: &str, what: &str) {
    assert_eq!(res.status.as_u16(), 400, "{what}: {}", res.body);
    assert_eq!(res.body["scimType"], scim_type, "{what}: {}", res.body);
    assert!(
        res.body["detail"].as_str().unwrap_or("").contains("U+0000"),
        "{what}: {}",
        res.body
    );
}

backend_test!(nul_is_refused_wherever_a_string_enters, |ctx| async move {
    let token = ctx.token("acme", &[Scope::Write]);
    let admin = ctx.token("acme", &[Scope::Admin]);
    let nul = "a\u{0}b";
    let user = ctx
        .create(
            "/scim/v2/Users",
            &token,
            json!({"schemas": [USER], "userName": "plain", "title": "t"}),
        )
        .await
        .id();
    let user_path = format!("/scim/v2/Users/{user}");
    // Bodies: any attribute, any depth, keys too, extensions, unknown URNs.
    for body in [
        json!({"schemas": [USER], "userName": nul}),
        json!({"schemas": [USER], "userName": "u1", "displayName": nul}),
        json!({"schemas": [USER], "userName": "u2", "title": nul}),
        json!({"schemas": [USER], "userName": "u3", "externalId": nul}),
        json!({"schemas": [USER], "userName": "u4", "name": {"givenName": nul}}),
        json!({"schemas": [USER], "userName": "u5", "emails": [{"value": "x@y"}, {"value": nul}]}),
        json!({"schemas": [USER, ENTERPRISE], "userName": "u6", ENTERPRISE: {"department": nul}}),
        json!({"schemas": [USER], "userName": "u7", "nick\u{0}Name": "x"}),
        json!({"schemas": [USER], "userName": "u8", "urn:example:unknown": {"k": nul}}),
        json!({"schemas": [USER, nul], "userName": "u9"}),
    ] {
        let res = ctx
            .send(Method::POST, "/scim/v2/Users", &token, Some(&body))
            .await;
        refused(res, "invalidValue", &body.to_string());
    }
    let res = ctx
        .send(
            Method::POST,
            "/scim/v2/Groups",
            &token,
            Some(&json!({"schemas": [GROUP], "displayName": "g", "members": [{"value": nul}]})),
        )
        .await;
    refused(res, "invalidValue", "member value");
    let res = ctx
        .send(
            Method::POST,
            "/scim/v2/Groups",
            &token,
            Some(&json!({"schemas": [GROUP], "displayName": nul})),
        )
        .await;
    refused(res, "invalidValue", "group displayName");
    // PUT, PATCH (value, path, filter in a path): refused, nothing written.
    let res = ctx
        .send(
            Method::PUT,
            &user_path,
            &token,
            Some(&json!({"schemas": [USER], "userName": "plain", "title": nul})),
        )
        .await;
    refused(res, "invalidValue", "PUT");
    for op in [
        json!({"op": "replace", "path": "title", "value": nul}),
        json!({"op": "replace", "value": {"title": nul}}),
        json!({"op": "add", "path": "emails[type eq \"a\u{0}\"].value", "value": "x"}),
        json!({"op": "replace", "path": "title\u{0}", "value": "x"}),
    ] {
        let res = ctx
            .send(
                Method::PATCH,
                &user_path,
                &token,
                Some(&json!({"schemas": [PATCH_OP], "Operations": [op]})),
            )
            .await;
        refused(res, "invalidValue", &op.to_string());
    }
    let got = ctx
        .send(Method::GET, &user_path, &token, None)
        .await
        .expect(200);
    assert_eq!(got.body["meta"]["version"], "W/\"1\"");
    assert_eq!(got.body["title"], "t");
    // /Bulk and /.search bodies.
    let res = ctx
        .send(
            Method::POST,
            "/scim/v2/Bulk",
            &token,
            Some(&json!({"schemas": [BULK], "Operations": [
                {"method": "POST", "path": "/Users", "bulkId": "a",
                 "data": {"schemas": [USER], "userName": "fine"}},
                {"method": "POST", "path": "/Users", "bulkId": "b",
                 "data": {"schemas": [USER], "userName": nul}}]})),
        )
        .await;
    refused(res, "invalidValue", "bulk");
    let res = ctx
        .send(
            Method::POST,
            "/scim/v2/Users/.search",
            &token,
            Some(&json!({"schemas": [SEARCH], "filter": format!("userName eq \"{nul}\"")})),
        )
        .await;
    refused(res, "invalidValue", ".search");
    // Filters, other query parameters, path ids.
    let res = ctx
        .send(
            Method::GET,
            "/scim/v2/Users?filter=userName%20eq%20%22a%00%22",
            &token,
            None,
        )
        .await;
    refused(res, "invalidFilter", "filter");
    for path in [
        "/scim/v2/Users?attributes=userName%00".to_owned(),
        "/scim/v2/Groups?sortBy=%00".to_owned(),
        "/scim/v2/Users/%00".to_owned(),
        "/scim/v2/Groups/a%00b".to_owned(),
        format!("{user_path}%00"),
    ] {
        for method in [Method::GET, Method::DELETE] {
            let res = ctx.send(method.clone(), &path, &token, None).await;
            refused(res, "invalidValue", &format!("{method} {path}"));
        }
    }
    // The management API: bodies and query parameters.
    for (path, body) in [
        ("/api/v1/playbooks", json!({"name": nul, "actions": []})),
        (
            "/api/v1/rules",
            json!({"name": "r", "event": "joiner", "filter": "title pr", "playbooks": [nul]}),
        ),
        (
            "/api/v1/applications",
            json!({"name": "app", "baseUrl": "http://127.0.0.1:9/scim", "description": nul}),
        ),
    ] {
        let res = ctx.send(Method::POST, path, &admin, Some(&body)).await;
        refused(res, "invalidValue", path);
    }
    let res = ctx
        .send(Method::GET, "/api/v1/audit?actor=%00", &admin, None)
        .await;
    refused(res, "invalidValue", "audit query");
    // Nothing was stored: the one user and no group.
    let page = ctx
        .send(Method::GET, "/scim/v2/Users", &token, None)
        .await
        .expect(200);
    assert_eq!(page.body["totalResults"], 1, "{}", page.body);
    let page = ctx
        .send(Method::GET, "/scim/v2/Groups", &token, None)
        .await
        .expect(200);
    assert_eq!(page.body["totalResults"], 0, "{}", page.body);
});

backend_test!(
    unique_keys_over_1024_bytes_are_refused_and_long_values_are_stored,
    |ctx| async move {
        let token = ctx.token("acme", &[Scope::Write]);
        // 1,024 bytes whose lower case is 1,536: the limit, accepted.
        let at_limit = "\u{130}".repeat(512);
        let over = format!("{at_limit}x");
        let long = "y".repeat(3000);
        for (path, body) in [
            (
                "/scim/v2/Users",
                json!({"schemas": [USER], "userName": at_limit}),
            ),
            (
                "/scim/v2/Users",
                json!({"schemas": [USER], "userName": "ext", "externalId": at_limit}),
            ),
            (
                "/scim/v2/Groups",
                json!({"schemas": [GROUP], "displayName": at_limit}),
            ),
        ] {
            ctx.create(path, &token, body).await;
        }
        let detail =
            |name: &str, len: usize| format!("{name} is {len} bytes long; the limit is 1024");
        for (path, body, name) in [
            (
                "/scim/v2/Users",
                json!({"schemas": [USER], "userName": over}),
                "userName",
            ),
            (
                "/scim/v2/Users",
                json!({"schemas": [USER], "userName": long}),
                "userName",
            ),
            (
                "/scim/v2/Users",
                json!({"schemas": [USER], "userName": "e2", "externalId": long}),
                "externalId",
            ),
            (
                "/scim/v2/Groups",
                json!({"schemas": [GROUP], "displayName": long}),
                "displayName",
            ),
        ] {
            let res = ctx
                .send(Method::POST, path, &token, Some(&body))
                .await
                .expect(400);
            let len = body[name].as_str().unwrap().len();
            assert_eq!(res.body["scimType"], "invalidValue");
            assert_eq!(res.body["detail"], detail(name, len));
        }
        // PUT and PATCH to a long key: refused, nothing written.
        let id = ctx
            .create(
                "/scim/v2/Users",
                &token,
                json!({"schemas": [USER], "userName": "short"}),
            )
            .await
            .id();
        let path = format!("/scim/v2/Users/{id}");
        let res = ctx
            .send(
                Method::PUT,
                &path,
                &token,
                Some(&json!({"schemas": [USER], "userName": long})),
            )
            .await
            .expect(400);
        assert_eq!(res.body["detail"], detail("userName", 3000));
        for op in [
            json!({"op": "replace", "path": "userName", "value": long}),
            json!({"op": "add", "value": {"externalId": long}}),
        ] {
            let res = ctx
                .send(
                    Method::PATCH,
                    &path,
                    &token,
                    Some(&json!({"schemas": [PATCH_OP], "Operations": [op]})),
                )
                .await
                .expect(400);
            assert_eq!(res.body["scimType"], "invalidValue", "{}", res.body);
        }
        let got = ctx.send(Method::GET, &path, &token, None).await.expect(200);
        assert_eq!(got.body["meta"]["version"], "W/\"1\"");
        // In /Bulk: that operation fails, the others succeed.
        let res = ctx
            .send(
                Method::POST,
                "/scim/v2/Bulk",
                &token,
                Some(&json!({"schemas": [BULK], "Operations": [
                    {"method": "POST", "path": "/Users", "bulkId": "a",
                     "data": {"schemas": [USER], "userName": long}},
                    {"method": "POST", "path": "/Users", "bulkId": "b",
                     "data": {"schemas": [USER], "userName": "bulk-ok"}}]})),
            )
            .await
            .expect(200);
        let ops = &res.body["Operations"];
        assert_eq!(ops[0]["status"], "400", "{ops}");
        assert_eq!(ops[0]["response"]["scimType"], "invalidValue", "{ops}");
        assert_eq!(ops[1]["status"], "201", "{ops}");
        // Long values that are not keys are stored and found on both
        // databases: the attribute index keeps their first 1,024 bytes.
        let title = "t".repeat(100 * 1024);
        let name = "n".repeat(50 * 1024);
        let created = ctx
            .create(
                "/scim/v2/Users",
                &token,
                json!({"schemas": [USER], "userName": "long-values", "title": title,
                       "displayName": name, "emails": [{"value": format!("{name}@x")}]}),
            )
            .await;
        assert_eq!(created.body["title"].as_str().unwrap().len(), title.len());
        for filter in [
            format!("title eq \"{}\"", "t".repeat(2000)),
            format!("title sw \"{}\"", "t".repeat(2000)),
        ] {
            let res = ctx
                .send(
                    Method::POST,
                    "/scim/v2/Users/.search",
                    &token,
                    Some(&json!({"schemas": [SEARCH], "filter": filter})),
                )
                .await
                .expect(200);
            let expected = usize::from(filter.contains(" sw "));
            assert_eq!(res.body["totalResults"], expected, "{}", &filter[..12]);
        }
        let res = ctx
            .send(
                Method::POST,
                "/scim/v2/Users/.search",
                &token,
                Some(&json!({"schemas": [SEARCH], "filter": format!("title eq \"{title}\"")})),
            )
            .await;
        // A filter as long as the value may exceed the filter length limit
        // (400), but never a 500.
        assert!([200, 400].contains(&res.status.as_u16()), "{}", res.body);
    }
);
