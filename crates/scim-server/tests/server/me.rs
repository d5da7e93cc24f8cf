//! /Me: the User a token is bound to; 404 for a token bound to none.

use reqwest::Method;
use scim_server::store::{TenantStore, TokenStore};
use scim_server::tokens::{Scope, Scopes};
use serde_json::json;

use crate::groups::{PATCH_OP, USER};
use crate::harness::{Ctx, scim_error};

/// A token of tenant `acme` bound to the user `user_id`.
fn bound_token(ctx: &Ctx, user_id: &str, scopes: &[Scope]) -> String {
    let tenant = ctx.store.ensure_tenant("acme").unwrap();
    ctx.store
        .create_bound_token(tenant.id, "me", Scopes::of(scopes), Some(user_id))
        .unwrap()
        .secret
}

const UNBOUND: &str = "this token is not bound to a user, so /Me names no resource; \
     create a token with `scim-server token create --user <id or userName>`";

backend_test!(me_acts_on_the_bound_user, |ctx| async move {
    let admin = ctx.token("acme", &[Scope::Write]);
    let alice = ctx
        .create(
            "/scim/v2/Users",
            &admin,
            json!({"schemas": [USER], "userName": "alice"}),
        )
        .await;
    let id = alice.id();
    let me = bound_token(&ctx, &id, &[Scope::Write]);
    let got = ctx
        .send(Method::GET, "/scim/v2/Me", &me, None)
        .await
        .expect(200);
    assert_eq!(got.body, alice.body);
    assert_eq!(
        got.header("location"),
        format!("{}/Users/{id}", ctx.scim_base())
    );
    assert_eq!(got.header("etag"), "W/\"1\"");
    let slim = ctx
        .send(Method::GET, "/scim/v2/Me?attributes=userName", &me, None)
        .await
        .expect(200);
    assert_eq!(
        slim.body,
        json!({"schemas": [USER], "id": id, "userName": "alice"})
    );

    let patch = json!({"schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "path": "nickName", "value": "Al"}]});
    let patched = ctx
        .send(Method::PATCH, "/scim/v2/Me", &me, Some(&patch))
        .await
        .expect(200);
    assert_eq!(patched.body["nickName"], "Al");
    let put = json!({"schemas": [USER], "userName": "alice", "title": "Dr"});
    let replaced = ctx
        .send_with(
            Method::PUT,
            "/scim/v2/Me",
            &me,
            Some(&put),
            &[("if-match", "W/\"2\"")],
        )
        .await
        .expect(200);
    assert_eq!(replaced.body["title"], "Dr");
    assert!(replaced.body.get("nickName").is_none());

    // A read-only bound token reads but does not write.
    let reader = bound_token(&ctx, &id, &[Scope::Read]);
    ctx.send(Method::GET, "/scim/v2/Me", &reader, None)
        .await
        .expect(200);
    ctx.send(Method::PATCH, "/scim/v2/Me", &reader, Some(&patch))
        .await
        .expect(403);

    ctx.send(Method::DELETE, "/scim/v2/Me", &me, None)
        .await
        .expect(204);
    let res = ctx
        .send(Method::GET, "/scim/v2/Me", &me, None)
        .await
        .expect(404);
    assert_eq!(
        res.body,
        scim_error(404, None, &format!("User '{id}' not found"))
    );
    ctx.send(Method::GET, &format!("/scim/v2/Users/{id}"), &admin, None)
        .await
        .expect(404);
});

backend_test!(me_without_a_bound_user_is_404, |ctx| async move {
    let token = ctx.token("acme", &[Scope::Write]);
    for method in [Method::GET, Method::DELETE] {
        let res = ctx
            .send(method, "/scim/v2/Me", &token, None)
            .await
            .expect(404);
        assert_eq!(res.body, scim_error(404, None, UNBOUND));
    }
    let patch = json!({"schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "path": "nickName", "value": "x"}]});
    let res = ctx
        .send(Method::PATCH, "/scim/v2/Me", &token, Some(&patch))
        .await
        .expect(404);
    assert_eq!(res.body, scim_error(404, None, UNBOUND));
    let res = ctx
        .send(
            Method::POST,
            "/scim/v2/Me",
            &token,
            Some(&json!({"schemas": [USER]})),
        )
        .await
        .expect(405);
    assert_eq!(res.header("allow"), "GET, PUT, PATCH, DELETE");
    let res = ctx.client.get(ctx.url("/scim/v2/Me")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 401);
    // Binding is per token: the info lists it.
    let tokens = ctx.store.list_tokens(Some("acme")).unwrap();
    assert!(tokens.iter().all(|t| t.user_id.is_none()));
});
