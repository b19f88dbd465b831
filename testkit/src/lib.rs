//! tern-testkit starts the real servers that integration tests need, on free
//! loopback ports with temporary data directories: one server per test
//! process, shared by its tests, each test getting its own database. Servers
//! die with the test process. A missing server binary fails the test with the
//! Debian package to install; nothing is skipped and nothing is mocked.

mod mariadb;
mod process;

pub use mariadb::mysql_database;
