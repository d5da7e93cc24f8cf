//! The subcommands other than `serve`.

pub mod audit;
pub mod migrate;
pub mod token;
