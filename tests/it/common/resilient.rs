//! A test client that rides out node failures the way an app must: on a
//! closed connection it signs in again on the next node, and it retries a
//! SEND that failed in transit with the same client_msg_id.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tern_client::proto::Message;
use tern_client::{Client, ClientError, Code};

use super::{Creds, PASSWORD, WAIT};

/// A signed-in user that reconnects by itself.
pub struct Resilient {
    /// Nodes in order of preference: the first one that answers is used.
    addrs: Vec<SocketAddr>,
    pub creds: Creds,
    client: Option<Client>,
    /// Sign-ins after the first.
    pub reconnects: usize,
    /// Sends that failed in transit and were sent again.
    pub retries: usize,
}

/// Requests of these tests wait this long before counting as lost.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

impl Resilient {
    /// Registers `username` on `addrs[0]`.
    pub async fn register(username: &str, addrs: Vec<SocketAddr>) -> Resilient {
        let (mut client, _events) = Client::connect(addrs[0]).await.expect("connect");
        client.set_request_timeout(REQUEST_TIMEOUT);
        let auth = client
            .register(username, PASSWORD, username)
            .await
            .expect("register");
        Resilient {
            addrs,
            creds: Creds {
                user_id: auth.user_id,
                device_id: auth.device_id,
                token: auth.token,
            },
            client: Some(client),
            reconnects: 0,
            retries: 0,
        }
    }

    pub fn user_id(&self) -> u64 {
        self.creds.user_id
    }

    /// Signs in again on the first node that takes it.
    async fn reconnect(&mut self) {
        let deadline = Instant::now() + WAIT;
        loop {
            for &addr in &self.addrs {
                let Ok((mut client, _events)) = Client::connect(addr).await else {
                    continue;
                };
                client.set_request_timeout(REQUEST_TIMEOUT);
                let c = &self.creds;
                if client
                    .sign_in(c.user_id, c.device_id, &c.token)
                    .await
                    .is_ok()
                {
                    self.client = Some(client);
                    self.reconnects += 1;
                    return;
                }
            }
            assert!(Instant::now() < deadline, "no node took the sign-in");
            // Bounded retry pace while the cluster recovers.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends until the server confirms; returns the sender's seq.
    pub async fn send(&mut self, to: u64, text: &str, client_msg_id: &str) -> u64 {
        let deadline = Instant::now() + WAIT * 2;
        loop {
            if self.client.is_none() {
                self.reconnect().await;
            }
            let client = self.client.as_ref().expect("connected");
            match client.send_text(to, text, client_msg_id).await {
                Ok(r) => return r.seq,
                Err(e) if Instant::now() < deadline && retryable(&e) => {
                    self.retries += 1;
                    if !matches!(e.code(), Some(Code::Unavailable)) {
                        self.client = None;
                    } else {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
                Err(e) => panic!("send {client_msg_id} failed for good: {e}"),
            }
        }
    }

    /// The user's whole list, by paged SYNC from seq 0.
    pub async fn list(&mut self) -> Vec<Message> {
        let deadline = Instant::now() + WAIT * 2;
        loop {
            if self.client.is_none() {
                self.reconnect().await;
            }
            match self.client.as_ref().expect("connected").sync_all(0).await {
                Ok(l) => return l,
                Err(e) if Instant::now() < deadline && retryable(&e) => self.client = None,
                Err(e) => panic!("sync failed for good: {e}"),
            }
        }
    }
}

fn retryable(e: &ClientError) -> bool {
    match e {
        ClientError::Closed | ClientError::Io(_) | ClientError::Timeout => true,
        ClientError::Server { .. } => matches!(e.code(), Some(Code::Unavailable)),
        _ => false,
    }
}

/// Checks one user's list: seqs 1..=n without a gap, and the chat messages
/// in it are exactly `expected` (sender, client_msg_id), each once.
pub fn check_list(owner: u64, list: &[Message], expected: &[(u64, String)]) {
    for (i, m) in list.iter().enumerate() {
        assert_eq!(m.seq, i as u64 + 1, "user {owner}: seqs contiguous from 1");
    }
    let mut seen: HashMap<(u64, &str), usize> = HashMap::new();
    for m in list.iter().filter(|m| m.content_type < 1000) {
        *seen
            .entry((m.sender_id, m.client_msg_id.as_str()))
            .or_default() += 1;
    }
    if let Some((k, n)) = seen.iter().find(|(_, &n)| n > 1) {
        panic!("user {owner}: message {k:?} is in the list {n} times");
    }
    let missing: Vec<_> = expected
        .iter()
        .filter(|(s, id)| !seen.contains_key(&(*s, id.as_str())))
        .collect();
    assert!(missing.is_empty(), "user {owner}: lost {missing:?}");
    assert_eq!(
        seen.len(),
        expected.len(),
        "user {owner}: unexpected messages"
    );
}
