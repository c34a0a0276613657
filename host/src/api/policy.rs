//! Authorization by Drydock's policy rules.
//!
//! Every protected route names one rule (`physical_provisioner:read_task`,
//! `create_task`, one per orchestrator action, `delete_tasks`, `read_data`,
//! `read_build_data`, `health_data`, `validate_site_design`, and this
//! project's own: `cancel_task`, `manage_nodes`, `driver_action`,
//! `drydock:read_drivers`, `drydock:manage_drivers`). A rule is an
//! oslo.policy expression over the caller's credentials, as Drydock's
//! `policy.yaml` writes them:
//!
//! ```text
//! role:admin or (role:operator and not role:suspended)
//! rule:admin_required
//! is_admin_project:True
//! @          (always)     !   (never)     ""  (always)
//! ```
//!
//! Drydock's default for every rule is `role:admin`; the defaults here add
//! this project's three roles (`viewer` reads, `operator` also creates and
//! cancels tasks and registers nodes, `admin` everything), so a static token
//! of role `operator` carries the roles `operator` and `viewer`, and a
//! Keystone user with role `admin` may do what Drydock lets it do. Each rule
//! can be replaced in the `[policy]` configuration table.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A policy rule and the expression it has by default.
#[derive(Clone, Copy, Debug)]
pub struct RuleDefault {
    /// The rule's name.
    pub name: &'static str,
    /// Its default expression.
    pub default: &'static str,
    /// What it guards.
    pub description: &'static str,
}

/// The default for reading: Drydock's admin, and this project's three roles.
const READERS: &str = "role:admin or role:operator or role:viewer";
/// The default for changing things: admin and operator.
const OPERATORS: &str = "role:admin or role:operator";
/// Drydock's own default.
const ADMINS: &str = "role:admin";

/// Every rule, with its default.
pub const RULES: &[RuleDefault] = &[
    RuleDefault {
        name: "admin_required",
        default: "role:admin or is_admin:1",
        description: "Actions requiring admin authority (Drydock's base rule)",
    },
    RuleDefault {
        name: "physical_provisioner:read_task",
        default: READERS,
        description: "GET /tasks, GET /tasks/{id}",
    },
    RuleDefault {
        name: "physical_provisioner:create_task",
        default: OPERATORS,
        description: "POST /tasks (and the action's own rule)",
    },
    RuleDefault {
        name: "physical_provisioner:validate_design",
        default: OPERATORS,
        description: "POST /tasks with action validate_design",
    },
    RuleDefault {
        name: "physical_provisioner:verify_site",
        default: OPERATORS,
        description: "POST /tasks with action verify_site",
    },
    RuleDefault {
        name: "physical_provisioner:prepare_site",
        default: OPERATORS,
        description: "POST /tasks with action prepare_site",
    },
    RuleDefault {
        name: "physical_provisioner:verify_nodes",
        default: OPERATORS,
        description: "POST /tasks with action verify_nodes",
    },
    RuleDefault {
        name: "physical_provisioner:prepare_nodes",
        default: OPERATORS,
        description: "POST /tasks with action prepare_nodes",
    },
    RuleDefault {
        name: "physical_provisioner:deploy_nodes",
        default: OPERATORS,
        description: "POST /tasks with action deploy_nodes",
    },
    RuleDefault {
        name: "physical_provisioner:destroy_nodes",
        default: OPERATORS,
        description: "POST /tasks with action destroy_nodes",
    },
    RuleDefault {
        name: "physical_provisioner:relabel_nodes",
        default: OPERATORS,
        description: "POST /tasks with action relabel_nodes",
    },
    RuleDefault {
        name: "physical_provisioner:driver_action",
        default: OPERATORS,
        description: "POST /tasks with a driver action (e.g. power_cycle_node)",
    },
    RuleDefault {
        name: "physical_provisioner:cancel_task",
        default: OPERATORS,
        description: "POST /tasks/{id}/cancel",
    },
    RuleDefault {
        name: "physical_provisioner:delete_tasks",
        default: ADMINS,
        description: "DELETE /tasks?days=N",
    },
    RuleDefault {
        name: "physical_provisioner:read_build_data",
        default: READERS,
        description: "GET /tasks/{id}/builddata, GET /nodes/{name}/builddata",
    },
    RuleDefault {
        name: "physical_provisioner:read_data",
        default: READERS,
        description: "GET /nodes, GET /nodes/{name}, POST /nodefilter",
    },
    RuleDefault {
        name: "physical_provisioner:ingest_data",
        default: ADMINS,
        description: "Drydock's design upload (not served)",
    },
    RuleDefault {
        name: "physical_provisioner:manage_nodes",
        default: OPERATORS,
        description: "POST /nodes, DELETE /nodes/{name}",
    },
    RuleDefault {
        name: "physical_provisioner:health_data",
        default: READERS,
        description: "GET /health/extended",
    },
    RuleDefault {
        name: "physical_provisioner:validate_site_design",
        default: READERS,
        description: "POST /validatedesign",
    },
    RuleDefault {
        name: "drydock:read_drivers",
        default: READERS,
        description: "GET /drivers...",
    },
    RuleDefault {
        name: "drydock:manage_drivers",
        default: ADMINS,
        description: "installing, activating and rolling back drivers",
    },
];

