//! The leader lease, heartbeats and takeover in the store, on Postgres:
//! epochs, refusals, expiry by the database clock, fenced inserts, and the
//! reclaim of a dead instance's work (re-run, failed when unsafe to repeat,
//! orchestrations adopted).

use drydock::store::{ClaimScope, ClaimSpec};
use drydock::store::{NewTask, ResultStatus, Store, StoreError, TaskStatus, Uuid};
use std::time::Duration;

async fn pg() -> (Store, String) {
    drydock_tests::db::postgres().await
}

#[tokio::test]
async fn the_lease_has_one_holder_and_a_growing_epoch() {
    let (store, db) = pg().await;
    let long = Duration::from_secs(30);
    let a = store
        .acquire_lease("a", long)
        .await
        .unwrap()
        .expect("a takes it");
    assert_eq!((a.holder.as_str(), a.epoch), ("a", 1));
    // Renewal keeps the epoch; another instance is refused.
    let again = store.acquire_lease("a", long).await.unwrap().unwrap();
    assert_eq!(again.epoch, 1);
    assert!(again.expires >= a.expires);
    assert!(store.acquire_lease("b", long).await.unwrap().is_none());
    assert!(store.holds_lease("a", 1).await.unwrap());
    assert!(!store.holds_lease("b", 1).await.unwrap());
    // A clean release hands over at once, at a higher epoch.
    store.release_lease("a").await.unwrap();
    let b = store
        .acquire_lease("b", long)
        .await
        .unwrap()
        .expect("b takes it");
    assert_eq!((b.holder.as_str(), b.epoch), ("b", 2));
    assert!(!store.holds_lease("a", 1).await.unwrap());
    // A lapsed lease is taken again at a new epoch, even by its holder.
    store
        .acquire_lease("b", Duration::from_millis(1))
        .await
        .unwrap()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let c = loop {
        if let Some(l) = store.acquire_lease("c", long).await.unwrap() {
            break l;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the lease never lapsed"
        );
        tokio::task::yield_now().await;
    };
    assert_eq!((c.holder.as_str(), c.epoch), ("c", 3));
    store.close().await;
    drydock_tests::db::drop_postgres(&db).await;
}

#[tokio::test]
async fn inserts_only_the_leader_may_make_are_fenced() {
    let (store, db) = pg().await;
    let lease = store
        .acquire_lease("leader", Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    let t = NewTask::new("noop");
    assert_eq!(
        store
            .insert_tasks_fenced(std::slice::from_ref(&t), Some(("leader", lease.epoch)))
            .await
            .unwrap(),
        1
    );
    for fence in [("leader", lease.epoch + 1), ("other", lease.epoch)] {
        let t = NewTask::new("noop");
        let err = store
            .insert_tasks_fenced(std::slice::from_ref(&t), Some(fence))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Fenced(_)), "{err:?}");
        assert!(store.get_task(t.id).await.unwrap().is_none());
    }
    store.close().await;
    drydock_tests::db::drop_postgres(&db).await;
}

