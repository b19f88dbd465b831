//! REGISTER, LOGIN, SIGN_IN and HEARTBEAT.

use tern_public::proto::client::{
    AuthReply, DeviceInfo, Empty, HeartbeatReply, LoginRequest, RegisterRequest, Session,
    SignInReply, SignInRequest, TokenReply,
};
use tern_public::FrameType;

use crate::{Client, ClientError};

/// A device signed in again with its token.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub session: Session,
    /// The token that replaces the one presented (it was past half its
    /// life, or replaced already), with its expiry.
    pub new_token: Option<TokenReply>,
}

impl Client {
    /// Creates an account and signs this connection in as its first device.
    /// Keep the reply's `user_id`, `device_id` and `token` to sign in again
    /// later with [`Client::sign_in`] (no password needed).
    pub async fn register(
        &self,
        username: &str,
        password: &str,
        nickname: &str,
    ) -> Result<AuthReply, ClientError> {
        let req = RegisterRequest {
            username: username.into(),
            password: password.into(),
            nickname: nickname.into(),
            device: Some(default_device()),
        };
        self.request(FrameType::Register, &req).await
    }

    /// Logs in; `device_id` reuses a device of this user (its token is replaced).
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        device_id: Option<u64>,
    ) -> Result<AuthReply, ClientError> {
        let req = LoginRequest {
            username: username.into(),
            password: password.into(),
            device: Some(default_device()),
            device_id: device_id.unwrap_or(0),
        };
        self.request(FrameType::Login, &req).await
    }

    /// Resumes a device with the token from an earlier register or login.
    /// When the server replaced the token ([`SignedIn::new_token`]), keep
    /// the new one in place of `token`: the old one stops working once the
    /// new one is used.
    pub async fn sign_in(
        &self,
        user_id: u64,
        device_id: u64,
        token: &str,
    ) -> Result<SignedIn, ClientError> {
        let req = SignInRequest {
            user_id,
            device_id,
            token: token.into(),
        };
        let reply: SignInReply = self.request(FrameType::SignIn, &req).await?;
        let session = reply.session.ok_or(ClientError::Closed)?;
        let new_token = (!reply.token.is_empty()).then_some(TokenReply {
            token: reply.token,
            token_expires_at_ms: reply.token_expires_at_ms,
        });
        Ok(SignedIn { session, new_token })
    }

    /// Tells the server this connection is alive; returns the server's clock
    /// in milliseconds since the Unix epoch.
    pub async fn heartbeat(&self) -> Result<i64, ClientError> {
        let r: HeartbeatReply = self.request(FrameType::Heartbeat, &Empty {}).await?;
        Ok(r.server_time_ms)
    }
}

fn default_device() -> DeviceInfo {
    DeviceInfo {
        platform: std::env::consts::OS.into(),
        model: "tern-client".into(),
        os_version: String::new(),
        app_version: env!("CARGO_PKG_VERSION").into(),
    }
}
