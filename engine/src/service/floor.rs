//! The writes of decisions, computed beforehand and committed with nothing else: what this
//! schema costs the database, apart from everything the engine does around it (reading the
//! cases, applying the rules, hashing the audit chain, queueing, answering).
//!
//! `beslut bench` times these commits beside the engine's own, so that a figure below its
//! target shows whether the database's share or the engine's is short.

use super::batch::{Job, Step};
use super::gather::{Flush, Gathered};
use super::{Engine, Error};
use crate::runtime::{Channel, Command};
use crate::store::{StoreError, millis};
use serde_json::Map;

/// The rows that commands would write, ready to commit in one transaction.
pub struct Prepared(Gathered);

impl Engine {
    /// Applies each `(case id, command)` to its case in memory, in order, as one commit batch
    /// would, and keeps the rows it would write; nothing is written. Ledger reservations,
    /// which are made while applying, are rolled back with the rest.
    pub async fn prepare_writes(&self, commands: Vec<(String, Command)>) -> Result<Prepared, Error> {
        let jobs: Vec<Job> =
            commands.into_iter().map(|(id, command)| Job::new(&id, command, Channel::Api, Map::new(), None)).collect();
        let mut tx = self.store.begin().await?;
        let mut gathered = Gathered::read(&mut tx, &jobs).await?;
        for (i, job) in jobs.iter().enumerate() {
            gathered.apply(&self.core, &mut tx, i, job).await.map_err(Step::into_error)?;
        }
        tx.rollback().await.map_err(StoreError::from)?;
        Ok(Prepared(gathered))
    }

    /// Writes and commits what [`Engine::prepare_writes`] kept. It fails as a decision would
    /// if the cases changed in between.
    pub async fn commit_prepared(&self, prepared: Prepared) -> Result<(), Error> {
        let mut tx = self.store.begin().await?;
        match prepared.0.write(&mut tx, self.store.backend, millis(self.now())).await {
            Ok(()) => {}
            Err(Flush::Conflict(_)) => return Err(Error::Conflict),
            Err(Flush::Failed) => return Err(StoreError::Corrupt("the database refused the writes".into()).into()),
        }
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
    }
}
