//! The `drydock` binary: parses arguments, sets up logging, runs the command.

use std::process::ExitCode;

fn main() -> ExitCode {
    drydock::cli::main()
}
