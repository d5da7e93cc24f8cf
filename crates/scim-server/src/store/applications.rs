//! Applications (downstream SCIM targets) and assignments of users and
//! groups to them: [`ApplicationStore`] for [`Store`].
//!
//! Every assignment change marks the affected pairs due in its transaction
//! (see [`super::provisioning::mark_due`]); so does a change of an
//! application's settings, for every pair it has.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use scim_core::ErrorKind;

use super::audit::{self, application_snapshot, assignment_snapshot, management};
use super::provisioning::mark_application_due;
use super::{Store, TenantId, from_db_time, now, to_db_time};
use crate::db::AnyConnection;
use crate::db::schema::{applications, assignments, resources};
use crate::error::{Error, Result};

/// An application's settings as written by the management API. The
/// credentials are already sealed (see [`crate::secrets`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ApplicationFields {
    /// A name unique in the tenant.
    pub name: String,
    /// The SCIM base URL of the target (`https://host/scim/v2`).
    pub base_url: String,
    /// `none` or `bearer`.
    pub auth_type: String,
    /// The sealed secret, if any.
    pub credentials: Option<Vec<u8>>,
    /// The attribute mapping (JSON object: target path -> source).
    pub mapping: String,
    /// The attributes the engine manages (JSON array of paths).
    pub managed_attributes: String,
    /// The deprovision policy (JSON object).
    pub deprovision: String,
    /// Requests per second sent to the target (None: unlimited).
    pub rate_per_second: Option<f64>,
    /// Requests in flight to the target at most.
    pub max_concurrency: i32,
    /// Whether the engine works on it (false: paused).
    pub enabled: bool,
    /// Reconcile every this many seconds (`None`: on demand only).
    pub reconcile_interval_seconds: Option<i64>,
    /// What happens to a pushed group once it is no longer assigned.
    pub group_deprovision: super::engine_state::GroupDeprovision,
}

/// An application as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Application {
    /// Its id.
    pub id: i64,
    /// The owning tenant.
    pub tenant_id: TenantId,
    /// Its settings.
    pub fields: ApplicationFields,
    /// Until when the engine leaves it alone after repeated failures.
    pub quarantined_until: Option<DateTime<Utc>>,
    /// Why it is quarantined.
    pub quarantine_reason: Option<String>,
    /// Failed requests in a row.
    pub consecutive_failures: i32,
    /// When the last reconciliation started.
    pub last_reconciled: Option<DateTime<Utc>>,
    /// When it was created.
    pub created: DateTime<Utc>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = applications)]
struct ApplicationRow {
    id: i64,
    tenant_id: i64,
    name: String,
    base_url: String,
    auth_type: String,
    credentials: Option<Vec<u8>>,
    mapping: String,
    managed_attributes: String,
    deprovision: String,
    rate_per_second: Option<f64>,
    max_concurrency: i32,
    enabled: bool,
    quarantined_until: Option<NaiveDateTime>,
    quarantine_reason: Option<String>,
    consecutive_failures: i32,
    created: NaiveDateTime,
}

impl From<ApplicationRow> for Application {
    fn from(row: ApplicationRow) -> Self {
        let ApplicationRow {
            id,
            tenant_id,
            name,
            base_url,
            auth_type,
            credentials,
            mapping,
            managed_attributes,
            deprovision,
            rate_per_second,
            max_concurrency,
            enabled,
            quarantined_until,
            quarantine_reason,
            consecutive_failures,
            created,
        } = row;
        Application {
            id,
            tenant_id: TenantId(tenant_id),
            fields: ApplicationFields {
                name,
                base_url,
                auth_type,
                credentials,
                mapping,
                managed_attributes,
                deprovision,
                rate_per_second,
                max_concurrency,
                enabled,
                // Read from engine_app_settings by `with_engine`.
                reconcile_interval_seconds: None,
                group_deprovision: super::engine_state::GroupDeprovision::default(),
            },
            quarantined_until: quarantined_until.map(from_db_time),
            quarantine_reason,
            consecutive_failures,
            last_reconciled: None,
            created: from_db_time(created),
        }
    }
}

