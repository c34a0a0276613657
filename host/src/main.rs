//! The `drydock` binary: parses arguments, sets up logging, runs the command.

use std::process::ExitCode;

/// mimalloc instead of glibc malloc: the engine allocates and frees per
/// driver call on every worker thread, where glibc's arenas contend.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    drydock::cli::main()
}
