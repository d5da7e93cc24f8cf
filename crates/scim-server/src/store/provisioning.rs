//! The provisioning state: one row per (application, resource) pair, marked
//! due in the same transaction as every write that may change what the
//! application should hold ([`mark_due`]), and read by the engine and the
//! management API ([`ProvisioningStore`]).
//!
//! The engine is level-triggered: a due mark only says "look at this pair
//! again"; what to send is computed from the current state when the pair is
//! worked on, so ten quick edits become one request and nothing is lost if a
//! process dies, because the mark commits with the write.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::{Store, TenantId, from_db_time, now, to_db_time};
use crate::db::AnyConnection;
use crate::db::schema::{applications, assignments, memberships, provisioning_state, resources};
use crate::error::Result;

/// Where a pair stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PairStatus {
    /// Not yet sent (or changed since it was).
    Pending,
    /// The application holds what was last computed.
    Provisioned,
    /// Deactivated or deleted downstream.
    Deprovisioned,
    /// The last attempt failed; another is scheduled.
    Failed,
    /// Failed too often: on the dead-letter list until replayed.
    Dead,
}

impl PairStatus {
    /// Every status, in display order.
    pub const ALL: [PairStatus; 5] = [
        PairStatus::Pending,
        PairStatus::Provisioned,
        PairStatus::Deprovisioned,
        PairStatus::Failed,
        PairStatus::Dead,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            PairStatus::Pending => "pending",
            PairStatus::Provisioned => "provisioned",
            PairStatus::Deprovisioned => "deprovisioned",
            PairStatus::Failed => "failed",
            PairStatus::Dead => "dead",
        }
    }

    /// The status for a stored name (unknown names read as pending).
    pub fn parse(s: &str) -> Self {
        PairStatus::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .unwrap_or(PairStatus::Pending)
    }
}

/// One (application, resource) pair as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct PairState {
    /// The application.
    pub application_id: i64,
    /// Internal key of the resource (it may be deleted already).
    pub resource_pk: i64,
    /// `User` or `Group`.
    pub resource_type: String,
    /// The SCIM id of the resource here.
    pub resource_id: String,
    /// The id the application gave it.
    pub remote_id: Option<String>,
    /// Hash of the document last sent.
    pub last_sent_hash: Option<String>,
    /// The document last sent (what the application is believed to hold).
    pub last_sent: Option<String>,
    /// Where it stands.
    pub status: PairStatus,
    /// Failed attempts since the last success.
    pub attempts: i32,
    /// Not to be tried before this time.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The error of the last failed attempt.
    pub last_error: Option<String>,
    /// Whether the pair is to be looked at.
    pub due: bool,
    /// Since when it has been due.
    pub due_since: Option<DateTime<Utc>>,
    /// Last change of the row.
    pub updated: DateTime<Utc>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = provisioning_state)]
pub(super) struct StateRow {
    application_id: i64,
    resource_pk: i64,
    resource_type: String,
    resource_id: String,
    remote_id: Option<String>,
    last_sent_hash: Option<String>,
    last_sent: Option<String>,
    status: String,
    attempts: i32,
    next_attempt_at: Option<NaiveDateTime>,
    last_error: Option<String>,
    due: bool,
    due_since: Option<NaiveDateTime>,
    updated: NaiveDateTime,
}

impl From<StateRow> for PairState {
    fn from(row: StateRow) -> Self {
        let StateRow {
            application_id,
            resource_pk,
            resource_type,
            resource_id,
            remote_id,
            last_sent_hash,
            last_sent,
            status,
            attempts,
            next_attempt_at,
            last_error,
            due,
            due_since,
            updated,
        } = row;
        PairState {
            application_id,
            resource_pk,
            resource_type,
            resource_id,
            remote_id,
            last_sent_hash,
            last_sent,
            status: PairStatus::parse(&status),
            attempts,
            next_attempt_at: next_attempt_at.map(from_db_time),
            last_error,
            due,
            due_since: due_since.map(from_db_time),
            updated: from_db_time(updated),
        }
    }
}

