//! Frame types (DESIGN.md "Types"). The numbers are the wire contract.

/// The `type` field of a TLV frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum FrameType {
    Register = 1,
    Login = 2,
    SignIn = 3,
    Heartbeat = 4,
    Sync = 5,
    Ack = 6,
    Send = 7,
    Recall = 8,
    FriendRequest = 20,
    FriendAccept = 21,
    FriendDecline = 22,
    FriendDelete = 23,
    FriendList = 24,
    FriendBlock = 25,
    FriendUnblock = 26,
    FriendSetRemark = 27,
    GroupCreate = 40,
    GroupInfo = 41,
    GroupUpdate = 42,
    GroupListMine = 43,
    GroupMembers = 44,
    GroupAddMembers = 45,
    GroupRemoveMembers = 46,
    GroupQuit = 47,
    GroupDismiss = 48,
    GroupTransferOwner = 49,
    GroupSetRole = 50,
    GroupMuteMember = 51,
    GroupMuteAll = 52,
    RoomJoin = 60,
    RoomLeave = 61,
    RoomSend = 62,
    UserGet = 70,
    UserUpdate = 71,
    UserSearch = 72,
    ConvList = 80,
    ConvGet = 81,
    ConvHistory = 82,
    MarkRead = 83,
    ConvSet = 84,
    GroupReadCounts = 85,
    GroupReaders = 86,
    DeleteForMe = 87,
    ClearConversation = 88,
    PasswordChange = 90,
    Logout = 91,
    DeviceList = 92,
    DeviceRevoke = 93,
    AccountDelete = 94,
    TokenRefresh = 95,
    PushTokenSet = 96,
    PushTokenRemove = 97,
    Reply = 100,
    Push = 101,
    RoomPush = 102,
    Kicked = 103,
}

impl FrameType {
    /// Parses a frame type number; unknown numbers are `None` (answered BAD_REQUEST).
    pub fn from_u16(v: u16) -> Option<FrameType> {
        use FrameType::*;
        Some(match v {
            1 => Register,
            2 => Login,
            3 => SignIn,
            4 => Heartbeat,
            5 => Sync,
            6 => Ack,
            7 => Send,
            8 => Recall,
            20 => FriendRequest,
            21 => FriendAccept,
            22 => FriendDecline,
            23 => FriendDelete,
            24 => FriendList,
            25 => FriendBlock,
            26 => FriendUnblock,
            27 => FriendSetRemark,
            40 => GroupCreate,
            41 => GroupInfo,
            42 => GroupUpdate,
            43 => GroupListMine,
            44 => GroupMembers,
            45 => GroupAddMembers,
            46 => GroupRemoveMembers,
            47 => GroupQuit,
            48 => GroupDismiss,
            49 => GroupTransferOwner,
            50 => GroupSetRole,
            51 => GroupMuteMember,
            52 => GroupMuteAll,
            60 => RoomJoin,
            61 => RoomLeave,
            62 => RoomSend,
            70 => UserGet,
            71 => UserUpdate,
            72 => UserSearch,
            80 => ConvList,
            81 => ConvGet,
            82 => ConvHistory,
            83 => MarkRead,
            84 => ConvSet,
            85 => GroupReadCounts,
            86 => GroupReaders,
            87 => DeleteForMe,
            88 => ClearConversation,
            90 => PasswordChange,
            91 => Logout,
            92 => DeviceList,
            93 => DeviceRevoke,
            94 => AccountDelete,
            95 => TokenRefresh,
            96 => PushTokenSet,
            97 => PushTokenRemove,
            100 => Reply,
            101 => Push,
            102 => RoomPush,
            103 => Kicked,
            _ => return None,
        })
    }

    /// The type number on the wire.
    pub fn as_u16(self) -> u16 {
        self as u16
    }

    /// Client -> server commands; everything else is server -> client.
    pub fn is_request(self) -> bool {
        (self as u16) < 100
    }

    /// The commands accepted before sign-in (besides HEARTBEAT).
    pub fn is_auth(self) -> bool {
        matches!(
            self,
            FrameType::Register | FrameType::Login | FrameType::SignIn
        )
    }

    /// Lower-case name for logs and metrics labels.
    pub fn name(self) -> &'static str {
        use FrameType::*;
        match self {
            Register => "register",
            Login => "login",
            SignIn => "sign_in",
            Heartbeat => "heartbeat",
            Sync => "sync",
            Ack => "ack",
            Send => "send",
            Recall => "recall",
            FriendRequest => "friend_request",
            FriendAccept => "friend_accept",
            FriendDecline => "friend_decline",
            FriendDelete => "friend_delete",
            FriendList => "friend_list",
            FriendBlock => "friend_block",
            FriendUnblock => "friend_unblock",
            FriendSetRemark => "friend_set_remark",
            GroupCreate => "group_create",
            GroupInfo => "group_info",
            GroupUpdate => "group_update",
            GroupListMine => "group_list_mine",
            GroupMembers => "group_members",
            GroupAddMembers => "group_add_members",
            GroupRemoveMembers => "group_remove_members",
            GroupQuit => "group_quit",
            GroupDismiss => "group_dismiss",
            GroupTransferOwner => "group_transfer_owner",
            GroupSetRole => "group_set_role",
            GroupMuteMember => "group_mute_member",
            GroupMuteAll => "group_mute_all",
            RoomJoin => "room_join",
            RoomLeave => "room_leave",
            RoomSend => "room_send",
            UserGet => "user_get",
            UserUpdate => "user_update",
            UserSearch => "user_search",
            ConvList => "conv_list",
            ConvGet => "conv_get",
            ConvHistory => "conv_history",
            MarkRead => "mark_read",
            ConvSet => "conv_set",
            GroupReadCounts => "group_read_counts",
            GroupReaders => "group_readers",
            DeleteForMe => "delete_for_me",
            ClearConversation => "clear_conversation",
            PasswordChange => "password_change",
            Logout => "logout",
            DeviceList => "device_list",
            DeviceRevoke => "device_revoke",
            AccountDelete => "account_delete",
            TokenRefresh => "token_refresh",
            PushTokenSet => "push_token_set",
            PushTokenRemove => "push_token_remove",
            Reply => "reply",
            Push => "push",
            RoomPush => "room_push",
            Kicked => "kicked",
        }
    }
}

/// Whether `id` is a valid room id: 1-64 characters of a-z, A-Z, 0-9, '_'
/// and '-' (it becomes a bus subject token and a Redis key part).
pub fn valid_room_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_type_round_trips() {
        for v in 0..=u16::MAX {
            if let Some(t) = FrameType::from_u16(v) {
                assert_eq!(t.as_u16(), v);
                assert_eq!(t.is_request(), v < 100);
            }
        }
        assert_eq!(FrameType::from_u16(9), None);
        assert_eq!(FrameType::from_u16(7), Some(FrameType::Send));
    }

    #[test]
    fn room_ids_are_safe_subject_tokens() {
        assert!(valid_room_id("lobby-1_A"));
        for bad in ["", "a.b", "a*", "a>", "a b", "é", &"x".repeat(65)] {
            assert!(!valid_room_id(bad), "{bad:?}");
        }
    }
}
