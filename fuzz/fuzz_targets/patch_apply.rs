//! PATCH through the dialect layer and the engine, on fixed User and Group
//! documents. The input is either a JSON body (first byte even) or, so the
//! fuzzer reaches deep states quickly, a compact encoding of operations
//! built from known paths and values (first byte odd).
//!
//! Properties: nothing panics; the input document is never changed; on
//! success `changed` is exact, every top-level key is spelled as the schema
//! spells it, extension objects and `schemas` agree, and no multi-valued
//! attribute has two primary elements; the normalised request, applied
//! strictly, gives the same outcome as the dialect run.
//!
//! Run (cargo-fuzz needs nightly features; on a stable toolchain
//! `RUSTC_BOOTSTRAP=1` unlocks them, and `-s none` skips the sanitizer,
//! which adds little to code without `unsafe` and costs most of the speed):
//!
//! ```text
//! cd fuzz && RUSTC_BOOTSTRAP=1 cargo +stable fuzz run -s none patch_apply -- -max_total_time=600
//! ```

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use scim_core::patch::{self, DialectRule, Mode, PATCH_OP_SCHEMA, normalize};
use scim_core::schema::{ResourceSchema, SchemaRegistry};
use serde_json::{Value, json};

static REGISTRY: OnceLock<SchemaRegistry> = OnceLock::new();

const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn user() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENT],
        "id": "2819c223-7f76-453a-919d-413861904646",
        "externalId": "bjensen",
        "userName": "bjensen",
        "name": {"familyName": "Jensen", "givenName": "Barbara", "middleName": "Jane"},
        "displayName": "Babs Jensen",
        "active": true,
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ],
        "phoneNumbers": [{"value": "555-555-8377", "type": "work"}],
        "addresses": [{"type": "work", "streetAddress": "100 Universal City Plaza", "locality": "Hollywood"}],
        "groups": [{"value": "e9e30dba-f08f-4109-8486-d5c6a331660a", "display": "Tour Guides"}],
        "roles": [{"value": "Admin", "primary": true}],
        ENT: {"employeeNumber": "701984", "department": "Tour Operations",
              "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d", "displayName": "John Smith"}},
        "meta": {"resourceType": "User", "created": "2010-01-23T04:56:22Z",
                 "lastModified": "2011-05-13T04:42:34Z", "version": "W/\"3694e05e9dff591\""}
    })
}

fn group() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "id": "e9e30dba-f08f-4109-8486-d5c6a331660a",
        "displayName": "Tour Guides",
        "members": [
            {"value": "2819c223-7f76-453a-919d-413861904646", "type": "User"},
            {"value": "902c246b-6245-4190-8e05-00816be7344a", "display": "Mandy"}
        ],
        "meta": {"resourceType": "Group"}
    })
}

const OPS: &[&str] = &["add", "remove", "replace", "Add", "Remove", "Replace", "REPLACE", "move"];

const PATHS: &[Option<&str>] = &[
    None,
    Some("userName"),
    Some("UserName"),
    Some("name"),
    Some("name.givenName"),
    Some("displayName"),
    Some("active"),
    Some("title"),
    Some("id"),
    Some("meta"),
    Some("meta.lastModified"),
    Some("schemas"),
    Some("password"),
    Some("emails"),
    Some("emails.value"),
    Some("emails.primary"),
    Some("emails[type eq \"work\"]"),
    Some("emails[type eq \"work\"].value"),
    Some("emails[type eq \"home\"].primary"),
    Some("emails[type eq \"other\"].Value"),
    Some("emails[value co \"example\"]"),
    Some("emails[type eq \"work\" and value ew \"example.com\"]"),
    Some("phoneNumbers[type eq \"mobile\"].value"),
    Some("addresses[type eq \"work\"].streetAddress"),
    Some("groups"),
    Some("roles"),
    Some("x509Certificates"),
    Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"),
    Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"),
    Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value"),
    Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.displayName"),
    Some("manager"),
    Some("department"),
    Some("members"),
    Some("members[value eq \"2819c223-7f76-453a-919d-413861904646\"]"),
    Some("members[value eq \"2819c223-7f76-453a-919d-413861904646\"].type"),
    Some("members[value eq \"nobody\"].value"),
    Some("members.display"),
    Some("name[givenName eq \"x\"]"),
    Some("emails[type eq]"),
    Some(""),
    Some("nickname2"),
];

