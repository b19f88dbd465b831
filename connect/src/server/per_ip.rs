//! Connections per client address: each accepted socket takes a slot of its
//! IP, given back when the connection ends. A client over the limit is
//! answered RATE_LIMITED (one REPLY, request_id 0) and closed.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::info;

/// How often one refused address is logged at most (all addresses share it).
const LOG_EVERY: Duration = Duration::from_secs(10);

#[derive(Default)]
pub(crate) struct PerIp {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    open: HashMap<IpAddr, u32>,
    logged_at: Option<Instant>,
}

/// One connection's hold on its address's count.
pub(crate) struct Slot {
    table: Arc<PerIp>,
    ip: IpAddr,
}

impl PerIp {
    /// A slot for `ip`, or `None` when it already has `limit` connections
    /// (0: no limit).
    pub(crate) fn take(self: &Arc<Self>, ip: IpAddr, limit: u32) -> Option<Slot> {
        let mut inner = self.inner.lock().expect("per-ip lock poisoned");
        let open = inner.open.entry(ip).or_insert(0);
        if limit > 0 && *open >= limit {
            let now = Instant::now();
            if inner
                .logged_at
                .is_none_or(|t| now.duration_since(t) > LOG_EVERY)
            {
                inner.logged_at = Some(now);
                info!(%ip, limit, "too many connections from one address; refusing");
            }
            return None;
        }
        *open += 1;
        Some(Slot {
            table: self.clone(),
            ip,
        })
    }

    #[cfg(test)]
    fn open(&self, ip: IpAddr) -> u32 {
        let inner = self.inner.lock().expect("per-ip lock poisoned");
        inner.open.get(&ip).copied().unwrap_or(0)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut inner = self.table.inner.lock().expect("per-ip lock poisoned");
        if let Some(n) = inner.open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                inner.open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_counted_per_address_and_given_back() {
        let table = Arc::new(PerIp::default());
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let s1 = table.take(a, 2).expect("first");
        let _s2 = table.take(a, 2).expect("second");
        assert!(table.take(a, 2).is_none(), "third from the same address");
        let _other = table.take(b, 2).expect("another address is not affected");
        drop(s1);
        assert_eq!(table.open(a), 1);
        assert!(table.take(a, 2).is_some(), "a freed slot is taken again");
        assert!(table.take(a, 0).is_some(), "0 is no limit");
    }
}
