//! tern-testkit starts the real servers that integration tests need, on free
//! loopback ports with temporary data directories: one MariaDB per test
//! process, shared by its tests, each test getting its own database, and a
//! Redis or NATS server of its own for each test that asks (they start fast
//! and some tests kill and restart them). Servers
//! die with the test process. A missing server binary fails the test with the
//! Debian package to install; nothing is skipped and nothing is mocked.
//!
//! [`push`] has local stand-ins of the push services tern calls (APNs,
//! FCM, a webhook receiver), which check requests as the real ones
//! document it.

mod mariadb;
mod process;
pub mod push;
mod services;

pub use mariadb::{mariadb_server, mysql_database, MariaDb};
pub use process::restartable_port;
pub use services::{nats_server, redis_server, Service};