/// A user or group assigned to an application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// Its id.
    pub id: i64,
    /// The application.
    pub application_id: i64,
    /// `User` or `Group`.
    pub resource_type: String,
    /// The SCIM id of the user or group.
    pub resource_id: String,
    /// Where it comes from (`manual`: the management API).
    pub source: String,
    /// Not in force before this time (None: always).
    pub valid_from: Option<DateTime<Utc>>,
    /// Not in force after this time (None: always).
    pub valid_until: Option<DateTime<Utc>>,
    /// When it was created.
    pub created: DateTime<Utc>,
}

type AssignmentTuple = (
    i64,
    i64,
    String,
    String,
    String,
    Option<NaiveDateTime>,
    Option<NaiveDateTime>,
    NaiveDateTime,
);

fn assignment_from(t: AssignmentTuple) -> Assignment {
    let (id, application_id, resource_type, resource_id, source, valid_from, valid_until, created) =
        t;
    Assignment {
        id,
        application_id,
        resource_type,
        resource_id,
        source,
        valid_from: valid_from.map(from_db_time),
        valid_until: valid_until.map(from_db_time),
        created: from_db_time(created),
    }
}

/// Which assignments to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssignmentFilter {
    /// Only those of this application.
    pub application_id: Option<i64>,
    /// Only those of the user or group with this SCIM id.
    pub resource_id: Option<String>,
}

/// Applications and assignments.
pub trait ApplicationStore {
    /// Creates an application; a name taken in the tenant is a 409.
    fn create_application(
        &self,
        tenant: TenantId,
        fields: &ApplicationFields,
    ) -> Result<Application>;
    /// The tenant's applications, by id.
    fn list_applications(&self, tenant: TenantId) -> Result<Vec<Application>>;
    /// One application of the tenant.
    fn get_application(&self, tenant: TenantId, id: i64) -> Result<Option<Application>>;
    /// Replaces an application's settings, lifts any quarantine, and marks
    /// all its pairs due.
    fn update_application(
        &self,
        tenant: TenantId,
        id: i64,
        fields: &ApplicationFields,
    ) -> Result<Application>;
    /// Deletes an application with its assignments, pairs and log.
    fn delete_application(&self, tenant: TenantId, id: i64) -> Result<()>;

    /// Assigns the user or group with SCIM id `resource_id` to an
    /// application and marks the affected pairs due. Assigning twice is a
    /// 409.
    fn create_assignment(
        &self,
        tenant: TenantId,
        application_id: i64,
        resource_id: &str,
        valid_from: Option<DateTime<Utc>>,
        valid_until: Option<DateTime<Utc>>,
    ) -> Result<Assignment> {
        self.create_assignment_with(
            tenant,
            application_id,
            resource_id,
            valid_from,
            valid_until,
            None,
            None,
        )
    }
    /// [`Self::create_assignment`] with why and by whom (temporary access).
    #[allow(clippy::too_many_arguments)] // reason: the assignment's fields, each optional
    fn create_assignment_with(
        &self,
        tenant: TenantId,
        application_id: i64,
        resource_id: &str,
        valid_from: Option<DateTime<Utc>>,
        valid_until: Option<DateTime<Utc>>,
        reason: Option<&str>,
        granted_by: Option<&str>,
    ) -> Result<Assignment>;
    /// The tenant's assignments matching `filter`, by id.
    fn list_assignments(
        &self,
        tenant: TenantId,
        filter: &AssignmentFilter,
    ) -> Result<Vec<Assignment>>;
    /// Removes an assignment and marks the affected pairs due.
    fn delete_assignment(&self, tenant: TenantId, id: i64) -> Result<()>;
}

fn app_not_found(id: i64) -> Error {
    scim_core::Error::not_found(format!("no application with id {id}")).into()
}

