//! Queries over HTTP: GET /Users and /Groups, POST .search, sorting,
//! index and cursor paging, projection, and their errors.

use std::time::Duration;

use reqwest::StatusCode;
use scim_core::schema::SchemaRegistry;
use scim_server::store::{ResourceStore, StoredResource, TenantStore, WriteContext};
use scim_server::tokens::Scope;
use serde_json::{Value, json};

use crate::harness::{Backend, Ctx, json_parts};

const SEARCH: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
const LIST: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

fn writer(ctx: &Ctx, tenant: &str) -> WriteContext {
    WriteContext {
        tenant_id: ctx.store.ensure_tenant(tenant).unwrap().id,
        actor: None,
    }
}

fn user(ctx: &Ctx, tenant: &str, doc: Value) -> StoredResource {
    let users = SchemaRegistry::core().resource_schema("User").unwrap();
    ctx.store
        .insert_resource(writer(ctx, tenant), &users, doc)
        .unwrap()
}

fn group(ctx: &Ctx, tenant: &str, doc: Value) -> StoredResource {
    let groups = SchemaRegistry::core().resource_schema("Group").unwrap();
    ctx.store
        .insert_resource(writer(ctx, tenant), &groups, doc)
        .unwrap()
}

/// GET with the query string built from `params` (percent-encoded).
async fn list(ctx: &Ctx, token: &str, path: &str, params: &[(&str, &str)]) -> (StatusCode, Value) {
    let res = ctx
        .client
        .get(ctx.url(path))
        .query(params)
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let (status, content_type, body) = json_parts(res).await;
    assert_eq!(content_type, "application/scim+json");
    (status, body)
}

