//! Reading a connection's frames without holding a buffer while it idles.
//!
//! An idle connection has nothing buffered, so it holds no read buffer:
//! a read with nothing buffered lands in a buffer on the stack (only for
//! the length of the call), and only what it brought is copied to the
//! heap, where the frames are cut from. A frame longer than what arrived
//! gets a buffer of its length, read into directly. Once every frame is
//! taken, the buffer goes again.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::BytesMut;
use tokio::io::{AsyncRead, ReadBuf};
use tokio_util::codec::Decoder;
use tokio_util::io::poll_read_buf;

use tern_public::{Frame, FrameCodec, FrameError};

/// One read with nothing buffered takes at most this much.
const STACK_READ: usize = 4096;

/// The frames of one byte stream.
pub(super) struct FrameReader<R> {
    rd: R,
    codec: FrameCodec,
    /// What arrived and is not a whole frame yet; no allocation when empty.
    buf: BytesMut,
    eof: bool,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// Reads frames of at most `max_frame_len` bytes from `rd`.
    pub(super) fn new(rd: R, max_frame_len: usize) -> Self {
        FrameReader {
            rd,
            codec: FrameCodec::new(max_frame_len),
            buf: BytesMut::new(),
            eof: false,
        }
    }

    /// The next frame; `None` once the peer closed at a frame boundary.
    /// Cancel-safe: what was read stays buffered for the next call.
    pub(super) async fn next(&mut self) -> Option<Result<Frame, FrameError>> {
        poll_fn(|cx| self.poll_next(cx)).await
    }

    /// The stream, e.g. to drain it before closing.
    pub(super) fn get_mut(&mut self) -> &mut R {
        &mut self.rd
    }

    /// Bytes of heap the reader holds now.
    #[cfg(test)]
    pub(super) fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame, FrameError>>> {
        loop {
            if let Some(frame) = self.codec.decode(&mut self.buf)? {
                if self.buf.is_empty() {
                    // The frames cut from the buffer keep its memory alive
                    // only as long as they live.
                    self.buf = BytesMut::new();
                }
                return Poll::Ready(Some(Ok(frame)));
            }
            if self.eof {
                return Poll::Ready(if self.buf.is_empty() {
                    None
                } else {
                    Some(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the stream ended inside a frame",
                    )
                    .into()))
                });
            }
            let n = if self.buf.is_empty() && self.buf.capacity() == 0 {
                let mut stack = [0u8; STACK_READ];
                let mut rb = ReadBuf::new(&mut stack);
                ready!(Pin::new(&mut self.rd).poll_read(cx, &mut rb))?;
                self.buf.extend_from_slice(rb.filled());
                rb.filled().len()
            } else {
                // The decoder reserved what the frame in progress still needs.
                self.buf.reserve(1);
                ready!(poll_read_buf(Pin::new(&mut self.rd), cx, &mut self.buf))?
            };
            if n == 0 {
                self.eof = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use super::*;

    fn wire(ty: u16, value: &[u8]) -> Vec<u8> {
        Frame::new(ty, value.to_vec()).to_bytes().to_vec()
    }

    #[tokio::test]
    async fn an_idle_reader_holds_no_buffer_and_split_frames_still_arrive() {
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let mut r = FrameReader::new(server, 1 << 20);
        // Two frames in one write, then one frame in three pieces.
        let mut two = wire(4, b"a");
        two.extend(wire(5, b"bc"));
        client.write_all(&two).await.unwrap();
        assert_eq!(r.next().await.unwrap().unwrap(), Frame::new(4, &b"a"[..]));
        assert_eq!(r.next().await.unwrap().unwrap(), Frame::new(5, &b"bc"[..]));
        assert_eq!(r.capacity(), 0, "nothing buffered, nothing held");
        let big = wire(7, &[9u8; 10_000]);
        for part in [&big[..3], &big[3..5000], &big[5000..]] {
            client.write_all(part).await.unwrap();
            client.flush().await.unwrap();
            tokio::task::yield_now().await;
        }
        let f = r.next().await.unwrap().unwrap();
        assert_eq!((f.ty, f.value.len()), (7, 10_000));
        assert_eq!(r.capacity(), 0);
        drop(client);
        assert!(r.next().await.is_none());
    }

    #[tokio::test]
    async fn a_frame_over_the_limit_and_a_torn_frame_are_errors() {
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let mut r = FrameReader::new(server, 10);
        client.write_all(&wire(4, &[0u8; 11])).await.unwrap();
        assert!(matches!(
            r.next().await,
            Some(Err(FrameError::TooLarge { len: 11, max: 10 }))
        ));
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let mut r = FrameReader::new(server, 10);
        client.write_all(&wire(4, b"abc")[..5]).await.unwrap();
        drop(client);
        assert!(matches!(r.next().await, Some(Err(FrameError::Io(_)))));
    }
}
