//! The audit log: an append-only record of every change, hash-chained per
//! tenant ([`AuditStore`] for [`Store`], and [`append`] for writers).
//!
//! Each entry says who (`actor`: `token:<id>` or `system:<component>`,
//! and `actor_name`, the token's name), what (`action`, `target_type`,
//! `target_id`, the JSON before and after), when (`at`) and why (`cause`:
//! the seq of the entry that led to it). Its `hash` covers all of that plus
//! the previous entry's hash: an HMAC with the audit key when the server
//! has one, else SHA-256 (see [`super::audit_chain`] for the kinds of hash,
//! checkpoints and what verification can and cannot detect). Altering,
//! deleting or reordering rows breaks the chain at the first bad seq,
//! which [`AuditStore::verify_audit`] names. The head of each chain (last
//! seq and hash) is kept in `audit_heads`.
//!
//! Appending happens inside the transaction of the change it records
//! ([`append`] takes the caller's connection). The head row is read
//! `FOR UPDATE` on PostgreSQL (SQLite's immediate transaction holds the
//! write lock already), which serialises appends per tenant. Call it last
//! in the transaction, after every other row lock is taken, so that the
//! head is held for as short a time as possible and never waited on while
//! holding it.

use std::cell::RefCell;

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use diesel::prelude::*;
use serde_json::{Value, json};

use super::audit_chain::{self, HeadRef, KEYED, UNKEYED, Verification, entry_hash};
use super::stmt::{Stmt, Val};
use super::{Store, TenantId, from_db_time, now, to_db_time};
use crate::db::AnyConnection;
use crate::db::schema::{applications, assignments, audit_heads, audit_log, resources, tokens};
use crate::error::{Error, Result};

/// The `prev_hash` of a chain's first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The most entries one query page returns.
pub const MAX_PAGE: i64 = 1000;

/// An entry to append.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewAuditEntry {
    /// Who: `token:<id>` or `system:<component>` (see [`actor_of`]).
    pub actor: String,
    /// What, as `area.verb`: `user.create`, `assignment.delete`,
    /// `provisioning.outcome`, `review.decide`, ...
    pub action: String,
    /// The kind of thing changed: `User`, `Group`, `Application`, ...
    pub target_type: String,
    /// Its id.
    pub target_id: String,
    /// The SCIM id of the user or group the entry concerns (the resource
    /// written, an assignment's assignee, a provisioned user), if any:
    /// what "everything about this user" queries by.
    pub subject: Option<String>,
    /// Its state before (None: it did not exist, or not recorded).
    pub before: Option<Value>,
    /// Its state after (None: it no longer exists).
    pub after: Option<Value>,
    /// The seq of the entry that caused this one, in the same tenant.
    pub cause: Option<i64>,
}

impl NewAuditEntry {
    /// An entry with no before, after or cause.
    pub fn new(
        actor: impl Into<String>,
        action: impl Into<String>,
        target_type: impl Into<String>,
        target_id: impl Into<String>,
    ) -> Self {
        Self {
            actor: actor.into(),
            action: action.into(),
            target_type: target_type.into(),
            target_id: target_id.into(),
            ..Self::default()
        }
    }

    /// With the state before.
    #[must_use]
    pub fn before(mut self, before: Option<Value>) -> Self {
        self.before = before;
        self
    }

    /// With the state after.
    #[must_use]
    pub fn after(mut self, after: Option<Value>) -> Self {
        self.after = after;
        self
    }

    /// With the user or group it concerns.
    #[must_use]
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// With the entry that caused it.
    #[must_use]
    pub fn cause(mut self, cause: Option<i64>) -> Self {
        self.cause = cause;
        self
    }
}

thread_local! {
    /// The actor and cause of the store calls made on this thread (see
    /// [`with_context`]).
    static CONTEXT: RefCell<Option<AuditContext>> = const { RefCell::new(None) };
}

/// Who is acting, and why, for store methods that take no actor of their
/// own (applications, assignments): set with [`with_context`] around the
/// store call, on the thread that makes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditContext {
    /// `token:<id>` or `system:<component>`.
    pub actor: String,
    /// The entry that caused what follows.
    pub cause: Option<i64>,
}

