//! The `scimctl` binary: parse the command line, run it, exit with its code.

use std::process::ExitCode;

fn main() -> ExitCode {
    scimctl::main_with_args(std::env::args_os())
}
