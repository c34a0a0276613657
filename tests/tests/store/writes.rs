//! `Store::write_results`: one flush of the engine's writer.

use drydock::store::{
    Backend, NewMessage, NewTask, ResultStatus, Results, Store, StoreError, TaskOutcome,
    TaskStatus, Uuid,
};
use serde_json::json;

fn kv(d: &str, k: &str, v: Option<&str>) -> (String, String, Option<String>) {
    (d.to_owned(), k.to_owned(), v.map(str::to_owned))
}

fn note(task: Uuid, text: &str) -> NewMessage {
    NewMessage {
        task_id: task,
        message: text.into(),
        error: false,
        context_type: "task".into(),
        context: task.to_string(),
        extra: None,
    }
}

/// Key-value writes, messages, fenced outcomes and node states land
/// together; an invalid outcome writes nothing; on PostgreSQL a failing
/// part undoes the others (one transaction).
pub async fn case_write_results(store: Store) {
    let parent = store
        .insert_task(&NewTask::new("power_on_node"))
        .await
        .unwrap();
    let subs: Vec<NewTask> = ["n1", "n2"]
        .iter()
        .map(|n| NewTask::subtask(parent.id, "power_on_node", *n))
        .collect();
    store.insert_tasks(&subs).await.unwrap();
    let claimed = super::claim_all(&store, "ha-a", 3).await;
    assert_eq!(claimed.len(), 3, "the parent and both subtasks");
    for n in ["n1", "n2"] {
        store
            .upsert_node(n, &json!({"name": n, "oob": {"type": "sim"}}), None)
            .await
            .unwrap();
    }
    store.kv_set("sim", "gone", "x").await.unwrap();

    let (t1, t2) = (subs[0].id, subs[1].id);
    let mut ok = TaskOutcome::complete(t1, "ha-a", 3, ResultStatus::Success);
    ok.successes = vec!["n1".into()];
    // Deposed: epoch 2 is no longer this owner's.
    let stale = TaskOutcome::complete(t2, "ha-a", 2, ResultStatus::Failure);
    let changed = store
        .write_results(&Results {
            kv: &[kv("sim", "power/n1", Some("on")), kv("sim", "gone", None)],
            messages: &[note(t1, "first"), note(t1, "second")],
            outcomes: &[ok, stale],
            node_states: &[
                ("n1".into(), Some("on".into()), None),
                ("unregistered".into(), Some("on".into()), None),
            ],
        })
        .await
        .unwrap();
    assert_eq!(changed, 1, "the fenced-off outcome changes nothing");
    assert_eq!(
        store.kv_get("sim", "power/n1").await.unwrap().as_deref(),
        Some("on")
    );
    assert_eq!(store.kv_get("sim", "gone").await.unwrap(), None);
    assert_eq!(store.kv_usage("sim").await.unwrap(), (1, 10));
    let texts: Vec<String> = store
        .messages(t1)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.message)
        .collect();
    assert_eq!(texts, ["first", "second"]);
    let done = store.get_task(t1).await.unwrap().unwrap();
    assert_eq!(done.status, TaskStatus::Complete);
    assert_eq!(done.successes, ["n1"]);
    assert_eq!(
        store.get_task(t2).await.unwrap().unwrap().status,
        TaskStatus::Running
    );
    let n1 = store.get_node("n1").await.unwrap().unwrap();
    assert_eq!(n1.power_state.as_deref(), Some("on"));
    assert_eq!(
        store.get_node("n2").await.unwrap().unwrap().power_state,
        None
    );

    // An outcome that does not finish its task: refused before anything
    // is written.
    let mut running = TaskOutcome::complete(t2, "ha-a", 3, ResultStatus::Success);
    running.status = TaskStatus::Running;
    let err = store
        .write_results(&Results {
            kv: &[kv("sim", "never", Some("1"))],
            outcomes: &[running],
            ..Results::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    assert_eq!(store.kv_get("sim", "never").await.unwrap(), None);

    // A message for a task that does not exist fails the flush. On
    // PostgreSQL that undoes its key-value write and outcome; SQLite writes
    // each kind in its own transaction, key-value writes first.
    let fine = TaskOutcome::complete(t2, "ha-a", 3, ResultStatus::Success);
    let err = store
        .write_results(&Results {
            kv: &[kv("sim", "power/n2", Some("on"))],
            messages: &[note(Uuid::new_v4(), "orphan")],
            outcomes: &[fine],
            ..Results::default()
        })
        .await
        .unwrap_err();
    assert!(!err.is_retryable(), "{err:?}");
    let kept = store.kv_get("sim", "power/n2").await.unwrap();
    match store.backend() {
        Backend::Postgres => assert_eq!(kept, None, "one transaction"),
        Backend::Sqlite => assert_eq!(kept.as_deref(), Some("on")),
    }
    assert_eq!(
        store.get_task(t2).await.unwrap().unwrap().status,
        TaskStatus::Running,
        "no outcome after a failed message write"
    );
    assert_eq!(store.write_results(&Results::default()).await.unwrap(), 0);
}
