//! Access reviews: [`ReviewStore`] for [`Store`].
//!
//! A campaign covers an application, a group's direct members, or every
//! user. At its start one item is written per (user, access), where an
//! access is a direct assignment of the user to an application. Reviewers
//! decide keep or revoke (revoke needs a comment); a revoke deletes the
//! assignment in the decision's transaction, which marks the pair due, so
//! the engine deprovisions the account downstream. At the due date the
//! undecided items take the campaign's default ([`ReviewStore::close_due`],
//! run by a scheduler loop; the state is in the database, so a restart
//! only delays it). Every change is in the audit log.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use diesel::prelude::*;
use scim_core::ErrorKind;
use serde_json::{Value, json};

use super::audit::{self, NewAuditEntry};
use super::{Store, TenantId, from_db_time, now, to_db_time};
use crate::db::AnyConnection;
use crate::db::schema::{
    applications, assignments, memberships, resources, review_campaigns, review_items,
};
use crate::error::{Error, Result};

/// The actor of what the scheduler does.
pub const SCHEDULER_ACTOR: &str = "system:reviews";

/// Rows per multi-row INSERT of items.
const ITEM_INSERT_CHUNK: usize = 200;

/// Keep or revoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The access stays.
    Keep,
    /// The access is removed.
    Revoke,
}

impl Decision {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Keep => "keep",
            Decision::Revoke => "revoke",
        }
    }

    /// The decision for a name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "keep" => Some(Decision::Keep),
            "revoke" => Some(Decision::Revoke),
            _ => None,
        }
    }
}

/// What a campaign covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReviewScope {
    /// The users directly assigned to this application.
    Application(i64),
    /// The direct members (users) of the group with this SCIM id.
    Group(String),
    /// Every user with an assignment.
    All,
}

impl ReviewScope {
    fn parts(&self) -> (&'static str, Option<String>) {
        match self {
            ReviewScope::Application(id) => ("application", Some(id.to_string())),
            ReviewScope::Group(id) => ("group", Some(id.clone())),
            ReviewScope::All => ("all", None),
        }
    }

    fn from_parts(kind: &str, id: Option<String>) -> Self {
        match (kind, id) {
            ("application", Some(id)) => id
                .parse()
                .map(ReviewScope::Application)
                .unwrap_or(ReviewScope::All),
            ("group", Some(id)) => ReviewScope::Group(id),
            _ => ReviewScope::All,
        }
    }

    /// The scope as JSON: `{"type": "application", "id": 1}`.
    pub fn to_json(&self) -> Value {
        match self {
            ReviewScope::Application(id) => json!({"type": "application", "id": id}),
            ReviewScope::Group(id) => json!({"type": "group", "id": id}),
            ReviewScope::All => json!({"type": "all"}),
        }
    }
}

/// A campaign to start.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCampaign {
    /// A name for people.
    pub name: String,
    /// What it covers.
    pub scope: ReviewScope,
    /// Who may decide: `token:<id>` or `user:<SCIM id>` (a token bound to
    /// that user). Empty: any admin token.
    pub reviewers: Vec<String>,
    /// When undecided items take the default.
    pub due_at: DateTime<Utc>,
    /// What undecided items become at the due date.
    pub default_decision: Decision,
}

/// How far a campaign is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Items.
    pub total: i64,
    /// Items decided keep.
    pub kept: i64,
    /// Items decided revoke.
    pub revoked: i64,
    /// Items not decided yet.
    pub pending: i64,
}

/// A campaign as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Campaign {
    /// Its id.
    pub id: i64,
    /// Its settings.
    pub spec: NewCampaign,
    /// `open` or `closed`.
    pub status: String,
    /// Who started it.
    pub created_by: String,
    /// When.
    pub created: DateTime<Utc>,
    /// When it closed.
    pub closed_at: Option<DateTime<Utc>>,
    /// Its items' decisions.
    pub progress: Progress,
}

