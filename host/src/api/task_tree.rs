//! Loading a task with its descendants, layer by layer: what `GET
//! /tasks/{id}` needs for `layers` and `subtaskerrors`, and `GET
//! /tasks/{id}/builddata` for the data its subtasks collected.
//!
//! A few queries per layer, however wide: the layer's subtasks (or, for the
//! last layer, their ids) and the layer's messages, each for the whole layer
//! at once.

use std::collections::HashMap;

use uuid::Uuid;

use super::view;
use crate::store::{MessageRecord, Store, StoreError, TaskRecord};

/// A task with what its dict needs.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The task.
    pub record: TaskRecord,
    /// Its subtasks' ids, oldest first.
    pub subtask_ids: Vec<Uuid>,
    /// Its own status messages, in order.
    pub messages: Vec<MessageRecord>,
}

impl Loaded {
    /// The task dict; `base` is the service's public URL.
    pub fn view(&self, base: Option<&str>) -> crate::wire::TaskDict {
        view::task_view(&self.record, &self.subtask_ids, &self.messages, base)
    }
}

/// Loads `root` and its descendants, `depth` layers deep (1 = the root
/// only; `None` = all), one `Vec` per layer.
pub async fn load(
    store: &Store,
    root: TaskRecord,
    depth: Option<usize>,
) -> Result<Vec<Vec<Loaded>>, StoreError> {
    let mut layers = Vec::new();
    let mut current = vec![root];
    let mut level = 1;
    while !current.is_empty() {
        let last = depth.is_some_and(|d| level >= d);
        let ids: Vec<Uuid> = current.iter().map(|t| t.id).collect();
        let mut next = Vec::new();
        let subtask_ids: Vec<Vec<Uuid>> = if last {
            store.subtask_ids_of(&ids).await?
        } else {
            // One list, grouped by parent in `ids` order.
            next = store.subtasks_of(&ids).await?;
            let mut by_parent: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
            for c in &next {
                if let Some(p) = c.parent_id {
                    by_parent.entry(p).or_default().push(c.id);
                }
            }
            ids.iter()
                .map(|id| by_parent.remove(id).unwrap_or_default())
                .collect()
        };
        let mut messages: HashMap<Uuid, Vec<MessageRecord>> = HashMap::new();
        for m in store.messages_for_tasks(&ids).await? {
            messages.entry(m.task_id).or_default().push(m);
        }
        let layer = current
            .into_iter()
            .zip(subtask_ids)
            .map(|(record, subtask_ids)| Loaded {
                messages: messages.remove(&record.id).unwrap_or_default(),
                record,
                subtask_ids,
            })
            .collect();
        layers.push(layer);
        if last {
            break;
        }
        current = next;
        level += 1;
    }
    Ok(layers)
}

/// `root` and the ids of all its descendants, breadth first.
pub async fn with_descendants(store: &Store, root: Uuid) -> Result<Vec<Uuid>, StoreError> {
    let mut all = vec![root];
    let mut layer = vec![root];
    while !layer.is_empty() {
        layer = store
            .subtask_ids_of(&layer)
            .await?
            .into_iter()
            .flatten()
            .collect();
        all.extend(&layer);
    }
    Ok(all)
}
