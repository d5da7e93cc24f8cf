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