/// Marks due, inside the caller's write transaction, every
/// (application, resource) pair that the write to `resource_pks` may have
/// changed: the applications each resource is assigned to directly, those
/// assigned to a group it is a direct member of, and those that already
/// have a pair for it (it was assigned, or provisioned, before this write).
/// Pairs are created as `pending` when new. Marking resets the attempt
/// count and the backoff: new data deserves a prompt attempt.
///
/// Callers pass the resource written and, for a group write, the members
/// that joined or left; for an assignment change, the assigned resource
/// and, for a group, its members. Call it while the resource row still
/// exists (before a delete).
pub(crate) fn mark_due(
    conn: &mut AnyConnection,
    tenant: TenantId,
    resource_pks: &[i64],
) -> Result<usize> {
    let pks: BTreeSet<i64> = resource_pks.iter().copied().collect();
    let mut marked = 0;
    let at = to_db_time(now());
    for pk in pks {
        let mut apps: BTreeSet<i64> = assignments::table
            .filter(assignments::resource_pk.eq(pk))
            .select(assignments::application_id)
            .load::<i64>(conn)?
            .into_iter()
            .collect();
        // Nested groups too: the effective-access model follows them.
        let groups: Vec<i64> = super::access::ancestors(conn, pk)?;
        if !groups.is_empty() {
            apps.extend(
                assignments::table
                    .filter(assignments::resource_pk.eq_any(&groups))
                    .select(assignments::application_id)
                    .load::<i64>(conn)?,
            );
        }
        apps.extend(
            provisioning_state::table
                .filter(provisioning_state::resource_pk.eq(pk))
                .select(provisioning_state::application_id)
                .load::<i64>(conn)?,
        );
        if apps.is_empty() {
            continue;
        }
        let Some((resource_type, resource_id)) = resources::table
            .filter(resources::pk.eq(pk))
            .filter(resources::tenant_id.eq(tenant.0))
            .select((resources::resource_type, resources::id))
            .first::<(String, String)>(conn)
            .optional()?
        else {
            continue;
        };
        for app in apps {
            upsert_due(conn, app, pk, &resource_type, &resource_id, at)?;
            marked += 1;
        }
    }
    Ok(marked)
}

/// Creates the pair as pending and due, or marks the existing one due.
fn upsert_due(
    conn: &mut AnyConnection,
    app: i64,
    pk: i64,
    resource_type: &str,
    resource_id: &str,
    at: NaiveDateTime,
) -> Result<()> {
    use provisioning_state as ps;
    let values = (
        ps::application_id.eq(app),
        ps::resource_pk.eq(pk),
        ps::resource_type.eq(resource_type),
        ps::resource_id.eq(resource_id),
        ps::status.eq(PairStatus::Pending.as_str()),
        ps::attempts.eq(0),
        ps::due.eq(true),
        ps::due_since.eq(Some(at)),
        ps::updated.eq(at),
    );
    let changes = (
        ps::due.eq(true),
        ps::attempts.eq(0),
        ps::next_attempt_at.eq(None::<NaiveDateTime>),
        ps::updated.eq(at),
    );
    // Upserts are not available through the multi-backend connection: the
    // same statement on each backend's own type.
    let insert = diesel::insert_into(ps::table)
        .values(values)
        .on_conflict((ps::application_id, ps::resource_pk))
        .do_update()
        .set(changes);
    match conn {
        AnyConnection::Sqlite(c) => insert.execute(c)?,
        AnyConnection::Pg(c) => insert.execute(c)?,
    };
    // Keep the first due time of a pair that was already due.
    diesel::update(
        ps::table
            .filter(ps::application_id.eq(app))
            .filter(ps::resource_pk.eq(pk))
            .filter(ps::due_since.is_null()),
    )
    .set(ps::due_since.eq(Some(at)))
    .execute(conn)?;
    Ok(())
}

/// The members of a group, directly or through nested groups, by key:
/// those whose access an assignment of the group changes.
pub(crate) fn member_pks(conn: &mut AnyConnection, group_pk: i64) -> Result<Vec<i64>> {
    super::access::descendants(conn, &[group_pk])
}