/// Runs `f` (blocking store calls) with `context` as the actor and cause of
/// the entries it appends; the previous context is restored afterwards.
pub fn with_context<T>(context: AuditContext, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<AuditContext>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            CONTEXT.with(|c| *c.borrow_mut() = previous);
        }
    }
    let previous = CONTEXT.with(|c| c.borrow_mut().replace(context));
    let _restore = Restore(previous);
    f()
}

/// [`with_context`] with an actor and no cause.
pub fn with_actor<T>(actor: impl Into<String>, f: impl FnOnce() -> T) -> T {
    with_context(
        AuditContext {
            actor: actor.into(),
            cause: None,
        },
        f,
    )
}

/// The actor name of a token (`token:<id>`); for no token, the actor of
/// the current [`with_context`], else `system`.
pub fn actor_of(token: Option<i64>) -> String {
    match token {
        Some(id) => format!("token:{id}"),
        None => CONTEXT
            .with(|c| c.borrow().as_ref().map(|c| c.actor.clone()))
            .unwrap_or_else(|| "system".to_owned()),
    }
}

/// The cause set by the current [`with_context`].
fn context_cause() -> Option<i64> {
    CONTEXT.with(|c| c.borrow().as_ref().and_then(|c| c.cause))
}

/// An entry as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// Its position in the tenant's chain (1, 2, ...).
    pub seq: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// Who.
    pub actor: String,
    /// The name of the token that acted (`token create --name`), when the
    /// actor is a token.
    pub actor_name: Option<String>,
    /// What.
    pub action: String,
    /// The kind of thing changed.
    pub target_type: String,
    /// Its id.
    pub target_id: String,
    /// The user or group it concerns.
    pub subject: Option<String>,
    /// The state before, as stored JSON text.
    pub before: Option<String>,
    /// The state after, as stored JSON text.
    pub after: Option<String>,
    /// The entry that caused it.
    pub cause: Option<i64>,
    /// The previous entry's hash.
    pub prev_hash: String,
    /// This entry's hash.
    pub hash: String,
    /// How the hash is made ([`audit_chain::LEGACY`], `UNKEYED`, `KEYED`).
    pub chain: i32,
}

impl AuditEntry {
    /// The entry as JSON (the API's and the export's form).
    pub fn to_json(&self) -> Value {
        let AuditEntry {
            seq,
            at,
            actor,
            actor_name,
            action,
            target_type,
            target_id,
            subject,
            before,
            after,
            cause,
            prev_hash,
            hash,
            chain,
        } = self;
        let parse = |text: &Option<String>| {
            text.as_deref()
                .map(|t| serde_json::from_str(t).unwrap_or_else(|_| Value::String(t.to_owned())))
        };
        json!({
            "seq": seq,
            "at": at.to_rfc3339_opts(SecondsFormat::Micros, true),
            "actor": actor,
            "actorName": actor_name,
            "action": action,
            "targetType": target_type,
            "targetId": target_id,
            "subject": subject,
            "before": parse(before),
            "after": parse(after),
            "cause": cause,
            "prevHash": prev_hash,
            "hash": hash,
            "keyed": *chain == KEYED,
        })
    }
}

/// An `audit_log` row.
#[derive(Queryable, Selectable)]
#[diesel(table_name = audit_log)]
pub(super) struct AuditRow {
    tenant_id: i64,
    seq: i64,
    at: NaiveDateTime,
    actor: String,
    action: String,
    target_type: String,
    target_id: String,
    subject: Option<String>,
    before_json: Option<String>,
    after_json: Option<String>,
    cause: Option<i64>,
    prev_hash: String,
    hash: String,
    chain: i32,
    actor_name: Option<String>,
}

impl AuditRow {
    /// The tenant and the entry.
    pub(super) fn into_entry(self) -> (i64, AuditEntry) {
        let AuditRow {
            tenant_id,
            seq,
            at,
            actor,
            action,
            target_type,
            target_id,
            subject,
            before_json,
            after_json,
            cause,
            prev_hash,
            hash,
            chain,
            actor_name,
        } = self;
        (
            tenant_id,
            AuditEntry {
                seq,
                at: from_db_time(at),
                actor,
                actor_name,
                action,
                target_type,
                target_id,
                subject,
                before: before_json,
                after: after_json,
                cause,
                prev_hash,
                hash,
                chain,
            },
        )
    }
}

