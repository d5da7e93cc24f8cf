//! The rule evaluator, pure: from what the store knows of a user (current
//! document, what the evaluator saw last time, assignments, rule group
//! grants) and the rules and playbooks, what to write.
//!
//! - **joiner**: the user is active and was not (created, or activated);
//! - **leaver**: the user was active and is not (deactivated) or is gone;
//! - **mover**: active before and after (any change).
//!
//! Rules of event `joiner` hold from a joiner event for as long as their
//! condition matches; `mover` rules hold whenever it matches. The
//! assignments (source `rule:<id>`) and group memberships of the rules that
//! hold are granted; those of rules that no longer hold are revoked; manual
//! and playbook-run grants are left alone. A leaver loses every assignment
//! (the kill switch) unless a matching `leaver` rule schedules it
//! (`revokeAfterSeconds`). Rules that start to hold "fire": their runs are
//! recorded and their one-off actions (set attributes, remove access) run.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Duration, Utc};
use scim_core::filter::Filter;
use serde_json::{Map, Value, json};

use super::playbook::Action;
use crate::store::lifecycle::{Grant, Outcome, Rule, UserFacts};

/// A rule with its parsed condition.
#[derive(Debug, Clone)]
pub struct CompiledRule {
    /// The rule.
    pub rule: Rule,
    /// Its condition.
    pub filter: Filter,
}

/// Everything the evaluator reads besides the user.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// Enabled rules.
    pub rules: Vec<CompiledRule>,
    /// Playbook actions by playbook id.
    pub playbooks: HashMap<i64, Vec<Action>>,
    /// Group keys by SCIM id (of groups playbooks add to).
    pub groups: HashMap<String, i64>,
    /// Now.
    pub now: DateTime<Utc>,
}

/// What the evaluator wants done: the transactional outcome, plus the
/// writes through the resource store that precede it (idempotent).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decision {
    /// `joiner`, `mover`, `leaver` or None.
    pub event: Option<&'static str>,
    /// The rules that fire.
    pub fired: Vec<i64>,
    /// Written in one transaction.
    pub outcome: Outcome,
    /// Attributes to set on the user (rules that fire).
    pub set_attributes: Vec<Map<String, Value>>,
    /// Groups (SCIM id) to add the user to.
    pub add_to_groups: Vec<String>,
    /// Groups (key) to remove the user from.
    pub remove_from_groups: Vec<i64>,
}

fn rule_source(id: i64) -> String {
    format!("rule:{id}")
}

fn in_force(a: &crate::store::lifecycle::UserAssignment, now: DateTime<Utc>) -> bool {
    a.valid_from.is_none_or(|f| f <= now) && a.valid_until.is_none_or(|u| u > now)
}

/// Applications the user holds in force: (direct or through groups).
pub fn apps_in_force(facts: &UserFacts, now: DateTime<Utc>) -> BTreeSet<i64> {
    let mut apps: BTreeSet<i64> = facts
        .assignments
        .iter()
        .filter(|a| in_force(a, now))
        .map(|a| a.application_id)
        .collect();
    apps.extend(facts.group_apps.iter().copied());
    apps
}