/// For a resource write, `touched` = the resource written, then the
/// members that joined or left it: the same, plus the members of those
/// that are groups, nested (not the written group's own members, whose
/// access did not change).
pub(crate) fn with_nested_members(conn: &mut AnyConnection, touched: &[i64]) -> Result<Vec<i64>> {
    let mut all = touched.to_vec();
    if touched.len() > 1 {
        let nested = super::access::descendants(conn, &touched[1..])?;
        all.extend(nested.into_iter().filter(|pk| *pk != touched[0]));
    }
    Ok(all)
}

/// Marks every pair of an application due (after its settings changed).
pub(crate) fn mark_application_due(conn: &mut AnyConnection, app: i64) -> Result<usize> {
    use provisioning_state as ps;
    let at = to_db_time(now());
    Ok(diesel::update(ps::table.filter(ps::application_id.eq(app)))
        .set((
            ps::due.eq(true),
            ps::attempts.eq(0),
            ps::next_attempt_at.eq(None::<NaiveDateTime>),
            ps::updated.eq(at),
        ))
        .execute(conn)?)
}

/// The ids of the tenant's applications (a subquery): pairs belong to the
/// tenant of their application.
fn tenant_apps(
    tenant: TenantId,
) -> diesel::dsl::Select<
    diesel::dsl::Filter<applications::table, diesel::dsl::Eq<applications::tenant_id, i64>>,
    applications::id,
> {
    applications::table
        .filter(applications::tenant_id.eq(tenant.0))
        .select(applications::id)
}

/// Reads of the provisioning state.
pub trait ProvisioningStore {
    /// The pairs of an application, by resource key, optionally only those
    /// with `status`, at most `limit`.
    fn pairs(
        &self,
        tenant: TenantId,
        application_id: i64,
        status: Option<PairStatus>,
        limit: i64,
    ) -> Result<Vec<PairState>>;

    /// How many pairs of an application have each status, and how many are
    /// due.
    fn pair_counts(&self, tenant: TenantId, application_id: i64) -> Result<PairCounts>;

    /// Puts the dead pairs of an application (all, or the one of the
    /// resource with SCIM id `resource_id`) back in the queue: pending, due,
    /// no attempts. Returns how many.
    fn replay_dead(
        &self,
        tenant: TenantId,
        application_id: i64,
        resource_id: Option<&str>,
    ) -> Result<usize>;
}

/// Pair counts of one application.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PairCounts {
    /// `(status, count)` for every status, in [`PairStatus::ALL`] order.
    pub by_status: Vec<(PairStatus, i64)>,
    /// Pairs marked due.
    pub due: i64,
}

impl ProvisioningStore for Store {
    fn pairs(
        &self,
        tenant: TenantId,
        application_id: i64,
        status: Option<PairStatus>,
        limit: i64,
    ) -> Result<Vec<PairState>> {
        use provisioning_state as ps;
        let mut query = ps::table
            .filter(ps::application_id.eq(application_id))
            .filter(ps::application_id.eq_any(tenant_apps(tenant)))
            .into_boxed();
        if let Some(status) = status {
            query = query.filter(ps::status.eq(status.as_str()));
        }
        let rows: Vec<StateRow> = query
            .order(ps::resource_pk.asc())
            .limit(limit)
            .select(StateRow::as_select())
            .load(&mut *self.conn()?)?;
        Ok(rows.into_iter().map(PairState::from).collect())
    }

    fn pair_counts(&self, tenant: TenantId, application_id: i64) -> Result<PairCounts> {
        use provisioning_state as ps;
        let mut conn = self.conn()?;
        let base = || {
            ps::table
                .filter(ps::application_id.eq(application_id))
                .filter(ps::application_id.eq_any(tenant_apps(tenant)))
        };
        let mut by_status = Vec::with_capacity(PairStatus::ALL.len());
        for status in PairStatus::ALL {
            let n: i64 = base()
                .filter(ps::status.eq(status.as_str()))
                .count()
                .get_result(&mut *conn)?;
            by_status.push((status, n));
        }
        let due: i64 = base()
            .filter(ps::due.eq(true))
            .count()
            .get_result(&mut *conn)?;
        Ok(PairCounts { by_status, due })
    }

