//! The store, on each backend: resource writes with their index rows and
//! change log in one transaction, uniqueness, preconditions, isolation,
//! concurrency, tokens, and the query plans the filter compiler will rely on.

use std::sync::Arc;

use scim_core::ErrorKind;
use scim_core::schema::{ResourceSchema, SchemaRegistry};
use scim_server::store::{
    ChangeLogStore, ChangeOp, IndexRow, ResourceStore, Store, StoredResource, TenantId,
    TenantStore, TokenStore, WriteContext, index_rows,
};
use scim_server::tokens::{Scope, Scopes};
use serde_json::{Value, json};

fn users() -> Arc<ResourceSchema> {
    SchemaRegistry::core().resource_schema("User").unwrap()
}

fn groups() -> Arc<ResourceSchema> {
    SchemaRegistry::core().resource_schema("Group").unwrap()
}

fn ctx(store: &Store, tenant: &str) -> WriteContext {
    WriteContext {
        tenant_id: store.ensure_tenant(tenant).unwrap().id,
        actor: Some(42),
    }
}

fn bjensen(user_name: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": user_name,
        "externalId": "ext-1",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}],
        "active": true
    })
}

fn sorted(mut rows: Vec<IndexRow>) -> Vec<IndexRow> {
    rows.sort_by(|a, b| (&a.attr, a.ordinal).cmp(&(&b.attr, b.ordinal)));
    rows
}

fn kind(e: scim_server::Error) -> ErrorKind {
    e.kind()
}

fn assert_index_matches(store: &Store, r: &StoredResource, rs: &ResourceSchema) {
    let stored = store.stored_index_rows(r.tenant_id, r.pk).unwrap();
    assert_eq!(stored, sorted(index_rows(&r.document, rs)));
}

// Replaces rewrite only the index rows whose (path, ordinal) changed; after
// each kind of change the stored rows must still be exactly those of the
// document.
store_test!(index_rows_follow_every_kind_of_change, |store| {
    let users = users();
    let w = ctx(&store, "acme");
    let created = store.insert_resource(w, &users, bjensen("rows")).unwrap();
    let mut steps = Vec::new();
    // An element and an attribute added.
    let mut doc = bjensen("rows");
    doc["emails"] = json!([
        {"value": "bjensen@example.com", "type": "work", "primary": true},
        {"value": "babs@example.org", "type": "home"}
    ]);
    doc["phoneNumbers"] = json!([{"value": "555-0100", "type": "work"}]);
    steps.push(doc.clone());
    // The elements swapped: every ordinal's values change.
    doc["emails"] = json!([
        {"value": "babs@example.org", "type": "home"},
        {"value": "bjensen@example.com", "type": "work", "primary": true}
    ]);
    steps.push(doc.clone());
    // One value changed, one sub-attribute removed, a value of another type.
    doc["title"] = json!("Tour Guide");
    doc["name"] = json!({"givenName": "Babs"});
    doc["active"] = json!(false);
    steps.push(doc.clone());
    // Multi-valued attributes removed; a complex one with many members.
    doc.as_object_mut().unwrap().remove("emails");
    doc.as_object_mut().unwrap().remove("phoneNumbers");
    doc["addresses"] = json!([
        {"streetAddress": "1 Main St", "locality": "Springfield", "type": "work"},
        {"locality": "Shelbyville", "primary": true}
    ]);
    steps.push(doc);
    // Back to the first document.
    steps.push(bjensen("rows"));
    for (i, doc) in steps.into_iter().enumerate() {
        let r = store
            .replace_resource(w, &users, &created.id, None, doc)
            .unwrap();
        assert_eq!(r.version, i64::try_from(i).unwrap() + 2);
        assert_index_matches(&store, &r, &users);
    }
});

