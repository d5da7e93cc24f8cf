//! Lifecycle automation: playbooks (bundles of actions), rules (a SCIM
//! filter over the user, an event, playbooks), the evaluator that turns
//! User changes into joiner / mover / leaver outcomes, the scheduler of
//! temporary access, manual playbook runs, and previews with a blast-radius
//! check.
//!
//! Level-triggered like provisioning: every User write marks the user due
//! in its transaction; [`Lifecycle::run_once`] evaluates due users from
//! their current state and clears each mark in the transaction that writes
//! the outcome (assignments with source `rule:<id>`, whose pairs the
//! provisioning engine then converges). The same pass deletes assignments
//! whose end has passed and marks due those whose start has come, so
//! temporary access ends after a restart too.

pub mod evaluate;
pub mod playbook;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use scim_core::filter::Filter;
use scim_core::patch::{self, Mode};
use scim_core::schema::{ResourceSchema, SchemaRegistry};
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::store::lifecycle::{DueUser, Grant, GroupClosure, Outcome, UserFacts};
use crate::store::{ChangeOp, Storage, TenantId, WriteContext, now_utc};
use evaluate::{CompiledRule, Context, Decision, apps_in_force, decide};
use playbook::{Action, parse_actions, set_message};

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LifecycleReport {
    /// Users evaluated.
    pub evaluated: usize,
    /// Assignments that ended.
    pub expired: usize,
    /// Assignments that started.
    pub started: usize,
}

/// The evaluator and scheduler.
#[derive(Clone)]
pub struct Lifecycle {
    storage: Arc<dyn Storage>,
    registry: Arc<SchemaRegistry>,
    batch: i64,
}

impl std::fmt::Debug for Lifecycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lifecycle")
            .field("batch", &self.batch)
            .finish_non_exhaustive()
    }
}

/// Per application: accounts that a change creates and deactivates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Impact {
    /// Application -> (users gaining access, users losing all access).
    pub per_application: BTreeMap<i64, (i64, i64)>,
    /// Users whose access changes.
    pub users: BTreeSet<String>,
}

impl Impact {
    fn add(&mut self, user: &str, before: &BTreeSet<i64>, after: &BTreeSet<i64>) {
        for app in after.difference(before) {
            self.per_application.entry(*app).or_default().0 += 1;
            self.users.insert(user.to_owned());
        }
        for app in before.difference(after) {
            self.per_application.entry(*app).or_default().1 += 1;
            self.users.insert(user.to_owned());
        }
    }

    /// Applications where more than `max_percent` of the provisioned
    /// accounts (and more than one) would be deactivated: (application,
    /// deactivated, accounts).
    pub fn over_threshold(
        &self,
        accounts: &[(i64, i64)],
        max_percent: f64,
    ) -> Vec<(i64, i64, i64)> {
        self.per_application
            .iter()
            .filter_map(|(app, (_, deact))| {
                let total = accounts
                    .iter()
                    .find(|(a, _)| a == app)
                    .map_or(0, |(_, n)| *n);
                let pct = if total == 0 {
                    100.0
                } else {
                    *deact as f64 * 100.0 / total as f64
                };
                (*deact > 1 && pct > max_percent).then_some((*app, *deact, total))
            })
            .collect()
    }

    /// The JSON form.
    pub fn to_json(&self, app_names: &HashMap<i64, String>) -> Value {
        let apps: Vec<Value> = self
            .per_application
            .iter()
            .map(|(app, (created, deact))| {
                json!({"applicationId": app, "application": app_names.get(app),
                       "accountsCreated": created, "accountsDeactivated": deact})
            })
            .collect();
        json!({"usersAffected": self.users.len(), "applications": apps})
    }
}