impl Campaign {
    /// The API form.
    pub fn to_json(&self) -> Value {
        let Campaign {
            id,
            spec,
            status,
            created_by,
            created,
            closed_at,
            progress,
        } = self;
        json!({
            "id": id,
            "name": spec.name,
            "scope": spec.scope.to_json(),
            "reviewers": spec.reviewers,
            "dueAt": rfc3339(spec.due_at),
            "defaultDecision": spec.default_decision.as_str(),
            "status": status,
            "createdBy": created_by,
            "created": rfc3339(*created),
            "closedAt": closed_at.map(rfc3339),
            "progress": {
                "total": progress.total,
                "kept": progress.kept,
                "revoked": progress.revoked,
                "pending": progress.pending,
            },
        })
    }
}

/// One (user, access) to review.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = review_items)]
pub struct ReviewItem {
    /// Its id.
    pub id: i64,
    /// The campaign.
    pub campaign_id: i64,
    /// The tenant.
    pub tenant_id: i64,
    /// The user's SCIM id.
    pub user_id: String,
    /// The user's userName at campaign start.
    pub user_name: Option<String>,
    /// The application.
    pub application_id: i64,
    /// Its name at campaign start.
    pub application_name: String,
    /// The assignment giving the access.
    pub assignment_id: i64,
    /// `keep`, `revoke`, or None while pending.
    pub decision: Option<String>,
    /// Why.
    pub comment: Option<String>,
    /// Who decided (`system:reviews` for the default at the due date).
    pub decided_by: Option<String>,
    /// When.
    pub decided_at: Option<NaiveDateTime>,
    /// What the decision did: `kept`, `revoked`, `excluded` (access a
    /// rule grants: an exclusion now holds it off), `already-removed`.
    pub outcome: Option<String>,
}

