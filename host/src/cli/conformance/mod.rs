//! `drydock driver test`: the conformance kit. It runs the driver contract
//! against any driver component and reports what it found.
//!
//! - `info` is sane (name, version, interfaces, oob types, outbound grants).
//! - Every implemented action is idempotent: run twice, both runs succeed
//!   and the state read after each (the key-value store and the
//!   interface's interrogation) is the same.
//! - Unimplemented actions answer `unsupported` (never a trap, never a
//!   `failed` saying "not implemented").
//! - Against a device (`--endpoint`, reached through the kit's own
//!   endpoints): a wrong password or secret is `auth`, a down device
//!   `unreachable`, a stalled one `timeout` within the deadline, and busy
//!   answers (`503`) are retried.
//! - No secret (password, granted secrets, their wrong variants, basic-auth
//!   tokens) in logs, status messages, results or errors.
//! - No egress beyond what `info` declares, the node's BMC or switch, and
//!   the device the settings name (`{endpoint}`), as an operator grants.
//!
//! Layout: [`report`] (the report's one shape), `fixtures` (what actions
//! are called with), `peer` (busy, stalled and down endpoints), `capture`
//! (guest logs), `verdict` (judging and wording outcomes).

mod capture;
mod fixtures;
mod peer;
pub mod report;
mod verdict;

use crate::drivers::{
    Action, CallError, CallRequest, Driver, DriverConfig, DriverErrorKind, EgressGrant,
    GrantedSecrets, Interface, MemoryServices, Runtime,
};
use crate::model;
use anyhow::{Context, Result, bail};
use clap::Args;
use report::{ActionRun, Check, Report, fail, pass, skip};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::instrument::WithSubscriber;
use verdict::{
    base64_of, check_args, describe, difference, expect_kind, info_check, is_unsupported, outcome,
};

/// Version of the checks; a report names the kit that made it.
pub const KIT_VERSION: u32 = 1;

/// Arguments of `drydock driver test`.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// The component (`.wasm`), or `bundled:NAME` for a built-in driver.
    pub file: PathBuf,
    /// The device the driver talks to, `HOST:PORT` over plain HTTP (a BMC
    /// emulator, a switch, a bootstrapper). The node's BMC and switch point
    /// at the kit's endpoints in front of it; `{endpoint}` in a `--config`
    /// value is replaced by that address. Without it, the error checks are
    /// skipped.
    #[arg(long)]
    pub endpoint: Option<String>,
    /// BMC or switch user name.
    #[arg(long, env = "DRYDOCK_OOB_USER")]
    pub user: Option<String>,
    /// BMC or switch password (prefer DRYDOCK_OOB_PASSWORD).
    #[arg(long, env = "DRYDOCK_OOB_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// Grant the driver secret NAME, its value from DRYDOCK_SECRET_<NAME>
    /// (repeatable).
    #[arg(long = "secret", value_name = "NAME")]
    pub secret: Vec<String>,
    /// A driver setting, `KEY=VALUE` (repeatable).
    #[arg(long = "config", value_name = "KEY=VALUE")]
    pub config: Vec<String>,
    /// The node as JSON (or `@FILE`); its BMC and switch are pointed at the
    /// endpoint.
    #[arg(long)]
    pub node: Option<String>,
    /// The site's networks as JSON (or `@FILE`), for
    /// `create_network_template` and `apply_node_networking` (default: none).
    #[arg(long)]
    pub site: Option<String>,
    /// The switch port of the node's first interface.
    #[arg(long, default_value = "Ethernet1")]
    pub port: String,
    /// Run only actions that change nothing (recorded, read-only devices).
    #[arg(long)]
    pub read_only: bool,
    /// Do not run ACTION (repeatable).
    #[arg(long = "skip", value_name = "ACTION")]
    pub skip: Vec<String>,
    /// Deadline of each call, seconds.
    #[arg(long, default_value_t = 120.0)]
    pub timeout: f64,
    /// Deadline of the call against a stalled device, seconds.
    #[arg(long, default_value_t = 5.0)]
    pub slow_deadline: f64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Also write the JSON report to FILE (for `driver sign --conformance`).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Granted secrets given directly (name, value), beside `--secret`'s
    /// environment variables: for programs embedding the kit.
    #[arg(skip)]
    pub secret_values: Vec<(String, String)>,
}