store_test!(insert_get_replace_delete, |store| {
    let users = users();
    let w = ctx(&store, "acme");
    let created = store
        .insert_resource(w, &users, bjensen("bjensen"))
        .unwrap();
    assert_eq!(created.version, 1);
    assert_eq!(created.id.len(), 36);
    assert_eq!(created.document["id"], created.id.as_str());
    assert_eq!(created.document["meta"]["version"], "W/\"1\"");
    assert_eq!(created.document["meta"]["resourceType"], "User");
    assert_eq!(created.external_id.as_deref(), Some("ext-1"));
    assert_eq!(created.created, created.last_modified);

    // What was written is what is read, timestamps included (microseconds).
    let read = store
        .get_resource(w.tenant_id, &users, &created.id)
        .unwrap()
        .unwrap();
    assert_eq!(read, created);
    assert_index_matches(&store, &read, &users);
    assert!(
        store
            .stored_index_rows(w.tenant_id, read.pk)
            .unwrap()
            .iter()
            .any(|r| r.attr == "emails.value")
    );

    // A Group lookup does not find a User.
    assert!(
        store
            .get_resource(w.tenant_id, &groups(), &created.id)
            .unwrap()
            .is_none()
    );

    let mut doc = bjensen("bjensen");
    doc["emails"] = json!([{"value": "babs@jensen.org", "type": "home"}]);
    doc["id"] = json!("client-must-not-choose");
    let replaced = store
        .replace_resource(w, &users, &created.id, Some(1), doc)
        .unwrap();
    assert_eq!(replaced.version, 2);
    assert_eq!(replaced.id, created.id);
    assert_eq!(replaced.document["id"], created.id.as_str());
    assert_eq!(replaced.created, created.created);
    assert!(replaced.last_modified >= created.last_modified);
    assert_eq!(replaced.document["meta"]["version"], "W/\"2\"");
    let read = store
        .get_resource(w.tenant_id, &users, &created.id)
        .unwrap()
        .unwrap();
    assert_eq!(read, replaced);
    assert_index_matches(&store, &read, &users);
    let rows = store.stored_index_rows(w.tenant_id, read.pk).unwrap();
    assert!(
        !rows
            .iter()
            .any(|r| format!("{:?}", r.value).contains("bjensen@example.com"))
    );

    store.delete_resource(w, &users, &created.id, None).unwrap();
    assert!(
        store
            .get_resource(w.tenant_id, &users, &created.id)
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .stored_index_rows(w.tenant_id, read.pk)
            .unwrap()
            .is_empty()
    );
    let e = store
        .delete_resource(w, &users, &created.id, None)
        .unwrap_err();
    assert_eq!(kind(e), ErrorKind::NotFound);

    let log = store.changes_after(w.tenant_id, 0, 100).unwrap();
    let summary: Vec<(ChangeOp, i64, Option<i64>)> =
        log.iter().map(|c| (c.op, c.version, c.actor)).collect();
    assert_eq!(
        summary,
        [
            (ChangeOp::Create, 1, Some(42)),
            (ChangeOp::Replace, 2, Some(42)),
            (ChangeOp::Delete, 3, Some(42))
        ]
    );
    assert!(
        log.iter()
            .all(|c| c.resource_id == created.id && c.resource_type == "User")
    );
    assert!(log.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(
        store.changes_after(w.tenant_id, log[0].seq, 1).unwrap(),
        [log[1].clone()]
    );
});

store_test!(user_name_is_unique_per_tenant_case_insensitively, |store| {
    let users = users();
    let acme = ctx(&store, "acme");
    let first = store
        .insert_resource(acme, &users, bjensen("bjensen"))
        .unwrap();
    let e = store
        .insert_resource(acme, &users, bjensen("BJensen"))
        .unwrap_err();
    assert_eq!(kind(e), ErrorKind::Uniqueness);
    let scim = scim_server::Error::from(
        store
            .insert_resource(acme, &users, bjensen("BJENSEN"))
            .unwrap_err()
            .to_scim(),
    )
    .to_scim();
    assert_eq!(scim.status(), 409);
    assert_eq!(scim.detail(), "userName 'BJENSEN' is already in use");
    // Nothing of the failed writes is left behind.
    assert_eq!(
        store.changes_after(acme.tenant_id, 0, 100).unwrap().len(),
        1
    );

    // Non-ASCII names fold too.
    store.insert_resource(acme, &users, bjensen("Åsa")).unwrap();
    let e = store
        .insert_resource(acme, &users, bjensen("åSA"))
        .unwrap_err();
    assert_eq!(kind(e), ErrorKind::Uniqueness);

    // Another tenant may use the name.
    let other = ctx(&store, "other");
    store
        .insert_resource(other, &users, bjensen("bjensen"))
        .unwrap();

    // Renaming into a taken name is refused and changes nothing.
    let second = store
        .insert_resource(acme, &users, bjensen("jsmith"))
        .unwrap();
    let e = store
        .replace_resource(acme, &users, &second.id, None, bjensen("BJENSEN"))
        .unwrap_err();
    assert_eq!(kind(e), ErrorKind::Uniqueness);
    let still = store
        .get_resource(acme.tenant_id, &users, &second.id)
        .unwrap()
        .unwrap();
    assert_eq!(still, second);

    // Once freed, the name can be taken.
    store
        .delete_resource(acme, &users, &first.id, None)
        .unwrap();
    store
        .replace_resource(acme, &users, &second.id, None, bjensen("BJENSEN"))
        .unwrap();

    // Group displayName is not unique in the core schema.
    let groups = groups();
    store
        .insert_resource(acme, &groups, json!({"displayName": "Ops"}))
        .unwrap();
    store
        .insert_resource(acme, &groups, json!({"displayName": "ops"}))
        .unwrap();
});

store_test!(tenants_are_isolated, |store| {
    let users = users();
    let a = ctx(&store, "tenant-a");
    let b = ctx(&store, "tenant-b");
    assert_ne!(a.tenant_id, b.tenant_id);
    let r = store
        .insert_resource(a, &users, bjensen("bjensen"))
        .unwrap();

    assert!(
        store
            .get_resource(b.tenant_id, &users, &r.id)
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .stored_index_rows(b.tenant_id, r.pk)
            .unwrap()
            .is_empty()
    );
    let e = store
        .replace_resource(b, &users, &r.id, None, bjensen("stolen"))
        .unwrap_err();
    assert_eq!(kind(e), ErrorKind::NotFound);
    let e = store.delete_resource(b, &users, &r.id, None).unwrap_err();
    assert_eq!(kind(e), ErrorKind::NotFound);
    let e = store
        .update_resource(
            b,
            &users,
            &r.id,
            None,
            ChangeOp::Patch,
            &mut |_| unreachable!(),
        )
        .unwrap_err();
    assert_eq!(kind(e), ErrorKind::NotFound);
    assert!(store.changes_after(b.tenant_id, 0, 100).unwrap().is_empty());

    let still = store
        .get_resource(a.tenant_id, &users, &r.id)
        .unwrap()
        .unwrap();
    assert_eq!(still, r);
    assert_eq!(store.changes_after(a.tenant_id, 0, 100).unwrap().len(), 1);
    assert!(
        store
            .get_resource(TenantId(999_999), &users, &r.id)
            .unwrap()
            .is_none()
    );
});

store_test!(if_match_preconditions, |store| {
    let users = users();
    let w = ctx(&store, "acme");
    let r = store
        .insert_resource(w, &users, bjensen("bjensen"))
        .unwrap();
    let e = store
        .replace_resource(w, &users, &r.id, Some(7), bjensen("x"))
        .unwrap_err();
    assert_eq!(kind(e), ErrorKind::PreconditionFailed);
    let e = store
        .delete_resource(w, &users, &r.id, Some(2))
        .unwrap_err();
    assert_eq!(kind(e), ErrorKind::PreconditionFailed);
    assert_eq!(
        store
            .get_resource(w.tenant_id, &users, &r.id)
            .unwrap()
            .unwrap()
            .version,
        1
    );
    store.delete_resource(w, &users, &r.id, Some(1)).unwrap();
});

store_test!(failed_changes_roll_back, |store| {
    let users = users();
    let w = ctx(&store, "acme");
    let r = store
        .insert_resource(w, &users, bjensen("bjensen"))
        .unwrap();
    let e = store
        .update_resource(w, &users, &r.id, None, ChangeOp::Patch, &mut |_| {
            Err(scim_core::Error::mutability("id is read-only").into())
        })
        .unwrap_err();
    assert_eq!(kind(e), ErrorKind::Mutability);
    assert_eq!(
        store
            .get_resource(w.tenant_id, &users, &r.id)
            .unwrap()
            .unwrap(),
        r
    );
    assert_eq!(store.changes_after(w.tenant_id, 0, 100).unwrap().len(), 1);
});

store_test!(concurrent_updates_are_not_lost, |store| {
    let users = users();
    let w = ctx(&store, "acme");
    let r = store
        .insert_resource(w, &users, bjensen("bjensen"))
        .unwrap();
    const THREADS: usize = 4;
    const UPDATES: usize = 10;
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                for _ in 0..UPDATES {
                    store
                        .update_resource(w, &users, &r.id, None, ChangeOp::Patch, &mut |cur| {
                            let mut doc = cur.document.clone();
                            let nick = doc["nickName"].as_str().unwrap_or("").to_owned();
                            doc["nickName"] = json!(format!("{nick}x"));
                            Ok(doc)
                        })
                        .unwrap();
                }
            });
        }
    });
    let last = store
        .get_resource(w.tenant_id, &users, &r.id)
        .unwrap()
        .unwrap();
    let n = THREADS * UPDATES;
    assert_eq!(last.version, 1 + n as i64);
    assert_eq!(last.document["nickName"].as_str().unwrap().len(), n);
    let versions: Vec<i64> = store
        .changes_after(w.tenant_id, 0, 1000)
        .unwrap()
        .iter()
        .map(|c| c.version)
        .collect();
    assert_eq!(versions, (1..=1 + n as i64).collect::<Vec<_>>());
    assert_index_matches(&store, &last, &users);
});

