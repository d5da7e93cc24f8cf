//! Create and replace validation, one test per rule.

use std::sync::Arc;

use scim_core::ErrorKind;
use scim_core::schema::{
    ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, ResourceSchema, SchemaRegistry, USER_SCHEMA,
};
use scim_core::validate::{
    UnknownAttributes, ValidationOptions, validate_for_create, validate_for_create_with,
    validate_for_replace, validate_value,
};
use serde_json::{Value, json};

const ACME: &str = "urn:example:params:scim:schemas:extension:acme:2.0:User";

fn users() -> Arc<ResourceSchema> {
    SchemaRegistry::core().resource_schema("User").unwrap()
}

fn groups() -> Arc<ResourceSchema> {
    SchemaRegistry::core().resource_schema("Group").unwrap()
}

/// Users with an extra extension holding one attribute of each type.
fn acme_users(required: bool) -> Arc<ResourceSchema> {
    let mut registry = SchemaRegistry::core();
    registry
        .add_schema_json(&format!(
            r#"{{"id": "{ACME}", "attributes": [
                {{"name": "badge", "type": "integer", "mutability": "immutable"}},
                {{"name": "height", "type": "decimal"}},
                {{"name": "hired", "type": "dateTime"}},
                {{"name": "photo", "type": "binary"}},
                {{"name": "homepage", "type": "reference", "referenceTypes": ["external"]}},
                {{"name": "site", "type": "string", "required": true}},
                {{"name": "desk", "type": "complex", "subAttributes": [
                    {{"name": "building", "type": "string", "mutability": "immutable"}},
                    {{"name": "number", "type": "string"}},
                    {{"name": "assignedBy", "type": "string", "mutability": "readOnly"}}]}}]}}"#
        ))
        .unwrap();
    registry.add_extension("User", ACME, required).unwrap();
    registry.resource_schema("User").unwrap()
}

fn user(extra: Value) -> Value {
    let mut doc = json!({"schemas": [USER_SCHEMA], "userName": "bjensen"});
    for (k, v) in extra.as_object().unwrap() {
        doc[k] = v.clone();
    }
    doc
}

fn err_of(body: &Value, rs: &ResourceSchema) -> (ErrorKind, String) {
    let e = validate_for_create(body, rs).unwrap_err();
    (e.kind(), e.detail().to_string())
}

fn ignore() -> ValidationOptions {
    ValidationOptions {
        unknown_attributes: UnknownAttributes::Ignore,
        ..ValidationOptions::default()
    }
}

#[test]
fn body_must_be_an_object() {
    for body in [json!([]), json!("x"), json!(null)] {
        assert_eq!(err_of(&body, &users()).0, ErrorKind::InvalidSyntax);
    }
}

#[test]
fn schemas_is_required_and_must_list_the_core_schema() {
    let (kind, detail) = err_of(&json!({"userName": "b"}), &users());
    assert_eq!(kind, ErrorKind::InvalidSyntax);
    assert!(detail.contains("schemas"), "{detail}");
    let (kind, _) = err_of(&json!({"schemas": 5, "userName": "b"}), &users());
    assert_eq!(kind, ErrorKind::InvalidSyntax);
    let (kind, _) = err_of(&json!({"schemas": [5], "userName": "b"}), &users());
    assert_eq!(kind, ErrorKind::InvalidSyntax);
    let (kind, detail) = err_of(
        &json!({"schemas": [GROUP_SCHEMA], "userName": "b"}),
        &users(),
    );
    assert_eq!(kind, ErrorKind::InvalidValue);
    assert!(detail.contains(USER_SCHEMA), "{detail}");
    let (kind, detail) = err_of(&json!({"schemas": [], "userName": "b"}), &users());
    assert_eq!(kind, ErrorKind::InvalidValue, "{detail}");
    // One string instead of an array, any case, duplicates: accepted and cleaned.
    let out = validate_for_create(
        &json!({"schemas": "URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER", "userName": "b"}),
        &users(),
    )
    .unwrap();
    assert_eq!(out["schemas"], json!([USER_SCHEMA]));
    let out = validate_for_create(
        &json!({"schemas": [USER_SCHEMA, "urn:ietf:params:scim:schemas:core:2.0:user"], "userName": "b"}),
        &users(),
    )
    .unwrap();
    assert_eq!(out["schemas"], json!([USER_SCHEMA]));
}

