//! Lifecycle automation storage: playbooks, rules, playbook runs, the
//! per-user due marks and last-seen state of the rule evaluator, rule-granted
//! group memberships, lifecycle events, and temporary access (expiry and
//! start of assignments, extensions). [`LifecycleStore`] for [`Store`].
//!
//! Level-triggered like provisioning: every User write marks the user due
//! in its own transaction ([`mark_user_due`]); the evaluator reads the
//! user's current state and clears the mark in the transaction that applies
//! the outcome, only if no write marked it again meanwhile
//! (`generation`). A crash between the two leaves the mark: the user is
//! evaluated again.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::{BigInt, Timestamp};
use scim_core::ErrorKind;
use serde_json::Value;

use super::audit::{self, NewAuditEntry};
use super::provisioning::{mark_due, member_pks};
use super::stmt::{Stmt, Val};
use super::{Store, TenantId, from_db_time, now, to_db_time};
use crate::db::AnyConnection;
use crate::db::schema::{
    applications, assignment_extensions, assignments, change_log, lifecycle_due, lifecycle_events,
    lifecycle_group_grants, lifecycle_state, playbook_runs, playbooks, provisioning_state,
    resources, rules,
};
use crate::error::{Error, Result};

/// A playbook's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct PlaybookFields {
    /// Unique in the tenant.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// The actions (a JSON array, checked by the API).
    pub actions: Value,
}

/// A stored playbook.
#[derive(Debug, Clone, PartialEq)]
pub struct Playbook {
    /// Its id.
    pub id: i64,
    /// Its settings.
    pub fields: PlaybookFields,
    /// Created at.
    pub created: DateTime<Utc>,
    /// Last changed at.
    pub updated: DateTime<Utc>,
}

/// A rule's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleFields {
    /// Unique in the tenant.
    pub name: String,
    /// `joiner`, `mover` or `leaver`.
    pub event: String,
    /// A SCIM filter over the user (checked by the API).
    pub filter: String,
    /// The playbooks it applies.
    pub playbooks: Vec<i64>,
    /// Whether it is evaluated.
    pub enabled: bool,
    /// Leaver rules: revoke the user's access this many seconds after the
    /// leaver event instead of at once.
    pub revoke_after_seconds: Option<i64>,
}

/// A stored rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Its id.
    pub id: i64,
    /// Its settings.
    pub fields: RuleFields,
    /// Created at.
    pub created: DateTime<Utc>,
    /// Last changed at.
    pub updated: DateTime<Utc>,
}

/// One run of a playbook.
#[derive(Debug, Clone, PartialEq)]
pub struct PlaybookRun {
    /// Its id.
    pub id: i64,
    /// The playbook.
    pub playbook_id: i64,
    /// `manual` or `rule:<id>`.
    pub source: String,
    /// The change-log entry that caused it (rule runs).
    pub cause_seq: Option<i64>,
    /// The token that ran it (manual runs).
    pub actor: Option<i64>,
    /// Per-user, per-action results (JSON array).
    pub results: Value,
    /// When.
    pub at: DateTime<Utc>,
}

/// A lifecycle event: what the evaluator did for a user.
#[derive(Debug, Clone, PartialEq)]
pub struct LifecycleEvent {
    /// Its id.
    pub id: i64,
    /// The user's SCIM id.
    pub resource_id: String,
    /// `joiner`, `mover`, `leaver`, `expired`, `started`, `extended`.
    pub event: String,
    /// The change-log entry that caused it.
    pub cause_seq: Option<i64>,
    /// What happened (JSON).
    pub detail: Value,
    /// When.
    pub at: DateTime<Utc>,
}

/// A user marked due for evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueUser {
    /// The tenant.
    pub tenant: TenantId,
    /// The user's SCIM id.
    pub resource_id: String,
    /// The mark's generation when read.
    pub generation: i64,
}

/// One assignment of a user, as the evaluator and the access view see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserAssignment {
    /// The assignment id.
    pub id: i64,
    /// The application.
    pub application_id: i64,
    /// `manual`, `rule:<id>`, `playbook:<id>`.
    pub source: String,
    /// The application-side role, if any.
    pub role: Option<String>,
    /// Start.
    pub valid_from: Option<DateTime<Utc>>,
    /// End.
    pub valid_until: Option<DateTime<Utc>>,
    /// Why.
    pub reason: Option<String>,
    /// Who granted it.
    pub granted_by: Option<String>,
    /// The group it was assigned through (SCIM id), if any.
    pub via_group: Option<String>,
}

/// What the evaluator needs to know of a user.
#[derive(Debug, Clone, PartialEq)]
pub struct UserFacts {
    /// The user's key, if the user exists.
    pub pk: Option<i64>,
    /// The current document, if the user exists.
    pub document: Option<Value>,
    /// Active and held rules when last evaluated (None: never).
    pub previous: Option<(bool, Vec<i64>)>,
    /// The user's own assignments (not through groups).
    pub assignments: Vec<UserAssignment>,
    /// Group memberships rules granted: (group key, source).
    pub group_grants: Vec<(i64, String)>,
    /// The latest change-log entry of the user.
    pub cause_seq: Option<i64>,
    /// What the effective-access model reads of the user
    /// ([`crate::access`]); default when the user does not exist.
    pub access: crate::access::Facts,
}

/// An assignment to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The application.
    pub application_id: i64,
    /// `rule:<id>`, `playbook:<id>`.
    pub source: String,
    /// The application-side role.
    pub role: Option<String>,
    /// Why.
    pub reason: Option<String>,
    /// End of the access.
    pub valid_until: Option<DateTime<Utc>>,
}

/// What applying an evaluation writes, in one transaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// Assignments to create (an existing one with the same application
    /// and source is left as it is).
    pub grants: Vec<Grant>,
    /// Assignment ids to delete.
    pub revoke: Vec<i64>,
    /// Assignment ids whose application-side role becomes this (the
    /// playbook of a rule that holds, or of a manual run, now names
    /// another role for the application).
    pub roles: Vec<(i64, Option<String>)>,
    /// Assignment ids whose end moves to this time.
    pub expire_at: Vec<(i64, DateTime<Utc>)>,
    /// A leaver's grace end, remembered with the state (a leaver rule's
    /// `revokeAfterSeconds`): access keeps working until then.
    pub grace_until: Option<DateTime<Utc>>,
    /// Exclusions to record (an administrator's `removeAccess` run against
    /// access a rule or a group grants): (application, reason).
    pub exclude: Vec<(i64, String)>,
    /// Mark the user's provisioning pairs due (the model's answer changes
    /// with the remembered state: a leaver's grace was decided).
    pub mark: bool,
    /// Rule group grants to record: (group key, source).
    pub group_grants_add: Vec<(i64, String)>,
    /// Rule group grants to forget.
    pub group_grants_remove: Vec<(i64, String)>,
    /// The state to remember (None: forget the user).
    pub state: Option<(bool, Vec<i64>)>,
    /// Runs to record: (playbook, source, results).
    pub runs: Vec<(i64, String, Value)>,
    /// The event to record: (event, detail).
    pub event: Option<(String, Value)>,
}

/// Groups as the effective-access model reads them when a user would join
/// them: the membership edges upwards from them, the groups, and their
/// assignments.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupClosure {
    /// (member, group) edges upwards from the groups.
    pub edges: Vec<(i64, i64)>,
    /// The groups (and their parents).
    pub groups: Vec<crate::access::GroupInfo>,
    /// Their assignments: (group key, assignment).
    pub assignments: Vec<(i64, UserAssignment)>,
}