/// Drydock's orchestrator actions, each with its own rule.
const ACTIONS: &[&str] = &[
    "validate_design",
    "verify_site",
    "prepare_site",
    "verify_nodes",
    "prepare_nodes",
    "deploy_nodes",
    "destroy_nodes",
    "relabel_nodes",
];

/// The rule of an orchestrator action (`physical_provisioner:<action>`),
/// `None` for other actions (driver actions use
/// `physical_provisioner:driver_action`).
pub fn action_rule(action: &str) -> Option<&'static str> {
    if !ACTIONS.contains(&action) {
        return None;
    }
    RULES
        .iter()
        .map(|r| r.name)
        .find(|n| n.strip_prefix("physical_provisioner:") == Some(action))
}

/// What a policy expression is checked against (oslo.policy's credentials).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Credentials {
    /// Role names (compared case-insensitively, as oslo.policy does).
    pub roles: BTreeSet<String>,
    /// The user's id (Keystone) or the static token's name.
    pub user_id: Option<String>,
    /// The project the token is scoped to (Keystone).
    pub project_id: Option<String>,
    /// Whether the token is scoped to Keystone's admin project.
    pub is_admin_project: bool,
}

impl Credentials {
    fn value(&self, key: &str) -> Option<String> {
        match key {
            "user_id" => self.user_id.clone(),
            "project_id" => self.project_id.clone(),
            "is_admin_project" => Some(
                if self.is_admin_project {
                    "True"
                } else {
                    "False"
                }
                .into(),
            ),
            // Drydock's credentials never carry `is_admin`.
            _ => None,
        }
    }
}

/// A policy that cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The configuration names a rule that does not exist.
    #[error("unknown policy rule `{0}` (known: {known})", known = known_rules())]
    UnknownRule(String),
    /// A rule's expression does not parse.
    #[error("policy rule `{rule}`: {message}")]
    Syntax {
        /// The rule.
        rule: String,
        /// What is wrong.
        message: String,
    },
}

fn known_rules() -> String {
    RULES.iter().map(|r| r.name).collect::<Vec<_>>().join(", ")
}

/// A parsed expression.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Expr {
    Always,
    Never,
    Role(String),
    Rule(String),
    Generic(String, String),
    Not(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
}

/// The longest expression accepted, in characters.
const MAX_EXPR: usize = 4096;
/// How deep `rule:` references and parentheses may nest.
const MAX_DEPTH: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Open,
    Close,
    And,
    Or,
    Not,
    Atom(String),
}

fn tokens(s: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    for word in s.replace('(', " ( ").replace(')', " ) ").split_whitespace() {
        out.push(match word {
            "(" => Tok::Open,
            ")" => Tok::Close,
            w if w.eq_ignore_ascii_case("and") => Tok::And,
            w if w.eq_ignore_ascii_case("or") => Tok::Or,
            w if w.eq_ignore_ascii_case("not") => Tok::Not,
            w => Tok::Atom(w.to_owned()),
        });
    }
    out
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn or(&mut self, depth: usize) -> Result<Expr, String> {
        let mut parts = vec![self.and(depth)?];
        while self.peek() == Some(&Tok::Or) {
            self.pos += 1;
            parts.push(self.and(depth)?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Expr::Or(parts)
        })
    }

    fn and(&mut self, depth: usize) -> Result<Expr, String> {
        let mut parts = vec![self.not(depth)?];
        while self.peek() == Some(&Tok::And) {
            self.pos += 1;
            parts.push(self.not(depth)?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Expr::And(parts)
        })
    }

    fn not(&mut self, depth: usize) -> Result<Expr, String> {
        if self.peek() == Some(&Tok::Not) {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.not(depth)?)));
        }
        self.atom(depth)
    }

    fn atom(&mut self, depth: usize) -> Result<Expr, String> {
        if depth > MAX_DEPTH {
            return Err(format!("parentheses nest deeper than {MAX_DEPTH}"));
        }
        let tok = self.peek().cloned();
        self.pos += 1;
        match tok {
            Some(Tok::Open) => {
                let e = self.or(depth + 1)?;
                if self.peek() != Some(&Tok::Close) {
                    return Err("a `(` is not closed".into());
                }
                self.pos += 1;
                Ok(e)
            }
            Some(Tok::Atom(a)) => check(&a),
            Some(t) => Err(format!("unexpected `{}`", tok_text(&t))),
            None => Err("the expression ends too early".into()),
        }
    }
}