#[test]
fn unknown_schema_urns_are_rejected_or_ignored() {
    let body = json!({"schemas": [USER_SCHEMA, "urn:example:nope"], "userName": "b"});
    let (kind, detail) = err_of(&body, &users());
    assert_eq!(kind, ErrorKind::InvalidValue);
    assert!(detail.contains("urn:example:nope"), "{detail}");
    let out = validate_for_create_with(&body, &users(), &ignore()).unwrap();
    assert_eq!(out["schemas"], json!([USER_SCHEMA]));

    let body = user(json!({"urn:example:nope": {"a": 1}}));
    let (kind, detail) = err_of(&body, &users());
    assert_eq!(kind, ErrorKind::InvalidValue);
    assert!(detail.contains("unknown schema"), "{detail}");
    let out = validate_for_create_with(&body, &users(), &ignore()).unwrap();
    assert!(out.get("urn:example:nope").is_none());
}

#[test]
fn extension_urn_is_added_to_schemas() {
    let body = user(json!({
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user": {"Department": "Tours"}
    }));
    let out = validate_for_create(&body, &users()).unwrap();
    assert_eq!(out["schemas"], json!([USER_SCHEMA, ENTERPRISE_USER_SCHEMA]));
    assert_eq!(out[ENTERPRISE_USER_SCHEMA], json!({"department": "Tours"}));
    let (kind, _) = err_of(&user(json!({ENTERPRISE_USER_SCHEMA: "Tours"})), &users());
    assert_eq!(kind, ErrorKind::InvalidValue);
}

#[test]
fn unknown_attributes_are_rejected_by_name_or_ignored() {
    let body = user(json!({"favoriteColor": "blue"}));
    let (kind, detail) = err_of(&body, &users());
    assert_eq!(kind, ErrorKind::InvalidValue);
    assert!(detail.contains("'favoriteColor'"), "{detail}");
    let out = validate_for_create_with(&body, &users(), &ignore()).unwrap();
    assert_eq!(out, user(json!({})));

    let body = user(json!({"name": {"givenName": "B", "nick": "x"}}));
    let (kind, detail) = err_of(&body, &users());
    assert_eq!(kind, ErrorKind::InvalidValue);
    assert!(detail.contains("'name.nick'"), "{detail}");
    let body = user(json!({ENTERPRISE_USER_SCHEMA: {"building": "B2"}}));
    let (_, detail) = err_of(&body, &users());
    assert!(detail.contains("building"), "{detail}");
    let out = validate_for_create_with(&body, &users(), &ignore()).unwrap();
    assert!(out.get(ENTERPRISE_USER_SCHEMA).is_none());
}

#[test]
fn the_same_attribute_twice_is_a_syntax_error() {
    let body = json!({"schemas": [USER_SCHEMA], "userName": "a", "USERNAME": "b"});
    let (kind, detail) = err_of(&body, &users());
    assert_eq!(kind, ErrorKind::InvalidSyntax);
    assert!(detail.contains("userName"), "{detail}");
}

#[test]
fn keys_are_normalised_to_the_schema_spelling() {
    let body = json!({
        "Schemas": [USER_SCHEMA],
        "UserName": "bjensen",
        "NAME": {"GivenName": "Barbara"},
        "Emails": [{"Value": "b@x", "TYPE": "work", "Primary": true}]
    });
    assert_eq!(
        validate_for_create(&body, &users()).unwrap(),
        json!({
            "schemas": [USER_SCHEMA],
            "userName": "bjensen",
            "name": {"givenName": "Barbara"},
            "emails": [{"value": "b@x", "type": "work", "primary": true}]
        })
    );
}

