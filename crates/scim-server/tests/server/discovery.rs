//! Discovery endpoints, 404 and 405 shapes.

use reqwest::StatusCode;
use scim_server::tokens::Scope;
use serde_json::{Value, json};

use crate::harness::{Backend, Ctx, json_parts, scim_error};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

async fn get_ok(ctx: &Ctx, token: &str, path: &str) -> Value {
    let (status, content_type, body) = json_parts(ctx.get(path, Some(token)).await).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    assert_eq!(content_type, "application/scim+json", "{path}");
    body
}

backend_test!(service_provider_config_is_honest, |ctx| async move {
    let token = ctx.token("acme", &[Scope::Read]);
    let body = get_ok(&ctx, &token, "/scim/v2/ServiceProviderConfig").await;
    let base = ctx.scim_base();
    assert_eq!(
        body,
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
            "documentationUri": "https://www.rfc-editor.org/rfc/rfc7644",
            "patch": {"supported": true},
            "bulk": {"supported": true, "maxOperations": 1000, "maxPayloadSize": 1_048_576},
            "filter": {"supported": true, "maxResults": 1000},
            "changePassword": {"supported": true},
            "sort": {"supported": true},
            "etag": {"supported": true},
            "authenticationSchemes": [{
                "type": "oauthbearertoken",
                "name": "OAuth Bearer Token",
                "description": "A bearer token issued by `scim-server token create`, sent as 'Authorization: Bearer <token>'.",
                "specUri": "https://www.rfc-editor.org/rfc/rfc6750",
                "primary": true
            }],
            "pagination": {
                "cursor": true,
                "index": true,
                "defaultPaginationMethod": "index",
                "defaultPageSize": 100,
                "maxPageSize": 1000,
                "cursorTimeout": 3600
            },
            "meta": {
                "resourceType": "ServiceProviderConfig",
                "location": format!("{base}/ServiceProviderConfig")
            }
        })
    );
});

backend_test!(resource_types_list_and_get, |ctx| async move {
    let token = ctx.token("acme", &[Scope::Read]);
    let base = ctx.scim_base();
    let list = get_ok(&ctx, &token, "/scim/v2/ResourceTypes").await;
    let user = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
        "id": "User",
        "name": "User",
        "endpoint": "/Users",
        "description": "User Account",
        "schema": USER,
        "schemaExtensions": [{"schema": ENTERPRISE, "required": false}],
        "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/User")}
    });
    assert_eq!(
        list["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"])
    );
    assert_eq!(list["totalResults"], 2);
    assert_eq!(list["startIndex"], 1);
    assert_eq!(list["Resources"][0], user);
    assert_eq!(list["Resources"][1]["id"], "Group");
    assert_eq!(list["Resources"][1]["schema"], GROUP);
    assert_eq!(
        get_ok(&ctx, &token, "/scim/v2/ResourceTypes/User").await,
        user
    );
    let group = get_ok(&ctx, &token, "/scim/v2/ResourceTypes/Group").await;
    assert_eq!(group, list["Resources"][1]);

    let (status, _, body) =
        json_parts(ctx.get("/scim/v2/ResourceTypes/Device", Some(&token)).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, scim_error(404, None, "no resource type 'Device'"));
});

