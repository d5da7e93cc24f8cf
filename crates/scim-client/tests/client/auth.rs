//! Bearer, basic and OAuth2 client-credentials authentication.

use scim_client::auth::{ClientAuthMethod, ClientCredentials};
use scim_client::{Auth, ClientError, Query};
use scim_core::resource::User;
use serde_json::Value;

use crate::harness::ServerOptions;
use crate::proxy::{Fault, Proxy};
use crate::{builder, server_or_skip};

fn guarded() -> ServerOptions {
    ServerOptions {
        bearer_token: Some("the-token".into()),
        ..ServerOptions::default()
    }
}

#[tokio::test]
async fn bearer_token() {
    let server = server_or_skip!(&guarded());
    let good = builder(&server.base())
        .auth(Auth::bearer("the-token"))
        .build()
        .unwrap();
    let d = good.discover().await.unwrap();
    assert!(d.capabilities.patch);
    good.users().create(&User::new("authed")).await.unwrap();
    let bad = builder(&server.base())
        .auth(Auth::bearer("wrong-token"))
        .build()
        .unwrap();
    let err = bad.users().search_all(Query::all()).await.unwrap_err();
    assert_eq!(err.status(), Some(401));
    assert!(!err.to_string().contains("wrong-token"), "{err}");
}

#[tokio::test]
async fn basic_credentials_are_sent() {
    let server = server_or_skip!();
    let proxy = Proxy::start(server.addr).await;
    let c = builder(&proxy.base())
        .auth(Auth::basic("Aladdin", "open sesame"))
        .build()
        .unwrap();
    c.endpoint::<Value>("/Users")
        .search_all(Query::all())
        .await
        .unwrap();
    assert_eq!(
        proxy.seen()[0].authorization.as_deref(),
        Some("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")
    );
}

#[tokio::test]
async fn oauth2_client_credentials() {
    let server = server_or_skip!(&guarded());
    let proxy = Proxy::start(server.addr).await;
    // "client:s3cret", form-encoded then base64.
    proxy.token_endpoint("Basic Y2xpZW50OnMzY3JldA==", "the-token");
    let creds = ClientCredentials::new(
        format!("http://{}/oauth/token", proxy.addr),
        "client",
        "s3cret",
    );
    let c = builder(&proxy.base())
        .auth(Auth::oauth2(creds.clone()))
        .build()
        .unwrap();
    for name in ["o1", "o2", "o3"] {
        c.users().create(&User::new(name)).await.unwrap();
    }
    let tokens = proxy.seen_matching("POST", "/oauth/token");
    assert_eq!(tokens.len(), 1, "the token is cached");
    let creates = proxy.seen_matching("POST", "/v2/Users");
    assert!(
        creates
            .iter()
            .all(|s| s.authorization.as_deref() == Some("Bearer the-token"))
    );

    // A 401 makes the client fetch a new token once and try again.
    proxy.clear();
    proxy.push([Fault::status(401)]);
    c.users().create(&User::new("o4")).await.unwrap();
    assert_eq!(proxy.seen_matching("POST", "/oauth/token").len(), 1);
    assert_eq!(proxy.seen_matching("POST", "/v2/Users").len(), 2);

    // Wrong client credentials: a readable error without the secret.
    let wrong = ClientCredentials {
        client_secret: "nope-secret".into(),
        ..creds.clone()
    };
    let c = builder(&proxy.base())
        .auth(Auth::oauth2(wrong))
        .build()
        .unwrap();
    let err = c.users().get("x").await.unwrap_err();
    assert!(matches!(err, ClientError::OAuth { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "OAuth2 token request to http://{}/oauth/token: 401 invalid_client: unknown client",
            proxy.addr
        )
    );
    assert!(!format!("{err:?}").contains("nope-secret"));

    // client_secret_post: the secret goes in the form, not in a header.
    let body_auth = ClientCredentials {
        client_auth: ClientAuthMethod::RequestBody,
        ..creds
    };
    let c = builder(&proxy.base())
        .auth(Auth::oauth2(body_auth))
        .build()
        .unwrap();
    let err = c.users().get("x").await.unwrap_err();
    assert!(
        matches!(err, ClientError::OAuth { .. }),
        "the proxy wants basic: {err}"
    );
}