/// Lifecycle storage.
pub trait LifecycleStore {
    /// The groups `pks`, their nested parents and their assignments.
    fn group_closure(&self, tenant: TenantId, pks: &[i64]) -> Result<GroupClosure>;
    /// The tenant's exclusions (of one user and/or one application), each
    /// with the user's SCIM id and userName.
    fn list_exclusions(
        &self,
        tenant: TenantId,
        user: Option<&str>,
        application: Option<i64>,
    ) -> Result<Vec<(String, Option<String>, crate::access::Exclusion)>>;
    /// Excludes a user from an application (409 when an exclusion of the
    /// pair exists), marking the user's pairs due; audited.
    fn create_exclusion(
        &self,
        tenant: TenantId,
        user: &str,
        application_id: i64,
        reason: Option<&str>,
        valid_until: Option<DateTime<Utc>>,
    ) -> Result<crate::access::Exclusion>;
    /// Lifts an exclusion (404 when there is none); audited.
    fn delete_exclusion(&self, tenant: TenantId, id: i64) -> Result<()>;
    /// Creates a playbook; a name taken is a 409.
    fn create_playbook(&self, tenant: TenantId, fields: &PlaybookFields) -> Result<Playbook>;
    /// The tenant's playbooks.
    fn list_playbooks(&self, tenant: TenantId) -> Result<Vec<Playbook>>;
    /// One playbook.
    fn get_playbook(&self, tenant: TenantId, id: i64) -> Result<Option<Playbook>>;
    /// Replaces a playbook's settings.
    fn update_playbook(
        &self,
        tenant: TenantId,
        id: i64,
        fields: &PlaybookFields,
    ) -> Result<Playbook>;
    /// Deletes a playbook (409 while a rule uses it).
    fn delete_playbook(&self, tenant: TenantId, id: i64) -> Result<()>;

    /// Creates a rule and marks every user of the tenant due.
    fn create_rule(&self, tenant: TenantId, fields: &RuleFields) -> Result<Rule>;
    /// The tenant's rules.
    fn list_rules(&self, tenant: TenantId) -> Result<Vec<Rule>>;
    /// One rule.
    fn get_rule(&self, tenant: TenantId, id: i64) -> Result<Option<Rule>>;
    /// Replaces a rule's settings and marks every user of the tenant due.
    fn update_rule(&self, tenant: TenantId, id: i64, fields: &RuleFields) -> Result<Rule>;
    /// Deletes a rule and marks every user of the tenant due (what only it
    /// granted is then revoked).
    fn delete_rule(&self, tenant: TenantId, id: i64) -> Result<()>;

    /// Records a run.
    fn insert_run(
        &self,
        tenant: TenantId,
        playbook_id: i64,
        source: &str,
        actor: Option<i64>,
        results: &Value,
    ) -> Result<PlaybookRun>;
    /// The runs of a playbook, newest first.
    fn list_playbook_runs(
        &self,
        tenant: TenantId,
        playbook_id: i64,
        limit: i64,
    ) -> Result<Vec<PlaybookRun>>;
    /// One run.
    fn get_playbook_run(&self, tenant: TenantId, id: i64) -> Result<Option<PlaybookRun>>;
    /// The lifecycle events of a user, newest first.
    fn user_events(
        &self,
        tenant: TenantId,
        resource_id: &str,
        limit: i64,
    ) -> Result<Vec<LifecycleEvent>>;

    /// Up to `limit` users due for evaluation, oldest mark first.
    fn due_users(&self, limit: i64) -> Result<Vec<DueUser>>;
    /// Reads what the evaluator needs of a user.
    fn user_facts(&self, tenant: TenantId, resource_id: &str) -> Result<UserFacts>;
    /// In one transaction: reads the facts, asks `decide` for the outcome,
    /// writes it (marking provisioning pairs due), and clears the due mark
    /// if its generation is still `due.generation`.
    fn evaluate_user(
        &self,
        due: &DueUser,
        decide: &mut dyn FnMut(&UserFacts) -> Result<Outcome>,
    ) -> Result<Outcome>;
    /// Applies an outcome for a user now (manual playbook runs), in one
    /// transaction. Returns the ids of assignments created.
    fn apply_outcome(&self, tenant: TenantId, resource_id: &str, outcome: &Outcome) -> Result<()>;

    /// Deletes assignments whose end has passed (each with its pairs marked
    /// due and an `expired` event, one transaction each), and marks due the
    /// pairs of assignments whose start has passed. Returns (expired,
    /// started).
    fn run_schedule(&self, limit: i64) -> Result<(usize, usize)>;
    /// Moves an assignment's end, recording the extension.
    fn extend_assignment(
        &self,
        tenant: TenantId,
        id: i64,
        until: Option<DateTime<Utc>>,
        reason: Option<&str>,
        by: Option<&str>,
    ) -> Result<Value>;
    /// The extensions of an assignment.
    fn assignment_extensions(&self, tenant: TenantId, id: i64) -> Result<Vec<Value>>;

    /// Every assignment (direct or through a group) of users, with the
    /// pair's status: rows (user id, user name, assignment, pair status,
    /// remote id) for one user or one application.
    fn access_rows(
        &self,
        tenant: TenantId,
        user: Option<&str>,
        application: Option<i64>,
    ) -> Result<Vec<AccessRow>>;
    /// The users of the tenant (id, document), in key order after `after`.
    fn users_page(
        &self,
        tenant: TenantId,
        after: i64,
        limit: i64,
    ) -> Result<Vec<(i64, String, Value)>>;
    /// Users with an assignment in force (direct or through a group) per
    /// application: (application, count).
    fn assigned_counts(&self, tenant: TenantId) -> Result<Vec<(i64, i64)>>;
    /// Resolves a group by SCIM id or displayName: (key, id).
    fn find_group(&self, tenant: TenantId, name_or_id: &str) -> Result<Option<(i64, String)>>;
    /// The SCIM id of the resource with key `pk` in the tenant.
    fn resource_id_of(&self, tenant: TenantId, pk: i64) -> Result<Option<String>>;
}

/// One line of the access view: a user's entitlement to one application
/// (the effective-access model) and the downstream pair.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessRow {
    /// The user's SCIM id.
    pub user_id: String,
    /// The user's userName.
    pub user_name: Option<String>,
    /// The application.
    pub application_id: i64,
    /// Its name.
    pub application_name: String,
    /// What the model says (None: no reason names the application; only
    /// a provisioning pair remains).
    pub entitlement: Option<crate::access::Entitlement>,
    /// The user's leaver grace end, if any.
    pub grace_until: Option<DateTime<Utc>>,
    /// The pair's status, if a pair exists.
    pub status: Option<String>,
    /// The pair's last error.
    pub last_error: Option<String>,
    /// The account's id in the application.
    pub remote_id: Option<String>,
    /// Whether the engine has yet to look at the pair.
    pub due: bool,
}

/// Marks a user due for rule evaluation, inside the caller's write
/// transaction. Called for every User write (see `store::resources`).
pub(crate) fn mark_user_due(
    conn: &mut AnyConnection,
    tenant: TenantId,
    resource_id: &str,
) -> Result<()> {
    Stmt::new()
        .sql("INSERT INTO lifecycle_due (tenant_id, resource_id, generation, due_since) VALUES (")
        .vals(&[
            Val::Int(Some(tenant.0)),
            Val::Text(Some(resource_id)),
            Val::Int(Some(1)),
            Val::Time(Some(to_db_time(now()))),
        ])
        .sql(
            ") ON CONFLICT (tenant_id, resource_id) \
             DO UPDATE SET generation = lifecycle_due.generation + 1",
        )
        .run(conn)?;
    Ok(())
}

/// Marks every user of the tenant due (after a rule changed).
fn mark_all_users_due(conn: &mut AnyConnection, tenant: TenantId) -> Result<()> {
    let at = to_db_time(now());
    // One statement; only the placeholders differ between the backends.
    let sql = |at: &str, tenant: &str| {
        format!(
            "INSERT INTO lifecycle_due (tenant_id, resource_id, generation, due_since) \
             SELECT tenant_id, id, 1, {at} FROM resources WHERE tenant_id = {tenant} AND resource_type = 'User' \
             ON CONFLICT (tenant_id, resource_id) DO UPDATE SET generation = lifecycle_due.generation + 1"
        )
    };
    match conn {
        AnyConnection::Sqlite(c) => diesel::sql_query(sql("?", "?"))
            .bind::<Timestamp, _>(at)
            .bind::<BigInt, _>(tenant.0)
            .execute(c)?,
        AnyConnection::Pg(c) => diesel::sql_query(sql("$1", "$2"))
            .bind::<Timestamp, _>(at)
            .bind::<BigInt, _>(tenant.0)
            .execute(c)?,
    };
    Ok(())
}

fn taken(e: DieselError, what: &str, name: &str) -> Error {
    match e {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => scim_core::Error::new(
            ErrorKind::Uniqueness,
            format!("a {what} named '{name}' exists already"),
        )
        .into(),
        other => other.into(),
    }
}

