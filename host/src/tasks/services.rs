//! What a driver call may ask of the host while it runs (key-value state,
//! status messages, build data), backed by the store through the writer.

use super::shared::Shared;
use crate::drivers::DriverServices;
use crate::drivers::services::{BuildData, KvUsage, ServiceError, StatusMessage};
use crate::store::{NewBuildData, StoreError};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Driver services for one subtask's calls.
pub(super) struct EngineServices {
    pub shared: Arc<Shared>,
    /// The subtask the calls belong to (messages and build data go there);
    /// none for probes outside any task (their messages are only logged and
    /// their build data is not kept).
    pub task: Option<Uuid>,
    /// Whether the subtask's row is stored yet: its messages and build
    /// data wait for it ([`super::gate`]).
    pub gate: super::gate::Gate,
}

/// How long a usage read waits for the writer to answer before reading
/// without it.
const USAGE_WAIT: Duration = Duration::from_secs(2);

fn svc(e: StoreError) -> ServiceError {
    ServiceError(e.to_string())
}

#[async_trait]
impl DriverServices for EngineServices {
    async fn kv_get(&self, driver: &str, key: &str) -> Result<Option<String>, ServiceError> {
        if let Some(v) = self.shared.kv.pending(driver, key) {
            return Ok(v);
        }
        self.shared
            .kv_reads
            .get(driver, key)
            .await
            .map_err(|e| ServiceError(e.to_string()))
    }

    async fn kv_usage(&self, driver: &str) -> Result<KvUsage, ServiceError> {
        // Asked of the writer, which answers between flushes: each write is
        // counted once, pending or stored.
        let (reply, answer) = tokio::sync::oneshot::channel();
        let asked = tokio::time::timeout(USAGE_WAIT, async {
            let request = super::writer::Write::Usage(driver.to_owned(), reply);
            self.shared.writes.send(request).await.ok()?;
            answer.await.ok()
        })
        .await;
        if let Ok(Some(Some(usage))) = asked {
            return Ok(usage);
        }
        // The writer is still busy with a flush (the database is slow or
        // down) or could not read: read here, pending first, so a write
        // stored between the two reads is counted twice, never missed.
        let pending = self.shared.kv.usage(driver);
        let stored = self.shared.store.kv_usage(driver).await.map_err(svc)?;
        Ok(KvUsage {
            keys: stored.0 + pending.keys,
            bytes: stored.1 + pending.bytes,
        })
    }

    async fn kv_set(&self, driver: &str, key: &str, value: &str) -> Result<(), ServiceError> {
        self.shared
            .kv
            .write(&self.shared.writes, driver, key, Some(value))
            .await;
        Ok(())
    }

    async fn kv_delete(&self, driver: &str, key: &str) -> Result<(), ServiceError> {
        self.shared
            .kv
            .write(&self.shared.writes, driver, key, None)
            .await;
        Ok(())
    }

    fn kv_ledger(&self) -> Option<Arc<crate::drivers::kv_ledger::KvLedger>> {
        Some(self.shared.kv_ledger.clone())
    }

    async fn status(&self, m: StatusMessage) -> Result<(), ServiceError> {
        match self.task {
            Some(_) if !self.gate.wait().await => {}
            Some(task) => {
                self.shared
                    .message(task, m.scope.node.as_deref(), m.message, m.is_error)
                    .await
            }
            None => tracing::debug!(node = m.scope.node.as_deref().unwrap_or("-"),
                error = m.is_error, message = %m.message, "probe status"),
        }
        Ok(())
    }

    async fn build_data(&self, d: BuildData) -> Result<(), ServiceError> {
        let (Some(node), Some(task)) = (d.scope.node.clone(), self.task) else {
            return Ok(());
        };
        if !self.gate.wait().await {
            return Ok(());
        }
        let data = NewBuildData {
            node_name: node,
            task_id: Some(task),
            generator: d.generator,
            format: d.format,
            content: d.content,
        };
        self.shared.store_build_data(&data).await.map_err(svc)
    }
}
