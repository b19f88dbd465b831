//! What a connect node counts, for `/metrics` (Prometheus text). Made with
//! the node and registered into a registry the caller passes, so one
//! process can expose connect and logic together; [`serve`] is the small
//! HTTP endpoint of a connect node that runs alone (cluster mode).

use std::future::Future;
use std::sync::Arc;

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tracing::error;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use tern_public::http::HttpConfig;
use tern_public::FrameType;

use crate::close::Close;

/// The `frame` label: a frame type's name.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct FrameLabels {
    frame: &'static str,
}

/// The `reason` label: see [`Close::label`].
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct CloseLabels {
    reason: &'static str,
}

/// The `limit` label: which limit a client went over.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct LimitLabels {
    limit: &'static str,
}

/// The metrics of a connect node.
#[derive(Clone)]
pub(crate) struct ConnectMetrics {
    /// Open client connections.
    pub connections: Gauge,
    pub accepted: Counter,
    /// Closed connections by reason.
    pub closed: Family<CloseLabels, Counter>,
    /// Frames read from clients, by type.
    pub frames_in: Family<FrameLabels, Counter>,
    /// Frames written to clients, by type.
    pub frames_out: Family<FrameLabels, Counter>,
    /// Round trip of a command forwarded to logic over the bus.
    pub bus_request_seconds: Histogram,
    /// Frames answered RATE_LIMITED, by the limit they went over.
    pub rate_limited: Family<LimitLabels, Counter>,
    /// Connections whose requests are not read now because their output
    /// is over `write_queue_bytes`.
    pub output_paused: Gauge,
    /// Times a connection stopped reading for its output.
    pub output_pauses: Counter,
}

impl Default for ConnectMetrics {
    fn default() -> ConnectMetrics {
        ConnectMetrics {
            connections: Gauge::default(),
            accepted: Counter::default(),
            closed: Family::default(),
            frames_in: Family::default(),
            frames_out: Family::default(),
            // 100 µs to ~26 s, doubling.
            bus_request_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 18)),
            rate_limited: Family::default(),
            output_paused: Gauge::default(),
            output_pauses: Counter::default(),
        }
    }
}

impl ConnectMetrics {
    /// Adds these metrics to `r` under the `tern` prefix.
    pub(crate) fn register(&self, r: &mut Registry) {
        let r = r.sub_registry_with_prefix("tern");
        r.register(
            "connections",
            "Open client connections",
            self.connections.clone(),
        );
        r.register(
            "connections_accepted",
            "Client connections accepted",
            self.accepted.clone(),
        );
        r.register(
            "connections_closed",
            "Client connections closed, by reason",
            self.closed.clone(),
        );
        r.register(
            "frames_received",
            "Frames read from clients, by type",
            self.frames_in.clone(),
        );
        r.register(
            "frames_sent",
            "Frames written to clients, by type",
            self.frames_out.clone(),
        );
        r.register(
            "bus_request_duration_seconds",
            "Round trip of a client command to logic over the bus",
            self.bus_request_seconds.clone(),
        );
        r.register(
            "rate_limited",
            "Client frames answered RATE_LIMITED, by the limit they went over",
            self.rate_limited.clone(),
        );
        r.register(
            "connections_output_paused",
            "Client connections not read now because their pending output is over --write-queue-bytes",
            self.output_paused.clone(),
        );
        r.register(
            "output_pauses",
            "Times a client connection stopped reading because its pending output reached --write-queue-bytes",
            self.output_pauses.clone(),
        );
    }

    /// Counts one closed connection under its reason's label.
    pub(crate) fn closed(&self, close: Close) {
        let labels = CloseLabels {
            reason: close.label(),
        };
        self.closed.get_or_create(&labels).inc();
    }

    pub(crate) fn limited(&self, limit: &'static str) {
        self.rate_limited
            .get_or_create(&LimitLabels { limit })
            .inc();
    }

    pub(crate) fn frame_in(&self, ty: u16) {
        self.frames_in.get_or_create(&label(ty)).inc();
    }

