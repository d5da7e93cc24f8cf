//! `scim-server audit verify`: verifies a tenant's audit chain directly in
//! the database, without a running server (or trusting one).

use std::time::Duration;

use crate::config::{AuditCommand, Settings};
use crate::db::PoolOptions;
use crate::error::{Error, Result};
use crate::store::{AuditStore, HeadRef, Store, StoreOptions, TenantStore, Verification};

/// Runs an audit subcommand. The result goes to stdout; a broken chain,
/// or one that no longer holds the kept head, is an error (exit code 1)
/// naming the first bad seq.
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
    )?
    .with_audit_key(settings.audit_chain_key()?);
    match command {
        AuditCommand::Verify {
            tenant,
            expect_head,
            json,
        } => {
            let expect = expect_head
                .as_deref()
                .map(str::parse::<HeadRef>)
                .transpose()?;
            let found = store
                .find_tenant(&tenant)?
                .ok_or_else(|| Error::Config(format!("no tenant named '{tenant}'")))?;
            let v = store.verify_audit(found.id, expect.as_ref())?;
            if json {
                println!("{}", v.to_json());
            } else {
                print!("{}", report(&tenant, &v));
            }
            if v.valid() {
                return Ok(());
            }
            let why = match (&v.first_break, &v.expected_head) {
                (Some(b), _) => format!("is broken at seq {}: {}", b.seq, b.reason),
                (None, Some(e)) => format!("does not hold the kept head: {}", e.describe()),
                (None, None) => "does not verify".to_owned(),
            };
            Err(scim_core::Error::new(
                scim_core::ErrorKind::Conflict,
                format!("the audit chain of tenant '{tenant}' {why}"),
            )
            .into())
        }
    }
}

/// The verification for a person: what was checked, how far to trust it,
/// and the checkpoint to keep.
pub fn report(tenant: &str, v: &Verification) -> String {
    let mut out = String::new();
    let state = if v.first_break.is_none() {
        "verifies"
    } else {
        "does NOT verify"
    };
    out.push_str(&format!(
        "the audit chain of tenant '{tenant}' {state}: {} entries, head at seq {}\n",
        v.checked, v.head_seq
    ));
    match (&v.key_id, v.keyed_from) {
        (Some(id), Some(from)) => out.push_str(&format!(
            "keyed: yes (key id {id}); entries from seq {from} carry MACs, {} earlier entries are unkeyed\n",
            v.unkeyed_entries
        )),
        (Some(id), None) => out.push_str(&format!(
            "keyed: yes (key id {id}), but no entry carries a MAC yet: {} unkeyed entries\n",
            v.unkeyed_entries
        )),
        (None, _) => out.push_str(&format!(
            "keyed: no (no audit key given): {} unkeyed entries checked, {} keyed entries checked only for their links\n",
            v.unkeyed_entries, v.unchecked_macs
        )),
    }
    if let Some(e) = &v.expected_head {
        let mark = if e.holds() { "holds" } else { "FAILS" };
        out.push_str(&format!(
            "kept head {}: {mark}: {}\n",
            e.expected,
            e.describe()
        ));
    }
    if let Some(c) = &v.checkpoint {
        out.push_str(&format!(
            "checkpoint (keep it elsewhere; pass it back with --expect-head):\n  head {}\n  at {}\n  signature {}\n",
            c.head(),
            c.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            c.signature.as_deref().unwrap_or("none (no audit key)")
        ));
    }
    out
}