fn parse_json(text: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| Error::internal(format!("stored JSON: {e}")))
}

type PlaybookTuple = (
    i64,
    String,
    Option<String>,
    String,
    NaiveDateTime,
    NaiveDateTime,
);

fn playbook_from(t: PlaybookTuple) -> Result<Playbook> {
    let (id, name, description, actions, created, updated) = t;
    Ok(Playbook {
        id,
        fields: PlaybookFields {
            name,
            description,
            actions: parse_json(&actions)?,
        },
        created: from_db_time(created),
        updated: from_db_time(updated),
    })
}

/// The tenant's playbooks in id order, or only playbook `id`.
fn select_playbooks(
    conn: &mut AnyConnection,
    tenant: TenantId,
    id: Option<i64>,
) -> Result<Vec<Playbook>> {
    let mut query = playbooks::table
        .filter(playbooks::tenant_id.eq(tenant.0))
        .select((
            playbooks::id,
            playbooks::name,
            playbooks::description,
            playbooks::actions,
            playbooks::created,
            playbooks::updated,
        ))
        .into_boxed();
    if let Some(id) = id {
        query = query.filter(playbooks::id.eq(id));
    }
    query
        .order(playbooks::id.asc())
        .load::<PlaybookTuple>(conn)?
        .into_iter()
        .map(playbook_from)
        .collect()
}

fn load_playbook(conn: &mut AnyConnection, tenant: TenantId, id: i64) -> Result<Option<Playbook>> {
    Ok(select_playbooks(conn, tenant, Some(id))?.pop())
}

type RuleTuple = (
    i64,
    String,
    String,
    String,
    String,
    bool,
    Option<i64>,
    NaiveDateTime,
    NaiveDateTime,
);

/// A rule's playbook ids as stored (a JSON array).
fn rule_playbooks_json(f: &RuleFields) -> Result<String> {
    serde_json::to_string(&f.playbooks).map_err(|e| Error::internal(format!("rule playbooks: {e}")))
}

fn rule_from(t: RuleTuple) -> Result<Rule> {
    let (id, name, event, filter, playbooks, enabled, revoke_after_seconds, created, updated) = t;
    let playbooks: Vec<i64> = serde_json::from_str(&playbooks)
        .map_err(|e| Error::internal(format!("stored rule playbooks: {e}")))?;
    Ok(Rule {
        id,
        fields: RuleFields {
            name,
            event,
            filter,
            playbooks,
            enabled,
            revoke_after_seconds,
        },
        created: from_db_time(created),
        updated: from_db_time(updated),
    })
}

/// The tenant's rules in id order, or only rule `id`.
fn select_rules(conn: &mut AnyConnection, tenant: TenantId, id: Option<i64>) -> Result<Vec<Rule>> {
    let mut query = rules::table
        .filter(rules::tenant_id.eq(tenant.0))
        .select((
            rules::id,
            rules::name,
            rules::event,
            rules::filter,
            rules::playbooks,
            rules::enabled,
            rules::revoke_after_seconds,
            rules::created,
            rules::updated,
        ))
        .into_boxed();
    if let Some(id) = id {
        query = query.filter(rules::id.eq(id));
    }
    query
        .order(rules::id.asc())
        .load::<RuleTuple>(conn)?
        .into_iter()
        .map(rule_from)
        .collect()
}

fn load_rule(conn: &mut AnyConnection, tenant: TenantId, id: i64) -> Result<Option<Rule>> {
    Ok(select_rules(conn, tenant, Some(id))?.pop())
}

fn check_playbooks_exist(conn: &mut AnyConnection, tenant: TenantId, ids: &[i64]) -> Result<()> {
    for id in ids {
        if load_playbook(conn, tenant, *id)?.is_none() {
            return Err(
                scim_core::Error::invalid_value(format!("no playbook with id {id}")).into(),
            );
        }
    }
    Ok(())
}

type RunTuple = (
    i64,
    i64,
    String,
    Option<i64>,
    Option<i64>,
    String,
    NaiveDateTime,
);

fn run_from(t: RunTuple) -> Result<PlaybookRun> {
    let (id, playbook_id, source, cause_seq, actor, results, at) = t;
    Ok(PlaybookRun {
        id,
        playbook_id,
        source,
        cause_seq,
        actor,
        results: parse_json(&results)?,
        at: from_db_time(at),
    })
}

macro_rules! run_columns {
    () => {
        (
            playbook_runs::id,
            playbook_runs::playbook_id,
            playbook_runs::source,
            playbook_runs::cause_seq,
            playbook_runs::actor,
            playbook_runs::results,
            playbook_runs::at,
        )
    };
}

/// A provisioning pair as the access view reads it: application, status,
/// last error, remote id, due.
type PairRow = (i64, String, Option<String>, Option<String>, bool);

fn user_pk(conn: &mut AnyConnection, tenant: TenantId, id: &str) -> Result<Option<(i64, String)>> {
    Ok(resources::table
        .filter(resources::tenant_id.eq(tenant.0))
        .filter(resources::id.eq(id))
        .filter(resources::resource_type.eq("User"))
        .select((resources::pk, resources::document))
        .first(conn)
        .optional()?)
}

fn user_not_found(id: &str) -> Error {
    scim_core::Error::not_found(format!("no user with id '{id}'")).into()
}

/// What the evaluator last saw of a user: active, and the rules held.
fn previous_state(
    conn: &mut AnyConnection,
    tenant: TenantId,
    resource_id: &str,
) -> Result<Option<(bool, Vec<i64>)>> {
    let previous: Option<(bool, String)> = lifecycle_state::table
        .filter(lifecycle_state::tenant_id.eq(tenant.0))
        .filter(lifecycle_state::resource_id.eq(resource_id))
        .select((lifecycle_state::active, lifecycle_state::held_rules))
        .first(conn)
        .optional()?;
    previous
        .map(|(active, held)| {
            serde_json::from_str::<Vec<i64>>(&held)
                .map(|h| (active, h))
                .map_err(|e| Error::internal(format!("stored held rules: {e}")))
        })
        .transpose()
}

/// The latest change-log entry of a resource.
fn latest_change(
    conn: &mut AnyConnection,
    tenant: TenantId,
    resource_id: &str,
) -> Result<Option<i64>> {
    Ok(change_log::table
        .filter(change_log::tenant_id.eq(tenant.0))
        .filter(change_log::resource_id.eq(resource_id))
        .select(diesel::dsl::max(change_log::seq))
        .first(conn)?)
}

fn read_facts(conn: &mut AnyConnection, tenant: TenantId, resource_id: &str) -> Result<UserFacts> {
    let user = user_pk(conn, tenant, resource_id)?;
    let previous = previous_state(conn, tenant, resource_id)?;
    let cause_seq = latest_change(conn, tenant, resource_id)?;
    let Some((pk, _)) = user else {
        return Ok(UserFacts {
            pk: None,
            document: None,
            previous,
            assignments: Vec::new(),
            group_grants: Vec::new(),
            cause_seq,
            access: crate::access::Facts::default(),
        });
    };
    let (access, document) =
        super::access::user_facts(conn, tenant, pk)?.ok_or_else(|| user_not_found(resource_id))?;
    Ok(UserFacts {
        pk: Some(pk),
        document: Some(document),
        previous,
        assignments: access.assignments.clone(),
        group_grants: access.group_grants.clone(),
        cause_seq,
        access,
    })
}

