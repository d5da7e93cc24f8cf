//! Planner statistics on PostgreSQL: `ANALYZE` of the tables a load
//! fills, after an import or a /Bulk that wrote at least
//! [`LARGE_LOAD_ROWS`] resources, on a background thread (off the
//! request's path; requests coalesce, one runs at a time).
//!
//! PostgreSQL plans from statistics that only `ANALYZE` gathers; autovacuum
//! runs it eventually, but an instance without autovacuum (or before its
//! next round) plans a freshly loaded table as empty: an indirect-groups
//! filter took 10-12 s instead of 0.04 s. SQLite plans from its indexes
//! alone here, so this does nothing there.

use std::sync::{Arc, Mutex};

use diesel::connection::SimpleConnection;

use super::Store;
use crate::db::Backend;
use crate::error::Result;

/// A load of at least this many resources (one import call, one /Bulk
/// request) is followed by `ANALYZE`. Smaller ones change the statistics
/// little and are left to autovacuum; larger ones can turn a plan (an
/// empty-looking table joined first).
pub const LARGE_LOAD_ROWS: usize = 100;

/// The tables a load of resources fills.
const ANALYZE_SQL: &str = "ANALYZE resources, attr_index, memberships, change_log, resource_counts";

/// Whether a background `ANALYZE` runs, and whether another was asked for
/// while it ran (then it runs once more: requests coalesce, at most one
/// runs at a time per store).
#[derive(Debug, Default)]
pub(super) struct Analyzer {
    state: Mutex<AnalyzerState>,
}

#[derive(Debug, Default)]
struct AnalyzerState {
    running: bool,
    again: bool,
}

impl Store {
    /// Runs `ANALYZE` of the resource tables now (PostgreSQL; nothing on
    /// SQLite).
    pub fn analyze(&self) -> Result<()> {
        if self.backend() != Backend::Postgres {
            return Ok(());
        }
        self.conn()?.batch_execute(ANALYZE_SQL)?;
        Ok(())
    }

    /// Asks for [`Store::analyze`] on a background thread and returns at
    /// once. Requests made while one runs are folded into one more run.
    pub fn analyze_in_background(&self) {
        if self.backend() != Backend::Postgres {
            return;
        }
        let analyzer = Arc::clone(&self.analyzer);
        {
            let Ok(mut state) = analyzer.state.lock() else {
                return;
            };
            if state.running {
                state.again = true;
                return;
            }
            state.running = true;
        }
        let store = self.clone();
        let spawned = std::thread::Builder::new()
            .name("scim-analyze".into())
            .spawn(move || {
                loop {
                    if let Err(e) = store.analyze() {
                        log::warn!("ANALYZE after a large load failed: {e}");
                    }
                    let Ok(mut state) = analyzer.state.lock() else {
                        return;
                    };
                    if state.again {
                        state.again = false;
                        continue;
                    }
                    state.running = false;
                    return;
                }
            });
        if let Err(e) = spawned {
            log::warn!("could not start the ANALYZE thread: {e}");
            if let Ok(mut state) = self.analyzer.state.lock() {
                state.running = false;
            }
        }
    }
}