    fn replay_dead(
        &self,
        tenant: TenantId,
        application_id: i64,
        resource_id: Option<&str>,
    ) -> Result<usize> {
        use provisioning_state as ps;
        let at = to_db_time(now());
        self.write(|conn| -> Result<usize> {
            let mut query = diesel::update(ps::table)
                .filter(ps::application_id.eq(application_id))
                .filter(ps::application_id.eq_any(tenant_apps(tenant)))
                .filter(ps::status.eq(PairStatus::Dead.as_str()))
                .into_boxed();
            if let Some(rid) = resource_id {
                query = query.filter(ps::resource_id.eq(rid.to_owned()));
            }
            Ok(query
                .set((
                    ps::status.eq(PairStatus::Pending.as_str()),
                    ps::due.eq(true),
                    ps::due_since.eq(Some(at)),
                    ps::attempts.eq(0),
                    ps::next_attempt_at.eq(None::<NaiveDateTime>),
                    ps::updated.eq(at),
                ))
                .execute(conn)?)
        })
    }
}

/// What the engine needs to work on one claimed pair.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedPair {
    /// The pair as claimed.
    pub state: PairState,
    /// Its application.
    pub application: super::Application,
    /// The resource's current document (`None`: deleted).
    pub document: Option<serde_json::Value>,
    /// Whether an assignment in force covers the resource (directly or
    /// through a group it is a direct member of).
    pub assigned: bool,
    /// The application-side roles those assignments grant, de-duplicated
    /// and sorted (empty when none names a role, or none is in force).
    pub roles: Vec<String>,
    /// The pair's side state (delayed delete, membership ledger).
    pub extra: super::engine_state::PairExtra,
    /// For a group: the remote ids of its direct members provisioned in
    /// the application, sorted.
    pub members: Option<Vec<String>>,
    /// The application's engine settings.
    pub settings: super::engine_state::EngineSettings,
}

/// The outcome of one attempt on a pair.
#[derive(Debug, Clone, PartialEq)]
pub struct PairOutcome {
    /// The id the application gave the resource.
    pub remote_id: Option<String>,
    /// What the application now holds, as sent.
    pub last_sent: Option<String>,
    /// Hash of `last_sent`.
    pub last_sent_hash: Option<String>,
    /// The new status.
    pub status: PairStatus,
    /// Failed attempts since the last success.
    pub attempts: i32,
    /// Not before this time (failures).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The error, for failures.
    pub last_error: Option<String>,
    /// The side state to store (delayed delete, membership ledger). A
    /// `delete_after` in the future keeps the pair due until then.
    pub extra: super::engine_state::PairExtra,
}

/// One request sent to an application, as logged.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    /// Position in the log.
    pub id: i64,
    /// The application.
    pub application_id: i64,
    /// The SCIM id of the resource here.
    pub resource_id: Option<String>,
    /// `User` or `Group` (`None`: not about one resource).
    pub resource_type: Option<String>,
    /// HTTP method.
    pub method: String,
    /// Full URL.
    pub url: String,
    /// Request body, secrets redacted.
    pub request_body: Option<String>,
    /// HTTP status answered (None: no answer).
    pub status: Option<i32>,
    /// Response body (truncated).
    pub response_body: Option<String>,
    /// Transport or protocol error.
    pub error: Option<String>,
    /// When it was sent.
    pub at: DateTime<Utc>,
    /// How long it took.
    pub duration_ms: i64,
}

