//! The effective-access model, pure: who should have which application,
//! and why. Every reader of "who has access to what" asks this module: the
//! provisioning engine's desired state (`store::provisioning`), the rule
//! evaluator (`lifecycle::evaluate`, which materializes the grants of the
//! rules that match as `rule:<id>` assignments), previews, and the access
//! views.
//!
//! A user is entitled to an application when the user exists and is active
//! (or is a leaver within a grace period), and at least one reason is in
//! force: an assignment of the user (manual, `rule:<id>`, `playbook:<id>`)
//! whose window holds now, or an assignment of a group the user belongs to,
//! directly or through nested groups, and no exclusion of (user,
//! application) is in force. An inactive user's reasons are kept
//! (suspended, not forgotten): `active=true` restores them.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::lifecycle::evaluate::CompiledRule;
use crate::lifecycle::playbook::Action;
use crate::store::lifecycle::UserAssignment;

/// A group the user belongs to, directly or through nested groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupPath {
    /// The group's key.
    pub pk: i64,
    /// Its SCIM id.
    pub id: String,
    /// Its display name.
    pub name: String,
    /// The names from the user's direct group to this one (a direct
    /// member's path is `[name]`).
    pub path: Vec<String>,
    /// Who added the user to the first group of the path, when a rule or
    /// a playbook run did (`rule:<id>`, `playbook:<id>`).
    pub added_by: Vec<String>,
}

/// A group as the store knows it: key, SCIM id, display name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    /// Its key.
    pub pk: i64,
    /// Its SCIM id.
    pub id: String,
    /// Its display name.
    pub name: String,
}

/// The stored facts the model reads for one user.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    /// The user's key (None: the user does not exist).
    pub pk: Option<i64>,
    /// Whether the user is active (`active` is not false).
    pub active: bool,
    /// A leaver keeps access until then (a leaver rule's
    /// `revokeAfterSeconds`).
    pub grace_until: Option<DateTime<Utc>>,
    /// The user was deactivated and the evaluator has yet to decide
    /// whether a leaver rule grants a grace period: access stays as it was
    /// until it has.
    pub leaver_pending: bool,
    /// The user's own assignments.
    pub assignments: Vec<UserAssignment>,
    /// Membership edges reachable upwards from the user: (member, group).
    pub edges: Vec<(i64, i64)>,
    /// The groups of those edges.
    pub groups: Vec<GroupInfo>,
    /// Assignments of those groups: (group key, assignment).
    pub group_assignments: Vec<(i64, UserAssignment)>,
    /// Memberships added by rules and playbook runs: (group key, source).
    pub group_grants: Vec<(i64, String)>,
    /// Exclusions of the user (in force or not).
    pub exclusions: Vec<Exclusion>,
}

/// A decision that the user must not have an application, whatever grants
/// it (a reviewer's or an administrator's revoke of rule- or
/// group-derived access), until it is lifted or `valid_until` passes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exclusion {
    /// Its id.
    pub id: i64,
    /// The application.
    pub application_id: i64,
    /// Why.
    pub reason: Option<String>,
    /// What decided it: `admin`, `review:<campaign>`, `removeAccess`.
    pub source: String,
    /// Who.
    pub created_by: Option<String>,
    /// Until when (None: until lifted).
    pub valid_until: Option<DateTime<Utc>>,
    /// When.
    pub created: DateTime<Utc>,
}

impl Exclusion {
    /// Whether it holds at `now`.
    pub fn in_force(&self, now: DateTime<Utc>) -> bool {
        self.valid_until.is_none_or(|u| u > now)
    }
}

/// Why a user holds (or would hold) an application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    /// `manual`, `rule`, `playbook` or `group`.
    pub kind: &'static str,
    /// The assignment's source (`manual`, `rule:<id>`, `playbook:<id>`;
    /// for a group, the group assignment's).
    pub source: String,
    /// The assignment row.
    pub assignment_id: i64,
    /// The application-side role.
    pub role: Option<String>,
    /// Start of the window.
    pub valid_from: Option<DateTime<Utc>>,
    /// End of the window.
    pub valid_until: Option<DateTime<Utc>>,
    /// The group, for access through a group.
    pub group: Option<GroupPath>,
    /// Whether the window holds now.
    pub in_force: bool,
    /// What would end it.
    pub ends: String,
    /// Why it was granted (the assignment's reason).
    pub note: Option<String>,
    /// Who granted it.
    pub granted_by: Option<String>,
}

