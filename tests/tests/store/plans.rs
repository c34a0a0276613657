//! How a flush of the engine's writer reaches its rows on PostgreSQL: by
//! primary key, never by a pass over `tasks` or `nodes`, which would cost
//! every flush of a large task as much as the whole table. Read from the
//! server's own counters (`pg_stat_user_tables`), which a backend reports
//! when its session ends.

use std::time::{Duration, Instant};

use drydock::store::{NewTask, ResultStatus, Results, Store, TaskOutcome, Uuid, testing};
use drydock_tests::stores::pg_admin_url;
use serde_json::json;
use sqlx::Connection;

/// Subtasks (and nodes) in the table; the flush finishes a quarter.
const ROWS: usize = 2_000;
const FLUSHED: usize = ROWS / 4;

/// `(seq_scan, idx_tup_fetch, n_tup_ins, n_tup_upd)` of one table: passes
/// over the whole table, rows found through an index, rows inserted and
/// rows updated.
type Counters = (i64, i64, i64, i64);

async fn counters(conn: &mut sqlx::PgConnection, table: &str) -> Counters {
    sqlx::query_as(
        "SELECT seq_scan, COALESCE(idx_tup_fetch, 0), n_tup_ins, n_tup_upd \
         FROM pg_stat_user_tables WHERE relname = $1",
    )
    .bind(table)
    .fetch_one(conn)
    .await
    .unwrap()
}

/// Waits until the counters of `table` satisfy `done` (the sessions that
/// wrote have reported), returning them.
async fn settled(
    conn: &mut sqlx::PgConnection,
    table: &str,
    done: impl Fn(&Counters) -> bool,
) -> Counters {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let c = counters(conn, table).await;
        if done(&c) {
            return c;
        }
        assert!(
            Instant::now() < deadline,
            "{table}: counters never reported the writes: {c:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flush_finds_its_tasks_and_nodes_by_key() {
    let admin = pg_admin_url();
    let name = format!("drydock_test_{}", Uuid::new_v4().simple());
    let url = testing::create_pg_database(&admin, &name)
        .await
        .expect("PostgreSQL is required for this test");
    let mut stats = sqlx::PgConnection::connect(&url).await.unwrap();

    // Set up with one store, closed so that its sessions report.
    let setup = Store::connect(&url).await.unwrap();
    let parent = setup
        .insert_task(&NewTask::new("power_on_node"))
        .await
        .unwrap();
    let names: Vec<String> = (0..ROWS).map(|i| format!("node{i:05}")).collect();
    for n in &names {
        setup
            .upsert_node(n, &json!({"name": n, "oob": {"type": "sim"}}), None)
            .await
            .unwrap();
    }
    let subs: Vec<NewTask> = names
        .iter()
        .map(|n| NewTask::subtask(parent.id, "power_on_node", n.as_str()))
        .collect();
    setup.insert_tasks(&subs).await.unwrap();
    assert_eq!(super::claim_all(&setup, "leader", 1).await.len(), ROWS + 1);
    setup.close().await;
    let rows = ROWS as i64;
    let tasks = settled(&mut stats, "tasks", |c| c.2 > rows && c.3 > rows).await;
    let nodes = settled(&mut stats, "nodes", |c| c.2 >= rows).await;

    // One flush: a quarter of the subtasks finish, their nodes change.
    let store = Store::connect(&url).await.unwrap();
    let outcomes: Vec<TaskOutcome> = subs[..FLUSHED]
        .iter()
        .map(|t| TaskOutcome::complete(t.id, "leader", 1, ResultStatus::Success))
        .collect();
    let states: Vec<(String, Option<String>, Option<String>)> = names[..FLUSHED]
        .iter()
        .map(|n| (n.clone(), Some("on".to_owned()), None))
        .collect();
    let changed = store
        .write_results(&Results {
            outcomes: &outcomes,
            node_states: &states,
            ..Results::default()
        })
        .await
        .unwrap();
    assert_eq!(changed, FLUSHED as u64);
    store.close().await;
    let flushed = FLUSHED as i64;
    let tasks_after = settled(&mut stats, "tasks", |c| c.3 >= tasks.3 + flushed).await;
    let nodes_after = settled(&mut stats, "nodes", |c| c.3 >= nodes.3 + flushed).await;

    let _ = stats.close().await;
    let _ = testing::drop_pg_database(&admin, &name).await;
    // Each row found through the primary key, the table never read whole.
    assert_eq!(tasks_after.0, tasks.0, "tasks read whole: {tasks_after:?}");
    assert_eq!(nodes_after.0, nodes.0, "nodes read whole: {nodes_after:?}");
    assert!(
        tasks_after.1 >= tasks.1 + flushed,
        "{tasks:?} {tasks_after:?}"
    );
    assert!(
        nodes_after.1 >= nodes.1 + flushed,
        "{nodes:?} {nodes_after:?}"
    );
}
