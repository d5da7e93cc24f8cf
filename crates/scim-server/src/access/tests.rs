//! The model on its own: many small cases.

use std::collections::HashMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use scim_core::filter::Filter;
use scim_core::schema::SchemaRegistry;
use serde_json::json;

use super::*;
use crate::lifecycle::evaluate::CompiledRule;
use crate::lifecycle::playbook::Action;
use crate::store::lifecycle::{Rule, RuleFields, UserAssignment};

const USER: i64 = 1;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 8, 12, 0, 0).unwrap()
}

fn assignment(id: i64, app: i64, source: &str) -> UserAssignment {
    UserAssignment {
        id,
        application_id: app,
        source: source.into(),
        role: None,
        valid_from: None,
        valid_until: None,
        reason: None,
        granted_by: None,
        via_group: None,
    }
}

fn user() -> Facts {
    Facts {
        pk: Some(USER),
        active: true,
        ..Facts::default()
    }
}

fn group(pk: i64, name: &str) -> GroupInfo {
    GroupInfo {
        pk,
        id: format!("g{pk}"),
        name: name.into(),
    }
}

#[test]
fn nothing_without_reasons() {
    assert!(entitlements(&user(), now()).is_empty());
}

#[test]
fn a_manual_assignment_grants() {
    let mut f = user();
    f.assignments.push(assignment(10, 7, "manual"));
    let e = &entitlements(&f, now())[&7];
    assert!(e.granted);
    assert_eq!(e.state, State::Granted);
    assert_eq!(e.reasons.len(), 1);
    assert_eq!(e.reasons[0].kind, "manual");
    assert_eq!(e.until, None);
}

#[test]
fn a_missing_user_has_nothing() {
    let mut f = user();
    f.pk = None;
    f.assignments.push(assignment(10, 7, "manual"));
    assert!(entitlements(&f, now()).is_empty());
}

#[test]
fn windows_bound_the_grant() {
    let mut f = user();
    let mut later = assignment(10, 7, "manual");
    later.valid_from = Some(now() + Duration::hours(1));
    let mut past = assignment(11, 8, "manual");
    past.valid_until = Some(now() - Duration::seconds(1));
    let mut open = assignment(12, 9, "playbook:3");
    open.valid_until = Some(now() + Duration::days(2));
    f.assignments = vec![later, past, open];
    let e = entitlements(&f, now());
    assert_eq!(e[&7].state, State::Scheduled);
    assert!(!e[&7].granted);
    assert_eq!(e[&8].state, State::Expired);
    assert!(!e[&8].granted);
    assert!(e[&9].granted);
    assert_eq!(e[&9].reasons[0].kind, "playbook");
    assert_eq!(e[&9].until, Some(now() + Duration::days(2)));
}

#[test]
fn the_window_end_is_exclusive_and_the_start_inclusive() {
    let mut f = user();
    let mut a = assignment(10, 7, "manual");
    a.valid_from = Some(now());
    a.valid_until = Some(now() + Duration::seconds(1));
    f.assignments = vec![a.clone()];
    assert!(entitlements(&f, now())[&7].granted);
    assert!(!entitlements(&f, now() + Duration::seconds(1))[&7].granted);
}

#[test]
fn an_open_reason_makes_the_grant_open_ended() {
    let mut f = user();
    let mut temp = assignment(10, 7, "manual");
    temp.valid_until = Some(now() + Duration::hours(1));
    f.assignments = vec![temp, assignment(11, 7, "rule:2")];
    let e = &entitlements(&f, now())[&7];
    assert_eq!(e.until, None);
    assert_eq!(e.reasons.len(), 2);
    assert_eq!(e.reasons[1].kind, "rule");
    assert!(e.reasons[1].ends.contains("rule 2 stops matching"));
}

#[test]
fn roles_are_the_union_of_reasons_in_force() {
    let mut f = user();
    let mut a = assignment(10, 7, "manual");
    a.role = Some("admin".into());
    let mut b = assignment(11, 7, "rule:1");
    b.role = Some("viewer".into());
    let mut c = assignment(12, 7, "manual");
    c.role = Some("expired".into());
    c.valid_until = Some(now() - Duration::seconds(5));
    let mut d = assignment(13, 7, "manual");
    d.role = Some("  ".into());
    f.assignments = vec![a, b, c, d];
    assert_eq!(entitlements(&f, now())[&7].roles, vec!["admin", "viewer"]);
}

