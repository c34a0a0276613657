//! Loading a task with its descendants: what `GET /tasks/{id}` needs for
//! `layers` and `subtaskerrors`, laid out layer by layer from the store's
//! one walk of the tree ([`Store::task_tree`]): a constant number of
//! queries, however wide or deep the tree.

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
/// only; `None` = all), one `Vec` per layer: each layer grouped by parent
/// in the order of the layer above, each parent's subtasks oldest first.
pub async fn load(
    store: &Store,
    root: TaskRecord,
    depth: Option<usize>,
) -> Result<Vec<Vec<Loaded>>, StoreError> {
    let root_id = root.id;
    let rows = store.task_tree(&root, depth).await?;
    let tasks = if rows.tasks.is_empty() {
        // Deleted since it was found: what was found.
        vec![root]
    } else {
        rows.tasks
    };
    // Rows come level by level, each level by creation then id: each
    // parent's list of subtasks is oldest first.
    let mut subtasks: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for (parent, id) in tasks
        .iter()
        .filter(|t| t.id != root_id)
        .filter_map(|t| Some((t.parent_id?, t.id)))
        .chain(rows.below)
    {
        subtasks.entry(parent).or_default().push(id);
    }
    let mut messages: HashMap<Uuid, Vec<MessageRecord>> = HashMap::new();
    for m in rows.messages {
        messages.entry(m.task_id).or_default().push(m);
    }
    let mut by_id: HashMap<Uuid, TaskRecord> = tasks.into_iter().map(|t| (t.id, t)).collect();
    // A layer is the subtasks of the one above, in its order.
    let mut layers = Vec::new();
    let mut current = vec![root_id];
    let mut level = 1;
    while !current.is_empty() {
        let mut next = Vec::new();
        let mut layer = Vec::new();
        for id in current {
            let Some(record) = by_id.remove(&id) else {
                continue;
            };
            let subtask_ids = subtasks.remove(&id).unwrap_or_default();
            next.extend(subtask_ids.iter().copied());
            layer.push(Loaded {
                messages: messages.remove(&id).unwrap_or_default(),
                record,
                subtask_ids,
            });
        }
        layers.push(layer);
        if depth.is_some_and(|d| level >= d) {
            break;
        }
        current = next;
        level += 1;
    }
    Ok(layers)
}
