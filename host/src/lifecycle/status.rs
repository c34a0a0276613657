//! What `drydock driver list` and `GET /drivers` show: each driver's
//! versions, the active one, what is loaded here, and what it requested
//! against what it was granted.

use super::{Lifecycle, LifecycleError, WATCH_WINDOW, derived_manifest, rollback};
use crate::drivers::package::{Manifest, Requested};
use crate::wire::{
    ActiveVersion, DriverStatus, DriverVersion, Grant, LoadedVersion, NotGranted,
    Requested as WireRequested,
};

impl Lifecycle {
    /// Every driver: loaded ones (bundled, directory, installed) and
    /// installed versions, with what is active.
    pub async fn list(&self) -> Result<Vec<DriverStatus>, LifecycleError> {
        let mut names: Vec<String> = self
            .drivers
            .all()
            .iter()
            .map(|d| d.driver.info().name.clone())
            .collect();
        for v in self.store.driver_versions(None).await? {
            if !names.contains(&v.name) {
                names.push(v.name);
            }
        }
        let mut out = Vec::new();
        for n in names {
            out.push(self.describe(&n).await?);
        }
        Ok(out)
    }

    /// One driver: its versions, the active one, requested versus granted,
    /// call counts and errors of the version loaded here.
    pub async fn describe(&self, name: &str) -> Result<DriverStatus, LifecycleError> {
        let versions = self.store.driver_versions(Some(name)).await?;
        let active = self
            .store
            .active_drivers()
            .await?
            .into_iter()
            .find(|a| a.name == name);
        let loaded = self.drivers.get(name);
        if versions.is_empty() && loaded.is_none() {
            return Err(LifecycleError::NotFound(format!("no driver named {name}")));
        }
        let warm: Vec<String> = self
            .warm
            .lock()
            .expect("warm lock")
            .keys()
            .cloned()
            .collect();
        let versions: Vec<DriverVersion> = versions
            .iter()
            .map(|v| {
                let manifest = serde_json::from_str::<Manifest>(&v.manifest).ok();
                DriverVersion {
                    version: v.version.clone(),
                    sha256: v.sha256.clone(),
                    size: v.size,
                    signer: v.signer.clone(),
                    installed: v.installed.to_rfc3339(),
                    installed_by: v.installed_by.clone(),
                    active: active.as_ref().is_some_and(|a| a.version == v.version),
                    warm: warm.contains(&v.sha256),
                    requested: manifest
                        .as_ref()
                        .map(|m| wire_requested(m.requested.clone())),
                    conformance: manifest.and_then(|m| m.conformance),
                }
            })
            .collect();
        let (loaded_view, granted) = match &loaded {
            Some(i) => {
                let (calls, errors) = i.driver.call_counts();
                let c = &i.config;
                (
                    Some(LoadedVersion {
                        version: i.driver.info().version.clone(),
                        sha256: i.driver.sha256().to_owned(),
                        wit: i.driver.wit_version().as_str().to_owned(),
                        interfaces: i
                            .driver
                            .info()
                            .interfaces
                            .iter()
                            .map(|f| f.to_string())
                            .collect(),
                        calls,
                        errors,
                    }),
                    Some(Grant {
                        outbound: c.egress.iter().map(|g| g.to_string()).collect(),
                        memory_mib: (c.memory_bytes >> 20) as u64,
                        call_secs: c.max_call_time.map(|d| d.as_secs()),
                    }),
                )
            }
            None => (None, None),
        };
        // Requested versus granted for the active (else loaded) version.
        let requested = match active
            .as_ref()
            .and_then(|a| versions.iter().find(|v| v.version == a.version))
        {
            Some(v) => v.requested.clone(),
            None => loaded
                .as_ref()
                .map(|i| wire_requested(derived_manifest(i.driver.info()).requested)),
        };
        let not_granted = not_granted(requested.as_ref(), granted.as_ref());
        Ok(DriverStatus {
            name: name.to_owned(),
            active: active.as_ref().map(|a| ActiveVersion {
                version: a.version.clone(),
                sha256: a.sha256.clone(),
                previous: a.previous.clone(),
                generation: a.generation,
                changed: a.changed.to_rfc3339(),
                message: a.message.clone(),
                auto_rollback: rollback::state(
                    a,
                    self.cfg.watch_calls,
                    self.cfg.max_error_ratio,
                    WATCH_WINDOW,
                    chrono::Utc::now(),
                ),
            }),
            loaded: loaded_view,
            versions,
            requested,
            granted,
            not_granted,
        })
    }
}

/// The wire form of what a package asks for.
pub(super) fn wire_requested(r: Requested) -> WireRequested {
    WireRequested {
        outbound: r.outbound,
        memory_mib: r.memory_mib,
        call_secs: r.call_secs,
    }
}

/// What a driver asked for and was not granted.
fn not_granted(requested: Option<&WireRequested>, granted: Option<&Grant>) -> NotGranted {
    let granted_hosts: &[String] = granted.map(|g| g.outbound.as_slice()).unwrap_or_default();
    let Some(r) = requested else {
        return NotGranted::default();
    };
    NotGranted {
        outbound: r
            .outbound
            .iter()
            .filter(|h| !granted_hosts.contains(h))
            .cloned()
            .collect(),
        memory_mib: r
            .memory_mib
            .filter(|m| granted.is_some_and(|g| *m > g.memory_mib)),
        call_secs: r
            .call_secs
            .filter(|c| granted.and_then(|g| g.call_secs).is_some_and(|g| *c > g)),
    }
}
