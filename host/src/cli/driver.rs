//! `drydock driver ...`: inspect a component, run one action in the sandbox.

use crate::drivers::package;
use crate::drivers::{
    Action, CallRequest, DriverConfig, EgressGrant, MemoryServices, Runtime, RuntimeConfig,
    TlsSettings,
};
use crate::model;
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// `drydock driver ...`
#[derive(Debug, Subcommand)]
pub enum DriverCommand {
    /// Load and check a driver component; print its info and worlds.
    Inspect {
        /// The component (`.wasm`), or `bundled:NAME` for a built-in driver.
        file: PathBuf,
    },
    /// Run one driver action in the sandbox and print its result as JSON.
    Call(Box<CallArgs>),
    /// Write a new driver crate (manifest, trait skeleton, README, a test)
    /// that builds to a component with one command.
    New(crate::cli::driver_new::NewArgs),
    /// Run the conformance kit against a driver and print its report.
    Test(Box<crate::cli::conformance::TestArgs>),
    /// Create a vendor signing key: PREFIX.key (secret, mode 0600) and
    /// PREFIX.pub (give `VENDOR:<contents>` to operators as a trusted key).
    Keygen {
        /// Output path prefix.
        prefix: PathBuf,
    },
    /// Embed a manifest and an Ed25519 signature in a component.
    Sign(SignArgs),
    /// Upload a driver component to a Drydock server (admin).
    Install {
        /// The component (`.wasm`).
        file: PathBuf,
        /// Activate it right away.
        #[arg(long)]
        activate: bool,
        /// Connection and output options.
        #[command(flatten)]
        conn: crate::cli::client::ConnArgs,
    },
    /// List the drivers of a Drydock server, or show one.
    List {
        /// Show only this driver, with its versions and grants.
        name: Option<String>,
        /// Connection and output options.
        #[command(flatten)]
        conn: crate::cli::client::ConnArgs,
    },
    /// Make an installed version active on every instance (admin).
    Activate {
        /// Driver name.
        name: String,
        /// Version.
        version: String,
        /// Connection and output options.
        #[command(flatten)]
        conn: crate::cli::client::ConnArgs,
    },
    /// Return a driver to the version active before the current one (admin).
    Rollback {
        /// Driver name.
        name: String,
        /// Connection and output options.
        #[command(flatten)]
        conn: crate::cli::client::ConnArgs,
    },
}

/// Arguments of `drydock driver sign`.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// The component (`.wasm`).
    pub file: PathBuf,
    /// The secret key file (from `drydock driver keygen`).
    #[arg(long)]
    pub key: PathBuf,
    /// Where to write the signed component.
    #[arg(long, short)]
    pub output: PathBuf,
    /// A manifest JSON file; without it the manifest is built from the
    /// component's `info` and the options below.
    #[arg(long)]
    pub manifest: Option<PathBuf>,
    /// The package version (default: the component's `info` version).
    #[arg(long)]
    pub version: Option<String>,
    /// Requested outbound host, IP or CIDR, with optional port (repeatable).
    #[arg(long = "request-host", value_name = "HOST")]
    pub request_host: Vec<String>,
    /// Requested memory per call, MiB.
    #[arg(long)]
    pub request_memory_mib: Option<u64>,
    /// Requested longest call, seconds.
    #[arg(long)]
    pub request_call_secs: Option<u64>,
    /// A conformance report of this component (`drydock driver test -o
    /// FILE`) to embed in the signed manifest.
    #[arg(long, value_name = "FILE")]
    pub conformance: Option<PathBuf>,
}

/// Arguments of `drydock driver call`.
#[derive(Debug, Args)]
pub struct CallArgs {
    /// The component (`.wasm`), or `bundled:NAME` for a built-in driver.
    pub file: PathBuf,
    /// The action, by its Drydock name (e.g. `power_cycle_node`).
    pub action: String,
    /// The node as JSON (or `@FILE`), e.g. '{"name":"n1","oob":{"type":"sim"}}'.
    #[arg(long)]
    pub node: Option<String>,
    /// Further action parameters as JSON (or `@FILE`), e.g. '{"boot":{"device":"disk"}}'.
    #[arg(long)]
    pub params: Option<String>,
    /// A driver setting, `KEY=VALUE` (repeatable).
    #[arg(long = "config", value_name = "KEY=VALUE")]
    pub config: Vec<String>,
    /// Grant outbound access to HOST, HOST:PORT, IP, CIDR (repeatable).
    #[arg(long = "allow-host", value_name = "HOST")]
    pub allow_host: Vec<String>,
    /// Grant the driver secret NAME, its value read from the environment
    /// variable DRYDOCK_SECRET_<NAME> (repeatable).
    #[arg(long = "secret", value_name = "NAME")]
    pub secret: Vec<String>,
    /// BMC user name for the node.
    #[arg(long, env = "DRYDOCK_OOB_USER")]
    pub oob_user: Option<String>,
    /// BMC password for the node (prefer the DRYDOCK_OOB_PASSWORD variable:
    /// arguments are visible to other users of the machine).
    #[arg(long, env = "DRYDOCK_OOB_PASSWORD", hide_env_values = true)]
    pub oob_password: Option<String>,
    /// PEM file of extra CA certificates to trust for HTTPS.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// Time limit in seconds (default: the action's Drydock default).
    #[arg(long)]
    pub timeout: Option<f64>,
    /// Memory limit in MiB.
    #[arg(long, default_value_t = 64)]
    pub memory_mib: usize,
    /// JSON file keeping the driver's key-value store between calls.
    #[arg(long)]
    pub state: Option<PathBuf>,
}

