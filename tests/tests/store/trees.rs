//! Task trees read in one walk: `Store::task_tree` (a task's descendants to
//! a depth, their messages, the subtask ids under the deepest level) and
//! `Store::build_data_under`, on a tree wider than a statement's parameter
//! chunk and four levels deep; task versions read many at a time
//! (`Store::task_versions`).

use drydock::store::{NewBuildData, NewMessage, NewTask, Store, TaskRecord, Uuid};

/// `tasks` sorted as the tree's reads order siblings: creation, then id.
fn by_creation(mut tasks: Vec<TaskRecord>) -> Vec<Uuid> {
    tasks.sort_by_key(|t| (t.created, t.id));
    tasks.into_iter().map(|t| t.id).collect()
}

/// The (parent, id) links of `children` of `parent`, oldest first.
fn links(parent: Uuid, children: &[Uuid]) -> Vec<(Uuid, Uuid)> {
    children.iter().map(|c| (parent, *c)).collect()
}

fn data(task: Uuid, node: &str) -> NewBuildData {
    NewBuildData {
        node_name: node.into(),
        task_id: Some(task),
        generator: "lshw".into(),
        format: "text/plain".into(),
        content: format!("collected by {task}"),
    }
}

pub async fn case_task_trees(store: Store) {
    let root = store
        .insert_task(&NewTask::new("deploy_nodes"))
        .await
        .unwrap();
    for step in ["prepare_nodes", "deploy_nodes", "destroy_nodes"] {
        store
            .insert_tasks(&[NewTask::subtask(root.id, step, step)])
            .await
            .unwrap();
    }
    let steps = by_creation(store.subtasks(root.id).await.unwrap());
    assert_eq!(steps.len(), 3);
    // 1,200 subtasks under the first step (wider than one chunk of
    // parameters), 2 under the second, one of which has 2 of its own.
    let wide: Vec<NewTask> = (0..1_200)
        .map(|i| NewTask::subtask(steps[0], "prepare_node", format!("n{i:04}")))
        .collect();
    store.insert_tasks(&wide).await.unwrap();
    let narrow: Vec<NewTask> = (0..2)
        .map(|i| NewTask::subtask(steps[1], "deploy_node", format!("m{i}")))
        .collect();
    store.insert_tasks(&narrow).await.unwrap();
    let wide = by_creation(store.subtasks(steps[0]).await.unwrap());
    let narrow = by_creation(store.subtasks(steps[1]).await.unwrap());
    let deep: Vec<NewTask> = (0..2)
        .map(|i| NewTask::subtask(narrow[1], "identify_node", format!("d{i}")))
        .collect();
    store.insert_tasks(&deep).await.unwrap();
    let deep = by_creation(store.subtasks(narrow[1]).await.unwrap());
    let other = store
        .insert_task(&NewTask::new("verify_site"))
        .await
        .unwrap();
    for (task, text) in [
        (root.id, "root"),
        (wide[700], "wide"),
        (deep[0], "deep"),
        (other.id, "other"),
    ] {
        store.add_messages(&[super::msg(task, text)]).await.unwrap();
    }

    let texts = |t: &drydock::store::TreeRows| -> Vec<String> {
        t.messages.iter().map(|m| m.message.clone()).collect()
    };
    let ids =
        |t: &drydock::store::TreeRows| -> Vec<Uuid> { t.tasks.iter().map(|t| t.id).collect() };

    // The root alone: its steps under it.
    let t = store.task_tree(&root, Some(1)).await.unwrap();
    assert_eq!(ids(&t), vec![root.id]);
    assert_eq!(t.below, links(root.id, &steps));
    assert_eq!(texts(&t), ["root"]);

    // Two levels: the steps' subtasks under them, per step oldest first.
    let t = store.task_tree(&root, Some(2)).await.unwrap();
    let mut expected = vec![root.id];
    expected.extend(&steps);
    assert_eq!(ids(&t), expected);
    assert_eq!(t.below.len(), 1_202);
    let under = |p: Uuid| -> Vec<Uuid> {
        t.below
            .iter()
            .filter(|(parent, _)| *parent == p)
            .map(|(_, id)| *id)
            .collect()
    };
    assert_eq!(under(steps[0]), wide);
    assert_eq!(under(steps[1]), narrow);
    assert!(under(steps[2]).is_empty());
    assert_eq!(texts(&t), ["root"]);

    // Three levels: the wide layer read whole, its message with it.
    let t = store.task_tree(&root, Some(3)).await.unwrap();
    assert_eq!(t.tasks.len(), 1 + 3 + 1_202);
    assert_eq!(&ids(&t)[..4], &expected[..]);
    assert_eq!(t.below, links(narrow[1], &deep));
    assert_eq!(texts(&t), ["root", "wide"]);

    // The whole tree: nothing below it, every message, in order.
    let t = store.task_tree(&root, None).await.unwrap();
    assert_eq!(t.tasks.len(), 1 + 3 + 1_202 + 2);
    assert!(t.below.is_empty());
    assert_eq!(texts(&t), ["root", "wide", "deep"]);
    // Level by level: every task after its parent.
    let seen: std::collections::HashMap<Uuid, usize> = ids(&t)
        .into_iter()
        .enumerate()
        .map(|(i, id)| (id, i))
        .collect();
    for (i, task) in t.tasks.iter().enumerate().skip(1) {
        assert!(seen[&task.parent_id.unwrap()] < i, "{task:?}");
    }

    // A leaf: itself, nothing below.
    let leaf = store.get_task(deep[1]).await.unwrap().unwrap();
    let t = store.task_tree(&leaf, Some(2)).await.unwrap();
    assert_eq!(ids(&t), vec![leaf.id]);
    assert!(t.below.is_empty() && t.messages.is_empty());

    // Build data under a task: its own and its descendants', oldest
    // first; none from outside the tree.
    let first = store
        .add_build_data(&data(wide[1_100], "n1100"))
        .await
        .unwrap();
    let second = store.add_build_data(&data(deep[1], "d1")).await.unwrap();
    store.add_build_data(&data(other.id, "x")).await.unwrap();
    let third = store.add_build_data(&data(root.id, "r")).await.unwrap();
    let got: Vec<i64> = store
        .build_data_under(root.id)
        .await
        .unwrap()
        .iter()
        .map(|b| b.id)
        .collect();
    assert_eq!(got, vec![first.id, second.id, third.id]);
    let got: Vec<i64> = store
        .build_data_under(steps[1])
        .await
        .unwrap()
        .iter()
        .map(|b| b.id)
        .collect();
    assert_eq!(got, vec![second.id]);
    assert!(store.build_data_under(steps[2]).await.unwrap().is_empty());
}

