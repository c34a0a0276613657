//! Driver trust (issue 13, item 6): a trusted key signs only the drivers it
//! names, stored versions are verified again when they load, and packages
//! in `drivers_dir` need a signature unless unsigned drivers are allowed.

use std::sync::Arc;
use std::time::Duration;

use drydock::config::Config;
use drydock::drivers::package::{self, TrustedKey};
use drydock::drivers::{DriverConfig, DriverSet};
use drydock::lifecycle::{Lifecycle, LifecycleConfig, LifecycleError};
use drydock::store::Store;
use drydock_tests::packages::{key, sim_package};

/// A lifecycle over `store` whose driver set holds the bundled sim.
async fn lifecycle(store: Store, trusted: Vec<TrustedKey>) -> (Arc<Lifecycle>, Arc<DriverSet>) {
    let runtime = Arc::new(drydock_tests::runtime());
    let sim = runtime
        .load("bundled:sim", drydock::bundled::SIM)
        .await
        .expect("sim");
    let mut set = DriverSet::new();
    set.add(sim, Arc::new(DriverConfig::default())).unwrap();
    let drivers = Arc::new(set);
    let lifecycle = Lifecycle::new(
        store,
        runtime,
        drivers.clone(),
        LifecycleConfig {
            trusted_keys: trusted,
            poll: Duration::from_secs(3600),
            watch_calls: 0,
            ..LifecycleConfig::default()
        },
    );
    (lifecycle, drivers)
}

fn named(key: &TrustedKey, names: &[&str]) -> TrustedKey {
    TrustedKey {
        names: names.iter().map(|n| n.to_string()).collect(),
        ..key.clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vendor_key_signs_only_the_drivers_it_names() {
    let (secret, trusted) = key();
    let acme = TrustedKey {
        vendor: "acme".into(),
        ..named(&trusted, &["acme-bmc"])
    };
    let (lc, _) = lifecycle(drydock_tests::db::sqlite().await, vec![acme.clone()]).await;

    // A package named `maas`, signed by acme, whose key may sign only
    // `acme-bmc`: refused, naming the vendor, the name and what it may sign.
    let maas = package::sign(drydock::bundled::MAAS, &secret).unwrap();
    let err = lc.install(&maas, Some("test")).await.unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(
            err,
            LifecycleError::Refused(package::PackageError::NameNotAllowed { .. })
        ),
        "{text}"
    );
    assert!(
        text.contains("`maas`") && text.contains("acme") && text.contains("acme-bmc"),
        "{text}"
    );
    // Same for a sim package.
    let sim = sim_package("2.0.0", Some(&secret), 0);
    assert!(lc.install(&sim, None).await.is_err());

    // The same key bound to `sim` installs it.
    let (lc, _) = lifecycle(
        drydock_tests::db::sqlite().await,
        vec![named(&acme, &["acme-bmc", "sim"])],
    )
    .await;
    let done = lc
        .install(&sim, None)
        .await
        .expect("sim signed by a key for sim");
    assert_eq!(done.signer.as_deref(), Some("acme"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_versions_are_verified_again_when_they_load() {
    let (secret, trusted) = key();
    let store = drydock_tests::db::sqlite().await;
    let (lc, drivers) = lifecycle(store.clone(), vec![trusted.clone()]).await;
    let v2 = sim_package("2.0.0", Some(&secret), 0);
    let sha = lc.install(&v2, None).await.unwrap().sha256;
    lc.activate("sim", "2.0.0", None).await.unwrap();
    assert_eq!(drivers.get("sim").unwrap().driver.sha256(), sha);

    // Another instance (or this one restarted) with the key removed: the
    // stored active version does not load; the bundled sim keeps serving.
    let (lc, drivers) = lifecycle(store.clone(), vec![]).await;
    lc.sync().await.unwrap();
    assert_ne!(drivers.get("sim").unwrap().driver.sha256(), sha);
    let err = lc.activate("sim", "2.0.0", None).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, LifecycleError::Untrusted { .. }), "{text}");
    assert!(
        text.contains("no longer trusted") && text.contains("wrong key"),
        "{text}"
    );

    // With the key narrowed to other names: refused too, saying why.
    let (lc, drivers) = lifecycle(store.clone(), vec![named(&trusted, &["eos"])]).await;
    lc.sync().await.unwrap();
    assert_ne!(drivers.get("sim").unwrap().driver.sha256(), sha);
    let text = lc
        .activate("sim", "2.0.0", None)
        .await
        .unwrap_err()
        .to_string();
    assert!(text.contains("may sign only eos"), "{text}");

    // The key trusted again: it loads.
    let (lc, drivers) = lifecycle(store, vec![trusted]).await;
    lc.sync().await.unwrap();
    assert_eq!(drivers.get("sim").unwrap().driver.sha256(), sha);
}

/// Starts a server on an empty data directory with `dir` as its
/// `drivers_dir` and no bundled drivers; the error if it refuses to start.
async fn serve_with_drivers_dir(
    dir: &std::path::Path,
    trusted_keys: Vec<String>,
    allow_unsigned: bool,
) -> Result<(), String> {
    let data = drydock_tests::temp_dir("trust-data");
    let mut cfg = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data.clone(),
        drivers_dir: Some(dir.to_owned()),
        bundled_drivers: false,
        design_dir: None,
        ..Config::default()
    };
    cfg.driver_store.trusted_keys = trusted_keys;
    cfg.driver_store.allow_unsigned = allow_unsigned;
    let result = match drydock::server::start(cfg).await {
        Ok(server) => {
            server.shutdown().await.unwrap();
            Ok(())
        }
        Err(e) => Err(format!("{e:#}")),
    };
    let _ = std::fs::remove_dir_all(&data);
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drivers_dir_packages_need_a_signature_unless_unsigned_is_allowed() {
    let (secret, trusted) = key();
    let public = trusted.key.clone();
    let guest = std::fs::read(drydock_tests::guests::HOSTILE).unwrap();

    let dir = drydock_tests::temp_dir("trust-drivers");
    std::fs::write(dir.join("hostile.wasm"), &guest).unwrap();
    let err = serve_with_drivers_dir(&dir, vec![], false)
        .await
        .unwrap_err();
    assert!(
        err.contains("hostile.wasm") && err.contains("unsigned"),
        "{err}"
    );
    serve_with_drivers_dir(&dir, vec![], true)
        .await
        .expect("unsigned allowed");

    std::fs::write(
        dir.join("hostile.wasm"),
        package::sign(&guest, &secret).unwrap(),
    )
    .unwrap();
    serve_with_drivers_dir(&dir, vec![format!("tests:{public}:hostile")], false)
        .await
        .expect("signed by a key for `hostile`");
    let err = serve_with_drivers_dir(&dir, vec![format!("tests:{public}:sim")], false)
        .await
        .unwrap_err();
    assert!(err.contains("may sign only sim"), "{err}");
    // The old form of a trusted key (no names) is refused with what to write.
    let err = serve_with_drivers_dir(&dir, vec![format!("tests:{public}")], false)
        .await
        .unwrap_err();
    assert!(err.contains("NAME[,NAME...]"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