/// The work queue of the engine.
pub trait ProvisioningQueue {
    /// Claims up to `limit` due pairs whose backoff has passed and whose
    /// lease (if any) has expired, leasing them to `owner` for `lease`.
    /// PostgreSQL skips rows other workers hold locked (`FOR UPDATE SKIP
    /// LOCKED`); SQLite's write lock serialises claims. Only pairs of
    /// enabled, unquarantined applications are claimed.
    fn claim_due(
        &self,
        owner: &str,
        lease: std::time::Duration,
        limit: i64,
    ) -> Result<Vec<ClaimedPair>>;
    /// Records the outcome of an attempt by `owner` on a pair claimed with
    /// `claimed.updated`, releases the lease, and clears the due mark unless
    /// a write marked the pair again meanwhile.
    fn record_outcome(&self, owner: &str, claimed: &PairState, outcome: &PairOutcome)
    -> Result<()>;
    /// Every pair of an application with its inputs, without claiming
    /// (for the dry-run plan).
    fn pair_inputs(&self, tenant: TenantId, application_id: i64) -> Result<Vec<ClaimedPair>>;
    /// Claims the pair of one user for on-demand provisioning (creating it,
    /// due, if the user has none). A pair leased by another worker is a
    /// 409.
    fn claim_one(
        &self,
        tenant: TenantId,
        application_id: i64,
        user_id: &str,
        owner: &str,
        lease: std::time::Duration,
    ) -> Result<ClaimedPair>;
    /// Counts a request outcome against its application: a success clears
    /// the failure count and any quarantine; the `threshold`-th failure in
    /// a row (and every one after) quarantines the application for
    /// `delay` with `error` as the reason.
    fn record_application_result(
        &self,
        application_id: i64,
        error: Option<&str>,
        threshold: i32,
        delay: std::time::Duration,
    ) -> Result<()>;
    /// Appends entries to the provisioning log (one transaction).
    fn append_log(&self, tenant: TenantId, entries: &[LogEntry]) -> Result<()>;
    /// The log of the tenant, newest first, optionally of one application
    /// and/or one resource, only entries older than `before` (an entry id;
    /// the paging cursor).
    fn read_log(
        &self,
        tenant: TenantId,
        application_id: Option<i64>,
        resource_id: Option<&str>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<LogEntry>>;
}

/// The current document, assignment and granted roles of a pair's resource.
pub(super) fn inputs(
    conn: &mut AnyConnection,
    state: PairState,
    application: super::Application,
) -> Result<ClaimedPair> {
    let document: Option<String> = resources::table
        .filter(resources::pk.eq(state.resource_pk))
        .select(resources::document)
        .first(conn)
        .optional()?;
    let mut document: Option<serde_json::Value> = document
        .map(|d| serde_json::from_str(&d))
        .transpose()
        .map_err(|e| crate::error::Error::internal(format!("stored document: {e}")))?;
    let granted = match (&document, state.resource_type.as_str()) {
        (None, _) => None,
        // A user: what the effective-access model says.
        (Some(_), "User") => super::access::user_entitlement(
            conn,
            application.tenant_id,
            state.resource_pk,
            state.application_id,
        )?
        .filter(|e| e.granted)
        .map(|e| {
            if matches!(
                e.state,
                crate::access::State::Grace | crate::access::State::LeaverPending
            ) && let Some(doc) = document.as_mut().and_then(serde_json::Value::as_object_mut)
            {
                // A leaver in grace keeps a working account until it ends.
                doc.insert("active".into(), serde_json::Value::Bool(true));
            }
            e.roles
        }),
        (Some(_), _) => group_assignments_in_force(conn, state.application_id, state.resource_pk)?,
    };
    let assigned = granted.is_some();
    let roles = granted.unwrap_or_default();
    let extra = super::engine_state::pair_extra(conn, state.application_id, state.resource_pk)?;
    let members = if state.resource_type == "Group" && assigned {
        Some(super::engine_state::member_remote_ids(
            conn,
            state.application_id,
            state.resource_pk,
        )?)
    } else {
        None
    };
    let settings = super::engine_state::engine_settings(conn, state.application_id)?;
    Ok(ClaimedPair {
        state,
        application,
        document,
        assigned,
        roles,
        extra,
        members,
        settings,
    })
}

/// Whether assignments in force cover a group in the application (its
/// own, or those of a group it is a direct member of): `None` when none
/// does, else the roles they grant, de-duplicated and sorted. Users are
/// the effective-access model's ([`crate::access`]).
fn group_assignments_in_force(
    conn: &mut AnyConnection,
    app: i64,
    pk: i64,
) -> Result<Option<Vec<String>>> {
    let now = to_db_time(now());
    let mut holders = memberships::table
        .filter(memberships::member_pk.eq(pk))
        .select(memberships::group_pk)
        .load::<i64>(conn)?;
    holders.push(pk);
    let roles: Vec<Option<String>> = assignments::table
        .filter(assignments::application_id.eq(app))
        .filter(assignments::resource_pk.eq_any(&holders))
        .filter(
            assignments::valid_from
                .is_null()
                .or(assignments::valid_from.le(now)),
        )
        .filter(
            assignments::valid_until
                .is_null()
                .or(assignments::valid_until.gt(now)),
        )
        .select(assignments::role)
        .load(conn)?;
    if roles.is_empty() {
        return Ok(None);
    }
    let roles: BTreeSet<String> = roles
        .into_iter()
        .flatten()
        .filter(|r| !r.trim().is_empty())
        .collect();
    Ok(Some(roles.into_iter().collect()))
}

impl ProvisioningQueue for Store {
    fn claim_due(
        &self,
        owner: &str,
        lease: std::time::Duration,
        limit: i64,
    ) -> Result<Vec<ClaimedPair>> {
        use provisioning_state as ps;
        let at = now();
        let now_db = to_db_time(at);
        let until = to_db_time(at + chrono::Duration::from_std(lease).unwrap_or_default());
        self.write(|conn| -> Result<Vec<ClaimedPair>> {
            // Built once per backend: the selection's type names the backend.
            macro_rules! due_query {
                () => {
                    ps::table
                        .filter(ps::due.eq(true))
                        .filter(ps::status.ne(PairStatus::Dead.as_str()))
                        .filter(
                            ps::next_attempt_at
                                .is_null()
                                .or(ps::next_attempt_at.le(now_db)),
                        )
                        .filter(ps::claimed_until.is_null().or(ps::claimed_until.lt(now_db)))
                        .filter(
                            ps::application_id.eq_any(
                                applications::table
                                    .filter(applications::enabled.eq(true))
                                    .filter(
                                        applications::quarantined_until
                                            .is_null()
                                            .or(applications::quarantined_until.le(now_db)),
                                    )
                                    .select(applications::id),
                            ),
                        )
                        .order((ps::due_since.asc(), ps::resource_pk.asc()))
                        .limit(limit)
                        .select(StateRow::as_select())
                };
            }
            let rows: Vec<StateRow> = match conn {
                AnyConnection::Sqlite(c) => due_query!().load(c)?,
                AnyConnection::Pg(c) => due_query!().for_update().skip_locked().load(c)?,
            };
            let mut claimed = Vec::with_capacity(rows.len());
            for row in rows {
                let state = PairState::from(row);
                let Some(application) = super::applications::app_by_id(conn, state.application_id)?
                else {
                    continue;
                };
                diesel::update(
                    ps::table
                        .filter(ps::application_id.eq(state.application_id))
                        .filter(ps::resource_pk.eq(state.resource_pk)),
                )
                .set((ps::claimed_by.eq(owner), ps::claimed_until.eq(until)))
                .execute(conn)?;
                claimed.push(inputs(conn, state, application)?);
            }
            Ok(claimed)
        })
    }