/// Locks the tenant's chain head (creating it when new) and returns its
/// seq and hash.
fn lock_head(conn: &mut AnyConnection, tenant: TenantId) -> Result<(i64, String)> {
    fn read(conn: &mut AnyConnection, tenant: TenantId) -> QueryResult<Option<(i64, String)>> {
        let query = audit_heads::table
            .filter(audit_heads::tenant_id.eq(tenant.0))
            .select((audit_heads::seq, audit_heads::hash));
        match conn {
            AnyConnection::Pg(c) => query.for_update().first(c).optional(),
            AnyConnection::Sqlite(c) => query.first(c).optional(),
        }
    }
    if let Some(head) = read(conn, tenant)? {
        return Ok(head);
    }
    let insert = diesel::insert_into(audit_heads::table)
        .values((
            audit_heads::tenant_id.eq(tenant.0),
            audit_heads::seq.eq(0_i64),
            audit_heads::hash.eq(GENESIS_HASH),
        ))
        .on_conflict_do_nothing();
    match conn {
        AnyConnection::Pg(c) => insert.execute(c)?,
        AnyConnection::Sqlite(c) => insert.execute(c)?,
    };
    read(conn, tenant)?.ok_or_else(|| Error::internal("the audit chain head vanished"))
}

/// Appends `entries` to the tenant's chain inside the caller's write
/// transaction and returns their seqs. Call it last in the transaction
/// (see the module notes). Nothing is written for an empty list.
pub fn append_all(
    conn: &mut AnyConnection,
    tenant: TenantId,
    entries: &[NewAuditEntry],
) -> Result<Vec<i64>> {
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    let key = audit_chain::chain_key()?;
    let chain = if key.is_some() { KEYED } else { UNKEYED };
    let (mut seq, mut prev_hash) = lock_head(conn, tenant)?;
    let at = now();
    let mut seqs = Vec::with_capacity(entries.len());
    let mut names = ActorNames::default();
    for new in entries {
        seq += 1;
        let entry = AuditEntry {
            seq,
            at,
            actor: new.actor.clone(),
            actor_name: names.of(conn, tenant, &new.actor)?,
            action: new.action.clone(),
            target_type: new.target_type.clone(),
            target_id: new.target_id.clone(),
            subject: new.subject.clone(),
            before: new.before.as_ref().map(Value::to_string),
            after: new.after.as_ref().map(Value::to_string),
            cause: new.cause.or_else(context_cause),
            prev_hash: prev_hash.clone(),
            hash: String::new(),
            chain,
        };
        let hash = entry_hash(tenant, &entry, key.as_ref())
            .ok_or_else(|| Error::internal("an audit entry could not be hashed"))?;
        Stmt::new()
            .sql(
                "INSERT INTO audit_log (tenant_id, seq, at, actor, action, target_type, target_id, \
                 subject, before_json, after_json, cause, prev_hash, hash, chain, actor_name) \
                 VALUES (",
            )
            .vals(&[
                Val::Int(Some(tenant.0)),
                Val::Int(Some(seq)),
                Val::Time(Some(to_db_time(at))),
                Val::Text(Some(&entry.actor)),
                Val::Text(Some(&entry.action)),
                Val::Text(Some(&entry.target_type)),
                Val::Text(Some(&entry.target_id)),
                Val::Text(entry.subject.as_deref()),
                Val::Text(entry.before.as_deref()),
                Val::Text(entry.after.as_deref()),
                Val::Int(entry.cause),
                Val::Text(Some(&entry.prev_hash)),
                Val::Text(Some(&hash)),
                Val::Int(Some(i64::from(chain))),
                Val::Text(entry.actor_name.as_deref()),
            ])
            .sql(")")
            .run(conn)?;
        seqs.push(seq);
        prev_hash = hash;
    }
    Stmt::new()
        .sql("UPDATE audit_heads SET seq = ")
        .val(Val::Int(Some(seq)))
        .sql(", hash = ")
        .val(Val::Text(Some(&prev_hash)))
        .sql(" WHERE tenant_id = ")
        .val(Val::Int(Some(tenant.0)))
        .run(conn)?;
    Ok(seqs)
}

