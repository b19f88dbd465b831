//! What an HTTP port counts: open connections, and connections the bounds
//! closed or kept waiting, for `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// The `reason` label: which bound closed a connection.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// The metrics of one HTTP port; clones count into the same series.
#[derive(Clone, Debug, Default)]
pub struct HttpMetrics {
    open: Gauge,
    closed: Family<ReasonLabels, Counter>,
    limit_waits: Counter,
}

impl HttpMetrics {
    /// Adds these metrics to `r` under the `tern_http` prefix.
    pub fn register(&self, r: &mut Registry) {
        let r = r.sub_registry_with_prefix("tern_http");
        r.register("connections", "Open HTTP connections", self.open.clone());
        r.register(
            "connections_closed_by_bound",
            "HTTP connections closed by a bound: header_timeout, idle_timeout, stalled, shutdown_grace",
            self.closed.clone(),
        );
        r.register(
            "connection_limit_waits",
            "Times the HTTP port stopped accepting at its connection limit",
            self.limit_waits.clone(),
        );
    }

    pub(super) fn opened(&self) -> OpenGuard {
        self.open.inc();
        OpenGuard(self.open.clone())
    }

    pub(super) fn closed_by(&self, reason: &'static str) {
        self.closed.get_or_create(&ReasonLabels { reason }).inc();
    }

    pub(super) fn closed_by_n(&self, reason: &'static str, n: u64) {
        self.closed
            .get_or_create(&ReasonLabels { reason })
            .inc_by(n);
    }

    pub(super) fn limit_reached(&self) {
        self.limit_waits.inc();
    }

    #[cfg(test)]
    pub(super) fn closed_count(&self, reason: &'static str) -> u64 {
        self.closed.get_or_create(&ReasonLabels { reason }).get()
    }
}

/// One open connection in the gauge, for as long as it is held.
pub(super) struct OpenGuard(Gauge);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}
