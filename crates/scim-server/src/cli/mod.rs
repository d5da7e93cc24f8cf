//! The subcommands other than `serve`.

pub mod migrate;
pub mod token;