/// Runs the kit, prints the report; exit 0 when it passed, 1 when not.
pub async fn run(args: TestArgs) -> Result<ExitCode> {
    let report = test(&args).await?;
    let json = serde_json::to_string_pretty(&report)?;
    if let Some(path) = &args.output {
        std::fs::write(path, &json).with_context(|| format!("writing {}", path.display()))?;
    }
    if args.json {
        println!("{json}");
    } else {
        print!("{}", report.text());
    }
    Ok(if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Runs the kit against the driver `args.file` and returns its report.
pub async fn test(args: &TestArgs) -> Result<Report> {
    check_args(args)?;
    let started = Instant::now();
    let rt = super::driver::runtime()?;
    let driver = super::driver::load(&rt, &args.file).await?;
    let mut kit = Kit::new(&rt, &driver, args).await?;
    let mut checks = vec![info_check(driver.info())];
    let actions = kit.run_actions().await;
    checks.push(kit.idempotence(&actions));
    checks.push(kit.unsupported(&actions).await);
    checks.extend(kit.error_checks(&actions).await);
    checks.push(kit.secrets_check());
    checks.push(kit.egress_check());
    let passed = checks.iter().all(|c| c.status != report::Status::Fail);
    Ok(Report {
        kit: KIT_VERSION,
        driver: driver.info().name.clone(),
        version: driver.info().version.clone(),
        sha256: driver.sha256().to_owned(),
        read_only: args.read_only,
        endpoint: args.endpoint.clone(),
        passed,
        checks,
        actions,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    })
}

/// Where one call goes and with which credentials.
#[derive(Clone)]
struct Setup {
    target: fixtures::Target,
    secrets: GrantedSecrets,
}

/// What the kit saw across calls.
#[derive(Default)]
struct Seen {
    /// Results, errors and status messages, as text.
    texts: Vec<String>,
    /// Egress denials.
    denials: Vec<String>,
}

/// One run of the kit.
struct Kit<'a> {
    rt: &'a Runtime,
    driver: &'a Driver,
    args: &'a TestArgs,
    base: model::Node,
    oob_type: String,
    settings: BTreeMap<String, String>,
    extra_egress: Vec<EgressGrant>,
    secrets: Vec<(String, String)>,
    proxy: Option<peer::Endpoint>,
    services: Arc<MemoryServices>,
    logs: capture::Logs,
    seen: Mutex<Seen>,
    image: Option<String>,
    site: model::SiteNetworks,
}

impl<'a> Kit<'a> {
    async fn new(rt: &'a Runtime, driver: &'a Driver, args: &'a TestArgs) -> Result<Kit<'a>> {
        let base: model::Node = match &args.node {
            Some(text) => super::driver::json_arg("node", text)?,
            None => model::Node::default(),
        };
        let mut settings = BTreeMap::new();
        for kv in &args.config {
            let (k, v) = kv
                .split_once('=')
                .with_context(|| format!("--config `{kv}` is not KEY=VALUE"))?;
            settings.insert(k.to_owned(), v.to_owned());
        }
        let mut secrets = args.secret_values.clone();
        for name in &args.secret {
            let var = crate::secrets::EnvSecrets::variable(name);
            let value = std::env::var(&var)
                .with_context(|| format!("--secret {name}: set the environment variable {var}"))?;
            secrets.push((name.clone(), value));
        }
        let proxy = match &args.endpoint {
            Some(e) => {
                let upstream = tokio::net::lookup_host(e.as_str())
                    .await
                    .with_context(|| format!("--endpoint {e} is not HOST:PORT"))?
                    .next()
                    .with_context(|| format!("--endpoint {e} resolves to nothing"))?;
                Some(peer::Endpoint::proxy(upstream).await?)
            }
            None => None,
        };
        let info = driver.info();
        let extra_egress = info
            .outbound
            .hosts
            .iter()
            .filter_map(|h| h.parse::<EgressGrant>().ok())
            .collect();
        Ok(Kit {
            rt,
            driver,
            args,
            oob_type: info.oob_types.first().cloned().unwrap_or_default(),
            base,
            settings,
            extra_egress,
            secrets,
            proxy,
            services: Arc::new(MemoryServices::new()),
            logs: capture::Logs::default(),
            seen: Mutex::new(Seen::default()),
            image: None,
            site: match &args.site {
                Some(text) => super::driver::json_arg("site", text)?,
                None => model::SiteNetworks::default(),
            },
        })
    }

    /// The normal setup: through the kit's proxy, the real credentials.
    fn normal(&self) -> Setup {
        self.setup(self.proxy.as_ref().map(peer::Endpoint::authority), false)
    }

    fn setup(&self, authority: Option<String>, wrong: bool) -> Setup {
        let credentials = match (&self.args.user, &self.args.password) {
            (None, None) => None,
            (user, password) => Some(model::Credentials {
                username: user.clone().unwrap_or_default(),
                password: password
                    .as_deref()
                    .map(|p| {
                        if wrong {
                            fixtures::wrong(p)
                        } else {
                            p.to_owned()
                        }
                    })
                    .unwrap_or_default(),
            }),
        };
        let mut secrets = GrantedSecrets::default();
        for (name, value) in &self.secrets {
            let value = if wrong {
                fixtures::wrong(value)
            } else {
                value.clone()
            };
            secrets.insert(name.clone(), value);
        }
        Setup {
            target: fixtures::Target {
                authority,
                credentials,
            },
            secrets,
        }
    }

    /// Whether the settings name the device (`{endpoint}`).
    fn settings_name_endpoint(&self) -> bool {
        self.settings.values().any(|v| v.contains("{endpoint}"))
    }

    /// Runs `action` once with `setup`, within `deadline`.
    async fn call(
        &self,
        action: Action,
        setup: &Setup,
        deadline: Duration,
    ) -> (Result<Value, CallError>, Duration) {
        let node = fixtures::node(&self.base, &self.oob_type, &setup.target, &self.args.port);
        let mut params = fixtures::params(action, &node, self.image.as_deref());
        if params.site.is_some() {
            params.site = Some(self.site.clone());
        }
        let authority = setup.target.authority.clone().unwrap_or_default();
        let settings = self
            .settings
            .iter()
            .map(|(k, v)| (k.clone(), v.replace("{endpoint}", &authority)))
            .collect();
        let mut egress = self.extra_egress.clone();
        if self.settings_name_endpoint()
            && let Ok(grant) = authority.parse::<EgressGrant>()
        {
            egress.push(grant);
        }
        let config = Arc::new(DriverConfig {
            settings,
            egress: egress.into(),
            memory_bytes: 64 << 20,
            max_call_time: None,
            tls: Default::default(),
            secrets: setup.secrets.clone(),
        });
        let before = self.services.messages().len();
        let started = Instant::now();
        let result = self
            .rt
            .call(
                self.driver,
                CallRequest {
                    action,
                    node: action.is_node_scoped().then_some(&node),
                    params: &params,
                    config,
                    services: self.services.clone(),
                    timeout: Some(deadline),
                    task: None,
                },
            )
            .with_subscriber(self.logs.dispatch())
            .await;
        let took = started.elapsed();
        if let Ok(mut seen) = self.seen.lock() {
            match &result {
                Ok(v) => seen.texts.push(v.to_string()),
                Err(e) => seen.texts.push(e.to_string()),
            }
            for m in self.services.messages().into_iter().skip(before) {
                if m.message.starts_with("egress denied") {
                    seen.denials.push(m.message.clone());
                }
                seen.texts.push(m.message);
            }
        }
        (result, took)
    }

    fn deadline(&self) -> Duration {
        Duration::from_secs_f64(self.args.timeout.max(0.1))
    }

    /// The state after an action: the key-value store and the
    /// interrogation of `interface` (raw documents left out: they may
    /// carry timestamps).
    async fn state(&self, interface: Interface) -> Value {
        let observed = match self
            .call(
                fixtures::observer(interface),
                &self.normal(),
                self.deadline(),
            )
            .await
            .0
        {
            Ok(mut v) => {
                if let Some(o) = v.as_object_mut() {
                    o.retain(|k, _| !k.starts_with("raw"));
                }
                v
            }
            Err(e) => Value::String(outcome(&Err(e))),
        };
        // Read after the observation: reading may itself cache (a system
        // id), which is not the action's doing.
        let kv = self.services.kv_pairs(&self.driver.info().name);
        serde_json::json!({ "kv": kv, "observed": observed })
    }

    /// Runs every action of the declared interfaces twice, in Drydock's
    /// order.
    async fn run_actions(&mut self) -> Vec<ActionRun> {
        let mut runs = Vec::new();
        let interfaces = self.driver.info().interfaces.clone();
        for interface in interfaces {
            for &action in fixtures::order(interface) {
                if self.args.skip.iter().any(|s| s == action.name())
                    || (self.args.read_only && !fixtures::is_read_only(action))
                {
                    continue;
                }
                let setup = self.normal();
                let (first, took) = self.call(action, &setup, self.deadline()).await;
                if action == Action::AvailableImages
                    && let Ok(images) = &first
                {
                    self.image = images
                        .as_array()
                        .and_then(|a| a.first())
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                }
                let mut run = ActionRun {
                    action: action.name().to_owned(),
                    first: outcome(&first),
                    second: None,
                    same_state: None,
                    difference: None,
                    ms: u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
                };
                if !is_unsupported(&first) {
                    let s1 = self.state(interface).await;
                    let (second, _) = self.call(action, &setup, self.deadline()).await;
                    let s2 = self.state(interface).await;
                    run.second = Some(outcome(&second));
                    run.same_state = Some(s1 == s2);
                    run.difference = difference(&s1, &s2, "");
                }
                runs.push(run);
            }
        }
        runs
    }

    /// Every implemented action succeeded twice and left the same state.
    fn idempotence(&self, runs: &[ActionRun]) -> Check {
        let implemented: Vec<&ActionRun> = runs.iter().filter(|r| r.second.is_some()).collect();
        if implemented.is_empty() {
            return skip("actions-idempotent", "no implemented action ran");
        }
        let bad: Vec<String> = implemented
            .iter()
            .filter(|r| {
                r.first != "success"
                    || r.second.as_deref() != Some("success")
                    || r.same_state != Some(true)
            })
            .map(|r| {
                format!(
                    "{}: {} then {}{}",
                    r.action,
                    r.first,
                    r.second.as_deref().unwrap_or("-"),
                    if r.same_state == Some(false) {
                        ", state differs"
                    } else {
                        ""
                    }
                )
            })
            .collect();
        if bad.is_empty() {
            pass(
                "actions-idempotent",
                format!(
                    "{} implemented actions succeeded twice with the same state",
                    implemented.len()
                ),
            )
        } else {
            fail("actions-idempotent", bad.join("; "))
        }
    }

    /// Unimplemented actions answer `unsupported`, also for interfaces the
    /// driver does not declare.
    async fn unsupported(&self, runs: &[ActionRun]) -> Check {
        let declared = &self.driver.info().interfaces;
        let mut bad: Vec<String> = runs
            .iter()
            .filter(|r| {
                let text = r.first.to_ascii_lowercase();
                r.first.starts_with("trap")
                    || (!r.first.starts_with("unsupported") && text.contains("implemented"))
            })
            .map(|r| format!("{}: {}", r.action, r.first))
            .collect();
        let mut undeclared = 0;
        for &action in Action::ALL {
            if declared.contains(&action.interface()) {
                continue;
            }
            undeclared += 1;
            let (result, _) = self.call(action, &self.normal(), self.deadline()).await;
            if !is_unsupported(&result) {
                bad.push(format!("{}: {}", action.name(), outcome(&result)));
            }
        }
        let unsupported = runs.iter().filter(|r| r.second.is_none()).count();
        if bad.is_empty() {
            pass(
                "unimplemented-answer-unsupported",
                format!(
                    "{unsupported} unimplemented and {undeclared} undeclared actions answer unsupported"
                ),
            )
        } else {
            fail("unimplemented-answer-unsupported", bad.join("; "))
        }
    }

    /// The interface whose calls reach the device, and the probe action
    /// that succeeded on it.
    fn probe(&self, runs: &[ActionRun]) -> Option<Action> {
        let info = self.driver.info();
        info.interfaces
            .iter()
            .filter(|i| match i {
                Interface::Oob => info.outbound.node_bmc,
                Interface::Network => true,
                Interface::Node | Interface::Provisioner => self.settings_name_endpoint(),
            })
            .flat_map(|i| fixtures::probes(*i))
            .find(|a| {
                runs.iter()
                    .any(|r| r.action == a.name() && r.first == "success")
            })
    }

    /// Wrong password, down, stalled and busy devices.
    async fn error_checks(&self, runs: &[ActionRun]) -> Vec<Check> {
        const NAMES: [&str; 4] = [
            "wrong-credentials-are-auth",
            "down-device-is-unreachable",
            "stalled-device-is-timeout",
            "busy-answers-are-retried",
        ];
        let Some(proxy) = &self.proxy else {
            return NAMES
                .iter()
                .map(|n| skip(n, "no --endpoint: the driver reaches no device here"))
                .collect();
        };
        let Some(probe) = self.probe(runs) else {
            return NAMES
                .iter()
                .map(|n| skip(n, "no action reaching the device succeeded"))
                .collect();
        };
        let mut checks = Vec::new();

        // Wrong credentials.
        if self.args.password.is_none() && self.secrets.is_empty() {
            checks.push(skip(NAMES[0], "no --password or --secret given"));
        } else {
            let wrong = self.setup(Some(proxy.authority()), true);
            let (r, _) = self.call(probe, &wrong, self.deadline()).await;
            checks.push(expect_kind(NAMES[0], probe, &r, DriverErrorKind::Auth));
        }

        // A device that is down.
        match peer::down_address().await {
            Ok(addr) => {
                let down = self.setup(Some(addr.to_string()), false);
                let (r, _) = self.call(probe, &down, self.deadline()).await;
                checks.push(expect_kind(
                    NAMES[1],
                    probe,
                    &r,
                    DriverErrorKind::Unreachable,
                ));
            }
            Err(e) => checks.push(fail(NAMES[1], format!("no free port: {e}"))),
        }

        // A device that accepts and never answers.
        let deadline = Duration::from_secs_f64(self.args.slow_deadline.max(0.5));
        match peer::Endpoint::stalled().await {
            Ok(stalled) => {
                let slow = self.setup(Some(stalled.authority()), false);
                let (r, took) = self.call(probe, &slow, deadline).await;
                let mut c = expect_kind(NAMES[2], probe, &r, DriverErrorKind::Timeout);
                if matches!(r, Err(CallError::Deadline { .. })) {
                    c.detail = format!(
                        "{probe}: the host cut the call at its {} s deadline: the driver never answered (bound each request by the deadline)",
                        deadline.as_secs_f64()
                    );
                } else if c.status == report::Status::Pass {
                    c.detail = format!(
                        "{} in {:.1} s of a {:.1} s deadline",
                        c.detail,
                        took.as_secs_f64(),
                        deadline.as_secs_f64()
                    );
                }
                checks.push(c);
            }
            Err(e) => checks.push(fail(NAMES[2], format!("no stalled endpoint: {e}"))),
        }

        // Busy answers: the first two requests get 503.
        let before = proxy.seen();
        proxy
            .busy_left
            .store(2, std::sync::atomic::Ordering::SeqCst);
        let (r, _) = self.call(probe, &self.normal(), self.deadline()).await;
        proxy
            .busy_left
            .store(0, std::sync::atomic::Ordering::SeqCst);
        let requests = proxy.seen() - before;
        checks.push(match r {
            Ok(_) => pass(
                NAMES[3],
                format!("{probe} succeeded after two 503 answers ({requests} requests)"),
            ),
            Err(e) => fail(
                NAMES[3],
                format!("{probe} gave up after two 503 answers: {}", describe(&e)),
            ),
        });
        checks
    }

    /// No secret anywhere the driver's output goes.
    fn secrets_check(&self) -> Check {
        let mut values: Vec<(String, String)> = Vec::new();
        if let Some(p) = &self.args.password {
            let user = self.args.user.clone().unwrap_or_default();
            values.push(("the password".into(), p.clone()));
            values.push(("the wrong password".into(), fixtures::wrong(p)));
            values.push((
                "the basic-auth token".into(),
                base64_of(&format!("{user}:{p}")),
            ));
        }
        for (name, v) in &self.secrets {
            values.push((format!("secret {name}"), v.clone()));
            values.push((format!("secret {name} (wrong)"), fixtures::wrong(v)));
        }
        values.retain(|(_, v)| v.len() >= 4);
        if values.is_empty() {
            return skip("no-secret-in-output", "no --password or --secret given");
        }
        let logs = self.logs.lines();
        let seen = self
            .seen
            .lock()
            .map(|s| s.texts.clone())
            .unwrap_or_default();
        let mut leaks = Vec::new();
        for (what, value) in &values {
            if logs.iter().any(|l| l.contains(value.as_str())) {
                leaks.push(format!("{what} in a log line"));
            }
            if seen.iter().any(|t| t.contains(value.as_str())) {
                leaks.push(format!("{what} in a result, error or status message"));
            }
        }
        if leaks.is_empty() {
            pass(
                "no-secret-in-output",
                format!(
                    "{} log lines, {} results, errors and messages hold none of {} secret values",
                    logs.len(),
                    seen.len(),
                    values.len()
                ),
            )
        } else {
            fail("no-secret-in-output", leaks.join("; "))
        }
    }

    /// No request the host refused.
    fn egress_check(&self) -> Check {
        let denials = self
            .seen
            .lock()
            .map(|s| s.denials.clone())
            .unwrap_or_default();
        if denials.is_empty() {
            pass(
                "no-undeclared-egress",
                "every request went to the node's BMC or switch, a declared host, or the configured device",
            )
        } else {
            fail("no-undeclared-egress", denials.join("; "))
        }
    }
}

/// The report in `path` as a manifest value, if it is a report on exactly
/// this component (`bytes`, before signing) and driver `name`.
pub fn embeddable(path: &std::path::Path, bytes: &[u8], name: &str) -> Result<Value> {
    use sha2::Digest as _;
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let report: Report = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not a conformance report", path.display()))?;
    let sha256 = hex::encode(sha2::Sha256::digest(bytes));
    if report.sha256 != sha256 {
        bail!(
            "{} reports on component {}, not this one ({sha256}): run `drydock driver test` on it",
            path.display(),
            report.sha256
        );
    }
    if report.driver != name {
        bail!(
            "{} reports on driver {}, not {name}",
            path.display(),
            report.driver
        );
    }
    Ok(serde_json::to_value(&report)?)
}