#[test]
fn types_are_checked_with_the_attribute_path() {
    let rs = acme_users(false);
    let ok = user(json!({
        "active": false,
        "profileUrl": "https://example.com/b",
        ACME: {
            "site": "HQ",
            "badge": 7,
            "height": 1.8,
            "hired": "2008-01-23T04:56:22+01:00",
            "photo": "aGVsbG8",
            "homepage": "https://example.com"
        }
    }));
    validate_for_create(&ok, &rs).unwrap();
    let integral_decimal = user(json!({ACME: {"site": "HQ", "height": 2}}));
    validate_for_create(&integral_decimal, &rs).unwrap();
    let url_safe = user(json!({ACME: {"site": "HQ", "photo": "-_8="}}));
    validate_for_create(&url_safe, &rs).unwrap();

    let cases = [
        (user(json!({"userName": 5})), "userName"),
        (user(json!({"active": "true"})), "active"),
        (user(json!({"name": "Barbara"})), "name"),
        (user(json!({"name": {"givenName": 1}})), "name.givenName"),
        (user(json!({"profileUrl": {"href": "x"}})), "profileUrl"),
        (
            user(json!({"emails": [{"value": "a@x"}, {"value": "b@x", "primary": "yes"}]})),
            "emails[1].primary",
        ),
        (user(json!({ACME: {"site": "HQ", "badge": 1.5}})), "badge"),
        (user(json!({ACME: {"site": "HQ", "badge": 1e3}})), "badge"),
        (user(json!({ACME: {"site": "HQ", "badge": "7"}})), "badge"),
        (
            user(json!({ACME: {"site": "HQ", "height": "1.8"}})),
            "height",
        ),
        (
            user(json!({ACME: {"site": "HQ", "hired": "2008-01-23"}})),
            "hired",
        ),
        (
            user(json!({ACME: {"site": "HQ", "hired": "2008-01-23T04:56:22"}})),
            "hired",
        ),
        (
            user(json!({ACME: {"site": "HQ", "photo": "not base64!"}})),
            "photo",
        ),
    ];
    for (body, path) in cases {
        let e = validate_for_create(&body, &rs).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidValue, "{body}");
        assert!(e.detail().contains(path), "{path}: {}", e.detail());
    }
}

#[test]
fn multi_valued_attributes() {
    // A single value is wrapped.
    let out = validate_for_create(&user(json!({"emails": {"value": "a@x"}})), &users()).unwrap();
    assert_eq!(out["emails"], json!([{"value": "a@x"}]));
    // An array for a single-valued attribute is an error.
    let (kind, detail) = err_of(&user(json!({"nickName": ["a", "b"]})), &users());
    assert_eq!(kind, ErrorKind::InvalidValue);
    assert!(detail.contains("nickName"), "{detail}");
    // At most one primary.
    let body = user(json!({"emails": [
        {"value": "a@x", "primary": true}, {"value": "b@x", "primary": true}
    ]}));
    let (kind, detail) = err_of(&body, &users());
    assert_eq!(kind, ErrorKind::InvalidValue);
    assert!(detail.contains("primary"), "{detail}");
    // `primary` is accepted on addresses although the schema does not list it.
    let body = user(json!({"addresses": [{"locality": "Hollywood", "primary": true}]}));
    validate_for_create(&body, &users()).unwrap();
}

#[test]
fn required_attributes() {
    for body in [
        json!({"schemas": [USER_SCHEMA]}),
        json!({"schemas": [USER_SCHEMA], "userName": null}),
        json!({"schemas": [USER_SCHEMA], "userName": ""}),
    ] {
        let (kind, detail) = err_of(&body, &users());
        assert_eq!(kind, ErrorKind::InvalidValue);
        assert!(detail.contains("userName"), "{detail}");
    }
    let (kind, detail) = err_of(&json!({"schemas": [GROUP_SCHEMA]}), &groups());
    assert_eq!(kind, ErrorKind::InvalidValue);
    assert!(detail.contains("displayName"), "{detail}");
    // Required attributes of an extension count when the extension is present.
    let rs = acme_users(false);
    validate_for_create(&user(json!({})), &rs).unwrap();
    let (kind, detail) = err_of(&user(json!({ACME: {"badge": 1}})), &rs);
    assert_eq!(kind, ErrorKind::InvalidValue);
    assert!(detail.contains("site"), "{detail}");
}

#[test]
fn required_extensions() {
    let rs = acme_users(true);
    let (kind, detail) = err_of(&user(json!({})), &rs);
    assert_eq!(kind, ErrorKind::InvalidValue);
    assert!(detail.contains(ACME), "{detail}");
    validate_for_create(&user(json!({ACME: {"site": "HQ"}})), &rs).unwrap();
}

#[test]
fn read_only_values_are_ignored() {
    let body = user(json!({
        "id": "client-chosen",
        "meta": {"resourceType": "User", "created": "not even a date"},
        "groups": [{"value": "g1"}],
        ENTERPRISE_USER_SCHEMA: {"manager": {"value": "m1", "displayName": "Boss"}}
    }));
    assert_eq!(
        validate_for_create(&body, &users()).unwrap(),
        user(json!({
            "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
            ENTERPRISE_USER_SCHEMA: {"manager": {"value": "m1"}}
        }))
    );
    let group = json!({
        "schemas": [GROUP_SCHEMA],
        "displayName": "Tour Guides",
        "members": [{"value": "u1", "display": "Babs", "type": "User"}]
    });
    // `members.display` is readWrite in this project: kept as sent.
    assert_eq!(
        validate_for_create(&group, &groups()).unwrap()["members"],
        json!([{"value": "u1", "display": "Babs", "type": "User"}])
    );
}

