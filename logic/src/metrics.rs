//! What a logic node counts, for `/metrics` (Prometheus text). The metrics
//! are made with the node and registered into a registry the caller passes
//! (no global registry), so one process can expose connect and logic
//! together and tests can read them.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CommandLabels {
    pub command: &'static str,
    pub code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CommandOnly {
    pub command: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    pub state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProviderLabels {
    pub provider: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PushFailureLabels {
    pub provider: &'static str,
    /// unregistered, rejected, gave_up, expired, signed_out, no_provider
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HookOutcomeLabels {
    /// allowed, rejected, replaced, failed_open, failed_closed
    pub outcome: &'static str,
}

/// Seconds from 100 µs to ~26 s, doubling.
fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 18))
}

/// The metrics of a logic node.
#[derive(Clone)]
pub struct LogicMetrics {
    /// Client commands by command and reply code.
    pub requests: Family<CommandLabels, Counter>,
    /// Time to handle a client command, by command.
    pub request_seconds: Family<CommandOnly, Histogram, fn() -> Histogram>,
    /// SEND accepted to stored in every list (group commit included).
    pub send_commit_seconds: Histogram,
    /// Commit to pushes handed to the bus.
    pub commit_push_seconds: Histogram,
    /// Pushes dropped because the fan-out queue was full.
    pub pushes_dropped: Counter,
    /// Database connections by state (idle, in_use), read at scrape time.
    pub db_connections: Family<PoolLabels, Gauge>,
    /// Push notifications a provider accepted.
    pub push_sent: Family<ProviderLabels, Counter>,
    /// Push notifications given up, by why.
    pub push_failed: Family<PushFailureLabels, Counter>,
    /// Push notifications a provider asked to be sent again later.
    pub push_retried: Family<ProviderLabels, Counter>,
    /// Planned to accepted by the provider, retries included.
    pub push_seconds: Family<ProviderLabels, Histogram, fn() -> Histogram>,
    /// Notifications in the outbox (all nodes'), read every few seconds.
    pub push_outbox_depth: Gauge,
    /// Messages the after-send webhook took.
    pub after_send_delivered: Counter,
    /// Messages dropped from its outbox, older than its age limit.
    pub after_send_dropped: Counter,
    /// Batches it failed and that wait to be tried again.
    pub after_send_retried: Counter,
    /// Stored to taken by the webhook, per message.
    pub after_send_seconds: Histogram,
    /// Messages waiting for the after-send webhook, read by its sender.
    pub after_send_outbox_depth: Gauge,
    /// Before-send hook calls, by what became of the send.
    pub before_send: Family<HookOutcomeLabels, Counter>,
    /// Time of one before-send hook call, answered or not.
    pub before_send_seconds: Histogram,
}

impl Default for LogicMetrics {
    fn default() -> LogicMetrics {
        LogicMetrics {
            requests: Family::default(),
            request_seconds: Family::new_with_constructor(latency),
            send_commit_seconds: latency(),
            commit_push_seconds: latency(),
            pushes_dropped: Counter::default(),
            db_connections: Family::default(),
            push_sent: Family::default(),
            push_failed: Family::default(),
            push_retried: Family::default(),
            push_seconds: Family::new_with_constructor(latency),
            push_outbox_depth: Gauge::default(),
            after_send_delivered: Counter::default(),
            after_send_dropped: Counter::default(),
            after_send_retried: Counter::default(),
            after_send_seconds: latency(),
            after_send_outbox_depth: Gauge::default(),
            before_send: Family::default(),
            before_send_seconds: latency(),
        }
    }
}

impl LogicMetrics {
    /// Adds these metrics to `r` under the `tern` prefix.
    pub fn register(&self, r: &mut Registry) {
        let r = r.sub_registry_with_prefix("tern");
        r.register(
            "requests",
            "Client commands handled, by command and reply code",
            self.requests.clone(),
        );
        r.register(
            "request_duration_seconds",
            "Time to handle a client command",
            self.request_seconds.clone(),
        );
        r.register(
            "send_commit_seconds",
            "SEND received to stored in every recipient's list",
            self.send_commit_seconds.clone(),
        );
        r.register(
            "commit_push_seconds",
            "Commit to pushes published on the bus",
            self.commit_push_seconds.clone(),
        );
        r.register(
            "pushes_dropped",
            "Committed batches whose pushes were dropped (fan-out queue full)",
            self.pushes_dropped.clone(),
        );
        r.register(
            "db_connections",
            "Database pool connections by state",
            self.db_connections.clone(),
        );
        r.register(
            "push_sent",
            "Push notifications accepted by their provider",
            self.push_sent.clone(),
        );
        r.register(
            "push_failed",
            "Push notifications given up, by provider and reason",
            self.push_failed.clone(),
        );
        r.register(
            "push_retried",
            "Push notifications their provider asked to be sent again later",
            self.push_retried.clone(),
        );
        r.register(
            "push_seconds",
            "Push notification planned to accepted by its provider",
            self.push_seconds.clone(),
        );
        r.register(
            "after_send_delivered",
            "Messages the after-send webhook accepted",
            self.after_send_delivered.clone(),
        );
        r.register(
            "after_send_dropped",
            "Messages dropped from the after-send outbox past its age limit",
            self.after_send_dropped.clone(),
        );
        r.register(
            "after_send_retried",
            "After-send batches that failed and wait to be tried again",
            self.after_send_retried.clone(),
        );
        r.register(
            "after_send_seconds",
            "Message stored to accepted by the after-send webhook",
            self.after_send_seconds.clone(),
        );
        r.register(
            "after_send_outbox_depth",
            "Messages waiting for the after-send webhook",
            self.after_send_outbox_depth.clone(),
        );
        r.register(
            "push_outbox_depth",
            "Push notifications waiting in the outbox",
            self.push_outbox_depth.clone(),
        );
        r.register(
            "before_send_calls",
            "Before-send hook calls, by outcome (allowed, rejected, replaced, failed_open, failed_closed)",
            self.before_send.clone(),
        );
        r.register(
            "before_send_seconds",
            "Time of one before-send hook call, answered or not",
            self.before_send_seconds.clone(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Prometheus refuses a whole scrape that names a metric twice.
    #[test]
    fn every_metric_is_registered_once() {
        let mut registry = Registry::default();
        LogicMetrics::default().register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        let mut seen = std::collections::HashSet::new();
        for line in text.lines().filter(|l| l.starts_with("# HELP ")) {
            let name = line.split_whitespace().nth(2).unwrap();
            assert!(seen.insert(name.to_owned()), "{name} registered twice");
        }
        assert!(seen.contains("tern_after_send_delivered"), "{text}");
    }
}
