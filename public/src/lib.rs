//! tern-public holds what every tern service and the client share: the
//! generated protobuf types of the client protocol and the internal bus, the
//! TLV frame codec, the frame type and reply code tables, and the message bus
//! abstraction with its in-process implementation. Only servers need the
//! NATS bus (feature `nats`), the log set-up (feature `telemetry`) and the
//! serving loop of the HTTP ports (feature `http`), so the client SDK
//! builds without any of them. It depends on no other tern crate.

pub mod addr;
pub mod bus;
pub mod code;
pub mod codec;
pub mod frame;
#[cfg(feature = "http")]
pub mod http;
pub mod proto;
#[cfg(feature = "telemetry")]
pub mod telemetry;
pub mod time;

pub use code::Code;
pub use codec::{Frame, FrameCodec, FrameError};
pub use frame::FrameType;
