//! tern-client is the async client SDK for the tern protocol.
//!
//! - [`Client`] is one connection. It has one typed method per client
//!   command: sign-in ([`Client::register`], [`Client::login`],
//!   [`Client::sign_in`]), messages ([`Client::send`], [`Client::recall`],
//!   [`Client::sync`], [`Client::ack`]), friends (`friend_*`), groups
//!   (`group_*`), live rooms (`room_*`) and profiles (`user_*`). Pushes from
//!   the server arrive as [`Event`]s on the receiver `connect` returns.
//! - [`Session`] keeps a device signed in across drops: heartbeats,
//!   reconnects with backoff over a list of servers, SYNCs from the last seq
//!   it handed over, and gives the app every list entry exactly once, in
//!   order, as [`SessionEvent`]s. [`Session::client`] is the live
//!   connection, for every other command; [`Session::reconnect`] moves it
//!   at once when the app learns the network changed.
//! - [`seq`] is that bookkeeping (apply the next seq, sync on a gap, drop
//!   duplicates), usable on its own.
//! - [`ConversationView`] is a device's copy of the conversation list
//!   (unread counts, read positions, settings), kept by the entries the
//!   device receives; a [`Session`] keeps one when
//!   [`SessionOptions::conversations`] asks for it.
//!
//! A failed command is [`ClientError::Server`]; [`ClientError::code`] says
//! why ([`Code::NotFriends`], [`Code::Muted`], ...). A [`Code::RateLimited`]
//! one says how long to wait before trying again in
//! [`ClientError::retry_after`]. A SEND the server's moderation hook
//! refused is [`Code::Rejected`], with the hook's code and reason in
//! [`ClientError::send_rejected`].
//!
//! Register once, keep the credentials, then stay online with a session:
//!
//! ```no_run
//! use tern_client::proto::GroupCreateRequest;
//! use tern_client::{Client, Credentials, Session, SessionEvent, SessionOptions};
//!
//! # async fn demo() -> Result<(), tern_client::ClientError> {
//! let addr = "127.0.0.1:7400";
//! let (client, _events) = Client::connect(addr).await?;
//! let auth = client.register("alice", "correct horse", "Alice").await?;
//! let creds = Credentials {
//!     user_id: auth.user_id,
//!     device_id: auth.device_id,
//!     token: auth.token, // store this; it signs the device in without a password
//! };
//! drop(client);
//!
//! let addrs = vec![addr.parse().unwrap()];
//! let (session, mut events) = Session::start(addrs, creds, 0, SessionOptions::default());
//! let bob = session.client().await?.user_search("bob", "", 1).await?.users[0].user_id;
//! session.client().await?.friend_request(bob, "hi, it's Alice").await?;
//! let group = GroupCreateRequest {
//!     name: "climbing".into(),
//!     member_ids: vec![bob],
//!     ..Default::default()
//! };
//! let group = session.client().await?.group_create(&group).await?;
//! session.client().await?.send_group_text(group.group_id, "Saturday?", "msg-1").await?;
//!
//! while let Some(event) = events.recv().await {
//!     match event {
//!         SessionEvent::Message(m) => println!("#{} from {}", m.seq, m.sender_id),
//!         SessionEvent::Ended(why) => {
//!             eprintln!("signed out: {why}"); // e.g. signed in elsewhere
//!             break;
//!         }
//!         _ => {}
//!     }
//! }
//! # Ok(()) }
//! ```

mod client;
mod commands;
pub mod conversations;
mod error;
pub mod seq;
mod session;
mod tls;

pub use client::{Client, Event};
pub use commands::{PushTarget, SignedIn, TEXT};
pub use conversations::{Applied, ConversationView};
pub use error::ClientError;
pub use session::{Credentials, Session, SessionEvent, SessionOptions};
pub use tern_public::proto::client as proto;
pub use tern_public::Code;
pub use tls::TlsConfig;