/// The state of an entitlement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Granted: a reason is in force and the user is active.
    Granted,
    /// Granted to a leaver until the grace period ends.
    Grace,
    /// Granted while the evaluator decides a leaver's grace.
    LeaverPending,
    /// The user is inactive: every reason is suspended.
    Suspended,
    /// No reason is in force yet (every window starts later).
    Scheduled,
    /// Every window has ended (the rows await the schedule's cleanup).
    Expired,
    /// An exclusion in force wins over every reason.
    Excluded,
}

impl State {
    /// The name the API shows.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Granted => "granted",
            State::Grace => "grace",
            State::LeaverPending => "leaverPending",
            State::Suspended => "suspended",
            State::Scheduled => "scheduled",
            State::Expired => "expired",
            State::Excluded => "excluded",
        }
    }
}

/// A user's entitlement to one application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entitlement {
    /// The application.
    pub application_id: i64,
    /// Whether the downstream account should exist and work.
    pub granted: bool,
    /// Why (or why not).
    pub state: State,
    /// The roles of the reasons in force, de-duplicated and sorted.
    pub roles: Vec<String>,
    /// When the access ends if nothing changes (None: open-ended): the
    /// grace end, else the latest window end of the reasons in force,
    /// None when one of them has no end.
    pub until: Option<DateTime<Utc>>,
    /// Since when a reason in force holds (the earliest start known).
    pub since: Option<DateTime<Utc>>,
    /// Every reason, in force or not.
    pub reasons: Vec<Reason>,
    /// The exclusion in force, if any.
    pub exclusion: Option<Exclusion>,
}

fn in_window(a: &UserAssignment, now: DateTime<Utc>) -> bool {
    a.valid_from.is_none_or(|f| f <= now) && a.valid_until.is_none_or(|u| u > now)
}

fn kind_of(source: &str) -> &'static str {
    if source.starts_with("rule:") {
        "rule"
    } else if source.starts_with("playbook:") {
        "playbook"
    } else {
        "manual"
    }
}

fn ends_of(a: &UserAssignment, group: Option<&GroupPath>) -> String {
    let mut ends: Vec<String> = Vec::new();
    if let Some(g) = group {
        if g.path.len() > 1 {
            ends.push(format!(
                "removal from group '{}' (path {})",
                g.path[0],
                g.path.join(" > ")
            ));
        } else {
            ends.push(format!("removal from group '{}'", g.name));
        }
        for by in &g.added_by {
            if let Some(id) = by.strip_prefix("rule:") {
                ends.push(format!(
                    "rule {id} stops matching (it added the membership)"
                ));
            }
        }
        ends.push(format!("the assignment to group '{}' is revoked", g.name));
    } else if let Some(id) = a.source.strip_prefix("rule:") {
        ends.push(format!("rule {id} stops matching"));
    } else {
        ends.push("the assignment is revoked".into());
    }
    if let Some(u) = a.valid_until {
        ends.push(format!("window end {}", u.to_rfc3339()));
    }
    ends.join("; ")
}

