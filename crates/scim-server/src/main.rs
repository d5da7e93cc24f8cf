//! The `scim-server` binary: parse the command line, run it.

use std::process::ExitCode;

use clap::Parser;

// Request handling allocates many small JSON values; with glibc's malloc,
// allocating and freeing them took a quarter of a GET's CPU time.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = scim_server::config::Cli::parse();
    match scim_server::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