/// Decides for one user.
pub fn decide(facts: &UserFacts, ctx: &Context) -> Decision {
    let mut d = Decision::default();
    let prev_active = facts.previous.as_ref().map(|p| p.0);
    let held_prev: BTreeSet<i64> = facts
        .previous
        .as_ref()
        .map(|p| p.1.iter().copied().collect())
        .unwrap_or_default();
    let Some(doc) = &facts.document else {
        // Deleted: assignments and group grants went with the row.
        if facts.previous.is_some() {
            d.event = Some("leaver");
            d.outcome.event = Some(("leaver".into(), json!({"deleted": true})));
        }
        d.outcome.state = None;
        return d;
    };
    let active = doc.get("active") != Some(&Value::Bool(false));
    let event = match (active, prev_active) {
        (true, Some(true)) => Some("mover"),
        (true, _) => Some("joiner"),
        (false, Some(true)) => Some("leaver"),
        (false, _) => None,
    };
    d.event = event;
    let matching: Vec<&CompiledRule> = ctx
        .rules
        .iter()
        .filter(|r| r.rule.fields.enabled && r.filter.matches(doc))
        .collect();
    let mut held: BTreeSet<i64> = BTreeSet::new();
    if active {
        for r in &matching {
            let holds = match r.rule.fields.event.as_str() {
                "mover" => true,
                "joiner" => event == Some("joiner") || held_prev.contains(&r.rule.id),
                _ => false,
            };
            if holds {
                held.insert(r.rule.id);
            }
        }
    }
    let fired: Vec<&CompiledRule> = if event == Some("leaver") {
        matching
            .iter()
            .filter(|r| r.rule.fields.event == "leaver")
            .copied()
            .collect()
    } else {
        matching
            .iter()
            .filter(|r| held.contains(&r.rule.id) && !held_prev.contains(&r.rule.id))
            .copied()
            .collect()
    };
    d.fired = fired.iter().map(|r| r.rule.id).collect();

    // Desired rule grants: (application, source) -> role; groups.
    let mut desired: BTreeMap<(i64, String), Option<String>> = BTreeMap::new();
    let mut desired_groups: BTreeSet<(i64, String)> = BTreeSet::new();
    for r in ctx.rules.iter().filter(|r| held.contains(&r.rule.id)) {
        for pb in &r.rule.fields.playbooks {
            for action in ctx.playbooks.get(pb).map(Vec::as_slice).unwrap_or(&[]) {
                match action {
                    Action::AssignApplication {
                        application_id: Some(app),
                        role,
                        ..
                    } => {
                        desired
                            .entry((*app, rule_source(r.rule.id)))
                            .or_insert_with(|| role.clone());
                    }
                    Action::AddToGroup {
                        group_id: Some(g), ..
                    } => {
                        if let Some(pk) = ctx.groups.get(g) {
                            desired_groups.insert((*pk, rule_source(r.rule.id)));
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    let existing_rule: Vec<&crate::store::lifecycle::UserAssignment> = facts
        .assignments
        .iter()
        .filter(|a| a.source.starts_with("rule:"))
        .collect();
    let mut granted = Vec::new();
    let mut roles_changed = Vec::new();
    for ((app, source), role) in &desired {
        let existing = existing_rule
            .iter()
            .find(|a| a.application_id == *app && a.source == *source);
        if let Some(a) = existing {
            // The playbook now names another role: the assignment follows
            // (and the engine changes the account's `roles`).
            if a.role != *role {
                d.outcome.roles.push((a.id, role.clone()));
                roles_changed.push(json!({"assignmentId": a.id, "applicationId": app,
                                          "role": role}));
            }
        } else {
            let rule_name = ctx
                .rules
                .iter()
                .find(|r| rule_source(r.rule.id) == *source)
                .map(|r| r.rule.fields.name.clone());
            d.outcome.grants.push(Grant {
                application_id: *app,
                source: source.clone(),
                role: role.clone(),
                reason: rule_name.map(|n| format!("rule '{n}'")),
                valid_until: None,
            });
            granted.push(json!({"applicationId": app, "source": source}));
        }
    }
    let mut revoked = Vec::new();
    let mut revoke: BTreeSet<i64> = BTreeSet::new();
    for a in &existing_rule {
        // An inactive user keeps what a scheduled leaver left until it
        // expires; the kill switch below handles immediate leavers.
        if active && !desired.contains_key(&(a.application_id, a.source.clone())) {
            revoke.insert(a.id);
        }
    }
    // One-off actions of the rules that fire.
    for r in &fired {
        let mut results = Vec::new();
        for pb in &r.rule.fields.playbooks {
            let actions = ctx.playbooks.get(pb).map(Vec::as_slice).unwrap_or(&[]);
            for (i, action) in actions.iter().enumerate() {
                let status = match action {
                    Action::SetAttributes { attributes } => {
                        if active {
                            d.set_attributes.push(attributes.clone());
                            "applied"
                        } else {
                            "skipped"
                        }
                    }
                    Action::RemoveAccess { application_id, .. } => {
                        for a in &facts.assignments {
                            let of_app = application_id.is_none_or(|x| x == a.application_id);
                            let keep = desired.contains_key(&(a.application_id, a.source.clone()));
                            if of_app && !keep {
                                revoke.insert(a.id);
                            }
                        }
                        "applied"
                    }
                    Action::AssignApplication { .. } | Action::AddToGroup { .. } => {
                        if active {
                            "granted"
                        } else {
                            "skipped"
                        }
                    }
                };
                results.push(
                    json!({"playbookId": pb, "action": i, "type": action.kind(), "status": status}),
                );
            }
        }
        for pb in &r.rule.fields.playbooks {
            let mine: Vec<Value> = results
                .iter()
                .filter(|x| x["playbookId"] == json!(pb))
                .cloned()
                .collect();
            d.outcome.runs.push((
                *pb,
                rule_source(r.rule.id),
                json!([{"userId": doc.get("id"), "actions": mine}]),
            ));
        }
    }
    let mut scheduled = Vec::new();
    if event == Some("leaver") {
        let delay = fired
            .iter()
            .filter_map(|r| r.rule.fields.revoke_after_seconds)
            .min();
        match delay {
            Some(secs) => {
                let at = ctx.now + Duration::seconds(secs);
                for a in &facts.assignments {
                    if a.valid_until.is_none_or(|u| u > at) {
                        d.outcome.expire_at.push((a.id, at));
                        scheduled
                            .push(json!({"assignmentId": a.id, "applicationId": a.application_id}));
                    }
                }
            }
            None => {
                // The kill switch: every assignment, whatever its source.
                revoke.extend(facts.assignments.iter().map(|a| a.id));
            }
        }
    }
    for id in &revoke {
        if let Some(a) = facts.assignments.iter().find(|a| a.id == *id) {
            revoked.push(json!({"assignmentId": a.id, "applicationId": a.application_id, "source": a.source}));
        }
    }
    d.outcome.revoke = revoke.into_iter().collect();
    for g in &desired_groups {
        if !facts.group_grants.contains(g) {
            d.outcome.group_grants_add.push(g.clone());
        }
    }
    for g in &facts.group_grants {
        if !desired_groups.contains(g) {
            d.outcome.group_grants_remove.push(g.clone());
            d.remove_from_groups.push(g.0);
        }
    }
    for (pk, _) in &desired_groups {
        if let Some((id, _)) = ctx.groups.iter().find(|(_, v)| *v == pk) {
            d.add_to_groups.push(id.clone());
        }
    }
    d.add_to_groups.sort();
    d.add_to_groups.dedup();
    d.remove_from_groups
        .retain(|pk| !desired_groups.iter().any(|(g, _)| g == pk));
    d.outcome.state = Some((active, held.iter().copied().collect()));
    let changed = !granted.is_empty()
        || !roles_changed.is_empty()
        || !revoked.is_empty()
        || !scheduled.is_empty()
        || !d.fired.is_empty()
        || !d.outcome.group_grants_add.is_empty()
        || !d.outcome.group_grants_remove.is_empty();
    if let Some(ev) = event
        && (changed || ev != "mover")
    {
        d.outcome.event = Some((
            ev.into(),
            json!({
                "rulesFired": d.fired,
                "rulesHeld": held.iter().collect::<Vec<_>>(),
                "granted": granted,
                "rolesChanged": roles_changed,
                "revoked": revoked,
                "scheduled": scheduled,
            }),
        ));
    }
    d
}