/// The names of the tokens acting in one append, looked up once each.
#[derive(Default)]
struct ActorNames(Vec<(String, Option<String>)>);

impl ActorNames {
    /// The name of `actor` when it is a token of the tenant (`token:<id>`).
    fn of(
        &mut self,
        conn: &mut AnyConnection,
        tenant: TenantId,
        actor: &str,
    ) -> Result<Option<String>> {
        if let Some((_, name)) = self.0.iter().find(|(a, _)| a == actor) {
            return Ok(name.clone());
        }
        let name = match actor
            .strip_prefix("token:")
            .and_then(|id| id.parse::<i64>().ok())
        {
            Some(id) => tokens::table
                .filter(tokens::id.eq(id))
                .filter(tokens::tenant_id.eq(tenant.0))
                .select(tokens::name)
                .first::<String>(conn)
                .optional()?,
            None => None,
        };
        self.0.push((actor.to_owned(), name.clone()));
        Ok(name)
    }
}

/// Who granted access that `source` (`rule:<id>`, `playbook:<id>`) gives,
/// as an assignment's `granted_by`: the person acting when one is (the
/// current [`with_context`] actor is a token: `token:3 (alice)`, with the
/// token's name), else `source` itself (a rule firing on its own).
pub(crate) fn granted_by(
    conn: &mut AnyConnection,
    tenant: TenantId,
    source: &str,
) -> Result<String> {
    let actor = actor_of(None);
    if !actor.starts_with("token:") {
        return Ok(source.to_owned());
    }
    Ok(match ActorNames::default().of(conn, tenant, &actor)? {
        Some(name) => format!("{actor} ({name})"),
        None => actor,
    })
}

/// Appends one entry inside the caller's write transaction (see
/// [`append_all`]) and returns its seq.
pub fn append(conn: &mut AnyConnection, tenant: TenantId, entry: &NewAuditEntry) -> Result<i64> {
    append_all(conn, tenant, std::slice::from_ref(entry))?
        .pop()
        .ok_or_else(|| Error::internal("an audit append returned no seq"))
}

/// The seq of the latest change concerning a user or group (its
/// `subject`), not counting the engine's own outcomes: what a provisioning
/// outcome for it follows from.
pub fn latest_change_about(
    conn: &mut AnyConnection,
    tenant: TenantId,
    subject: &str,
) -> Result<Option<i64>> {
    // A few rows back suffice: outcomes are at most one per pair and
    // change; bounded either way.
    let recent: Vec<(i64, String)> = audit_log::table
        .filter(audit_log::tenant_id.eq(tenant.0))
        .filter(audit_log::subject.eq(subject))
        .order(audit_log::seq.desc())
        .limit(50)
        .select((audit_log::seq, audit_log::action))
        .load(conn)?;
    Ok(recent
        .into_iter()
        .find(|(_, action)| !action.starts_with("provisioning."))
        .map(|(seq, _)| seq))
}

/// A SCIM document as the audit log keeps it: without `password` (the
/// stored value is a hash, and not the log's business).
pub fn scim_snapshot(document: &Value) -> Value {
    let mut doc = document.clone();
    if let Some(obj) = doc.as_object_mut() {
        obj.retain(|k, _| !k.eq_ignore_ascii_case("password"));
    }
    doc
}

/// An application as the audit log keeps it: its settings without the
/// credentials.
pub fn application_snapshot(app: &super::Application) -> Value {
    let f = &app.fields;
    let parse = |text: &str| serde_json::from_str(text).unwrap_or(Value::Null);
    json!({
        "id": app.id,
        "name": f.name,
        "baseUrl": f.base_url,
        "authType": f.auth_type,
        "mapping": parse(&f.mapping),
        "managedAttributes": parse(&f.managed_attributes),
        "deprovision": parse(&f.deprovision),
        "ratePerSecond": f.rate_per_second,
        "maxConcurrency": f.max_concurrency,
        "enabled": f.enabled,
    })
}