fn name_taken(e: DieselError, name: &str) -> Error {
    match e {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => scim_core::Error::new(
            ErrorKind::Uniqueness,
            format!("an application named '{name}' exists already"),
        )
        .into(),
        other => other.into(),
    }
}

fn load_app(conn: &mut AnyConnection, tenant: TenantId, id: i64) -> Result<Option<Application>> {
    applications::table
        .filter(applications::tenant_id.eq(tenant.0))
        .filter(applications::id.eq(id))
        .select(ApplicationRow::as_select())
        .first(conn)
        .optional()?
        .map(|row| with_engine(conn, Application::from(row)))
        .transpose()
}

/// Fills in the engine settings kept beside the application.
fn with_engine(conn: &mut AnyConnection, mut app: Application) -> Result<Application> {
    let s = super::engine_state::engine_settings(conn, app.id)?;
    app.fields.reconcile_interval_seconds = s.reconcile_interval_seconds;
    app.fields.group_deprovision = s.group_deprovision;
    app.last_reconciled = s.last_reconciled;
    Ok(app)
}

/// The application with this id, whatever its tenant (for the engine).
pub(super) fn app_by_id(conn: &mut AnyConnection, id: i64) -> Result<Option<Application>> {
    applications::table
        .filter(applications::id.eq(id))
        .select(ApplicationRow::as_select())
        .first(conn)
        .optional()?
        .map(|row| with_engine(conn, Application::from(row)))
        .transpose()
}

impl ApplicationStore for Store {
    fn create_application(
        &self,
        tenant: TenantId,
        fields: &ApplicationFields,
    ) -> Result<Application> {
        let at = to_db_time(now());
        let f = fields;
        self.write(|conn| -> Result<Application> {
            let id: i64 = diesel::insert_into(applications::table)
                .values((
                    applications::tenant_id.eq(tenant.0),
                    applications::name.eq(&f.name),
                    applications::base_url.eq(&f.base_url),
                    applications::auth_type.eq(&f.auth_type),
                    applications::credentials.eq(f.credentials.as_deref()),
                    applications::mapping.eq(&f.mapping),
                    applications::managed_attributes.eq(&f.managed_attributes),
                    applications::deprovision.eq(&f.deprovision),
                    applications::rate_per_second.eq(f.rate_per_second),
                    applications::max_concurrency.eq(f.max_concurrency),
                    applications::enabled.eq(f.enabled),
                    applications::consecutive_failures.eq(0),
                    applications::created.eq(at),
                ))
                .returning(applications::id)
                .get_result(conn)
                .map_err(|e| name_taken(e, &f.name))?;
            super::engine_state::save_engine_settings(
                conn,
                id,
                f.reconcile_interval_seconds,
                f.group_deprovision,
            )?;
            let app = load_app(conn, tenant, id)?.ok_or_else(|| app_not_found(id))?;
            let entry = management("application.create", "Application", id)
                .after(Some(application_snapshot(&app)));
            audit::append(conn, tenant, &entry)?;
            Ok(app)
        })
    }

    fn list_applications(&self, tenant: TenantId) -> Result<Vec<Application>> {
        let mut conn = self.conn()?;
        let rows: Vec<ApplicationRow> = applications::table
            .filter(applications::tenant_id.eq(tenant.0))
            .order(applications::id.asc())
            .select(ApplicationRow::as_select())
            .load(&mut *conn)?;
        rows.into_iter()
            .map(|row| with_engine(&mut conn, Application::from(row)))
            .collect()
    }

    fn get_application(&self, tenant: TenantId, id: i64) -> Result<Option<Application>> {
        load_app(&mut *self.conn()?, tenant, id)
    }

