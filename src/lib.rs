//! The `tern` binary's library: the standalone server (connect + logic in one
//! process over the in-process bus, SQLite, in-memory presence), the cluster
//! nodes (NATS, MySQL, Redis) and the command-line configuration shared by
//! every subcommand.

pub mod bench;
pub mod chat;
pub mod cli;
pub mod cluster;
pub mod standalone;