    /// Counts the frames of an encoded buffer (type in the first 2 bytes of
    /// each 6-byte header).
    pub(crate) fn frames_out_encoded(&self, mut buf: &[u8]) {
        while buf.len() >= 6 {
            let ty = u16::from_be_bytes([buf[0], buf[1]]);
            let len = u32::from_be_bytes([buf[2], buf[3], buf[4], buf[5]]) as usize;
            self.frames_out.get_or_create(&label(ty)).inc();
            buf = buf.get(6 + len..).unwrap_or_default();
        }
    }
}

fn label(ty: u16) -> FrameLabels {
    FrameLabels {
        frame: FrameType::from_u16(ty).map_or("unknown", FrameType::name),
    }
}

// === the endpoint ===

/// Content type of the OpenMetrics text exposition.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves `/metrics` (everything in `registry`) and `/healthz` on
/// `listener` within the bounds of `http` until `shutdown` resolves, then
/// gives requests in flight `http.shutdown_grace`; any other path is a
/// JSON 404.
pub async fn serve(
    listener: TcpListener,
    registry: Registry,
    http: HttpConfig,
    shutdown: impl Future<Output = ()>,
) {
    let registry = Arc::new(registry);
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/metrics",
            get(move || {
                let registry = registry.clone();
                async move { encode(&registry) }
            }),
        )
        .fallback(not_found);
    tern_public::http::serve(listener, app, http, shutdown).await
}

fn encode(registry: &Registry) -> axum::response::Response {
    let mut text = String::new();
    match prometheus_client::encoding::text::encode(&mut text, registry) {
        Ok(()) => ([(header::CONTENT_TYPE, OPENMETRICS)], text).into_response(),
        Err(e) => {
            error!(error = %e, "encoding metrics");
            json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error",
            )
        }
    }
}

async fn not_found() -> axum::response::Response {
    json_error(StatusCode::NOT_FOUND, "not_found", "no such route")
}

/// The error body of tern's HTTP APIs, `{"error":{"code","message"}}`;
/// both strings are constants without characters JSON would escape.
fn json_error(status: StatusCode, code: &str, message: &str) -> axum::response::Response {
    let body = format!(r#"{{"error":{{"code":"{code}","message":"{message}"}}}}"#);
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_public::Frame;

    #[test]
    fn encoded_frames_are_counted_by_type() {
        let m = ConnectMetrics::default();
        let mut buf = Frame::new(FrameType::Push.as_u16(), vec![1u8; 10])
            .to_bytes()
            .to_vec();
        buf.extend_from_slice(&Frame::new(FrameType::Kicked.as_u16(), Vec::new()).to_bytes());
        buf.extend_from_slice(&Frame::new(FrameType::Push.as_u16(), vec![2u8; 3]).to_bytes());
        m.frames_out_encoded(&buf);
        let push = m
            .frames_out
            .get_or_create(&label(FrameType::Push.as_u16()))
            .get();
        let kicked = m
            .frames_out
            .get_or_create(&label(FrameType::Kicked.as_u16()))
            .get();
        assert_eq!((push, kicked), (2, 1));
    }

    /// The metrics port has the bounds of every HTTP port
    /// (`tern_public::http` tests them all): a request's headers must
    /// arrive within the header timeout.
    #[tokio::test]
    async fn the_metrics_port_closes_a_half_sent_request_after_the_header_timeout() {
        use std::time::Duration;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let http = HttpConfig {
            header_timeout: Duration::from_millis(300),
            ..HttpConfig::default()
        };
        let stop = tokio_util::sync::CancellationToken::new();
        let server = tokio::spawn(serve(
            listener,
            Registry::default(),
            http,
            stop.clone().cancelled_owned(),
        ));
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nhost: t\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 1024];
        let n = s.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &buf[..n]);

        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nhost: t\r\n")
            .await
            .unwrap();
        let read = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await;
        assert!(
            matches!(read, Ok(Ok(0) | Err(_))),
            "a half-sent request is still open: {read:?}"
        );
        stop.cancel();
        server.await.unwrap();
    }
}