#[tokio::test]
async fn a_dead_instances_work_is_requeued_failed_or_adopted() {
    let (store, db) = pg().await;
    let dead_after = Duration::from_millis(300);
    store.heartbeat("dead").await.unwrap();
    store.heartbeat("alive").await.unwrap();
    // An orchestration with a step, claimed by `dead`, and three driver
    // calls: two of `dead` (one unsafe to repeat), one of `alive`.
    let top = NewTask::new("deploy_nodes");
    store.insert_task(&top).await.unwrap();
    let claim = |owner: &'static str, scope| ClaimSpec {
        scope,
        owner,
        epoch: 1,
        limit: 10,
    };
    store
        .claim_tasks(&claim("dead", ClaimScope::TopLevel))
        .await
        .unwrap();
    let mut step = NewTask::new("deploy_node");
    step.parent_id = Some(top.id);
    step.status = TaskStatus::Running;
    step.owner = Some("dead".into());
    step.epoch = 1;
    store.insert_task(&step).await.unwrap();
    let sub = |node: &str, action: &str| NewTask::subtask(step.id, action, node);
    let (safe, unsafe_, other) = (
        sub("n1", "deploy_node"),
        sub("n2", "destroy_node"),
        sub("n3", "deploy_node"),
    );
    store
        .insert_tasks(&[safe.clone(), unsafe_.clone()])
        .await
        .unwrap();
    store
        .claim_tasks(&claim("dead", ClaimScope::ChildrenOf(step.id)))
        .await
        .unwrap();
    store.insert_task(&other).await.unwrap();
    store
        .claim_tasks(&claim("alive", ClaimScope::ChildrenOf(step.id)))
        .await
        .unwrap();

    // Nobody is dead yet: nothing moves.
    let lease = store
        .acquire_lease("leader", Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    store.heartbeat("leader").await.unwrap();
    let none = store
        .reclaim_dead("leader", lease.epoch, Duration::from_secs(60), &[], &[])
        .await
        .unwrap();
    assert_eq!((none.requeued, none.failed), (0, 0));
    assert!(!store.dead_instances("leader", dead_after).await.unwrap());

    // `dead` stops beating; `alive` goes on.
    tokio::time::sleep(dead_after * 2).await;
    store.heartbeat("alive").await.unwrap();
    store.heartbeat("leader").await.unwrap();
    assert!(store.dead_instances("leader", dead_after).await.unwrap());
    let r = store
        .reclaim_dead(
            "leader",
            lease.epoch,
            dead_after,
            &["destroy_node".to_string()],
            &[],
        )
        .await
        .unwrap();
    assert_eq!((r.requeued, r.failed), (1, 1), "{r:?}");
    // Its work taken over, `dead` is forgotten; `alive` is not.
    assert!(!store.dead_instances("leader", dead_after).await.unwrap());
    let live: Vec<String> = store
        .live_instances(Duration::from_secs(60))
        .await
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert!(!live.contains(&"dead".to_string()), "{live:?}");
    assert!(live.contains(&"alive".to_string()), "{live:?}");
    let get = |id: Uuid| {
        let store = store.clone();
        async move { store.get_task(id).await.unwrap().unwrap() }
    };
    let s = get(safe.id).await;
    assert_eq!((s.status, s.owner.as_deref()), (TaskStatus::Queued, None));
    let u = get(unsafe_.id).await;
    assert_eq!(u.status, TaskStatus::Complete);
    assert_eq!(u.result_status, ResultStatus::Failure);
    assert!(
        u.result_message
            .as_deref()
            .unwrap()
            .contains("unsafe to repeat"),
        "{u:?}"
    );
    assert_eq!(u.failures, ["n2"]);
    let o = get(other.id).await;
    assert_eq!(
        (o.status, o.owner.as_deref()),
        (TaskStatus::Running, Some("alive"))
    );
    for id in [top.id, step.id] {
        let t = get(id).await;
        assert_eq!(t.owner.as_deref(), Some("leader"));
        assert_eq!(t.epoch, lease.epoch);
    }
    // The deposed cannot reclaim.
    let err = store
        .reclaim_dead("other", lease.epoch, dead_after, &[], &[])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("does not hold"), "{err}");
    store.close().await;
    drydock_tests::db::drop_postgres(&db).await;
}