backend_test!(schemas_list_and_get, |ctx| async move {
    let token = ctx.token("acme", &[Scope::Read]);
    let base = ctx.scim_base();
    let list = get_ok(&ctx, &token, "/scim/v2/Schemas").await;
    let mut ids: Vec<&str> = list["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        [
            "urn:ietf:params:scim:schemas:core:2.0:Group",
            "urn:ietf:params:scim:schemas:core:2.0:ResourceType",
            "urn:ietf:params:scim:schemas:core:2.0:Schema",
            "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig",
            "urn:ietf:params:scim:schemas:core:2.0:User",
            ENTERPRISE,
        ]
    );
    assert_eq!(list["totalResults"], 6);

    let user = get_ok(&ctx, &token, &format!("/scim/v2/Schemas/{USER}")).await;
    assert_eq!(
        user["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:Schema"])
    );
    assert_eq!(user["id"], USER);
    assert_eq!(user["name"], "User");
    assert_eq!(
        user["meta"],
        json!({"resourceType": "Schema", "location": format!("{base}/Schemas/{USER}")})
    );
    let user_name = user["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "userName")
        .unwrap();
    assert_eq!(user_name["uniqueness"], "server");
    assert_eq!(user_name["required"], true);
    assert_eq!(user_name["caseExact"], false);
    // The listed document is the same one.
    let listed = list["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == USER)
        .unwrap();
    assert_eq!(listed, &user);

    for missing in [
        "urn:example:nope",
        // The internal pseudo-schema of common attributes is not served.
        "urn:scim-platform:params:scim:schemas:common",
    ] {
        let (status, _, body) = json_parts(
            ctx.get(&format!("/scim/v2/Schemas/{missing}"), Some(&token))
                .await,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(
            body,
            scim_error(404, None, &format!("no schema '{missing}'"))
        );
    }
});

backend_test!(filters_on_discovery_are_403, |ctx| async move {
    let token = ctx.token("acme", &[Scope::Read]);
    for path in [
        "/scim/v2/Schemas?filter=id%20eq%20%22x%22",
        "/scim/v2/ResourceTypes?FILTER=name%20pr",
        "/scim/v2/ServiceProviderConfig?filter=x",
    ] {
        let (status, _, body) = json_parts(ctx.get(path, Some(&token)).await).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(
            body,
            scim_error(
                403,
                None,
                "filtering is not supported on discovery endpoints"
            )
        );
    }
});

backend_test!(other_methods_are_405, |ctx| async move {
    let token = ctx.token("acme", &[Scope::Write]);
    for path in [
        "/scim/v2/ServiceProviderConfig",
        "/scim/v2/ResourceTypes",
        "/scim/v2/ResourceTypes/User",
        "/scim/v2/Schemas",
        &format!("/scim/v2/Schemas/{USER}"),
        "/healthz",
        "/metrics",
    ] {
        for method in [
            reqwest::Method::POST,
            reqwest::Method::PUT,
            reqwest::Method::PATCH,
            reqwest::Method::DELETE,
        ] {
            let res = ctx
                .client
                .request(method.clone(), ctx.url(path))
                .bearer_auth(&token)
                .header("content-type", "application/scim+json")
                .body("{}")
                .send()
                .await
                .unwrap();
            assert_eq!(res.headers()["allow"], "GET", "{method} {path}");
            let (status, content_type, body) = json_parts(res).await;
            assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert_eq!(content_type, "application/scim+json");
            assert_eq!(
                body,
                scim_error(405, None, &format!("{method} is not supported on {path}"))
            );
        }
    }
});

backend_test!(unknown_urls_are_404, |ctx| async move {
    let token = ctx.token("acme", &[Scope::Read]);
    for path in [
        "/scim/v2/Nope",
        "/scim/v2/",
        "/scim/v3/Users",
        "/",
        "/favicon.ico",
    ] {
        for auth in [None, Some(token.as_str())] {
            let (status, content_type, body) = json_parts(ctx.get(path, auth).await).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
            assert_eq!(content_type, "application/scim+json");
            assert_eq!(
                body,
                scim_error(404, None, &format!("no endpoint at {path}"))
            );
        }
    }
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_base_url_is_used_in_locations() {
    let ctx = Ctx::start_with(Backend::Sqlite, |s| {
        s.base_url = Some("https://scim.example.com/tenant-a/scim/v2/".into());
        s.max_results = 50;
        s.default_page_size = 10;
    })
    .await
    .unwrap();
    let token = ctx.token("acme", &[Scope::Read]);
    let spc = get_ok(&ctx, &token, "/scim/v2/ServiceProviderConfig").await;
    assert_eq!(
        spc["meta"]["location"],
        "https://scim.example.com/tenant-a/scim/v2/ServiceProviderConfig"
    );
    assert_eq!(spc["filter"]["maxResults"], 50);
    assert_eq!(spc["pagination"]["defaultPageSize"], 10);
    let user = get_ok(&ctx, &token, "/scim/v2/ResourceTypes/User").await;
    assert_eq!(
        user["meta"]["location"],
        "https://scim.example.com/tenant-a/scim/v2/ResourceTypes/User"
    );
}
