//! Loading a task with its descendants, layer by layer: what `GET
//! /tasks/{id}` needs for `layers` and `subtaskerrors`, and `GET
//! /tasks/{id}/builddata` for the data its subtasks collected.
//!
//! One query per task walked (its children) plus one per layer (the layer's
//! messages).

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
        let mut next = Vec::new();
        let mut subtask_ids = Vec::with_capacity(current.len());
        for t in &current {
            if last {
                subtask_ids.push(store.subtask_ids(t.id).await?);
            } else {
                let mut children = store.subtasks(t.id).await?;
                children.sort_by_key(|c| (c.created, c.id));
                subtask_ids.push(children.iter().map(|c| c.id).collect());
                next.extend(children);
            }
        }
        let ids: Vec<Uuid> = current.iter().map(|t| t.id).collect();
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
    let mut i = 0;
    while i < all.len() {
        let children = store.subtask_ids(all[i]).await?;
        all.extend(children);
        i += 1;
    }
    Ok(all)
}
