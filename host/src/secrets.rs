//! Secrets by name: BMC and switch passwords, driver API keys, each with
//! the scopes it may be used in.
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
//!
//! # Scopes
//!
//! Every secret carries the [`Scope`]s it may be used in: `oob` (a node's
//! BMC credential and its `tls_ca_secret`), `switch` (a ToR switch's
//! credential), `driver:NAME` (read by driver NAME with `secret-get`). The
//! first source holding a name decides: a use outside its scopes is refused
//! ([`SecretError::OutOfScope`]), it never falls through to another source.
//!
//! - Config and environment secrets: the scopes the config file's
//!   `[secret_scopes]` table declares for the name; else `driver:NAME` for
//!   every driver whose `[drivers.NAME] secrets` grants it (a secret granted
//!   to a driver serves that driver only); else the node-credential scopes
//!   `oob` and `switch`.
//! - Database secrets (stored by `POST /nodes`): `oob`, and only for the
//!   node that stored them.

use crate::drivers::GrantedSecrets;
use crate::store::Store;
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// What a secret may be used for.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// A node's BMC credential or BMC CA certificates (`oob`).
    Oob,
    /// A ToR switch's credential (`switch`).
    Switch,
    /// Read by the named driver with `secret-get` (`driver:NAME`).
    Driver(String),
}

impl Scope {
    /// The scopes of a secret nothing else is declared for: a node
    /// credential, usable for a BMC or a switch.
    pub fn node_credential() -> Vec<Scope> {
        vec![Scope::Oob, Scope::Switch]
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Oob => f.write_str("oob"),
            Scope::Switch => f.write_str("switch"),
            Scope::Driver(d) => write!(f, "driver:{d}"),
        }
    }
}

/// A scope that is not `oob`, `switch` or `driver:NAME`.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not a secret scope (`oob`, `switch` or `driver:NAME`)")]
pub struct BadScope(String);

impl std::str::FromStr for Scope {
    type Err = BadScope;
    fn from_str(s: &str) -> Result<Self, BadScope> {
        match s {
            "oob" => Ok(Scope::Oob),
            "switch" => Ok(Scope::Switch),
            _ => match s.strip_prefix("driver:") {
                Some(d) if !d.is_empty() && !d.contains(char::is_whitespace) => {
                    Ok(Scope::Driver(d.to_owned()))
                }
                _ => Err(BadScope(s.chars().take(80).collect())),
            },
        }
    }
}

impl<'de> serde::Deserialize<'de> for Scope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

fn list(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(Scope::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The scopes of config and environment secrets, by name (see the module
/// documentation for how they are declared).
#[derive(Clone, Debug, Default)]
pub struct ScopeTable(BTreeMap<String, Vec<Scope>>);

impl ScopeTable {
    /// From the config file: `explicit` (`[secret_scopes]`) wins; a name
    /// granted to drivers and not in `explicit` is scoped to those drivers.
    pub fn from_config<'a>(
        explicit: &BTreeMap<String, Vec<Scope>>,
        driver_grants: impl IntoIterator<Item = (&'a str, &'a [String])>,
    ) -> ScopeTable {
        let mut table = BTreeMap::<String, Vec<Scope>>::new();
        for (driver, names) in driver_grants {
            for name in names {
                if !explicit.contains_key(name) {
                    table
                        .entry(name.clone())
                        .or_default()
                        .push(Scope::Driver(driver.to_owned()));
                }
            }
        }
        table.extend(explicit.iter().map(|(k, v)| (k.clone(), v.clone())));
        ScopeTable(table)
    }

    /// Declares `name`'s scopes.
    pub fn declare(&mut self, name: impl Into<String>, scopes: Vec<Scope>) {
        self.0.insert(name.into(), scopes);
    }

    /// The scopes of config or environment secret `name`.
    pub fn scopes(&self, name: &str) -> Vec<Scope> {
        self.0
            .get(name)
            .cloned()
            .unwrap_or_else(Scope::node_credential)
    }
}

/// Why a secret could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// A source failed (not "no such secret").
    #[error("secrets source {source_name}: {message}")]
    Source {
        /// Which source.
        source_name: &'static str,
        /// What went wrong (never the value).
        message: String,
    },
    /// No source holds the name.
    #[error("secret `{0}` is not in any secrets source")]
    Missing(String),
    /// The secret exists but is not for this use.
    #[error(
        "secret `{name}` ({source_name}) may not be used for {wanted}: its scopes are {declared}"
    )]
    OutOfScope {
        /// The secret's name.
        name: String,
        /// The source holding it.
        source_name: &'static str,
        /// The use asked for.
        wanted: Scope,
        /// Its scopes, comma-separated.
        declared: String,
    },
    /// A secret `POST /nodes` stored for one node, asked for by another.
    #[error("secret `{name}` was stored for node `{owner}` and serves no other node")]
    OtherNode {
        /// The secret's name.
        name: String,
        /// The node it belongs to.
        owner: String,
    },
    /// Neither credentials JSON nor a password with an account.
    #[error("secret `{0}` is not {{\"username\",\"password\"}} JSON and no account is given")]
    NotCredentials(String),
}