fn write_outcome(
    conn: &mut AnyConnection,
    tenant: TenantId,
    resource_id: &str,
    pk: Option<i64>,
    cause_seq: Option<i64>,
    outcome: &Outcome,
) -> Result<()> {
    let at = to_db_time(now());
    let mut touched = false;
    let mut created: Vec<(i64, &Grant)> = Vec::new();
    let mut removed: Vec<NewAuditEntry> = Vec::new();
    let mut excluded: Vec<crate::access::Exclusion> = Vec::new();
    if let Some(pk) = pk {
        for g in &outcome.grants {
            let exists: i64 = assignments::table
                .filter(assignments::application_id.eq(g.application_id))
                .filter(assignments::resource_pk.eq(pk))
                .filter(assignments::source.eq(&g.source))
                .count()
                .get_result(conn)?;
            if exists > 0 {
                continue;
            }
            let app_ok: i64 = applications::table
                .filter(applications::tenant_id.eq(tenant.0))
                .filter(applications::id.eq(g.application_id))
                .count()
                .get_result(conn)?;
            if app_ok == 0 {
                continue;
            }
            // The administrator who ran a playbook, else the rule or playbook.
            let granted_by = audit::granted_by(conn, tenant, &g.source)?;
            let (new_id, _) = super::assignments::insert(
                conn,
                tenant,
                &super::assignments::NewAssignment {
                    label: resource_id,
                    application_id: g.application_id,
                    resource_pk: pk,
                    resource_type: "User",
                    source: &g.source,
                    role: g.role.as_deref(),
                    valid_from: None,
                    valid_until: g.valid_until,
                    reason: g.reason.as_deref(),
                    granted_by: Some(granted_by.as_str()),
                },
            )?;
            created.push((new_id, g));
            touched = true;
        }
        for (id, until) in &outcome.expire_at {
            diesel::update(
                assignments::table
                    .filter(assignments::id.eq(id))
                    .filter(assignments::resource_pk.eq(pk)),
            )
            .set(assignments::valid_until.eq(Some(to_db_time(*until))))
            .execute(conn)?;
        }
        for (id, role) in &outcome.roles {
            // The role is sent downstream as the account's `roles`: the
            // pair is marked due below, in this transaction.
            let n = diesel::update(
                assignments::table
                    .filter(assignments::id.eq(id))
                    .filter(assignments::resource_pk.eq(pk)),
            )
            .set(assignments::role.eq(role.as_deref()))
            .execute(conn)?;
            touched |= n > 0;
        }
        if !outcome.revoke.is_empty() || outcome.mark {
            touched = true;
        }
        for (group, source) in &outcome.group_grants_add {
            let exists: i64 = lifecycle_group_grants::table
                .filter(lifecycle_group_grants::user_pk.eq(pk))
                .filter(lifecycle_group_grants::group_pk.eq(group))
                .filter(lifecycle_group_grants::source.eq(source))
                .count()
                .get_result(conn)?;
            if exists == 0 {
                diesel::insert_into(lifecycle_group_grants::table)
                    .values((
                        lifecycle_group_grants::tenant_id.eq(tenant.0),
                        lifecycle_group_grants::user_pk.eq(pk),
                        lifecycle_group_grants::group_pk.eq(group),
                        lifecycle_group_grants::source.eq(source),
                    ))
                    .execute(conn)?;
            }
        }
        for (group, source) in &outcome.group_grants_remove {
            diesel::delete(
                lifecycle_group_grants::table
                    .filter(lifecycle_group_grants::user_pk.eq(pk))
                    .filter(lifecycle_group_grants::group_pk.eq(group))
                    .filter(lifecycle_group_grants::source.eq(source)),
            )
            .execute(conn)?;
        }
        if touched {
            // Mark while the revoked rows still exist: their pairs remember
            // the application.
            mark_due(conn, tenant, &[pk])?;
        }
        for id in &outcome.revoke {
            let deleted = super::assignments::delete(conn, tenant, *id, lifecycle_actor())?;
            removed.extend(deleted.and_then(|d| d.entry));
        }
        for (app, reason) in &outcome.exclude {
            let actor = lifecycle_actor();
            let (x, new) = super::access::exclude(
                conn,
                tenant,
                &super::access::NewExclusion {
                    application_id: *app,
                    user_pk: pk,
                    reason: Some(reason),
                    source: "removeAccess",
                    created_by: Some(&actor),
                    valid_until: None,
                },
            )?;
            if new {
                excluded.push(x);
            }
        }
    }
    match &outcome.state {
        Some((active, held)) => {
            let held = serde_json::to_string(held)
                .map_err(|e| Error::internal(format!("held rules: {e}")))?;
            let grace = outcome.grace_until.map(to_db_time);
            let insert = diesel::insert_into(lifecycle_state::table)
                .values((
                    lifecycle_state::tenant_id.eq(tenant.0),
                    lifecycle_state::resource_id.eq(resource_id),
                    lifecycle_state::active.eq(*active),
                    lifecycle_state::held_rules.eq(&held),
                    lifecycle_state::updated.eq(at),
                    lifecycle_state::grace_until.eq(grace),
                ))
                .on_conflict((lifecycle_state::tenant_id, lifecycle_state::resource_id))
                .do_update()
                .set((
                    lifecycle_state::active.eq(*active),
                    lifecycle_state::held_rules.eq(&held),
                    lifecycle_state::updated.eq(at),
                    lifecycle_state::grace_until.eq(grace),
                ));
            match conn {
                AnyConnection::Sqlite(c) => insert.execute(c)?,
                AnyConnection::Pg(c) => insert.execute(c)?,
            };
        }
        None => {
            diesel::delete(
                lifecycle_state::table
                    .filter(lifecycle_state::tenant_id.eq(tenant.0))
                    .filter(lifecycle_state::resource_id.eq(resource_id)),
            )
            .execute(conn)?;
        }
    }
    for (playbook, source, results) in &outcome.runs {
        diesel::insert_into(playbook_runs::table)
            .values((
                playbook_runs::tenant_id.eq(tenant.0),
                playbook_runs::playbook_id.eq(playbook),
                playbook_runs::source.eq(source),
                playbook_runs::cause_seq.eq(cause_seq),
                playbook_runs::results.eq(results.to_string()),
                playbook_runs::at.eq(at),
            ))
            .execute(conn)?;
    }
    if let Some((event, detail)) = &outcome.event {
        insert_event(conn, tenant, resource_id, event, cause_seq, detail)?;
    }
    audit_outcome(conn, tenant, resource_id, outcome, &created, &removed)?;
    for x in &excluded {
        audit::append(
            conn,
            tenant,
            &NewAuditEntry::new(
                lifecycle_actor(),
                "exclusion.create",
                "Exclusion",
                x.id.to_string(),
            )
            .subject(resource_id)
            .after(Some(crate::access::exclusion_json(x))),
        )?;
    }
    Ok(())
}

/// The actor of lifecycle writes: the caller's (a manual run), else the
/// evaluator.
fn lifecycle_actor() -> String {
    let actor = audit::actor_of(None);
    if actor == "system" {
        "system:lifecycle".to_owned()
    } else {
        actor
    }
}

/// Records an outcome in the audit log, last in its transaction, with its
/// causal chain: the user's latest entry (the SCIM write) -> the lifecycle
/// event -> each rule that fired -> the playbook runs; assignments granted
/// and revoked are caused by the event.
fn audit_outcome(
    conn: &mut AnyConnection,
    tenant: TenantId,
    resource_id: &str,
    outcome: &Outcome,
    created: &[(i64, &Grant)],
    removed: &[NewAuditEntry],
) -> Result<()> {
    let actor = lifecycle_actor();
    let mut cause = audit::latest_change_about(conn, tenant, resource_id)?;
    if let Some((event, detail)) = &outcome.event {
        let entry = NewAuditEntry::new(&actor, format!("lifecycle.{event}"), "User", resource_id)
            .after(Some(detail.clone()))
            .subject(resource_id)
            .cause(cause);
        cause = Some(audit::append(conn, tenant, &entry)?);
    }
    let mut fired: Vec<&str> = outcome.runs.iter().map(|r| r.1.as_str()).collect();
    fired.dedup();
    for source in fired {
        let Some(rule) = source.strip_prefix("rule:") else {
            continue;
        };
        let entry = NewAuditEntry::new(&actor, "rule.fire", "Rule", rule)
            .after(Some(serde_json::json!({"userId": resource_id})))
            .subject(resource_id)
            .cause(cause);
        let fire = audit::append(conn, tenant, &entry)?;
        for (playbook, _, results) in outcome.runs.iter().filter(|r| r.1 == source) {
            let entry =
                NewAuditEntry::new(&actor, "playbook.run", "Playbook", playbook.to_string())
                    .after(Some(
                        serde_json::json!({"source": source, "results": results}),
                    ))
                    .subject(resource_id)
                    .cause(Some(fire));
            audit::append(conn, tenant, &entry)?;
        }
    }
    for (id, g) in created {
        let entry = NewAuditEntry::new(&actor, "assignment.create", "Assignment", id.to_string())
            .after(Some(serde_json::json!({
                "id": id, "applicationId": g.application_id, "resourceType": "User",
                "resourceId": resource_id, "source": g.source, "role": g.role,
                "validUntil": g.valid_until.map(rfc3339),
            })))
            .subject(resource_id)
            .cause(cause);
        audit::append(conn, tenant, &entry)?;
    }
    for entry in removed {
        audit::append(conn, tenant, &entry.clone().cause(cause))?;
    }
    for (id, role) in &outcome.roles {
        let entry = NewAuditEntry::new(&actor, "assignment.role", "Assignment", id.to_string())
            .after(Some(serde_json::json!({ "role": role })))
            .subject(resource_id)
            .cause(cause);
        audit::append(conn, tenant, &entry)?;
    }
    for (id, until) in &outcome.expire_at {
        let entry = NewAuditEntry::new(&actor, "assignment.schedule", "Assignment", id.to_string())
            .after(Some(serde_json::json!({
                "validUntil": rfc3339(*until)
            })))
            .subject(resource_id)
            .cause(cause);
        audit::append(conn, tenant, &entry)?;
    }
    Ok(())
}

