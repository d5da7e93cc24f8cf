//! [`TenantStore`] for [`Store`].

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use super::{Store, Tenant, TenantId, TenantStore, from_db_time, now, to_db_time};
use crate::db::AnyConnection;
use crate::db::schema::tenants;
use crate::error::{Error, Result};

#[derive(Queryable, Selectable)]
#[diesel(table_name = tenants)]
struct TenantRow {
    id: i64,
    name: String,
    created: NaiveDateTime,
}

impl From<TenantRow> for Tenant {
    fn from(row: TenantRow) -> Self {
        let TenantRow { id, name, created } = row;
        Tenant {
            id: TenantId(id),
            name,
            created: from_db_time(created),
        }
    }
}

/// The longest tenant name accepted.
const MAX_TENANT_NAME: usize = 200;

fn check_name(name: &str) -> Result<()> {
    if name.trim().is_empty() || name.len() > MAX_TENANT_NAME || name.chars().any(char::is_control)
    {
        return Err(Error::Config(format!(
            "invalid tenant name '{name}': 1 to {MAX_TENANT_NAME} bytes, no control characters"
        )));
    }
    Ok(())
}

fn find(conn: &mut AnyConnection, name: &str) -> QueryResult<Option<Tenant>> {
    tenants::table
        .filter(tenants::name.eq(name))
        .select(TenantRow::as_select())
        .first(conn)
        .optional()
        .map(|row| row.map(Tenant::from))
}

impl TenantStore for Store {
    fn ensure_tenant(&self, name: &str) -> Result<Tenant> {
        check_name(name)?;
        let created = self.write(|conn| -> Result<Tenant> {
            if let Some(t) = find(conn, name)? {
                return Ok(t);
            }
            let row: TenantRow = diesel::insert_into(tenants::table)
                .values((
                    tenants::name.eq(name),
                    tenants::created.eq(to_db_time(now())),
                ))
                .returning(tenants::all_columns)
                .get_result(conn)?;
            log::info!("created tenant '{name}' (id {})", row.id);
            Ok(row.into())
        });
        match created {
            // Another process created it between our read and our insert
            // (PostgreSQL; SQLite's write lock excludes this).
            Err(Error::Database(DieselError::DatabaseError(
                DatabaseErrorKind::UniqueViolation,
                _,
            ))) => find(&mut *self.conn()?, name)?
                .ok_or_else(|| Error::internal(format!("tenant '{name}' vanished"))),
            other => other,
        }
    }

    fn find_tenant(&self, name: &str) -> Result<Option<Tenant>> {
        Ok(find(&mut *self.conn()?, name)?)
    }
}
