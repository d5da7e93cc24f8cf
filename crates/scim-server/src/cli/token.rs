//! `scim-server token create|list|revoke`.

use std::io::Write;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::config::{Settings, TokenCommand, TokenCreate};
use crate::db::PoolOptions;
use crate::error::{Error, Result};
use crate::store::{
    ResourceStore, Store, StoreOptions, Tenant, TenantStore, TokenInfo, TokenStore,
};
use crate::tokens::Scopes;

fn open(settings: &Settings) -> Result<Store> {
    Store::open(
        &settings.database()?,
        StoreOptions {
            pool: PoolOptions {
                size: 1,
                timeout: Duration::from_secs(settings.pool_timeout_secs.max(1)),
            },
            migrate: true,
            events: None,
        },
    )
}

/// Runs a token subcommand. Output for people goes to stderr; stdout
/// carries only what scripts read (the new secret, the token table).
pub fn run(settings: &Settings, command: TokenCommand) -> Result<()> {
    let store = open(settings)?;
    match command {
        TokenCommand::Create(create) => create_token(&store, settings, create),
        TokenCommand::List { tenant } => list_tokens(&store, tenant.as_deref()),
        TokenCommand::Revoke { id } => revoke_token(&store, id),
    }
}

fn create_token(store: &Store, settings: &Settings, create: TokenCreate) -> Result<()> {
    let TokenCreate {
        tenant,
        scopes,
        name,
        user,
    } = create;
    let tenant = store.ensure_tenant(&tenant)?;
    let user_id = match user {
        Some(user) => Some(find_user(store, settings, &tenant, &user)?),
        None => None,
    };
    let scopes = Scopes::of(&scopes);
    let issued = store.create_bound_token(
        tenant.id,
        name.as_deref().unwrap_or(""),
        scopes,
        user_id.as_deref(),
    )?;
    println!("{}", issued.secret);
    let bound = user_id.map_or_else(String::new, |id| format!(", bound to user {id} (/Me)"));
    eprintln!(
        "created token {} for tenant '{}' with scope {}{bound}; it is shown only this once. \
         Send it as 'Authorization: Bearer <token>'.",
        issued.info.id, tenant.name, scopes
    );
    Ok(())
}

/// The id of the tenant's User whose id or userName is `user`.
fn find_user(store: &Store, settings: &Settings, tenant: &Tenant, user: &str) -> Result<String> {
    let registry = crate::server::schema_registry(settings)?;
    let users = registry
        .resource_schema("User")
        .ok_or_else(|| Error::internal("no User resource type"))?;
    let found = match store.get_resource(tenant.id, &users, user)? {
        Some(r) => Some(r),
        None => store.find_by_user_name(tenant.id, &users, user)?,
    };
    found.map(|r| r.id).ok_or_else(|| {
        Error::Config(format!(
            "tenant '{}' has no User with id or userName '{user}'",
            tenant.name
        ))
    })
}

fn time(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(
        || "-".to_owned(),
        |t| t.to_rfc3339_opts(SecondsFormat::Secs, true),
    )
}

fn list_tokens(store: &Store, tenant: Option<&str>) -> Result<()> {
    let tokens = store.list_tokens(tenant)?;
    let mut out = std::io::stdout().lock();
    let row = |out: &mut dyn Write, cols: [&str; 8]| {
        writeln!(
            out,
            "{:<6} {:<20} {:<20} {:<22} {:<21} {:<21} {:<36} {}",
            cols[0], cols[1], cols[2], cols[3], cols[4], cols[5], cols[6], cols[7]
        )
    };
    row(
        &mut out,
        [
            "ID",
            "TENANT",
            "NAME",
            "SCOPES",
            "CREATED",
            "LAST USED",
            "USER",
            "STATUS",
        ],
    )?;
    for t in &tokens {
        let TokenInfo {
            id,
            tenant_id: _,
            tenant_name,
            name,
            scopes,
            created,
            last_used,
            revoked_at,
            user_id,
        } = t;
        let status = match revoked_at {
            Some(at) => format!("revoked {}", time(Some(*at))),
            None => "active".to_owned(),
        };
        row(
            &mut out,
            [
                &id.to_string(),
                tenant_name,
                if name.is_empty() { "-" } else { name },
                &scopes.to_string(),
                &time(Some(*created)),
                &time(*last_used),
                user_id.as_deref().unwrap_or("-"),
                &status,
            ],
        )?;
    }
    if tokens.is_empty() {
        eprintln!("no tokens");
    }
    Ok(())
}

fn revoke_token(store: &Store, id: i64) -> Result<()> {
    match store.revoke_token(id)? {
        Some(info) => {
            eprintln!("token {id} of tenant '{}' is revoked", info.tenant_name);
            Ok(())
        }
        None => Err(Error::Config(format!("no token with id {id}"))),
    }
}