/// A secret as a source holds it.
#[derive(Clone)]
pub struct Found {
    /// The value.
    pub value: String,
    /// What it may be used for.
    pub scopes: Vec<Scope>,
    /// The only node it serves, if it is bound to one.
    pub owner: Option<String>,
}

impl fmt::Debug for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Found")
            .field("scopes", &self.scopes)
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

/// Somewhere secrets come from.
#[async_trait]
pub trait SecretSource: Send + Sync {
    /// The source's name, for messages.
    fn name(&self) -> &'static str;
    /// The secret and its scopes, `None` if this source does not have it.
    async fn get(&self, name: &str) -> Result<Option<Found>, SecretError>;
}

/// Secrets from the config file's `[secrets]` table.
pub struct ConfigSecrets {
    values: GrantedSecrets,
    scopes: Arc<ScopeTable>,
}

impl ConfigSecrets {
    /// From name → value pairs, scoped by `scopes`.
    pub fn new(values: GrantedSecrets, scopes: Arc<ScopeTable>) -> Self {
        ConfigSecrets { values, scopes }
    }
}

#[async_trait]
impl SecretSource for ConfigSecrets {
    fn name(&self) -> &'static str {
        "config"
    }
    async fn get(&self, name: &str) -> Result<Option<Found>, SecretError> {
        Ok(self.values.get(name).map(|v| Found {
            value: v.clone(),
            scopes: self.scopes.scopes(name),
            owner: None,
        }))
    }
}

/// Secrets from `DRYDOCK_SECRET_<NAME>` environment variables.
pub struct EnvSecrets(Arc<ScopeTable>);

impl EnvSecrets {
    /// Environment secrets scoped by `scopes`.
    pub fn new(scopes: Arc<ScopeTable>) -> Self {
        EnvSecrets(scopes)
    }

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
    async fn get(&self, name: &str) -> Result<Option<Found>, SecretError> {
        Ok(std::env::var(Self::variable(name)).ok().map(|value| Found {
            value,
            scopes: self.0.scopes(name),
            owner: None,
        }))
    }
}

/// Secrets in the database (`POST /api/v1.0/nodes` stores them).
pub struct StoreSecrets(pub Store);

#[async_trait]
impl SecretSource for StoreSecrets {
    fn name(&self) -> &'static str {
        "database"
    }
    async fn get(&self, name: &str) -> Result<Option<Found>, SecretError> {
        let record = self
            .0
            .get_secret_record(name)
            .await
            .map_err(|e| SecretError::Source {
                source_name: "database",
                message: e.to_string(),
            })?;
        Ok(record.map(|r| Found {
            value: r.value,
            // A scope this version does not know serves nothing.
            scopes: r.scope.parse().into_iter().collect(),
            owner: r.owner,
        }))
    }
}