/// An assignment as the audit log keeps it.
pub fn assignment_snapshot(a: &super::Assignment) -> Value {
    let time = |t: Option<DateTime<Utc>>| t.map(|t| t.to_rfc3339_opts(SecondsFormat::Micros, true));
    json!({
        "id": a.id,
        "applicationId": a.application_id,
        "resourceType": a.resource_type,
        "resourceId": a.resource_id,
        "source": a.source,
        "validFrom": time(a.valid_from),
        "validUntil": time(a.valid_until),
    })
}

/// The audit entry of a management action on an application or an
/// assignment, with the context's actor.
pub(crate) fn management(action: &str, target_type: &str, id: i64) -> NewAuditEntry {
    NewAuditEntry::new(actor_of(None), action, target_type, id.to_string())
}

/// The entry recording the deletion of assignment `id` (read before it is
/// deleted), with `actor` and the assignee as subject; `None` when there
/// is no such assignment.
pub(crate) fn assignment_deleted(
    conn: &mut AnyConnection,
    tenant: TenantId,
    id: i64,
    actor: String,
) -> Result<Option<NewAuditEntry>> {
    type Row = (
        i64,
        String,
        String,
        String,
        Option<NaiveDateTime>,
        Option<NaiveDateTime>,
        NaiveDateTime,
    );
    let row: Option<Row> = assignments::table
        .inner_join(resources::table)
        .filter(assignments::tenant_id.eq(tenant.0))
        .filter(assignments::id.eq(id))
        .select((
            assignments::application_id,
            assignments::resource_type,
            resources::id,
            assignments::source,
            assignments::valid_from,
            assignments::valid_until,
            assignments::created,
        ))
        .first(conn)
        .optional()?;
    Ok(row.map(
        |(application_id, resource_type, resource_id, source, valid_from, valid_until, created)| {
            let before = assignment_snapshot(&super::Assignment {
                id,
                application_id,
                resource_type,
                resource_id: resource_id.clone(),
                source,
                valid_from: valid_from.map(from_db_time),
                valid_until: valid_until.map(from_db_time),
                created: from_db_time(created),
            });
            NewAuditEntry::new(actor, "assignment.delete", "Assignment", id.to_string())
                .subject(resource_id)
                .before(Some(before))
        },
    ))
}

/// Records what the engine did with a pair (inside the transaction that
/// records the outcome), when something happened: the status changed or
/// something new was sent. Repeated failures of a failing pair are not
/// repeated here (the provisioning log has every request). The cause is
/// the latest change concerning the resource (its write, or the
/// assignment change that granted or removed the access).
pub(crate) fn provisioning_outcome(
    conn: &mut AnyConnection,
    claimed: &super::PairState,
    outcome: &super::PairOutcome,
) -> Result<()> {
    let changed =
        outcome.status != claimed.status || outcome.last_sent_hash != claimed.last_sent_hash;
    if !changed {
        return Ok(());
    }
    let tenant: Option<i64> = applications::table
        .filter(applications::id.eq(claimed.application_id))
        .select(applications::tenant_id)
        .first(conn)
        .optional()?;
    let Some(tenant) = tenant.map(TenantId) else {
        return Ok(());
    };
    let cause = latest_change_about(conn, tenant, &claimed.resource_id)?;
    let entry = NewAuditEntry::new(
        "system:engine",
        format!("provisioning.{}", outcome.status.as_str()),
        "Provisioning",
        format!("{}/{}", claimed.application_id, claimed.resource_id),
    )
    .subject(claimed.resource_id.clone())
    .before(Some(json!({
        "status": claimed.status.as_str(),
        "remoteId": claimed.remote_id,
    })))
    .after(Some(json!({
        "applicationId": claimed.application_id,
        "resourceType": claimed.resource_type,
        "resourceId": claimed.resource_id,
        "status": outcome.status.as_str(),
        "remoteId": outcome.remote_id,
        "attempts": outcome.attempts,
        "error": outcome.last_error,
    })))
    .cause(cause);
    append(conn, tenant, &entry)?;
    Ok(())
}

