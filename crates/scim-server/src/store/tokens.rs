//! [`TokenStore`] for [`Store`].

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::{
    IssuedToken, Principal, Store, TenantId, TokenInfo, TokenStore, from_db_time, now, to_db_time,
};
use crate::db::schema::{tenants, tokens};
use crate::error::{Error, Result};
use crate::tokens::{
    Scopes, forget_verified, generate_secret, hash_secret, hashes_equal, looks_like_secret,
    remember_verified,
};

/// `last_used` is written at most this often per token, so authentication
/// does not turn every request into a write.
const LAST_USED_GRANULARITY_SECS: i64 = 60;

#[derive(Queryable, Selectable)]
#[diesel(table_name = tokens)]
struct TokenRow {
    id: i64,
    tenant_id: i64,
    name: String,
    hash: String,
    scopes: String,
    created: NaiveDateTime,
    last_used: Option<NaiveDateTime>,
    revoked_at: Option<NaiveDateTime>,
    user_id: Option<String>,
}

impl TokenRow {
    fn into_info(self, tenant_name: String) -> (TokenInfo, String) {
        let TokenRow {
            id,
            tenant_id,
            name,
            hash,
            scopes,
            created,
            last_used,
            revoked_at,
            user_id,
        } = self;
        let info = TokenInfo {
            id,
            tenant_id: TenantId(tenant_id),
            tenant_name,
            name,
            scopes: Scopes::parse_stored(&scopes),
            created: from_db_time(created),
            last_used: last_used.map(from_db_time),
            revoked_at: revoked_at.map(from_db_time),
            user_id,
        };
        (info, hash)
    }
}

impl TokenStore for Store {
    fn create_bound_token(
        &self,
        tenant: TenantId,
        name: &str,
        scopes: Scopes,
        user_id: Option<&str>,
    ) -> Result<IssuedToken> {
        if scopes.is_empty() {
            return Err(Error::Config("a token needs at least one scope".into()));
        }
        let secret = generate_secret()?;
        let hash = hash_secret(&secret);
        let (row, tenant_name) = self.write(|conn| -> Result<_> {
            let tenant_name: String = tenants::table
                .find(tenant.0)
                .select(tenants::name)
                .first(conn)
                .optional()?
                .ok_or_else(|| Error::Config(format!("no tenant with id {tenant}")))?;
            let row: TokenRow = diesel::insert_into(tokens::table)
                .values((
                    tokens::tenant_id.eq(tenant.0),
                    tokens::name.eq(name),
                    tokens::hash.eq(&hash),
                    tokens::scopes.eq(scopes.to_string()),
                    tokens::created.eq(to_db_time(now())),
                    tokens::user_id.eq(user_id),
                ))
                .returning(tokens::all_columns)
                .get_result(conn)?;
            Ok((row, tenant_name))
        })?;
        let (info, _) = row.into_info(tenant_name);
        Ok(IssuedToken { info, secret })
    }

    fn token_user(&self, token_id: i64) -> Result<Option<String>> {
        Ok(tokens::table
            .find(token_id)
            .select(tokens::user_id)
            .first::<Option<String>>(&mut *self.conn()?)
            .optional()?
            .flatten())
    }

    fn authenticate(&self, secret: &str) -> Result<Option<Principal>> {
        if !looks_like_secret(secret) {
            return Ok(None);
        }
        let hash = hash_secret(secret);
        let mut conn = self.conn()?;
        // `hash` is unique: no LIMIT, which SQLite would read as a bound
        // value and re-prepare the cached statement for at every request.
        let Some(row) = tokens::table
            .filter(tokens::hash.eq(&hash))
            .select(TokenRow::as_select())
            .load(&mut conn)?
            .into_iter()
            .next()
        else {
            return Ok(None);
        };
        if !hashes_equal(&row.hash, &hash) || row.revoked_at.is_some() {
            return Ok(None);
        }
        let now = now();
        let stale = row
            .last_used
            .is_none_or(|t| (now - from_db_time(t)).num_seconds() >= LAST_USED_GRANULARITY_SECS);
        if stale {
            let updated = diesel::update(tokens::table.find(row.id))
                .set(tokens::last_used.eq(to_db_time(now)))
                .execute(&mut conn);
            if let Err(e) = updated {
                log::warn!("could not record the use of token {}: {e}", row.id);
            }
        }
        let principal = Principal {
            tenant_id: TenantId(row.tenant_id),
            token_id: row.id,
            scopes: Scopes::parse_stored(&row.scopes),
        };
        remember_verified(&hash, principal);
        Ok(Some(principal))
    }

    fn list_tokens(&self, tenant: Option<&str>) -> Result<Vec<TokenInfo>> {
        let mut query = tokens::table
            .inner_join(tenants::table)
            .select((TokenRow::as_select(), tenants::name))
            .order(tokens::id.asc())
            .into_boxed();
        if let Some(name) = tenant {
            query = query.filter(tenants::name.eq(name.to_owned()));
        }
        let rows: Vec<(TokenRow, String)> = query.load(&mut *self.conn()?)?;
        Ok(rows
            .into_iter()
            .map(|(row, tenant)| row.into_info(tenant).0)
            .collect())
    }

    fn revoke_token(&self, id: i64) -> Result<Option<TokenInfo>> {
        // Forgotten before and after: a request verifying the token while
        // the revocation commits cannot leave it cached.
        forget_verified(id);
        let revoked = self.write(|conn| -> Result<_> {
            diesel::update(tokens::table.find(id).filter(tokens::revoked_at.is_null()))
                .set(tokens::revoked_at.eq(to_db_time(now())))
                .execute(conn)?;
            let row: Option<(TokenRow, String)> = tokens::table
                .inner_join(tenants::table)
                .filter(tokens::id.eq(id))
                .select((TokenRow::as_select(), tenants::name))
                .first(conn)
                .optional()?;
            Ok(row.map(|(row, tenant)| row.into_info(tenant).0))
        });
        forget_verified(id);
        revoked
    }

    fn count_active_tokens(&self) -> Result<i64> {
        Ok(tokens::table
            .filter(tokens::revoked_at.is_null())
            .count()
            .get_result(&mut *self.conn()?)?)
    }
}
