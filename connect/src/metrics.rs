//! What a connect node counts, for `/metrics` (Prometheus text). Made with
//! the node and registered into a registry the caller passes, so one
//! process can expose connect and logic together.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use tern_public::FrameType;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FrameLabels {
    pub frame: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CloseLabels {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LimitLabels {
    pub limit: &'static str,
}

/// The metrics of a connect node.
#[derive(Clone)]
pub struct ConnectMetrics {
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
        }
    }
}

impl ConnectMetrics {
    /// Adds these metrics to `r` under the `tern` prefix.
    pub fn register(&self, r: &mut Registry) {
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
}
