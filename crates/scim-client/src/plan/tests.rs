//! Planner cases: one behaviour each.

use serde_json::{Value, json};

use super::*;

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn users() -> Planner {
    Planner::users(TargetCapabilities::default(), PlanOptions::default())
}

fn users_managing(paths: &[&str]) -> Planner {
    Planner::users(
        TargetCapabilities::default(),
        PlanOptions {
            managed: Managed::Attributes(paths.iter().map(|s| s.to_string()).collect()),
            ..PlanOptions::default()
        },
    )
}

fn groups_with(caps: TargetCapabilities) -> Planner {
    Planner::groups(caps, PlanOptions::default())
}

/// The operations of a PATCH plan, as text; panics on other plans.
fn ops(plan: Plan) -> Vec<String> {
    match plan {
        Plan::Patch(ops) => ops.iter().map(ToString::to_string).collect(),
        other => panic!("expected a PATCH, got {other:?}"),
    }
}

fn bjensen() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
        "externalId": "701984",
        "userName": "bjensen@example.com",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "displayName": "Babs Jensen",
        "active": true,
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ],
        ENTERPRISE: {"department": "Tour Operations", "manager": {"value": "26118915"}}
    })
}

/// What a provider would hold after creating bjensen: its own members added.
fn bjensen_remote() -> Value {
    let mut r = bjensen();
    let obj = r.as_object_mut().unwrap();
    obj.insert("id".into(), json!("2819c223-7f76-453a-919d-413861904646"));
    obj.insert(
        "meta".into(),
        json!({"resourceType": "User", "version": "W/\"3694e05e9dff591\""}),
    );
    obj.insert(
        "groups".into(),
        json!([{"value": "e9e30dba", "display": "Tour Guides"}]),
    );
    obj.insert("userType".into(), json!("Employee"));
    obj["name"]["formatted"] = json!("Ms. Barbara J Jensen, III");
    obj["emails"][0]["display"] = json!("Work email");
    r
}

#[test]
fn unchanged_resource_plans_nothing() {
    assert_eq!(
        users().plan(Some(&bjensen()), Some(&bjensen_remote())),
        Plan::Nothing
    );
    assert_eq!(
        users().plan(Some(&bjensen()), Some(&bjensen())),
        Plan::Nothing
    );
    assert_eq!(users().plan(None, None), Plan::Nothing);
}

