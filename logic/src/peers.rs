//! Refuses logic-node combinations that cannot work. Presence in memory or
//! a SQLite file belongs to one process: a second logic node beside such a
//! node would see other presence and other data. Each logic node answers
//! on `tern.logic.mode` how it shares state; a starting node asks first.
//!
//! Two nodes starting in the same instant can both find nobody; the check
//! catches every start after the first node is up, which is how such
//! mistakes happen in practice (scaling a deployment up).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::warn;

use tern_public::bus::{Bus, BusError, Subjects};

/// How a logic node keeps presence and data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Redis presence and a shared database: any number of nodes.
    Shared,
    /// Only one node may run; the text says why (e.g. "in-memory presence").
    Exclusive(String),
}

impl Mode {
    fn encode(&self) -> Bytes {
        match self {
            Mode::Shared => Bytes::from_static(b"shared"),
            Mode::Exclusive(why) => Bytes::from(format!("exclusive:{why}")),
        }
    }
}

/// Why this node may not join the running logic nodes.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// A running node keeps state only it can use.
    #[error(
        "another logic node is running with {0}, which allows only one logic node; \
         run every logic node with --redis-url and a MySQL --database-url"
    )]
    OtherIsExclusive(String),
    /// This node keeps state only it can use, and others are running.
    #[error(
        "other logic nodes are running, and this one has {0}, which allows only \
         one logic node; give it --redis-url and a MySQL --database-url"
    )]
    ThisIsExclusive(String),
    /// The question could not be asked.
    #[error("asking for other logic nodes")]
    Ask(#[source] BusError),
    /// This node could not subscribe to answer the question itself.
    #[error("subscribing to {subject}")]
    Subscribe {
        subject: String,
        #[source]
        source: BusError,
    },
}

/// Asks running logic nodes how they share state, refuses a combination
/// that cannot work, then answers the same question for later nodes, on a
/// task of `tasks` that returns once `stop` is cancelled.
pub async fn join(
    bus: Arc<dyn Bus>,
    subjects: &Subjects,
    me: Mode,
    tasks: &TaskTracker,
    stop: CancellationToken,
) -> Result<(), PeerError> {
    let subject = subjects.logic_mode();
    match bus
        .request(&subject, me.encode(), Duration::from_secs(1))
        .await
    {
        Ok(answer) => {
            let answer = String::from_utf8_lossy(&answer);
            if let Some(why) = answer.strip_prefix("exclusive:") {
                return Err(PeerError::OtherIsExclusive(why.to_owned()));
            }
            if let Mode::Exclusive(why) = &me {
                return Err(PeerError::ThisIsExclusive(why.clone()));
            }
        }
        Err(BusError::NoResponders(_) | BusError::Timeout) => {}
        Err(e) => return Err(PeerError::Ask(e)),
    }
    let mut sub = match bus.subscribe(&subject, None).await {
        Ok(sub) => sub,
        Err(source) => return Err(PeerError::Subscribe { subject, source }),
    };
    let answer = me.encode();
    tasks.spawn(async move {
        loop {
            let m = tokio::select! {
                m = sub.next() => m,
                () = stop.cancelled() => return,
            };
            let Some(m) = m else { return };
            if let Some(to) = m.reply {
                if let Err(e) = bus.publish(&to, answer.clone()).await {
                    warn!(error = %e, "could not answer a logic mode query");
                }
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_public::bus::MemoryBus;

    #[tokio::test]
    async fn a_second_node_is_refused_when_either_is_exclusive() {
        let subjects = Subjects::default();
        let tasks = TaskTracker::new();
        let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
        let first = CancellationToken::new();
        join(bus.clone(), &subjects, Mode::Shared, &tasks, first.clone())
            .await
            .unwrap();
        let stop = CancellationToken::new();
        join(bus.clone(), &subjects, Mode::Shared, &tasks, stop.clone())
            .await
            .expect("shared nodes scale out");
        let err = join(
            bus.clone(),
            &subjects,
            Mode::Exclusive("SQLite".into()),
            &tasks,
            stop.clone(),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(err.contains("SQLite"), "{err}");
        first.cancel();
        stop.cancel();

        let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
        let stop = CancellationToken::new();
        join(
            bus.clone(),
            &subjects,
            Mode::Exclusive("in-memory presence".into()),
            &tasks,
            stop.clone(),
        )
        .await
        .unwrap();
        let err = join(bus, &subjects, Mode::Shared, &tasks, stop.clone())
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("in-memory presence"), "{err}");
        stop.cancel();
        tasks.close();
        tasks.wait().await;
    }
}