fn tok_text(t: &Tok) -> &str {
    match t {
        Tok::Open => "(",
        Tok::Close => ")",
        Tok::And => "and",
        Tok::Or => "or",
        Tok::Not => "not",
        Tok::Atom(a) => a,
    }
}

fn check(atom: &str) -> Result<Expr, String> {
    match atom {
        "@" => return Ok(Expr::Always),
        "!" => return Ok(Expr::Never),
        _ => {}
    }
    let Some((kind, value)) = atom.split_once(':') else {
        return Err(format!(
            "`{atom}` is not a check (expected KIND:VALUE such as role:admin)"
        ));
    };
    if value.contains("%(") {
        return Err(format!(
            "`{atom}`: target substitutions (%(...)s) are not supported"
        ));
    }
    Ok(match kind {
        "role" => Expr::Role(value.to_lowercase()),
        "rule" => Expr::Rule(value.to_owned()),
        _ => Expr::Generic(kind.to_owned(), value.to_owned()),
    })
}

fn parse(s: &str) -> Result<Expr, String> {
    if s.len() > MAX_EXPR {
        return Err(format!("longer than {MAX_EXPR} characters"));
    }
    let toks = tokens(s);
    if toks.is_empty() {
        // oslo.policy: an empty rule always passes.
        return Ok(Expr::Always);
    }
    let mut p = Parser { toks, pos: 0 };
    let e = p.or(0)?;
    if let Some(t) = p.peek() {
        return Err(format!("unexpected `{}`", tok_text(t)));
    }
    Ok(e)
}

/// The rules in force: Drydock's defaults with the configured overrides.
#[derive(Clone)]
pub struct Policy {
    rules: BTreeMap<String, Expr>,
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.rules.keys()).finish()
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy::new(&BTreeMap::new()).expect("the default rules parse")
    }
}

impl Policy {
    /// The default rules, each replaced by `overrides[name]` when given.
    pub fn new(overrides: &BTreeMap<String, String>) -> Result<Policy, PolicyError> {
        if let Some(unknown) = overrides
            .keys()
            .find(|k| !RULES.iter().any(|r| r.name == *k))
        {
            return Err(PolicyError::UnknownRule(unknown.clone()));
        }
        let mut rules = BTreeMap::new();
        for r in RULES {
            let text = overrides
                .get(r.name)
                .map(String::as_str)
                .unwrap_or(r.default);
            let expr = parse(text).map_err(|message| PolicyError::Syntax {
                rule: r.name.into(),
                message,
            })?;
            rules.insert(r.name.to_owned(), expr);
        }
        let policy = Policy { rules };
        for (name, expr) in &policy.rules {
            policy
                .references_exist(expr)
                .map_err(|message| PolicyError::Syntax {
                    rule: name.clone(),
                    message,
                })?;
        }
        Ok(policy)
    }

    fn references_exist(&self, e: &Expr) -> Result<(), String> {
        match e {
            Expr::Rule(r) if !self.rules.contains_key(r) => {
                Err(format!("`rule:{r}` names no rule"))
            }
            Expr::Not(e) => self.references_exist(e),
            Expr::And(es) | Expr::Or(es) => es.iter().try_for_each(|e| self.references_exist(e)),
            _ => Ok(()),
        }
    }

    /// Whether `creds` pass rule `name`. An unknown rule, or `rule:`
    /// references nested deeper than 16 (a cycle), deny.
    pub fn allows(&self, name: &str, creds: &Credentials) -> bool {
        let roles: BTreeSet<String> = creds.roles.iter().map(|r| r.to_lowercase()).collect();
        self.rules
            .get(name)
            .is_some_and(|e| self.eval(e, creds, &roles, 0))
    }

