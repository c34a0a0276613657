//! `drydock driver new NAME --interface oob|node|network`: writes a driver
//! crate a vendor builds with one command: `Cargo.toml` (a cdylib depending
//! on the SDK), `src/lib.rs` (the trait of the interface with every action
//! answering `unsupported`, and a unit test), `README.md` (build, test,
//! sign, install) and `.gitignore`.
//!
//! It writes into a new directory only: an existing one is never touched.

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The interface a new driver implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum NewInterface {
    /// Out-of-band management of nodes through their BMCs.
    Oob,
    /// An OS bootstrapper (enlist, commission, deploy).
    Node,
    /// Switch ports during provisioning.
    Network,
}

/// Arguments of `drydock driver new`.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// The driver's name: lower case letters, digits and `-`.
    pub name: String,
    /// The interface it implements.
    #[arg(long, value_enum)]
    pub interface: NewInterface,
    /// Who publishes it (default: the name).
    #[arg(long)]
    pub vendor: Option<String>,
    /// Where to write the crate (default: ./NAME).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// The `drydock-sdk` crate to depend on (default: the SDK this
    /// `drydock` was built with, `DRYDOCK_SDK` overrides).
    #[arg(long, env = "DRYDOCK_SDK")]
    pub sdk: Option<PathBuf>,
}

/// The files of a new crate, relative to its directory.
pub fn render(args: &NewArgs, sdk: &Path) -> Result<Vec<(PathBuf, String)>> {
    let name = args.name.as_str();
    let name_ok = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !name_ok {
        bail!(
            "driver name `{name}`: use lower case letters, digits and `-`, starting with a letter"
        );
    }
    let vendor = args.vendor.clone().unwrap_or_else(|| name.to_owned());
    if vendor.contains(['"', '\\', '\n']) {
        bail!("--vendor must not contain quotes, backslashes or newlines");
    }
    let type_name: String = name
        .split('-')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect();
    let (interface, skeleton, consts, description) = match args.interface {
        NewInterface::Oob => (
            "oob",
            include_str!("templates/oob.rs.tmpl"),
            format!(
                "    const OOB_TYPES: &'static [&'static str] = &[\"{name}\"];\n    const NODE_BMC: bool = true;\n"
            ),
            format!("{vendor} BMCs"),
        ),
        NewInterface::Node => (
            "node",
            include_str!("templates/node.rs.tmpl"),
            String::new(),
            format!("{vendor} OS bootstrapper"),
        ),
        NewInterface::Network => (
            "network",
            include_str!("templates/network.rs.tmpl"),
            String::new(),
            format!("{vendor} switches"),
        ),
    };
    let sdk = sdk.display().to_string().replace('\\', "/");
    let wasm = format!(
        "target/wasm32-wasip2/release/{}.wasm",
        name.replace('-', "_")
    );
    let fill = |template: &str| {
        template
            .replace("{{skeleton}}", &skeleton.replace("{{type}}", &type_name))
            .replace("{{driver_consts}}", &consts)
            .replace("{{name}}", name)
            .replace("{{type}}", &type_name)
            .replace("{{vendor}}", &vendor)
            .replace("{{description}}", &description)
            .replace("{{interface}}", interface)
            .replace("{{sdk}}", &sdk)
            .replace("{{wasm}}", &wasm)
    };
    Ok(vec![
        (
            "Cargo.toml".into(),
            fill(include_str!("templates/Cargo.toml.tmpl")),
        ),
        (
            "src/lib.rs".into(),
            fill(include_str!("templates/lib.rs.tmpl")),
        ),
        (
            "README.md".into(),
            fill(include_str!("templates/README.md.tmpl")),
        ),
        (".gitignore".into(), "/target\n".into()),
    ])
}

/// The SDK to depend on: `--sdk`, else the one beside this build's sources.
fn sdk_path(args: &NewArgs) -> Result<PathBuf> {
    let candidate = args.sdk.clone().unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap_or(Path::new("."))
            .join("sdk")
    });
    let manifest = candidate.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).with_context(|| {
        format!(
            "no drydock-sdk at {}: give its directory with --sdk or DRYDOCK_SDK",
            candidate.display()
        )
    })?;
    if !text.contains("name = \"drydock-sdk\"") {
        bail!("{} is not the drydock-sdk crate", manifest.display());
    }
    Ok(std::fs::canonicalize(&candidate)?)
}

/// Writes the crate.
pub fn run(args: &NewArgs) -> Result<ExitCode> {
    let sdk = sdk_path(args)?;
    let files = render(args, &sdk)?;
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    if dir.exists() {
        bail!("{} already exists; choose another --dir", dir.display());
    }
    for (path, text) in &files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    println!(
        "created {} ({} driver `{}`); build it with:\n  cd {} && cargo build --release --target wasm32-wasip2",
        dir.display(),
        format!("{:?}", args.interface).to_lowercase(),
        args.name,
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(name: &str, interface: NewInterface) -> NewArgs {
        NewArgs {
            name: name.into(),
            interface,
            vendor: Some("Acme Corp".into()),
            dir: None,
            sdk: None,
        }
    }

    #[test]
    fn crates_name_the_driver_and_its_interface() {
        let files = render(&args("acme-bmc", NewInterface::Oob), Path::new("/sdk")).unwrap();
        let get = |p: &str| &files.iter().find(|(f, _)| f == Path::new(p)).unwrap().1;
        let lib = get("src/lib.rs");
        assert!(lib.contains("pub struct AcmeBmc;"), "{lib}");
        assert!(lib.contains("impl OobDriver for AcmeBmc"), "{lib}");
        assert!(lib.contains("export_driver!(AcmeBmc: oob)"), "{lib}");
        assert!(lib.contains("const OOB_TYPES: &'static [&'static str] = &[\"acme-bmc\"];"));
        assert!(!lib.contains("{{"), "every placeholder filled: {lib}");
        assert_eq!(lib.matches("unsupported(ctx, node, \"").count(), 7);
        let manifest = get("Cargo.toml");
        assert!(manifest.contains("drydock-sdk = { path = \"/sdk\" }"));
        assert!(manifest.contains("crate-type = [\"cdylib\"]"));
        assert!(get("README.md").contains("target/wasm32-wasip2/release/acme_bmc.wasm"));
        let node = render(&args("boot", NewInterface::Node), Path::new("/sdk")).unwrap();
        assert!(node[1].1.contains("impl NodeDriver for Boot"));
        assert_eq!(node[1].1.matches("unsupported(ctx, \"").count(), 17);
    }

    #[test]
    fn bad_names_are_refused() {
        for bad in ["", "Acme", "acme_bmc", "9acme", "a\"b"] {
            assert!(
                render(&args(bad, NewInterface::Network), Path::new("/s")).is_err(),
                "{bad}"
            );
        }
    }
}
