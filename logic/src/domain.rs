//! The states of tern's domain as types: a group member's role, one
//! direction of a friendship, an account's status. Everything above the
//! store works with these enums; their strings (as stored and in the admin
//! API's JSON) and numbers (the client protocol's enums) appear only in the
//! conversions below, so a typo does not compile and a new state is added
//! in one place.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use tern_public::proto::client as wire;

/// A member's role in a group. Ordered by authority: `Member < Admin < Owner`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Member,
    Admin,
    Owner,
}

/// One direction of a relation between two users, as seen by its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FriendState {
    /// I asked them.
    Requested,
    /// They asked me.
    Pending,
    Accepted,
    /// I blocked them.
    Blocked,
}

/// An account's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum UserStatus {
    Active,
    /// Signed out everywhere and refused sign-in until enabled again.
    Disabled,
    /// Gone for good: the row stays so ids are never reused.
    Deleted,
}

/// Where a device's push notifications go. Stored as the client
/// protocol's number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PushProvider {
    /// Apple Push Notification service.
    Apns,
    /// Firebase Cloud Messaging (HTTP v1).
    Fcm,
    /// The server's push webhook.
    Webhook,
}

/// A stored value that names no known state: the database was written by
/// something else, or a migration is missing.
#[derive(Debug, thiserror::Error)]
#[error("unknown {what} {value:?} in the database")]
pub struct UnknownState {
    pub what: &'static str,
    pub value: String,
}

/// Conversions of a domain state to and from its stored string.
pub trait Stored: Sized + Copy + std::fmt::Debug + 'static {
    /// What the state is called in errors.
    const WHAT: &'static str;
    /// Every state, for parsing and tests.
    const ALL: &'static [Self];
    /// How the store reads a value it does not know (written by hand or by
    /// a newer version): the state that grants the least, so one odd row
    /// neither breaks every read that touches it nor gives anything away.
    const FALLBACK: Self;
    /// The string stored in the database (and used in the admin API's JSON).
    fn as_str(self) -> &'static str;

    /// The state a stored string names.
    fn parse(value: &str) -> Result<Self, UnknownState> {
        Self::ALL
            .iter()
            .copied()
            .find(|s| s.as_str() == value)
            .ok_or_else(|| UnknownState {
                what: Self::WHAT,
                value: value.to_owned(),
            })
    }
}

// === impl Role ===

impl Stored for Role {
    const WHAT: &'static str = "group role";
    const ALL: &'static [Role] = &[Role::Member, Role::Admin, Role::Owner];
    const FALLBACK: Role = Role::Member;

    fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }
}

impl Role {
    /// The role a client names; `None` for UNSPECIFIED or an unknown number.
    pub fn from_wire(value: i32) -> Option<Role> {
        match wire::GroupRole::try_from(value).ok()? {
            wire::GroupRole::Member => Some(Role::Member),
            wire::GroupRole::Admin => Some(Role::Admin),
            wire::GroupRole::Owner => Some(Role::Owner),
            wire::GroupRole::Unspecified => None,
        }
    }

    /// The client protocol's enum.
    pub fn to_wire(self) -> wire::GroupRole {
        match self {
            Role::Member => wire::GroupRole::Member,
            Role::Admin => wire::GroupRole::Admin,
            Role::Owner => wire::GroupRole::Owner,
        }
    }

    /// Whether the role may manage members below it (add past a closed
    /// invite, remove, mute) and speak when the group is muted.
    pub fn is_manager(self) -> bool {
        self >= Role::Admin
    }
}

// === impl FriendState ===

impl Stored for FriendState {
    const WHAT: &'static str = "friend state";
    const ALL: &'static [FriendState] = &[
        FriendState::Requested,
        FriendState::Pending,
        FriendState::Accepted,
        FriendState::Blocked,
    ];
    /// Neither friends nor blocked, and nothing for this side to accept.
    const FALLBACK: FriendState = FriendState::Requested;

    fn as_str(self) -> &'static str {
        match self {
            FriendState::Requested => "requested",
            FriendState::Pending => "pending",
            FriendState::Accepted => "accepted",
            FriendState::Blocked => "blocked",
        }
    }
}