store_test!(tokens_authenticate_until_revoked, |store| {
    let acme = store.ensure_tenant("acme").unwrap();
    assert_eq!(store.ensure_tenant("acme").unwrap(), acme);
    assert_eq!(store.find_tenant("acme").unwrap(), Some(acme.clone()));
    assert_eq!(store.find_tenant("nope").unwrap(), None);
    assert_eq!(store.count_active_tokens().unwrap(), 0);

    let issued = store
        .create_token(acme.id, "ci", Scopes::of(&[Scope::Read]))
        .unwrap();
    assert!(!format!("{issued:?}").contains(&issued.secret));
    let p = store.authenticate(&issued.secret).unwrap().unwrap();
    assert_eq!(p.tenant_id, acme.id);
    assert_eq!(p.token_id, issued.info.id);
    assert!(p.scopes.allows(Scope::Read) && !p.scopes.allows(Scope::Write));
    assert!(store.authenticate("scim_nope").unwrap().is_none());
    let mut wrong = issued.secret.clone();
    wrong.replace_range(10..11, if &wrong[10..11] == "a" { "b" } else { "a" });
    assert!(store.authenticate(&wrong).unwrap().is_none());

    let listed = store.list_tokens(None).unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].last_used.is_some());
    assert_eq!(listed[0].tenant_name, "acme");
    assert_eq!(store.count_active_tokens().unwrap(), 1);
    assert!(
        store
            .create_token(acme.id, "none", Scopes::default())
            .is_err()
    );

    let revoked = store.revoke_token(issued.info.id).unwrap().unwrap();
    assert!(revoked.revoked_at.is_some());
    assert!(store.authenticate(&issued.secret).unwrap().is_none());
    assert_eq!(store.count_active_tokens().unwrap(), 0);
    assert!(store.revoke_token(9_999).unwrap().is_none());
    assert!(store.list_tokens(Some("other")).unwrap().is_empty());
});