    fn eval(&self, e: &Expr, creds: &Credentials, roles: &BTreeSet<String>, depth: usize) -> bool {
        match e {
            Expr::Always => true,
            Expr::Never => false,
            Expr::Role(r) => roles.contains(r),
            Expr::Rule(r) => {
                depth < MAX_DEPTH
                    && self
                        .rules
                        .get(r)
                        .is_some_and(|e| self.eval(e, creds, roles, depth + 1))
            }
            Expr::Generic(k, v) => creds.value(k).is_some_and(|have| have == *v),
            Expr::Not(e) => !self.eval(e, creds, roles, depth),
            Expr::And(es) => es.iter().all(|e| self.eval(e, creds, roles, depth)),
            Expr::Or(es) => es.iter().any(|e| self.eval(e, creds, roles, depth)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(roles: &[&str]) -> Credentials {
        Credentials {
            roles: roles.iter().map(|r| r.to_string()).collect(),
            ..Credentials::default()
        }
    }

    #[test]
    fn defaults_are_drydocks_plus_our_roles() {
        let p = Policy::default();
        let admin = creds(&["admin"]);
        let op = creds(&["operator", "viewer"]);
        let viewer = creds(&["viewer"]);
        let member = creds(&["member", "reader"]);
        for r in RULES {
            assert!(p.allows(r.name, &admin), "{}", r.name);
            assert!(!p.allows(r.name, &member), "{}", r.name);
        }
        assert!(p.allows("physical_provisioner:read_task", &viewer));
        assert!(!p.allows("physical_provisioner:create_task", &viewer));
        assert!(p.allows("physical_provisioner:deploy_nodes", &op));
        assert!(!p.allows("physical_provisioner:delete_tasks", &op));
        assert!(p.allows("physical_provisioner:delete_tasks", &admin));
        assert!(!p.allows("no_such_rule", &admin));
        // Roles compare case-insensitively.
        assert!(p.allows("physical_provisioner:delete_tasks", &creds(&["Admin"])));
    }

    #[test]
    fn overrides_replace_one_rule() {
        let p = Policy::new(&BTreeMap::from([(
            "physical_provisioner:read_task".to_string(),
            "(role:reader or role:admin) and not role:banned".to_string(),
        )]))
        .unwrap();
        assert!(p.allows("physical_provisioner:read_task", &creds(&["reader"])));
        assert!(!p.allows(
            "physical_provisioner:read_task",
            &creds(&["reader", "banned"])
        ));
        assert!(!p.allows("physical_provisioner:read_task", &creds(&["viewer"])));
        assert!(p.allows("physical_provisioner:read_data", &creds(&["viewer"])));
    }

    #[test]
    fn expressions() {
        let with = |rule: &str, c: &Credentials| {
            Policy::new(&BTreeMap::from([(
                "physical_provisioner:read_task".to_string(),
                rule.to_string(),
            )]))
            .unwrap()
            .allows("physical_provisioner:read_task", c)
        };
        let mut c = creds(&["admin"]);
        assert!(with("rule:admin_required", &c));
        assert!(with("@", &creds(&[])));
        assert!(with("", &creds(&[])));
        assert!(!with("!", &c));
        assert!(!with("is_admin_project:True", &c));
        c.is_admin_project = true;
        assert!(with("is_admin_project:True and role:admin", &c));
        c.user_id = Some("u1".into());
        assert!(with("user_id:u1", &c));
        assert!(!with("user_id:u2 or project_id:p", &c));
    }

    #[test]
    fn bad_policies_are_refused() {
        let one = |name: &str, rule: &str| {
            Policy::new(&BTreeMap::from([(name.to_string(), rule.to_string())]))
        };
        assert!(matches!(
            one("physical_provisioner:read_taks", "role:admin"),
            Err(PolicyError::UnknownRule(_))
        ));
        for bad in [
            "role:admin or",
            "(role:admin",
            "role:admin)",
            "admin",
            "rule:nothing",
            "user_id:%(user_id)s",
        ] {
            let e = one("physical_provisioner:read_task", bad).unwrap_err();
            assert!(e.to_string().contains("read_task"), "{bad}: {e}");
        }
        let deep = format!("{}role:admin{}", "(".repeat(40), ")".repeat(40));
        assert!(one("physical_provisioner:read_task", &deep).is_err());
    }

    #[test]
    fn rule_cycles_deny() {
        let p = Policy::new(&BTreeMap::from([
            (
                "physical_provisioner:read_task".to_string(),
                "rule:physical_provisioner:read_data".to_string(),
            ),
            (
                "physical_provisioner:read_data".to_string(),
                "rule:physical_provisioner:read_task".to_string(),
            ),
        ]))
        .unwrap();
        assert!(!p.allows("physical_provisioner:read_task", &creds(&["admin"])));
    }

    #[test]
    fn action_rules() {
        assert_eq!(
            action_rule("deploy_nodes"),
            Some("physical_provisioner:deploy_nodes")
        );
        assert_eq!(action_rule("read_task"), None);
        assert_eq!(action_rule("power_on_node"), None);
    }
}
