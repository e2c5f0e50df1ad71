//! Workflow versions shared through the database, so that every node starts new cases on the
//! same version of each workflow.
//!
//! A node publishes a workflow file when it sees the file change while it runs, or at start
//! when the file's content was never stored; otherwise it follows what is published. So an
//! edit made on any node reaches all of them, and a node started with a stale folder does not
//! roll the others back.

use super::{Core, Error};
use crate::store::{StoreError, cases, millis};
use std::collections::HashMap;

impl Core {
    /// Publishes what changed in this node's folder and takes in what other nodes published.
    /// Returns the workflows whose version in force changed here, with the new hash.
    pub async fn sync_versions(&self) -> Result<Vec<(String, String)>, Error> {
        let project = self.project();
        let now = millis(self.now());
        let mut tx = self.store.begin().await?;
        let mut published: HashMap<String, String> = cases::published(&mut tx).await?.into_iter().collect();
        // The folder as this node saw it at the last sync; empty at start.
        let mut seen = self.folder_seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for file in project.valid_workflows() {
            let edited_here = seen.get(&file.id).is_some_and(|h| *h != file.hash);
            let new_content = !seen.contains_key(&file.id)
                && (cases::version_source(&mut tx, &file.id, &file.hash).await?.is_none()
                    || !published.contains_key(&file.id));
            if (edited_here || new_content) && published.get(&file.id) != Some(&file.hash) {
                cases::save_version(&mut tx, &file.id, &file.hash, &file.source, now).await?;
                cases::publish(&mut tx, &file.id, &file.hash, now).await?;
                published.insert(file.id.clone(), file.hash.clone());
            }
            seen.insert(file.id.clone(), file.hash.clone());
        }
        // Parse (and cache) every published version before putting it in force, so that a
        // start never waits for a parse and a version that does not parse is never in force.
        let mut in_force = HashMap::new();
        for (workflow, hash) in &published {
            if self.definition(&mut tx, workflow, hash).await.is_ok() {
                in_force.insert(workflow.clone(), hash.clone());
            }
        }
        tx.commit().await.map_err(StoreError::from)?;
        *self.folder_seen.lock().unwrap_or_else(|p| p.into_inner()) = seen;
        let mut current = self.published.write().unwrap_or_else(|p| p.into_inner());
        let changed =
            in_force.iter().filter(|(w, h)| current.get(*w) != Some(*h)).map(|(w, h)| (w.clone(), h.clone())).collect();
        *current = in_force;
        Ok(changed)
    }

    /// The hash new cases of `workflow` start on: this node's file when it changed here since the
    /// last sync (the next sync publishes it), else the published one, else the file's.
    pub fn hash_in_force(&self, workflow: &str) -> Option<String> {
        let project = self.project();
        let file = project.valid_workflows().find(|w| w.id == workflow).map(|w| w.hash.clone());
        let seen = self.folder_seen.lock().unwrap_or_else(|p| p.into_inner()).get(workflow).cloned();
        if file.is_some() && seen.is_some() && file != seen {
            return file;
        }
        let published = self.published.read().unwrap_or_else(|p| p.into_inner()).get(workflow).cloned();
        published.or(file)
    }
}