/// The plans of the query shapes the filter compiler will emit. On
/// PostgreSQL sequential and bitmap scans are disabled for the check: on
/// tiny test tables the planner would otherwise pick them whatever the
/// indexes, and what is checked here is that a fitting index exists.
fn plan(store: &Store, sql: &str) -> String {
    use diesel::RunQueryDsl;
    use diesel::sql_types::Text;
    use scim_server::db::AnyConnection;

    #[derive(diesel::QueryableByName)]
    struct SqlitePlan {
        #[diesel(sql_type = Text)]
        detail: String,
    }
    #[derive(diesel::QueryableByName)]
    struct PgPlan {
        #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
        line: String,
    }
    let mut conn = store.conn().unwrap();
    match &mut *conn {
        AnyConnection::Sqlite(c) => diesel::sql_query(format!("EXPLAIN QUERY PLAN {sql}"))
            .load::<SqlitePlan>(c)
            .unwrap()
            .into_iter()
            .map(|r| r.detail)
            .collect::<Vec<_>>()
            .join("\n"),
        AnyConnection::Pg(c) => {
            diesel::sql_query("ANALYZE").execute(c).unwrap();
            diesel::sql_query("SET enable_seqscan = off")
                .execute(c)
                .unwrap();
            diesel::sql_query("SET enable_bitmapscan = off")
                .execute(c)
                .unwrap();
            diesel::sql_query(format!("EXPLAIN {sql}"))
                .load::<PgPlan>(c)
                .unwrap()
                .into_iter()
                .map(|r| r.line)
                .collect::<Vec<_>>()
                .join("\n")
        }
    }
}

