//! tern's integration tests, as one test binary: each former `tests/X.rs`
//! suite is the module `X`, so a test is named `X::...` (`cargo test --test
//! it abuse::` runs one suite). One binary links the shared helpers
//! ([`common`]) once instead of once per suite, and a helper no suite uses
//! is reported as dead code.
//!
//! Every test starts its own servers on free loopback ports (MariaDB is one
//! server per process with a database per test), so the suites share the
//! process safely: nothing here sets environment variables, installs signal
//! handlers or binds a fixed port. The soak (`tests/soak/`) stays its own
//! binary: it runs for minutes, alone, from `scripts/soak.sh`.

// First, so that `in_both_shapes!` is in scope in every suite below.
#[macro_use]
mod common;

mod abuse;
mod accounts;
mod admin;
mod after_send;
mod bad_input;
mod before_send;
mod bench;
mod bench_direct;
mod bench_push;
mod binary;
mod blocks;
mod chat;
mod chat_cli;
mod cluster;
mod cluster_failures;
mod compose;
mod concurrency;
mod conversations;
mod friends;
mod group_rules;
mod groups;
mod http_limits;
mod limits;
mod nats_bus;
mod output_bound;
mod push;
mod push_failures;
mod push_providers;
mod read_positions;
mod rooms;
mod sdk;
mod secrets;
mod session;
mod sessions;
mod standing_cache;
mod store_outages;
mod tls;
mod users;