/// Runs a `drydock driver` command.
pub async fn run(cmd: DriverCommand) -> Result<ExitCode> {
    match cmd {
        DriverCommand::Inspect { file } => inspect(file).await,
        DriverCommand::Call(args) => call(*args).await,
        DriverCommand::New(args) => crate::cli::driver_new::run(&args),
        DriverCommand::Test(args) => crate::cli::conformance::run(*args).await,
        DriverCommand::Keygen { prefix } => keygen(&prefix),
        DriverCommand::Sign(args) => sign(args).await,
        DriverCommand::Install {
            file,
            activate,
            conn,
        } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            crate::cli::client::commands::driver_install(&conn, bytes, activate).await
        }
        DriverCommand::List { name, conn } => {
            crate::cli::client::commands::driver_list(&conn, name).await
        }
        DriverCommand::Activate {
            name,
            version,
            conn,
        } => crate::cli::client::commands::driver_activate(&conn, &name, Some(&version)).await,
        DriverCommand::Rollback { name, conn } => {
            crate::cli::client::commands::driver_activate(&conn, &name, None).await
        }
    }
}

fn keygen(prefix: &std::path::Path) -> Result<ExitCode> {
    let secret = package::generate_key()?;
    let public = package::public_key(&secret)?;
    let key_path = prefix.with_extension("key");
    let pub_path = prefix.with_extension("pub");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts
        .open(&key_path)
        .with_context(|| format!("creating {}", key_path.display()))?;
    std::io::Write::write_all(&mut f, format!("{secret}\n").as_bytes())?;
    std::fs::write(&pub_path, format!("{public}\n"))
        .with_context(|| format!("writing {}", pub_path.display()))?;
    println!("secret key: {}", key_path.display());
    println!("public key: {} ({public})", pub_path.display());
    println!("operators trust it with: trusted_keys = [\"VENDOR:{public}:DRIVER[,DRIVER...]\"]");
    Ok(ExitCode::SUCCESS)
}

