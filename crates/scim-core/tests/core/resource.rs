//! The RFC 7643 section 8 resources parse into the typed structs and
//! serialise back to equal documents, in any key case and with unknown
//! members kept.

use scim_core::resource::{Group, Resource, User};
use scim_core::schema::{ENTERPRISE_USER_SCHEMA, SchemaRegistry, USER_SCHEMA};
use serde_json::{Map, Value, json};

/// The same document with the first letter of every key upper-cased
/// (`userName` -> `UserName`, the URN key -> `Urn:...`).
fn pascal_case(v: &Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| {
                    let mut chars = k.chars();
                    let key = match chars.next() {
                        Some(c) => c.to_ascii_uppercase().to_string() + chars.as_str(),
                        None => String::new(),
                    };
                    (key, pascal_case(v))
                })
                .collect::<Map<_, _>>(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(pascal_case).collect()),
        other => other.clone(),
    }
}

#[test]
fn rfc7643_8_1_minimal_user() {
    let doc = rfc_json!("rfc7643-8.1-minimal-user.json");
    let user: User = serde_json::from_value(doc.clone()).unwrap();
    assert_eq!(
        user.id.as_deref(),
        Some("2819c223-7f76-453a-919d-413861904646")
    );
    assert_eq!(user.user_name, "bjensen@example.com");
    let meta = user.meta.as_ref().unwrap();
    assert_eq!(meta.version.as_deref(), Some("W/\"3694e05e9dff590\""));
    assert_eq!(
        meta.created_at().unwrap().to_rfc3339(),
        "2010-01-23T04:56:22+00:00"
    );
    assert!(user.extra.is_empty());
    assert_eq!(user.to_value(), doc);
}

#[test]
fn rfc7643_8_2_full_user() {
    let doc = rfc_json!("rfc7643-8.2-full-user.json");
    let user: User = serde_json::from_value(doc.clone()).unwrap();
    let name = user.name.as_ref().unwrap();
    assert_eq!(name.honorific_suffix.as_deref(), Some("III"));
    assert_eq!(user.active, Some(true));
    assert_eq!(user.password.as_deref(), Some("t1meMa$heen"));
    assert_eq!(user.primary_email(), Some("bjensen@example.com"));
    assert_eq!(user.emails[1].kind.as_deref(), Some("home"));
    assert_eq!(user.addresses[0].primary, Some(true));
    assert_eq!(user.addresses[1].postal_code.as_deref(), Some("91608"));
    assert_eq!(user.phone_numbers.len(), 2);
    assert_eq!(user.ims[0].kind.as_deref(), Some("aim"));
    assert_eq!(user.photos[1].kind.as_deref(), Some("thumbnail"));
    assert_eq!(user.groups[2].display.as_deref(), Some("US Employees"));
    assert!(
        user.groups[0]
            .reference
            .as_deref()
            .unwrap()
            .starts_with("https://")
    );
    assert!(
        user.x509_certificates[0]
            .value
            .as_deref()
            .unwrap()
            .starts_with("MIIDQz")
    );
    assert_eq!(user.timezone.as_deref(), Some("America/Los_Angeles"));
    assert!(user.extra.is_empty(), "{:?}", user.extra);
    assert!(user.enterprise().is_none());
    assert_eq!(user.to_value(), doc);
}

#[test]
fn rfc7643_8_3_enterprise_user() {
    let doc = rfc_json!("rfc7643-8.3-enterprise-user.json");
    let user: User = serde_json::from_value(doc.clone()).unwrap();
    assert_eq!(user.schemas, [USER_SCHEMA, ENTERPRISE_USER_SCHEMA]);
    let ent = user.enterprise().unwrap();
    assert_eq!(ent.employee_number.as_deref(), Some("701984"));
    assert_eq!(ent.cost_center.as_deref(), Some("4130"));
    assert_eq!(ent.organization.as_deref(), Some("Universal Studios"));
    assert_eq!(ent.division.as_deref(), Some("Theme Park"));
    assert_eq!(ent.department.as_deref(), Some("Tour Operations"));
    let manager = ent.manager.as_ref().unwrap();
    assert_eq!(
        manager.value.as_deref(),
        Some("26118915-6090-4610-87e4-49d8ca9f808d")
    );
    assert_eq!(manager.display_name.as_deref(), Some("John Smith"));
    assert_eq!(user.to_value(), doc);
    // Writing the extension back unchanged changes nothing.
    let mut again = user.clone();
    again.set_enterprise(Some(ent));
    assert_eq!(again.to_value(), doc);
}