/// `Store::task_versions` gives each existing task's version, the same as
/// `Store::task_version` reads it one at a time, and leaves out ids with no
/// task; a new message changes that task's version only.
pub async fn case_task_versions(store: Store) {
    let mut ids = Vec::new();
    for action in ["deploy_nodes", "verify_site", "prepare_nodes"] {
        ids.push(store.insert_task(&NewTask::new(action)).await.unwrap().id);
    }
    let missing = Uuid::new_v4();
    let mut asked = ids.clone();
    asked.push(missing);
    asked.push(ids[0]);
    let before = store.task_versions(&asked).await.unwrap();
    assert_eq!(before.len(), 3, "{before:?}");
    assert!(!before.contains_key(&missing));
    for id in &ids {
        let one = store.task_version(*id).await.unwrap();
        assert_eq!(before.get(id).copied(), one);
        assert_eq!(before[id].last_message, None);
    }
    store
        .add_messages(&[NewMessage {
            task_id: ids[1],
            message: "late".into(),
            error: false,
            context_type: "task".into(),
            context: ids[1].to_string(),
            extra: None,
        }])
        .await
        .unwrap();
    let after = store.task_versions(&asked).await.unwrap();
    assert_eq!(after[&ids[0]], before[&ids[0]]);
    assert_eq!(after[&ids[2]], before[&ids[2]]);
    assert_ne!(after[&ids[1]], before[&ids[1]]);
    assert!(after[&ids[1]].last_message.is_some());
    assert!(store.task_versions(&[]).await.unwrap().is_empty());
}