store_test!(hot_queries_use_indexes, |store| {
    let users = users();
    // Plans depend on statistics: a realistic spread is a few resources in
    // the tenant asked about among many in others.
    let w = ctx(&store, "acme");
    let others = ctx(&store, "others");
    for i in 0..5 {
        store
            .insert_resource(w, &users, bjensen(&format!("user{i}")))
            .unwrap();
    }
    for i in 0..60 {
        store
            .insert_resource(others, &users, bjensen(&format!("user{i}")))
            .unwrap();
    }
    let t = w.tenant_id;
    let scope = format!("tenant_id = {t} AND resource_type = 'User'");
    let cases = [
        // eq on a case-insensitive attribute
        (
            format!(
                "SELECT resource_pk FROM attr_index WHERE {scope} AND attr = 'username' AND text_folded = 'user1'"
            ),
            "attr_index_text",
        ),
        // sw as a range on the folded column
        (
            format!(
                "SELECT resource_pk FROM attr_index WHERE {scope} AND attr = 'username' AND text_folded >= 'us' AND text_folded < 'ut'"
            ),
            "attr_index_text",
        ),
        // pr
        (
            format!("SELECT resource_pk FROM attr_index WHERE {scope} AND attr = 'title'"),
            "attr_index_text",
        ),
        // eq on a caseExact attribute
        (
            format!(
                "SELECT resource_pk FROM attr_index WHERE {scope} AND attr = 'externalid' AND text_exact = 'ext-1'"
            ),
            "attr_index_exact",
        ),
        // number and time ranges, booleans
        (
            format!("SELECT resource_pk FROM attr_index WHERE {scope} AND attr = 'x' AND num > 3"),
            "attr_index_num",
        ),
        (
            format!(
                "SELECT resource_pk FROM attr_index WHERE {scope} AND attr = 'meta.created' AND time_us >= 0 AND time_us < 99"
            ),
            "attr_index_time",
        ),
        (
            format!(
                "SELECT resource_pk FROM attr_index WHERE {scope} AND attr = 'active' AND boolean = true"
            ),
            "attr_index_boolean",
        ),
        // the same-element join of a value filter
        (
            format!(
                "SELECT a.resource_pk FROM attr_index a JOIN attr_index b \
                 ON b.resource_pk = a.resource_pk AND b.attr = 'emails.value' AND b.ordinal = a.ordinal \
                 WHERE a.tenant_id = {t} AND a.resource_type = 'User' AND a.attr = 'emails.type' AND a.text_folded = 'work'"
            ),
            "attr_index_element",
        ),
        // point lookup of a resource
        (
            format!(
                "SELECT document FROM resources WHERE tenant_id = {t} AND id = 'x' AND resource_type = 'User'"
            ),
            "resources_tenant_id_key",
        ),
        // listing in key order (cursors)
        (
            format!("SELECT pk FROM resources WHERE {scope} AND pk > 3 ORDER BY pk LIMIT 10"),
            "resources_type_pk",
        ),
        // change log consumption
        (
            format!(
                "SELECT * FROM change_log WHERE tenant_id = {t} AND seq > 5 ORDER BY seq LIMIT 10"
            ),
            "change_log_tenant_seq",
        ),
    ];
    for (sql, index) in cases {
        let plan = plan(&store, &sql);
        assert!(
            plan.contains(index),
            "{sql}\nexpected {index}, got:\n{plan}"
        );
    }
});

