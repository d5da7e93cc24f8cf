//! `scim-server migrate`.

use crate::config::Settings;
use crate::db::migrations;
use crate::error::Result;

/// Creates the database if needed and applies pending migrations.
pub fn run(settings: &Settings) -> Result<()> {
    let url = settings.database()?;
    let mut conn = url.establish()?;
    let applied = migrations::run_pending(&mut conn)?;
    if applied.is_empty() {
        eprintln!("{url}: the schema is up to date");
    } else {
        eprintln!("{url}: applied {} migration(s)", applied.len());
    }
    Ok(())
}