/// Sources tried in order.
#[derive(Clone)]
pub struct Secrets(Vec<Arc<dyn SecretSource>>);

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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

    /// The standard chain: config file, environment, database; config and
    /// environment secrets scoped by `scopes`.
    pub fn standard(config: GrantedSecrets, scopes: ScopeTable, store: Store) -> Secrets {
        let scopes = Arc::new(scopes);
        Secrets(vec![
            Arc::new(ConfigSecrets::new(config, scopes.clone())),
            Arc::new(EnvSecrets::new(scopes)),
            Arc::new(StoreSecrets(store)),
        ])
    }

    /// The first source holding `name`, with that source's name.
    pub async fn find(&self, name: &str) -> Result<Option<(&'static str, Found)>, SecretError> {
        for s in &self.0 {
            if let Some(v) = s.get(name).await? {
                return Ok(Some((s.name(), v)));
            }
        }
        Ok(None)
    }

    /// The value of `name` for a use in `scope` (by `node`, for secrets
    /// bound to one node).
    pub async fn get(
        &self,
        name: &str,
        scope: &Scope,
        node: Option<&str>,
    ) -> Result<String, SecretError> {
        let (source_name, found) = self
            .find(name)
            .await?
            .ok_or_else(|| SecretError::Missing(name.to_owned()))?;
        if !found.scopes.contains(scope) {
            return Err(SecretError::OutOfScope {
                name: name.to_owned(),
                source_name,
                wanted: scope.clone(),
                declared: if found.scopes.is_empty() {
                    "none".into()
                } else {
                    list(&found.scopes)
                },
            });
        }
        if let Some(owner) = found.owner
            && node != Some(owner.as_str())
        {
            return Err(SecretError::OtherNode {
                name: name.to_owned(),
                owner,
            });
        }
        Ok(found.value)
    }

    /// Credentials from secret `name` for a use in `scope` by `node`: JSON
    /// `{"username", "password"}`, or the password alone with `username`
    /// (the design's `account`).
    pub async fn credentials(
        &self,
        name: &str,
        username: Option<&str>,
        scope: &Scope,
        node: Option<&str>,
    ) -> Result<crate::model::Credentials, SecretError> {
        let value = self.get(name, scope, node).await?;
        if let Ok(c) = serde_json::from_str::<crate::model::Credentials>(&value) {
            return Ok(c);
        }
        match username {
            Some(u) if !u.is_empty() => Ok(crate::model::Credentials {
                username: u.to_owned(),
                password: value,
            }),
            _ => Err(SecretError::NotCredentials(name.to_owned())),
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

    #[test]
    fn scopes_parse_and_print() {
        for s in ["oob", "switch", "driver:maas"] {
            assert_eq!(s.parse::<Scope>().unwrap().to_string(), s);
        }
        for bad in ["", "driver:", "node", "driver:a b", "OOB"] {
            assert!(bad.parse::<Scope>().is_err(), "{bad}");
        }
    }

    #[test]
    fn declared_scopes_beat_driver_grants_which_beat_the_default() {
        let explicit: BTreeMap<String, Vec<Scope>> = [(
            "shared".to_owned(),
            vec![Scope::Oob, Scope::Driver("maas".into())],
        )]
        .into();
        let maas = ["maas-api-key".to_owned(), "shared".to_owned()];
        let eos = ["maas-api-key".to_owned()];
        let t = ScopeTable::from_config(&explicit, [("maas", &maas[..]), ("eos", &eos[..])]);
        assert_eq!(
            t.scopes("maas-api-key"),
            [Scope::Driver("maas".into()), Scope::Driver("eos".into())]
        );
        assert_eq!(
            t.scopes("shared"),
            [Scope::Oob, Scope::Driver("maas".into())]
        );
        assert_eq!(t.scopes("bmc-password"), Scope::node_credential());
    }

    #[tokio::test]
    async fn a_use_outside_the_scopes_or_by_another_node_is_refused() {
        struct One(Found);
        #[async_trait]
        impl SecretSource for One {
            fn name(&self) -> &'static str {
                "one"
            }
            async fn get(&self, name: &str) -> Result<Option<Found>, SecretError> {
                Ok((name == "s").then(|| self.0.clone()))
            }
        }
        let found = |scopes, owner: Option<&str>| Found {
            value: "v4lue".into(),
            scopes,
            owner: owner.map(str::to_owned),
        };
        let driver = Secrets::new(vec![Arc::new(One(found(
            vec![Scope::Driver("maas".into())],
            None,
        )))]);
        let e = driver.get("s", &Scope::Oob, Some("n1")).await.unwrap_err();
        assert!(matches!(e, SecretError::OutOfScope { .. }), "{e}");
        assert!(e.to_string().contains("driver:maas") && !e.to_string().contains("v4lue"));
        let bound = Secrets::new(vec![Arc::new(One(found(vec![Scope::Oob], Some("n1"))))]);
        assert_eq!(
            bound.get("s", &Scope::Oob, Some("n1")).await.unwrap(),
            "v4lue"
        );
        let e = bound.get("s", &Scope::Oob, Some("n2")).await.unwrap_err();
        assert!(matches!(e, SecretError::OtherNode { .. }), "{e}");
        let e = bound
            .get("s", &Scope::Switch, Some("n1"))
            .await
            .unwrap_err();
        assert!(matches!(e, SecretError::OutOfScope { .. }), "{e}");
        assert!(matches!(
            bound.get("t", &Scope::Oob, None).await.unwrap_err(),
            SecretError::Missing(_)
        ));
    }
}
