//! PATCH benchmarks: a typical Entra ID user update through the dialect
//! layer, adding 100 members to a group of 10,000, and a value-filter
//! replace. Run with `cargo bench -p scim-core --bench patch`; figures go in
//! docs/BENCHMARKS.md.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use scim_core::patch::{self, Mode, PatchOperation};
use scim_core::schema::SchemaRegistry;
use serde_json::{Value, json};

const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn user() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENT],
        "id": "2819c223-7f76-453a-919d-413861904646",
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": "bjensen@example.com",
        "name": {"formatted": "Barbara Jensen", "familyName": "Jensen", "givenName": "Barbara"},
        "displayName": "Babs Jensen",
        "active": true,
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ],
        "phoneNumbers": [
            {"value": "555-555-5555", "type": "work"},
            {"value": "555-555-4444", "type": "mobile"}
        ],
        "addresses": [
            {"type": "work", "streetAddress": "100 Universal City Plaza", "locality": "Hollywood",
             "region": "CA", "postalCode": "91608", "country": "US", "primary": true},
            {"type": "home", "streetAddress": "456 Hollywood Blvd", "locality": "Hollywood",
             "region": "CA", "postalCode": "91608", "country": "US"}
        ],
        ENT: {"employeeNumber": "701984", "department": "Tour Operations",
              "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}},
        "meta": {"resourceType": "User", "created": "2010-01-23T04:56:22Z",
                 "lastModified": "2011-05-13T04:42:34Z", "version": "W/\"3694e05e9dff591\""}
    })
}

fn bench_entra_user_update(c: &mut Criterion) {
    let registry = SchemaRegistry::core();
    let users = registry.resource_schema("User").expect("User");
    let doc = user();
    // Five operations the way Entra ID sends them (capitalised ops, a
    // string boolean, a filtered path, an extension attribute).
    let body = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "barbara.jensen@example.com"},
            {"op": "Replace", "path": "name.givenName", "value": "Babs"},
            {"op": "Replace", "path": "name.familyName", "value": "Jensen-Smith"},
            {"op": "Replace", "path": "active", "value": "False"},
            {"op": "Add", "path": format!("{ENT}:department"), "value": "Theme Parks"}
        ]
    });
    assert!(patch::apply_message(&doc, &body, &users, Mode::Dialects).is_ok());
    c.bench_function("entra_user_update_5_ops_dialect", |b| {
        b.iter(|| patch::apply_message(black_box(&doc), black_box(&body), &users, Mode::Dialects))
    });
}

fn bench_group_add_members(c: &mut Criterion) {
    let registry = SchemaRegistry::core();
    let groups = registry.resource_schema("Group").expect("Group");
    let members: Vec<Value> = (0..10_000)
        .map(|i| json!({"value": format!("00000000-0000-4000-8000-{i:012}"), "type": "User"}))
        .collect();
    let doc = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "id": "e9e30dba-f08f-4109-8486-d5c6a331660a",
        "displayName": "Everyone",
        "members": members,
        "meta": {"resourceType": "Group"}
    });
    let new: Vec<Value> = (0..100)
        .map(|i| json!({"value": format!("11111111-0000-4000-8000-{i:012}"), "$ref": null}))
        .collect();
    let ops = [PatchOperation::add(Some("members"), Value::Array(new))];
    let out = patch::apply(&doc, &ops, &groups).expect("applies");
    assert_eq!(
        out.resource["members"].as_array().map(Vec::len),
        Some(10_100)
    );
    c.bench_function("group_add_100_members_to_10000", |b| {
        b.iter(|| patch::apply(black_box(&doc), black_box(&ops), &groups))
    });
    // The floor of the case above: PATCH is atomic by working on a copy,
    // so one clone (and drop) of the document is part of every apply.
    c.bench_function("group_10000_members_clone_baseline", |b| {
        b.iter(|| black_box(&doc).clone())
    });
}

fn bench_filter_replace(c: &mut Criterion) {
    let registry = SchemaRegistry::core();
    let users = registry.resource_schema("User").expect("User");
    let doc = user();
    let ops = [PatchOperation::replace(
        Some("addresses[type eq \"work\"].streetAddress"),
        json!("1010 Broadway Ave"),
    )];
    assert!(patch::apply(&doc, &ops, &users).is_ok_and(|p| p.changed));
    c.bench_function("path_filter_replace", |b| {
        b.iter(|| patch::apply(black_box(&doc), black_box(&ops), &users))
    });
}

criterion_group!(
    benches,
    bench_entra_user_update,
    bench_group_add_members,
    bench_filter_replace
);
criterion_main!(benches);
