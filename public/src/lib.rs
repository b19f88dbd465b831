//! tern-public holds what every tern service and the client share: the
//! generated protobuf types of the client protocol and the internal bus, the
//! TLV frame codec, the frame type and reply code tables, and the message bus
//! abstraction with its in-process implementation. Only servers need the
//! NATS bus (feature `nats`) and the log set-up (feature `telemetry`), so
//! the client SDK builds without either. It depends on no other tern crate.

pub mod addr;
pub mod bus;
pub mod code;
pub mod codec;
pub mod frame;
pub mod proto;
#[cfg(feature = "telemetry")]
pub mod telemetry;
pub mod time;

pub use code::Code;
pub use codec::{Frame, FrameCodec, FrameError};
pub use frame::FrameType;