#[test]
fn rfc7643_8_4_group() {
    let doc = rfc_json!("rfc7643-8.4-group.json");
    let group: Group = serde_json::from_value(doc.clone()).unwrap();
    assert_eq!(group.display_name, "Tour Guides");
    assert_eq!(group.members.len(), 2);
    assert_eq!(
        group.members[1].display.as_deref(),
        Some("Mandy Pepperidge")
    );
    assert_eq!(group.to_value(), doc);
}

#[test]
fn pascal_case_keys_read_as_canonical() {
    let registry = SchemaRegistry::core();
    let users = registry.resource_schema("User").unwrap();
    let groups = registry.resource_schema("Group").unwrap();
    for doc in [
        rfc_json!("rfc7643-8.1-minimal-user.json"),
        rfc_json!("rfc7643-8.2-full-user.json"),
        rfc_json!("rfc7643-8.3-enterprise-user.json"),
    ] {
        let shouted = pascal_case(&doc);
        assert_ne!(shouted, doc);
        // Through the schema (all keys, the extension URN key too) ...
        let user = User::from_value(shouted.clone(), &users).unwrap();
        assert_eq!(user.to_value(), doc);
        // ... and through plain serde (the typed struct's own keys).
        let user: User = serde_json::from_value(shouted.clone()).unwrap();
        assert_eq!(user.user_name, doc["userName"].as_str().unwrap());
        // A generic resource normalises to the same document.
        let mut r = Resource::from_value(shouted).unwrap();
        r.normalize_keys(&users);
        assert_eq!(r.into_value(), doc);
    }
    let doc = rfc_json!("rfc7643-8.4-group.json");
    let group = Group::from_value(pascal_case(&doc), &groups).unwrap();
    assert_eq!(group.to_value(), doc);
}

#[test]
fn unknown_attributes_and_extensions_are_kept() {
    let registry = SchemaRegistry::core();
    let users = registry.resource_schema("User").unwrap();
    let mut doc = rfc_json!("rfc7643-8.3-enterprise-user.json");
    let obj = doc.as_object_mut().unwrap();
    obj.insert("favoriteColor".into(), json!("blue"));
    obj.insert(
        "urn:example:params:scim:schemas:extension:acme:2.0:User".into(),
        json!({"badge": 7, "Floor": {"level": 3}}),
    );
    obj["emails"][0]
        .as_object_mut()
        .unwrap()
        .insert("verified".into(), json!(true));
    obj["name"]
        .as_object_mut()
        .unwrap()
        .insert("phonetic".into(), json!("BAR-bruh"));
    obj[ENTERPRISE_USER_SCHEMA]
        .as_object_mut()
        .unwrap()
        .insert("building".into(), json!("B2"));
    let user = User::from_value(doc.clone(), &users).unwrap();
    assert_eq!(user.extra["favoriteColor"], "blue");
    assert_eq!(user.emails[0].extra["verified"], true);
    assert_eq!(user.enterprise().unwrap().extra["building"], "B2");
    assert_eq!(user.to_value(), doc);
    // Through the generic resource too.
    let r = Resource::from(user);
    assert_eq!(r.as_value(), &doc);
    let text = serde_json::to_string(&r).unwrap();
    let back: Resource = serde_json::from_str(&text).unwrap();
    assert_eq!(back, r);
}
