//! Orders driver key-value writes per key within this process, which is
//! what makes `kv-compare-and-swap` atomic: a swap reads, compares and
//! writes while holding its key's turn, and every `kv-set` and `kv-delete`
//! from a guest takes the same turn, so no write of the key lands between
//! a swap's comparison and its write.
//!
//! Keys share a fixed set of turns (striped by hash): a turn is held for
//! one key-value operation, so two unrelated keys on one stripe only wait
//! for each other's single operation, and the table never grows.
//!
//! The order holds within one process: instances sharing a database write
//! their key-value pairs behind (each instance sees its own writes at
//! once, others' once stored) and do not order writes against each other.

use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::OnceLock;
use tokio::sync::{Mutex, MutexGuard};

/// Turns (stripes) shared by all keys.
const STRIPES: usize = 64;

fn stripes() -> &'static [Mutex<()>] {
    static STRIPED: OnceLock<Vec<Mutex<()>>> = OnceLock::new();
    STRIPED.get_or_init(|| (0..STRIPES).map(|_| Mutex::new(())).collect())
}

/// A fixed hasher: the stripe of a key never changes within the process.
fn stripe_of(driver: &str, key: &str) -> usize {
    static SEED: OnceLock<std::collections::hash_map::RandomState> = OnceLock::new();
    let mut h = SEED
        .get_or_init(std::collections::hash_map::RandomState::new)
        .build_hasher();
    driver.hash(&mut h);
    key.hash(&mut h);
    // The remainder is below STRIPES, so it fits.
    usize::try_from(h.finish() % STRIPES as u64).unwrap_or(0)
}

/// Waits for `driver`'s `key`'s turn; the write happens while the guard
/// lives.
pub(crate) async fn turn(driver: &str, key: &str) -> MutexGuard<'static, ()> {
    stripes()[stripe_of(driver, key)].lock().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_key_one_turn_at_a_time() {
        assert_eq!(stripe_of("d", "k"), stripe_of("d", "k"));
        let held = turn("d", "k").await;
        // The same key waits for it.
        assert!(stripes()[stripe_of("d", "k")].try_lock().is_err());
        drop(held);
        let _again = turn("d", "k").await;
    }
}