    fn pair_inputs(&self, tenant: TenantId, application_id: i64) -> Result<Vec<ClaimedPair>> {
        use provisioning_state as ps;
        let mut conn = self.conn()?;
        crate::db::read_transaction(&mut conn, |conn| -> Result<Vec<ClaimedPair>> {
            let Some(application) = super::applications::app_by_id(conn, application_id)?
                .filter(|a| a.tenant_id == tenant)
            else {
                return Ok(Vec::new());
            };
            let rows: Vec<StateRow> = ps::table
                .filter(ps::application_id.eq(application_id))
                .order(ps::resource_pk.asc())
                .select(StateRow::as_select())
                .load(conn)?;
            rows.into_iter()
                .map(|r| inputs(conn, PairState::from(r), application.clone()))
                .collect()
        })
    }

    fn claim_one(
        &self,
        tenant: TenantId,
        application_id: i64,
        user_id: &str,
        owner: &str,
        lease: std::time::Duration,
    ) -> Result<ClaimedPair> {
        use provisioning_state as ps;
        let at = now();
        let now_db = to_db_time(at);
        let until = to_db_time(at + chrono::Duration::from_std(lease).unwrap_or_default());
        self.write(|conn| -> Result<ClaimedPair> {
            let not_found =
                |what: String| crate::error::Error::from(scim_core::Error::not_found(what));
            let application = super::applications::app_by_id(conn, application_id)?
                .filter(|a| a.tenant_id == tenant)
                .ok_or_else(|| not_found(format!("no application with id {application_id}")))?;
            let pk: i64 = resources::table
                .filter(resources::tenant_id.eq(tenant.0))
                .filter(resources::resource_type.eq("User"))
                .filter(resources::id.eq(user_id))
                .select(resources::pk)
                .first(conn)
                .optional()?
                .ok_or_else(|| not_found(format!("no user with id '{user_id}'")))?;
            let existing = ps::table
                .filter(ps::application_id.eq(application_id))
                .filter(ps::resource_pk.eq(pk))
                .select(StateRow::as_select())
                .first(conn)
                .optional()?;
            if existing.is_none() {
                upsert_due(conn, application_id, pk, "User", user_id, now_db)?;
            }
            let row: StateRow = ps::table
                .filter(ps::application_id.eq(application_id))
                .filter(ps::resource_pk.eq(pk))
                .select(StateRow::as_select())
                .first(conn)?;
            let claimed = diesel::update(
                ps::table
                    .filter(ps::application_id.eq(application_id))
                    .filter(ps::resource_pk.eq(pk))
                    .filter(ps::claimed_until.is_null().or(ps::claimed_until.lt(now_db))),
            )
            .set((ps::claimed_by.eq(owner), ps::claimed_until.eq(until)))
            .execute(conn)?;
            if claimed == 0 {
                return Err(scim_core::Error::new(
                    scim_core::ErrorKind::Conflict,
                    "a worker is provisioning this user right now; retry shortly",
                )
                .into());
            }
            inputs(conn, PairState::from(row), application)
        })
    }

