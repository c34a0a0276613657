// Builds a cargo workspace of wasm32-wasip2 components from a `build.rs`.
//
// `include!`d by `host/build.rs` (the shipped drivers in `drivers/`) and
// `tests/build.rs` (the guest fixtures in `tests/guests/`). Those workspaces
// are not members of the root workspace: a native build of their cdylib
// components fails to link, so each is built by a nested `cargo build`.
//
// Only items, no `use`: the including file keeps its own imports.

/// The target every Drydock component is built for.
const WASM_TARGET: &str = "wasm32-wasip2";

/// Environment of the outer build that must not reach the nested one: flags
/// for the host target (coverage, sanitizers, `-D warnings` from clippy...)
/// and settings that would redirect the nested build.
const OUTER_BUILD_ENV: &[&str] = &[
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "RUSTDOCFLAGS",
    "CARGO_ENCODED_RUSTDOCFLAGS",
    "CARGO_BUILD_TARGET",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_BUILD_DIR",
    "RUSTC_WORKSPACE_WRAPPER",
    "CLIPPY_ARGS",
    "CARGO_PRIMARY_PACKAGE",
    "OUT_DIR",
];

/// Runs `cargo build --release --target wasm32-wasip2` in the workspace at
/// `workspace_dir` (relative to the including package's directory, or
/// absolute) with `CARGO_TARGET_DIR=target_dir`, and returns the `.wasm`
/// components it produced (absolute paths, sorted).
///
/// Emits `cargo:rerun-if-changed` for the workspace, the repository's `sdk/`
/// and `wit/`. Panics with a clear message if the `wasm32-wasip2` target is
/// missing or the build fails (cargo's errors are on stderr).
fn build_wasm_workspace(
    workspace_dir: &std::path::Path,
    target_dir: &std::path::Path,
) -> Vec<std::path::PathBuf> {
    let manifest_dir = std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR is set by cargo"),
    );
    let workspace_dir = manifest_dir.join(workspace_dir);
    let root = manifest_dir
        .ancestors()
        .find(|dir| dir.join("wit").is_dir() && dir.join("sdk").is_dir())
        .expect("the repository root (with wit/ and sdk/) above CARGO_MANIFEST_DIR");
    for path in [
        workspace_dir.as_path(),
        &root.join("sdk"),
        &root.join("wit"),
    ] {
        println!(
            "cargo:rerun-if-changed={}",
            wasm_relative_path(&manifest_dir, path).display()
        );
    }

    wasm_check_target_installed();

    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = std::process::Command::new(cargo);
    for var in OUTER_BUILD_ENV {
        command.env_remove(var);
    }
    command
        .current_dir(&workspace_dir)
        .args(["build", "--release", "--target", WASM_TARGET])
        .arg("--message-format=json-render-diagnostics")
        .env("CARGO_TARGET_DIR", target_dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit());
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run cargo to build {}: {e}", workspace_dir.display()));
    if !output.status.success() {
        panic!(
            "building the {WASM_TARGET} components in {} failed ({}); cargo's errors are above",
            workspace_dir.display(),
            output.status
        );
    }

    // Cargo's JSON messages: keep the `.wasm` files of `compiler-artifact`s.
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut wasm: Vec<std::path::PathBuf> = Vec::new();
    for line in stdout.lines() {
        if !line.contains(r#""reason":"compiler-artifact""#) {
            continue;
        }
        let Some(start) = line.find(r#""filenames":["#) else {
            continue;
        };
        let list = &line[start + r#""filenames":["#.len()..];
        let list = &list[..list.find(']').unwrap_or(list.len())];
        wasm.extend(
            list.split(',')
                .map(|item| item.trim().trim_matches('"'))
                .filter(|file| file.ends_with(".wasm"))
                .map(std::path::PathBuf::from),
        );
    }
    wasm.sort();
    wasm.dedup();
    wasm
}

/// Panics, saying how to fix it, if the toolchain lacks the wasm32-wasip2
/// standard library.
fn wasm_check_target_installed() {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = std::process::Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", rustc.to_string_lossy()));
    let sysroot = String::from_utf8_lossy(&output.stdout);
    let target_lib = std::path::Path::new(sysroot.trim())
        .join("lib")
        .join("rustlib")
        .join(WASM_TARGET);
    if !output.status.success() || !target_lib.is_dir() {
        panic!(
            "the {WASM_TARGET} target is not installed for this toolchain \
             ({} is missing): run `rustup target add {WASM_TARGET}`",
            target_lib.display()
        );
    }
}

/// `path` relative to `base` (both absolute), e.g. `../sdk`.
fn wasm_relative_path(base: &std::path::Path, path: &std::path::Path) -> std::path::PathBuf {
    let mut up = std::path::PathBuf::new();
    for ancestor in base.ancestors() {
        if let Ok(rest) = path.strip_prefix(ancestor) {
            let relative = up.join(rest);
            return if relative.as_os_str().is_empty() {
                ".".into()
            } else {
                relative
            };
        }
        up.push("..");
    }
    path.to_path_buf()
}