#[test]
fn an_inactive_user_is_suspended_not_forgotten() {
    let mut f = user();
    f.active = false;
    f.assignments = vec![assignment(10, 7, "manual"), assignment(11, 8, "playbook:1")];
    let e = entitlements(&f, now());
    assert!(
        e.values()
            .all(|e| !e.granted && e.state == State::Suspended)
    );
    assert!(e.values().all(|e| e.roles.is_empty()));
    assert_eq!(e[&7].reasons.len(), 1);
    f.active = true;
    assert!(entitlements(&f, now()).values().all(|e| e.granted));
}

#[test]
fn a_leaver_in_grace_keeps_access_until_it_ends() {
    let mut f = user();
    f.active = false;
    f.grace_until = Some(now() + Duration::minutes(10));
    f.assignments = vec![assignment(10, 7, "manual")];
    let e = &entitlements(&f, now())[&7];
    assert!(e.granted);
    assert_eq!(e.state, State::Grace);
    assert_eq!(e.until, f.grace_until);
    let after = &entitlements(&f, now() + Duration::minutes(10))[&7];
    assert!(!after.granted);
    assert_eq!(after.state, State::Suspended);
}

#[test]
fn a_grace_does_not_outlast_the_window() {
    let mut f = user();
    f.active = false;
    f.grace_until = Some(now() + Duration::hours(10));
    let mut a = assignment(10, 7, "manual");
    a.valid_until = Some(now() + Duration::hours(1));
    f.assignments = vec![a];
    assert_eq!(
        entitlements(&f, now())[&7].until,
        Some(now() + Duration::hours(1))
    );
}

#[test]
fn a_pending_leaver_keeps_access_until_evaluated() {
    let mut f = user();
    f.active = false;
    f.leaver_pending = true;
    f.assignments = vec![assignment(10, 7, "manual")];
    assert_eq!(entitlements(&f, now())[&7].state, State::LeaverPending);
    assert!(entitlements(&f, now())[&7].granted);
}

#[test]
fn a_direct_group_grants_with_its_name() {
    let mut f = user();
    f.edges = vec![(USER, 100)];
    f.groups = vec![group(100, "Sales")];
    f.group_assignments = vec![(100, assignment(20, 7, "manual"))];
    let e = &entitlements(&f, now())[&7];
    assert!(e.granted);
    let r = &e.reasons[0];
    assert_eq!(r.kind, "group");
    let g = r.group.as_ref().unwrap();
    assert_eq!((g.id.as_str(), g.name.as_str()), ("g100", "Sales"));
    assert_eq!(g.path, vec!["Sales"]);
    assert!(r.ends.contains("removal from group 'Sales'"));
}

#[test]
fn nested_groups_grant_with_the_path() {
    let mut f = user();
    // user -> EMEA Sales -> Sales -> Everyone
    f.edges = vec![(USER, 101), (101, 100), (100, 99)];
    f.groups = vec![
        group(99, "Everyone"),
        group(100, "Sales"),
        group(101, "EMEA Sales"),
    ];
    f.group_assignments = vec![(99, assignment(20, 7, "manual"))];
    let e = &entitlements(&f, now())[&7];
    assert!(e.granted);
    let g = e.reasons[0].group.as_ref().unwrap();
    assert_eq!(g.name, "Everyone");
    assert_eq!(g.path, vec!["EMEA Sales", "Sales", "Everyone"]);
    assert!(
        e.reasons[0]
            .ends
            .contains("removal from group 'EMEA Sales'")
    );
}

#[test]
fn group_cycles_end() {
    let mut f = user();
    f.edges = vec![(USER, 100), (100, 101), (101, 100), (101, USER)];
    f.groups = vec![group(100, "A"), group(101, "B")];
    f.group_assignments = vec![(101, assignment(20, 7, "manual"))];
    let paths = group_paths(&f);
    assert_eq!(paths.len(), 2);
    assert!(entitlements(&f, now())[&7].granted);
}

#[test]
fn the_shortest_path_is_shown() {
    let mut f = user();
    f.edges = vec![(USER, 100), (100, 101), (USER, 101)];
    f.groups = vec![group(100, "A"), group(101, "B")];
    let paths = group_paths(&f);
    let b = paths.iter().find(|g| g.pk == 101).unwrap();
    assert_eq!(b.path, vec!["B"]);
}

