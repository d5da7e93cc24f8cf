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
struct StateRow {
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
        let groups: Vec<i64> = memberships::table
            .filter(memberships::member_pk.eq(pk))
            .select(memberships::group_pk)
            .load(conn)?;
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

/// The direct members of a group, by key.
pub(crate) fn member_pks(conn: &mut AnyConnection, group_pk: i64) -> Result<Vec<i64>> {
    Ok(memberships::table
        .filter(memberships::group_pk.eq(group_pk))
        .select(memberships::member_pk)
        .load(conn)?)
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
}
