//! tern-connect is the stateful edge of tern: it accepts client TCP
//! connections, speaks the TLV framing, answers heartbeats, enforces the
//! handshake and heartbeat deadlines, keeps live rooms, keeps the registry of which local
//! connection serves which device, forwards every other command to a logic
//! node over the bus, and writes the pushes logic sends it. It never touches
//! SQL or Redis; it knows logic only through bus messages.
//!
//! Modules, top to bottom; each uses only those below it:
//! `server` (accept loop, admission, drain, liveness announcements) ·
//! `deliver` (the node's bus consumers) · `connection` (one client) ·
//! `node` (the state they share) · `logic_link` (calls up to logic) ·
//! `rooms` · `registry` (connections by id and device; where frames are
//! pushed) · `close`, `metrics`, `config`, `tls`.

mod close;
mod config;
mod connection;
mod deliver;
mod logic_link;
pub mod metrics;
mod node;
mod registry;
mod rooms;
mod server;
mod tls;

pub use config::ConnectConfig;
pub use server::Node;
pub use tls::Tls;