#[test]
fn assignments_of_groups_the_user_is_not_in_are_ignored() {
    let mut f = user();
    f.edges = vec![(USER, 100)];
    f.groups = vec![group(100, "A"), group(101, "B")];
    f.group_assignments = vec![(101, assignment(20, 7, "manual"))];
    assert!(entitlements(&f, now()).is_empty());
}

#[test]
fn a_group_a_rule_added_names_the_rule() {
    let mut f = user();
    f.edges = vec![(USER, 100)];
    f.groups = vec![group(100, "Sales")];
    f.group_grants = vec![(100, "rule:4".into())];
    f.group_assignments = vec![(100, assignment(20, 7, "manual"))];
    let r = &entitlements(&f, now())[&7].reasons[0];
    assert_eq!(r.group.as_ref().unwrap().added_by, vec!["rule:4"]);
    assert!(r.ends.contains("rule 4 stops matching"));
}

#[test]
fn an_inactive_member_of_a_group_is_suspended() {
    let mut f = user();
    f.active = false;
    f.edges = vec![(USER, 100)];
    f.groups = vec![group(100, "Sales")];
    f.group_assignments = vec![(100, assignment(20, 7, "manual"))];
    let e = &entitlements(&f, now())[&7];
    assert!(!e.granted);
    assert_eq!(e.state, State::Suspended);
}

#[test]
fn a_group_window_bounds_the_member() {
    let mut f = user();
    f.edges = vec![(USER, 100)];
    f.groups = vec![group(100, "Sales")];
    let mut a = assignment(20, 7, "manual");
    a.valid_until = Some(now() - Duration::seconds(1));
    f.group_assignments = vec![(100, a)];
    assert!(!entitlements(&f, now())[&7].granted);
}

#[test]
fn granted_apps_lists_only_granted() {
    let mut f = user();
    let mut later = assignment(10, 7, "manual");
    later.valid_from = Some(now() + Duration::hours(1));
    f.assignments = vec![later, assignment(11, 8, "manual")];
    assert_eq!(
        granted_apps(&f, now()).into_iter().collect::<Vec<_>>(),
        vec![8]
    );
}

fn rule(id: i64, event: &str, filter: &str, playbooks: Vec<i64>) -> CompiledRule {
    let users = SchemaRegistry::core().resource_schema("User").unwrap();
    CompiledRule {
        rule: Rule {
            id,
            fields: RuleFields {
                name: format!("r{id}"),
                event: event.into(),
                filter: filter.into(),
                playbooks,
                enabled: true,
                revoke_after_seconds: None,
            },
            created: now(),
            updated: now(),
        },
        filter: Filter::parse(filter, &users).unwrap(),
    }
}

fn assign(app: i64, role: Option<&str>) -> Action {
    Action::AssignApplication {
        application_id: Some(app),
        application: None,
        role: role.map(str::to_owned),
        valid_for_seconds: None,
    }
}

fn playbooks() -> HashMap<i64, Vec<Action>> {
    HashMap::from([
        (1, vec![assign(7, Some("editor")), assign(8, None)]),
        (
            2,
            vec![
                assign(9, None),
                Action::AddToGroup {
                    group_id: Some("g100".into()),
                    group: None,
                },
            ],
        ),
    ])
}

#[test]
fn joiner_and_mover_rules_grant_while_they_match() {
    let rules = vec![
        rule(1, "joiner", "title eq \"Marketing Manager\"", vec![1]),
        rule(2, "mover", "userType eq \"Sales\"", vec![2]),
    ];
    let groups = HashMap::from([("g100".to_owned(), 100)]);
    let marketing = json!({"title": "Marketing Manager", "userType": "Marketing"});
    let g = rule_grants(&marketing, &rules, &playbooks(), &groups);
    assert_eq!(g.rules.iter().copied().collect::<Vec<_>>(), vec![1]);
    assert_eq!(
        g.apps.get(&(7, "rule:1".into())),
        Some(&Some("editor".to_owned()))
    );
    assert!(g.apps.contains_key(&(8, "rule:1".into())));
    assert!(g.groups.is_empty());
    let sales = json!({"title": "Rep", "userType": "Sales"});
    let g = rule_grants(&sales, &rules, &playbooks(), &groups);
    assert_eq!(g.rules.iter().copied().collect::<Vec<_>>(), vec![2]);
    assert!(g.apps.contains_key(&(9, "rule:2".into())));
    assert!(g.groups.contains(&(100, "rule:2".into())));
}

