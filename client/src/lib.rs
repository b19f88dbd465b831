//! tern-client is the async client SDK for the tern protocol. [`Client`] is
//! one connection: it signs in, sends typed requests, matches their replies
//! and hands the server's pushes to the app as [`Event`]s. [`Session`] keeps
//! a device signed in across drops (heartbeats, reconnect with backoff over
//! a list of servers, SYNC from the last seq) and gives the app every list
//! entry exactly once, in order; [`seq`] is that bookkeeping.
//!
//! ```no_run
//! # async fn demo() -> Result<(), tern_client::ClientError> {
//! let (client, mut events) = tern_client::Client::connect("127.0.0.1:7400").await?;
//! let auth = client.register("alice", "correct horse", "Alice").await?;
//! client.send_text(42, "hello", "msg-1").await?;
//! while let Some(event) = events.recv().await {
//!     println!("{event:?}");
//! }
//! # Ok(()) }
//! ```

mod client;
mod error;
pub mod seq;
mod session;

pub use client::{Client, Event};
pub use error::ClientError;
pub use session::{Credentials, Session, SessionEvent, SessionOptions};
pub use tern_public::proto::client as proto;
pub use tern_public::Code;
