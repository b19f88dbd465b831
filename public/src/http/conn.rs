//! What one HTTP connection needs for its timeouts: a [`Clock`] that knows
//! which phase the connection is in and since when, the socket wrapped to
//! tell it about bytes moved ([`Watched`]), and response bodies wrapped to
//! tell it when a response is over ([`Tracked`]).

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Which part of a request's life a connection is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// Reading a request's headers: bounded as a whole by the header timeout.
    Head,
    /// The request is answered: the handler runs, the body moves.
    InFlight,
    /// Kept alive between a response and the next request's first byte.
    Idle,
}

impl Phase {
    /// The bound a connection past its deadline in this phase went over,
    /// as logged and counted.
    pub(super) fn label(self) -> &'static str {
        match self {
            Phase::Head => "header_timeout",
            Phase::InFlight => "stalled",
            Phase::Idle => "idle_timeout",
        }
    }
}

/// The phase of one connection and since when; its deadline follows.
pub(super) struct Clock {
    state: Mutex<(Phase, Instant)>,
    /// Wakes [`Clock::expired`] at each change of phase: the new phase's
    /// deadline may come before the one it sleeps until.
    phase_changed: Notify,
    header_timeout: Duration,
    idle_timeout: Duration,
}

impl Clock {
    /// A fresh connection: its first request's headers are due now.
    pub(super) fn new(header_timeout: Duration, idle_timeout: Duration) -> Clock {
        Clock {
            state: Mutex::new((Phase::Head, Instant::now())),
            phase_changed: Notify::new(),
            header_timeout,
            idle_timeout,
        }
    }

    fn update(&self, f: impl FnOnce(&mut (Phase, Instant))) {
        // Nothing panics while holding the lock; a poisoned one still holds
        // a valid state.
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner));
    }

    fn enter(&self, phase: Phase) {
        self.update(|s| *s = (phase, Instant::now()));
        self.phase_changed.notify_one();
    }

    /// Bytes arrived from the client.
    fn read(&self) {
        let mut started = false;
        self.update(|s| match s.0 {
            Phase::Idle => {
                *s = (Phase::Head, Instant::now());
                started = true;
            }
            Phase::InFlight => s.1 = Instant::now(),
            Phase::Head => {}
        });
        if started {
            self.phase_changed.notify_one();
        }
    }

    /// Bytes went out to the client.
    fn wrote(&self) {
        self.update(|s| {
            if s.0 != Phase::Head {
                s.1 = Instant::now();
            }
        });
    }

    /// A request's headers have arrived and it is being answered; the
    /// connection is idle again when what this returns is dropped.
    pub(super) fn request_started(self: &Arc<Self>) -> ResponseDone {
        self.enter(Phase::InFlight);
        ResponseDone(self.clone())
    }

    fn deadline(&self) -> (Instant, Phase) {
        let (phase, since) = *self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let bound = match phase {
            Phase::Head => self.header_timeout,
            Phase::InFlight | Phase::Idle => self.idle_timeout,
        };
        (since + bound, phase)
    }

    /// Resolves once the connection is past its deadline, with the phase
    /// it was in.
    pub(super) async fn expired(&self) -> Phase {
        loop {
            let (deadline, phase) = self.deadline();
            if Instant::now() >= deadline {
                return phase;
            }
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {}
                () = self.phase_changed.notified() => {}
            }
        }
    }
}

/// Held by a response's body: dropped when hyper has sent or abandoned it.
pub(super) struct ResponseDone(Arc<Clock>);

impl Drop for ResponseDone {
    fn drop(&mut self) {
        self.0.enter(Phase::Idle);
    }
}

/// A response body that marks the connection idle once hyper drops it
/// (after its last frame, or when the connection ends).
pub(super) struct Tracked<B> {
    body: B,
    _done: ResponseDone,
}

impl<B> Tracked<B> {
    pub(super) fn new(body: B, done: ResponseDone) -> Tracked<B> {
        Tracked { body, _done: done }
    }
}

impl<B: Body + Unpin> Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The socket, telling the clock when bytes move.
pub(super) struct Watched {
    stream: TcpStream,
    clock: Arc<Clock>,
}

impl Watched {
    pub(super) fn new(stream: TcpStream, clock: Arc<Clock>) -> Watched {
        Watched { stream, clock }
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.clock.read();
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.stream).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.clock.wrote();
        }
        r
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.clock.wrote();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