/// The groups the user belongs to (directly or nested), each with the
/// shortest path from a direct group; cycles are harmless.
pub fn group_paths(facts: &Facts) -> Vec<GroupPath> {
    let Some(user) = facts.pk else {
        return Vec::new();
    };
    let info: HashMap<i64, &GroupInfo> = facts.groups.iter().map(|g| (g.pk, g)).collect();
    let mut up: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for (member, group) in &facts.edges {
        up.entry(*member).or_default().push(*group);
    }
    let name = |pk: i64| {
        info.get(&pk)
            .map_or_else(|| pk.to_string(), |g| g.name.clone())
    };
    let mut seen: BTreeMap<i64, (Vec<String>, i64)> = BTreeMap::new();
    let mut queue: VecDeque<(i64, Vec<String>, i64)> = VecDeque::new();
    for g in up.get(&user).into_iter().flatten() {
        queue.push_back((*g, vec![name(*g)], *g));
    }
    while let Some((g, path, first)) = queue.pop_front() {
        if g == user || seen.contains_key(&g) {
            continue;
        }
        seen.insert(g, (path.clone(), first));
        for parent in up.get(&g).into_iter().flatten() {
            let mut p = path.clone();
            p.push(name(*parent));
            queue.push_back((*parent, p, first));
        }
    }
    seen.into_iter()
        .map(|(pk, (path, first))| {
            let (id, name) = info.get(&pk).map_or_else(
                || (pk.to_string(), pk.to_string()),
                |g| (g.id.clone(), g.name.clone()),
            );
            let mut added_by: Vec<String> = facts
                .group_grants
                .iter()
                .filter(|(g, _)| *g == first)
                .map(|(_, s)| s.clone())
                .collect();
            added_by.sort();
            added_by.dedup();
            GroupPath {
                pk,
                id,
                name,
                path,
                added_by,
            }
        })
        .collect()
}

/// The user's entitlements, by application: every application some reason
/// names, granted or not.
pub fn entitlements(facts: &Facts, now: DateTime<Utc>) -> BTreeMap<i64, Entitlement> {
    let mut reasons: BTreeMap<i64, Vec<Reason>> = BTreeMap::new();
    if facts.pk.is_none() {
        return BTreeMap::new();
    }
    for a in &facts.assignments {
        reasons.entry(a.application_id).or_default().push(Reason {
            kind: kind_of(&a.source),
            source: a.source.clone(),
            assignment_id: a.id,
            role: a.role.clone(),
            valid_from: a.valid_from,
            valid_until: a.valid_until,
            group: None,
            in_force: in_window(a, now),
            ends: ends_of(a, None),
            note: a.reason.clone(),
            granted_by: a.granted_by.clone(),
        });
    }
    let paths: HashMap<i64, GroupPath> =
        group_paths(facts).into_iter().map(|g| (g.pk, g)).collect();
    for (group, a) in &facts.group_assignments {
        let Some(path) = paths.get(group) else {
            continue;
        };
        reasons.entry(a.application_id).or_default().push(Reason {
            kind: "group",
            source: a.source.clone(),
            assignment_id: a.id,
            role: a.role.clone(),
            valid_from: a.valid_from,
            valid_until: a.valid_until,
            group: Some(path.clone()),
            in_force: in_window(a, now),
            ends: ends_of(a, Some(path)),
            note: a.reason.clone(),
            granted_by: a.granted_by.clone(),
        });
    }
    let grace = facts.grace_until.filter(|g| *g > now);
    let excluded = |app: i64| {
        facts
            .exclusions
            .iter()
            .find(|x| x.application_id == app && x.in_force(now))
            .cloned()
    };
    for x in &facts.exclusions {
        if x.in_force(now) {
            reasons.entry(x.application_id).or_default();
        }
    }
    reasons
        .into_iter()
        .map(|(app, reasons)| {
            let live: Vec<&Reason> = reasons.iter().filter(|r| r.in_force).collect();
            let exclusion = excluded(app);
            let state = if exclusion.is_some() {
                State::Excluded
            } else if live.is_empty() {
                if reasons
                    .iter()
                    .any(|r| r.valid_from.is_some_and(|f| f > now))
                {
                    State::Scheduled
                } else {
                    State::Expired
                }
            } else if facts.active {
                State::Granted
            } else if grace.is_some() {
                State::Grace
            } else if facts.leaver_pending {
                State::LeaverPending
            } else {
                State::Suspended
            };
            let granted = matches!(state, State::Granted | State::Grace | State::LeaverPending);
            let roles: BTreeSet<String> = if granted {
                live.iter()
                    .filter_map(|r| r.role.clone())
                    .filter(|r| !r.trim().is_empty())
                    .collect()
            } else {
                BTreeSet::new()
            };
            let window_end = if live.iter().any(|r| r.valid_until.is_none()) {
                None
            } else {
                live.iter().filter_map(|r| r.valid_until).max()
            };
            let until = match (state, grace) {
                (State::Grace, Some(g)) => Some(window_end.map_or(g, |w| w.min(g))),
                _ => window_end,
            };
            let since = live.iter().filter_map(|r| r.valid_from).min();
            (
                app,
                Entitlement {
                    application_id: app,
                    granted,
                    state,
                    roles: roles.into_iter().collect(),
                    until,
                    since,
                    reasons,
                    exclusion,
                },
            )
        })
        .collect()
}

