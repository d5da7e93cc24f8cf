//! The embedded migrations, one folder per backend with the same names.

use diesel::connection::SimpleConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::connection::AnyConnection;
use crate::error::{Error, Result};

const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Key of the PostgreSQL advisory lock held while migrating, so that
/// replicas starting together do not run the same migration twice.
const PG_MIGRATION_LOCK: i64 = 0x5c1a_0001;

/// Applies every pending migration and returns the names of those applied.
pub fn run_pending(conn: &mut AnyConnection) -> Result<Vec<String>> {
    let applied = match conn {
        AnyConnection::Sqlite(c) => c
            .run_pending_migrations(SQLITE)
            .map(|v| v.iter().map(ToString::to_string).collect::<Vec<_>>())
            .map_err(|e| Error::Migration(e.to_string())),
        AnyConnection::Pg(c) => {
            c.batch_execute(&format!("SELECT pg_advisory_lock({PG_MIGRATION_LOCK})"))?;
            let result = c
                .run_pending_migrations(POSTGRES)
                .map(|v| v.iter().map(ToString::to_string).collect::<Vec<_>>())
                .map_err(|e| Error::Migration(e.to_string()));
            c.batch_execute(&format!("SELECT pg_advisory_unlock({PG_MIGRATION_LOCK})"))?;
            result
        }
    }?;
    for name in &applied {
        log::info!("applied migration {name}");
    }
    Ok(applied)
}

/// Whether any migration is still to be applied.
pub fn has_pending(conn: &mut AnyConnection) -> Result<bool> {
    let pending = match conn {
        AnyConnection::Sqlite(c) => c.has_pending_migration(SQLITE),
        AnyConnection::Pg(c) => c.has_pending_migration(POSTGRES),
    };
    pending.map_err(|e| Error::Migration(e.to_string()))
}
