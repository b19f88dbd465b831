//! PASSWORD_CHANGE, LOGOUT, DEVICE_LIST, DEVICE_REVOKE, ACCOUNT_DELETE,
//! TOKEN_REFRESH and the push token: the signed-in user's account and
//! devices.

use tern_public::proto::client::{
    AccountDeleteRequest, DeviceList, DeviceTarget, Empty, PasswordChangeRequest, PushProvider,
    PushTokenRequest, TokenReply,
};
use tern_public::FrameType;

use crate::{Client, ClientError};

/// Where a device's push notifications go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushTarget {
    /// An APNs device token (hex). `topic` is the app's bundle id (empty:
    /// the server's default); `sandbox` picks the development environment.
    Apns {
        token: String,
        topic: String,
        sandbox: bool,
    },
    /// An FCM registration token.
    Fcm { token: String },
    /// A token the server's push webhook receives.
    Webhook { token: String },
}

impl Client {
    /// Changes the password. This device stays signed in; with
    /// `sign_out_other_devices` every other device is signed out (kicked,
    /// its token and push token removed).
    pub async fn change_password(
        &self,
        old_password: &str,
        new_password: &str,
        sign_out_other_devices: bool,
    ) -> Result<(), ClientError> {
        let req = PasswordChangeRequest {
            old_password: old_password.into(),
            new_password: new_password.into(),
            sign_out_other_devices,
        };
        self.command(FrameType::PasswordChange, &req).await
    }

    /// Signs this device out: its token and push token are removed and the
    /// server closes the connection after the reply (KICKED, LOGGED_OUT).
    pub async fn logout(&self) -> Result<(), ClientError> {
        self.command(FrameType::Logout, &Empty {}).await
    }

    /// Every device of the user, oldest first.
    pub async fn devices(&self) -> Result<DeviceList, ClientError> {
        self.request(FrameType::DeviceList, &Empty {}).await
    }

    /// Signs another device of the user out; its connection is closed.
    pub async fn revoke_device(&self, device_id: u64) -> Result<(), ClientError> {
        self.command(FrameType::DeviceRevoke, &DeviceTarget { device_id })
            .await
    }

    /// Deletes the account (the password again, to be sure). Every device
    /// is signed out; this connection closes after the reply.
    pub async fn delete_account(&self, password: &str) -> Result<(), ClientError> {
        let req = AccountDeleteRequest {
            password: password.into(),
        };
        self.command(FrameType::AccountDelete, &req).await
    }

    /// A new token for this device, to keep in place of the old one (which
    /// works until the new one is first used).
    pub async fn refresh_token(&self) -> Result<TokenReply, ClientError> {
        self.request(FrameType::TokenRefresh, &Empty {}).await
    }

    /// Sends this device's push notifications to `target`, in place of any
    /// token it had.
    pub async fn set_push_token(&self, target: PushTarget) -> Result<(), ClientError> {
        let req = match target {
            PushTarget::Apns {
                token,
                topic,
                sandbox,
            } => PushTokenRequest {
                provider: PushProvider::Apns as i32,
                token,
                apns_topic: topic,
                apns_sandbox: sandbox,
            },
            PushTarget::Fcm { token } => PushTokenRequest {
                provider: PushProvider::Fcm as i32,
                token,
                ..Default::default()
            },
            PushTarget::Webhook { token } => PushTokenRequest {
                provider: PushProvider::Webhook as i32,
                token,
                ..Default::default()
            },
        };
        self.command(FrameType::PushTokenSet, &req).await
    }

    /// This device gets no more push notifications.
    pub async fn remove_push_token(&self) -> Result<(), ClientError> {
        self.command(FrameType::PushTokenRemove, &Empty {}).await
    }
}