#[test]
fn canonical_values_are_advisory_unless_strict() {
    let body = user(
        json!({"emails": [{"value": "a@x", "type": "Work"}, {"value": "b@x", "type": "pager"}]}),
    );
    validate_for_create(&body, &users()).unwrap();
    let strict = ValidationOptions {
        strict_canonical_values: true,
        ..ValidationOptions::default()
    };
    let e = validate_for_create_with(&body, &users(), &strict).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidValue);
    assert!(e.detail().contains("emails[1].type"), "{}", e.detail());
    let fine = user(json!({"emails": [{"value": "a@x", "type": "WORK"}]}));
    validate_for_create_with(&fine, &users(), &strict).unwrap();
}

#[test]
fn nulls_and_empty_values_are_unassigned() {
    let body = user(json!({
        "nickName": null,
        "name": {"givenName": null},
        "emails": [],
        "phoneNumbers": [null],
        ENTERPRISE_USER_SCHEMA: null
    }));
    assert_eq!(
        validate_for_create(&body, &users()).unwrap(),
        user(json!({}))
    );
}

#[test]
fn the_rfc_examples_validate() {
    let full = rfc_json!("rfc7643-8.3-enterprise-user.json");
    let out = validate_for_create(&full, &users()).unwrap();
    for dropped in ["id", "meta", "groups"] {
        assert!(out.get(dropped).is_none(), "{dropped}");
    }
    assert_eq!(out["password"], "t1meMa$heen");
    assert!(
        out[ENTERPRISE_USER_SCHEMA]["manager"]
            .get("displayName")
            .is_none()
    );
    validate_for_create(&rfc_json!("rfc7643-8.2-full-user.json"), &users()).unwrap();
    let out = validate_for_create(&rfc_json!("rfc7643-8.1-minimal-user.json"), &users()).unwrap();
    assert_eq!(out, user(json!({"userName": "bjensen@example.com"})));
    let out = validate_for_create(&rfc_json!("rfc7643-8.4-group.json"), &groups()).unwrap();
    assert_eq!(
        out["members"][0],
        json!({
            "value": "2819c223-7f76-453a-919d-413861904646",
            "$ref": "https://example.com/v2/Users/2819c223-7f76-453a-919d-413861904646",
            "display": "Babs Jensen"
        })
    );
}

#[test]
fn replace_keeps_read_only_values_from_the_existing_resource() {
    let existing = rfc_json!("rfc7643-8.3-enterprise-user.json");
    // RFC 7644 section 3.5.1's PUT body.
    let body = json!({
        "schemas": [USER_SCHEMA],
        "id": "2819c223-7f76-453a-919d-413861904646",
        "userName": "bjensen",
        "externalId": "bjensen",
        "name": {"formatted": "Ms. Barbara J Jensen III", "familyName": "Jensen",
                 "givenName": "Barbara", "middleName": "Jane"},
        "roles": [],
        "emails": [{"value": "bjensen@example.com"}, {"value": "babs@jensen.org"}]
    });
    let out = validate_for_replace(&body, &existing, &users()).unwrap();
    assert_eq!(out["id"], existing["id"]);
    assert_eq!(out["meta"], existing["meta"]);
    assert_eq!(out["groups"], existing["groups"]);
    // writeOnly password omitted: kept.
    assert_eq!(out["password"], "t1meMa$heen");
    assert_eq!(out["userName"], "bjensen");
    assert!(out.get("roles").is_none() && out.get("nickName").is_none());
    assert!(out.get(ENTERPRISE_USER_SCHEMA).is_none());
    // A client-sent id is ignored, not an error.
    let mut other_id = body.clone();
    other_id["id"] = json!("something-else");
    let out = validate_for_replace(&other_id, &existing, &users()).unwrap();
    assert_eq!(out["id"], existing["id"]);
    // A password given replaces the old one.
    let mut with_password = body;
    with_password["password"] = json!("n3w");
    assert_eq!(
        validate_for_replace(&with_password, &existing, &users()).unwrap()["password"],
        "n3w"
    );
}

