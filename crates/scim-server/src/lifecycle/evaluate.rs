//! The rule evaluator, pure: from what the store knows of a user (current
//! document, what the evaluator saw last time, assignments, rule group
//! grants) and the rules and playbooks, what to write.
//!
//! Events trigger one-off work; they do not decide access:
//! - **joiner**: the user is active and was not (created, or activated);
//! - **leaver**: the user was active and is not (deactivated) or is gone;
//! - **mover**: active before and after (any change).
//!
//! Access is birthright ([`crate::access::rule_grants`]): the grants
//! (assignApplication, addToGroup) of every enabled `joiner` or `mover`
//! rule whose filter matches the current document are kept as assignments
//! with source `rule:<id>` and rule group memberships, whatever event
//! brought the user there; those of rules that stop matching are revoked.
//! Manual and playbook-run grants are left alone. A leaver keeps every
//! grant, suspended: the effective-access model grants nothing to an
//! inactive user, and `active=true` restores it all. A matching `leaver`
//! rule's `revokeAfterSeconds` is a grace period during which access keeps
//! working.
//!
//! Rules "fire" (their runs are recorded and their one-off actions, set
//! attributes and remove access, run): `joiner` rules on a joiner event,
//! `mover` rules when they start to match an active user, `leaver` rules on
//! a leaver event.

use std::collections::{BTreeSet, HashMap};

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

/// Applications the user is entitled to now (the effective-access
/// model).
pub fn apps_in_force(facts: &UserFacts, now: DateTime<Utc>) -> BTreeSet<i64> {
    crate::access::granted_apps(&facts.access, now)
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
    // Birthright: what the rules that match now grant.
    let birthright = crate::access::rule_grants(doc, &ctx.rules, &ctx.playbooks, &ctx.groups);
    let held: BTreeSet<i64> = if active {
        birthright.rules.clone()
    } else {
        BTreeSet::new()
    };
    let fired: Vec<&CompiledRule> = ctx
        .rules
        .iter()
        .filter(|r| r.rule.fields.enabled && r.filter.matches(doc))
        .filter(|r| match r.rule.fields.event.as_str() {
            "leaver" => event == Some("leaver"),
            "joiner" => event == Some("joiner"),
            _ => active && held.contains(&r.rule.id) && !held_prev.contains(&r.rule.id),
        })
        .collect();
    d.fired = fired.iter().map(|r| r.rule.id).collect();

    let desired = &birthright.apps;
    let desired_groups = &birthright.groups;
    let existing_rule: Vec<&crate::store::lifecycle::UserAssignment> = facts
        .assignments
        .iter()
        .filter(|a| a.source.starts_with("rule:"))
        .collect();
    let mut granted = Vec::new();
    let mut roles_changed = Vec::new();
    for ((app, source), role) in desired {
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
        // The rule stopped matching (or is gone): its grant goes. An
        // inactive user keeps the grants of rules that still match,
        // suspended by the model.
        if !desired.contains_key(&(a.application_id, a.source.clone())) {
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
        // Suspended, not forgotten: the grants stay; the model grants
        // nothing to an inactive user, except during a grace period.
        let delay = fired
            .iter()
            .filter_map(|r| r.rule.fields.revoke_after_seconds)
            .min();
        if let Some(secs) = delay {
            let at = ctx.now + Duration::seconds(secs);
            d.outcome.grace_until = Some(at);
            scheduled.push(json!({"graceUntil": at.to_rfc3339()}));
        }
        // The engine reads the grace (or its absence) from the state.
        d.outcome.mark = true;
    } else if !active {
        // Still a leaver: the grace decided at the leaver event holds.
        d.outcome.grace_until = facts.access.grace_until;
    }
    for id in &revoke {
        if let Some(a) = facts.assignments.iter().find(|a| a.id == *id) {
            revoked.push(json!({"assignmentId": a.id, "applicationId": a.application_id, "source": a.source}));
        }
    }
    d.outcome.revoke = revoke.into_iter().collect();
    for g in desired_groups {
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
    for (pk, _) in desired_groups.iter() {
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
