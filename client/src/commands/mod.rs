//! One typed method on [`Client`] per client command of the protocol,
//! grouped as the protocol groups them. Each sends its request, waits for
//! the reply and decodes it; a reply with a non-OK code is
//! [`ClientError::Server`], whose [`ClientError::code`] tells what went wrong.
//!
//! [`Client`]: crate::Client
//! [`ClientError::Server`]: crate::ClientError::Server
//! [`ClientError::code`]: crate::ClientError::code

mod account;
mod auth;
mod conversations;
mod friends;
mod groups;
mod messages;
mod rooms;
mod users;

pub use account::PushTarget;
pub use auth::SignedIn;
pub use messages::TEXT;

use tern_public::proto::client::Empty;
use tern_public::FrameType;

use crate::{Client, ClientError};

impl Client {
    /// A command whose reply carries nothing.
    async fn command(&self, ty: FrameType, body: &impl prost::Message) -> Result<(), ClientError> {
        let _: Empty = self.request(ty, body).await?;
        Ok(())
    }
}