fn values() -> Vec<Option<Value>> {
    vec![
        None,
        Some(Value::Null),
        Some(json!("")),
        Some(json!("x")),
        Some(json!("True")),
        Some(json!("false")),
        Some(json!(true)),
        Some(json!(false)),
        Some(json!(7)),
        Some(json!(1.5)),
        Some(json!([])),
        Some(json!(["x"])),
        Some(json!({})),
        Some(json!({"value": "x"})),
        Some(json!({"value": ""})),
        Some(json!({"value": "x", "primary": true})),
        Some(json!({"value": "x", "primary": "True", "type": "work"})),
        Some(json!({"givenName": "Babs", "familyName": null})),
        Some(json!([{"value": "a@x", "primary": true}, {"value": "b@x", "primary": true}])),
        Some(json!([{"value": "2819c223-7f76-453a-919d-413861904646", "$ref": null}])),
        Some(json!([{"value": "new-member", "display": "New", "$ref": "https://e/Users/new"}])),
        Some(json!([{"value": "x"}, {"value": "y"}])),
        Some(json!([{"value": "m", "$ref": "https://e/Users/m"}])),
        Some(json!({"name.givenName": "Kkom", "displayName": "Bjfe"})),
        Some(json!({"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager": "mgr"})),
        Some(json!({"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": ""})),
        Some(json!({"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"division": "D"}})),
        Some(json!({"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": null})),
        Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"]})),
        Some(json!({"id": "2819c223-7f76-453a-919d-413861904646", "displayName": "Same"})),
        Some(json!({"id": "other"})),
        Some(json!({"meta": {"resourceType": "User"}})),
        Some(json!({"UserName": "B", "Name": {"GivenName": "G"}, "ACTIVE": "TRUE"})),
        Some(json!({"emails[type eq \"work\"].value": "x"})),
        Some(json!({"type": "work"})),
        Some(json!({"type": "home", "value": "h@x"})),
        Some(json!("2011-05-13T04:42:34Z")),
        Some(json!("TUlJ")),
        Some(json!([[[]]])),
        Some(json!({"value": {"value": "nested"}})),
    ]
}

/// The compact encoding: per operation four bytes (op, path, value, flags).
fn structured(data: &[u8]) -> Value {
    let values = values();
    let mut ops = Vec::new();
    for chunk in data.chunks(4).take(16) {
        let byte = |i: usize| chunk.get(i).copied().unwrap_or(0) as usize;
        let mut op = serde_json::Map::new();
        op.insert("op".into(), json!(OPS[byte(0) % OPS.len()]));
        if let Some(path) = PATHS[byte(1) % PATHS.len()] {
            op.insert("path".into(), json!(path));
        }
        if let Some(value) = values[byte(2) % values.len()].clone() {
            op.insert("value".into(), value);
        }
        if byte(3) & 1 == 1 {
            op.insert("id".into(), json!("junk"));
        }
        ops.push(Value::Object(op));
    }
    json!({"schemas": [PATCH_OP_SCHEMA], "Operations": ops})
}

fn check_invariants(rs: &ResourceSchema, before: &Value, patched: &patch::Patched) {
    assert_eq!(patched.changed, patched.resource != *before, "changed is exact");
    let obj = patched.resource.as_object().expect("an object");
    for key in obj.keys() {
        let canonical = rs.extension(key).map(|s| s.id == *key).unwrap_or_else(|| {
            rs.resolve(key)
                .is_ok_and(|a| !a.has_sub() && !a.is_extension() && a.attribute().name == *key)
        });
        assert!(canonical, "top-level key '{key}' is not an attribute name");
    }
    let schemas: Vec<&str> = obj
        .get("schemas")
        .and_then(Value::as_array)
        .map(|s| s.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for (ext, _) in rs.extensions() {
        let present = obj.get(&ext.id).is_some();
        let listed = schemas.iter().any(|s| s.eq_ignore_ascii_case(&ext.id));
        assert_eq!(present, listed, "extension object and schemas disagree for {}", ext.id);
    }
    for (key, v) in obj {
        if let Value::Array(items) = v {
            let primaries = items.iter().filter(|el| el.get("primary") == Some(&json!(true))).count();
            assert!(primaries <= 1, "two primary elements in '{key}'");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let registry = REGISTRY.get_or_init(SchemaRegistry::core);
    let (doc, rs) = if first & 2 == 0 {
        (user(), registry.resource_schema("User").expect("User"))
    } else {
        (group(), registry.resource_schema("Group").expect("Group"))
    };
    let body = if first & 1 == 0 {
        match serde_json::from_slice::<Value>(rest) {
            Ok(body) => body,
            Err(_) => return,
        }
    } else {
        structured(rest)
    };
    let snapshot = doc.clone();

    let strict = patch::apply_message(&doc, &body, &rs, Mode::Strict);
    let dialect = patch::apply_message(&doc, &body, &rs, Mode::Dialects);
    assert_eq!(doc, snapshot, "the input document is never changed");
    if let Ok(p) = &strict {
        check_invariants(&rs, &doc, p);
        // A strict body means the same through the dialect layer, except
        // where a rule reads an empty manager as "clear it".
        let d = dialect.as_ref().expect("a strict body also passes the dialect layer");
        if !d.rules.contains(&DialectRule::ManagerEmptyValue) {
            assert_eq!(d.resource, p.resource);
        }
    }
    if let Ok(p) = &dialect {
        check_invariants(&rs, &doc, p);
    }
    // The normalised request is strict RFC form with the same outcome.
    if let Ok(n) = normalize(&body, &rs) {
        if n.request.operations.is_empty() {
            return;
        }
        let again = patch::apply_message(&doc, &n.body(), &rs, Mode::Strict);
        match (&dialect, &again) {
            (Ok(a), Ok(b)) => assert_eq!(a.resource, b.resource),
            (Err(a), Err(b)) => {
                assert_eq!(a.kind(), b.kind());
                assert_eq!(a.operation(), b.operation().map(|i| n.origins[i]));
            }
            _ => panic!("normalised body and dialect run disagree: {dialect:?} vs {again:?}"),
        }
    }
});
