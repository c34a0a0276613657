//! `sim`: simulated hardware for Drydock, like Ironic's `fake-hardware`.
//!
//! Implements all four driver interfaces against state kept in the driver's
//! key-value store, so a Drydock site can be exercised end to end without a
//! BMC, a bootstrapper or a switch. It makes no network requests.
//!
//! # Layout
//!
//! - [`chaos`]: the operator's settings — delays and deterministic simulated
//!   failures — applied at the start of every action.
//! - `oob`: power state (`power/<node>`) and boot override (`boot/<node>`);
//!   a node whose `bmc_down/<node>` key is set has a BMC that does not
//!   answer (every oob action fails `unreachable`).
//! - `node`: a provisioning state machine per node (`node/<node>`):
//!   `New` → `Ready` → `Deployed`; site-wide records under `site/`.
//! - `network`: VLAN configuration per switch port (`port/<switch>/<port>`).
//! - `provisioner`: Kubernetes labels per node (`labels/<node>`).
//!
//! # Settings (all optional)
//!
//! | key | meaning |
//! | --- | --- |
//! | `delay_ms` | wait before acting, in ms (default 0); past the deadline → `timeout` |
//! | `delay_ms.<action>` | the same for one action, e.g. `delay_ms.deploy_node` |
//! | `fail_rate` | share of actions failing, `0.0`..=`1.0` (default 0) |
//! | `fail_actions` | comma list of actions `fail_rate` and `fail_nodes` apply to (default all) |
//! | `fail_nodes` | comma list of nodes every action on which fails (only the `fail_actions`, when set) |
//! | `fail_kind` | `permanent` (default, `failed`) or `retryable` (`busy`) |
//! | `seed` | u64 mixed into the failure decision (default 0) |
//! | `count_calls` | `true`: count each action's calls per subject in the key-value store (`calls/<action>/<subject>`) |
//! | `hold_action`, `hold_nodes`, `hold_until` | hold that action on those nodes (comma list) until the key-value store has the `hold_until` key (tests order calls across nodes with it) |
//! | `lose_reply` | comma list of oob actions that act, then fail with `timeout` as if the connection dropped after the request was sent (tests of uncertain outcomes) |
//! | `enlist` | `after_pxe` (default: identify_node finds a node only once it was PXE-booted through the sim oob interface) or `always` |

pub mod chaos;
mod network;
mod node;
mod oob;
mod provisioner;

use drydock_sdk::Driver;

/// The simulated driver.
pub struct Sim;

impl Driver for Sim {
    const NAME: &'static str = "sim";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const VENDOR: &'static str = "Drydock";
    const DESCRIPTION: &'static str =
        "Simulated BMCs, bootstrapper and switches with configurable delays and failures";
    const OOB_TYPES: &'static [&'static str] = &["sim"];
}

drydock_sdk::export_driver!(Sim: oob, node, network, provisioner);

/// FNV-1a (64 bit) over `parts`, each followed by a 0 byte so that
/// `("ab", "c")` and `("a", "bc")` differ.
pub(crate) fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.iter().chain(&[0]) {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}
