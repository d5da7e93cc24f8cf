//! Database access: the connection over both backends, the pool, the
//! embedded migrations and the table definitions.

pub mod connection;
pub mod migrations;
pub mod schema;
pub mod writer;

pub use connection::{
    AnyConnection, Backend, ConnectionManager, DatabaseUrl, Pool, PoolOptions, PooledConnection,
    attach_gate, build_pool, read_transaction, spawn_checkpointer, write_transaction,
};
pub use writer::{WriteGate, WriteStats};