#[test]
fn changed_attribute_is_replaced() {
    let mut d = bjensen();
    d["displayName"] = json!("Barbara Jensen");
    assert_eq!(
        ops(users().plan(Some(&d), Some(&bjensen_remote()))),
        [r#"replace displayName = "Barbara Jensen""#]
    );
}

#[test]
fn new_attribute_is_added() {
    let mut d = bjensen();
    d["title"] = json!("Tour Guide");
    assert_eq!(
        ops(users().plan(Some(&d), Some(&bjensen_remote()))),
        [r#"add title = "Tour Guide""#]
    );
}

#[test]
fn removed_attribute_is_removed_only_when_managed() {
    let mut d = bjensen();
    d.as_object_mut().unwrap().remove("displayName");
    // Managed by the desired resource: what it lacks is left alone.
    assert_eq!(
        users().plan(Some(&d), Some(&bjensen_remote())),
        Plan::Nothing
    );
    let p = users_managing(&["userName", "displayName", "emails"]);
    assert_eq!(
        ops(p.plan(Some(&d), Some(&bjensen_remote()))),
        ["remove displayName"]
    );
    // Null and the empty string are unassigned too.
    d["displayName"] = json!("");
    assert_eq!(
        ops(p.plan(Some(&d), Some(&bjensen_remote()))),
        ["remove displayName"]
    );
}

#[test]
fn attributes_the_provider_adds_cause_no_churn() {
    // userType, groups, meta, id, name.formatted and emails[].display exist
    // only at the provider; even when listed as managed, read-only ones are
    // not compared.
    let p = users_managing(&["userName", "name", "emails", "groups", "id", "meta"]);
    assert_eq!(
        p.plan(Some(&bjensen()), Some(&bjensen_remote())),
        Plan::Nothing
    );
}

#[test]
fn case_only_change_of_case_insensitive_attribute_is_nothing() {
    let mut r = bjensen_remote();
    r["userName"] = json!("BJensen@Example.COM");
    r["name"]["givenName"] = json!("BARBARA");
    r["emails"][1]["type"] = json!("Home");
    assert_eq!(users().plan(Some(&bjensen()), Some(&r)), Plan::Nothing);
}

#[test]
fn case_change_of_case_exact_attribute_is_replaced() {
    let mut r = bjensen_remote();
    r["externalId"] = json!("701984X");
    let mut d = bjensen();
    d["externalId"] = json!("701984x");
    assert_eq!(
        ops(users().plan(Some(&d), Some(&r))),
        [r#"replace externalId = "701984x""#]
    );
}

#[test]
fn reordered_emails_are_nothing() {
    let mut r = bjensen_remote();
    let emails = r["emails"].as_array_mut().unwrap();
    emails.reverse();
    assert_eq!(users().plan(Some(&bjensen()), Some(&r)), Plan::Nothing);
}

#[test]
fn changed_work_email_is_a_value_path_replace() {
    let mut d = bjensen();
    d["emails"][0]["value"] = json!("barbara@example.com");
    assert_eq!(
        ops(users().plan(Some(&d), Some(&bjensen_remote()))),
        [r#"replace emails[type eq "work"].value = "barbara@example.com""#]
    );
}

#[test]
fn email_added_and_removed_by_type() {
    let mut d = bjensen();
    d["emails"] = json!([
        {"value": "bjensen@example.com", "type": "work", "primary": true},
        {"value": "babs@other.org", "type": "other"}
    ]);
    assert_eq!(
        ops(users().plan(Some(&d), Some(&bjensen_remote()))),
        [
            r#"remove emails[type eq "home"]"#,
            r#"add emails = [{"value":"babs@other.org","type":"other"}]"#
        ]
    );
}

#[test]
fn primary_moving_is_respected() {
    let mut d = bjensen();
    d["emails"] = json!([
        {"value": "bjensen@example.com", "type": "work"},
        {"value": "babs@jensen.org", "type": "home", "primary": true}
    ]);
    assert_eq!(
        ops(users().plan(Some(&d), Some(&bjensen_remote()))),
        [
            r#"replace emails[type eq "work"].primary = false"#,
            r#"replace emails[type eq "home"].primary = true"#
        ]
    );
    // Without `primary` in the desired elements, the provider's choice stands.
    let mut no_primary = bjensen();
    no_primary["emails"] = json!([
        {"value": "bjensen@example.com", "type": "work"},
        {"value": "babs@jensen.org", "type": "home"}
    ]);
    assert_eq!(
        users().plan(Some(&no_primary), Some(&bjensen_remote())),
        Plan::Nothing
    );
}

#[test]
fn untyped_duplicates_fall_back_to_full_replace() {
    let mut r = bjensen_remote();
    r["phoneNumbers"] = json!([{"value": "555-1"}, {"value": "555-1"}]);
    let mut d = bjensen();
    d["phoneNumbers"] = json!([{"value": "555-2"}]);
    assert_eq!(
        ops(users().plan(Some(&d), Some(&r))),
        [r#"replace phoneNumbers = [{"value":"555-2"}]"#]
    );
}

#[test]
fn roles_keyed_by_value() {
    let mut r = bjensen_remote();
    r["roles"] = json!([{"value": "admin"}, {"value": "dev", "display": "Developer"}]);
    let mut d = bjensen();
    d["roles"] = json!([{"value": "dev"}, {"value": "ops"}]);
    assert_eq!(
        ops(users().plan(Some(&d), Some(&r))),
        [
            r#"remove roles[value eq "admin"]"#,
            r#"add roles = [{"value":"ops"}]"#
        ]
    );
}

#[test]
fn no_value_path_filters_means_whole_replace() {
    let p = Planner::users(
        TargetCapabilities {
            value_path_filters: false,
            ..TargetCapabilities::default()
        },
        PlanOptions::default(),
    );
    let mut d = bjensen();
    d["emails"][0]["value"] = json!("barbara@example.com");
    let plan = ops(p.plan(Some(&d), Some(&bjensen_remote())));
    assert_eq!(plan.len(), 1);
    assert!(plan[0].starts_with("replace emails = [{"), "{plan:?}");
}

#[test]
fn emails_absent_at_the_provider_are_added_whole() {
    let mut r = bjensen_remote();
    r.as_object_mut().unwrap().remove("emails");
    let plan = ops(users().plan(Some(&bjensen()), Some(&r)));
    assert_eq!(plan.len(), 1);
    assert!(plan[0].starts_with("add emails = ["), "{plan:?}");
}

#[test]
fn complex_attributes_by_sub_attribute() {
    let mut d = bjensen();
    d["name"]["givenName"] = json!("Barb");
    d["name"]["middleName"] = json!("Jane");
    assert_eq!(
        ops(users().plan(Some(&d), Some(&bjensen_remote()))),
        [
            r#"replace name.givenName = "Barb""#,
            r#"add name.middleName = "Jane""#
        ]
    );
    // Absent at the provider: added whole.
    let mut r = bjensen_remote();
    r.as_object_mut().unwrap().remove("name");
    assert_eq!(
        ops(users().plan(Some(&bjensen()), Some(&r))),
        [r#"add name = {"givenName":"Barbara","familyName":"Jensen"}"#]
    );
}

#[test]
fn explicitly_managed_sub_attribute_is_removed() {
    let mut r = bjensen_remote();
    r["name"]["middleName"] = json!("Jane");
    let p = users_managing(&["name", "name.middleName"]);
    assert_eq!(
        ops(p.plan(Some(&bjensen()), Some(&r))),
        ["remove name.middleName"]
    );
    // name.formatted is not managed explicitly: not removed.
    let p = users_managing(&["name"]);
    assert_eq!(p.plan(Some(&bjensen()), Some(&r)), Plan::Nothing);
}

#[test]
fn extension_attributes_use_urn_paths() {
    let mut d = bjensen();
    d[ENTERPRISE]["department"] = json!("Tours");
    d[ENTERPRISE]["manager"]["value"] = json!("999");
    assert_eq!(
        ops(users().plan(Some(&d), Some(&bjensen_remote()))),
        [
            format!(r#"replace {ENTERPRISE}:department = "Tours""#),
            format!(r#"replace {ENTERPRISE}:manager.value = "999""#)
        ]
    );
    // A whole extension managed by its URN: what the desired lacks goes.
    let mut r = bjensen_remote();
    r[ENTERPRISE]["costCenter"] = json!("4130");
    let p = users_managing(&["userName", ENTERPRISE]);
    assert_eq!(
        ops(p.plan(Some(&bjensen()), Some(&r))),
        [format!("remove {ENTERPRISE}:costCenter")]
    );
}

#[test]
fn booleans_as_strings_are_the_same() {
    let mut r = bjensen_remote();
    r["active"] = json!("True");
    assert_eq!(users().plan(Some(&bjensen()), Some(&r)), Plan::Nothing);
}

#[test]
fn password_and_unknown_attributes() {
    let mut d = bjensen();
    d["password"] = json!("t1meMa$heen");
    // write-only: never returned, so never compared.
    assert_eq!(
        users().plan(Some(&d), Some(&bjensen_remote())),
        Plan::Nothing
    );
    // An attribute the schema does not know is compared exactly.
    d["slackHandle"] = json!("Babs");
    let mut r = bjensen_remote();
    r["slackHandle"] = json!("babs");
    assert_eq!(
        ops(users().plan(Some(&d), Some(&r))),
        [r#"replace slackHandle = "Babs""#]
    );
    r["slackHandle"] = json!("Babs");
    assert_eq!(users().plan(Some(&d), Some(&r)), Plan::Nothing);
}

#[test]
fn create_when_the_provider_has_nothing() {
    let mut d = bjensen();
    let obj = d.as_object_mut().unwrap();
    obj.remove("schemas");
    obj.insert("id".into(), json!("ours-123"));
    let Plan::Create(doc) = users().plan(Some(&d), None) else {
        panic!()
    };
    assert_eq!(
        doc["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE])
    );
    assert!(doc.get("id").is_none());
    assert_eq!(doc["userName"], "bjensen@example.com");
    // schemas comes first.
    assert_eq!(
        doc.as_object().unwrap().keys().next().map(String::as_str),
        Some("schemas")
    );
}

#[test]
fn put_fallback_without_patch() {
    let p = Planner::users(
        TargetCapabilities {
            patch: false,
            ..TargetCapabilities::default()
        },
        PlanOptions::default(),
    );
    let mut d = bjensen();
    d["displayName"] = json!("Barbara Jensen");
    let Plan::Replace(doc) = p.plan(Some(&d), Some(&bjensen_remote())) else {
        panic!()
    };
    assert_eq!(doc["id"], "2819c223-7f76-453a-919d-413861904646");
    assert_eq!(doc["displayName"], "Barbara Jensen");
    // Unmanaged, writable attributes of the provider are kept; read-only
    // ones and meta are not sent.
    assert_eq!(doc["userType"], "Employee");
    assert!(doc.get("groups").is_none() && doc.get("meta").is_none());
    // The provider's extra extension attributes survive the merge.
    let mut r = bjensen_remote();
    r[ENTERPRISE]["costCenter"] = json!("4130");
    let Plan::Replace(doc) = p.plan(Some(&d), Some(&r)) else {
        panic!()
    };
    assert_eq!(doc[ENTERPRISE]["costCenter"], "4130");
    assert_eq!(doc[ENTERPRISE]["department"], "Tour Operations");
    // No change: still nothing.
    assert_eq!(
        p.plan(Some(&bjensen()), Some(&bjensen_remote())),
        Plan::Nothing
    );
}

#[test]
fn deprovision_policies() {
    let r = bjensen_remote();
    assert_eq!(users().plan(None, Some(&r)), Plan::Deactivate);
    let mut inactive = r.clone();
    inactive["active"] = json!(false);
    assert_eq!(users().plan(None, Some(&inactive)), Plan::Nothing);
    inactive["active"] = json!("False");
    assert_eq!(users().plan(None, Some(&inactive)), Plan::Nothing);
    let deleting = Planner::users(
        TargetCapabilities::default(),
        PlanOptions {
            deprovision: Deprovision::Delete,
            ..PlanOptions::default()
        },
    );
    assert_eq!(deleting.plan(None, Some(&r)), Plan::Delete);
    assert_eq!(deleting.plan(None, Some(&inactive)), Plan::Delete);
    // Groups have no `active`: deleted under either policy.
    let g = json!({"id": "g1", "displayName": "Tour Guides"});
    assert_eq!(
        groups_with(TargetCapabilities::default()).plan(None, Some(&g)),
        Plan::Delete
    );
}

#[test]
fn desired_again_is_reactivated() {
    let mut r = bjensen_remote();
    r["active"] = json!(false);
    let mut d = bjensen();
    d.as_object_mut().unwrap().remove("active");
    assert_eq!(
        ops(users().plan(Some(&d), Some(&r))),
        ["replace active = true"]
    );
    // Explicitly inactive stays so.
    d["active"] = json!(false);
    assert_eq!(users().plan(Some(&d), Some(&r)), Plan::Nothing);
    // And active is never removed when the desired lacks it.
    let p = users_managing(&["userName", "active"]);
    let mut d = bjensen();
    d.as_object_mut().unwrap().remove("active");
    assert_eq!(p.plan(Some(&d), Some(&bjensen_remote())), Plan::Nothing);
}

fn group(members: &[&str]) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": "Tour Guides",
        "members": members.iter().map(|m| json!({"value": m})).collect::<Vec<_>>()
    })
}

fn remote_group(members: &[&str]) -> Value {
    let mut g = group(members);
    g["id"] = json!("e9e30dba");
    for m in g["members"].as_array_mut().unwrap() {
        m["display"] = json!("someone");
        m["$ref"] = json!("https://example.com/v2/Users/x");
    }
    g
}

#[test]
fn member_deltas() {
    let p = groups_with(TargetCapabilities::default());
    assert_eq!(
        p.plan(Some(&group(&["a", "b"])), Some(&remote_group(&["b", "a"]))),
        Plan::Nothing
    );
    assert_eq!(
        ops(p.plan(
            Some(&group(&["a", "c", "d"])),
            Some(&remote_group(&["a", "b"]))
        )),
        [
            r#"remove members[value eq "b"]"#,
            r#"add members = [{"value":"c"},{"value":"d"}]"#
        ]
    );
    // With a renamed group: attribute operations first.
    let mut d = group(&[]);
    d["displayName"] = json!("Guides");
    assert_eq!(
        ops(p.plan(Some(&d), Some(&remote_group(&["a"])))),
        [
            r#"replace displayName = "Guides""#,
            r#"remove members[value eq "a"]"#
        ]
    );
}

#[test]
fn members_not_in_the_desired_group_are_left_alone() {
    let p = groups_with(TargetCapabilities::default());
    let d = json!({"displayName": "Tour Guides"});
    assert_eq!(
        p.plan(Some(&d), Some(&remote_group(&["a", "b"]))),
        Plan::Nothing
    );
    // Unless members are managed explicitly.
    let managed = Planner::groups(
        TargetCapabilities::default(),
        PlanOptions {
            managed: Managed::Attributes(vec!["displayName".into(), "members".into()]),
            ..PlanOptions::default()
        },
    );
    assert_eq!(
        ops(managed.plan(Some(&d), Some(&remote_group(&["a"])))),
        [r#"remove members[value eq "a"]"#]
    );
}

#[test]
fn ledger_for_providers_that_do_not_return_members() {
    let caps = TargetCapabilities {
        echoes_members: false,
        ..TargetCapabilities::default()
    };
    let p = groups_with(caps);
    let remote = json!({"id": "g1", "displayName": "Tour Guides"});
    let desired = group(&["a", "b"]);
    // Nothing recorded yet: every member is added.
    let first = p.plan_with_ledger(Some(&desired), Some(&remote), None);
    assert_eq!(
        ops(first.clone()),
        [r#"add members = [{"value":"a"},{"value":"b"}]"#]
    );
    let mut ledger = MembershipLedger::new();
    ledger.record(&first);
    assert_eq!(
        p.plan_with_ledger(Some(&desired), Some(&remote), Some(&ledger)),
        Plan::Nothing
    );
    // b leaves, c joins.
    let next = p.plan_with_ledger(Some(&group(&["a", "c"])), Some(&remote), Some(&ledger));
    assert_eq!(
        ops(next.clone()),
        [
            r#"remove members[value eq "b"]"#,
            r#"add members = [{"value":"c"}]"#
        ]
    );
    ledger.record(&next);
    assert_eq!(ledger.ids().collect::<Vec<_>>(), ["a", "c"]);
    // A provider that returns a truncated or empty list is not believed.
    let lying = remote_group(&[]);
    assert_eq!(
        p.plan_with_ledger(Some(&group(&["a", "c"])), Some(&lying), Some(&ledger)),
        Plan::Nothing
    );
}

#[test]
fn group_put_fallback_sends_members() {
    let p = groups_with(TargetCapabilities {
        patch: false,
        ..TargetCapabilities::default()
    });
    let Plan::Replace(doc) = p.plan(Some(&group(&["a", "c"])), Some(&remote_group(&["a"]))) else {
        panic!()
    };
    assert_eq!(doc["members"], json!([{"value": "a"}, {"value": "c"}]));
    assert_eq!(doc["id"], "e9e30dba");
}

#[test]
fn target_capabilities_from_discovery() {
    let mut caps = crate::Capabilities::assumed();
    caps.patch = false;
    let t = TargetCapabilities::from(&caps);
    assert!(!t.patch && t.echoes_members && t.value_path_filters);
}

#[test]
fn put_fallback_keeps_a_desired_deactivation() {
    let p = Planner::users(
        TargetCapabilities {
            patch: false,
            ..TargetCapabilities::default()
        },
        PlanOptions::default(),
    );
    let mut remote = bjensen_remote();
    remote["active"] = json!(true);
    let mut d = bjensen();
    d["active"] = json!(false);
    let Plan::Replace(doc) = p.plan(Some(&d), Some(&remote)) else {
        panic!()
    };
    assert_eq!(doc["active"], false);
    // A desired user without `active` reactivates what we deactivated.
    remote["active"] = json!(false);
    let mut d = bjensen();
    d.as_object_mut().unwrap().remove("active");
    let Plan::Replace(doc) = p.plan(Some(&d), Some(&remote)) else {
        panic!()
    };
    assert_eq!(doc["active"], true);
}
