//! What a connection writes: replies appended to one buffer, flushed with
//! whatever else is queued in as few syscalls as possible.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use prost::Message as _;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tracing::{debug, warn};

use tern_public::codec::HEADER_LEN;
use tern_public::proto::client::Reply;
use tern_public::{Code, FrameType};

use super::{Connection, MAX_FRAMES_PER_WRITE, WRITE_CHUNK};
use crate::close::Close;

impl Connection {
    /// Appends a REPLY frame to the output buffer.
    pub(super) fn reply(&mut self, request_id: u64, code: Code, message: &str, payload: Bytes) {
        self.write_reply(Reply {
            request_id,
            code: code.as_i32(),
            message: message.to_owned(),
            payload,
            retry_after_ms: 0,
        });
    }

    /// Appends a RATE_LIMITED reply that says when to try again.
    pub(super) fn refuse(&mut self, request_id: u64, message: &str, retry_after: Duration) {
        self.write_reply(Reply {
            request_id,
            code: Code::RateLimited.as_i32(),
            message: message.to_owned(),
            payload: Bytes::new(),
            retry_after_ms: retry_after.as_millis().clamp(1, u128::from(u32::MAX)) as u32,
        });
    }

    /// Encodes a REPLY frame straight into the output buffer: a page is
    /// copied once, not through a frame and its wire form first.
    pub(super) fn write_reply(&mut self, reply: Reply) {
        let len = reply.encoded_len();
        let wire_len = u32::try_from(len)
            .ok()
            .filter(|_| len <= self.node.cfg.max_frame_len);
        let Some(wire_len) = wire_len else {
            // Logic keeps replies under the limit; if one is not, the client
            // still gets exactly one answer.
            warn!(len, "reply over the frame limit");
            let id = reply.request_id;
            return self.reply(id, Code::Internal, "reply too large", Bytes::new());
        };
        self.out.reserve(HEADER_LEN + len);
        self.out.put_u16(FrameType::Reply.as_u16());
        self.out.put_u32(wire_len);
        reply
            .encode(&mut self.out)
            .expect("a BytesMut grows to hold any message");
    }

    /// Writes everything pending (the output buffer and whatever is queued)
    /// in as few syscalls as possible.
    pub(super) async fn flush<W: AsyncWrite + Unpin>(&mut self, wr: &mut W) -> Result<(), Close> {
        if self.out.is_empty() {
            return Ok(());
        }
        let mut n = 0;
        while n < MAX_FRAMES_PER_WRITE && self.out.len() < WRITE_CHUNK {
            match self.handle.take() {
                Some(frame) => self.take_queued(&frame),
                None => break,
            }
            n += 1;
        }
        self.node.metrics.frames_out_encoded(&self.out);
        let write = async {
            wr.write_all(&self.out).await?;
            wr.flush().await
        };
        let write = tokio::time::timeout(self.node.cfg.write_timeout, write);
        tokio::pin!(write);
        let mut kicked = false;
        let result = loop {
            tokio::select! {
                r = &mut write => break r,
                // A slow consumer is cut off at once, even mid-write; a kick lets
                // the write finish so the client never sees a torn frame.
                close = self.handle.signal().wait(), if !kicked => match close {
                    Close::SlowConsumer => return Err(Close::SlowConsumer),
                    _ => kicked = true,
                },
            }
        };
        if kicked {
            self.handle.signal().rearm();
        }
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                debug!(error = %e, "write failed");
                return Err(Close::WriteError);
            }
            Err(_) => return Err(Close::WriteTimeout),
        }
        // Written: the buffer goes until there is something to write
        // again, so an idle connection holds none.
        self.out = BytesMut::new();
        Ok(())
    }
}