/// The applications a user is entitled to after an outcome and the group
/// changes that go with it (the effective-access model over the facts as
/// they would be). `added` are the groups the user joins (with their
/// nested parents and assignments in `closure`), `removed` those it leaves.
fn apps_after(
    facts: &UserFacts,
    outcome: &Outcome,
    added: &[i64],
    removed: &[i64],
    closure: &GroupClosure,
    now: DateTime<Utc>,
) -> BTreeSet<i64> {
    let Some(doc) = &facts.document else {
        return BTreeSet::new();
    };
    let mut after = facts.access.clone();
    let Some(user) = after.pk else {
        return BTreeSet::new();
    };
    after.active = crate::store::access::is_active(doc);
    after.grace_until = if after.active {
        None
    } else {
        outcome.grace_until
    };
    after.leaver_pending = false;
    for (i, (app, reason)) in outcome.exclude.iter().enumerate() {
        after.exclusions.push(crate::access::Exclusion {
            id: -1 - i as i64,
            application_id: *app,
            reason: Some(reason.clone()),
            source: "removeAccess".into(),
            created_by: None,
            valid_until: None,
            created: now,
        });
    }
    after
        .assignments
        .retain(|a| !outcome.revoke.contains(&a.id));
    for (id, until) in &outcome.expire_at {
        if let Some(a) = after.assignments.iter_mut().find(|a| a.id == *id) {
            a.valid_until = Some(*until);
        }
    }
    for (i, g) in outcome.grants.iter().enumerate() {
        after
            .assignments
            .push(crate::store::lifecycle::UserAssignment {
                id: -1 - i as i64,
                application_id: g.application_id,
                source: g.source.clone(),
                role: g.role.clone(),
                valid_from: None,
                valid_until: g.valid_until,
                reason: g.reason.clone(),
                granted_by: None,
                via_group: None,
            });
    }
    after
        .edges
        .retain(|(m, g)| !(*m == user && removed.contains(g)));
    for g in added {
        after.edges.push((user, *g));
    }
    after.edges.extend(closure.edges.iter().copied());
    after.groups.extend(closure.groups.iter().cloned());
    after
        .group_assignments
        .extend(closure.assignments.iter().cloned());
    after.group_assignments.sort_by_key(|(g, a)| (*g, a.id));
    after.group_assignments.dedup();
    crate::access::granted_apps(&after, now)
}

/// Options of a manual playbook run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The access granted ends then (else per action `validForSeconds`).
    pub valid_until: Option<DateTime<Utc>>,
    /// Why (kept on the assignments).
    pub reason: Option<String>,
    /// Compute only.
    pub dry_run: bool,
}

impl Lifecycle {
    /// An evaluator over `storage`; `registry` must be the API's.
    pub fn new(storage: Arc<dyn Storage>, registry: Arc<SchemaRegistry>) -> Self {
        Self {
            storage,
            registry,
            batch: 200,
        }
    }

    fn users(&self) -> Result<Arc<ResourceSchema>> {
        self.registry
            .resource_schema("User")
            .ok_or_else(|| Error::internal("no User resource type"))
    }

    fn groups_rs(&self) -> Result<Arc<ResourceSchema>> {
        self.registry
            .resource_schema("Group")
            .ok_or_else(|| Error::internal("no Group resource type"))
    }

    /// Parses a rule condition against the User schema (with extensions).
    pub fn parse_filter(&self, text: &str) -> Result<Filter> {
        let users = self.users()?;
        Ok(Filter::parse(text, &users)?)
    }