store_test!(membership_queries_use_indexes, |store| {
    let users = users();
    let groups = groups();
    let w = ctx(&store, "acme");
    let mut members = Vec::new();
    for i in 0..20 {
        let u = store
            .insert_resource(w, &users, bjensen(&format!("member{i}")))
            .unwrap();
        members.push(json!({"value": u.id}));
    }
    for i in 0..10 {
        store
            .insert_resource(
                w,
                &groups,
                json!({"displayName": format!("g{i}"), "members": members.clone()}),
            )
            .unwrap();
    }
    // A group's members (the primary key), a resource's groups (the
    // member index), and the step of the recursive walk up the nesting.
    let pk_index = match store.backend() {
        scim_server::db::Backend::Sqlite => "sqlite_autoindex_memberships_1",
        scim_server::db::Backend::Postgres => "memberships_pkey",
    };
    for (sql, index) in [
        (
            "SELECT member_pk FROM memberships WHERE group_pk = 3".to_owned(),
            pk_index,
        ),
        (
            "SELECT group_pk FROM memberships WHERE member_pk = 3".to_owned(),
            "memberships_member",
        ),
        (
            "SELECT r.id, r.display FROM memberships m JOIN resources r ON r.pk = m.member_pk \
             WHERE m.group_pk = 25"
                .to_owned(),
            pk_index,
        ),
    ] {
        let plan = plan(&store, &sql);
        assert!(
            plan.contains(index),
            "{sql}\nexpected {index}, got:\n{plan}"
        );
    }
});

// The scans the background passes run every second: the lifecycle
// evaluator's due users, the provisioning engine's due pairs, the
// temporary-access schedule and the review scheduler. Each must walk an
// index in its ORDER BY, not sort the whole table.
store_test!(background_scans_use_indexes, |store| {
    let users = users();
    let w = ctx(&store, "acme");
    for i in 0..20 {
        // Every User write marks the user due for rule evaluation.
        store
            .insert_resource(w, &users, bjensen(&format!("due{i}")))
            .unwrap();
    }
    let at = "'2026-11-27 00:00:00'";
    for (sql, index) in [
        (
            "SELECT tenant_id, resource_id, generation FROM lifecycle_due \
             ORDER BY due_since ASC LIMIT 100"
                .to_owned(),
            "lifecycle_due_since",
        ),
        (
            format!(
                "SELECT application_id, resource_pk FROM provisioning_state \
                 WHERE due = true AND status <> 'dead' \
                 AND (next_attempt_at IS NULL OR next_attempt_at <= {at}) \
                 AND (claimed_until IS NULL OR claimed_until < {at}) \
                 ORDER BY due_since ASC, resource_pk ASC LIMIT 100"
            ),
            "provisioning_state_due_order",
        ),
        (
            format!(
                "SELECT id, tenant_id FROM assignments WHERE valid_until <= {at} \
                 ORDER BY valid_until ASC LIMIT 100"
            ),
            "assignments_valid_until",
        ),
        (
            format!(
                "SELECT id FROM assignments WHERE valid_from <= {at} AND started_at IS NULL LIMIT 100"
            ),
            "assignments_valid_from",
        ),
        (
            format!(
                "SELECT tenant_id, id FROM review_campaigns WHERE status = 'open' \
                 AND due_at <= {at} ORDER BY due_at ASC LIMIT 100"
            ),
            "review_campaigns_open",
        ),
    ] {
        let plan = plan(&store, &sql);
        assert!(
            plan.contains(index),
            "{sql}\nexpected {index}, got:\n{plan}"
        );
        assert!(
            !plan.contains("TEMP B-TREE") && !plan.contains("Sort"),
            "{sql}\nsorts instead of walking {index}:\n{plan}"
        );
    }
});