    fn record_outcome(
        &self,
        owner: &str,
        claimed: &PairState,
        outcome: &PairOutcome,
    ) -> Result<()> {
        use provisioning_state as ps;
        let at = to_db_time(now());
        self.write(|conn| -> Result<()> {
            let this = || {
                ps::table
                    .filter(ps::application_id.eq(claimed.application_id))
                    .filter(ps::resource_pk.eq(claimed.resource_pk))
                    .filter(ps::claimed_by.eq(owner))
            };
            // A delete scheduled for later keeps the pair due until then
            // (durably: a restart finds it there).
            let pending_delete = outcome
                .extra
                .delete_after
                .filter(|t| *t > now() && !matches!(outcome.status, PairStatus::Failed));
            // Not marked again since the claim: the pair is settled. A
            // failure stays due (with its backoff).
            if !matches!(outcome.status, PairStatus::Failed) && pending_delete.is_none() {
                diesel::update(this().filter(ps::updated.eq(to_db_time(claimed.updated))))
                    .set((ps::due.eq(false), ps::due_since.eq(None::<NaiveDateTime>)))
                    .execute(conn)?;
            }
            diesel::update(this())
                .set((
                    ps::remote_id.eq(outcome.remote_id.as_deref()),
                    ps::last_sent.eq(outcome.last_sent.as_deref()),
                    ps::last_sent_hash.eq(outcome.last_sent_hash.as_deref()),
                    ps::status.eq(outcome.status.as_str()),
                    ps::attempts.eq(outcome.attempts),
                    ps::next_attempt_at
                        .eq(pending_delete.or(outcome.next_attempt_at).map(to_db_time)),
                    ps::last_error.eq(outcome.last_error.as_deref()),
                    ps::claimed_by.eq(None::<String>),
                    ps::claimed_until.eq(None::<NaiveDateTime>),
                    ps::updated.eq(at),
                ))
                .execute(conn)?;
            super::engine_state::save_pair_extra(
                conn,
                claimed.application_id,
                claimed.resource_pk,
                &outcome.extra,
            )?;
            // The groups that list this user downstream name it by remote
            // id: when that changes, or the account starts or stops
            // counting as held (a member deprovisioned, then back), they
            // are due again.
            let held = super::engine_state::counts_as_member;
            if claimed.resource_type == "User"
                && (claimed.remote_id != outcome.remote_id
                    || held(claimed.status) != held(outcome.status))
            {
                super::engine_state::mark_groups_of_member_due(
                    conn,
                    claimed.application_id,
                    claimed.resource_pk,
                    at,
                )?;
            }
            super::audit::provisioning_outcome(conn, claimed, outcome)?;
            Ok(())
        })
    }

