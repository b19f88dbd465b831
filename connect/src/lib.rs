//! tern-connect is the stateful edge of tern: it accepts client TCP
//! connections, speaks the TLV framing, answers heartbeats, enforces the
//! handshake and heartbeat deadlines, keeps live rooms, keeps the registry of which local
//! connection serves which device, forwards every other command to a logic
//! node over the bus, and writes the pushes logic sends it. It never touches
//! SQL or Redis; it knows logic only through bus messages.

mod config;
mod connection;
mod deliver;
pub mod metrics;
mod registry;
mod rooms;
mod server;
mod tls;

pub use config::ConnectConfig;
pub use server::Node;
pub use tls::Tls;
