//! Calls up to logic: the requests a connection forwards, and the events
//! this node publishes (device offline, node lifecycle, room counts,
//! re-announced devices). Bus failures end here: a request becomes an
//! UNAVAILABLE reply, an event that cannot be published is logged.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use prometheus_client::metrics::histogram::Histogram;
use prost::Message as _;
use tracing::{error, warn};

use tern_public::bus::{Bus, Subjects};
use tern_public::proto::bus::{
    logic_event, ConnReply, ConnRequest, DeviceOffline, LogicEvent, NodeEvent, NodeState,
};
use tern_public::Code;

use crate::config::ConnectConfig;

/// This node's side of the bus to logic.
pub(crate) struct LogicLink {
    bus: Arc<dyn Bus>,
    subjects: Subjects,
    node_id: String,
    request_timeout: Duration,
    alive_interval: Duration,
    /// Round trip of each forwarded request.
    round_trip: Histogram,
}

impl LogicLink {
    pub(crate) fn new(cfg: &ConnectConfig, bus: Arc<dyn Bus>, round_trip: Histogram) -> LogicLink {
        LogicLink {
            bus,
            subjects: cfg.subjects.clone(),
            node_id: cfg.node_id.clone(),
            request_timeout: cfg.request_timeout,
            alive_interval: cfg.alive_interval,
            round_trip,
        }
    }

    /// Forwards one client request to logic; bus failures become UNAVAILABLE.
    pub(crate) async fn call(&self, req: ConnRequest) -> ConnReply {
        let payload = Bytes::from(req.encode_to_vec());
        let subject = self.subjects.logic_rpc();
        let started = Instant::now();
        let reply = self
            .bus
            .request(&subject, payload, self.request_timeout)
            .await;
        self.round_trip.observe(started.elapsed().as_secs_f64());
        match reply {
            Ok(bytes) => ConnReply::decode(bytes).unwrap_or_else(|e| {
                error!(error = %e, "undecodable reply from logic");
                ConnReply {
                    code: Code::Internal.as_i32(),
                    message: "internal error".into(),
                    ..Default::default()
                }
            }),
            Err(e) => {
                warn!(error = %e, "logic unavailable");
                ConnReply {
                    code: Code::Unavailable.as_i32(),
                    message: "service unavailable, retry".into(),
                    // As logic's own UNAVAILABLE answers say.
                    retry_after_ms: 1000,
                    ..Default::default()
                }
            }
        }
    }

    /// Tells logic that `device_id` is no longer served by `conn_id` here.
    pub(crate) async fn device_offline(&self, conn_id: u64, user_id: u64, device_id: u64) {
        let event = logic_event::Event::DeviceOffline(DeviceOffline {
            node_id: self.node_id.clone(),
            conn_id,
            user_id,
            device_id,
        });
        self.publish(event).await;
    }

    /// Announces this node's lifecycle state and how many connections it holds.
    pub(crate) async fn announce(&self, state: NodeState, connections: usize) {
        let event = logic_event::Event::Node(NodeEvent {
            node_id: self.node_id.clone(),
            state: state as i32,
            connections: connections.min(u32::MAX as usize) as u32,
            alive_interval_ms: self.alive_interval.as_millis().min(u32::MAX as u128) as u32,
        });
        self.publish(event).await;
    }

    /// Publishes one event to logic; a failure is logged here and dropped.
    pub(crate) async fn publish(&self, event: logic_event::Event) {
        let msg = LogicEvent { event: Some(event) };
        let subject = self.subjects.logic_events();
        if let Err(e) = self.bus.publish(&subject, msg.encode_to_vec().into()).await {
            warn!(error = %e, "could not publish event to logic");
        }
    }

    /// This node's id, as logic knows it.
    pub(crate) fn node_id(&self) -> &str {
        &self.node_id
    }
}
