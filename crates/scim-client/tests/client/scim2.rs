//! The client against scim2-server: discovery, CRUD, search and paging,
//! PATCH, ETags, bulk.

use futures::StreamExt as _;
use scim_client::discovery::Paging;
use scim_client::patch::PatchBuilder;
use scim_client::{ClientError, Query, ScimClient};
use scim_core::messages::SortOrder;
use scim_core::resource::{Group, MultiValue, ResourceRef, User};
use serde_json::{Value, json};

use crate::harness::ServerOptions;
use crate::proxy::Proxy;
use crate::{client, server_or_skip};

async fn create_users(c: &ScimClient, prefix: &str, n: usize) -> Vec<User> {
    let mut out = Vec::new();
    for i in 0..n {
        let mut u = User::new(format!("{prefix}{i:03}"));
        u.external_id = Some(format!("ext-{prefix}{i:03}"));
        out.push(c.users().create(&u).await.expect("create user"));
    }
    out
}

#[tokio::test]
async fn discovery_reads_what_scim2_server_announces() {
    let server = server_or_skip!();
    let c = client(&server.base());
    let d = c.discover().await.unwrap();
    let caps = &d.capabilities;
    assert!(caps.patch && caps.filter && caps.etag && caps.sort && caps.change_password);
    assert_eq!(caps.max_results, Some(1000));
    let bulk = caps.bulk.expect("bulk announced");
    assert_eq!(
        (bulk.max_operations, bulk.max_payload_size),
        (1000, 1_048_576)
    );
    assert_eq!(caps.paging, Paging::Index);
    assert_eq!(d.endpoint("User"), Some("/Users"));
    assert_eq!(d.endpoint("Group"), Some("/Groups"));
    assert!(
        d.schemas
            .iter()
            .any(|s| s.id == "urn:ietf:params:scim:schemas:core:2.0:User")
    );
    assert!(d.notes.is_empty(), "{:?}", d.notes);
    assert_eq!(c.capabilities(), *caps);
    let registry = d.registry();
    assert!(
        registry
            .resource_schema("User")
            .unwrap()
            .extension("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")
            .is_some()
    );
}

#[tokio::test]
async fn discovery_falls_back_to_the_plural_config_spelling() {
    let server = server_or_skip!();
    let proxy = Proxy::start(server.addr).await;
    proxy.plural_config();
    let c = client(&proxy.base());
    let d = c.discover().await.unwrap();
    assert!(d.config.is_some() && d.capabilities.patch);
    let targets: Vec<String> = proxy.seen().into_iter().map(|s| s.target).collect();
    assert_eq!(
        &targets[..2],
        ["/v2/ServiceProviderConfig", "/v2/ServiceProviderConfigs"]
    );
}

#[tokio::test]
async fn crud_with_typed_users() {
    let server = server_or_skip!();
    let c = client(&server.base());
    c.discover().await.unwrap();
    let mut bjensen = User::new("crud-bjensen");
    bjensen.external_id = Some("crud-701984".into());
    bjensen.emails = vec![MultiValue::new("bjensen@example.com", "work")];
    let created = c.users().create(&bjensen).await.unwrap();
    let id = created.id.clone().expect("id assigned");
    assert_eq!(created.user_name, "crud-bjensen");

    let fetched = c.users().get_versioned(&id).await.unwrap();
    assert_eq!(fetched.resource.external_id.as_deref(), Some("crud-701984"));
    let v1 = fetched.version.expect("scim2-server sends ETags");

    let mut changed = fetched.resource.clone();
    changed.display_name = Some("Babs".into());
    let replaced = c.users().replace(&id, &changed, Some(&v1)).await.unwrap();
    assert_eq!(replaced.display_name.as_deref(), Some("Babs"));

    // The old version no longer matches: 412.
    let stale = c
        .users()
        .replace(&id, &changed, Some(&v1))
        .await
        .unwrap_err();
    assert!(stale.is_precondition_failed(), "{stale}");

    assert!(c.users().delete(&id, None).await.unwrap());
    assert!(!c.users().delete(&id, None).await.unwrap(), "already gone");
    assert!(c.users().try_get(&id).await.unwrap().is_none());
    let missing = c.users().get(&id).await.unwrap_err();
    assert!(missing.is_not_found());
    assert!(
        missing
            .to_string()
            .starts_with(&format!("GET {}/Users/{id}: 404", server.base())),
        "{missing}"
    );
}

#[tokio::test]
async fn conflicts_read_like_the_server_said() {
    let server = server_or_skip!();
    let c = client(&server.base());
    c.users()
        .create(&User::new("conflict-taken"))
        .await
        .unwrap();
    let err = c
        .users()
        .create(&User::new("CONFLICT-taken"))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "POST {}/Users: 409 uniqueness: One or more of the attribute values are already in use or are reserved",
            server.base()
        )
    );
    assert_eq!(err.scim_type(), Some("uniqueness"));
}