#[test]
fn replace_carries_read_only_sub_attributes_over() {
    // `members.display` is readWrite in this project: the client's wins,
    // and an element without one gets none from the existing element.
    let existing = rfc_json!("rfc7643-8.4-group.json");
    let body = json!({
        "schemas": [GROUP_SCHEMA],
        "displayName": "Tour Guides",
        "members": [
            {"value": "902c246b-6245-4190-8e05-00816be7344a", "display": "Mandy P."},
            {"value": "2819c223-7f76-453a-919d-413861904646"},
            {"value": "new-member"}
        ]
    });
    let out = validate_for_replace(&body, &existing, &groups()).unwrap();
    assert_eq!(
        out["members"],
        json!([
            {"value": "902c246b-6245-4190-8e05-00816be7344a", "display": "Mandy P."},
            {"value": "2819c223-7f76-453a-919d-413861904646"},
            {"value": "new-member"}
        ])
    );
    let existing = rfc_json!("rfc7643-8.3-enterprise-user.json");
    let body = user(
        json!({ENTERPRISE_USER_SCHEMA: {"manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}}}),
    );
    let out = validate_for_replace(&body, &existing, &users()).unwrap();
    assert_eq!(
        out[ENTERPRISE_USER_SCHEMA]["manager"]["displayName"],
        "John Smith"
    );
}

#[test]
fn replace_enforces_immutable_attributes() {
    let rs = acme_users(false);
    let existing = user(json!({
        "id": "1",
        "schemas": [USER_SCHEMA, ACME],
        ACME: {"site": "HQ", "badge": 7, "desk": {"building": "B1", "number": "12"}}
    }));
    // Same values: accepted.
    let same =
        user(json!({ACME: {"site": "HQ", "badge": 7, "desk": {"building": "B1", "number": "14"}}}));
    let out = validate_for_replace(&same, &existing, &rs).unwrap();
    assert_eq!(out[ACME]["desk"], json!({"building": "B1", "number": "14"}));
    // Changed: mutability.
    let changed = user(json!({ACME: {"site": "HQ", "badge": 8}}));
    let e = validate_for_replace(&changed, &existing, &rs).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Mutability);
    assert!(e.detail().contains("badge"), "{}", e.detail());
    let changed = user(json!({ACME: {"site": "HQ", "desk": {"building": "B2"}}}));
    let e = validate_for_replace(&changed, &existing, &rs).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Mutability);
    assert!(e.detail().contains("desk.building"), "{}", e.detail());
    // Omitted: the existing value is kept.
    let omitted = user(json!({ACME: {"site": "HQ"}}));
    let out = validate_for_replace(&omitted, &existing, &rs).unwrap();
    assert_eq!(out[ACME], json!({"site": "HQ", "badge": 7}));
    assert_eq!(out["schemas"], json!([USER_SCHEMA, ACME]));
    // Omitting the whole extension keeps the immutable value, so the
    // extension stays, and its required `site` must then be given
    // (RFC 7644 section 3.5.1: required attributes MUST be in a PUT).
    let e = validate_for_replace(&user(json!({})), &existing, &rs).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidValue);
    assert!(e.detail().contains("site"), "{}", e.detail());
    // No existing value: the new one is applied.
    let fresh = user(json!({"id": "2"}));
    let out = validate_for_replace(
        &user(json!({ACME: {"site": "HQ", "badge": 9}})),
        &fresh,
        &rs,
    )
    .unwrap();
    assert_eq!(out[ACME]["badge"], 9);
    // A required attribute must be in the PUT body.
    let e = validate_for_replace(&json!({"schemas": [USER_SCHEMA]}), &existing, &rs).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidValue);
}

#[test]
fn single_values_for_patch() {
    let rs = users();
    let emails = rs.resolve("emails").unwrap();
    let opts = ValidationOptions::default();
    assert_eq!(
        validate_value(&emails, &json!({"Value": "a@x", "TYPE": "work"}), &opts).unwrap(),
        json!([{"value": "a@x", "type": "work"}])
    );
    let active = rs.resolve("active").unwrap();
    let e = validate_value(&active, &json!("True"), &opts).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidValue);
    assert!(e.detail().contains("active"));
    let value = rs.resolve("emails.value").unwrap();
    assert_eq!(
        validate_value(&value, &json!("x@y"), &opts).unwrap(),
        json!("x@y")
    );
    assert_eq!(
        validate_value(&active, &Value::Null, &opts).unwrap(),
        Value::Null
    );
    // readOnly sub-attributes are kept: mutability is the PATCH engine's call.
    let members = groups().resolve("members").unwrap();
    assert_eq!(
        validate_value(&members, &json!([{"value": "1", "display": "x"}]), &opts).unwrap(),
        json!([{"value": "1", "display": "x"}])
    );
}