fn insert_event(
    conn: &mut AnyConnection,
    tenant: TenantId,
    resource_id: &str,
    event: &str,
    cause_seq: Option<i64>,
    detail: &Value,
) -> Result<()> {
    diesel::insert_into(lifecycle_events::table)
        .values((
            lifecycle_events::tenant_id.eq(tenant.0),
            lifecycle_events::resource_id.eq(resource_id),
            lifecycle_events::event.eq(event),
            lifecycle_events::cause_seq.eq(cause_seq),
            lifecycle_events::detail.eq(detail.to_string()),
            lifecycle_events::at.eq(to_db_time(now())),
        ))
        .execute(conn)?;
    Ok(())
}

/// Records a management action on a playbook or rule (the actor comes from
/// the caller's [`audit::with_context`]).
fn audit_mgmt(
    conn: &mut AnyConnection,
    tenant: TenantId,
    action: &str,
    target_type: &str,
    id: i64,
    after: Option<Value>,
) -> Result<()> {
    let entry =
        NewAuditEntry::new(audit::actor_of(None), action, target_type, id.to_string()).after(after);
    audit::append(conn, tenant, &entry)?;
    Ok(())
}

fn playbook_json(p: &Playbook) -> Value {
    serde_json::json!({"name": p.fields.name, "description": p.fields.description,
                       "actions": p.fields.actions})
}

fn rule_json(r: &Rule) -> Value {
    serde_json::json!({"name": r.fields.name, "event": r.fields.event, "filter": r.fields.filter,
                       "playbooks": r.fields.playbooks, "enabled": r.fields.enabled,
                       "revokeAfterSeconds": r.fields.revoke_after_seconds})
}

fn not_found(what: &str, id: i64) -> Error {
    scim_core::Error::not_found(format!("no {what} with id {id}")).into()
}

/// The 404 of a write that touched no row.
fn found(rows: usize, what: &str, id: i64) -> Result<()> {
    if rows == 0 {
        Err(not_found(what, id))
    } else {
        Ok(())
    }
}

/// Reads back a playbook just written and records `action` on it.
fn saved_playbook(
    conn: &mut AnyConnection,
    tenant: TenantId,
    id: i64,
    action: &str,
) -> Result<Playbook> {
    let pb = load_playbook(conn, tenant, id)?.ok_or_else(|| not_found("playbook", id))?;
    audit_mgmt(
        conn,
        tenant,
        action,
        "Playbook",
        id,
        Some(playbook_json(&pb)),
    )?;
    Ok(pb)
}

/// Reads back a rule just written and records `action` on it.
fn saved_rule(conn: &mut AnyConnection, tenant: TenantId, id: i64, action: &str) -> Result<Rule> {
    let rule = load_rule(conn, tenant, id)?.ok_or_else(|| not_found("rule", id))?;
    audit_mgmt(conn, tenant, action, "Rule", id, Some(rule_json(&rule)))?;
    Ok(rule)
}

/// A time as the API writes it (RFC 3339, whole seconds, `Z`).
fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn time_json(t: Option<NaiveDateTime>) -> Value {
    t.map_or(Value::Null, |t| Value::String(rfc3339(from_db_time(t))))
}

impl LifecycleStore for Store {
    fn list_exclusions(
        &self,
        tenant: TenantId,
        user: Option<&str>,
        application: Option<i64>,
    ) -> Result<Vec<(String, Option<String>, crate::access::Exclusion)>> {
        let conn = &mut *self.conn()?;
        let pk = match user {
            Some(id) => Some(
                user_pk(conn, tenant, id)?
                    .ok_or_else(|| user_not_found(id))?
                    .0,
            ),
            None => None,
        };
        let rows = super::access::exclusions_with_users(conn, tenant, pk, application)?;
        let mut out = Vec::new();
        for (pk, x) in rows {
            let user: Option<(String, String)> = resources::table
                .filter(resources::pk.eq(pk))
                .select((resources::id, resources::document))
                .first(conn)
                .optional()?;
            if let Some((id, doc)) = user {
                let name = parse_json(&doc)?
                    .get("userName")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                out.push((id, name, x));
            }
        }
        Ok(out)
    }

    fn create_exclusion(
        &self,
        tenant: TenantId,
        user: &str,
        application_id: i64,
        reason: Option<&str>,
        valid_until: Option<DateTime<Utc>>,
    ) -> Result<crate::access::Exclusion> {
        self.write(|conn| -> Result<crate::access::Exclusion> {
            let (pk, _) = user_pk(conn, tenant, user)?.ok_or_else(|| {
                Error::from(scim_core::Error::invalid_value(format!(
                    "no user with id '{user}'"
                )))
            })?;
            let actor = audit::actor_of(None);
            let (x, created) = super::access::exclude(
                conn,
                tenant,
                &super::access::NewExclusion {
                    application_id,
                    user_pk: pk,
                    reason,
                    source: "admin",
                    created_by: Some(&actor),
                    valid_until,
                },
            )?;
            if !created {
                return Err(scim_core::Error::new(
                    ErrorKind::Uniqueness,
                    format!(
                        "user '{user}' is excluded from application {application_id} already (exclusion {})",
                        x.id
                    ),
                )
                .into());
            }
            audit::append(
                conn,
                tenant,
                &audit::management("exclusion.create", "Exclusion", x.id)
                    .subject(user)
                    .after(Some(crate::access::exclusion_json(&x))),
            )?;
            Ok(x)
        })
    }

    fn delete_exclusion(&self, tenant: TenantId, id: i64) -> Result<()> {
        self.write(|conn| -> Result<()> {
            let (pk, x) = super::access::lift(conn, tenant, id)?.ok_or_else(|| {
                Error::from(scim_core::Error::not_found(format!(
                    "no exclusion with id {id}"
                )))
            })?;
            let subject: Option<String> = resources::table
                .filter(resources::pk.eq(pk))
                .select(resources::id)
                .first(conn)
                .optional()?;
            let mut entry = audit::management("exclusion.delete", "Exclusion", id)
                .before(Some(crate::access::exclusion_json(&x)));
            if let Some(subject) = subject {
                entry = entry.subject(subject);
            }
            audit::append(conn, tenant, &entry)?;
            Ok(())
        })
    }

    fn group_closure(&self, tenant: TenantId, pks: &[i64]) -> Result<GroupClosure> {
        let conn = &mut *self.conn()?;
        super::access::group_closure(conn, tenant, pks)
    }

    fn create_playbook(&self, tenant: TenantId, f: &PlaybookFields) -> Result<Playbook> {
        let at = to_db_time(now());
        self.write(|conn| -> Result<Playbook> {
            let id: i64 = diesel::insert_into(playbooks::table)
                .values((
                    playbooks::tenant_id.eq(tenant.0),
                    playbooks::name.eq(&f.name),
                    playbooks::description.eq(f.description.as_deref()),
                    playbooks::actions.eq(f.actions.to_string()),
                    playbooks::created.eq(at),
                    playbooks::updated.eq(at),
                ))
                .returning(playbooks::id)
                .get_result(conn)
                .map_err(|e| taken(e, "playbook", &f.name))?;
            saved_playbook(conn, tenant, id, "playbook.create")
        })
    }

