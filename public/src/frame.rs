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
            100 => Reply,
            101 => Push,
            102 => RoomPush,
            103 => Kicked,
            _ => return None,
        })
    }

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
            Reply => "reply",
            Push => "push",
            RoomPush => "room_push",
            Kicked => "kicked",
        }
    }
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
}