    /// The rules and playbooks of a tenant, with `replace` applied
    /// (previews: a rule id -> new rule, or removed when None).
    pub fn context(
        &self,
        tenant: TenantId,
        replace: Option<(Option<i64>, Option<crate::store::lifecycle::Rule>)>,
    ) -> Result<Context> {
        let mut rules = self.storage.list_rules(tenant)?;
        if let Some((id, new)) = replace {
            if let Some(id) = id {
                rules.retain(|r| r.id != id);
            }
            if let Some(new) = new {
                rules.push(new);
            }
        }
        let mut compiled = Vec::new();
        for rule in rules.into_iter().filter(|r| r.fields.enabled) {
            match self.parse_filter(&rule.fields.filter) {
                Ok(filter) => compiled.push(CompiledRule { rule, filter }),
                Err(e) => log::warn!("lifecycle: rule {} skipped: {e}", rule.id),
            }
        }
        let mut playbooks = HashMap::new();
        let mut groups = HashMap::new();
        for pb in self.storage.list_playbooks(tenant)? {
            let actions = parse_actions(&pb.fields.actions)?;
            for a in &actions {
                if let Action::AddToGroup {
                    group_id: Some(g), ..
                } = a
                    && let Some((pk, id)) = self.storage.find_group(tenant, g)?
                {
                    groups.insert(id, pk);
                }
            }
            playbooks.insert(pb.id, actions);
        }
        Ok(Context {
            rules: compiled,
            playbooks,
            groups,
            now: now_utc(),
        })
    }

    /// Sets attributes and group memberships (idempotent writes through the
    /// resource store; each marks what it changes).
    fn side_effects(
        &self,
        tenant: TenantId,
        user_id: &str,
        d: &Decision,
        actor: Option<i64>,
    ) -> Result<()> {
        let ctx = WriteContext {
            tenant_id: tenant,
            actor,
        };
        let users = self.users()?;
        for attrs in &d.set_attributes {
            let message = set_message(attrs);
            self.storage.update_resource(
                ctx,
                &users,
                user_id,
                None,
                ChangeOp::Patch,
                &mut |cur| {
                    Ok(
                        patch::apply_message(&cur.document, &message, &users, Mode::Strict)
                            .map_err(|e| Error::from(e.into_error()))?
                            .resource,
                    )
                },
            )?;
        }
        let groups = self.groups_rs()?;
        for g in &d.add_to_groups {
            self.storage
                .update_resource(ctx, &groups, g, None, ChangeOp::Patch, &mut |cur| {
                    let mut doc = cur.document.clone();
                    let members = doc
                        .as_object_mut()
                        .map(|o| o.entry("members").or_insert_with(|| json!([])));
                    if let Some(Value::Array(list)) = members
                        && !list.iter().any(|m| m["value"] == json!(user_id))
                    {
                        list.push(json!({"value": user_id, "type": "User"}));
                    }
                    Ok(doc)
                })?;
        }
        for pk in &d.remove_from_groups {
            let Some(gid) = self.storage.resource_id_of(tenant, *pk)? else {
                continue;
            };
            self.storage.update_resource(
                ctx,
                &groups,
                &gid,
                None,
                ChangeOp::Patch,
                &mut |cur| {
                    let mut doc = cur.document.clone();
                    if let Some(Value::Array(list)) = doc.get_mut("members") {
                        list.retain(|m| m["value"] != json!(user_id));
                    }
                    Ok(doc)
                },
            )?;
        }
        Ok(())
    }

    /// Evaluates one due user (blocking).
    pub fn evaluate(&self, due: &DueUser, ctx: &Context) -> Result<Decision> {
        let facts = self.storage.user_facts(due.tenant, &due.resource_id)?;
        let first = decide(&facts, ctx);
        if facts.document.is_some() {
            self.side_effects(due.tenant, &due.resource_id, &first, None)?;
        }
        let mut last = None;
        self.storage.evaluate_user(due, &mut |facts| {
            let d = decide(facts, ctx);
            let outcome = d.outcome.clone();
            last = Some(d);
            Ok(outcome)
        })?;
        Ok(last.unwrap_or(first))
    }