/// Which entries to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only this actor (`token:3`, `system:engine`).
    pub actor: Option<String>,
    /// Only this action, or actions starting with it when it ends in `*`
    /// (`user.*`).
    pub action: Option<String>,
    /// Only this target type.
    pub target_type: Option<String>,
    /// Only this target id.
    pub target_id: Option<String>,
    /// Only entries concerning this user or group (SCIM id).
    pub subject: Option<String>,
    /// Only entries at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only entries before this time.
    pub until: Option<DateTime<Utc>>,
    /// Only entries with a seq greater than this (paging).
    pub after_seq: Option<i64>,
    /// At most this many (capped at [`MAX_PAGE`]).
    pub limit: i64,
}

/// The audit log.
pub trait AuditStore {
    /// Appends one entry in its own transaction (for actions that write
    /// nothing else) and returns its seq.
    fn append_audit(&self, tenant: TenantId, entry: &NewAuditEntry) -> Result<i64>;
    /// Entries matching `query`, by seq.
    fn query_audit(&self, tenant: TenantId, query: &AuditQuery) -> Result<Vec<AuditEntry>>;
    /// Walks the whole chain in seq order and reports the first seq that
    /// is missing, out of place, or whose hash does not match its content
    /// or its predecessor, checks it against a kept head, and signs the
    /// head (see [`audit_chain`]). Keyed hashes are checked with the
    /// store's audit key.
    fn verify_audit(&self, tenant: TenantId, expect: Option<&HeadRef>) -> Result<Verification>;
}

impl AuditStore for Store {
    fn append_audit(&self, tenant: TenantId, entry: &NewAuditEntry) -> Result<i64> {
        self.write(|conn| append(conn, tenant, entry))
    }

    fn query_audit(&self, tenant: TenantId, q: &AuditQuery) -> Result<Vec<AuditEntry>> {
        let mut query = audit_log::table
            .filter(audit_log::tenant_id.eq(tenant.0))
            .into_boxed();
        if let Some(actor) = &q.actor {
            query = query.filter(audit_log::actor.eq(actor.clone()));
        }
        if let Some(action) = &q.action {
            match action.strip_suffix('*') {
                // A range rather than LIKE: no pattern characters to escape.
                Some(prefix) => {
                    query = query.filter(audit_log::action.ge(prefix.to_owned()));
                    if let Some(upper) = super::index::prefix_upper_bound(prefix) {
                        query = query.filter(audit_log::action.lt(upper));
                    }
                }
                None => query = query.filter(audit_log::action.eq(action.clone())),
            }
        }
        if let Some(t) = &q.target_type {
            query = query.filter(audit_log::target_type.eq(t.clone()));
        }
        if let Some(id) = &q.target_id {
            query = query.filter(audit_log::target_id.eq(id.clone()));
        }
        if let Some(subject) = &q.subject {
            query = query.filter(audit_log::subject.eq(subject.clone()));
        }
        if let Some(since) = q.since {
            query = query.filter(audit_log::at.ge(to_db_time(since)));
        }
        if let Some(until) = q.until {
            query = query.filter(audit_log::at.lt(to_db_time(until)));
        }
        if let Some(after) = q.after_seq {
            query = query.filter(audit_log::seq.gt(after));
        }
        let rows: Vec<AuditRow> = query
            .order(audit_log::seq.asc())
            .limit(q.limit.clamp(1, MAX_PAGE))
            .select(AuditRow::as_select())
            .load(&mut *self.conn()?)?;
        Ok(rows.into_iter().map(|r| r.into_entry().1).collect())
    }

    fn verify_audit(&self, tenant: TenantId, expect: Option<&HeadRef>) -> Result<Verification> {
        audit_chain::verify(&mut *self.conn()?, tenant, self.audit_key(), expect)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_drop_the_password() {
        let doc = json!({"userName": "a", "Password": "x", "active": true});
        assert_eq!(
            scim_snapshot(&doc),
            json!({"userName": "a", "active": true})
        );
    }
}
