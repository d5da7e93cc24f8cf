//! Storage of reconciliation: matching downstream accounts to our pairs a
//! page at a time, repairs (mark due, level-triggered), the runs and what
//! they found, and the reconcile schedule.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::provisioning::{ClaimedPair, PairState};
use super::{Store, TenantId, from_db_time, now, to_db_time};
use crate::db::AnyConnection;
use crate::db::schema::{
    attr_index, engine_app_settings, engine_pair_state, provisioning_state, reconcile_findings,
    reconcile_runs,
};
use crate::error::Result;

/// A downstream account as read, reduced to what matching needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteKey {
    /// `User` or `Group`.
    pub resource_type: String,
    /// Its id downstream.
    pub remote_id: String,
    /// Its `externalId` (ours is our resource id).
    pub external_id: Option<String>,
    /// `userName` (users) or `displayName` (groups).
    pub name: Option<String>,
}

/// One finding of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Its id (0 before it is stored).
    pub id: i64,
    /// `drift`, `orphan` or `missing`.
    pub kind: String,
    /// `User` or `Group`.
    pub resource_type: String,
    /// Our SCIM id (drift, missing).
    pub resource_id: Option<String>,
    /// The id downstream.
    pub remote_id: Option<String>,
    /// userName or displayName.
    pub name: Option<String>,
    /// What differs (drift), as text.
    pub detail: Option<String>,
}

/// The counts and state of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunCounts {
    /// Users read downstream.
    pub remote_users: i64,
    /// Groups read downstream.
    pub remote_groups: i64,
    /// Accounts matched to a pair.
    pub matched: i64,
    /// Matched accounts whose managed attributes differ from what we want.
    pub drifted: i64,
    /// Accounts unknown here.
    pub orphans: i64,
    /// Pairs we believe provisioned that the target does not have.
    pub missing: i64,
    /// Pairs marked due to repair drift or absence.
    pub repaired: i64,
}

/// A stored run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcileRun {
    /// Its id.
    pub id: i64,
    /// The application.
    pub application_id: i64,
    /// `manual` or `scheduled`.
    pub trigger: String,
    /// Whether drift was repaired.
    pub repair: bool,
    /// `running`, `succeeded` or `failed`.
    pub status: String,
    /// When it started.
    pub started: DateTime<Utc>,
    /// When it ended.
    pub finished: Option<DateTime<Utc>>,
    /// What it counted.
    pub counts: RunCounts,
    /// Why it failed.
    pub error: Option<String>,
}

/// Reconciliation storage.
pub trait ReconcileStore {
    /// Starts a run; its id.
    fn start_run(
        &self,
        tenant: TenantId,
        application_id: i64,
        trigger: &str,
        repair: bool,
    ) -> Result<i64>;
    /// Finds the pair of each downstream account (by remote id, then
    /// externalId = our id, then userName/displayName), with its inputs,
    /// and marks the pairs found as seen by `run_id`.
    fn match_page(
        &self,
        tenant: TenantId,
        application_id: i64,
        run_id: i64,
        keys: &[RemoteKey],
    ) -> Result<Vec<Option<ClaimedPair>>>;
    /// Repairs a pair: what the target holds becomes its snapshot, its
    /// remote id the one found, and it is marked due, so the engine sends
    /// what differs. One transaction.
    fn repair_pair(
        &self,
        state: &PairState,
        remote_id: &str,
        held: Option<&str>,
        ledger: Option<&str>,
    ) -> Result<()>;
    /// Stores findings of a run.
    fn add_findings(&self, run_id: i64, application_id: i64, findings: &[Finding]) -> Result<()>;
    /// The pairs of the application believed provisioned (remote id set)
    /// that run `run_id` did not see: how many, and the first `limit`.
    /// With `repair`, they are marked due for a create (remote id cleared).
    fn missing_pairs(
        &self,
        application_id: i64,
        run_id: i64,
        repair: bool,
        limit: i64,
    ) -> Result<(i64, Vec<Finding>)>;
    /// Ends a run.
    fn finish_run(&self, run_id: i64, counts: &RunCounts, error: Option<&str>) -> Result<()>;
    /// The runs of an application, newest first.
    fn list_runs(
        &self,
        tenant: TenantId,
        application_id: i64,
        limit: i64,
    ) -> Result<Vec<ReconcileRun>>;
    /// One run.
    fn get_run(
        &self,
        tenant: TenantId,
        application_id: i64,
        run_id: i64,
    ) -> Result<Option<ReconcileRun>>;
    /// Findings of a run of the kind given (all kinds: `None`), by id,
    /// after `after` (paging), at most `limit`.
    fn findings(
        &self,
        run_id: i64,
        kind: Option<&str>,
        after: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Finding>>;
    /// The latest finished run of an application.
    fn latest_run(&self, tenant: TenantId, application_id: i64) -> Result<Option<ReconcileRun>>;
    /// Claims the applications whose scheduled reconciliation is due (at
    /// most one claimer each): `(tenant, application)`.
    fn claim_scheduled(&self) -> Result<Vec<(TenantId, i64)>>;
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = reconcile_runs)]
struct RunRow {
    id: i64,
    application_id: i64,
    trigger_kind: String,
    repair: bool,
    status: String,
    started: NaiveDateTime,
    finished: Option<NaiveDateTime>,
    remote_users: i64,
    remote_groups: i64,
    matched: i64,
    drifted: i64,
    orphans: i64,
    missing: i64,
    repaired: i64,
    error: Option<String>,
}