    /// One pass (blocking): the schedule, then a batch of due users.
    pub fn run_once(&self) -> Result<LifecycleReport> {
        let (expired, started) = self.storage.run_schedule(self.batch)?;
        let due = self.storage.due_users(self.batch)?;
        let mut contexts: HashMap<TenantId, Context> = HashMap::new();
        let mut evaluated = 0;
        for d in &due {
            let ctx = match contexts.entry(d.tenant) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(self.context(d.tenant, None)?)
                }
            };
            match self.evaluate(d, ctx) {
                Ok(_) => evaluated += 1,
                Err(e) => log::error!("lifecycle: user {}: {e}", d.resource_id),
            }
        }
        Ok(LifecycleReport {
            evaluated,
            expired,
            started,
        })
    }

    /// Passes until nothing is due (at most `max_passes`).
    pub async fn drain(&self, max_passes: usize) -> Result<LifecycleReport> {
        let mut total = LifecycleReport::default();
        for _ in 0..max_passes {
            let me = self.clone();
            let r = tokio::task::spawn_blocking(move || me.run_once())
                .await
                .map_err(|e| Error::internal(format!("lifecycle task: {e}")))??;
            total.evaluated += r.evaluated;
            total.expired += r.expired;
            total.started += r.started;
            if r == LifecycleReport::default() {
                break;
            }
        }
        Ok(total)
    }

    /// Runs passes every `interval` until the process ends.
    pub async fn run(self, interval: Duration) {
        loop {
            let me = self.clone();
            match tokio::task::spawn_blocking(move || me.run_once()).await {
                Ok(Ok(r)) if r != LifecycleReport::default() => log::info!(
                    "lifecycle: {} evaluated, {} expired, {} started",
                    r.evaluated,
                    r.expired,
                    r.started
                ),
                Ok(Ok(_)) => tokio::time::sleep(interval).await,
                Ok(Err(e)) => {
                    log::error!("lifecycle: {e}");
                    tokio::time::sleep(interval).await;
                }
                Err(e) => {
                    log::error!("lifecycle task: {e}");
                    tokio::time::sleep(interval).await;
                }
            }
        }
    }

    /// The applications a user is entitled to after a decision (the
    /// model over the facts with its outcome and group changes applied).
    fn entitled_after(
        &self,
        tenant: TenantId,
        facts: &UserFacts,
        d: &Decision,
        now: DateTime<Utc>,
    ) -> Result<BTreeSet<i64>> {
        let mut added = Vec::new();
        for id in &d.add_to_groups {
            if let Some((pk, _)) = self.storage.find_group(tenant, id)? {
                added.push(pk);
            }
        }
        let closure = if added.is_empty() {
            GroupClosure::default()
        } else {
            self.storage.group_closure(tenant, &added)?
        };
        Ok(apps_after(
            facts,
            &d.outcome,
            &added,
            &d.remove_from_groups,
            &closure,
            now,
        ))
    }

    /// Runs (or, with `dry_run`, previews) a playbook on users (blocking).
    /// Returns per-user, per-action results and the impact.
    pub fn run_playbook(
        &self,
        tenant: TenantId,
        playbook_id: i64,
        user_ids: &[String],
        options: &RunOptions,
        actor: Option<i64>,
    ) -> Result<(Vec<Value>, Impact)> {
        let pb = self
            .storage
            .get_playbook(tenant, playbook_id)?
            .ok_or_else(|| {
                Error::from(scim_core::Error::not_found(format!(
                    "no playbook with id {playbook_id}"
                )))
            })?;
        let actions = parse_actions(&pb.fields.actions)?;
        let source = format!("playbook:{playbook_id}");
        let now = now_utc();
        let mut results = Vec::new();
        let mut impact = Impact::default();
        for user_id in user_ids {
            let facts = self.storage.user_facts(tenant, user_id)?;
            if facts.document.is_none() {
                results.push(json!({"userId": user_id, "status": "failed",
                                    "detail": format!("no user with id '{user_id}'")}));
                continue;
            }
            let mut outcome = Outcome::default();
            let mut d = Decision::default();
            let mut per_action = Vec::new();
            for (i, action) in actions.iter().enumerate() {
                let (status, detail) = match action {
                    Action::AssignApplication {
                        application_id: Some(app),
                        role,
                        valid_for_seconds,
                        ..
                    } => {
                        let existing = facts
                            .assignments
                            .iter()
                            .find(|a| a.application_id == *app && a.source == source);
                        if let Some(a) = existing {
                            if a.role == *role {
                                ("unchanged", json!({"applicationId": app}))
                            } else {
                                // Run again with another role: the
                                // assignment (and the account) follow.
                                outcome.roles.push((a.id, role.clone()));
                                ("roleChanged", json!({"applicationId": app, "role": role}))
                            }
                        } else {
                            let until = options.valid_until.or_else(|| {
                                valid_for_seconds.map(|s| now + chrono::Duration::seconds(s))
                            });
                            outcome.grants.push(Grant {
                                application_id: *app,
                                source: source.clone(),
                                role: role.clone(),
                                reason: options
                                    .reason
                                    .clone()
                                    .or_else(|| Some(format!("playbook '{}'", pb.fields.name))),
                                valid_until: until,
                            });
                            (
                                "granted",
                                json!({"applicationId": app, "validUntil": until}),
                            )
                        }
                    }
                    Action::AddToGroup {
                        group_id: Some(g), ..
                    } => {
                        d.add_to_groups.push(g.clone());
                        ("added", json!({"groupId": g}))
                    }
                    Action::SetAttributes { attributes } => {
                        d.set_attributes.push(attributes.clone());
                        ("applied", json!({"attributes": attributes}))
                    }
                    Action::RemoveAccess { application_id, .. } => {
                        // The user's own grants go; access a rule or a group
                        // grants would come back, so it becomes an exclusion.
                        let entitled = crate::access::entitlements(&facts.access, now);
                        let ids: Vec<i64> = facts
                            .assignments
                            .iter()
                            .filter(|a| application_id.is_none_or(|x| x == a.application_id))
                            .filter(|a| !a.source.starts_with("rule:"))
                            .map(|a| a.id)
                            .collect();
                        let mut excluded = Vec::new();
                        for e in entitled.values() {
                            if application_id.is_some_and(|x| x != e.application_id) {
                                continue;
                            }
                            let derived =
                                e.reasons.iter().any(|r| matches!(r.kind, "rule" | "group"));
                            if derived && e.exclusion.is_none() {
                                excluded.push(e.application_id);
                                outcome.exclude.push((
                                    e.application_id,
                                    options.reason.clone().unwrap_or_else(|| {
                                        format!("removeAccess by playbook '{}'", pb.fields.name)
                                    }),
                                ));
                            }
                        }
                        outcome.revoke.extend(&ids);
                        ("revoked", json!({"assignments": ids, "excluded": excluded}))
                    }
                    other => (
                        "skipped",
                        json!({"reason": format!("unresolved {}", other.kind())}),
                    ),
                };
                per_action.push(
                    json!({"action": i, "type": action.kind(), "status": status, "detail": detail}),
                );
            }
            let before = apps_in_force(&facts, now);
            d.outcome = outcome.clone();
            let after = self.entitled_after(tenant, &facts, &d, now)?;
            impact.add(user_id, &before, &after);
            let mut status = "ok";
            if !options.dry_run {
                let applied = self
                    .side_effects(tenant, user_id, &d, actor)
                    .and_then(|()| self.storage.apply_outcome(tenant, user_id, &outcome));
                if let Err(e) = applied {
                    status = "failed";
                    per_action.push(json!({"error": e.to_string()}));
                }
            }
            results.push(json!({"userId": user_id, "status": status, "actions": per_action}));
        }
        Ok((results, impact))
    }

    /// What the rules (with `replace` applied) would do to every user of
    /// the tenant (blocking; at most `max_users` users are looked at).
    pub fn preview_rules(
        &self,
        tenant: TenantId,
        replace: Option<(Option<i64>, Option<crate::store::lifecycle::Rule>)>,
        max_users: usize,
    ) -> Result<(Impact, Vec<Value>, usize)> {
        let ctx = self.context(tenant, replace)?;
        let mut impact = Impact::default();
        let mut changes = Vec::new();
        let mut after = 0;
        let mut seen = 0;
        while seen < max_users {
            let page = self.storage.users_page(tenant, after, 500)?;
            if page.is_empty() {
                break;
            }
            for (pk, id, _) in &page {
                after = *pk;
                seen += 1;
                let facts = self.storage.user_facts(tenant, id)?;
                let d = decide(&facts, &ctx);
                let before = apps_in_force(&facts, ctx.now);
                let apps = self.entitled_after(tenant, &facts, &d, ctx.now)?;
                impact.add(id, &before, &apps);
                if (!d.outcome.grants.is_empty() || !d.outcome.revoke.is_empty() || before != apps)
                    && changes.len() < 100
                {
                    changes.push(decision_json(id, &facts, &d));
                }
            }
        }
        Ok((impact, changes, seen))
    }

    /// What a proposed change of a user would do (blocking): `proposed` is
    /// a PatchOp message (with `Operations`) or a whole new document.
    pub fn preview_user(
        &self,
        tenant: TenantId,
        user_id: &str,
        proposed: &Value,
    ) -> Result<(Impact, Value)> {
        let mut facts = self.storage.user_facts(tenant, user_id)?;
        let Some(current) = facts.document.clone() else {
            return Err(scim_core::Error::not_found(format!("no user with id '{user_id}'")).into());
        };
        let users = self.users()?;
        let new_doc = if proposed.get("Operations").is_some() {
            patch::apply_message(&current, proposed, &users, Mode::Dialects)
                .map_err(|e| Error::from(e.into_error()))?
                .resource
        } else if proposed.get("delete") == Some(&Value::Bool(true)) {
            Value::Null
        } else {
            let mut doc = scim_core::validate::validate_for_replace(proposed, &current, &users)?;
            if let (Some(o), Some(id)) = (doc.as_object_mut(), current.get("id")) {
                o.insert("id".into(), id.clone());
            }
            doc
        };
        let ctx = self.context(tenant, None)?;
        if new_doc.is_null() {
            facts.document = None;
        } else {
            facts.document = Some(new_doc);
        }
        let d = decide(&facts, &ctx);
        let before = apps_in_force(&facts, ctx.now);
        let after = self.entitled_after(tenant, &facts, &d, ctx.now)?;
        let mut impact = Impact::default();
        impact.add(user_id, &before, &after);
        Ok((impact, decision_json(user_id, &facts, &d)))
    }
}