    fn list_playbooks(&self, tenant: TenantId) -> Result<Vec<Playbook>> {
        select_playbooks(&mut *self.conn()?, tenant, None)
    }

    fn get_playbook(&self, tenant: TenantId, id: i64) -> Result<Option<Playbook>> {
        load_playbook(&mut *self.conn()?, tenant, id)
    }

    fn update_playbook(&self, tenant: TenantId, id: i64, f: &PlaybookFields) -> Result<Playbook> {
        let at = to_db_time(now());
        self.write(|conn| -> Result<Playbook> {
            let n = diesel::update(
                playbooks::table
                    .filter(playbooks::tenant_id.eq(tenant.0))
                    .filter(playbooks::id.eq(id)),
            )
            .set((
                playbooks::name.eq(&f.name),
                playbooks::description.eq(f.description.as_deref()),
                playbooks::actions.eq(f.actions.to_string()),
                playbooks::updated.eq(at),
            ))
            .execute(conn)
            .map_err(|e| taken(e, "playbook", &f.name))?;
            found(n, "playbook", id)?;
            // Rules apply playbooks: their users must be looked at again.
            mark_all_users_due(conn, tenant)?;
            saved_playbook(conn, tenant, id, "playbook.update")
        })
    }

    fn delete_playbook(&self, tenant: TenantId, id: i64) -> Result<()> {
        self.write(|conn| -> Result<()> {
            if load_playbook(conn, tenant, id)?.is_none() {
                return Err(not_found("playbook", id));
            }
            for rule in select_rules(conn, tenant, None)? {
                if rule.fields.playbooks.contains(&id) {
                    return Err(scim_core::Error::new(
                        ErrorKind::Conflict,
                        format!(
                            "playbook {id} is used by rule {} ('{}'); remove it from the rule first",
                            rule.id, rule.fields.name
                        ),
                    )
                    .into());
                }
            }
            diesel::delete(playbooks::table.filter(playbooks::id.eq(id))).execute(conn)?;
            audit_mgmt(conn, tenant, "playbook.delete", "Playbook", id, None)
        })
    }

    fn create_rule(&self, tenant: TenantId, f: &RuleFields) -> Result<Rule> {
        let at = to_db_time(now());
        let playbooks_json = rule_playbooks_json(f)?;
        self.write(|conn| -> Result<Rule> {
            check_playbooks_exist(conn, tenant, &f.playbooks)?;
            let id: i64 = diesel::insert_into(rules::table)
                .values((
                    rules::tenant_id.eq(tenant.0),
                    rules::name.eq(&f.name),
                    rules::event.eq(&f.event),
                    rules::filter.eq(&f.filter),
                    rules::playbooks.eq(&playbooks_json),
                    rules::enabled.eq(f.enabled),
                    rules::revoke_after_seconds.eq(f.revoke_after_seconds),
                    rules::created.eq(at),
                    rules::updated.eq(at),
                ))
                .returning(rules::id)
                .get_result(conn)
                .map_err(|e| taken(e, "rule", &f.name))?;
            mark_all_users_due(conn, tenant)?;
            saved_rule(conn, tenant, id, "rule.create")
        })
    }

    fn list_rules(&self, tenant: TenantId) -> Result<Vec<Rule>> {
        select_rules(&mut *self.conn()?, tenant, None)
    }

    fn get_rule(&self, tenant: TenantId, id: i64) -> Result<Option<Rule>> {
        load_rule(&mut *self.conn()?, tenant, id)
    }

    fn update_rule(&self, tenant: TenantId, id: i64, f: &RuleFields) -> Result<Rule> {
        let at = to_db_time(now());
        let playbooks_json = rule_playbooks_json(f)?;
        self.write(|conn| -> Result<Rule> {
            check_playbooks_exist(conn, tenant, &f.playbooks)?;
            let n = diesel::update(
                rules::table
                    .filter(rules::tenant_id.eq(tenant.0))
                    .filter(rules::id.eq(id)),
            )
            .set((
                rules::name.eq(&f.name),
                rules::event.eq(&f.event),
                rules::filter.eq(&f.filter),
                rules::playbooks.eq(&playbooks_json),
                rules::enabled.eq(f.enabled),
                rules::revoke_after_seconds.eq(f.revoke_after_seconds),
                rules::updated.eq(at),
            ))
            .execute(conn)
            .map_err(|e| taken(e, "rule", &f.name))?;
            found(n, "rule", id)?;
            mark_all_users_due(conn, tenant)?;
            saved_rule(conn, tenant, id, "rule.update")
        })
    }

    fn delete_rule(&self, tenant: TenantId, id: i64) -> Result<()> {
        self.write(|conn| -> Result<()> {
            let n = diesel::delete(
                rules::table
                    .filter(rules::tenant_id.eq(tenant.0))
                    .filter(rules::id.eq(id)),
            )
            .execute(conn)?;
            found(n, "rule", id)?;
            mark_all_users_due(conn, tenant)?;
            audit_mgmt(conn, tenant, "rule.delete", "Rule", id, None)
        })
    }

    fn insert_run(
        &self,
        tenant: TenantId,
        playbook_id: i64,
        source: &str,
        actor: Option<i64>,
        results: &Value,
    ) -> Result<PlaybookRun> {
        let at = to_db_time(now());
        let id = self.write(|conn| -> Result<i64> {
            let id: i64 = diesel::insert_into(playbook_runs::table)
                .values((
                    playbook_runs::tenant_id.eq(tenant.0),
                    playbook_runs::playbook_id.eq(playbook_id),
                    playbook_runs::source.eq(source),
                    playbook_runs::actor.eq(actor),
                    playbook_runs::results.eq(results.to_string()),
                    playbook_runs::at.eq(at),
                ))
                .returning(playbook_runs::id)
                .get_result(conn)?;
            let entry = NewAuditEntry::new(
                audit::actor_of(actor),
                "playbook.run",
                "Playbook",
                playbook_id.to_string(),
            )
            .after(Some(
                serde_json::json!({"runId": id, "source": source, "results": results}),
            ));
            audit::append(conn, tenant, &entry)?;
            Ok(id)
        })?;
        Ok(PlaybookRun {
            id,
            playbook_id,
            source: source.to_owned(),
            cause_seq: None,
            actor,
            results: results.clone(),
            at: from_db_time(at),
        })
    }

    fn list_playbook_runs(
        &self,
        tenant: TenantId,
        playbook_id: i64,
        limit: i64,
    ) -> Result<Vec<PlaybookRun>> {
        let rows: Vec<RunTuple> = playbook_runs::table
            .filter(playbook_runs::tenant_id.eq(tenant.0))
            .filter(playbook_runs::playbook_id.eq(playbook_id))
            .order(playbook_runs::id.desc())
            .limit(limit)
            .select(run_columns!())
            .load(&mut *self.conn()?)?;
        rows.into_iter().map(run_from).collect()
    }

    fn get_playbook_run(&self, tenant: TenantId, id: i64) -> Result<Option<PlaybookRun>> {
        playbook_runs::table
            .filter(playbook_runs::tenant_id.eq(tenant.0))
            .filter(playbook_runs::id.eq(id))
            .select(run_columns!())
            .first::<RunTuple>(&mut *self.conn()?)
            .optional()?
            .map(run_from)
            .transpose()
    }

    fn user_events(
        &self,
        tenant: TenantId,
        resource_id: &str,
        limit: i64,
    ) -> Result<Vec<LifecycleEvent>> {
        let rows: Vec<(i64, String, String, Option<i64>, String, NaiveDateTime)> =
            lifecycle_events::table
                .filter(lifecycle_events::tenant_id.eq(tenant.0))
                .filter(lifecycle_events::resource_id.eq(resource_id))
                .order(lifecycle_events::id.desc())
                .limit(limit)
                .select((
                    lifecycle_events::id,
                    lifecycle_events::resource_id,
                    lifecycle_events::event,
                    lifecycle_events::cause_seq,
                    lifecycle_events::detail,
                    lifecycle_events::at,
                ))
                .load(&mut *self.conn()?)?;
        rows.into_iter()
            .map(|(id, resource_id, event, cause_seq, detail, at)| {
                Ok(LifecycleEvent {
                    id,
                    resource_id,
                    event,
                    cause_seq,
                    detail: parse_json(&detail)?,
                    at: from_db_time(at),
                })
            })
            .collect()
    }

