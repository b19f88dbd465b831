//! tern-client is the async client SDK for the tern protocol: it connects,
//! signs in, sends typed requests and matches their replies, and hands the
//! server's pushes to the app as a stream of [`Event`]s.
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

pub use client::{Client, Event};
pub use error::ClientError;
pub use tern_public::proto::client as proto;
pub use tern_public::Code;
