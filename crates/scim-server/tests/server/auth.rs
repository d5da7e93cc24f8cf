//! Authentication over HTTP: 401 shapes and challenges, scopes, revocation.

use reqwest::StatusCode;
use scim_server::store::TokenStore;
use scim_server::tokens::Scope;

use crate::harness::{json_parts, scim_error};

const MISSING: &str = "authentication required: send 'Authorization: Bearer <token>'";
const INVALID: &str = "the bearer token is not valid";

backend_test!(missing_token_is_401_with_challenge, |ctx| async move {
    let res = ctx.get("/scim/v2/Schemas", None).await;
    assert_eq!(
        res.headers()["www-authenticate"].to_str().unwrap(),
        r#"Bearer realm="scim""#
    );
    let (status, content_type, body) = json_parts(res).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(content_type, "application/scim+json");
    assert_eq!(body, scim_error(401, None, MISSING));

    // Another scheme is no bearer credential either.
    let res = ctx
        .client
        .get(ctx.url("/scim/v2/ServiceProviderConfig"))
        .basic_auth("admin", Some("admin"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
});

backend_test!(bad_tokens_are_401_invalid_token, |ctx| async move {
    let real = ctx.token("acme", &[Scope::Read]);
    // Same shape as a real token, one character changed.
    let mut forged = real.clone();
    forged.pop();
    forged.push(if real.ends_with('A') { 'B' } else { 'A' });
    for token in [forged.as_str(), "nonsense", "scim_", "Bearer"] {
        let res = ctx.get("/scim/v2/ResourceTypes", Some(token)).await;
        assert_eq!(
            res.headers()["www-authenticate"].to_str().unwrap(),
            r#"Bearer realm="scim", error="invalid_token""#,
            "{token}"
        );
        let (status, _, body) = json_parts(res).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token}");
        assert_eq!(body, scim_error(401, None, INVALID));
    }
    let res = ctx.get("/scim/v2/ResourceTypes", Some(&real)).await;
    assert_eq!(res.status(), StatusCode::OK);
});

backend_test!(read_and_write_tokens_read_discovery, |ctx| async move {
    for scope in [Scope::Read, Scope::Write] {
        let token = ctx.token("acme", &[scope]);
        for path in [
            "/scim/v2/ServiceProviderConfig",
            "/scim/v2/ResourceTypes",
            "/scim/v2/Schemas",
        ] {
            let res = ctx.get(path, Some(&token)).await;
            assert_eq!(res.status(), StatusCode::OK, "{scope} {path}");
        }
    }
});

backend_test!(revoked_tokens_are_401, |ctx| async move {
    let token = ctx.token("acme", &[Scope::Write]);
    assert_eq!(
        ctx.get("/scim/v2/Schemas", Some(&token)).await.status(),
        StatusCode::OK
    );
    let id = ctx.store.list_tokens(Some("acme")).unwrap()[0].id;
    ctx.store.revoke_token(id).unwrap().unwrap();
    let res = ctx.get("/scim/v2/Schemas", Some(&token)).await;
    let (status, _, body) = json_parts(res).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, scim_error(401, None, INVALID));
});
