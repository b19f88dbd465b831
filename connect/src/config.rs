//! Settings of a connect node.

use std::sync::Arc;
use std::time::Duration;

use tern_public::bus::Subjects;
use tern_public::codec::DEFAULT_MAX_FRAME_LEN;

use crate::Tls;

/// Default of [`ConnectConfig::write_queue_bytes`]: 1 MiB.
const DEFAULT_WRITE_QUEUE_BYTES: usize = 1024 * 1024;

/// Settings of a connect node; `Default` gives the documented defaults.
#[derive(Debug, Clone)]
pub struct ConnectConfig {
    /// Unique id of this node; deliveries for its devices arrive on `tern.node.<node_id>`.
    pub node_id: String,
    /// Open connections at once; further clients are answered RATE_LIMITED
    /// (one REPLY, request_id 0) and closed.
    pub max_connections: usize,
    /// Largest frame value accepted or sent.
    pub max_frame_len: usize,
    /// Time a new connection has to send its first frame (and to sign in
    /// between frames).
    pub handshake_timeout: Duration,
    /// Interval told to clients at sign-in; 3 silent intervals close the connection.
    pub heartbeat_interval: Duration,
    /// Frames queued for one connection before it counts as a slow consumer and is closed.
    pub write_queue_frames: usize,
    /// Bytes of output one connection may have pending. While its replies,
    /// queued pushes and the replies its requests in flight may bring reach
    /// this, its requests are not read; pushes queued past it close the
    /// connection as a slow consumer. One frame larger than this still goes
    /// out when nothing else is pending.
    pub write_queue_bytes: usize,
    /// A write that cannot progress for this long closes the connection.
    pub write_timeout: Duration,
    /// Requests of one connection in flight or queued before reading pauses.
    pub max_inflight: usize,
    /// How long to wait for logic before answering UNAVAILABLE.
    pub request_timeout: Duration,
    /// How long a drain may take before remaining connections are dropped.
    pub drain_grace: Duration,
    /// Rooms one connection may be in at once.
    pub max_rooms_per_conn: usize,
    /// ROOM_SENDs one connection may make per second (also the burst);
    /// more are answered RATE_LIMITED.
    pub room_sends_per_sec: u32,
    /// Frames one connection may send per second (also the burst); more
    /// are answered RATE_LIMITED. 0 turns the limit off.
    pub frames_per_sec: u32,
    /// Bytes of frame values one connection may send per second; the burst
    /// also holds one frame of `max_frame_len`. 0 turns the limit off.
    pub bytes_per_sec: u32,
    /// Refusals within 10 s after which a connection is closed as a flood.
    pub flood_close_after: u32,
    /// Open connections one client IP may hold on this node; more are
    /// answered RATE_LIMITED and closed. 0: no limit.
    pub max_connections_per_ip: u32,
    /// Interval of the node's liveness announcements.
    pub alive_interval: Duration,
    /// TLS on the client listener; `None` serves plain TCP.
    pub tls: Option<Arc<Tls>>,
    pub subjects: Subjects,
}

impl Default for ConnectConfig {
    fn default() -> Self {
        ConnectConfig {
            node_id: "connect-1".into(),
            max_connections: 100_000,
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            handshake_timeout: Duration::from_secs(10),
            heartbeat_interval: Duration::from_secs(30),
            write_queue_frames: 512,
            write_queue_bytes: DEFAULT_WRITE_QUEUE_BYTES,
            write_timeout: Duration::from_secs(15),
            max_inflight: 32,
            request_timeout: tern_public::bus::DEFAULT_REQUEST_TIMEOUT,
            drain_grace: Duration::from_secs(10),
            max_rooms_per_conn: 16,
            room_sends_per_sec: 10,
            frames_per_sec: 200,
            bytes_per_sec: 1024 * 1024,
            flood_close_after: 100,
            max_connections_per_ip: 1000,
            alive_interval: Duration::from_secs(5),
            tls: None,
            subjects: Subjects::default(),
        }
    }
}