    fn update_application(
        &self,
        tenant: TenantId,
        id: i64,
        fields: &ApplicationFields,
    ) -> Result<Application> {
        let f = fields;
        self.write(|conn| -> Result<Application> {
            let before = load_app(conn, tenant, id)?;
            let updated = diesel::update(
                applications::table
                    .filter(applications::tenant_id.eq(tenant.0))
                    .filter(applications::id.eq(id)),
            )
            .set((
                applications::name.eq(&f.name),
                applications::base_url.eq(&f.base_url),
                applications::auth_type.eq(&f.auth_type),
                applications::credentials.eq(f.credentials.as_deref()),
                applications::mapping.eq(&f.mapping),
                applications::managed_attributes.eq(&f.managed_attributes),
                applications::deprovision.eq(&f.deprovision),
                applications::rate_per_second.eq(f.rate_per_second),
                applications::max_concurrency.eq(f.max_concurrency),
                applications::enabled.eq(f.enabled),
                // New settings deserve a fresh try: lift any quarantine.
                applications::consecutive_failures.eq(0),
                applications::quarantined_until.eq(None::<NaiveDateTime>),
                applications::quarantine_reason.eq(None::<String>),
            ))
            .execute(conn)
            .map_err(|e| name_taken(e, &f.name))?;
            if updated == 0 {
                return Err(app_not_found(id));
            }
            super::engine_state::save_engine_settings(
                conn,
                id,
                f.reconcile_interval_seconds,
                f.group_deprovision,
            )?;
            mark_application_due(conn, id)?;
            let app = load_app(conn, tenant, id)?.ok_or_else(|| app_not_found(id))?;
            let entry = management("application.update", "Application", id)
                .before(before.as_ref().map(application_snapshot))
                .after(Some(application_snapshot(&app)));
            audit::append(conn, tenant, &entry)?;
            Ok(app)
        })
    }

    fn delete_application(&self, tenant: TenantId, id: i64) -> Result<()> {
        use crate::db::schema::{provisioning_log, provisioning_state};
        self.write(|conn| -> Result<()> {
            let Some(before) = load_app(conn, tenant, id)? else {
                return Err(app_not_found(id));
            };
            diesel::delete(assignments::table.filter(assignments::application_id.eq(id)))
                .execute(conn)?;
            diesel::delete(
                provisioning_state::table.filter(provisioning_state::application_id.eq(id)),
            )
            .execute(conn)?;
            diesel::delete(provisioning_log::table.filter(provisioning_log::application_id.eq(id)))
                .execute(conn)?;
            diesel::delete(applications::table.filter(applications::id.eq(id))).execute(conn)?;
            let entry = management("application.delete", "Application", id)
                .before(Some(application_snapshot(&before)));
            audit::append(conn, tenant, &entry)?;
            Ok(())
        })
    }

    fn create_assignment_with(
        &self,
        tenant: TenantId,
        application_id: i64,
        resource_id: &str,
        valid_from: Option<DateTime<Utc>>,
        valid_until: Option<DateTime<Utc>>,
        reason: Option<&str>,
        granted_by: Option<&str>,
    ) -> Result<Assignment> {
        self.write(|conn| -> Result<Assignment> {
            if load_app(conn, tenant, application_id)?.is_none() {
                return Err(app_not_found(application_id));
            }
            let (pk, resource_type): (i64, String) = resources::table
                .filter(resources::tenant_id.eq(tenant.0))
                .filter(resources::id.eq(resource_id))
                .filter(resources::resource_type.eq_any(["User", "Group"]))
                .select((resources::pk, resources::resource_type))
                .first(conn)
                .optional()?
                .ok_or_else(|| {
                    Error::from(scim_core::Error::invalid_value(format!(
                        "no user or group with id '{resource_id}'"
                    )))
                })?;
            if resource_type == "User" {
                let now = super::now_utc();
                if let Some(x) =
                    super::access::exclusions_of(conn, tenant, Some(pk), Some(application_id))?
                        .into_iter()
                        .find(|x| x.in_force(now))
                {
                    return Err(scim_core::Error::new(
                        ErrorKind::Conflict,
                        format!(
                            "'{resource_id}' is excluded from application {application_id} \
                             (exclusion {}, {}): lift it first",
                            x.id, x.source
                        ),
                    )
                    .into());
                }
            }
            let (id, created) = super::assignments::insert(
                conn,
                tenant,
                &super::assignments::NewAssignment {
                    label: resource_id,
                    application_id,
                    resource_pk: pk,
                    resource_type: &resource_type,
                    source: "manual",
                    role: None,
                    valid_from,
                    valid_until,
                    reason,
                    granted_by,
                },
            )?;
            let assignment = Assignment {
                id,
                application_id,
                resource_type,
                resource_id: resource_id.to_owned(),
                source: "manual".into(),
                valid_from: valid_from.map(|t| from_db_time(to_db_time(t))),
                valid_until: valid_until.map(|t| from_db_time(to_db_time(t))),
                created,
            };
            let entry = management("assignment.create", "Assignment", id)
                .subject(resource_id)
                .after(Some(assignment_snapshot(&assignment)));
            audit::append(conn, tenant, &entry)?;
            Ok(assignment)
        })
    }