    fn record_application_result(
        &self,
        application_id: i64,
        error: Option<&str>,
        threshold: i32,
        delay: std::time::Duration,
    ) -> Result<()> {
        use applications as a;
        self.write(|conn| -> Result<()> {
            let this = a::table.filter(a::id.eq(application_id));
            let Some(error) = error else {
                diesel::update(this.filter(a::consecutive_failures.gt(0)))
                    .set((
                        a::consecutive_failures.eq(0),
                        a::quarantined_until.eq(None::<NaiveDateTime>),
                        a::quarantine_reason.eq(None::<String>),
                    ))
                    .execute(conn)?;
                return Ok(());
            };
            let failures: i32 = diesel::update(this)
                .set(a::consecutive_failures.eq(a::consecutive_failures + 1))
                .returning(a::consecutive_failures)
                .get_result(conn)?;
            if failures >= threshold {
                let until = now() + chrono::Duration::from_std(delay).unwrap_or_default();
                diesel::update(a::table.filter(a::id.eq(application_id)))
                    .set((
                        a::quarantined_until.eq(Some(to_db_time(until))),
                        a::quarantine_reason.eq(Some(format!(
                            "{failures} failed requests in a row; last: {error}"
                        ))),
                    ))
                    .execute(conn)?;
            }
            Ok(())
        })
    }

    fn append_log(&self, tenant: TenantId, entries: &[LogEntry]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        self.write(|conn| -> Result<()> {
            for e in entries {
                insert_log(conn, tenant, e)?;
            }
            Ok(())
        })
    }

    fn read_log(
        &self,
        tenant: TenantId,
        application_id: Option<i64>,
        resource_id: Option<&str>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<LogEntry>> {
        use crate::db::schema::provisioning_log as pl;
        type Row = (
            i64,
            i64,
            Option<String>,
            String,
            String,
            Option<String>,
            Option<i32>,
            Option<String>,
            Option<String>,
            NaiveDateTime,
            i64,
            Option<String>,
        );
        let mut query = pl::table.filter(pl::tenant_id.eq(tenant.0)).into_boxed();
        if let Some(before) = before {
            query = query.filter(pl::id.lt(before));
        }
        if let Some(app) = application_id {
            query = query.filter(pl::application_id.eq(app));
        }
        if let Some(rid) = resource_id {
            query = query.filter(pl::resource_id.eq(rid.to_owned()));
        }
        let rows: Vec<Row> = query
            .order(pl::id.desc())
            .limit(limit)
            .select((
                pl::id,
                pl::application_id,
                pl::resource_id,
                pl::method,
                pl::url,
                pl::request_body,
                pl::status,
                pl::response_body,
                pl::error,
                pl::at,
                pl::duration_ms,
                pl::resource_type,
            ))
            .load(&mut *self.conn()?)?;
        Ok(rows
            .into_iter()
            .map(|r| LogEntry {
                id: r.0,
                application_id: r.1,
                resource_id: r.2,
                method: r.3,
                url: r.4,
                request_body: r.5,
                status: r.6,
                response_body: r.7,
                error: r.8,
                at: from_db_time(r.9),
                duration_ms: r.10,
                resource_type: r.11,
            })
            .collect())
    }
}

/// One log row (inside the caller's transaction).
fn insert_log(conn: &mut AnyConnection, tenant: TenantId, e: &LogEntry) -> Result<()> {
    use crate::db::schema::provisioning_log as pl;
    diesel::insert_into(pl::table)
        .values((
            pl::tenant_id.eq(tenant.0),
            pl::application_id.eq(e.application_id),
            pl::resource_id.eq(e.resource_id.as_deref()),
            pl::resource_type.eq(e.resource_type.as_deref()),
            pl::method.eq(&e.method),
            pl::url.eq(&e.url),
            pl::request_body.eq(e.request_body.as_deref()),
            pl::status.eq(e.status),
            pl::response_body.eq(e.response_body.as_deref()),
            pl::error.eq(e.error.as_deref()),
            pl::at.eq(to_db_time(e.at)),
            pl::duration_ms.eq(e.duration_ms),
        ))
        .execute(conn)?;
    Ok(())
}
