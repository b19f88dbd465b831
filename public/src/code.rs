//! Reply codes (DESIGN.md "Reply codes"). Clients branch on the number;
//! the text of a reply is for humans.

/// A reply code carried in `Reply.code` and `ConnReply.code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum Code {
    Ok = 0,
    BadRequest = 1000,
    Unauthenticated = 1001,
    Forbidden = 1002,
    NotFound = 1003,
    Conflict = 1004,
    RateLimited = 1005,
    TooLarge = 1006,
    NotFriends = 1007,
    Blocked = 1008,
    Muted = 1009,
    /// The server's before-send moderation hook refused a SEND; the reply's
    /// payload is a `SendRejected` with the hook's code and reason.
    Rejected = 1010,
    Internal = 2000,
    /// Logic unreachable or timed out: safe to retry with the same client_msg_id.
    Unavailable = 2001,
}

impl Code {
    const ALL: [Code; 14] = [
        Code::Ok,
        Code::BadRequest,
        Code::Unauthenticated,
        Code::Forbidden,
        Code::NotFound,
        Code::Conflict,
        Code::RateLimited,
        Code::TooLarge,
        Code::NotFriends,
        Code::Blocked,
        Code::Muted,
        Code::Rejected,
        Code::Internal,
        Code::Unavailable,
    ];

    /// The wire value.
    pub fn as_i32(self) -> i32 {
        self as i32
    }

    /// Parses a wire value; unknown values are `None` (a newer server may add codes).
    pub fn from_i32(v: i32) -> Option<Code> {
        Self::ALL.into_iter().find(|c| c.as_i32() == v)
    }

    /// Stable upper-case name, used in logs and metrics labels.
    pub fn name(self) -> &'static str {
        match self {
            Code::Ok => "OK",
            Code::BadRequest => "BAD_REQUEST",
            Code::Unauthenticated => "UNAUTHENTICATED",
            Code::Forbidden => "FORBIDDEN",
            Code::NotFound => "NOT_FOUND",
            Code::Conflict => "CONFLICT",
            Code::RateLimited => "RATE_LIMITED",
            Code::TooLarge => "TOO_LARGE",
            Code::NotFriends => "NOT_FRIENDS",
            Code::Blocked => "BLOCKED",
            Code::Muted => "MUTED",
            Code::Rejected => "REJECTED",
            Code::Internal => "INTERNAL",
            Code::Unavailable => "UNAVAILABLE",
        }
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name(), self.as_i32())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknown_is_none() {
        for c in Code::ALL {
            assert_eq!(Code::from_i32(c.as_i32()), Some(c));
        }
        assert_eq!(Code::from_i32(1006), Some(Code::TooLarge));
        assert_eq!(Code::from_i32(2001), Some(Code::Unavailable));
        assert_eq!(Code::from_i32(1010), Some(Code::Rejected));
        assert_eq!(Code::from_i32(42), None);
    }
}
