//! The harness of the store suites: each `case_*` function runs twice, in
//! `postgres::*` on a fresh database created on the PostgreSQL server at
//! `DRYDOCK_TEST_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`, which must be reachable:
//! the PostgreSQL tests fail, not skip, without it), and in `sqlite::*` on a
//! fresh file in a temporary directory ([`cases!`]).

use drydock::store::{Backend, Store, Uuid, testing};
use std::future::Future;
use std::time::Duration;

/// The admin connection used to create scratch databases.
pub fn pg_admin_url() -> String {
    std::env::var("DRYDOCK_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// How long one case may take.
pub const CASE_TIMEOUT: Duration = Duration::from_secs(180);

/// How a case ended.
enum Outcome {
    Passed,
    Panicked(Box<dyn std::any::Any + Send>),
    Failed(String),
}

impl Outcome {
    /// Re-raises the case's failure (after clean-up).
    fn finish(self) {
        match self {
            Outcome::Passed => {}
            Outcome::Panicked(payload) => std::panic::resume_unwind(payload),
            Outcome::Failed(why) => panic!("{why}"),
        }
    }
}

/// Runs `case` on its own task (so a panic still lets the caller clean
/// up), bounded by [`CASE_TIMEOUT`], then closes the store.
async fn run_case<F, Fut>(store: Store, case: F) -> Outcome
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let outcome = tokio::time::timeout(CASE_TIMEOUT, tokio::spawn(case(store.clone()))).await;
    store.close().await;
    match outcome {
        Err(_) => Outcome::Failed(format!("case timed out after {CASE_TIMEOUT:?}")),
        Ok(Err(join)) if join.is_panic() => Outcome::Panicked(join.into_panic()),
        Ok(Err(join)) => Outcome::Failed(join.to_string()),
        Ok(Ok(())) => Outcome::Passed,
    }
}

/// A fresh PostgreSQL database for one case, dropped afterwards.
pub async fn with_postgres<F, Fut>(case: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let admin = pg_admin_url();
    let name = format!("drydock_test_{}", Uuid::new_v4().simple());
    let url = testing::create_pg_database(&admin, &name)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is required for these tests and is not usable at {} \
                 (set DRYDOCK_TEST_POSTGRES to an admin URL): {e}",
                drydock::store::redact_url(&admin)
            )
        });
    let store = match Store::connect(&url).await {
        Ok(store) => store,
        Err(e) => {
            let _ = testing::drop_pg_database(&admin, &name).await;
            panic!("connect to fresh database: {e}");
        }
    };
    assert_eq!(store.backend(), Backend::Postgres);
    let result = run_case(store, case).await;
    // Best effort.
    let _ = testing::drop_pg_database(&admin, &name).await;
    result.finish();
}

/// A fresh SQLite file for one case, removed afterwards.
pub async fn with_sqlite<F, Fut>(case: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = std::env::temp_dir().join(format!("drydock-store-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("drydock.db").display());
    let store = Store::connect(&url).await.expect("open fresh sqlite file");
    assert_eq!(store.backend(), Backend::Sqlite);
    let result = run_case(store, case).await;
    let _ = std::fs::remove_dir_all(&dir);
    result.finish();
}

/// Generates `postgres::NAME` and `sqlite::NAME` tests for each `case_NAME`.
#[macro_export]
macro_rules! cases {
    ($($name:ident => $case:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    $crate::stores::with_postgres(super::$case).await
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    $crate::stores::with_sqlite(super::$case).await
                }
            )*
        }
    };
}