    fn due_users(&self, limit: i64) -> Result<Vec<DueUser>> {
        let rows: Vec<(i64, String, i64)> = lifecycle_due::table
            .order(lifecycle_due::due_since.asc())
            .limit(limit)
            .select((
                lifecycle_due::tenant_id,
                lifecycle_due::resource_id,
                lifecycle_due::generation,
            ))
            .load(&mut *self.conn()?)?;
        Ok(rows
            .into_iter()
            .map(|(t, resource_id, generation)| DueUser {
                tenant: TenantId(t),
                resource_id,
                generation,
            })
            .collect())
    }

    fn user_facts(&self, tenant: TenantId, resource_id: &str) -> Result<UserFacts> {
        read_facts(&mut *self.conn()?, tenant, resource_id)
    }

    fn evaluate_user(
        &self,
        due: &DueUser,
        decide: &mut dyn FnMut(&UserFacts) -> Result<Outcome>,
    ) -> Result<Outcome> {
        self.write(|conn| -> Result<Outcome> {
            let facts = read_facts(conn, due.tenant, &due.resource_id)?;
            let outcome = decide(&facts)?;
            write_outcome(
                conn,
                due.tenant,
                &due.resource_id,
                facts.pk,
                facts.cause_seq,
                &outcome,
            )?;
            diesel::delete(
                lifecycle_due::table
                    .filter(lifecycle_due::tenant_id.eq(due.tenant.0))
                    .filter(lifecycle_due::resource_id.eq(&due.resource_id))
                    .filter(lifecycle_due::generation.eq(due.generation)),
            )
            .execute(conn)?;
            Ok(outcome)
        })
    }

    fn apply_outcome(&self, tenant: TenantId, resource_id: &str, outcome: &Outcome) -> Result<()> {
        self.write(|conn| -> Result<()> {
            let Some((pk, _)) = user_pk(conn, tenant, resource_id)? else {
                return Err(user_not_found(resource_id));
            };
            let cause = latest_change(conn, tenant, resource_id)?;
            // Keep the evaluator's memory: manual runs do not change it.
            let mut outcome = outcome.clone();
            outcome.state = previous_state(conn, tenant, resource_id)?;
            outcome.grace_until = lifecycle_state::table
                .filter(lifecycle_state::tenant_id.eq(tenant.0))
                .filter(lifecycle_state::resource_id.eq(resource_id))
                .select(lifecycle_state::grace_until)
                .first::<Option<NaiveDateTime>>(conn)
                .optional()?
                .flatten()
                .map(from_db_time);
            write_outcome(conn, tenant, resource_id, Some(pk), cause, &outcome)
        })
    }

    fn run_schedule(&self, limit: i64) -> Result<(usize, usize)> {
        let now_db = to_db_time(now());
        // Each pass reads on a pooled connection released at once: the
        // writes below may need the pool too (PostgreSQL).
        let expired: Vec<(i64, i64)> = assignments::table
            .filter(assignments::valid_until.le(now_db))
            .order(assignments::valid_until.asc())
            .limit(limit)
            .select((assignments::id, assignments::tenant_id))
            .load(&mut *self.conn()?)?;
        let mut n_expired = 0;
        for (id, tenant) in expired {
            let done = self.write(|conn| -> Result<bool> {
                // Still ended (an extension may have moved it meanwhile).
                let ended: i64 = assignments::table
                    .filter(assignments::id.eq(id))
                    .filter(assignments::valid_until.le(now_db))
                    .count()
                    .get_result(conn)?;
                if ended == 0 {
                    return Ok(false);
                }
                let Some(gone) = super::assignments::delete(
                    conn,
                    TenantId(tenant),
                    id,
                    "system:lifecycle".to_owned(),
                )?
                else {
                    return Ok(false);
                };
                let (pk, app, source, until) = (
                    gone.resource_pk,
                    gone.application_id,
                    gone.source,
                    gone.valid_until,
                );
                let deleted = gone.entry;
                let rid: Option<String> = resources::table
                    .filter(resources::pk.eq(pk))
                    .select(resources::id)
                    .first(conn)
                    .optional()?;
                if let Some(rid) = rid {
                    insert_event(
                        conn,
                        TenantId(tenant),
                        &rid,
                        "expired",
                        None,
                        &serde_json::json!({
                            "assignmentId": id, "applicationId": app,
                            "source": source, "validUntil": time_json(until),
                        }),
                    )?;
                }
                if let Some(mut entry) = deleted {
                    entry.action = "assignment.expire".into();
                    audit::append(conn, TenantId(tenant), &entry)?;
                }
                Ok(true)
            })?;
            if done {
                n_expired += 1;
            }
        }
        let started: Vec<(i64, i64, i64, String)> = assignments::table
            .filter(assignments::valid_from.le(now_db))
            .filter(assignments::started_at.is_null())
            .limit(limit)
            .select((
                assignments::id,
                assignments::tenant_id,
                assignments::resource_pk,
                assignments::resource_type,
            ))
            .load(&mut *self.conn()?)?;
        let mut n_started = 0;
        for (id, tenant, pk, resource_type) in started {
            self.write(|conn| -> Result<()> {
                super::assignments::mark_holder_due(conn, TenantId(tenant), pk, &resource_type)?;
                diesel::update(assignments::table.filter(assignments::id.eq(id)))
                    .set(assignments::started_at.eq(Some(now_db)))
                    .execute(conn)?;
                Ok(())
            })?;
            n_started += 1;
        }
        // Leavers whose grace period has ended: their access ends now
        // (the model stops granting it); the engine is told.
        let graced: Vec<(i64, String)> = lifecycle_state::table
            .filter(lifecycle_state::grace_until.le(now_db))
            .limit(limit)
            .select((lifecycle_state::tenant_id, lifecycle_state::resource_id))
            .load(&mut *self.conn()?)?;
        for (tenant, rid) in graced {
            self.write(|conn| -> Result<()> {
                let tenant = TenantId(tenant);
                let n = diesel::update(
                    lifecycle_state::table
                        .filter(lifecycle_state::tenant_id.eq(tenant.0))
                        .filter(lifecycle_state::resource_id.eq(&rid))
                        .filter(lifecycle_state::grace_until.le(now_db)),
                )
                .set(lifecycle_state::grace_until.eq(None::<NaiveDateTime>))
                .execute(conn)?;
                if n == 0 {
                    return Ok(());
                }
                if let Some((pk, _)) = user_pk(conn, tenant, &rid)? {
                    mark_due(conn, tenant, &[pk])?;
                    insert_event(
                        conn,
                        tenant,
                        &rid,
                        "graceEnded",
                        None,
                        &serde_json::json!({}),
                    )?;
                }
                Ok(())
            })?;
        }
        Ok((n_expired, n_started))
    }

    fn extend_assignment(
        &self,
        tenant: TenantId,
        id: i64,
        until: Option<DateTime<Utc>>,
        reason: Option<&str>,
        by: Option<&str>,
    ) -> Result<Value> {
        let at = to_db_time(now());
        self.write(|conn| -> Result<Value> {
            let row: Option<(i64, String, Option<NaiveDateTime>, Option<NaiveDateTime>)> =
                assignments::table
                    .filter(assignments::tenant_id.eq(tenant.0))
                    .filter(assignments::id.eq(id))
                    .select((
                        assignments::resource_pk,
                        assignments::resource_type,
                        assignments::valid_from,
                        assignments::valid_until,
                    ))
                    .first(conn)
                    .optional()?;
            let Some((pk, resource_type, from, old)) = row else {
                return Err(not_found("assignment", id));
            };
            if let (Some(from), Some(until)) = (from, until)
                && to_db_time(until) <= from
            {
                return Err(
                    scim_core::Error::invalid_value("validUntil must be after validFrom").into(),
                );
            }
            if let Some(until) = until
                && to_db_time(until) <= at
            {
                return Err(scim_core::Error::invalid_value(
                    "validUntil must be in the future; delete the assignment to end it now",
                )
                .into());
            }
            let new = until.map(to_db_time);
            diesel::update(assignments::table.filter(assignments::id.eq(id)))
                .set(assignments::valid_until.eq(new))
                .execute(conn)?;
            diesel::insert_into(assignment_extensions::table)
                .values((
                    assignment_extensions::tenant_id.eq(tenant.0),
                    assignment_extensions::assignment_id.eq(id),
                    assignment_extensions::old_until.eq(old),
                    assignment_extensions::new_until.eq(new),
                    assignment_extensions::reason.eq(reason),
                    assignment_extensions::extended_by.eq(by),
                    assignment_extensions::at.eq(at),
                ))
                .execute(conn)?;
            super::assignments::mark_holder_due(conn, tenant, pk, &resource_type)?;
            let entry = NewAuditEntry::new(
                audit::actor_of(None),
                "assignment.extend",
                "Assignment",
                id.to_string(),
            )
            .before(Some(serde_json::json!({"validUntil": time_json(old)})))
            .after(Some(
                serde_json::json!({"validUntil": time_json(new), "reason": reason}),
            ));
            audit::append(conn, tenant, &entry)?;
            Ok(serde_json::json!({
                "assignmentId": id,
                "oldValidUntil": time_json(old),
                "validUntil": time_json(new),
                "reason": reason,
                "extendedBy": by,
                "at": time_json(Some(at)),
            }))
        })
    }