async fn sign(args: SignArgs) -> Result<ExitCode> {
    let bytes =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let secret = std::fs::read_to_string(&args.key)
        .with_context(|| format!("reading {}", args.key.display()))?;
    let manifest = match &args.manifest {
        Some(p) => {
            let text = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
            serde_json::from_slice::<package::Manifest>(&text)
                .with_context(|| format!("parsing manifest {}", p.display()))?
        }
        None => {
            let rt = runtime()?;
            let driver = rt.load(&args.file.display().to_string(), &bytes).await?;
            let info = driver.info();
            package::Manifest {
                name: info.name.clone(),
                version: args.version.clone().unwrap_or_else(|| info.version.clone()),
                vendor: info.vendor.clone(),
                interfaces: info.interfaces.iter().map(|i| i.to_string()).collect(),
                oob_types: info.oob_types.clone(),
                requested: package::Requested {
                    outbound: if args.request_host.is_empty() {
                        info.outbound.hosts.clone()
                    } else {
                        args.request_host.clone()
                    },
                    memory_mib: args.request_memory_mib,
                    call_secs: args.request_call_secs,
                },
                conformance: None,
            }
        }
    };
    let mut manifest = manifest;
    if let Some(path) = &args.conformance {
        manifest.conformance = Some(crate::cli::conformance::embeddable(
            path,
            &bytes,
            &manifest.name,
        )?);
    }
    let with_manifest = package::with_section(
        &bytes,
        package::MANIFEST_SECTION,
        &serde_json::to_vec(&manifest)?,
    )?;
    let signed = package::sign(&with_manifest, &secret)?;
    std::fs::write(&args.output, &signed)
        .with_context(|| format!("writing {}", args.output.display()))?;
    println!(
        "signed {} {} with key {} -> {}",
        manifest.name,
        manifest.version,
        package::public_key(&secret)?,
        args.output.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The runtime for one CLI command; `DRYDOCK_CACHE_DIR` names a compile
/// cache directory to reuse across invocations.
pub(crate) fn runtime() -> Result<Runtime> {
    let cache = match std::env::var_os("DRYDOCK_CACHE_DIR") {
        Some(dir) => Some(
            crate::drivers::CompileCache::open_path(std::path::Path::new(&dir))
                .with_context(|| format!("opening compile cache {}", dir.to_string_lossy()))?,
        ),
        None => None,
    };
    Ok(Runtime::new(RuntimeConfig::default(), cache)?)
}

/// Loads a driver file, or a bundled driver named `bundled:NAME`.
pub(crate) async fn load(rt: &Runtime, file: &std::path::Path) -> Result<crate::drivers::Driver> {
    let text = file.to_string_lossy();
    if let Some(name) = text.strip_prefix("bundled:") {
        let file_name = format!("{name}.wasm");
        let (_, bytes) = crate::bundled::all()
            .into_iter()
            .find(|(f, _)| *f == file_name)
            .with_context(|| format!("no bundled driver named `{name}`"))?;
        return Ok(rt.load(&text, bytes).await?);
    }
    Ok(rt.load_file(file).await?)
}

async fn inspect(file: PathBuf) -> Result<ExitCode> {
    let rt = runtime()?;
    let driver = load(&rt, &file).await?;
    let out = serde_json::json!({
        "file": file.display().to_string(),
        "sha256": driver.sha256(),
        "size": driver.size(),
        "wit": driver.wit_version(),
        "wit_served": crate::drivers::WitVersion::SERVED,
        "worlds": driver.worlds(),
        "info": driver.info(),
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(ExitCode::SUCCESS)
}

/// Reads a JSON argument given inline or as `@FILE`.
pub(crate) fn json_arg<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> Result<T> {
    let owned;
    let text = match text.strip_prefix('@') {
        Some(path) => {
            owned = std::fs::read_to_string(path)
                .with_context(|| format!("reading {what} from {path}"))?;
            owned.as_str()
        }
        None => text,
    };
    serde_json::from_str(text).with_context(|| format!("--{what} is not valid {what} JSON"))
}

async fn call(args: CallArgs) -> Result<ExitCode> {
    let action: Action = args.action.parse()?;
    let mut node: Option<model::Node> = args
        .node
        .as_deref()
        .map(|t| json_arg("node", t))
        .transpose()?;
    if let Some(n) = &mut node {
        if n.name.is_empty() {
            bail!("--node needs a non-empty \"name\"");
        }
        if args.oob_user.is_some() || args.oob_password.is_some() {
            n.oob.credentials = Some(model::Credentials {
                username: args.oob_user.clone().unwrap_or_default(),
                password: args.oob_password.clone().unwrap_or_default(),
            });
        }
    }
    let params: model::ActionParams = args
        .params
        .as_deref()
        .map(|t| json_arg("params", t))
        .transpose()?
        .unwrap_or_default();
    let mut settings = BTreeMap::new();
    for kv in &args.config {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("--config `{kv}` is not KEY=VALUE"))?;
        settings.insert(k.to_owned(), v.to_owned());
    }
    let egress = args
        .allow_host
        .iter()
        .map(|h| h.parse::<EgressGrant>())
        .collect::<Result<Vec<_>, _>>()?;
    let tls = match &args.ca_file {
        Some(p) => {
            let pem = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
            TlsSettings::with_extra_roots(&pem).map_err(anyhow::Error::msg)?
        }
        None => TlsSettings::default(),
    };
    let mut secrets = crate::drivers::GrantedSecrets::default();
    for name in &args.secret {
        let var = crate::secrets::EnvSecrets::variable(name);
        let value = std::env::var(&var)
            .with_context(|| format!("--secret {name}: set the environment variable {var}"))?;
        secrets.insert(name.clone(), value);
    }
    let config = Arc::new(DriverConfig {
        settings,
        egress: egress.into(),
        memory_bytes: args.memory_mib << 20,
        max_call_time: None,
        tls,
        secrets,
    });

    let rt = runtime()?;
    let driver = load(&rt, &args.file).await?;
    let name = driver.info().name.clone();
    let kv: BTreeMap<String, String> = match &args.state {
        Some(p) if p.exists() => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            serde_json::from_str(&text)
                .with_context(|| format!("{} is not a state file", p.display()))?
        }
        _ => BTreeMap::new(),
    };
    let services = Arc::new(MemoryServices::with_kv(&name, kv));
    let result = rt
        .call(
            &driver,
            CallRequest {
                action,
                node: node.as_ref(),
                params: &params,
                config,
                services: services.clone(),
                timeout: args.timeout.map(Duration::from_secs_f64),
                task: None,
            },
        )
        .await;
    for m in services.messages() {
        let tag = if m.is_error { "error" } else { "status" };
        eprintln!("{tag}: {}", m.message);
    }
    if let Some(p) = &args.state {
        let text = serde_json::to_string_pretty(&services.kv_pairs(&name))?;
        std::fs::write(p, text).with_context(|| format!("writing {}", p.display()))?;
    }
    match result {
        Ok(value) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "action": action.name(),
                    "driver": name,
                    "status": "success",
                    "result": value,
                }))?
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "action": action.name(),
                    "driver": name,
                    "status": "failure",
                    "error": { "kind": e.kind(), "retryable": e.is_retryable(), "message": e.to_string() },
                }))?
            );
            Ok(ExitCode::FAILURE)
        }
    }
}
