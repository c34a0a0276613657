//! `drydock::store` against both backends.
//!
//! Every `case_*` function runs twice: in `postgres::*` on a fresh database
//! created on the PostgreSQL server at `DRYDOCK_TEST_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`, which must be reachable:
//! the PostgreSQL tests fail, not skip, without it), and in `sqlite::*` on a
//! fresh file in a temporary directory.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use drydock::store::{
    Backend, ClaimScope, ClaimSpec, DateTime, NewBuildData, NewMessage, NewTask, ResultStatus,
    Store, StoreError, TaskFilter, TaskOutcome, TaskPatch, TaskRecord, TaskStatus, Utc, Uuid,
    testing,
};
use serde_json::json;

use drydock_tests::stores::{CASE_TIMEOUT, pg_admin_url};

#[path = "store/writes.rs"]
mod writes;
use writes::case_write_results;
#[path = "store/plans.rs"]
mod plans;
#[path = "store/trees.rs"]
mod trees;
use trees::{case_task_trees, case_task_versions};

drydock_tests::cases! {
    fresh_schema => case_fresh_schema,
    insert_get_list => case_insert_get_list,
    insert_conflict => case_insert_conflict,
    batch_insert_10k => case_batch_insert_10k,
    claim_concurrent => case_claim_concurrent,
    claim_scopes => case_claim_scopes,
    finish_fencing => case_finish_fencing,
    finish_10k => case_finish_10k,
    update_and_set_running => case_update_and_set_running,
    cancel_cascades => case_cancel_cascades,
    requeue_and_fail_owned => case_requeue_and_fail_owned,
    delete_older_than => case_delete_older_than,
    messages_in_order => case_messages_in_order,
    build_data_latest => case_build_data_latest,
    nodes_crud => case_nodes_crud,
    secrets => case_secrets,
    kv => case_kv,
    open_subtasks => case_open_subtasks,
    node_states_in_batches => case_node_states_in_batches,
    write_results => case_write_results,
    node_events_in_order => case_node_events_in_order,
    node_events_retention => case_node_events_retention,
    task_trees => case_task_trees,
    task_versions => case_task_versions,
}

fn label(store: &Store) -> &'static str {
    match store.backend() {
        Backend::Postgres => "postgres",
        Backend::Sqlite => "sqlite",
    }
}

async fn queued(store: &Store, n: usize, parent: Option<Uuid>) -> Vec<Uuid> {
    let tasks: Vec<NewTask> = (0..n)
        .map(|i| NewTask {
            parent_id: parent,
            node_name: parent.map(|_| format!("node{i:05}")),
            ..NewTask::new("deploy_node")
        })
        .collect();
    assert_eq!(store.insert_tasks(&tasks).await.unwrap(), n as u64);
    tasks.iter().map(|t| t.id).collect()
}

/// Queued top-level tasks inserted one at a time (distinct `created`, so
/// claims take them in this order).
async fn queued_in_order(store: &Store, n: usize) -> Vec<Uuid> {
    let mut ids = Vec::new();
    for _ in 0..n {
        ids.push(store.insert_task(&NewTask::new("noop")).await.unwrap().id);
    }
    ids
}

async fn claim_all(store: &Store, owner: &str, epoch: i64) -> Vec<Uuid> {
    let spec = ClaimSpec {
        scope: ClaimScope::Any,
        owner,
        epoch,
        limit: 100_000,
    };
    store
        .claim_tasks(&spec)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect()
}

// ---------------------------------------------------------------- cases