#[test]
fn leaver_and_disabled_rules_grant_nothing() {
    let mut disabled = rule(2, "joiner", "title pr", vec![1]);
    disabled.rule.fields.enabled = false;
    let rules = vec![rule(1, "leaver", "title pr", vec![1]), disabled];
    let g = rule_grants(
        &json!({"title": "x"}),
        &rules,
        &playbooks(),
        &HashMap::new(),
    );
    assert_eq!(g, RuleGrants::default());
}

#[test]
fn unknown_groups_and_playbooks_are_skipped() {
    let rules = vec![rule(1, "mover", "title pr", vec![2, 99])];
    let g = rule_grants(
        &json!({"title": "x"}),
        &rules,
        &playbooks(),
        &HashMap::new(),
    );
    assert!(g.groups.is_empty());
    assert_eq!(g.apps.len(), 1);
}

#[test]
fn the_first_rule_naming_an_app_keeps_its_role() {
    let pbs = HashMap::from([(1, vec![assign(7, Some("a")), assign(7, Some("b"))])]);
    let rules = vec![rule(1, "mover", "title pr", vec![1])];
    let g = rule_grants(&json!({"title": "x"}), &rules, &pbs, &HashMap::new());
    assert_eq!(
        g.apps.get(&(7, "rule:1".into())),
        Some(&Some("a".to_owned()))
    );
}

#[test]
fn the_json_names_state_reasons_and_grace() {
    let mut f = user();
    f.active = false;
    f.grace_until = Some(now() + Duration::minutes(5));
    f.edges = vec![(USER, 100)];
    f.groups = vec![group(100, "Sales")];
    f.group_assignments = vec![(100, assignment(20, 7, "manual"))];
    let e = &entitlements(&f, now())[&7];
    let j = entitlement_json(e, f.grace_until);
    assert_eq!(j["entitlement"], "grace");
    assert_eq!(
        j["graceUntil"],
        json!((now() + Duration::minutes(5)).to_rfc3339())
    );
    assert_eq!(j["reasons"][0]["group"]["name"], "Sales");
}

fn exclusion(app: i64, until: Option<DateTime<Utc>>) -> Exclusion {
    Exclusion {
        id: 1,
        application_id: app,
        reason: Some("reviewed".into()),
        source: "review:1".into(),
        created_by: Some("token:1".into()),
        valid_until: until,
        created: now(),
    }
}

#[test]
fn an_exclusion_wins_over_every_reason() {
    let mut f = user();
    f.assignments = vec![assignment(10, 7, "rule:1"), assignment(11, 7, "manual")];
    f.edges = vec![(USER, 100)];
    f.groups = vec![group(100, "Sales")];
    f.group_assignments = vec![(100, assignment(20, 7, "manual"))];
    f.exclusions = vec![exclusion(7, None)];
    let e = &entitlements(&f, now())[&7];
    assert!(!e.granted);
    assert_eq!(e.state, State::Excluded);
    assert!(e.roles.is_empty());
    assert_eq!(e.reasons.len(), 3, "the reasons are still shown");
    assert_eq!(e.exclusion.as_ref().unwrap().source, "review:1");
}

#[test]
fn an_exclusion_ends_at_its_end() {
    let mut f = user();
    f.assignments = vec![assignment(10, 7, "rule:1")];
    f.exclusions = vec![exclusion(7, Some(now() + Duration::hours(1)))];
    assert!(!entitlements(&f, now())[&7].granted);
    let later = &entitlements(&f, now() + Duration::hours(1))[&7];
    assert!(later.granted);
    assert_eq!(later.exclusion, None);
}

#[test]
fn an_exclusion_without_reasons_is_listed() {
    let mut f = user();
    f.exclusions = vec![exclusion(7, None)];
    let e = &entitlements(&f, now())[&7];
    assert_eq!(e.state, State::Excluded);
    assert!(e.reasons.is_empty());
}

#[test]
fn an_exclusion_of_another_app_changes_nothing() {
    let mut f = user();
    f.assignments = vec![assignment(10, 7, "manual")];
    f.exclusions = vec![exclusion(8, None)];
    assert!(entitlements(&f, now())[&7].granted);
}
