//! `scim-server audit verify`: verifies a tenant's audit chain directly in
//! the database, without a running server (or trusting one).

use std::time::Duration;

use crate::config::{AuditCommand, Settings};
use crate::db::PoolOptions;
use crate::error::{Error, Result};
use crate::store::{AuditStore, Store, StoreOptions, TenantStore};

/// Runs an audit subcommand. The result goes to stdout; a broken chain
/// is an error (exit code 1) naming the first bad seq.
pub fn run(settings: &Settings, command: AuditCommand) -> Result<()> {
    let store = Store::open(
        &settings.database()?,
        StoreOptions {
            pool: PoolOptions {
                size: 1,
                timeout: Duration::from_secs(settings.pool_timeout_secs.max(1)),
            },
            migrate: false,
            events: None,
        },
    )?;
    match command {
        AuditCommand::Verify { tenant } => {
            let found = store
                .find_tenant(&tenant)?
                .ok_or_else(|| Error::Config(format!("no tenant named '{tenant}'")))?;
            let v = store.verify_audit(found.id)?;
            match v.first_break {
                None => {
                    println!(
                        "the audit chain of tenant '{tenant}' verifies: {} entries, head at seq {}",
                        v.checked, v.head_seq
                    );
                    Ok(())
                }
                Some(b) => Err(scim_core::Error::new(
                    scim_core::ErrorKind::Conflict,
                    format!(
                        "the audit chain of tenant '{tenant}' is broken at seq {}: {}",
                        b.seq, b.reason
                    ),
                )
                .into()),
            }
        }
    }
}