store_test!(groups_keep_membership_rows_in_step, |store| {
    use scim_server::store::MembershipStore;
    let users = users();
    let groups = groups();
    let w = ctx(&store, "acme");
    let a = store.insert_resource(w, &users, bjensen("a")).unwrap();
    let b = store.insert_resource(w, &users, bjensen("b")).unwrap();
    let g = store
        .insert_resource(
            w,
            &groups,
            json!({"displayName": "g", "members": [{"value": a.id}, {"value": b.id, "display": "x"}]}),
        )
        .unwrap();
    assert_eq!(
        g.document["members"],
        // A display the client gave is stored (members.display is readWrite).
        json!([{"value": a.id, "type": "User"}, {"value": b.id, "display": "x", "type": "User"}])
    );
    let mut ids: Vec<String> = store
        .members_of(w.tenant_id, g.pk)
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    ids.sort();
    let mut expected = vec![a.id.clone(), b.id.clone()];
    expected.sort();
    assert_eq!(ids, expected);
    // A failed write (unknown member) leaves rows and document as they were.
    let e = store
        .replace_resource(
            w,
            &groups,
            &g.id,
            None,
            json!({"displayName": "g", "members": [{"value": "nope"}]}),
        )
        .unwrap_err();
    assert_eq!(kind(e), ErrorKind::InvalidValue);
    assert_eq!(store.members_of(w.tenant_id, g.pk).unwrap().len(), 2);
    // Deleting a member rewrites the group in the same transaction.
    store.delete_resource(w, &users, &a.id, None).unwrap();
    let g = store
        .get_resource(w.tenant_id, &groups, &g.id)
        .unwrap()
        .unwrap();
    assert_eq!(g.version, 2);
    assert_eq!(
        g.document["members"],
        json!([{"value": b.id, "display": "x", "type": "User"}])
    );
    assert_index_matches(&store, &g, &groups);
    let groups_of_b = store.groups_of(w.tenant_id, b.pk).unwrap();
    assert_eq!(groups_of_b.len(), 1);
    assert!(groups_of_b[0].direct);
    assert!(store.groups_of(w.tenant_id, a.pk).unwrap().is_empty());
});

store_test!(concurrent_member_deletes_and_group_writes, |store| {
    use scim_server::store::MembershipStore;
    let users = users();
    let groups = groups();
    let w = ctx(&store, "acme");
    let people: Vec<_> = (0..8)
        .map(|i| {
            store
                .insert_resource(w, &users, bjensen(&format!("p{i}")))
                .unwrap()
        })
        .collect();
    let members: Vec<Value> = people.iter().map(|p| json!({"value": p.id})).collect();
    let gs: Vec<_> = (0..3)
        .map(|i| {
            store
                .insert_resource(
                    w,
                    &groups,
                    json!({"displayName": format!("g{i}"), "members": members.clone()}),
                )
                .unwrap()
        })
        .collect();
    // Two threads delete members while two rewrite the groups: no
    // deadlock, no lost write, the tables agree at the end.
    std::thread::scope(|s| {
        for half in people.chunks(4) {
            let (store, users) = (&store, &users);
            s.spawn(move || {
                for p in half {
                    store.delete_resource(w, users, &p.id, None).unwrap();
                }
            });
        }
        for _ in 0..2 {
            let (store, groups, gs) = (&store, &groups, &gs);
            s.spawn(move || {
                for round in 0..4 {
                    for g in gs {
                        store
                            .update_resource(w, groups, &g.id, None, ChangeOp::Patch, &mut |cur| {
                                let mut doc = cur.document.clone();
                                doc["externalId"] = json!(format!("r{round}"));
                                Ok(doc)
                            })
                            .unwrap();
                    }
                }
            });
        }
    });
    for g in &gs {
        let now = store
            .get_resource(w.tenant_id, &groups, &g.id)
            .unwrap()
            .unwrap();
        assert!(now.document.get("members").is_none(), "{}", now.document);
        assert!(store.members_of(w.tenant_id, now.pk).unwrap().is_empty());
        assert_index_matches(&store, &now, &groups);
    }
});
