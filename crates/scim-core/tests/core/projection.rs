//! Projection of the RFC example resources.

use scim_core::projection::Projection;
use scim_core::schema::{ENTERPRISE_USER_SCHEMA, SchemaRegistry, USER_SCHEMA};
use serde_json::json;

const NONE: &[&str] = &[];

#[test]
fn rfc7644_3_9_attributes_user_name() {
    let registry = SchemaRegistry::core();
    let users = registry.resource_schema("User").unwrap();
    let stored = rfc_json!("rfc7643-8.2-full-user.json");
    let p = Projection::new(&["userName"], NONE, &users).unwrap();
    assert_eq!(
        p.apply(&stored),
        json!({
            "schemas": [USER_SCHEMA],
            "id": "2819c223-7f76-453a-919d-413861904646",
            "userName": "bjensen@example.com"
        })
    );
}

#[test]
fn default_projection_of_the_full_user_only_drops_the_password() {
    let registry = SchemaRegistry::core();
    let users = registry.resource_schema("User").unwrap();
    let stored = rfc_json!("rfc7643-8.3-enterprise-user.json");
    let mut expected = stored.clone();
    expected.as_object_mut().unwrap().shift_remove("password");
    assert_eq!(Projection::default_for(&users).apply(&stored), expected);
}

#[test]
fn excluding_the_enterprise_extension_and_groups() {
    let registry = SchemaRegistry::core();
    let users = registry.resource_schema("User").unwrap();
    let stored = rfc_json!("rfc7643-8.3-enterprise-user.json");
    let p = Projection::new(
        NONE,
        &[ENTERPRISE_USER_SCHEMA, "groups", "meta.version"],
        &users,
    )
    .unwrap();
    let out = p.apply(&stored);
    assert!(out.get(ENTERPRISE_USER_SCHEMA).is_none());
    assert!(out.get("groups").is_none());
    assert!(out["meta"].get("version").is_none());
    assert_eq!(out["meta"]["resourceType"], "User");
    assert_eq!(out["schemas"], stored["schemas"]);
}

#[test]
fn group_members_value_only() {
    let registry = SchemaRegistry::core();
    let groups = registry.resource_schema("Group").unwrap();
    let stored = rfc_json!("rfc7643-8.4-group.json");
    let p = Projection::new(&["members.value"], NONE, &groups).unwrap();
    assert_eq!(
        p.apply(&stored),
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "id": "e9e30dba-f08f-4109-8486-d5c6a331660a",
            "members": [
                {"value": "2819c223-7f76-453a-919d-413861904646"},
                {"value": "902c246b-6245-4190-8e05-00816be7344a"}
            ]
        })
    );
}
