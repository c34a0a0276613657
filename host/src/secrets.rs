//! Secrets by name: BMC and switch passwords, driver API keys.
//!
//! A design names a secret (`oob.credential`, a ToR switch's `credential`);
//! its value is looked up here only when a driver call is about to be made,
//! and travels only in that call's arguments. Values are never logged and
//! never written to task results or API responses.
//!
//! Sources are tried in order: the config file's `[secrets]` table, the
//! environment (`DRYDOCK_SECRET_<NAME>`, the name upper-cased with every
//! character other than a letter or digit turned into `_`), then the
//! database's secrets table (set with `POST /api/v1.0/nodes`). A new source
//! (Vault, a KMS) implements [`SecretSource`].

use crate::drivers::GrantedSecrets;
use crate::store::Store;
use async_trait::async_trait;
use std::sync::Arc;

/// A failure of a secrets source (not "no such secret", which is `Ok(None)`).
#[derive(Debug, thiserror::Error)]
#[error("secrets source {source_name}: {message}")]
pub struct SecretError {
    /// Which source.
    pub source_name: &'static str,
    /// What went wrong (never the value).
    pub message: String,
}

/// Somewhere secrets come from.
#[async_trait]
pub trait SecretSource: Send + Sync {
    /// The source's name, for messages.
    fn name(&self) -> &'static str;
    /// The secret's value, `None` if this source does not have it.
    async fn get(&self, name: &str) -> Result<Option<String>, SecretError>;
}

/// Secrets from the config file's `[secrets]` table.
pub struct ConfigSecrets(GrantedSecrets);

impl ConfigSecrets {
    /// From name → value pairs.
    pub fn new(values: GrantedSecrets) -> Self {
        ConfigSecrets(values)
    }
}

#[async_trait]
impl SecretSource for ConfigSecrets {
    fn name(&self) -> &'static str {
        "config"
    }
    async fn get(&self, name: &str) -> Result<Option<String>, SecretError> {
        Ok(self.0.get(name).cloned())
    }
}

/// Secrets from `DRYDOCK_SECRET_<NAME>` environment variables.
pub struct EnvSecrets;

impl EnvSecrets {
    /// The variable holding secret `name`.
    pub fn variable(name: &str) -> String {
        let mut v = String::from("DRYDOCK_SECRET_");
        v.extend(name.chars().map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        }));
        v
    }
}

#[async_trait]
impl SecretSource for EnvSecrets {
    fn name(&self) -> &'static str {
        "env"
    }
    async fn get(&self, name: &str) -> Result<Option<String>, SecretError> {
        Ok(std::env::var(Self::variable(name)).ok())
    }
}

/// Secrets in the database (`POST /api/v1.0/nodes` stores them).
pub struct StoreSecrets(pub Store);

#[async_trait]
impl SecretSource for StoreSecrets {
    fn name(&self) -> &'static str {
        "database"
    }
    async fn get(&self, name: &str) -> Result<Option<String>, SecretError> {
        self.0.get_secret(name).await.map_err(|e| SecretError {
            source_name: "database",
            message: e.to_string(),
        })
    }
}

/// Sources tried in order.
#[derive(Clone)]
pub struct Secrets(Vec<Arc<dyn SecretSource>>);

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|s| s.name()))
            .finish()
    }
}

impl Secrets {
    /// The given sources, tried in order.
    pub fn new(sources: Vec<Arc<dyn SecretSource>>) -> Secrets {
        Secrets(sources)
    }

    /// The standard chain: config file, environment, database.
    pub fn standard(config: GrantedSecrets, store: Store) -> Secrets {
        Secrets(vec![
            Arc::new(ConfigSecrets::new(config)),
            Arc::new(EnvSecrets),
            Arc::new(StoreSecrets(store)),
        ])
    }

    /// The first source's value for `name`.
    pub async fn get(&self, name: &str) -> Result<Option<String>, SecretError> {
        for s in &self.0 {
            if let Some(v) = s.get(name).await? {
                return Ok(Some(v));
            }
        }
        Ok(None)
    }

    /// Credentials from secret `name`: JSON `{"username", "password"}`, or
    /// the password alone with `username` (the design's `account`).
    pub async fn credentials(
        &self,
        name: &str,
        username: Option<&str>,
    ) -> Result<crate::model::Credentials, String> {
        let value = self
            .get(name)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("secret `{name}` is not in any secrets source"))?;
        if let Ok(c) = serde_json::from_str::<crate::model::Credentials>(&value) {
            return Ok(c);
        }
        match username {
            Some(u) if !u.is_empty() => Ok(crate::model::Credentials {
                username: u.to_owned(),
                password: value,
            }),
            _ => Err(format!(
                "secret `{name}` is not {{\"username\",\"password\"}} JSON and no account is given"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_variable_names() {
        assert_eq!(
            EnvSecrets::variable("node-1-oob"),
            "DRYDOCK_SECRET_NODE_1_OOB"
        );
        assert_eq!(EnvSecrets::variable("maas.key"), "DRYDOCK_SECRET_MAAS_KEY");
    }
}
