//! The TLV frame codec (DESIGN.md "Frame"):
//!
//! ```text
//!  0        2                6
//!  +--------+----------------+---------------------+
//!  | type   | length         | value               |
//!  | u16 BE | u32 BE         | `length` bytes      |
//!  +--------+----------------+---------------------+
//! ```
//!
//! A short read is never an error: the decoder waits for the rest. A length
//! above the configured maximum is [`FrameError::TooLarge`] in both directions.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

/// Bytes before the value: u16 type + u32 length.
pub const HEADER_LEN: usize = 6;

/// Default maximum value length, both directions: 256 KiB.
pub const DEFAULT_MAX_FRAME_LEN: usize = 256 * 1024;

/// One frame: its type number and its (protobuf) value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The frame type number, known ([`FrameType`]) or not.
    ///
    /// [`FrameType`]: crate::FrameType
    pub ty: u16,
    /// The value, usually one protobuf message.
    pub value: Bytes,
}

impl Frame {
    /// A frame of type `ty` carrying `value` as it is.
    pub fn new(ty: u16, value: impl Into<Bytes>) -> Frame {
        Frame {
            ty,
            value: value.into(),
        }
    }

    /// A frame whose value is `msg` encoded as protobuf.
    pub fn from_message(ty: u16, msg: &impl prost::Message) -> Frame {
        Frame::new(ty, msg.encode_to_vec())
    }

    /// The complete wire form (header + value): encode once, write to many connections.
    pub fn to_bytes(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(HEADER_LEN + self.value.len());
        buf.put_u16(self.ty);
        buf.put_u32(self.value.len() as u32);
        buf.put_slice(&self.value);
        buf.freeze()
    }
}

/// Why a stream of frames cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// A value longer than the codec's maximum: `len` against `max` bytes.
    #[error("frame of {len} bytes exceeds the maximum of {max}")]
    TooLarge { len: usize, max: usize },
    /// Reading or writing the stream failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// `tokio_util` codec for TLV frames with a maximum value length.
#[derive(Debug, Clone, Copy)]
pub struct FrameCodec {
    max_len: usize,
}

impl FrameCodec {
    /// A codec refusing values longer than `max_len` bytes, both ways.
    pub fn new(max_len: usize) -> FrameCodec {
        FrameCodec { max_len }
    }
}

impl Default for FrameCodec {
    fn default() -> Self {
        FrameCodec::new(DEFAULT_MAX_FRAME_LEN)
    }
}

impl Decoder for FrameCodec {
    type Item = Frame;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        if src.len() < HEADER_LEN {
            return Ok(None);
        }
        let ty = u16::from_be_bytes([src[0], src[1]]);
        let len = u32::from_be_bytes([src[2], src[3], src[4], src[5]]) as usize;
        if len > self.max_len {
            return Err(FrameError::TooLarge {
                len,
                max: self.max_len,
            });
        }
        if src.len() < HEADER_LEN + len {
            // Reserve only what this frame still needs: the buffer stays small
            // for the small frames that make up almost all traffic.
            src.reserve(HEADER_LEN + len - src.len());
            return Ok(None);
        }
        src.advance(HEADER_LEN);
        let value = src.split_to(len).freeze();
        Ok(Some(Frame { ty, value }))
    }
}

impl Encoder<Frame> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), FrameError> {
        if frame.value.len() > self.max_len {
            return Err(FrameError::TooLarge {
                len: frame.value.len(),
                max: self.max_len,
            });
        }
        dst.reserve(HEADER_LEN + frame.value.len());
        dst.put_u16(frame.ty);
        dst.put_u32(frame.value.len() as u32);
        dst.put_slice(&frame.value);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