    fn assignment_extensions(&self, tenant: TenantId, id: i64) -> Result<Vec<Value>> {
        type Ext = (
            Option<NaiveDateTime>,
            Option<NaiveDateTime>,
            Option<String>,
            Option<String>,
            NaiveDateTime,
        );
        let mut conn = self.conn()?;
        // Another tenant's assignment is not found, not an empty list.
        let exists: i64 = assignments::table
            .filter(assignments::tenant_id.eq(tenant.0))
            .filter(assignments::id.eq(id))
            .count()
            .get_result(&mut *conn)?;
        if exists == 0 {
            return Err(not_found("assignment", id));
        }
        let rows: Vec<Ext> = assignment_extensions::table
            .filter(assignment_extensions::tenant_id.eq(tenant.0))
            .filter(assignment_extensions::assignment_id.eq(id))
            .order(assignment_extensions::id.asc())
            .select((
                assignment_extensions::old_until,
                assignment_extensions::new_until,
                assignment_extensions::reason,
                assignment_extensions::extended_by,
                assignment_extensions::at,
            ))
            .load(&mut *conn)?;
        Ok(rows
            .into_iter()
            .map(|(old, new, reason, by, at)| {
                serde_json::json!({
                    "oldValidUntil": time_json(old), "validUntil": time_json(new),
                    "reason": reason, "extendedBy": by, "at": time_json(Some(at)),
                })
            })
            .collect())
    }

    fn access_rows(
        &self,
        tenant: TenantId,
        user: Option<&str>,
        application: Option<i64>,
    ) -> Result<Vec<AccessRow>> {
        let mut conn = self.conn()?;
        let conn = &mut *conn;
        // The users in scope: one, or everyone with an assignment or a pair
        // in the application (directly, or as a member of an assigned group).
        let mut users: BTreeSet<i64> = BTreeSet::new();
        if let Some(id) = user {
            let Some((pk, _)) = user_pk(conn, tenant, id)? else {
                return Err(user_not_found(id));
            };
            users.insert(pk);
        } else if let Some(app) = application {
            let direct: Vec<(i64, String)> = assignments::table
                .filter(assignments::tenant_id.eq(tenant.0))
                .filter(assignments::application_id.eq(app))
                .select((assignments::resource_pk, assignments::resource_type))
                .load(conn)?;
            for (pk, ty) in direct {
                if ty == "Group" {
                    users.extend(member_pks(conn, pk)?);
                } else {
                    users.insert(pk);
                }
            }
            users.extend(
                provisioning_state::table
                    .filter(provisioning_state::application_id.eq(app))
                    .filter(provisioning_state::resource_type.eq("User"))
                    .select(provisioning_state::resource_pk)
                    .load::<i64>(conn)?,
            );
        }
        let app_names: Vec<(i64, String)> = applications::table
            .filter(applications::tenant_id.eq(tenant.0))
            .select((applications::id, applications::name))
            .load(conn)?;
        let app_name = |id: i64| {
            app_names
                .iter()
                .find(|(a, _)| *a == id)
                .map(|(_, n)| n.clone())
                .unwrap_or_default()
        };
        let mut out = Vec::new();
        let now = super::now_utc();
        for pk in users {
            let Some((facts, doc)) = super::access::user_facts(conn, tenant, pk)? else {
                continue;
            };
            let user_id = doc
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let user_name = doc
                .get("userName")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let mut entitlements = crate::access::entitlements(&facts, now);
            let pairs: Vec<PairRow> = provisioning_state::table
                .filter(provisioning_state::resource_pk.eq(pk))
                .select((
                    provisioning_state::application_id,
                    provisioning_state::status,
                    provisioning_state::last_error,
                    provisioning_state::remote_id,
                    provisioning_state::due,
                ))
                .load(conn)?;
            let mut apps: BTreeSet<i64> = entitlements.keys().copied().collect();
            apps.extend(pairs.iter().map(|p| p.0));
            for app in apps {
                if application.is_some_and(|a| a != app) {
                    continue;
                }
                let pair = pairs.iter().find(|p| p.0 == app);
                out.push(AccessRow {
                    user_id: user_id.clone(),
                    user_name: user_name.clone(),
                    application_id: app,
                    application_name: app_name(app),
                    entitlement: entitlements.remove(&app),
                    grace_until: facts.grace_until,
                    status: pair.map(|p| p.1.clone()),
                    last_error: pair.and_then(|p| p.2.clone()),
                    remote_id: pair.and_then(|p| p.3.clone()),
                    due: pair.is_some_and(|p| p.4),
                });
            }
        }
        Ok(out)
    }

    fn users_page(
        &self,
        tenant: TenantId,
        after: i64,
        limit: i64,
    ) -> Result<Vec<(i64, String, Value)>> {
        let rows: Vec<(i64, String, String)> = resources::table
            .filter(resources::tenant_id.eq(tenant.0))
            .filter(resources::resource_type.eq("User"))
            .filter(resources::pk.gt(after))
            .order(resources::pk.asc())
            .limit(limit)
            .select((resources::pk, resources::id, resources::document))
            .load(&mut *self.conn()?)?;
        rows.into_iter()
            .map(|(pk, id, d)| Ok((pk, id, parse_json(&d)?)))
            .collect()
    }

    fn assigned_counts(&self, tenant: TenantId) -> Result<Vec<(i64, i64)>> {
        let rows: Vec<(i64, i64)> = provisioning_state::table
            .inner_join(applications::table)
            .filter(applications::tenant_id.eq(tenant.0))
            .filter(provisioning_state::resource_type.eq("User"))
            .filter(provisioning_state::status.eq("provisioned"))
            .group_by(provisioning_state::application_id)
            .select((
                provisioning_state::application_id,
                diesel::dsl::count_star(),
            ))
            .load(&mut *self.conn()?)?;
        Ok(rows)
    }

    fn find_group(&self, tenant: TenantId, name_or_id: &str) -> Result<Option<(i64, String)>> {
        let mut conn = self.conn()?;
        let by_id: Option<(i64, String)> = resources::table
            .filter(resources::tenant_id.eq(tenant.0))
            .filter(resources::resource_type.eq("Group"))
            .filter(resources::id.eq(name_or_id))
            .select((resources::pk, resources::id))
            .first(&mut *conn)
            .optional()?;
        if by_id.is_some() {
            return Ok(by_id);
        }
        Ok(resources::table
            .filter(resources::tenant_id.eq(tenant.0))
            .filter(resources::resource_type.eq("Group"))
            .filter(resources::display_name_folded.eq(super::fold(name_or_id)))
            .select((resources::pk, resources::id))
            .first(&mut *conn)
            .optional()?)
    }

    fn resource_id_of(&self, tenant: TenantId, pk: i64) -> Result<Option<String>> {
        Ok(resources::table
            .filter(resources::tenant_id.eq(tenant.0))
            .filter(resources::pk.eq(pk))
            .select(resources::id)
            .first(&mut *self.conn()?)
            .optional()?)
    }
}
