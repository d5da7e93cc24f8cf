//! The engine's per-pair and per-application side state (migration
//! `2026-11-26-000001_engine`): the delayed delete of
//! `deactivateThenDelete`, the membership ledger of pushed groups, the
//! reconcile schedule and the group deprovision policy. Kept beside
//! `provisioning_state` and `applications`, keyed like them.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::{from_db_time, to_db_time};
use crate::db::AnyConnection;
use crate::db::schema::{engine_app_settings, engine_pair_state, memberships, provisioning_state};
use crate::error::Result;

/// The side state of one pair.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PairExtra {
    /// When the deactivated account is to be deleted (deactivateThenDelete).
    pub delete_after: Option<DateTime<Utc>>,
    /// The member ids last sent (groups), as a JSON array.
    pub ledger: Option<String>,
}

/// What happens to a pushed group once it is no longer assigned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum GroupDeprovision {
    /// Delete it downstream.
    #[default]
    Delete,
    /// Leave it there, untouched.
    Leave,
}

impl GroupDeprovision {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delete => "delete",
            Self::Leave => "leave",
        }
    }

    /// The policy of a name, if it is one.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "delete" => Some(Self::Delete),
            "leave" => Some(Self::Leave),
            _ => None,
        }
    }
}

/// The engine settings of one application.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineSettings {
    /// Reconcile every this many seconds (`None`: on demand only).
    pub reconcile_interval_seconds: Option<i64>,
    /// When the last reconciliation started.
    pub last_reconciled: Option<DateTime<Utc>>,
    /// What happens to groups no longer assigned.
    pub group_deprovision: GroupDeprovision,
}

/// The side state of a pair (default when it has none).
pub(crate) fn pair_extra(conn: &mut AnyConnection, app: i64, pk: i64) -> Result<PairExtra> {
    use engine_pair_state as e;
    let row: Option<(Option<NaiveDateTime>, Option<String>)> = e::table
        .filter(e::application_id.eq(app))
        .filter(e::resource_pk.eq(pk))
        .select((e::delete_after, e::ledger))
        .first(conn)
        .optional()?;
    Ok(row
        .map(|(delete_after, ledger)| PairExtra {
            delete_after: delete_after.map(from_db_time),
            ledger,
        })
        .unwrap_or_default())
}

/// Stores the side state of a pair (inside the caller's transaction).
pub(crate) fn save_pair_extra(
    conn: &mut AnyConnection,
    app: i64,
    pk: i64,
    extra: &PairExtra,
) -> Result<()> {
    use engine_pair_state as e;
    let delete_after = extra.delete_after.map(to_db_time);
    let insert = diesel::insert_into(e::table)
        .values((
            e::application_id.eq(app),
            e::resource_pk.eq(pk),
            e::delete_after.eq(delete_after),
            e::ledger.eq(extra.ledger.as_deref()),
        ))
        .on_conflict((e::application_id, e::resource_pk))
        .do_update()
        .set((
            e::delete_after.eq(delete_after),
            e::ledger.eq(extra.ledger.as_deref()),
        ));
    match conn {
        AnyConnection::Sqlite(c) => insert.execute(c)?,
        AnyConnection::Pg(c) => insert.execute(c)?,
    };
    Ok(())
}

/// Whether a member's account counts as held downstream for the groups
/// that list it: provisioned, or still there while an attempt is pending
/// or being retried (a transient failure must not drop it from its groups).
pub(crate) fn counts_as_member(status: super::PairStatus) -> bool {
    use super::PairStatus as S;
    matches!(status, S::Provisioned | S::Pending | S::Failed)
}

/// The remote ids, in this application, of the group's direct members
/// that are held there ([`counts_as_member`]; sorted).
pub(crate) fn member_remote_ids(
    conn: &mut AnyConnection,
    app: i64,
    group_pk: i64,
) -> Result<Vec<String>> {
    use provisioning_state as ps;
    let members: Vec<i64> = memberships::table
        .filter(memberships::group_pk.eq(group_pk))
        .select(memberships::member_pk)
        .load(conn)?;
    let mut ids = Vec::with_capacity(members.len());
    // Chunked: a parameter list per statement stays small on both backends.
    for chunk in members.chunks(500) {
        ids.extend(
            ps::table
                .filter(ps::application_id.eq(app))
                .filter(ps::resource_pk.eq_any(chunk))
                .filter(ps::resource_type.eq("User"))
                .filter(
                    ps::status.eq_any(
                        super::PairStatus::ALL
                            .into_iter()
                            .filter(|s| counts_as_member(*s))
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>(),
                    ),
                )
                .filter(ps::remote_id.is_not_null())
                .select(ps::remote_id.assume_not_null())
                .load::<String>(conn)?,
        );
    }
    ids.sort();
    Ok(ids)
}

/// Marks due the pairs, in this application, of the groups `member_pk` is
/// a direct member of: their downstream membership names its remote id,
/// which just changed.
pub(crate) fn mark_groups_of_member_due(
    conn: &mut AnyConnection,
    app: i64,
    member_pk: i64,
    at: NaiveDateTime,
) -> Result<usize> {
    use provisioning_state as ps;
    let groups: Vec<i64> = memberships::table
        .filter(memberships::member_pk.eq(member_pk))
        .select(memberships::group_pk)
        .load(conn)?;
    if groups.is_empty() {
        return Ok(0);
    }
    Ok(diesel::update(
        ps::table
            .filter(ps::application_id.eq(app))
            .filter(ps::resource_pk.eq_any(&groups)),
    )
    .set((
        ps::due.eq(true),
        ps::due_since.eq(Some(at)),
        ps::attempts.eq(0),
        ps::next_attempt_at.eq(None::<NaiveDateTime>),
        ps::updated.eq(at),
    ))
    .execute(conn)?)
}

/// The engine settings of an application (defaults when none are stored).
pub(crate) fn engine_settings(conn: &mut AnyConnection, app: i64) -> Result<EngineSettings> {
    use engine_app_settings as s;
    let row: Option<(Option<i64>, Option<NaiveDateTime>, String)> = s::table
        .filter(s::application_id.eq(app))
        .select((
            s::reconcile_interval_seconds,
            s::last_reconciled,
            s::group_deprovision,
        ))
        .first(conn)
        .optional()?;
    Ok(row
        .map(|(interval, last, group)| EngineSettings {
            reconcile_interval_seconds: interval,
            last_reconciled: last.map(from_db_time),
            group_deprovision: GroupDeprovision::parse(&group).unwrap_or_default(),
        })
        .unwrap_or_default())
}

/// Stores the settings an administrator sets (the reconcile interval and
/// the group policy), keeping `last_reconciled`.
pub(crate) fn save_engine_settings(
    conn: &mut AnyConnection,
    app: i64,
    interval: Option<i64>,
    group: GroupDeprovision,
) -> Result<()> {
    use engine_app_settings as s;
    let insert = diesel::insert_into(s::table)
        .values((
            s::application_id.eq(app),
            s::reconcile_interval_seconds.eq(interval),
            s::group_deprovision.eq(group.as_str()),
        ))
        .on_conflict(s::application_id)
        .do_update()
        .set((
            s::reconcile_interval_seconds.eq(interval),
            s::group_deprovision.eq(group.as_str()),
        ));
    match conn {
        AnyConnection::Sqlite(c) => insert.execute(c)?,
        AnyConnection::Pg(c) => insert.execute(c)?,
    };
    Ok(())
}