impl From<RunRow> for ReconcileRun {
    fn from(r: RunRow) -> Self {
        let RunRow {
            id,
            application_id,
            trigger_kind,
            repair,
            status,
            started,
            finished,
            remote_users,
            remote_groups,
            matched,
            drifted,
            orphans,
            missing,
            repaired,
            error,
        } = r;
        ReconcileRun {
            id,
            application_id,
            trigger: trigger_kind,
            repair,
            status,
            started: from_db_time(started),
            finished: finished.map(from_db_time),
            counts: RunCounts {
                remote_users,
                remote_groups,
                matched,
                drifted,
                orphans,
                missing,
                repaired,
            },
            error,
        }
    }
}

type FindingRow = (
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn finding_from(r: FindingRow) -> Finding {
    let (id, kind, resource_type, resource_id, remote_id, name, detail) = r;
    Finding {
        id,
        kind,
        resource_type,
        resource_id,
        remote_id,
        name,
        detail,
    }
}

/// The pair keys matching each of `keys` (by remote id, then externalId =
/// our id, then userName/displayName), a few queries per page rather than
/// per account.
fn find_pairs(
    conn: &mut AnyConnection,
    tenant: TenantId,
    app: i64,
    keys: &[RemoteKey],
) -> Result<Vec<Option<i64>>> {
    use std::collections::{HashMap, HashSet};

    use provisioning_state as ps;
    let types: Vec<&str> = {
        let set: HashSet<&str> = keys.iter().map(|k| k.resource_type.as_str()).collect();
        set.into_iter().collect()
    };
    let remote_ids: Vec<&str> = keys.iter().map(|k| k.remote_id.as_str()).collect();
    let by_remote: HashMap<(String, String), i64> = ps::table
        .filter(ps::application_id.eq(app))
        .filter(ps::resource_type.eq_any(&types))
        .filter(ps::remote_id.eq_any(&remote_ids))
        .select((
            ps::resource_type,
            ps::remote_id.assume_not_null(),
            ps::resource_pk,
        ))
        .load::<(String, String, i64)>(conn)?
        .into_iter()
        .map(|(t, r, pk)| ((t, r), pk))
        .collect();
    let externals: Vec<&str> = keys
        .iter()
        .filter_map(|k| k.external_id.as_deref())
        .collect();
    let by_external: HashMap<(String, String), i64> = if externals.is_empty() {
        HashMap::new()
    } else {
        ps::table
            .filter(ps::application_id.eq(app))
            .filter(ps::resource_type.eq_any(&types))
            .filter(ps::resource_id.eq_any(&externals))
            .select((ps::resource_type, ps::resource_id, ps::resource_pk))
            .load::<(String, String, i64)>(conn)?
            .into_iter()
            .map(|(t, r, pk)| ((t, r), pk))
            .collect()
    };
    // By name, through the attribute index: (type, folded name) -> our
    // resources of that name (two or more: ambiguous, no match).
    let mut by_name: HashMap<(String, String), Vec<i64>> = HashMap::new();
    for t in &types {
        let attr = if *t == "Group" {
            "displayname"
        } else {
            "username"
        };
        let names: Vec<String> = keys
            .iter()
            .filter(|k| k.resource_type == *t)
            .filter_map(|k| k.name.as_deref().map(super::fold))
            .collect();
        if names.is_empty() {
            continue;
        }
        let rows: Vec<(Option<String>, i64)> = attr_index::table
            .filter(attr_index::tenant_id.eq(tenant.0))
            .filter(attr_index::resource_type.eq(*t))
            .filter(attr_index::attr.eq(attr))
            .filter(attr_index::text_folded.eq_any(&names))
            .select((attr_index::text_folded, attr_index::resource_pk))
            .load(conn)?;
        for (name, pk) in rows {
            if let Some(name) = name {
                by_name.entry(((*t).to_owned(), name)).or_default().push(pk);
            }
        }
    }
    let named: Vec<i64> = by_name
        .values()
        .filter(|pks| pks.len() == 1)
        .map(|pks| pks[0])
        .collect();
    let paired: HashSet<i64> = if named.is_empty() {
        HashSet::new()
    } else {
        ps::table
            .filter(ps::application_id.eq(app))
            .filter(ps::resource_pk.eq_any(&named))
            .select(ps::resource_pk)
            .load::<i64>(conn)?
            .into_iter()
            .collect()
    };
    Ok(keys
        .iter()
        .map(|k| {
            let t = k.resource_type.clone();
            by_remote
                .get(&(t.clone(), k.remote_id.clone()))
                .or_else(|| {
                    k.external_id
                        .as_ref()
                        .and_then(|e| by_external.get(&(t.clone(), e.clone())))
                })
                .copied()
                .or_else(|| {
                    let name = super::fold(k.name.as_deref()?);
                    match by_name.get(&(t, name))?.as_slice() {
                        [pk] if paired.contains(pk) => Some(*pk),
                        _ => None,
                    }
                })
        })
        .collect())
}

fn mark_seen(conn: &mut AnyConnection, app: i64, pk: i64, run: i64) -> Result<()> {
    use engine_pair_state as e;
    let insert = diesel::insert_into(e::table)
        .values((
            e::application_id.eq(app),
            e::resource_pk.eq(pk),
            e::seen_run.eq(Some(run)),
        ))
        .on_conflict((e::application_id, e::resource_pk))
        .do_update()
        .set(e::seen_run.eq(Some(run)));
    match conn {
        AnyConnection::Sqlite(c) => insert.execute(c)?,
        AnyConnection::Pg(c) => insert.execute(c)?,
    };
    Ok(())
}

impl ReconcileStore for Store {
    fn start_run(
        &self,
        tenant: TenantId,
        application_id: i64,
        trigger: &str,
        repair: bool,
    ) -> Result<i64> {
        use reconcile_runs as r;
        Ok(diesel::insert_into(r::table)
            .values((
                r::tenant_id.eq(tenant.0),
                r::application_id.eq(application_id),
                r::trigger_kind.eq(trigger),
                r::repair.eq(repair),
                r::status.eq("running"),
                r::started.eq(to_db_time(now())),
            ))
            .returning(r::id)
            .get_result(&mut *self.conn()?)?)
    }

    fn match_page(
        &self,
        tenant: TenantId,
        application_id: i64,
        run_id: i64,
        keys: &[RemoteKey],
    ) -> Result<Vec<Option<ClaimedPair>>> {
        use provisioning_state as ps;
        self.write(|conn| -> Result<Vec<Option<ClaimedPair>>> {
            let Some(app) = super::applications::app_by_id(conn, application_id)?
                .filter(|a| a.tenant_id == tenant)
            else {
                return Ok(Vec::new());
            };
            let mut out = Vec::with_capacity(keys.len());
            for found in find_pairs(conn, tenant, application_id, keys)? {
                let Some(pk) = found else {
                    out.push(None);
                    continue;
                };
                mark_seen(conn, application_id, pk, run_id)?;
                let state: PairState = ps::table
                    .filter(ps::application_id.eq(application_id))
                    .filter(ps::resource_pk.eq(pk))
                    .select(super::provisioning::StateRow::as_select())
                    .first::<super::provisioning::StateRow>(conn)?
                    .into();
                out.push(Some(super::provisioning::inputs(conn, state, app.clone())?));
            }
            Ok(out)
        })
    }

    fn repair_pair(
        &self,
        state: &PairState,
        remote_id: &str,
        held: Option<&str>,
        ledger: Option<&str>,
    ) -> Result<()> {
        use provisioning_state as ps;
        let at = to_db_time(now());
        self.write(|conn| -> Result<()> {
            diesel::update(
                ps::table
                    .filter(ps::application_id.eq(state.application_id))
                    .filter(ps::resource_pk.eq(state.resource_pk)),
            )
            .set((
                ps::remote_id.eq(Some(remote_id)),
                ps::last_sent.eq(held),
                ps::last_sent_hash.eq(held.map(crate::tokens::hash_secret)),
                ps::due.eq(true),
                ps::due_since.eq(Some(at)),
                ps::attempts.eq(0),
                ps::next_attempt_at.eq(None::<NaiveDateTime>),
                ps::updated.eq(at),
            ))
            .execute(conn)?;
            if let Some(ledger) = ledger {
                super::engine_state::save_pair_extra(
                    conn,
                    state.application_id,
                    state.resource_pk,
                    &super::engine_state::PairExtra {
                        delete_after: None,
                        ledger: Some(ledger.to_owned()),
                    },
                )?;
            }
            Ok(())
        })
    }

    fn add_findings(&self, run_id: i64, application_id: i64, findings: &[Finding]) -> Result<()> {
        use reconcile_findings as f;
        if findings.is_empty() {
            return Ok(());
        }
        self.write(|conn| -> Result<()> {
            for x in findings {
                diesel::insert_into(f::table)
                    .values((
                        f::run_id.eq(run_id),
                        f::application_id.eq(application_id),
                        f::kind.eq(&x.kind),
                        f::resource_type.eq(&x.resource_type),
                        f::resource_id.eq(x.resource_id.as_deref()),
                        f::remote_id.eq(x.remote_id.as_deref()),
                        f::name.eq(x.name.as_deref()),
                        f::detail.eq(x.detail.as_deref()),
                    ))
                    .execute(conn)?;
            }
            Ok(())
        })
    }

    fn missing_pairs(
        &self,
        application_id: i64,
        run_id: i64,
        repair: bool,
        limit: i64,
    ) -> Result<(i64, Vec<Finding>)> {
        use engine_pair_state as e;
        use provisioning_state as ps;
        let at = to_db_time(now());
        self.write(|conn| -> Result<(i64, Vec<Finding>)> {
            let seen = e::table
                .filter(e::application_id.eq(application_id))
                .filter(e::seen_run.eq(run_id))
                .select(e::resource_pk);
            let base = || {
                ps::table
                    .filter(ps::application_id.eq(application_id))
                    .filter(ps::status.eq(super::PairStatus::Provisioned.as_str()))
                    .filter(ps::remote_id.is_not_null())
            };
            let count: i64 = base()
                .filter(ps::resource_pk.ne_all(seen))
                .count()
                .get_result(conn)?;
            let rows: Vec<(i64, String, String, Option<String>)> = base()
                .filter(ps::resource_pk.ne_all(seen))
                .order(ps::resource_pk.asc())
                .limit(limit)
                .select((
                    ps::resource_pk,
                    ps::resource_type,
                    ps::resource_id,
                    ps::remote_id,
                ))
                .load(conn)?;
            if repair {
                // Gone downstream: forget the remote id and snapshot, so
                // the engine creates (or adopts) it again.
                diesel::update(base().filter(ps::resource_pk.ne_all(seen)))
                    .set((
                        ps::remote_id.eq(None::<String>),
                        ps::last_sent.eq(None::<String>),
                        ps::last_sent_hash.eq(None::<String>),
                        ps::status.eq(super::PairStatus::Pending.as_str()),
                        ps::due.eq(true),
                        ps::due_since.eq(Some(at)),
                        ps::attempts.eq(0),
                        ps::next_attempt_at.eq(None::<NaiveDateTime>),
                        ps::updated.eq(at),
                    ))
                    .execute(conn)?;
            }
            let findings = rows
                .into_iter()
                .map(|(_, resource_type, resource_id, remote_id)| Finding {
                    id: 0,
                    kind: "missing".into(),
                    resource_type,
                    resource_id: Some(resource_id),
                    remote_id,
                    name: None,
                    detail: Some("provisioned here, absent downstream".into()),
                })
                .collect();
            Ok((count, findings))
        })
    }

    fn finish_run(&self, run_id: i64, c: &RunCounts, error: Option<&str>) -> Result<()> {
        use reconcile_runs as r;
        diesel::update(r::table.filter(r::id.eq(run_id)))
            .set((
                r::status.eq(if error.is_some() {
                    "failed"
                } else {
                    "succeeded"
                }),
                r::finished.eq(Some(to_db_time(now()))),
                r::remote_users.eq(c.remote_users),
                r::remote_groups.eq(c.remote_groups),
                r::matched.eq(c.matched),
                r::drifted.eq(c.drifted),
                r::orphans.eq(c.orphans),
                r::missing.eq(c.missing),
                r::repaired.eq(c.repaired),
                r::error.eq(error),
            ))
            .execute(&mut *self.conn()?)?;
        Ok(())
    }

    fn list_runs(
        &self,
        tenant: TenantId,
        application_id: i64,
        limit: i64,
    ) -> Result<Vec<ReconcileRun>> {
        use reconcile_runs as r;
        let rows: Vec<RunRow> = r::table
            .filter(r::tenant_id.eq(tenant.0))
            .filter(r::application_id.eq(application_id))
            .order(r::id.desc())
            .limit(limit)
            .select(RunRow::as_select())
            .load(&mut *self.conn()?)?;
        Ok(rows.into_iter().map(ReconcileRun::from).collect())
    }

    fn get_run(
        &self,
        tenant: TenantId,
        application_id: i64,
        run_id: i64,
    ) -> Result<Option<ReconcileRun>> {
        use reconcile_runs as r;
        Ok(r::table
            .filter(r::tenant_id.eq(tenant.0))
            .filter(r::application_id.eq(application_id))
            .filter(r::id.eq(run_id))
            .select(RunRow::as_select())
            .first(&mut *self.conn()?)
            .optional()?
            .map(ReconcileRun::from))
    }

    fn findings(
        &self,
        run_id: i64,
        kind: Option<&str>,
        after: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Finding>> {
        use reconcile_findings as f;
        let mut q = f::table.filter(f::run_id.eq(run_id)).into_boxed();
        if let Some(kind) = kind {
            q = q.filter(f::kind.eq(kind.to_owned()));
        }
        if let Some(after) = after {
            q = q.filter(f::id.gt(after));
        }
        let rows: Vec<FindingRow> = q
            .order(f::id.asc())
            .limit(limit)
            .select((
                f::id,
                f::kind,
                f::resource_type,
                f::resource_id,
                f::remote_id,
                f::name,
                f::detail,
            ))
            .load(&mut *self.conn()?)?;
        Ok(rows.into_iter().map(finding_from).collect())
    }

    fn latest_run(&self, tenant: TenantId, application_id: i64) -> Result<Option<ReconcileRun>> {
        use reconcile_runs as r;
        Ok(r::table
            .filter(r::tenant_id.eq(tenant.0))
            .filter(r::application_id.eq(application_id))
            .filter(r::status.eq("succeeded"))
            .order(r::id.desc())
            .select(RunRow::as_select())
            .first(&mut *self.conn()?)
            .optional()?
            .map(ReconcileRun::from))
    }

    fn claim_scheduled(&self) -> Result<Vec<(TenantId, i64)>> {
        use engine_app_settings as s;
        let at = now();
        let mut conn = self.conn()?;
        let candidates: Vec<(i64, i64, Option<NaiveDateTime>)> = s::table
            .filter(s::reconcile_interval_seconds.is_not_null())
            .select((
                s::application_id,
                s::reconcile_interval_seconds.assume_not_null(),
                s::last_reconciled,
            ))
            .load(&mut *conn)?;
        let mut claimed = Vec::new();
        for (app, interval, last) in candidates {
            let due = last.is_none_or(|l| {
                from_db_time(l) + chrono::TimeDelta::seconds(interval.clamp(0, 31_536_000)) <= at
            });
            if !due {
                continue;
            }
            // Compare-and-set: one claimer per schedule slot.
            let this = s::table.filter(s::application_id.eq(app));
            let n = match last {
                Some(l) => diesel::update(this.filter(s::last_reconciled.eq(l)))
                    .set(s::last_reconciled.eq(Some(to_db_time(at))))
                    .execute(&mut *conn)?,
                None => diesel::update(this.filter(s::last_reconciled.is_null()))
                    .set(s::last_reconciled.eq(Some(to_db_time(at))))
                    .execute(&mut *conn)?,
            };
            if n == 1
                && let Some(a) = super::applications::app_by_id(&mut conn, app)?
                && a.fields.enabled
            {
                claimed.push((a.tenant_id, app));
            }
        }
        Ok(claimed)
    }
}
