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
use tokio::task::JoinHandle;
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

/// Asks running logic nodes how they share state, refuses a combination
/// that cannot work, then answers the same question for later nodes.
pub async fn join(
    bus: Arc<dyn Bus>,
    subjects: &Subjects,
    me: Mode,
) -> Result<JoinHandle<()>, String> {
    let subject = subjects.logic_mode();
    match bus
        .request(&subject, me.encode(), Duration::from_secs(1))
        .await
    {
        Ok(answer) => {
            let answer = String::from_utf8_lossy(&answer);
            if let Some(why) = answer.strip_prefix("exclusive:") {
                return Err(format!(
                    "another logic node is running with {why}, which allows only one logic node; \
                     run every logic node with --redis-url and a MySQL --database-url"
                ));
            }
            if let Mode::Exclusive(why) = &me {
                return Err(format!(
                    "other logic nodes are running, and this one has {why}, which allows only \
                     one logic node; give it --redis-url and a MySQL --database-url"
                ));
            }
        }
        Err(BusError::NoResponders(_) | BusError::Timeout) => {}
        Err(e) => return Err(format!("asking for other logic nodes: {e}")),
    }
    let mut sub = bus
        .subscribe(&subject, None)
        .await
        .map_err(|e| format!("subscribing to {subject}: {e}"))?;
    let answer = me.encode();
    Ok(tokio::spawn(async move {
        while let Some(m) = sub.next().await {
            if let Some(to) = m.reply {
                if let Err(e) = bus.publish(&to, answer.clone()).await {
                    warn!(error = %e, "could not answer a logic mode query");
                }
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_public::bus::MemoryBus;

    #[tokio::test]
    async fn a_second_node_is_refused_when_either_is_exclusive() {
        let subjects = Subjects::default();
        let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
        let first = join(bus.clone(), &subjects, Mode::Shared).await.unwrap();
        join(bus.clone(), &subjects, Mode::Shared)
            .await
            .expect("shared nodes scale out");
        let err = join(bus.clone(), &subjects, Mode::Exclusive("SQLite".into()))
            .await
            .unwrap_err();
        assert!(err.contains("SQLite"), "{err}");
        first.abort();

        let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
        let _lone = join(
            bus.clone(),
            &subjects,
            Mode::Exclusive("in-memory presence".into()),
        )
        .await
        .unwrap();
        let err = join(bus, &subjects, Mode::Shared).await.unwrap_err();
        assert!(err.contains("in-memory presence"), "{err}");
    }
}
