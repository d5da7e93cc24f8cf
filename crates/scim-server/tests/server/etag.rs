//! ETags: the header equals meta.version; If-Match on PUT, PATCH and
//! DELETE (412 on mismatch; `*`; lists; weak comparison); If-None-Match on
//! GET (304 without a body).

use reqwest::Method;
use scim_server::tokens::Scope;
use serde_json::{Value, json};

use crate::groups::{PATCH_OP, USER};

fn nick(n: &str) -> Value {
    json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "nickName", "value": n}]})
}

backend_test!(if_match_guards_writes, |ctx| async move {
    let token = ctx.token("acme", &[Scope::Write]);
    let created = ctx
        .create(
            "/scim/v2/Users",
            &token,
            json!({"schemas": [USER], "userName": "a"}),
        )
        .await;
    let path = format!("/scim/v2/Users/{}", created.id());
    assert_eq!(created.header("etag"), created.body["meta"]["version"]);

    // A stale version: 412, nothing written.
    let res = ctx
        .send_with(
            Method::PATCH,
            &path,
            &token,
            Some(&nick("x")),
            &[("if-match", "W/\"7\"")],
        )
        .await
        .expect(412);
    assert_eq!(res.body["status"], "412");
    assert_eq!(
        res.body["detail"],
        "the resource is at version W/\"1\", not W/\"7\""
    );
    // The current one, weakly or strongly quoted.
    let res = ctx
        .send_with(
            Method::PATCH,
            &path,
            &token,
            Some(&nick("x")),
            &[("if-match", "W/\"1\"")],
        )
        .await
        .expect(200);
    assert_eq!(res.header("etag"), "W/\"2\"");
    ctx.send_with(
        Method::PATCH,
        &path,
        &token,
        Some(&nick("y")),
        &[("if-match", "\"2\"")],
    )
    .await
    .expect(200);
    // A list naming the current version, and one that does not.
    let put = json!({"schemas": [USER], "userName": "a", "nickName": "z"});
    ctx.send_with(
        Method::PUT,
        &path,
        &token,
        Some(&put),
        &[("if-match", "W/\"1\", W/\"3\"")],
    )
    .await
    .expect(200);
    let res = ctx
        .send_with(
            Method::PUT,
            &path,
            &token,
            Some(&put),
            &[("if-match", "W/\"1\", W/\"2\"")],
        )
        .await
        .expect(412);
    assert_eq!(
        res.body["detail"],
        "the resource is at version W/\"4\", which If-Match does not name"
    );
    // Garbage names nothing.
    ctx.send_with(
        Method::DELETE,
        &path,
        &token,
        None,
        &[("if-match", "\"abc\"")],
    )
    .await
    .expect(412);
    ctx.send_with(
        Method::DELETE,
        &path,
        &token,
        None,
        &[("if-match", "W/\"3\"")],
    )
    .await
    .expect(412);
    // `*` matches any existing version.
    ctx.send_with(
        Method::PATCH,
        &path,
        &token,
        Some(&nick("w")),
        &[("if-match", "*")],
    )
    .await
    .expect(200);
    ctx.send_with(
        Method::DELETE,
        &path,
        &token,
        None,
        &[("if-match", "W/\"5\"")],
    )
    .await
    .expect(204);
    // Gone: 404 before any precondition.
    ctx.send_with(Method::DELETE, &path, &token, None, &[("if-match", "*")])
        .await
        .expect(404);
    ctx.send_with(
        Method::PUT,
        &path,
        &token,
        Some(&put),
        &[("if-match", "W/\"1\", W/\"2\"")],
    )
    .await
    .expect(404);
});

backend_test!(if_none_match_on_get_is_304, |ctx| async move {
    let token = ctx.token("acme", &[Scope::Read, Scope::Write]);
    let id = ctx
        .create(
            "/scim/v2/Groups",
            &token,
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "g"}),
        )
        .await
        .id();
    let path = format!("/scim/v2/Groups/{id}");
    for tag in ["W/\"1\"", "\"1\"", "*", "W/\"0\", W/\"1\""] {
        let res = ctx
            .send_with(Method::GET, &path, &token, None, &[("if-none-match", tag)])
            .await
            .expect(304);
        assert_eq!(res.body, Value::Null, "{tag}");
        assert_eq!(res.header("etag"), "W/\"1\"");
    }
    let res = ctx
        .send_with(
            Method::GET,
            &path,
            &token,
            None,
            &[("if-none-match", "W/\"0\"")],
        )
        .await
        .expect(200);
    assert_eq!(res.header("etag"), "W/\"1\"");
    assert_eq!(res.body["meta"]["version"], "W/\"1\"");
});