#[tokio::test]
async fn the_leader_fails_subtasks_a_live_instance_holds_past_their_deadline() {
    let (store, db) = pg().await;
    store.heartbeat("stuck").await.unwrap();
    let past = chrono::Utc::now() - chrono::Duration::seconds(60);
    let future = chrono::Utc::now() + chrono::Duration::seconds(600);
    let mut step = NewTask::new("deploy_node");
    step.status = TaskStatus::Running;
    step.owner = Some("leader".into());
    step.epoch = 1;
    step.deadline = Some(past);
    store.insert_task(&step).await.unwrap();
    let mut overdue = NewTask::subtask(step.id, "deploy_node", "n1");
    overdue.deadline = Some(past);
    let mut in_time = NewTask::subtask(step.id, "deploy_node", "n2");
    in_time.deadline = Some(future);
    store
        .insert_tasks(&[overdue.clone(), in_time.clone()])
        .await
        .unwrap();
    let claimed = store
        .claim_tasks(&ClaimSpec {
            scope: ClaimScope::ChildrenOf(step.id),
            owner: "stuck",
            epoch: 1,
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);

    // Only the leader may expire work.
    let lease = store
        .acquire_lease("leader", Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    let err = store
        .expire_overdue("other", lease.epoch, Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("does not hold"), "{err}");
    // Within the grace nothing moves; past it the overdue subtask fails.
    let none = store
        .expire_overdue("leader", lease.epoch, Duration::from_secs(120))
        .await
        .unwrap();
    assert_eq!(none, 0);
    let n = store
        .expire_overdue("leader", lease.epoch, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(n, 1);
    let t = store.get_task(overdue.id).await.unwrap().unwrap();
    assert_eq!(t.status, TaskStatus::Complete);
    assert_eq!(t.result_status, ResultStatus::Failure);
    assert_eq!(t.result_reason.as_deref(), Some("timeout"));
    assert_eq!(t.failures, ["n1"]);
    let said = t.result_message.unwrap();
    assert!(
        said.contains("deploy_node timed out") && said.contains("stuck"),
        "{said}"
    );
    // The one within its deadline and the step itself (a container) stay.
    let t = store.get_task(in_time.id).await.unwrap().unwrap();
    assert_eq!(t.status, TaskStatus::Running);
    let t = store.get_task(step.id).await.unwrap().unwrap();
    assert_eq!(t.status, TaskStatus::Running);
    // The stuck owner's late outcome is refused.
    let late = drydock::store::TaskOutcome::complete(overdue.id, "stuck", 1, ResultStatus::Success);
    assert_eq!(store.finish_tasks(&[late]).await.unwrap(), 0);
    let t = store.get_task(overdue.id).await.unwrap().unwrap();
    assert_eq!(t.result_status, ResultStatus::Failure);
    store.close().await;
    drydock_tests::db::drop_postgres(&db).await;
}

/// The leader lock: while the holder's lock session lives, the lease
/// cannot be taken from it; once that session is gone, the instance the
/// lock passes to takes the lease at once, long before it would lapse.
#[tokio::test]
async fn a_departed_leaders_lease_is_taken_when_its_lock_session_ends() {
    let (store, db) = pg().await;
    let long = Duration::from_secs(60);
    let mut a_lock = store
        .leader_lock_session("a")
        .await
        .unwrap()
        .expect("postgres has the lock");
    assert!(a_lock.wait().await.unwrap(), "a free lock is granted");
    let a = store.acquire_lease("a", long).await.unwrap().unwrap();
    // a lives: b (even when woken) may not take its lease.
    let mut b_lock = store.leader_lock_session("b").await.unwrap().unwrap();
    assert!(
        store
            .take_lease_from_departed("b", long)
            .await
            .unwrap()
            .is_none()
    );
    // a's process dies: its session ends, the lock passes to b, and b
    // takes the lease a minute before it would lapse, at a new epoch.
    let waiting = tokio::spawn(async move {
        let granted = b_lock.wait().await.unwrap();
        (granted, b_lock)
    });
    a_lock.close().await;
    let (granted, b_lock) = waiting.await.unwrap();
    assert!(granted);
    let b = store
        .take_lease_from_departed("b", long)
        .await
        .unwrap()
        .expect("b takes the departed leader's lease");
    assert_eq!((b.holder.as_str(), b.epoch), ("b", a.epoch + 1));
    assert!(!store.holds_lease("a", a.epoch).await.unwrap());
    // b renews as usual; a, back with a new session, is refused.
    let _a_again = store.leader_lock_session("a").await.unwrap().unwrap();
    assert!(store.acquire_lease("a", long).await.unwrap().is_none());
    assert!(
        store
            .take_lease_from_departed("a", long)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store.acquire_lease("b", long).await.unwrap().unwrap().epoch,
        b.epoch
    );
    b_lock.close().await;
    store.close().await;
    drydock_tests::db::drop_postgres(&db).await;
}

/// The leader's recovery walks the running tasks only when there is cause:
/// on its first tick at an epoch, on the first tick after an instance's
/// heartbeat went stale (that instance's work is taken over then, not at
/// the next full pass), and every `FULL_RECLAIM_EVERY`. Between those, work
/// under an owner that never beat is left alone.
#[tokio::test]
async fn recovery_walks_the_tasks_only_when_an_instance_died() {
    use drydock::cluster::leader::{LeaderConfig, Leadership};
    use drydock::cluster::recovery::Recovery;
    let (store, db) = pg().await;
    let dead_after = Duration::from_millis(300);
    let leadership = Leadership::new(
        "leader".into(),
        LeaderConfig {
            dead_after,
            ..LeaderConfig::default()
        },
    );
    leadership.tick(&store).await;
    assert!(leadership.is_leader());
    let drivers = drydock::drivers::DriverSet::new();
    let mut recovery = Recovery::default();
    let top = NewTask::new("deploy_nodes");
    store.insert_task(&top).await.unwrap();
    let running = |node: &str, owner: &str| {
        let mut t = NewTask::subtask(top.id, "deploy_node", node);
        t.status = TaskStatus::Running;
        t.owner = Some(owner.into());
        t.epoch = 1;
        t
    };
    // The first tick at this epoch is a full pass (nothing to take yet).
    assert!(!recovery.tick(&store, &leadership, &drivers).await);
    // Work of an owner that never beat: no tick until the next full pass
    // looks at it.
    let ghost = running("n1", "ghost");
    store.insert_task(&ghost).await.unwrap();
    assert!(!recovery.tick(&store, &leadership, &drivers).await);
    let status = |id: Uuid| {
        let store = store.clone();
        async move { store.get_task(id).await.unwrap().unwrap().status }
    };
    assert_eq!(status(ghost.id).await, TaskStatus::Running);
    // An instance that beat, holds work, and stops beating: the first tick
    // after its heartbeat is stale takes its work over (and the ghost's).
    store.heartbeat("dead").await.unwrap();
    let orphan = running("n2", "dead");
    store.insert_task(&orphan).await.unwrap();
    assert!(!recovery.tick(&store, &leadership, &drivers).await);
    tokio::time::sleep(dead_after * 2).await;
    leadership.tick(&store).await;
    assert!(recovery.tick(&store, &leadership, &drivers).await);
    assert_eq!(status(orphan.id).await, TaskStatus::Queued);
    assert_eq!(status(ghost.id).await, TaskStatus::Queued);
    // The dead are forgotten: the next tick reads heartbeats only.
    assert!(!store.dead_instances("leader", dead_after).await.unwrap());
    assert!(!recovery.tick(&store, &leadership, &drivers).await);
    store.close().await;
    drydock_tests::db::drop_postgres(&db).await;
}

/// A leader that resigns (an instance draining on SIGTERM) stops leading at
/// once and for good, and gives the lease up: another instance leads at
/// the next epoch without waiting for a 30 s lease to lapse, and adopts the
/// resigned leader's running task at once (fenced: the old holder cannot).
/// The resigned instance keeps beating until it departs.
#[tokio::test]
async fn a_resigned_leader_hands_over_at_once_and_never_leads_again() {
    use drydock::tasks::{LeaderConfig, Leadership};
    let (store, db) = pg().await;
    let cfg = LeaderConfig {
        lease: Duration::from_secs(30),
        renew: Duration::from_secs(1),
        dead_after: Duration::from_secs(60),
        advisory_lock: false,
    };
    let a = Leadership::new("a".into(), cfg.clone());
    let b = Leadership::new("b".into(), cfg);
    a.tick(&store).await;
    b.tick(&store).await;
    assert!(a.is_leader() && !b.is_leader());
    let old = a.epoch();
    // `a` leads a running task.
    let top = NewTask::new("power_on_node");
    store.insert_task(&top).await.unwrap();
    let claimed = store
        .claim_tasks(&ClaimSpec {
            scope: ClaimScope::TopLevel,
            owner: "a",
            epoch: old,
            limit: 1,
        })
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);

    a.resign(&store).await;
    assert!(a.resigned() && !a.is_leader());
    b.tick(&store).await;
    assert!(b.is_leader(), "b leads at once");
    assert_eq!(b.epoch(), old + 1);
    // Resigned for good: its ticks only beat.
    a.tick(&store).await;
    assert!(!a.is_leader());
    let live = |store: Store| async move {
        let live = store.live_instances(Duration::from_secs(60)).await.unwrap();
        live.into_iter().map(|(id, _)| id).collect::<Vec<_>>()
    };
    assert_eq!(live(store.clone()).await, ["a", "b"]);
    // The new leader adopts the task at once; the old holder cannot.
    assert!(store.adopt_containers("a", old).await.is_err());
    assert_eq!(store.adopt_containers("b", old + 1).await.unwrap(), 1);
    let t = store.get_task(top.id).await.unwrap().unwrap();
    assert_eq!((t.owner.as_deref(), t.epoch), (Some("b"), old + 1));
    assert_eq!(t.status, TaskStatus::Running);
    // Departed: its heartbeat is gone.
    store.depart("a").await.unwrap();
    assert_eq!(live(store.clone()).await, ["b"]);
    store.close().await;
    drydock_tests::db::drop_postgres(&db).await;
}
