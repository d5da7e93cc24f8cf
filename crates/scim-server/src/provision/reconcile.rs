//! Reconciliation (placeholder, filled in below).

use super::Engine;
use crate::error::Result;

impl Engine {
    /// Runs the reconciliations whose schedule is due.
    pub async fn reconcile_scheduled(&self) -> Result<()> {
        Ok(())
    }
}