#[tokio::test]
async fn search_pages_by_index_over_several_pages() {
    let server = server_or_skip!();
    let proxy = Proxy::start(server.addr).await;
    let c = crate::builder(&proxy.base()).page_size(10).build().unwrap();
    c.discover().await.unwrap();
    create_users(&c, "idx-page", 25).await;
    create_users(&c, "idx-other", 3).await;
    proxy.clear();

    let found: Vec<User> = c
        .users()
        .search_all(
            Query::filter(r#"userName sw "idx-page""#).sort_by("userName", SortOrder::Ascending),
        )
        .await
        .unwrap();
    let names: Vec<&str> = found.iter().map(|u| u.user_name.as_str()).collect();
    let expected: Vec<String> = (0..25).map(|i| format!("idx-page{i:03}")).collect();
    assert_eq!(names, expected);
    let pages = proxy.seen_matching("GET", "/v2/Users?");
    assert_eq!(pages.len(), 3, "{pages:?}");
    assert!(
        pages[0].target.contains("startIndex=1&count=10"),
        "{}",
        pages[0].target
    );
    assert!(
        pages[2].target.contains("startIndex=21"),
        "{}",
        pages[2].target
    );

    // POST /.search, a limit, and a stream read lazily.
    proxy.clear();
    let q = Query::filter(r#"userName sw "idx-page""#)
        .via_post()
        .page_size(4)
        .limit(6);
    let mut stream = std::pin::pin!(c.users().search(q));
    let mut n = 0;
    while let Some(u) = stream.next().await {
        assert!(u.unwrap().user_name.starts_with("idx-page"));
        n += 1;
    }
    assert_eq!(n, 6);
    assert_eq!(proxy.seen_matching("POST", "/v2/Users/.search").len(), 2);

    assert!(
        c.users()
            .find_one(r#"userName eq "IDX-PAGE007""#)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        c.users()
            .find_one(r#"userName eq "nobody""#)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn search_pages_by_cursor_when_announced() {
    let server = server_or_skip!(&ServerOptions {
        cursor: true,
        ..ServerOptions::default()
    });
    let proxy = Proxy::start(server.addr).await;
    let c = crate::builder(&proxy.base()).page_size(10).build().unwrap();
    let d = c.discover().await.unwrap();
    assert_eq!(d.capabilities.paging, Paging::Cursor);
    assert_eq!(d.capabilities.max_page_size, Some(7));
    create_users(&c, "cur", 20).await;
    proxy.clear();
    let all: Vec<Value> = c
        .endpoint::<Value>("/Users")
        .search_all(Query::all())
        .await
        .unwrap();
    assert_eq!(all.len(), 20);
    let pages = proxy.seen_matching("GET", "/v2/Users?");
    // count lowered to maxPageSize 7: 7 + 7 + 6.
    assert_eq!(pages.len(), 3, "{pages:?}");
    assert!(
        pages[0].target.contains("cursor=&count=7"),
        "{}",
        pages[0].target
    );
    assert!(pages[1].target.contains("cursor=") && !pages[1].target.contains("cursor=&"));
}

#[tokio::test]
async fn filters_are_evaluated_locally_when_unsupported() {
    let server = server_or_skip!();
    let proxy = Proxy::start(server.addr).await;
    let c = crate::builder(&proxy.base()).page_size(5).build().unwrap();
    create_users(&c, "loc", 12).await;
    let mut caps = c.capabilities();
    caps.filter = false;
    c.set_capabilities(caps);
    proxy.clear();
    let found = c
        .users()
        .search_all(Query::filter(
            r#"userName sw "loc" and (userName ew "7" or externalId eq "ext-loc011")"#,
        ))
        .await
        .unwrap();
    let mut names: Vec<&str> = found.iter().map(|u| u.user_name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["loc007", "loc011"]);
    assert!(proxy.seen().iter().all(|s| !s.target.contains("filter=")));
    // An endpoint whose schema is unknown cannot be filtered here.
    let err = c
        .endpoint::<Value>("/Devices")
        .search_all(Query::filter("x pr"))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Unsupported(_)), "{err}");
}

#[tokio::test]
async fn patch_answered_with_204_and_patch_builder() {
    let server = server_or_skip!();
    let c = client(&server.base());
    let mut u = User::new("patchy");
    u.emails = vec![MultiValue::new("old@example.com", "work")];
    let id = c.users().create(&u).await.unwrap().id.unwrap();
    let request = PatchBuilder::new()
        .replace_where(
            "emails",
            "type",
            "work",
            Some("value"),
            json!("new@example.com"),
        )
        .add("title", json!("Tour Guide"))
        .set_active(false)
        .build();
    // scim2-server answers PATCH with 204 No Content.
    assert_eq!(c.users().patch(&id, &request, None).await.unwrap(), None);
    let after = c.users().get(&id).await.unwrap();
    assert_eq!(after.emails[0].value.as_deref(), Some("new@example.com"));
    assert_eq!(after.title.as_deref(), Some("Tour Guide"));
    assert_eq!(after.active, Some(false));
    let again = c
        .users()
        .patch_and_get(&id, &PatchBuilder::new().remove("title").build(), None)
        .await
        .unwrap();
    assert_eq!(again.title, None);
    // Without PATCH support the client refuses rather than guess.
    let mut caps = c.capabilities();
    caps.patch = false;
    c.set_capabilities(caps);
    let err = c.users().patch(&id, &request, None).await.unwrap_err();
    assert!(matches!(err, ClientError::Unsupported(_)), "{err}");
}

#[tokio::test]
async fn writes_answered_without_bodies() {
    let server = server_or_skip!();
    let proxy = Proxy::start(server.addr).await;
    proxy.empty_bodies(&["POST", "PUT", "PATCH"]);
    let c = client(&proxy.base());
    // 201 with Location and no body: the client reads it back.
    let created = c.users().create(&User::new("quiet")).await.unwrap();
    assert_eq!(created.user_name, "quiet");
    let id = created.id.unwrap();
    let mut changed = User::new("quiet");
    changed.nick_name = Some("Q".into());
    let replaced = c.users().replace(&id, &changed, None).await.unwrap();
    assert_eq!(replaced.nick_name.as_deref(), Some("Q"));
    let puts = proxy.seen_matching("PUT", "/v2/Users/");
    assert_eq!(puts.len(), 1);
    // PATCH answered 204: `None`, and `patch_and_get` reads it back.
    let request = PatchBuilder::new().replace("nickName", json!("R")).build();
    assert_eq!(c.users().patch(&id, &request, None).await.unwrap(), None);
    let read_back = c.users().patch_and_get(&id, &request, None).await.unwrap();
    assert_eq!(read_back.nick_name.as_deref(), Some("R"));
}

#[tokio::test]
async fn groups_and_membership_patches() {
    let server = server_or_skip!();
    let c = client(&server.base());
    let users = create_users(&c, "member", 3).await;
    let ids: Vec<String> = users.iter().map(|u| u.id.clone().unwrap()).collect();
    let mut g = Group::new("Membership Patches");
    g.members = vec![
        ResourceRef::new(&ids[0], "User"),
        ResourceRef::new(&ids[1], "User"),
    ];
    let created = c.groups().create(&g).await.unwrap();
    let gid = created.id.unwrap();
    assert_eq!(created.members.len(), 2);
    let request = PatchBuilder::new()
        .remove_member(&ids[0])
        .add_members([&ids[2]])
        .build();
    c.groups().patch(&gid, &request, None).await.unwrap();
    let after = c.groups().get(&gid).await.unwrap();
    let mut members: Vec<String> = after
        .members
        .iter()
        .filter_map(|m| m.value.clone())
        .collect();
    members.sort();
    let mut expected = vec![ids[1].clone(), ids[2].clone()];
    expected.sort();
    assert_eq!(members, expected);
}

#[tokio::test]
async fn bulk_in_batches() {
    let server = server_or_skip!();
    let c = client(&server.base());
    c.discover().await.unwrap();
    let mut caps = c.capabilities();
    if let Some(b) = caps.bulk.as_mut() {
        b.max_operations = 2;
    }
    c.set_capabilities(caps);
    let ops = scim_client::bulk::BulkBuilder::new()
        .post("/Users", "a", json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "bulk-a"}))
        .post("/Users", "b", json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "bulk-b"}))
        .post("/Users", "c", json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "bulk-a"}))
        .into_operations();
    let results = c.bulk_all(ops, None).await.unwrap();
    let statuses: Vec<u16> = results.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [201, 201, 409]);
    assert!(
        results[0]
            .location
            .as_deref()
            .is_some_and(|l| l.contains("/Users/"))
    );
    // bulkId references cannot be split across requests.
    let refs = scim_client::bulk::BulkBuilder::new()
        .post("/Users", "x", json!({"userName": "x"}))
        .post("/Users", "y", json!({"userName": "y"}))
        .put("/Groups/1", json!({"members": [{"value": "bulkId:x"}]}))
        .into_operations();
    assert!(matches!(
        c.bulk_all(refs, None).await,
        Err(ClientError::InvalidRequest(_))
    ));
    // And nothing is sent to a provider without bulk.
    let mut caps = c.capabilities();
    caps.bulk = None;
    c.set_capabilities(caps);
    let err = c.bulk_all(Vec::new(), None).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "the service provider does not support bulk operations"
    );
}