/// The applications the user is entitled to now.
pub fn granted_apps(facts: &Facts, now: DateTime<Utc>) -> BTreeSet<i64> {
    entitlements(facts, now)
        .into_values()
        .filter(|e| e.granted)
        .map(|e| e.application_id)
        .collect()
}

/// What the rules that match a user grant (birthright access): by
/// (application, `rule:<id>`) the role, and the groups (key,
/// `rule:<id>`). A `joiner` or `mover` rule grants for as long as its
/// filter matches the user's current document, whatever event brought the
/// user there; `leaver` rules grant nothing (their playbooks run once).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuleGrants {
    /// (application, source) -> role.
    pub apps: BTreeMap<(i64, String), Option<String>>,
    /// (group key, source).
    pub groups: BTreeSet<(i64, String)>,
    /// The rules that match (joiner and mover rules only).
    pub rules: BTreeSet<i64>,
}

/// The rule grants of a document (see [`RuleGrants`]).
pub fn rule_grants(
    document: &Value,
    rules: &[CompiledRule],
    playbooks: &HashMap<i64, Vec<Action>>,
    groups: &HashMap<String, i64>,
) -> RuleGrants {
    let mut out = RuleGrants::default();
    for r in rules {
        let f = &r.rule.fields;
        if !f.enabled || !matches!(f.event.as_str(), "joiner" | "mover") {
            continue;
        }
        if !r.filter.matches(document) {
            continue;
        }
        out.rules.insert(r.rule.id);
        let source = format!("rule:{}", r.rule.id);
        for pb in &f.playbooks {
            for action in playbooks.get(pb).map(Vec::as_slice).unwrap_or(&[]) {
                match action {
                    Action::AssignApplication {
                        application_id: Some(app),
                        role,
                        ..
                    } => {
                        out.apps
                            .entry((*app, source.clone()))
                            .or_insert_with(|| role.clone());
                    }
                    Action::AddToGroup {
                        group_id: Some(g), ..
                    } => {
                        if let Some(pk) = groups.get(g) {
                            out.groups.insert((*pk, source.clone()));
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    out
}

fn time(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| Value::String(t.to_rfc3339()))
}

/// A reason as the API shows it.
pub fn reason_json(r: &Reason) -> Value {
    json!({
        "kind": r.kind,
        "source": r.source,
        "assignmentId": r.assignment_id,
        "role": r.role,
        "validFrom": time(r.valid_from),
        "validUntil": time(r.valid_until),
        "inForce": r.in_force,
        "group": r.group.as_ref().map(|g| json!({
            "id": g.id, "name": g.name, "path": g.path, "addedBy": g.added_by,
        })),
        "ends": r.ends,
        "reason": r.note,
        "grantedBy": r.granted_by,
    })
}

/// An entitlement as the API shows it.
pub fn entitlement_json(e: &Entitlement, grace_until: Option<DateTime<Utc>>) -> Value {
    json!({
        "applicationId": e.application_id,
        "granted": e.granted,
        "entitlement": e.state.as_str(),
        "roles": e.roles,
        "since": time(e.since),
        "until": time(e.until),
        "graceUntil": if e.state == State::Grace { time(grace_until) } else { Value::Null },
        "reasons": e.reasons.iter().map(reason_json).collect::<Vec<_>>(),
        "exclusion": e.exclusion.as_ref().map(exclusion_json),
    })
}

/// An exclusion as the API shows it.
pub fn exclusion_json(x: &Exclusion) -> Value {
    json!({
        "id": x.id,
        "applicationId": x.application_id,
        "reason": x.reason,
        "source": x.source,
        "createdBy": x.created_by,
        "validUntil": time(x.valid_until),
        "created": x.created.to_rfc3339(),
    })
}

#[cfg(test)]
mod tests;