async fn case_fresh_schema(store: Store) {
    store.ping().await.unwrap();
    assert!(
        store
            .list_tasks(&TaskFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.list_nodes().await.unwrap().is_empty());
    assert!(store.secret_names().await.unwrap().is_empty());
    assert_eq!(store.kv_get("ipmi", "x").await.unwrap(), None);
    assert!(store.get_task(Uuid::new_v4()).await.unwrap().is_none());
    assert!(format!("{store:?}").contains(&format!("{:?}", store.backend())));
}

async fn case_insert_get_list(store: Store) {
    let mut top = NewTask::new("deploy_nodes");
    top.design_ref = Some("file:///site.yaml".into());
    top.node_filter = Some(json!({"filter_set_type": "union", "filter_set": []}));
    top.params = json!({"image": "jammy"});
    top.created_by = Some("shipyard".into());
    let deadline = whole_seconds_from_now(45);
    top.deadline = Some(deadline);
    let rec = store.insert_task(&top).await.unwrap();
    assert_eq!(rec.id, top.id);
    assert_eq!(rec.status, TaskStatus::Queued);
    assert_eq!(rec.result_status, ResultStatus::Incomplete);
    assert_eq!(rec.params, json!({"image": "jammy"}));
    assert_eq!(rec.node_filter, top.node_filter);
    assert_eq!(rec.created, rec.updated);
    assert_eq!(rec.attempt, 0);
    assert_eq!(rec.epoch, 0);
    assert!(!rec.terminate);
    assert!(rec.successes.is_empty() && rec.failures.is_empty());
    assert_eq!(rec.deadline, Some(deadline));

    let got = store.get_task(top.id).await.unwrap().unwrap();
    assert_eq!(got, rec, "get returns what insert returned");
    let json = serde_json::to_value(&got).unwrap();
    assert_eq!(json["status"], "queued");
    assert_eq!(json["result_status"], "incomplete");

    // JSON null filter and params are normalised.
    let mut plain = NewTask::new("verify_site");
    plain.node_filter = Some(serde_json::Value::Null);
    plain.params = serde_json::Value::Null;
    plain.status = TaskStatus::Requested;
    let plain = store.insert_task(&plain).await.unwrap();
    assert_eq!(plain.node_filter, None);
    assert_eq!(plain.params, json!({}));
    assert_eq!(plain.status, TaskStatus::Requested);

    let s1 = store
        .insert_task(&NewTask::subtask(top.id, "deploy_node", "n2"))
        .await
        .unwrap();
    let s0 = store
        .insert_task(&NewTask::subtask(top.id, "deploy_node", "n1"))
        .await
        .unwrap();
    let s_anon = store
        .insert_task(&NewTask {
            parent_id: Some(top.id),
            ..NewTask::new("noop")
        })
        .await
        .unwrap();

    // Newest first.
    let all = store.list_tasks(&TaskFilter::default()).await.unwrap();
    let ids: Vec<Uuid> = all.iter().map(|t| t.id).collect();
    assert_eq!(ids, vec![s_anon.id, s0.id, s1.id, plain.id, top.id]);
    for w in all.windows(2) {
        assert!(w[0].created >= w[1].created);
    }

    let top_level = store
        .list_tasks(&TaskFilter {
            parent: Some(None),
            ..TaskFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(
        top_level.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![plain.id, top.id]
    );

    let children = store
        .list_tasks(&TaskFilter {
            parent: Some(Some(top.id)),
            ..TaskFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(children.len(), 3);

    let requested = store
        .list_tasks(&TaskFilter {
            status: Some(TaskStatus::Requested),
            ..TaskFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(
        requested.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![plain.id]
    );

    let page = store
        .list_tasks(&TaskFilter {
            limit: 2,
            offset: 1,
            ..TaskFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(
        page.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![s0.id, s1.id]
    );

    // Subtasks by node name, unnamed last.
    let subs = store.subtasks(top.id).await.unwrap();
    assert_eq!(
        subs.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![s0.id, s1.id, s_anon.id]
    );
    let sub_ids = store.subtask_ids(top.id).await.unwrap();
    assert_eq!(sub_ids, vec![s1.id, s0.id, s_anon.id], "oldest first");
    assert!(store.subtask_ids(plain.id).await.unwrap().is_empty());
}

/// `minutes` from now, in whole seconds.
fn whole_seconds_from_now(minutes: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(Utc::now().timestamp() + 60 * minutes, 0).unwrap()
}

async fn case_insert_conflict(store: Store) {
    let t = NewTask::new("noop");
    store.insert_task(&t).await.unwrap();
    let err = store.insert_task(&t).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    // A batch with a taken id inserts nothing.
    let batch = vec![NewTask::new("noop"), t.clone()];
    let err = store.insert_tasks(&batch).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert!(store.get_task(batch[0].id).await.unwrap().is_none());
    // A missing parent is refused.
    let orphan = NewTask {
        parent_id: Some(Uuid::new_v4()),
        ..NewTask::new("noop")
    };
    assert!(store.insert_task(&orphan).await.is_err());
}

async fn case_batch_insert_10k(store: Store) {
    let parent = store
        .insert_task(&NewTask::new("deploy_nodes"))
        .await
        .unwrap();
    let subtasks: Vec<NewTask> = (0..10_000)
        .map(|i| NewTask {
            params: json!({"i": i}),
            ..NewTask::subtask(parent.id, "deploy_node", format!("node{i:05}"))
        })
        .collect();
    let start = Instant::now();
    let n = store.insert_tasks(&subtasks).await.unwrap();
    let elapsed = start.elapsed();
    eprintln!(
        "[{}] insert_tasks: 10,000 rows in {:.1} ms",
        label(&store),
        elapsed.as_secs_f64() * 1000.0
    );
    assert_eq!(n, 10_000);
    assert_eq!(store.insert_tasks(&[]).await.unwrap(), 0);

    let ids = store.subtask_ids(parent.id).await.unwrap();
    assert_eq!(ids.len(), 10_000);
    let subs = store.subtasks(parent.id).await.unwrap();
    assert_eq!(subs.len(), 10_000);
    assert_eq!(subs[0].node_name.as_deref(), Some("node00000"));
    assert_eq!(subs[9_999].node_name.as_deref(), Some("node09999"));
    assert_eq!(subs[42].params, json!({"i": 42}));
    assert!(subs.iter().all(|t| t.status == TaskStatus::Queued));

    let counts = store.count_subtasks_by_status(parent.id).await.unwrap();
    assert_eq!(
        counts,
        vec![(TaskStatus::Queued, ResultStatus::Incomplete, 10_000)]
    );
    let page = store
        .list_tasks(&TaskFilter {
            parent: Some(Some(parent.id)),
            limit: 0,
            ..TaskFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(page.len(), 10_000, "limit 0 means no limit");
}

async fn case_claim_concurrent(store: Store) {
    const TASKS: usize = 2_000;
    const CLAIMERS: usize = 8;
    let mut ids = queued(&store, TASKS, None).await;
    let mut handles = Vec::new();
    for c in 0..CLAIMERS {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let owner = format!("instance-{c}");
            let mut mine = Vec::new();
            loop {
                let spec = ClaimSpec {
                    scope: ClaimScope::Any,
                    owner: &owner,
                    epoch: c as i64 + 1,
                    limit: 7,
                };
                let got = store.claim_tasks(&spec).await.unwrap();
                if got.is_empty() {
                    break;
                }
                assert!(got.len() <= 7);
                for t in got {
                    assert_eq!(t.status, TaskStatus::Running);
                    assert_eq!(t.owner.as_deref(), Some(owner.as_str()));
                    assert_eq!(t.epoch, c as i64 + 1);
                    assert_eq!(t.attempt, 1);
                    mine.push(t.id);
                }
            }
            (owner, mine)
        }));
    }
    let mut seen: HashMap<Uuid, String> = HashMap::new();
    let mut per_claimer = Vec::new();
    for h in handles {
        let (owner, mine) = h.await.unwrap();
        per_claimer.push(mine.len());
        for id in mine {
            if let Some(prev) = seen.insert(id, owner.clone()) {
                panic!("task {id} claimed by both {prev} and {owner}");
            }
        }
    }
    eprintln!("[{}] claims per claimer: {per_claimer:?}", label(&store));
    assert_eq!(seen.len(), TASKS, "every task claimed exactly once");
    let mut claimed: Vec<Uuid> = seen.keys().copied().collect();
    claimed.sort();
    ids.sort();
    assert_eq!(claimed, ids);
    // The database agrees about owners.
    let running = store
        .list_tasks(&TaskFilter {
            status: Some(TaskStatus::Running),
            limit: 0,
            ..TaskFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(running.len(), TASKS);
    for t in running {
        assert_eq!(t.owner.as_ref(), seen.get(&t.id));
        assert_eq!(t.attempt, 1);
    }
    assert!(claim_all(&store, "late", 1).await.is_empty());
}

async fn case_claim_scopes(store: Store) {
    let a = store
        .insert_task(&NewTask::new("prepare_nodes"))
        .await
        .unwrap();
    let b = store
        .insert_task(&NewTask::new("deploy_nodes"))
        .await
        .unwrap();
    let a_subs = queued(&store, 3, Some(a.id)).await;
    let b_subs = queued(&store, 2, Some(b.id)).await;
    let spec = |scope, limit| ClaimSpec {
        scope,
        owner: "me",
        epoch: 3,
        limit,
    };

    assert!(
        store
            .claim_tasks(&spec(ClaimScope::Any, 0))
            .await
            .unwrap()
            .is_empty()
    );

    // Top-level: oldest first, one at a time.
    let got = store
        .claim_tasks(&spec(ClaimScope::TopLevel, 1))
        .await
        .unwrap();
    assert_eq!(got.iter().map(|t| t.id).collect::<Vec<_>>(), vec![a.id]);
    let got = store
        .claim_tasks(&spec(ClaimScope::TopLevel, 5))
        .await
        .unwrap();
    assert_eq!(got.iter().map(|t| t.id).collect::<Vec<_>>(), vec![b.id]);
    assert!(
        store
            .claim_tasks(&spec(ClaimScope::TopLevel, 5))
            .await
            .unwrap()
            .is_empty()
    );

    // Children of b only.
    let got = store
        .claim_tasks(&spec(ClaimScope::ChildrenOf(b.id), 10))
        .await
        .unwrap();
    let mut got_ids: Vec<Uuid> = got.iter().map(|t| t.id).collect();
    got_ids.sort();
    let mut want = b_subs.clone();
    want.sort();
    assert_eq!(got_ids, want);

    // Remaining subtasks (a's).
    let got = store
        .claim_tasks(&spec(ClaimScope::Subtasks, 10))
        .await
        .unwrap();
    let mut got_ids: Vec<Uuid> = got.iter().map(|t| t.id).collect();
    got_ids.sort();
    let mut want = a_subs.clone();
    want.sort();
    assert_eq!(got_ids, want);
    assert!(
        store
            .claim_tasks(&spec(ClaimScope::Any, 10))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn case_finish_fencing(store: Store) {
    let ids = queued(&store, 3, None).await;
    let claimed = claim_all(&store, "leader-a", 7).await;
    assert_eq!(claimed.len(), 3);
    let (t0, t1, t2) = (ids[0], ids[1], ids[2]);

    let mut ok = TaskOutcome::complete(t0, "leader-a", 7, ResultStatus::Success);
    ok.successes = vec!["n1".into(), "n2".into()];
    ok.result_message = Some("deployed".into());
    let wrong_owner = TaskOutcome::complete(t1, "leader-b", 7, ResultStatus::Failure);
    let wrong_epoch = TaskOutcome::complete(t2, "leader-a", 6, ResultStatus::Failure);

    let before1 = store.get_task(t1).await.unwrap().unwrap();
    let before2 = store.get_task(t2).await.unwrap().unwrap();
    let changed = store
        .finish_tasks(&[ok.clone(), wrong_owner, wrong_epoch])
        .await
        .unwrap();
    assert_eq!(changed, 1, "only the right owner and epoch changes a row");
    assert_eq!(store.get_task(t1).await.unwrap().unwrap(), before1);
    assert_eq!(store.get_task(t2).await.unwrap().unwrap(), before2);

    let done = store.get_task(t0).await.unwrap().unwrap();
    assert_eq!(done.status, TaskStatus::Complete);
    assert_eq!(done.result_status, ResultStatus::Success);
    assert_eq!(done.successes, vec!["n1".to_string(), "n2".to_string()]);
    assert_eq!(done.result_message.as_deref(), Some("deployed"));
    assert_eq!(done.terminated, None, "complete does not set terminated");
    assert!(done.updated >= done.created);

    // Finishing again changes nothing (no longer running).
    assert_eq!(store.finish_tasks(&[ok]).await.unwrap(), 0);

    // Terminated outcome sets terminated and terminated_by.
    let mut term = TaskOutcome::complete(t1, "leader-a", 7, ResultStatus::Failure);
    term.status = TaskStatus::Terminated;
    term.terminated_by = Some("operator".into());
    term.failures = vec!["n3".into()];
    term.error_count = 2;
    term.result_reason = Some("cancelled".into());
    assert_eq!(store.finish_tasks(&[term]).await.unwrap(), 1);
    let t = store.get_task(t1).await.unwrap().unwrap();
    assert_eq!(t.status, TaskStatus::Terminated);
    assert!(t.terminated.is_some());
    assert_eq!(t.terminated_by.as_deref(), Some("operator"));
    assert_eq!(t.failures, vec!["n3".to_string()]);
    assert_eq!(t.error_count, 2);
    assert_eq!(t.result_reason.as_deref(), Some("cancelled"));

    // A non-terminal outcome is refused and changes nothing.
    let mut bad = TaskOutcome::complete(t2, "leader-a", 7, ResultStatus::Success);
    bad.status = TaskStatus::Running;
    let err = store.finish_tasks(&[bad]).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    assert_eq!(store.finish_tasks(&[]).await.unwrap(), 0);

    // A re-claim (new epoch) fences the old claim out.
    assert_eq!(store.requeue_owned("leader-a", &[]).await.unwrap(), 1);
    let again = claim_all(&store, "leader-a", 8).await;
    assert_eq!(again, vec![t2]);
    let stale = TaskOutcome::complete(t2, "leader-a", 7, ResultStatus::Success);
    assert_eq!(store.finish_tasks(&[stale]).await.unwrap(), 0);
    let fresh = TaskOutcome::complete(t2, "leader-a", 8, ResultStatus::PartialSuccess);
    assert_eq!(store.finish_tasks(&[fresh]).await.unwrap(), 1);
    let t = store.get_task(t2).await.unwrap().unwrap();
    assert_eq!(t.attempt, 2);
    assert_eq!(t.result_status, ResultStatus::PartialSuccess);
}

async fn case_finish_10k(store: Store) {
    let parent = store
        .insert_task(&NewTask::new("deploy_nodes"))
        .await
        .unwrap();
    let ids = queued(&store, 10_000, Some(parent.id)).await;
    let claimed = claim_all(&store, "leader", 1).await;
    assert_eq!(claimed.len(), 10_001);
    let outcomes: Vec<TaskOutcome> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let mut o = TaskOutcome::complete(
                *id,
                "leader",
                // Every 10th with a stale epoch: must not change.
                if i % 10 == 0 { 0 } else { 1 },
                if i % 3 == 0 {
                    ResultStatus::Failure
                } else {
                    ResultStatus::Success
                },
            );
            o.successes = vec![format!("node{i:05}")];
            o.result_message = Some(format!("done {i}"));
            o
        })
        .collect();
    let start = Instant::now();
    let changed = store.finish_tasks(&outcomes).await.unwrap();
    let elapsed = start.elapsed();
    eprintln!(
        "[{}] finish_tasks: 10,000 outcomes in {:.1} ms",
        label(&store),
        elapsed.as_secs_f64() * 1000.0
    );
    assert_eq!(changed, 9_000);
    let counts: HashMap<(TaskStatus, ResultStatus), i64> = store
        .count_subtasks_by_status(parent.id)
        .await
        .unwrap()
        .into_iter()
        .map(|(s, r, n)| ((s, r), n))
        .collect();
    assert_eq!(
        counts[&(TaskStatus::Running, ResultStatus::Incomplete)],
        1_000
    );
    assert_eq!(
        counts[&(TaskStatus::Complete, ResultStatus::Failure)],
        3_000
    );
    assert_eq!(
        counts[&(TaskStatus::Complete, ResultStatus::Success)],
        6_000
    );
    let t = store.get_task(ids[1]).await.unwrap().unwrap();
    assert_eq!(t.successes, vec!["node00001".to_string()]);
    assert_eq!(t.result_message.as_deref(), Some("done 1"));
    // 1,000 still running: the parent has open subtasks until they end.
    assert!(store.has_open_subtasks(parent.id).await.unwrap());
    let rest: Vec<TaskOutcome> = subs_running(&store, parent.id)
        .await
        .into_iter()
        .map(|t| TaskOutcome::complete(t.id, &t.owner.unwrap(), t.epoch, ResultStatus::Success))
        .collect();
    assert_eq!(store.finish_tasks(&rest).await.unwrap(), 1_000);
    assert!(!store.has_open_subtasks(parent.id).await.unwrap());
}

/// The running subtasks of `parent`.
async fn subs_running(store: &Store, parent: Uuid) -> Vec<TaskRecord> {
    store
        .subtasks(parent)
        .await
        .unwrap()
        .into_iter()
        .filter(|t| t.status == TaskStatus::Running)
        .collect()
}

async fn case_update_and_set_running(store: Store) {
    let t = store
        .insert_task(&NewTask::new("prepare_site"))
        .await
        .unwrap();
    assert!(
        !store
            .update_task(Uuid::new_v4(), &TaskPatch::default())
            .await
            .unwrap()
    );

    assert!(store.set_running(t.id, "me", 4).await.unwrap());
    let r = store.get_task(t.id).await.unwrap().unwrap();
    assert_eq!(
        (r.status, r.owner.as_deref(), r.epoch, r.attempt),
        (TaskStatus::Running, Some("me"), 4, 1)
    );

    let patch = TaskPatch {
        result_status: Some(ResultStatus::PartialSuccess),
        result_message: Some("half".into()),
        result_reason: Some("one node failed".into()),
        successes: Some(vec!["a".into()]),
        failures: Some(vec!["b".into()]),
        error_count: Some(1),
        retry: Some(2),
        owner: Some(None),
        deadline: Some(Some(DateTime::from_timestamp(2_000_000_000, 0).unwrap())),
        ..TaskPatch::default()
    };
    assert!(store.update_task(t.id, &patch).await.unwrap());
    let r = store.get_task(t.id).await.unwrap().unwrap();
    assert_eq!(r.status, TaskStatus::Running, "status untouched");
    assert_eq!(r.result_status, ResultStatus::PartialSuccess);
    assert_eq!(r.result_message.as_deref(), Some("half"));
    assert_eq!(r.result_reason.as_deref(), Some("one node failed"));
    assert_eq!(r.successes, vec!["a".to_string()]);
    assert_eq!(r.failures, vec!["b".to_string()]);
    assert_eq!((r.error_count, r.retry), (1, 2));
    assert_eq!(r.owner, None);
    assert_eq!(r.deadline.map(|d| d.timestamp()), Some(2_000_000_000));

    let patch = TaskPatch {
        status: Some(TaskStatus::Terminated),
        deadline: Some(None),
        ..TaskPatch::default()
    };
    assert!(store.update_task(t.id, &patch).await.unwrap());
    let r = store.get_task(t.id).await.unwrap().unwrap();
    assert_eq!(r.status, TaskStatus::Terminated);
    assert!(r.terminated.is_some());
    assert_eq!(r.deadline, None);
    assert!(
        !store.set_running(t.id, "me", 5).await.unwrap(),
        "never revives a finished task"
    );
    assert!(!store.set_running(Uuid::new_v4(), "me", 5).await.unwrap());
}

async fn case_cancel_cascades(store: Store) {
    let top = store
        .insert_task(&NewTask::new("deploy_nodes"))
        .await
        .unwrap();
    let running_child = store
        .insert_task(&NewTask::subtask(top.id, "deploy_node", "n1"))
        .await
        .unwrap();
    let queued_child = store
        .insert_task(&NewTask::subtask(top.id, "deploy_node", "n2"))
        .await
        .unwrap();
    let done_child = store
        .insert_task(&NewTask::subtask(top.id, "deploy_node", "n3"))
        .await
        .unwrap();
    let grandchild = store
        .insert_task(&NewTask::subtask(
            running_child.id,
            "apply_node_storage",
            "n1",
        ))
        .await
        .unwrap();
    let other = store.insert_task(&NewTask::new("noop")).await.unwrap();

    assert!(store.set_running(top.id, "me", 1).await.unwrap());
    assert!(store.set_running(running_child.id, "me", 1).await.unwrap());
    assert!(store.set_running(done_child.id, "me", 1).await.unwrap());
    let done = TaskOutcome::complete(done_child.id, "me", 1, ResultStatus::Success);
    assert_eq!(store.finish_tasks(&[done]).await.unwrap(), 1);
    let done_before = store.get_task(done_child.id).await.unwrap().unwrap();

    assert!(!store.is_cancel_requested(top.id).await.unwrap());
    let t = store
        .request_cancel(top.id, "operator")
        .await
        .unwrap()
        .unwrap();
    assert!(t.terminate);
    assert_eq!(
        t.status,
        TaskStatus::Running,
        "running tasks are left to their executor"
    );
    assert_eq!(t.terminated_by.as_deref(), Some("operator"));
    assert!(store.is_cancel_requested(top.id).await.unwrap());

    let rc = store.get_task(running_child.id).await.unwrap().unwrap();
    assert!(rc.terminate);
    assert_eq!(rc.status, TaskStatus::Running);
    assert_eq!(rc.terminated_by.as_deref(), Some("operator"));

    for id in [queued_child.id, grandchild.id] {
        let q = store.get_task(id).await.unwrap().unwrap();
        assert!(q.terminate);
        assert_eq!(q.status, TaskStatus::Terminated);
        assert_eq!(q.result_status, ResultStatus::Failure);
        assert_eq!(q.result_message.as_deref(), Some("cancelled"));
        assert_eq!(q.terminated_by.as_deref(), Some("operator"));
        assert!(q.terminated.is_some());
    }
    assert_eq!(
        store.get_task(done_child.id).await.unwrap().unwrap(),
        done_before
    );
    assert!(!store.is_cancel_requested(other.id).await.unwrap());
    assert_eq!(store.get_task(other.id).await.unwrap().unwrap(), other);

    // Nothing queued under a cancelled tree is claimable.
    assert!(
        claim_all(&store, "x", 1)
            .await
            .iter()
            .all(|id| *id == other.id)
    );

    // A queued top-level task is terminated directly.
    let q = store.insert_task(&NewTask::new("noop")).await.unwrap();
    let q = store.request_cancel(q.id, "op2").await.unwrap().unwrap();
    assert_eq!(q.status, TaskStatus::Terminated);

    assert!(
        store
            .request_cancel(Uuid::new_v4(), "x")
            .await
            .unwrap()
            .is_none()
    );
    let err = store.is_cancel_requested(Uuid::new_v4()).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
}

async fn case_requeue_and_fail_owned(store: Store) {
    let ids = queued_in_order(&store, 6).await;
    let spec = |owner, limit| ClaimSpec {
        scope: ClaimScope::Any,
        owner,
        epoch: 1,
        limit,
    };
    let dead = store.claim_tasks(&spec("dead", 3)).await.unwrap();
    let alive = store.claim_tasks(&spec("alive", 2)).await.unwrap();
    assert_eq!(
        dead.iter().map(|t| t.id).collect::<Vec<_>>(),
        ids[0..3].to_vec()
    );
    assert_eq!(
        alive.iter().map(|t| t.id).collect::<Vec<_>>(),
        ids[3..5].to_vec()
    );
    // One of the dead instance's tasks had a cancel request.
    store.request_cancel(ids[2], "op").await.unwrap();

    assert_eq!(store.requeue_owned("dead", &[]).await.unwrap(), 3);
    assert_eq!(store.requeue_owned("dead", &[]).await.unwrap(), 0);
    for id in &ids[0..2] {
        let t = store.get_task(*id).await.unwrap().unwrap();
        assert_eq!(t.status, TaskStatus::Queued);
        assert_eq!(t.owner, None);
    }
    let cancelled = store.get_task(ids[2]).await.unwrap().unwrap();
    assert_eq!(cancelled.status, TaskStatus::Terminated);
    assert_eq!(cancelled.result_status, ResultStatus::Failure);

    // Requeued tasks are claimable again (attempt 2); the cancelled one is not.
    let again = store.claim_tasks(&spec("new", 10)).await.unwrap();
    let again_ids: Vec<Uuid> = again.iter().map(|t| t.id).collect();
    assert_eq!(again_ids, vec![ids[0], ids[1], ids[5]]);
    assert_eq!(again[0].attempt, 2);

    assert_eq!(store.fail_owned("alive", "instance lost").await.unwrap(), 2);
    for id in &ids[3..5] {
        let t = store.get_task(*id).await.unwrap().unwrap();
        assert_eq!(t.status, TaskStatus::Complete);
        assert_eq!(t.result_status, ResultStatus::Failure);
        assert_eq!(t.result_reason.as_deref(), Some("instance lost"));
    }
    assert_eq!(store.fail_owned("alive", "again").await.unwrap(), 0);
    assert_eq!(store.fail_owned("nobody", "x").await.unwrap(), 0);
}

async fn case_delete_older_than(store: Store) {
    // Old and finished: deleted with its subtasks and messages.
    let old = store
        .insert_task(&NewTask::new("deploy_nodes"))
        .await
        .unwrap();
    let old_subs = queued(&store, 3, Some(old.id)).await;
    // A step's own subtasks (a tree three deep) go with it.
    let grandchildren = queued(&store, 2, Some(old_subs[1])).await;
    store
        .add_messages(&[
            msg(old.id, "top"),
            msg(old_subs[0], "sub"),
            msg(grandchildren[0], "grandchild"),
        ])
        .await
        .unwrap();
    store
        .add_build_data(&NewBuildData {
            node_name: "n1".into(),
            task_id: Some(old_subs[0]),
            generator: "lshw".into(),
            format: "text/xml".into(),
            content: "<x/>".into(),
        })
        .await
        .unwrap();
    // Old but still running: kept.
    let old_running = store
        .insert_task(&NewTask::new("deploy_nodes"))
        .await
        .unwrap();
    // Recent and finished: kept.
    let recent = store
        .insert_task(&NewTask::new("verify_site"))
        .await
        .unwrap();

    for t in [old.id, recent.id] {
        let patch = TaskPatch {
            status: Some(TaskStatus::Complete),
            ..TaskPatch::default()
        };
        assert!(store.update_task(t, &patch).await.unwrap());
    }
    assert!(store.set_running(old_running.id, "me", 1).await.unwrap());
    assert!(store.backdate_task_for_tests(old.id, 10).await.unwrap());
    assert!(
        store
            .backdate_task_for_tests(old_running.id, 10)
            .await
            .unwrap()
    );
    assert!(store.backdate_task_for_tests(recent.id, 2).await.unwrap());

    assert_eq!(store.delete_tasks_older_than(30).await.unwrap(), 0);
    assert_eq!(store.delete_tasks_older_than(5).await.unwrap(), 1);
    assert!(store.get_task(old.id).await.unwrap().is_none());
    for id in &old_subs {
        assert!(
            store.get_task(*id).await.unwrap().is_none(),
            "subtasks cascade"
        );
    }
    assert!(store.messages(old.id).await.unwrap().is_empty());
    assert!(store.messages(old_subs[0]).await.unwrap().is_empty());
    for id in &grandchildren {
        assert!(store.get_task(*id).await.unwrap().is_none(), "whole tree");
    }
    assert!(store.messages(grandchildren[0]).await.unwrap().is_empty());
    // Build data outlives the task that collected it.
    let bd = store.build_data_for_node("n1", false).await.unwrap();
    assert_eq!(bd.len(), 1);
    assert_eq!(bd[0].task_id, None);

    assert!(store.get_task(old_running.id).await.unwrap().is_some());
    assert!(store.get_task(recent.id).await.unwrap().is_some());
    assert_eq!(store.delete_tasks_older_than(1).await.unwrap(), 1);
    assert!(store.get_task(recent.id).await.unwrap().is_none());
}

fn msg(task_id: Uuid, text: &str) -> NewMessage {
    NewMessage {
        task_id,
        message: text.to_string(),
        error: false,
        context_type: "task".into(),
        context: task_id.to_string(),
        extra: None,
    }
}

async fn case_messages_in_order(store: Store) {
    let a = store
        .insert_task(&NewTask::new("prepare_nodes"))
        .await
        .unwrap();
    let b = store
        .insert_task(&NewTask::subtask(a.id, "identify_node", "n1"))
        .await
        .unwrap();
    let mut batch: Vec<NewMessage> = (0..1_200).map(|i| msg(a.id, &format!("m{i}"))).collect();
    batch[5].error = true;
    batch[5].context_type = "node".into();
    batch[5].context = "n1".into();
    batch[5].extra = Some(json!({"ipmi": {"rc": 1}}));
    assert_eq!(store.add_messages(&batch).await.unwrap(), 1_200);
    assert_eq!(store.add_messages(&[]).await.unwrap(), 0);
    store.add_messages(&[msg(b.id, "sub 1")]).await.unwrap();
    store.add_messages(&[msg(a.id, "last")]).await.unwrap();

    let ms = store.messages(a.id).await.unwrap();
    assert_eq!(ms.len(), 1_201);
    for w in ms.windows(2) {
        assert!(w[0].seq < w[1].seq);
    }
    let texts: Vec<&str> = ms.iter().map(|m| m.message.as_str()).collect();
    assert_eq!(texts[0], "m0");
    assert_eq!(texts[1_199], "m1199");
    assert_eq!(texts[1_200], "last");
    assert!(ms[5].error);
    assert_eq!(ms[5].context_type, "node");
    assert_eq!(ms[5].context, "n1");
    assert_eq!(ms[5].extra, Some(json!({"ipmi": {"rc": 1}})));
    assert_eq!(ms[0].extra, None);
    assert_eq!(ms[0].task_id, a.id);

    let rolled = store.messages_for_tasks(&[a.id, b.id]).await.unwrap();
    assert_eq!(rolled.len(), 1_202);
    assert_eq!(rolled[1_200].message, "sub 1");
    assert_eq!(rolled[1_201].message, "last");
    assert!(store.messages_for_tasks(&[]).await.unwrap().is_empty());

    // Messages need an existing task.
    assert!(
        store
            .add_messages(&[msg(Uuid::new_v4(), "x")])
            .await
            .is_err()
    );
}

async fn case_build_data_latest(store: Store) {
    let t = store
        .insert_task(&NewTask::new("prepare_nodes"))
        .await
        .unwrap();
    let add = |node: &str, generator: &str, content: &str, task: Option<Uuid>| NewBuildData {
        node_name: node.into(),
        task_id: task,
        generator: generator.into(),
        format: "text/plain".into(),
        content: content.into(),
    };
    let first = store
        .add_build_data(&add("n1", "lshw", "v1", Some(t.id)))
        .await
        .unwrap();
    assert_eq!(first.content, "v1");
    assert_eq!(first.task_id, Some(t.id));
    store
        .add_build_data(&add("n1", "dmidecode", "d1", None))
        .await
        .unwrap();
    store
        .add_build_data(&add("n1", "lshw", "v2", Some(t.id)))
        .await
        .unwrap();
    store
        .add_build_data(&add("n2", "lshw", "other", None))
        .await
        .unwrap();

    let all = store.build_data_for_node("n1", false).await.unwrap();
    assert_eq!(
        all.iter().map(|b| b.content.as_str()).collect::<Vec<_>>(),
        vec!["v2", "d1", "v1"],
        "newest first"
    );
    let latest = store.build_data_for_node("n1", true).await.unwrap();
    assert_eq!(
        latest
            .iter()
            .map(|b| (b.generator.as_str(), b.content.as_str()))
            .collect::<Vec<_>>(),
        vec![("dmidecode", "d1"), ("lshw", "v2")]
    );
    let by_task = store.build_data_for_task(t.id).await.unwrap();
    assert_eq!(
        by_task
            .iter()
            .map(|b| b.content.as_str())
            .collect::<Vec<_>>(),
        vec!["v1", "v2"]
    );
    assert!(
        store
            .build_data_for_node("nope", true)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn case_nodes_crud(store: Store) {
    let spec = json!({"oob": {"type": "ipmi", "address": "10.0.0.5"}, "tags": ["a"]});
    let n = store
        .upsert_node("node1", &spec, Some("node1-bmc"))
        .await
        .unwrap();
    assert_eq!(n.name, "node1");
    assert_eq!(n.spec, spec);
    assert_eq!(n.credential.as_deref(), Some("node1-bmc"));
    assert_eq!(
        (n.power_state.as_deref(), n.boot_device.as_deref()),
        (None, None)
    );

    store
        .set_node_state("node1", Some("on"), None)
        .await
        .unwrap();
    store
        .set_node_state("node1", None, Some("pxe"))
        .await
        .unwrap();
    let err = store
        .set_node_state("ghost", Some("on"), None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");

    let spec2 = json!({"oob": {"type": "redfish"}});
    let n2 = store.upsert_node("node1", &spec2, None).await.unwrap();
    assert_eq!(n2.spec, spec2);
    assert_eq!(n2.credential, None);
    assert_eq!(n2.created, n.created, "upsert keeps creation time");
    assert!(n2.updated >= n.updated);
    assert_eq!(
        n2.power_state.as_deref(),
        Some("on"),
        "state survives upsert"
    );
    assert_eq!(n2.boot_device.as_deref(), Some("pxe"));

    store
        .upsert_node("node0", &json!({}), Some("shared"))
        .await
        .unwrap();
    let names: Vec<String> = store
        .list_nodes()
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.name)
        .collect();
    assert_eq!(names, vec!["node0", "node1"]);
    assert_eq!(store.get_node("node1").await.unwrap().unwrap(), n2);
    assert!(store.get_node("ghost").await.unwrap().is_none());

    // The credential is a secret's name; the node never holds the value.
    store.put_secret("shared", "hunter2").await.unwrap();
    let n0 = store.get_node("node0").await.unwrap().unwrap();
    assert_eq!(n0.credential.as_deref(), Some("shared"));
    assert!(!serde_json::to_string(&n0).unwrap().contains("hunter2"));

    assert!(store.delete_node("node1").await.unwrap());
    assert!(!store.delete_node("node1").await.unwrap());
    assert_eq!(store.list_nodes().await.unwrap().len(), 1);
    assert_eq!(
        store.get_secret("shared").await.unwrap().as_deref(),
        Some("hunter2")
    );
}

async fn case_secrets(store: Store) {
    assert_eq!(store.get_secret("bmc").await.unwrap(), None);
    store.put_secret("bmc", "pa55").await.unwrap();
    store.put_secret("a-first", "x").await.unwrap();
    assert_eq!(
        store.get_secret("bmc").await.unwrap().as_deref(),
        Some("pa55")
    );
    store.put_secret("bmc", "rotated").await.unwrap();
    assert_eq!(
        store.get_secret("bmc").await.unwrap().as_deref(),
        Some("rotated")
    );
    assert_eq!(store.secret_names().await.unwrap(), vec!["a-first", "bmc"]);
    assert!(store.delete_secret("bmc").await.unwrap());
    assert!(!store.delete_secret("bmc").await.unwrap());
    assert_eq!(store.get_secret("bmc").await.unwrap(), None);
    assert_eq!(store.secret_names().await.unwrap(), vec!["a-first"]);
}

async fn case_kv(store: Store) {
    assert_eq!(store.kv_get("maas", "token").await.unwrap(), None);
    store.kv_set("maas", "token", "t1").await.unwrap();
    store.kv_set("ipmi", "token", "other").await.unwrap();
    assert_eq!(
        store.kv_get("maas", "token").await.unwrap().as_deref(),
        Some("t1")
    );
    store.kv_set("maas", "token", "t2").await.unwrap();
    assert_eq!(
        store.kv_get("maas", "token").await.unwrap().as_deref(),
        Some("t2")
    );
    assert_eq!(
        store.kv_get("ipmi", "token").await.unwrap().as_deref(),
        Some("other")
    );
    assert!(store.kv_delete("maas", "token").await.unwrap());
    assert!(!store.kv_delete("maas", "token").await.unwrap());
    assert_eq!(store.kv_get("maas", "token").await.unwrap(), None);
    assert_eq!(
        store.kv_get("ipmi", "token").await.unwrap().as_deref(),
        Some("other")
    );

    // Usage (keys, bytes of keys plus values) follows every kind of write.
    assert_eq!(store.kv_usage("maas").await.unwrap(), (0, 0));
    assert_eq!(store.kv_usage("ipmi").await.unwrap(), (1, 10));
    assert_eq!(store.kv_usage("nobody").await.unwrap(), (0, 0));
    store.kv_set("maas", "a", "12345").await.unwrap();
    store.kv_set("maas", "a", "1").await.unwrap();
    assert_eq!(store.kv_usage("maas").await.unwrap(), (1, 2));
    let w = |d: &str, k: &str, v: Option<&str>| (d.to_owned(), k.to_owned(), v.map(str::to_owned));
    store
        .kv_apply(&[
            w("maas", "b", Some("xy")),
            w("ipmi", "token", None),
            w("maas", "a", Some("1234")),
            w("ipmi", "n", Some("v")),
            w("maas", "gone", None),
        ])
        .await
        .unwrap();
    assert_eq!(store.kv_usage("maas").await.unwrap(), (2, 8));
    assert_eq!(store.kv_usage("ipmi").await.unwrap(), (1, 2));
    assert!(store.kv_delete("maas", "b").await.unwrap());
    assert_eq!(store.kv_usage("maas").await.unwrap(), (1, 5));

    // Many keys at once: only this driver's, only those that exist; more
    // keys than one SQLite statement takes.
    let many: Vec<(String, String, Option<String>)> = (0..1200)
        .map(|i| w("sim", &format!("power/n{i:04}"), Some(&format!("v{i}"))))
        .collect();
    store.kv_apply(&many).await.unwrap();
    let mut keys: Vec<String> = (0..1300)
        .step_by(2)
        .map(|i| format!("power/n{i:04}"))
        .collect();
    keys.push("a".into()); // maas's key, not sim's
    let found = store.kv_get_many("sim", &keys).await.unwrap();
    assert_eq!(found.len(), 600, "the even keys below 1200");
    assert_eq!(found["power/n0000"], "v0");
    assert_eq!(found["power/n1198"], "v1198");
    assert!(!found.contains_key("power/n1200") && !found.contains_key("a"));
    assert!(store.kv_get_many("sim", &[]).await.unwrap().is_empty());
    let maas = store.kv_get_many("maas", &keys).await.unwrap();
    assert_eq!(maas.get("a").map(String::as_str), Some("1234"));
    assert_eq!(maas.len(), 1);
}

// ------------------------------------------------- connection and errors

fn assert_no_password(err: &StoreError, password: &str) {
    let shown = format!("{err} / {err:?}");
    assert!(!shown.contains(password), "password leaked: {shown}");
}

#[tokio::test]
async fn bad_urls_fail_without_leaking_passwords() {
    let err = Store::connect("mysql://root:hunter2@localhost/drydock")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Connect { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("mysql://root:***@localhost/drydock"),
        "{err}"
    );
    assert_no_password(&err, "hunter2");

    let err = Store::connect("postgres://drydock:hunter2@127.0.0.1:notaport/drydock")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Connect { .. }), "{err:?}");
    assert_no_password(&err, "hunter2");

    // A server that is there but a database that is not.
    let admin = pg_admin_url();
    let missing = testing::database_url(&admin, "drydock_no_such_database_x");
    let with_password = missing.replacen("postgres@", "postgres:hunter2@", 1);
    let err = Store::connect(&with_password).await.unwrap_err();
    assert!(matches!(err, StoreError::Connect { .. }), "{err:?}");
    assert_no_password(&err, "hunter2");

    // Nothing listening: refused quickly, not after the pool's timeout.
    let start = Instant::now();
    let err = Store::connect("postgres://u:hunter2@127.0.0.1:1/x?password=hunter2")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Connect { .. }), "{err:?}");
    assert_no_password(&err, "hunter2");
    assert!(start.elapsed() < Duration::from_secs(30));

    let err = Store::connect("sqlite:///nonexistent-dir-drydock/x/y.db")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Connect { .. }), "{err:?}");
}

#[tokio::test]
async fn sqlite_reopen_keeps_data() {
    let dir = std::env::temp_dir().join(format!("drydock-store-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite:{}", dir.join("d.db").display());
    let store = Store::connect(&url).await.unwrap();
    store.kv_set("d", "k", "v").await.unwrap();
    store.close().await;
    assert!(store.ping().await.is_err(), "closed store is unusable");
    let store = Store::connect(&url).await.unwrap();
    assert_eq!(store.kv_get("d", "k").await.unwrap().as_deref(), Some("v"));
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);

    let mem = Store::connect("sqlite::memory:").await.unwrap();
    mem.put_secret("s", "v").await.unwrap();
    assert_eq!(mem.get_secret("s").await.unwrap().as_deref(), Some("v"));
    mem.close().await;
}

#[tokio::test]
async fn postgres_reconnect_keeps_data() {
    let admin = pg_admin_url();
    let name = format!("drydock_test_{}", Uuid::new_v4().simple());
    let url = testing::create_pg_database(&admin, &name)
        .await
        .expect("PostgreSQL is required for these tests (DRYDOCK_TEST_POSTGRES)");
    let result = async {
        let store = Store::connect(&url).await.unwrap();
        store.kv_set("d", "k", "v").await.unwrap();
        store.close().await;
        let err = store.ping().await.unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        // Migrations already applied: a second connect is fine.
        let store = Store::connect(&url).await.unwrap();
        assert_eq!(store.kv_get("d", "k").await.unwrap().as_deref(), Some("v"));
        store.close().await;
    };
    let outcome = tokio::time::timeout(CASE_TIMEOUT, result).await;
    let _ = testing::drop_pg_database(&admin, &name).await;
    outcome.expect("timed out");
}

/// What the settler and the leader ask of a parent ("has it subtasks?",
/// "are any open?", "is it ready to settle?") stays right through every path
/// that adds, settles, reopens, cancels or deletes a subtask.
async fn case_open_subtasks(store: Store) {
    let top = store
        .insert_task(&NewTask::new("deploy_nodes"))
        .await
        .unwrap();
    assert!(!store.has_subtasks(top.id).await.unwrap());
    assert!(!store.has_open_subtasks(top.id).await.unwrap());
    assert!(store.set_running(top.id, "me", 1).await.unwrap());
    // Running without subtasks (not fanned out yet): not ready to settle.
    assert!(store.settled_containers("me").await.unwrap().is_empty());
    // Added in a batch and one by one; a grandchild under the first.
    let batch: Vec<NewTask> = (0..4)
        .map(|i| NewTask::subtask(top.id, "deploy_node", format!("n{i}")))
        .collect();
    assert_eq!(store.insert_tasks(&batch).await.unwrap(), 4);
    let single = store
        .insert_task(&NewTask::subtask(top.id, "deploy_node", "n4"))
        .await
        .unwrap();
    let children = store.subtask_ids(top.id).await.unwrap();
    assert_eq!(children.len(), 5);
    let grandchild = store
        .insert_task(&NewTask::subtask(children[0], "apply_node_storage", "n0"))
        .await
        .unwrap();
    assert!(store.has_subtasks(top.id).await.unwrap());
    assert!(store.has_open_subtasks(top.id).await.unwrap());
    assert!(!store.has_subtasks(single.id).await.unwrap());
    assert!(store.has_open_subtasks(children[0]).await.unwrap());

    // Claimed (still open), then one finished by an outcome batch.
    let claimed = claim_all(&store, "a", 1).await;
    assert_eq!(claimed.len(), 6);
    let done = TaskOutcome::complete(grandchild.id, "a", 1, ResultStatus::Success);
    assert_eq!(store.finish_tasks(&[done]).await.unwrap(), 1);
    assert!(!store.has_open_subtasks(children[0]).await.unwrap());
    assert!(store.has_subtasks(children[0]).await.unwrap());

    // A cancel request, then the dead owner's leaves requeued (the
    // cancelled one terminated), claimed by another owner and failed.
    store.request_cancel(children[2], "op").await.unwrap();
    assert_eq!(store.requeue_owned("a", &[]).await.unwrap(), 4);
    assert_eq!(claim_all(&store, "b", 1).await.len(), 3);
    assert_eq!(store.fail_owned("b", "instance lost").await.unwrap(), 3);

    // Reopened and finished again by patches.
    let patch = |status| TaskPatch {
        status: Some(status),
        ..TaskPatch::default()
    };
    assert!(
        store
            .update_task(children[1], &patch(TaskStatus::Queued))
            .await
            .unwrap()
    );
    assert!(
        store
            .update_task(children[1], &patch(TaskStatus::Complete))
            .await
            .unwrap()
    );
    // children[0] (a container: requeue left it) is still running.
    assert!(store.has_open_subtasks(top.id).await.unwrap());
    assert!(
        !store
            .settled_containers("me")
            .await
            .unwrap()
            .contains(&top.id),
        "not settled while a subtask is open"
    );

    // The last open one finishes: the parent is ready to settle.
    let last = TaskOutcome::complete(children[0], "a", 1, ResultStatus::Success);
    assert_eq!(store.finish_tasks(&[last]).await.unwrap(), 1);
    assert!(!store.has_open_subtasks(top.id).await.unwrap());
    assert!(
        store
            .settled_containers("me")
            .await
            .unwrap()
            .contains(&top.id)
    );

    // Deleted with its tree (retention), beside a task that stays.
    let other = store
        .insert_task(&NewTask::new("deploy_nodes"))
        .await
        .unwrap();
    queued(&store, 2, Some(other.id)).await;
    assert!(
        store
            .update_task(top.id, &patch(TaskStatus::Complete))
            .await
            .unwrap()
    );
    assert!(store.backdate_task_for_tests(top.id, 10).await.unwrap());
    assert!(store.delete_tasks_older_than(5).await.unwrap() >= 1);
    assert!(store.get_task(top.id).await.unwrap().is_none());
    assert!(store.has_open_subtasks(other.id).await.unwrap());
}

/// The writer's node states: many nodes in one call (more than one SQLite
/// statement takes), each field kept when the state leaves it out, names
/// that are not nodes skipped.
async fn case_node_states_in_batches(store: Store) {
    let spec = json!({"oob": {"type": "sim"}});
    for i in 0..600 {
        store
            .upsert_node(&format!("ns{i:03}"), &spec, None)
            .await
            .unwrap();
    }
    let state = |n: &str, p: Option<&str>, b: Option<&str>| {
        (n.to_owned(), p.map(str::to_owned), b.map(str::to_owned))
    };
    let mut states: Vec<_> = (0..600)
        .map(|i| state(&format!("ns{i:03}"), Some("on"), None))
        .collect();
    states.push(state("ghost", Some("off"), None));
    assert_eq!(store.set_node_states(&states).await.unwrap(), 600);
    assert_eq!(store.set_node_states(&[]).await.unwrap(), 0);
    store
        .set_node_states(&[
            state("ns000", None, Some("pxe")),
            state("ns599", Some("off"), Some("disk")),
        ])
        .await
        .unwrap();
    let nodes = store
        .get_nodes(&[
            "ns000".into(),
            "ns001".into(),
            "ns599".into(),
            "ghost".into(),
        ])
        .await
        .unwrap();
    let mut got: Vec<(&str, Option<&str>, Option<&str>)> = nodes
        .iter()
        .map(|n| {
            (
                n.name.as_str(),
                n.power_state.as_deref(),
                n.boot_device.as_deref(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("ns000", Some("on"), Some("pxe")),
            ("ns001", Some("on"), None),
            ("ns599", Some("off"), Some("disk")),
        ]
    );
}

/// A batch of timeline entries is stored in the order given (its `seq`
/// increases along the batch), every field as given, each on its node.
async fn case_node_events_in_order(store: Store) {
    use drydock::store::NewNodeEvent;
    let at = chrono::DateTime::parse_from_rfc3339("2026-12-06T10:00:00.123456Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let task = Uuid::now_v7();
    let event = |node: &str, i: i64| NewNodeEvent {
        node_name: node.into(),
        ts: at + chrono::Duration::milliseconds(i),
        kind: if i % 2 == 0 {
            "driver_call"
        } else {
            "state_change"
        }
        .into(),
        action: (i % 2 == 0).then(|| format!("action{i}")),
        outcome: Some(format!("outcome{i}")),
        duration_ms: (i % 3 == 0).then_some(i * 10),
        message: (i % 2 == 1).then(|| format!("it's {i}")),
        task_id: (i % 2 == 0).then_some(task),
    };
    let batch: Vec<NewNodeEvent> = (0..300)
        .map(|i| event(if i % 3 == 0 { "ev-b" } else { "ev-a" }, i))
        .collect();
    store.add_node_events(&batch).await.unwrap();
    store.add_node_events(&[]).await.unwrap();
    let got = store.node_events("ev-a", None, 1000).await.unwrap();
    let want: Vec<&NewNodeEvent> = batch.iter().filter(|e| e.node_name == "ev-a").collect();
    assert_eq!(got.len(), want.len(), "{}", label(&store));
    // Newest first: the batch's order reversed.
    for (g, w) in got.iter().zip(want.iter().rev()) {
        let g = (
            &g.node_name,
            g.ts,
            &g.kind,
            &g.action,
            &g.outcome,
            g.duration_ms,
            &g.message,
            g.task_id,
        );
        let w = (
            &w.node_name,
            w.ts,
            &w.kind,
            &w.action,
            &w.outcome,
            w.duration_ms,
            &w.message,
            w.task_id,
        );
        assert_eq!(g, w, "{}", label(&store));
    }
    assert!(got.windows(2).all(|p| p[0].seq > p[1].seq));
    assert_eq!(
        store.node_events("ev-b", None, 1000).await.unwrap().len(),
        100
    );
}

/// The timeline's retention: entries older than the age limit go, then
/// each node keeps only its newest `per_node`; the rest stay, every node
/// apart.
async fn case_node_events_retention(store: Store) {
    use drydock::store::NewNodeEvent;
    let now = chrono::Utc::now();
    let event = |node: &str, age_h: i64, i: i64| NewNodeEvent {
        node_name: node.into(),
        ts: now - chrono::Duration::hours(age_h) + chrono::Duration::milliseconds(i),
        kind: "driver_call".into(),
        action: Some(format!("a{i}")),
        outcome: Some("success".into()),
        duration_ms: None,
        message: None,
        task_id: None,
    };
    // Per node, oldest first: 1,000 entries two days old, then 20 recent.
    let mut batch = Vec::new();
    for node in ["keep-a", "keep-b"] {
        batch.extend((0..1000).map(|i| event(node, 48, i)));
        batch.extend((0..20).map(|i| event(node, 1, 1000 + i)));
    }
    store.add_node_events(&batch).await.unwrap();
    let gone = store
        .prune_node_events(std::time::Duration::from_secs(24 * 3600), 15)
        .await
        .unwrap();
    assert_eq!(gone, 2 * (1000 + 5), "{}", label(&store));
    for node in ["keep-a", "keep-b"] {
        let left = store.node_events(node, None, 1000).await.unwrap();
        let actions: Vec<String> = left.iter().filter_map(|e| e.action.clone()).collect();
        let want: Vec<String> = (1005..1020).rev().map(|i| format!("a{i}")).collect();
        assert_eq!(actions, want, "{node} on {}", label(&store));
    }
}
