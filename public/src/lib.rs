//! tern-public holds what every tern service and the client share: the
//! generated protobuf types of the client protocol and the internal bus, the
//! TLV frame codec, the frame type and reply code tables, the message bus
//! abstraction with its in-process implementation, and tracing setup.
//! It depends on no other tern crate.

pub mod addr;
pub mod bus;
pub mod code;
pub mod codec;
pub mod frame;
pub mod proto;
pub mod telemetry;
pub mod time;

pub use code::Code;
pub use codec::{Frame, FrameCodec, FrameError};
pub use frame::FrameType;
