//! `scim-bench`: a load benchmark of the release `scim-server` over loopback.
//!
//! ```text
//! cargo build --release -p scim-server -p scim-bench
//! target/release/scim-bench --users 10000                  # SQLite file
//! target/release/scim-bench --users 10000 --postgres postgres://postgres@127.0.0.1:5432/test
//! ```
//!
//! It creates a fresh database (a SQLite file in a temporary directory, or
//! a new PostgreSQL database next to the one named), seeds N users through
//! the store's import path (one transaction per batch, the same rows a
//! create writes), creates a token with the CLI, starts the server binary
//! that sits next to this one, and measures each figure for a bounded time
//! with a fixed number of requests in flight over keep-alive connections.
//! In the same run it measures a bare actix-web handler returning a fixed
//! SCIM body: the ceiling of this machine. One line per figure: requests/s,
//! p50, p99 and the ratio to the ceiling. Endpoints the server does not have
//! yet are reported as skipped.

mod load;
mod push;
mod seed;
mod target;

use std::time::Duration;

use clap::Parser;

// The same allocator as the server, so that the load generator and the
// ceiling handler (which run in this process) are not the slower side.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Command line.
#[derive(Debug, Parser)]
#[command(
    name = "scim-bench",
    about = "Load benchmark of scim-server over loopback"
)]
pub struct Args {
    /// Users to seed.
    #[arg(long, default_value_t = 10_000)]
    users: u64,
    /// Benchmark PostgreSQL: an admin URL; a fresh database is created next
    /// to it and dropped afterwards. Default: a SQLite file.
    #[arg(long)]
    postgres: Option<String>,
    /// Requests in flight.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Seconds per figure.
    #[arg(long, default_value_t = 8)]
    seconds: u64,
    /// Most requests per figure.
    #[arg(long, default_value_t = 400_000)]
    max_requests: u64,
    /// Users per import transaction.
    #[arg(long, default_value_t = 5_000)]
    batch: u64,
    /// The scim-server binary (default: next to this one).
    #[arg(long)]
    server: Option<std::path::PathBuf>,
    /// Keep the database (print where it is) instead of deleting it.
    #[arg(long)]
    keep: bool,
    /// Use this existing database (a SQLite path or postgres:// URL) and
    /// keep it; with --no-seed, measure the users already there.
    #[arg(long)]
    database: Option<String>,
    /// Do not seed (with --database: the users of an earlier --keep run).
    #[arg(long)]
    no_seed: bool,
    /// Measure only these figures (comma-separated names as printed, such
    /// as `create,patch`); the ceiling is always measured.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

fn main() -> std::process::ExitCode {
    // `scim-bench push ...`: the provisioning engine (push.rs).
    if std::env::args().nth(1).as_deref() == Some("push") {
        return push::main(std::env::args().skip(2));
    }
    let args = Args::parse();
    match run(&args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scim-bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let db = match &args.database {
        Some(url) => target::Database::existing(url)?,
        None => target::Database::create(args.postgres.as_deref())?,
    };
    let seeded = if args.no_seed {
        seed::existing(&db.url, args.users)?
    } else {
        seed::seed(&db.url, args.users, args.batch)?
    };
    println!(
        "# scim-bench: {} users in the database, backend {}, {} in flight, {} s per figure",
        seeded.in_database,
        db.backend(),
        args.concurrency,
        args.seconds
    );
    if args.no_seed {
        println!(
            "seed              (none: the figures use the users seeded first, --users {})",
            seeded.users
        );
    } else {
        println!(
            "seed              {:>10} users in {:.1} s ({:.0} users/s)",
            args.users,
            seeded.elapsed.as_secs_f64(),
            args.users as f64 / seeded.elapsed.as_secs_f64().max(1e-9)
        );
    }
    let server = target::Server::start(args.server.as_deref(), &db.url)?;
    let ceiling = target::Ceiling::start()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let plan = load::Plan {
        concurrency: args.concurrency,
        duration: Duration::from_secs(args.seconds),
        max_requests: args.max_requests,
        only: args.only.clone(),
    };
    let result = runtime.block_on(load::run_all(&plan, &server, &ceiling, &seeded));
    drop(server);
    drop(ceiling);
    if args.keep || args.database.is_some() {
        println!("# database kept: {}", db.url);
        std::mem::forget(db);
    }
    result
}