fn decision_json(user_id: &str, facts: &UserFacts, d: &Decision) -> Value {
    let revoked: Vec<Value> = d
        .outcome
        .revoke
        .iter()
        .filter_map(|id| facts.assignments.iter().find(|a| a.id == *id))
        .map(|a| json!({"assignmentId": a.id, "applicationId": a.application_id, "source": a.source}))
        .collect();
    let granted: Vec<Value> = d
        .outcome
        .grants
        .iter()
        .map(|g| json!({"applicationId": g.application_id, "source": g.source, "role": g.role}))
        .collect();
    let roles_changed: Vec<Value> = d
        .outcome
        .roles
        .iter()
        .filter_map(|(id, role)| {
            let a = facts.assignments.iter().find(|a| a.id == *id)?;
            Some(
                json!({"assignmentId": id, "applicationId": a.application_id,
                        "from": a.role, "role": role}),
            )
        })
        .collect();
    let scheduled: Vec<Value> = d
        .outcome
        .expire_at
        .iter()
        .map(|(id, at)| json!({"assignmentId": id, "validUntil": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)}))
        .collect();
    json!({
        "userId": user_id,
        "event": d.event,
        "rulesFired": d.fired,
        "granted": granted,
        "rolesChanged": roles_changed,
        "revoked": revoked,
        "scheduled": scheduled,
        "setAttributes": d.set_attributes,
    })
}
