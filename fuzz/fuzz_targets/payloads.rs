//! Every protobuf message a tern process decodes from outside (client
//! payloads, the client envelopes, the SDK's pushes and system events, bus
//! messages): decoding arbitrary bytes never panics, and whatever decodes
//! re-encodes to a message that decodes to the same value.

#![no_main]

use libfuzzer_sys::fuzz_target;

use tern_public::proto::bus;
use tern_public::proto::client::*;

fn round_trip<M: prost::Message + Default + PartialEq + std::fmt::Debug>(data: &[u8]) {
    if let Ok(m) = M::decode(data) {
        let again = M::decode(m.encode_to_vec().as_slice()).expect("re-encoded bytes decode");
        assert_eq!(m, again);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, data)) = data.split_first() else {
        return;
    };
    match which % 66 {
        0 => round_trip::<Request>(data),
        1 => round_trip::<Reply>(data),
        2 => round_trip::<RegisterRequest>(data),
        3 => round_trip::<LoginRequest>(data),
        4 => round_trip::<SignInRequest>(data),
        5 => round_trip::<SyncRequest>(data),
        6 => round_trip::<AckRequest>(data),
        7 => round_trip::<SendRequest>(data),
        8 => round_trip::<RecallRequest>(data),
        9 => round_trip::<FriendRequest>(data),
        10 => round_trip::<FriendTarget>(data),
        11 => round_trip::<FriendListRequest>(data),
        12 => round_trip::<FriendRemark>(data),
        13 => round_trip::<GroupCreateRequest>(data),
        14 => round_trip::<GroupTarget>(data),
        15 => round_trip::<GroupUpdateRequest>(data),
        16 => round_trip::<GroupListRequest>(data),
        17 => round_trip::<GroupMembersRequest>(data),
        18 => round_trip::<GroupMembersChange>(data),
        19 => round_trip::<GroupTransferRequest>(data),
        20 => round_trip::<GroupSetRoleRequest>(data),
        21 => round_trip::<GroupMuteRequest>(data),
        22 => round_trip::<GroupMuteAllRequest>(data),
        23 => round_trip::<RoomTarget>(data),
        24 => round_trip::<RoomSendRequest>(data),
        25 => round_trip::<UserGetRequest>(data),
        26 => round_trip::<UserUpdateRequest>(data),
        27 => round_trip::<UserSearchRequest>(data),
        28 => round_trip::<Empty>(data),
        // What the SDK decodes from the server.
        29 => round_trip::<tern_public::proto::client::Message>(data),
        30 => round_trip::<RoomMessage>(data),
        31 => round_trip::<Kicked>(data),
        32 => round_trip::<AuthReply>(data),
        33 => round_trip::<SyncReply>(data),
        34 => round_trip::<FriendEvent>(data),
        35 => round_trip::<GroupEvent>(data),
        36 => round_trip::<RecallEvent>(data),
        // The bus, between nodes.
        37 => round_trip::<bus::ConnRequest>(data),
        38 => round_trip::<bus::ConnReply>(data),
        39 => round_trip::<bus::LogicEvent>(data),
        40 => round_trip::<bus::RoomCounts>(data),
        41 => round_trip::<bus::DevicesOnline>(data),
        42 => round_trip::<bus::DeviceOffline>(data),
        43 => round_trip::<bus::NodeEvent>(data),
        44 => round_trip::<bus::NodeMessage>(data),
        45 => round_trip::<bus::Deliver>(data),
        46 => round_trip::<bus::RoomDeliver>(data),
        47 => round_trip::<bus::Broadcast>(data),
        // Conversations: requests, and the replies the SDK decodes.
        48 => round_trip::<ConvListRequest>(data),
        49 => round_trip::<ConvTarget>(data),
        50 => round_trip::<ConvHistoryRequest>(data),
        51 => round_trip::<ConvList>(data),
        52 => round_trip::<ConvHistory>(data),
        53 => round_trip::<MarkReadRequest>(data),
        54 => round_trip::<ConvReadEvent>(data),
        55 => round_trip::<ConvPeerReadEvent>(data),
        56 => round_trip::<ConvSetRequest>(data),
        57 => round_trip::<ConvSettingsEvent>(data),
        58 => round_trip::<GroupReadCountsRequest>(data),
        59 => round_trip::<GroupReadersRequest>(data),
        60 => round_trip::<GroupReadCounts>(data),
        61 => round_trip::<GroupReaders>(data),
        62 => round_trip::<DeleteForMeRequest>(data),
        63 => round_trip::<ClearConversationRequest>(data),
        64 => round_trip::<MessagesDeletedEvent>(data),
        _ => round_trip::<ConvClearedEvent>(data),
    }
});