impl FriendState {
    /// The client protocol's enum.
    pub fn to_wire(self) -> wire::FriendState {
        match self {
            FriendState::Requested => wire::FriendState::Requested,
            FriendState::Pending => wire::FriendState::Pending,
            FriendState::Accepted => wire::FriendState::Accepted,
            FriendState::Blocked => wire::FriendState::Blocked,
        }
    }
}

// === impl UserStatus ===

impl Stored for UserStatus {
    const WHAT: &'static str = "user status";
    const ALL: &'static [UserStatus] = &[
        UserStatus::Active,
        UserStatus::Disabled,
        UserStatus::Deleted,
    ];
    /// Not active: no sign-in, no messages to it, out of new groups.
    const FALLBACK: UserStatus = UserStatus::Disabled;

    fn as_str(self) -> &'static str {
        match self {
            UserStatus::Active => "active",
            UserStatus::Disabled => "disabled",
            UserStatus::Deleted => "deleted",
        }
    }
}

// === impl PushProvider ===

impl PushProvider {
    pub fn from_wire(v: i32) -> Option<PushProvider> {
        match wire::PushProvider::try_from(v).ok()? {
            wire::PushProvider::Apns => Some(PushProvider::Apns),
            wire::PushProvider::Fcm => Some(PushProvider::Fcm),
            wire::PushProvider::Webhook => Some(PushProvider::Webhook),
            wire::PushProvider::Unspecified => None,
        }
    }

    pub fn to_wire(self) -> wire::PushProvider {
        match self {
            PushProvider::Apns => wire::PushProvider::Apns,
            PushProvider::Fcm => wire::PushProvider::Fcm,
            PushProvider::Webhook => wire::PushProvider::Webhook,
        }
    }

    /// The stored number (the wire's); `None` for a number no provider has.
    pub fn from_stored(v: i64) -> Option<PushProvider> {
        i32::try_from(v).ok().and_then(PushProvider::from_wire)
    }

    pub fn stored(self) -> i64 {
        self.to_wire() as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stored string, the JSON string and the parse must agree for
    /// every state, or the store and the admin API would disagree.
    fn round_trips<T>()
    where
        T: Stored + std::fmt::Debug + PartialEq + Serialize + for<'de> Deserialize<'de>,
    {
        for &s in T::ALL {
            assert_eq!(T::parse(s.as_str()).unwrap(), s);
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.as_str()), "{s:?}");
            assert_eq!(serde_json::from_str::<T>(&json).unwrap(), s);
        }
        let err = T::parse("nonsense").unwrap_err();
        assert!(err.to_string().contains("nonsense"), "{err}");
    }

    #[test]
    fn stored_and_json_names_agree() {
        round_trips::<Role>();
        round_trips::<FriendState>();
        round_trips::<UserStatus>();
    }

    #[test]
    fn roles_rank_by_authority_and_convert_to_the_wire_and_back() {
        assert!(Role::Member < Role::Admin && Role::Admin < Role::Owner);
        assert!(!Role::Member.is_manager() && Role::Admin.is_manager());
        for &r in Role::ALL {
            assert_eq!(Role::from_wire(r.to_wire() as i32), Some(r));
        }
        assert_eq!(Role::from_wire(0), None);
        assert_eq!(Role::from_wire(99), None);
    }

    #[test]
    fn push_providers_convert_to_the_wire_and_the_store_and_back() {
        for p in [PushProvider::Apns, PushProvider::Fcm, PushProvider::Webhook] {
            assert_eq!(PushProvider::from_wire(p.to_wire() as i32), Some(p));
            assert_eq!(PushProvider::from_stored(p.stored()), Some(p));
        }
        assert_eq!(PushProvider::from_wire(0), None);
        assert_eq!(PushProvider::from_stored(i64::MAX), None);
    }
}