async fn search(ctx: &Ctx, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
    let res = ctx
        .client
        .post(ctx.url(path))
        .bearer_auth(token)
        .header("content-type", "application/scim+json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let (status, _, body) = json_parts(res).await;
    (status, body)
}

fn names(body: &Value, attr: &str) -> Vec<String> {
    body["Resources"]
        .as_array()
        .unwrap_or_else(|| panic!("no Resources in {body}"))
        .iter()
        .map(|r| r[attr].as_str().unwrap_or("-").to_owned())
        .collect()
}

fn error_type(body: &Value) -> &str {
    body["scimType"].as_str().unwrap_or("")
}

backend_test!(index_paging_counts_and_clamps, |ctx| async move {
    let token = ctx.token("acme", &[Scope::Read]);
    for i in 1..=7 {
        user(&ctx, "acme", json!({"userName": format!("user{i}")}));
    }
    user(&ctx, "other", json!({"userName": "stranger"}));
    let (status, body) = list(&ctx, &token, "/scim/v2/Users", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["schemas"], json!([LIST]));
    assert_eq!(body["totalResults"], json!(7));
    assert_eq!(body["itemsPerPage"], json!(7));
    assert_eq!(body["startIndex"], json!(1));
    let first = &body["Resources"][0];
    assert_eq!(first["userName"], "user1");
    assert_eq!(
        first["meta"]["location"],
        format!(
            "{}/Users/{}",
            ctx.scim_base(),
            first["id"].as_str().unwrap()
        )
    );

    let (_, body) = list(
        &ctx,
        &token,
        "/scim/v2/Users",
        &[("startIndex", "3"), ("count", "2")],
    )
    .await;
    assert_eq!(names(&body, "userName"), ["user3", "user4"]);
    assert_eq!(
        (
            &body["totalResults"],
            &body["itemsPerPage"],
            &body["startIndex"]
        ),
        (&json!(7), &json!(2), &json!(3))
    );
    // startIndex below 1 is 1; a negative count is 0; too large is clamped.
    let (_, body) = list(
        &ctx,
        &token,
        "/scim/v2/Users",
        &[("startIndex", "-4"), ("count", "1")],
    )
    .await;
    assert_eq!(names(&body, "userName"), ["user1"]);
    assert_eq!(body["startIndex"], json!(1));
    let (status, body) = list(&ctx, &token, "/scim/v2/Users", &[("count", "-1")]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["totalResults"], json!(7));
    assert_eq!(body["Resources"], json!([]));
    let (status, body) = list(&ctx, &token, "/scim/v2/Users", &[("count", "100000")]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["itemsPerPage"], json!(7));
    let (_, body) = list(&ctx, &token, "/scim/v2/Users", &[("startIndex", "50")]).await;
    assert_eq!(body["totalResults"], json!(7));
    assert_eq!(body["Resources"], json!([]));
    // Not an integer: invalidValue.
    let (status, body) = list(&ctx, &token, "/scim/v2/Users", &[("count", "ten")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_type(&body), "invalidValue");
    // Deletes count (totals of unfiltered lists are kept by triggers).
    let users = SchemaRegistry::core().resource_schema("User").unwrap();
    let id = first["id"].as_str().unwrap();
    ctx.store
        .delete_resource(writer(&ctx, "acme"), &users, id, None)
        .unwrap();
    let (_, body) = list(&ctx, &token, "/scim/v2/Users", &[("count", "0")]).await;
    assert_eq!(body["totalResults"], json!(6));
    // Groups are listed apart.
    group(&ctx, "acme", json!({"displayName": "Ops"}));
    let (_, body) = list(&ctx, &token, "/scim/v2/Groups", &[]).await;
    assert_eq!(names(&body, "displayName"), ["Ops"]);
});

backend_test!(
    filters_match_sql_metacharacters_literally,
    |ctx| async move {
        let token = ctx.token("acme", &[Scope::Read]);
        for name in [
            "o'brien",
            "100%",
            "100 percent",
            "a_b",
            "axb",
            "back\\slash",
            "x;--",
            "x",
            "Robert'); DROP TABLE resources;--",
        ] {
            user(&ctx, "acme", json!({"userName": name, "title": name}));
        }
        let cases = [
            (r#"userName eq "o'brien""#, vec!["o'brien"]),
            (r#"userName co "%""#, vec!["100%"]),
            (r#"userName sw "100%""#, vec!["100%"]),
            (r#"userName co "_""#, vec!["a_b"]),
            (r#"userName eq "a_b""#, vec!["a_b"]),
            (r#"userName ew "\\slash""#, vec!["back\\slash"]),
            (
                r#"userName co ";--""#,
                vec!["x;--", "Robert'); DROP TABLE resources;--"],
            ),
            (
                r#"title co "'); drop table""#,
                vec!["Robert'); DROP TABLE resources;--"],
            ),
            (r#"userName sw "x""#, vec!["x;--", "x"]),
        ];
        for (filter, want) in cases {
            let (status, body) = list(&ctx, &token, "/scim/v2/Users", &[("filter", filter)]).await;
            assert_eq!(status, StatusCode::OK, "{filter}: {body}");
            let mut got = names(&body, "userName");
            got.sort();
            let mut want: Vec<String> = want.into_iter().map(String::from).collect();
            want.sort();
            assert_eq!(got, want, "{filter}");
        }
        // The table is still there.
        let (_, body) = list(&ctx, &token, "/scim/v2/Users", &[("count", "0")]).await;
        assert_eq!(body["totalResults"], json!(9));
        // A bad filter says where.
        let (status, body) = list(
            &ctx,
            &token,
            "/scim/v2/Users",
            &[("filter", "userName eq \"x\" and nope pr")],
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(error_type(&body), "invalidFilter");
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .ends_with("(at position 20)"),
            "{body}"
        );
        let (status, body) = list(
            &ctx,
            &token,
            "/scim/v2/Users",
            &[("filter", "password eq \"x\"")],
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(error_type(&body), "invalidFilter");
    }
);

backend_test!(sorting_by_any_attribute, |ctx| async move {
    let token = ctx.token("acme", &[Scope::Read]);
    for (name, title, email) in [
        ("carol", Some("b"), Some("z@x")),
        ("alice", None, None),
        ("Bob", Some("a"), Some("a@x")),
        ("dave", Some("B"), None),
    ] {
        let mut doc = json!({"userName": name});
        if let Some(t) = title {
            doc["title"] = json!(t);
        }
        if let Some(e) = email {
            doc["emails"] = json!([{"value": "zz@first"}, {"value": e, "primary": true}]);
        }
        user(&ctx, "acme", doc);
    }
    let sorted = |params: Vec<(&'static str, &'static str)>| {
        let ctx = &ctx;
        let token = token.clone();
        async move {
            let (status, body) = list(ctx, &token, "/scim/v2/Users", &params).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            names(&body, "userName")
        }
    };
    // Case-insensitive, ties by creation order (b: carol, B: dave).
    assert_eq!(
        sorted(vec![("sortBy", "userName")]).await,
        ["alice", "Bob", "carol", "dave"]
    );
    assert_eq!(
        sorted(vec![("sortBy", "USERNAME"), ("sortOrder", "descending")]).await,
        ["dave", "carol", "Bob", "alice"]
    );
    // Missing values last ascending, first descending (RFC 7644 3.4.2.3).
    assert_eq!(
        sorted(vec![("sortBy", "title")]).await,
        ["Bob", "carol", "dave", "alice"]
    );
    assert_eq!(
        sorted(vec![("sortBy", "title"), ("sortOrder", "descending")]).await,
        ["alice", "dave", "carol", "Bob"]
    );
    // Multi-valued: the primary value.
    assert_eq!(
        sorted(vec![("sortBy", "emails.value")]).await,
        ["Bob", "carol", "alice", "dave"]
    );
    assert_eq!(
        sorted(vec![("sortBy", "emails")]).await,
        ["Bob", "carol", "alice", "dave"]
    );
    // With paging and a filter.
    assert_eq!(
        sorted(vec![
            ("sortBy", "title"),
            ("filter", "title pr"),
            ("startIndex", "2"),
            ("count", "1")
        ])
        .await,
        ["carol"]
    );
    // sortOrder alone changes nothing.
    assert_eq!(
        sorted(vec![("sortOrder", "descending")]).await,
        ["carol", "alice", "Bob", "dave"]
    );
    for bad in ["nope", "name", "password"] {
        let (status, body) = list(&ctx, &token, "/scim/v2/Users", &[("sortBy", bad)]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(error_type(&body), "invalidValue", "{bad}");
    }
});

async fn walk(
    ctx: &Ctx,
    token: &str,
    params: &[(&str, &str)],
    mut between: impl FnMut(usize),
) -> Vec<String> {
    let mut seen = Vec::new();
    let mut cursor = String::new();
    for page in 0..100 {
        let mut p: Vec<(&str, &str)> = params.to_vec();
        p.push(("cursor", &cursor));
        let (status, body) = list(ctx, token, "/scim/v2/Users", &p).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body.get("startIndex").is_none());
        if page == 0 {
            assert!(body.get("previousCursor").is_none(), "{body}");
        }
        seen.extend(names(&body, "userName"));
        match body["nextCursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => return seen,
        }
        between(page);
    }
    panic!("the walk does not end");
}

backend_test!(cursors_walk_both_ways, |ctx| async move {
    let token = ctx.token("acme", &[Scope::Read]);
    for i in 0..9 {
        user(
            &ctx,
            "acme",
            json!({"userName": format!("u{i}"), "title": format!("t{}", i % 3)}),
        );
    }
    let all: Vec<String> = (0..9).map(|i| format!("u{i}")).collect();
    assert_eq!(walk(&ctx, &token, &[("count", "2")], |_| {}).await, all);
    // Sorted by title descending: t2 (u2 u5 u8), t1, t0, ties by pk descending.
    assert_eq!(
        walk(
            &ctx,
            &token,
            &[
                ("count", "4"),
                ("sortBy", "title"),
                ("sortOrder", "descending")
            ],
            |_| {}
        )
        .await,
        ["u8", "u5", "u2", "u7", "u4", "u1", "u6", "u3", "u0"]
    );

    // Forward to page 3, then back with previousCursor.
    let page = |cursor: String| {
        let ctx = &ctx;
        let token = token.clone();
        async move {
            let (status, body) = list(
                ctx,
                &token,
                "/scim/v2/Users",
                &[
                    ("count", "3"),
                    ("filter", "userName sw \"u\""),
                    ("cursor", &cursor),
                ],
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            body
        }
    };
    let p1 = page(String::new()).await;
    assert_eq!(p1["totalResults"], json!(9));
    assert_eq!(p1["itemsPerPage"], json!(3));
    let p2 = page(p1["nextCursor"].as_str().unwrap().to_owned()).await;
    let p3 = page(p2["nextCursor"].as_str().unwrap().to_owned()).await;
    assert_eq!(names(&p3, "userName"), ["u6", "u7", "u8"]);
    assert!(p3.get("nextCursor").is_none(), "{p3}");
    let back2 = page(p3["previousCursor"].as_str().unwrap().to_owned()).await;
    assert_eq!(names(&back2, "userName"), ["u3", "u4", "u5"]);
    let back1 = page(back2["previousCursor"].as_str().unwrap().to_owned()).await;
    assert_eq!(names(&back1, "userName"), ["u0", "u1", "u2"]);
    assert!(back1.get("previousCursor").is_none(), "{back1}");
    assert!(back1["nextCursor"].is_string());
});

backend_test!(cursor_walks_survive_deletes, |ctx| async move {
    let token = ctx.token("acme", &[Scope::Read]);
    let users = SchemaRegistry::core().resource_schema("User").unwrap();
    let w = writer(&ctx, "acme");
    for (pass, sort) in [None, Some("title")].into_iter().enumerate() {
        let prefix = format!("p{pass}-");
        let created: Vec<StoredResource> = (0..12)
            .map(|i| {
                user(
                    &ctx,
                    "acme",
                    json!({"userName": format!("{prefix}u{i:02}"), "title": format!("{}", 12 - i)}),
                )
            })
            .collect();
        let filter = format!("userName sw \"{prefix}\"");
        let mut params = vec![("count", "3"), ("filter", filter.as_str())];
        if let Some(s) = sort {
            params.push(("sortBy", s));
        }
        // While walking, delete rows already seen and rows not yet seen:
        // nothing is skipped or repeated.
        let store = ctx.store.clone();
        let mut deleted: Vec<String> = Vec::new();
        let seen = walk(&ctx, &token, &params, |page| {
            if page == 0 {
                for victim in [&created[1], &created[10], &created[2], &created[6]] {
                    store.delete_resource(w, &users, &victim.id, None).unwrap();
                    deleted.push(victim.document["userName"].as_str().unwrap().to_owned());
                }
            }
        })
        .await;
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), seen.len(), "repeated: {seen:?}");
        // Every row that lived through the walk was seen.
        for r in &created {
            let name = r.document["userName"].as_str().unwrap().to_owned();
            if !deleted.contains(&name) {
                assert!(
                    seen.contains(&name),
                    "{name} skipped (sort {sort:?}): {seen:?}"
                );
            }
        }
        assert!(seen.len() >= 8, "{seen:?}");
    }
});

backend_test!(cursor_errors, |ctx| async move {
    let token = ctx.token("acme", &[Scope::Read]);
    let other = ctx.token("other", &[Scope::Read]);
    for i in 0..5 {
        user(&ctx, "acme", json!({"userName": format!("u{i}")}));
        user(&ctx, "other", json!({"userName": format!("u{i}")}));
    }
    let (_, first) = list(
        &ctx,
        &token,
        "/scim/v2/Users",
        &[("cursor", ""), ("count", "2")],
    )
    .await;
    let next = first["nextCursor"].as_str().unwrap().to_owned();
    let check = |params: Vec<(&'static str, String)>, who: String, want: &'static str| {
        let ctx = &ctx;
        async move {
            let p: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let (status, body) = list(ctx, &who, "/scim/v2/Users", &p).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{params:?}: {body}");
            assert_eq!(error_type(&body), want, "{params:?}: {body}");
        }
    };
    let mut tampered = next.clone().into_bytes();
    tampered[3] = if tampered[3] == b'x' { b'y' } else { b'x' };
    let tampered = String::from_utf8(tampered).unwrap();
    check(
        vec![("cursor", tampered), ("count", "2".into())],
        token.clone(),
        "invalidCursor",
    )
    .await;
    check(
        vec![("cursor", "garbage".into()), ("count", "2".into())],
        token.clone(),
        "invalidCursor",
    )
    .await;
    // Another tenant's token, another query: invalid too.
    check(
        vec![("cursor", next.clone()), ("count", "2".into())],
        other.clone(),
        "invalidCursor",
    )
    .await;
    check(
        vec![
            ("cursor", next.clone()),
            ("count", "2".into()),
            ("filter", "userName pr".into()),
        ],
        token.clone(),
        "invalidCursor",
    )
    .await;
    // Another page size, or one over the maximum.
    check(
        vec![("cursor", next.clone()), ("count", "3".into())],
        token.clone(),
        "invalidCount",
    )
    .await;
    check(
        vec![("cursor", String::new()), ("count", "5000".into())],
        token.clone(),
        "invalidCount",
    )
    .await;
    // The cursor still works with the right query.
    let (status, body) = list(
        &ctx,
        &token,
        "/scim/v2/Users",
        &[("cursor", &next), ("count", "2")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(names(&body, "userName"), ["u2", "u3"]);
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursors_expire() {
    let ctx = Ctx::start_with(Backend::Sqlite, |s| s.cursor_timeout_secs = 1)
        .await
        .unwrap();
    let token = ctx.token("acme", &[Scope::Read]);
    for i in 0..3 {
        user(&ctx, "acme", json!({"userName": format!("u{i}")}));
    }
    let (_, first) = list(
        &ctx,
        &token,
        "/scim/v2/Users",
        &[("cursor", ""), ("count", "1")],
    )
    .await;
    let next = first["nextCursor"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, body) = list(
        &ctx,
        &token,
        "/scim/v2/Users",
        &[("cursor", &next), ("count", "1")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_type(&body), "expiredCursor");
}

backend_test!(post_search_and_projection, |ctx| async move {
    let token = ctx.token("acme", &[Scope::Read]);
    user(
        &ctx,
        "acme",
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "bjensen", "displayName": "Babs",
        "emails": [{"value": "b@example.com", "type": "work"}], "title": "Guide"}),
    );
    user(
        &ctx,
        "acme",
        json!({"userName": "jsmith", "displayName": "Jim"}),
    );
    group(&ctx, "acme", json!({"displayName": "Babs fans"}));

    let (status, body) = search(
        &ctx,
        &token,
        "/scim/v2/Users/.search",
        json!({
            "schemas": [SEARCH],
            "filter": "displayName sw \"b\"",
            "attributes": ["userName", "emails.value"],
            "startIndex": 1,
            "count": 10
        }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let r = &body["Resources"][0];
    assert_eq!(body["totalResults"], json!(1));
    let mut keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["emails", "id", "schemas", "userName"]);
    assert_eq!(r["emails"], json!([{"value": "b@example.com"}]));

    let (_, body) = search(
        &ctx,
        &token,
        "/scim/v2/Users/.search",
        json!({
            "schemas": [SEARCH], "excludedAttributes": "emails,title"
        }),
    )
    .await;
    assert!(body["Resources"][0].get("emails").is_none());
    assert!(body["Resources"][0].get("title").is_none());
    assert_eq!(body["Resources"][0]["displayName"], "Babs");

    // The schema URN is required.
    let (status, body) = search(
        &ctx,
        &token,
        "/scim/v2/Groups/.search",
        json!({"filter": "displayName pr"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_type(&body), "invalidSyntax");

    // The root: Users and Groups together; each type matches what it has.
    let (status, body) = search(
        &ctx,
        &token,
        "/scim/v2/.search",
        json!({
            "schemas": [SEARCH], "filter": "displayName co \"babs\" or userName eq \"jsmith\"",
            "sortBy": "displayName"
        }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(names(&body, "displayName"), ["Babs", "Babs fans", "Jim"]);
    assert_eq!(body["Resources"][1]["meta"]["resourceType"], "Group");
    assert!(
        body["Resources"][1]["meta"]["location"]
            .as_str()
            .unwrap()
            .contains("/Groups/")
    );
    // An attribute no type has is an error; one only Users have is fine.
    let (status, body) = search(
        &ctx,
        &token,
        "/scim/v2/.search",
        json!({
            "schemas": [SEARCH], "filter": "nope eq 1"
        }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_type(&body), "invalidFilter");
    let (_, body) = search(
        &ctx,
        &token,
        "/scim/v2/.search",
        json!({
            "schemas": [SEARCH], "filter": "userName ne \"jsmith\"", "sortBy": "userName"
        }),
    )
    .await;
    // The group has no userName, so `ne` holds for it; it sorts last.
    assert_eq!(names(&body, "displayName"), ["Babs", "Babs fans"]);
    // Cursors over the root.
    let (_, body) = search(
        &ctx,
        &token,
        "/scim/v2/.search",
        json!({
            "schemas": [SEARCH], "cursor": "", "count": 2
        }),
    )
    .await;
    let next = body["nextCursor"].as_str().unwrap();
    let (_, body) = search(
        &ctx,
        &token,
        "/scim/v2/.search",
        json!({
            "schemas": [SEARCH], "cursor": next, "count": 2
        }),
    )
    .await;
    assert_eq!(names(&body, "displayName"), ["Babs fans"]);
    // GET on a search path is 405.
    let res = ctx.get("/scim/v2/Users/.search", Some(&token)).await;
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(res.headers()["allow"], "POST");
});

backend_test!(long_values_are_rechecked, |ctx| async move {
    let token = ctx.token("acme", &[Scope::Read]);
    // Past the 1024 bytes the index keeps: the tail only the document has.
    let long = format!("{}-tail-{}", "a".repeat(1100), "z".repeat(10));
    let longer = format!("{long}!");
    user(&ctx, "acme", json!({"userName": "long", "title": long}));
    user(&ctx, "acme", json!({"userName": "longer", "title": longer}));
    user(&ctx, "acme", json!({"userName": "short", "title": "tail"}));
    let cases = [
        ("title co \"-tail-\"".to_owned(), vec!["long", "longer"]),
        ("title ew \"zzz\"".to_owned(), vec!["long"]),
        (format!("title eq \"{long}\""), vec!["long"]),
        (format!("title ne \"{long}\""), vec!["longer", "short"]),
        (format!("title gt \"{long}\""), vec!["longer", "short"]),
        (format!("title sw \"{long}\""), vec!["long", "longer"]),
        ("not (title co \"zz!\")".to_owned(), vec!["long", "short"]),
    ];
    for (filter, want) in cases {
        let (status, body) = search(
            &ctx,
            &token,
            "/scim/v2/Users/.search",
            json!({
                "schemas": [SEARCH], "filter": filter, "sortBy": "userName"
            }),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            names(&body, "userName"),
            want,
            "{}",
            &filter[..filter.len().min(40)]
        );
        assert_eq!(body["totalResults"], json!(want.len()));
    }
});

// A filter that needs a long value re-checked against the stored document
// and also reads a computed attribute (User.groups, a member's display)
// sees that attribute as GET serves it.
backend_test!(
    long_values_are_rechecked_with_computed_attributes,
    |ctx| async move {
        let token = ctx.token("acme", &[Scope::Read]);
        let long = format!("{}-tail-{}", "a".repeat(1100), "z".repeat(10));
        let longer = format!("{long}!");
        let alice = user(
            &ctx,
            "acme",
            json!({"userName": "alice", "displayName": "Alice A", "title": long}),
        );
        user(&ctx, "acme", json!({"userName": "bob", "title": longer}));
        let team = group(
            &ctx,
            "acme",
            json!({"displayName": "team", "members": [{"value": alice.id}]}),
        );
        group(
            &ctx,
            "acme",
            json!({"displayName": format!("{long} org"), "members": [{"value": team.id}]}),
        );
        group(
            &ctx,
            "acme",
            json!({"displayName": format!("{long} staff"), "members": [{"value": alice.id}]}),
        );
        let users = [
            (
                format!("title sw \"{long}\" and groups.display eq \"team\""),
                vec!["alice"],
            ),
            (
                format!("title sw \"{long}\" and groups.type eq \"indirect\""),
                vec!["alice"],
            ),
            (
                format!("title sw \"{long}\" and not (groups.display eq \"team\")"),
                vec!["bob"],
            ),
            (
                format!(
                    "title co \"-tail-\" and groups[value eq \"{}\" and type eq \"direct\"]",
                    team.id
                ),
                vec!["alice"],
            ),
        ];
        for (filter, want) in users {
            let (status, body) = search(
                &ctx,
                &token,
                "/scim/v2/Users/.search",
                json!({"schemas": [SEARCH], "filter": filter, "sortBy": "userName"}),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_eq!(names(&body, "userName"), want, "{}", &filter[1100..]);
        }
        let groups = [
            (
                format!("displayName sw \"{long}\" and members.display eq \"Alice A\""),
                vec![format!("{long} staff")],
            ),
            (
                format!("displayName sw \"{long}\" and members.display eq \"team\""),
                vec![format!("{long} org")],
            ),
        ];
        for (filter, want) in groups {
            let (status, body) = search(
                &ctx,
                &token,
                "/scim/v2/Groups/.search",
                json!({"schemas": [SEARCH], "filter": filter, "sortBy": "displayName"}),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_eq!(names(&body, "displayName"), want, "{}", &filter[1100..]);
        }
    }
);

// A page renders every resource as GET by id does: each user's groups
// (direct and, through nesting, indirect) and each group's members with
// their current names, read for the whole page at once.
backend_test!(
    pages_render_groups_and_members_like_get_by_id,
    |ctx| async move {
        let token = ctx.token("acme", &[Scope::Read]);
        let alice = user(&ctx, "acme", json!({"userName": "alice"}));
        let bob = user(
            &ctx,
            "acme",
            json!({"userName": "bob", "displayName": "Bob B"}),
        );
        let carol = user(&ctx, "acme", json!({"userName": "carol"}));
        let inner = group(
            &ctx,
            "acme",
            json!({"displayName": "inner", "members": [{"value": alice.id}, {"value": bob.id}]}),
        );
        let outer = group(
            &ctx,
            "acme",
            json!({"displayName": "outer", "members": [
            {"value": inner.id}, {"value": bob.id, "display": "given name"}]}),
        );
        for (path, n) in [("/scim/v2/Users", 3), ("/scim/v2/Groups", 2)] {
            let (status, page) = list(&ctx, &token, path, &[("count", "10")]).await;
            assert_eq!(status, StatusCode::OK);
            let resources = page["Resources"].as_array().unwrap();
            assert_eq!(resources.len(), n);
            for listed in resources {
                let id = listed["id"].as_str().unwrap();
                let res = ctx.get(&format!("{path}/{id}"), Some(&token)).await;
                let (_, _, single) = json_parts(res).await;
                assert_eq!(listed, &single, "{path}/{id}");
            }
        }
        // The computed values themselves.
        let (_, page) = list(
            &ctx,
            &token,
            "/scim/v2/Users",
            &[("filter", &format!("id eq \"{}\"", bob.id))],
        )
        .await;
        let mut groups: Vec<(String, String)> = page["Resources"][0]["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| {
                (
                    g["display"].as_str().unwrap().to_owned(),
                    g["type"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        groups.sort();
        assert_eq!(
            groups,
            [
                ("inner".to_owned(), "direct".to_owned()),
                ("outer".to_owned(), "direct".to_owned())
            ]
        );
        let (_, page) = list(
            &ctx,
            &token,
            "/scim/v2/Users",
            &[("filter", &format!("id eq \"{}\"", alice.id))],
        )
        .await;
        assert_eq!(
            page["Resources"][0]["groups"]
                .as_array()
                .unwrap()
                .iter()
                .map(|g| (g["value"].as_str().unwrap(), g["type"].as_str().unwrap()))
                .collect::<Vec<_>>(),
            [
                (inner.id.as_str(), "direct"),
                (outer.id.as_str(), "indirect")
            ]
        );
        assert!(
            page["Resources"][0]["groups"][0]["$ref"]
                .as_str()
                .unwrap()
                .ends_with(&format!("/Groups/{}", inner.id))
        );
        let _ = carol;
    }
);

/// The sorted ids a filter selects at `path`.
async fn ids_of(ctx: &Ctx, token: &str, path: &str, filter: &str) -> Vec<String> {
    let (status, page) = list(ctx, token, path, &[("filter", filter), ("count", "100")]).await;
    assert_eq!(status, StatusCode::OK, "{filter}: {page}");
    let mut ids: Vec<String> = page["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

fn sorted(ids: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = ids.iter().map(|s| (*s).to_owned()).collect();
    v.sort();
    v
}

// Filters on computed values follow what the server serves: User.groups
// through nested groups (and a cycle), members' display from the member's
// current name when the group stores none, and $ref from the base URL.
backend_test!(computed_values_are_filtered_as_served, |ctx| async move {
    let token = ctx.token("acme", &[Scope::Write]);
    let ann = ctx
        .create(
            "/scim/v2/Users",
            &token,
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "ann"}),
        )
        .await
        .id();
    let ben = ctx
        .create(
            "/scim/v2/Users",
            &token,
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "ben"}),
        )
        .await
        .id();
    let leaf = ctx
        .create(
            "/scim/v2/Groups",
            &token,
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Leaf", "members": [{"value": ann}]}),
        )
        .await
        .id();
    let root = ctx
        .create(
            "/scim/v2/Groups",
            &token,
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Root", "members": [{"value": leaf}, {"value": ben, "display": "Benjamin"}]}),
        )
        .await
        .id();
    // A cycle: Leaf holds Root too.
    ctx.send(
        reqwest::Method::PATCH,
        &format!("/scim/v2/Groups/{leaf}"),
        &token,
        Some(&json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": root}]}]
        })),
    )
    .await
    .expect(200);
    // Another tenant with the same names never answers.
    let other = ctx.token("other", &[Scope::Write]);
    ctx.create(
        "/scim/v2/Users",
        &other,
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "ann"}),
    )
    .await;

    let users = |f: String| {
        let ctx = &ctx;
        let token = &token;
        async move { ids_of(ctx, token, "/scim/v2/Users", &f).await }
    };
    // ann: direct in Leaf, indirect in Root; ben: direct in Root,
    // indirect in Leaf (through the cycle).
    assert_eq!(
        users(format!("groups.value eq \"{root}\"")).await,
        sorted(&[&ann, &ben])
    );
    assert_eq!(
        users(format!(
            "groups[value eq \"{root}\" and type eq \"direct\"]"
        ))
        .await,
        sorted(&[&ben])
    );
    assert_eq!(
        users("groups[display eq \"leaf\" and type eq \"indirect\"]".into()).await,
        sorted(&[&ben])
    );
    assert_eq!(
        users("groups.display sw \"RO\"".into()).await,
        sorted(&[&ann, &ben])
    );
    assert_eq!(
        users(format!(
            "groups.$ref ew \"/Groups/{leaf}\" and userName eq \"ann\""
        ))
        .await,
        sorted(&[&ann])
    );
    assert_eq!(users("not (groups pr)".into()).await, Vec::<String>::new());
    assert_eq!(
        users("groups.display eq null".into()).await,
        Vec::<String>::new()
    );

    let groups = |f: &'static str| {
        let ctx = &ctx;
        let token = &token;
        async move { ids_of(ctx, token, "/scim/v2/Groups", f).await }
    };
    // ann's display is her current userName; ben's is the stored one.
    assert_eq!(groups("members.display eq \"ann\"").await, sorted(&[&leaf]));
    assert_eq!(
        groups("members.display eq \"ben\"").await,
        Vec::<String>::new()
    );
    assert_eq!(
        groups("members.display eq \"benjamin\"").await,
        sorted(&[&root])
    );
    ctx.send(
        reqwest::Method::PATCH,
        &format!("/scim/v2/Users/{ann}"),
        &token,
        Some(&json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "displayName", "value": "Annie"}]
        })),
    )
    .await
    .expect(200);
    assert_eq!(
        groups("members.display eq \"annie\"").await,
        sorted(&[&leaf])
    );
    assert_eq!(
        groups("members.display eq \"ann\"").await,
        Vec::<String>::new()
    );
    assert_eq!(
        groups("members[$ref sw \"http\" and type eq \"Group\"]").await,
        sorted(&[&leaf, &root])
    );
    assert_eq!(
        groups("members[type eq \"User\" and display co \"jam\"]").await,
        sorted(&[&root])
    );
});