    fn list_assignments(
        &self,
        tenant: TenantId,
        filter: &AssignmentFilter,
    ) -> Result<Vec<Assignment>> {
        let mut query = assignments::table
            .inner_join(resources::table)
            .filter(assignments::tenant_id.eq(tenant.0))
            .into_boxed();
        if let Some(app) = filter.application_id {
            query = query.filter(assignments::application_id.eq(app));
        }
        if let Some(rid) = &filter.resource_id {
            query = query.filter(resources::id.eq(rid.clone()));
        }
        let rows: Vec<AssignmentTuple> = query
            .order(assignments::id.asc())
            .select((
                assignments::id,
                assignments::application_id,
                assignments::resource_type,
                resources::id,
                assignments::source,
                assignments::valid_from,
                assignments::valid_until,
                assignments::created,
            ))
            .load(&mut *self.conn()?)?;
        Ok(rows.into_iter().map(assignment_from).collect())
    }

    fn delete_assignment(&self, tenant: TenantId, id: i64) -> Result<()> {
        self.write(|conn| -> Result<()> {
            let derived: Option<(i64, i64, String, String)> = assignments::table
                .inner_join(resources::table)
                .filter(assignments::tenant_id.eq(tenant.0))
                .filter(assignments::id.eq(id))
                .filter(assignments::source.like("rule:%"))
                .filter(assignments::resource_type.eq("User"))
                .select((
                    assignments::resource_pk,
                    assignments::application_id,
                    assignments::source,
                    resources::id,
                ))
                .first(conn)
                .optional()?;
            if let Some((pk, app, rule, user_id)) = derived {
                // A rule grants it: deleting the row would only see it
                // granted again. The revoke is an exclusion instead.
                let actor = audit::actor_of(None);
                let reason = format!("assignment {id} ({rule}) revoked");
                let (x, created) = super::access::exclude(
                    conn,
                    tenant,
                    &super::access::NewExclusion {
                        application_id: app,
                        user_pk: pk,
                        reason: Some(&reason),
                        source: "admin",
                        created_by: Some(&actor),
                        valid_until: None,
                    },
                )?;
                if created {
                    audit::append(
                        conn,
                        tenant,
                        &management("exclusion.create", "Exclusion", x.id)
                            .subject(user_id)
                            .after(Some(crate::access::exclusion_json(&x))),
                    )?;
                }
                return Ok(());
            }
            let deleted = super::assignments::delete(conn, tenant, id, audit::actor_of(None))?
                .ok_or_else(|| {
                    Error::from(scim_core::Error::not_found(format!(
                        "no assignment with id {id}"
                    )))
                })?;
            if let Some(entry) = deleted.entry {
                audit::append(conn, tenant, &entry)?;
            }
            Ok(())
        })
    }
}