impl ReviewItem {
    /// The API form.
    pub fn to_json(&self) -> Value {
        let ReviewItem {
            id,
            campaign_id,
            tenant_id: _,
            user_id,
            user_name,
            application_id,
            application_name,
            assignment_id,
            decision,
            comment,
            decided_by,
            decided_at,
            outcome,
        } = self;
        json!({
            "id": id,
            "campaignId": campaign_id,
            "userId": user_id,
            "userName": user_name,
            "applicationId": application_id,
            "applicationName": application_name,
            "assignmentId": assignment_id,
            "decision": decision,
            "comment": comment,
            "decidedBy": decided_by,
            "decidedAt": decided_at.map(|t| rfc3339(from_db_time(t))),
            "outcome": outcome,
        })
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Access reviews.
pub trait ReviewStore {
    /// Starts a campaign: writes it and its items in one transaction.
    fn create_campaign(
        &self,
        tenant: TenantId,
        actor: &str,
        spec: &NewCampaign,
    ) -> Result<Campaign>;
    /// The tenant's campaigns, newest first.
    fn list_campaigns(&self, tenant: TenantId) -> Result<Vec<Campaign>>;
    /// One campaign.
    fn get_campaign(&self, tenant: TenantId, id: i64) -> Result<Option<Campaign>>;
    /// A campaign's items by id (only the undecided ones when `pending`).
    fn campaign_items(&self, tenant: TenantId, id: i64, pending: bool) -> Result<Vec<ReviewItem>>;
    /// Records a decision on an open campaign's undecided item; a revoke
    /// deletes the assignment in the same transaction. Deciding twice, or
    /// on a closed campaign, is a 409.
    fn decide(
        &self,
        tenant: TenantId,
        actor: &str,
        campaign: i64,
        item: i64,
        decision: Decision,
        comment: Option<&str>,
    ) -> Result<ReviewItem>;
    /// Closes a campaign now: undecided items take its default. A closed
    /// campaign is a 409.
    fn close_campaign(&self, tenant: TenantId, actor: &str, id: i64) -> Result<Campaign>;
    /// Closes every open campaign (of any tenant) due at or before `at`;
    /// returns how many.
    fn close_due(&self, at: DateTime<Utc>) -> Result<usize>;
}

fn invalid(detail: String) -> Error {
    scim_core::Error::invalid_value(detail).into()
}

fn conflict(detail: String) -> Error {
    scim_core::Error::new(ErrorKind::Conflict, detail).into()
}

fn campaign_not_found(id: i64) -> Error {
    scim_core::Error::not_found(format!("no review campaign with id {id}")).into()
}

type CampaignRow = (
    i64,
    String,
    String,
    Option<String>,
    String,
    NaiveDateTime,
    String,
    String,
    String,
    NaiveDateTime,
    Option<NaiveDateTime>,
);

fn campaign_columns() -> (
    review_campaigns::id,
    review_campaigns::name,
    review_campaigns::scope_type,
    review_campaigns::scope_id,
    review_campaigns::reviewers,
    review_campaigns::due_at,
    review_campaigns::default_decision,
    review_campaigns::status,
    review_campaigns::created_by,
    review_campaigns::created,
    review_campaigns::closed_at,
) {
    (
        review_campaigns::id,
        review_campaigns::name,
        review_campaigns::scope_type,
        review_campaigns::scope_id,
        review_campaigns::reviewers,
        review_campaigns::due_at,
        review_campaigns::default_decision,
        review_campaigns::status,
        review_campaigns::created_by,
        review_campaigns::created,
        review_campaigns::closed_at,
    )
}

fn progress(conn: &mut AnyConnection, campaign: i64) -> Result<Progress> {
    let rows: Vec<(Option<String>, i64)> = review_items::table
        .filter(review_items::campaign_id.eq(campaign))
        .group_by(review_items::decision)
        .select((review_items::decision, diesel::dsl::count_star()))
        .load(conn)?;
    let mut p = Progress::default();
    for (decision, n) in rows {
        p.total += n;
        match decision.as_deref() {
            Some("keep") => p.kept += n,
            Some("revoke") => p.revoked += n,
            _ => p.pending += n,
        }
    }
    Ok(p)
}

fn load_campaign(conn: &mut AnyConnection, tenant: TenantId, id: i64) -> Result<Option<Campaign>> {
    let row: Option<CampaignRow> = review_campaigns::table
        .filter(review_campaigns::tenant_id.eq(tenant.0))
        .filter(review_campaigns::id.eq(id))
        .select(campaign_columns())
        .first(conn)
        .optional()?;
    row.map(|r| campaign_from(conn, r)).transpose()
}

fn campaign_from(conn: &mut AnyConnection, row: CampaignRow) -> Result<Campaign> {
    let (
        id,
        name,
        scope_type,
        scope_id,
        reviewers,
        due_at,
        default_decision,
        status,
        created_by,
        created,
        closed_at,
    ) = row;
    Ok(Campaign {
        id,
        spec: NewCampaign {
            name,
            scope: ReviewScope::from_parts(&scope_type, scope_id),
            reviewers: serde_json::from_str(&reviewers).unwrap_or_default(),
            due_at: from_db_time(due_at),
            default_decision: Decision::parse(&default_decision).unwrap_or(Decision::Keep),
        },
        status,
        created_by,
        created: from_db_time(created),
        closed_at: closed_at.map(from_db_time),
        progress: progress(conn, id)?,
    })
}

/// (assignment id, user pk, user id, userName, application id, name)
type AccessRow = (i64, i64, String, Option<String>, i64, String);

/// The direct user assignments a scope covers, by assignment id.
fn accesses(
    conn: &mut AnyConnection,
    tenant: TenantId,
    scope: &ReviewScope,
) -> Result<Vec<AccessRow>> {
    let mut query = assignments::table
        .inner_join(resources::table)
        .inner_join(applications::table)
        .filter(assignments::tenant_id.eq(tenant.0))
        .filter(assignments::resource_type.eq("User"))
        .into_boxed();
    match scope {
        ReviewScope::Application(app) => {
            query = query.filter(assignments::application_id.eq(*app));
        }
        ReviewScope::Group(group) => {
            let group_pk: i64 = resources::table
                .filter(resources::tenant_id.eq(tenant.0))
                .filter(resources::resource_type.eq("Group"))
                .filter(resources::id.eq(group))
                .select(resources::pk)
                .first(conn)
                .optional()?
                .ok_or_else(|| invalid(format!("no group with id '{group}'")))?;
            let members = memberships::table
                .filter(memberships::group_pk.eq(group_pk))
                .filter(memberships::member_type.eq("User"))
                .select(memberships::member_pk);
            query = query.filter(assignments::resource_pk.eq_any(members));
        }
        ReviewScope::All => {}
    }
    if let ReviewScope::Application(app) = scope {
        let exists: Option<i64> = applications::table
            .filter(applications::tenant_id.eq(tenant.0))
            .filter(applications::id.eq(*app))
            .select(applications::id)
            .first(conn)
            .optional()?;
        if exists.is_none() {
            return Err(invalid(format!("no application with id {app}")));
        }
    }
    Ok(query
        .order(assignments::id.asc())
        .select((
            assignments::id,
            assignments::resource_pk,
            resources::id,
            resources::document,
            applications::id,
            applications::name,
        ))
        .load::<(i64, i64, String, String, i64, String)>(conn)?
        .into_iter()
        .map(|(assignment, pk, user_id, document, app, app_name)| {
            let user_name = serde_json::from_str::<Value>(&document)
                .ok()
                .and_then(|d| d.get("userName").and_then(Value::as_str).map(str::to_owned));
            (assignment, pk, user_id, user_name, app, app_name)
        })
        .collect())
}

/// Applies a decision to a pending item inside the caller's transaction:
/// the item row, a revoke's assignment deletion (marking the pair due), and
/// the audit entries (`review.decide`, then `assignment.delete` caused by
/// it).
fn apply_decision(
    conn: &mut AnyConnection,
    tenant: TenantId,
    actor: &str,
    item: &ReviewItem,
    decision: Decision,
    comment: Option<&str>,
) -> Result<ReviewItem> {
    let at = now();
    let mut removed = None;
    let mut excluded = None;
    let outcome = match decision {
        Decision::Keep => "kept",
        Decision::Revoke => {
            let derived: Option<(i64, String)> = assignments::table
                .filter(assignments::tenant_id.eq(tenant.0))
                .filter(assignments::id.eq(item.assignment_id))
                .filter(assignments::source.like("rule:%"))
                .select((assignments::resource_pk, assignments::source))
                .first(conn)
                .optional()?;
            if let Some((pk, rule)) = derived {
                // A rule grants it again at the next evaluation: the revoke
                // becomes an exclusion, which wins until it is lifted.
                let source = format!("review:{}", item.campaign_id);
                let reason = comment.map_or_else(
                    || format!("revoked in review {} ({rule})", item.campaign_id),
                    str::to_owned,
                );
                let (x, _) = super::access::exclude(
                    conn,
                    tenant,
                    &super::access::NewExclusion {
                        application_id: item.application_id,
                        user_pk: pk,
                        reason: Some(&reason),
                        source: &source,
                        created_by: Some(actor),
                        valid_until: None,
                    },
                )?;
                excluded = Some(x);
                "excluded"
            } else {
                match super::assignments::delete(conn, tenant, item.assignment_id, actor.into())? {
                    Some(deleted) => {
                        removed = deleted.entry;
                        "revoked"
                    }
                    None => "already-removed",
                }
            }
        }
    };
    let updated = diesel::update(
        review_items::table
            .filter(review_items::id.eq(item.id))
            .filter(review_items::decision.is_null()),
    )
    .set((
        review_items::decision.eq(decision.as_str()),
        review_items::comment.eq(comment),
        review_items::decided_by.eq(actor),
        review_items::decided_at.eq(to_db_time(at)),
        review_items::outcome.eq(outcome),
    ))
    .execute(conn)?;
    if updated == 0 {
        return Err(conflict(format!("item {} is decided already", item.id)));
    }
    let decided = ReviewItem {
        decision: Some(decision.as_str().to_owned()),
        comment: comment.map(str::to_owned),
        decided_by: Some(actor.to_owned()),
        decided_at: Some(to_db_time(at)),
        outcome: Some(outcome.to_owned()),
        ..item.clone()
    };
    let seq = audit::append(
        conn,
        tenant,
        &NewAuditEntry::new(actor, "review.decide", "ReviewItem", item.id.to_string())
            .subject(item.user_id.clone())
            .before(Some(item.to_json()))
            .after(Some(decided.to_json())),
    )?;
    if let Some(removed) = removed {
        audit::append(conn, tenant, &removed.cause(Some(seq)))?;
    }
    if let Some(x) = excluded {
        audit::append(
            conn,
            tenant,
            &NewAuditEntry::new(actor, "exclusion.create", "Exclusion", x.id.to_string())
                .subject(item.user_id.clone())
                .after(Some(crate::access::exclusion_json(&x)))
                .cause(Some(seq)),
        )?;
    }
    Ok(decided)
}

fn load_items(
    conn: &mut AnyConnection,
    tenant: TenantId,
    campaign: i64,
    pending: bool,
) -> Result<Vec<ReviewItem>> {
    let mut query = review_items::table
        .filter(review_items::tenant_id.eq(tenant.0))
        .filter(review_items::campaign_id.eq(campaign))
        .into_boxed();
    if pending {
        query = query.filter(review_items::decision.is_null());
    }
    Ok(query
        .order(review_items::id.asc())
        .select(ReviewItem::as_select())
        .load(conn)?)
}

/// Locks an open campaign for a change (PostgreSQL; SQLite's immediate
/// transaction holds the write lock) and returns its status.
fn lock_campaign(conn: &mut AnyConnection, tenant: TenantId, id: i64) -> Result<String> {
    let query = review_campaigns::table
        .filter(review_campaigns::tenant_id.eq(tenant.0))
        .filter(review_campaigns::id.eq(id))
        .select(review_campaigns::status);
    let status: Option<String> = match conn {
        AnyConnection::Pg(c) => query.for_update().first(c).optional()?,
        AnyConnection::Sqlite(c) => query.first(c).optional()?,
    };
    status.ok_or_else(|| campaign_not_found(id))
}

/// Closes a locked open campaign: defaults for the pending items, status.
fn close_locked(conn: &mut AnyConnection, tenant: TenantId, actor: &str, id: i64) -> Result<()> {
    let default: String = review_campaigns::table
        .filter(review_campaigns::id.eq(id))
        .select(review_campaigns::default_decision)
        .first(conn)?;
    let decision = Decision::parse(&default).unwrap_or(Decision::Keep);
    let comment = format!("not reviewed by the due date: campaign default ({default})");
    for item in load_items(conn, tenant, id, true)? {
        apply_decision(conn, tenant, actor, &item, decision, Some(&comment))?;
    }
    diesel::update(review_campaigns::table.filter(review_campaigns::id.eq(id)))
        .set((
            review_campaigns::status.eq("closed"),
            review_campaigns::closed_at.eq(to_db_time(now())),
        ))
        .execute(conn)?;
    audit::append(
        conn,
        tenant,
        &NewAuditEntry::new(actor, "review.close", "Review", id.to_string()),
    )?;
    Ok(())
}

impl ReviewStore for Store {
    fn create_campaign(
        &self,
        tenant: TenantId,
        actor: &str,
        spec: &NewCampaign,
    ) -> Result<Campaign> {
        self.write(|conn| -> Result<Campaign> {
            let rows = accesses(conn, tenant, &spec.scope)?;
            let (scope_type, scope_id) = spec.scope.parts();
            let at = to_db_time(now());
            let id: i64 = diesel::insert_into(review_campaigns::table)
                .values((
                    review_campaigns::tenant_id.eq(tenant.0),
                    review_campaigns::name.eq(&spec.name),
                    review_campaigns::scope_type.eq(scope_type),
                    review_campaigns::scope_id.eq(scope_id),
                    review_campaigns::reviewers.eq(json!(spec.reviewers).to_string()),
                    review_campaigns::due_at.eq(to_db_time(spec.due_at)),
                    review_campaigns::default_decision.eq(spec.default_decision.as_str()),
                    review_campaigns::status.eq("open"),
                    review_campaigns::created_by.eq(actor),
                    review_campaigns::created.eq(at),
                ))
                .returning(review_campaigns::id)
                .get_result(conn)?;
            for chunk in rows.chunks(ITEM_INSERT_CHUNK) {
                let values: Vec<_> = chunk
                    .iter()
                    .map(|(assignment, _, user_id, user_name, app, app_name)| {
                        (
                            review_items::campaign_id.eq(id),
                            review_items::tenant_id.eq(tenant.0),
                            review_items::user_id.eq(user_id),
                            review_items::user_name.eq(user_name.as_deref()),
                            review_items::application_id.eq(*app),
                            review_items::application_name.eq(app_name),
                            review_items::assignment_id.eq(*assignment),
                        )
                    })
                    .collect();
                // Multi-row INSERT is not available through the
                // multi-backend connection.
                let insert = diesel::insert_into(review_items::table).values(values);
                match conn {
                    AnyConnection::Sqlite(c) => insert.execute(c)?,
                    AnyConnection::Pg(c) => insert.execute(c)?,
                };
            }
            let campaign =
                load_campaign(conn, tenant, id)?.ok_or_else(|| campaign_not_found(id))?;
            audit::append(
                conn,
                tenant,
                &NewAuditEntry::new(actor, "review.create", "Review", id.to_string())
                    .after(Some(campaign.to_json())),
            )?;
            Ok(campaign)
        })
    }

    fn list_campaigns(&self, tenant: TenantId) -> Result<Vec<Campaign>> {
        let mut conn = self.conn()?;
        let rows: Vec<CampaignRow> = review_campaigns::table
            .filter(review_campaigns::tenant_id.eq(tenant.0))
            .order(review_campaigns::id.desc())
            .limit(1000)
            .select(campaign_columns())
            .load(&mut *conn)?;
        rows.into_iter()
            .map(|r| campaign_from(&mut conn, r))
            .collect()
    }

    fn get_campaign(&self, tenant: TenantId, id: i64) -> Result<Option<Campaign>> {
        load_campaign(&mut *self.conn()?, tenant, id)
    }

    fn campaign_items(&self, tenant: TenantId, id: i64, pending: bool) -> Result<Vec<ReviewItem>> {
        load_items(&mut *self.conn()?, tenant, id, pending)
    }

    fn decide(
        &self,
        tenant: TenantId,
        actor: &str,
        campaign: i64,
        item: i64,
        decision: Decision,
        comment: Option<&str>,
    ) -> Result<ReviewItem> {
        self.write(|conn| -> Result<ReviewItem> {
            if lock_campaign(conn, tenant, campaign)? != "open" {
                return Err(conflict(format!("campaign {campaign} is closed")));
            }
            let row: ReviewItem = review_items::table
                .filter(review_items::tenant_id.eq(tenant.0))
                .filter(review_items::campaign_id.eq(campaign))
                .filter(review_items::id.eq(item))
                .select(ReviewItem::as_select())
                .first(conn)
                .optional()?
                .ok_or_else(|| {
                    Error::from(scim_core::Error::not_found(format!(
                        "campaign {campaign} has no item {item}"
                    )))
                })?;
            if row.decision.is_some() {
                return Err(conflict(format!("item {item} is decided already")));
            }
            apply_decision(conn, tenant, actor, &row, decision, comment)
        })
    }

    fn close_campaign(&self, tenant: TenantId, actor: &str, id: i64) -> Result<Campaign> {
        self.write(|conn| -> Result<Campaign> {
            if lock_campaign(conn, tenant, id)? != "open" {
                return Err(conflict(format!("campaign {id} is closed already")));
            }
            close_locked(conn, tenant, actor, id)?;
            load_campaign(conn, tenant, id)?.ok_or_else(|| campaign_not_found(id))
        })
    }

    fn close_due(&self, at: DateTime<Utc>) -> Result<usize> {
        let due: Vec<(i64, i64)> = review_campaigns::table
            .filter(review_campaigns::status.eq("open"))
            .filter(review_campaigns::due_at.le(to_db_time(at)))
            .order(review_campaigns::due_at.asc())
            .limit(100)
            .select((review_campaigns::tenant_id, review_campaigns::id))
            .load(&mut *self.conn()?)?;
        let mut closed = 0;
        for (tenant, id) in due {
            let tenant = TenantId(tenant);
            // Another replica may have closed it meanwhile: check again
            // under the lock.
            let done = self.write(|conn| -> Result<bool> {
                if lock_campaign(conn, tenant, id)? != "open" {
                    return Ok(false);
                }
                close_locked(conn, tenant, SCHEDULER_ACTOR, id)?;
                Ok(true)
            })?;
            closed += usize::from(done);
        }
        Ok(closed)
    }
}
