//! Friendships for `tern bench direct`, so it runs against a server with the
//! default friends-only policy: each user befriends its neighbours on a
//! ring, which gives every user about the same number of friends at a cost
//! that grows with users, not users squared.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use futures::{stream, StreamExt, TryStreamExt};

use crate::bench::Creds;

/// Befriends user `i` with users `i±1 .. i±half` (mod n): one FRIEND_REQUEST
/// and one FRIEND_ACCEPT per pair. Returns each user's friends, by index.
pub async fn ring(users: &[(Creds, SocketAddr)], half: usize) -> anyhow::Result<Vec<Vec<u64>>> {
    let n = users.len();
    let pairs = ring_pairs(n, half);
    let mut asks = vec![Vec::new(); n];
    let mut accepts = vec![Vec::new(); n];
    let mut friends = vec![Vec::new(); n];
    for &(a, b) in &pairs {
        asks[a].push(users[b].0.user_id);
        accepts[b].push(users[a].0.user_id);
        friends[a].push(users[b].0.user_id);
        friends[b].push(users[a].0.user_id);
    }
    // All requests first, so every accept finds its request.
    for (step, todo) in [("request", asks), ("accept", accepts)] {
        stream::iter(users.iter().zip(todo))
            .filter(|(_, others)| std::future::ready(!others.is_empty()))
            .map(|((c, addr), others)| async move {
                let (client, _events) = crate::bench::connect(*addr).await?;
                client.sign_in(c.user_id, c.device_id, &c.token).await?;
                for other in others {
                    let done = match step {
                        "request" => client.friend_request(other, "bench").await,
                        _ => client.friend_accept(other).await,
                    };
                    done.map_err(|e| anyhow::anyhow!("friend {step} failed: {e}"))?;
                }
                anyhow::Ok(())
            })
            .buffer_unordered(32)
            .try_collect::<()>()
            .await?;
    }
    Ok(friends)
}

/// The pairs `(i, i+j mod n)` for j in 1..=half, each unordered pair once
/// and none with itself; the first of a pair asks, the second accepts.
fn ring_pairs(n: usize, half: usize) -> Vec<(usize, usize)> {
    let mut seen = BTreeSet::new();
    let mut pairs = Vec::new();
    for i in 0..n {
        for j in 1..=half {
            let k = (i + j) % n;
            if k != i && seen.insert((i.min(k), i.max(k))) {
                pairs.push((i, k));
            }
        }
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::ring_pairs;

    fn friends_of(n: usize, half: usize) -> Vec<usize> {
        let mut count = vec![0; n];
        for (a, b) in ring_pairs(n, half) {
            assert_ne!(a, b);
            count[a] += 1;
            count[b] += 1;
        }
        count
    }

    #[test]
    fn every_user_gets_two_friends_per_step_of_the_ring() {
        assert_eq!(friends_of(10, 2), vec![4; 10]);
    }

    #[test]
    fn small_rings_do_not_pair_a_user_twice_or_with_itself() {
        assert_eq!(ring_pairs(2, 2), vec![(0, 1)]);
        assert_eq!(friends_of(3, 5), vec![2; 3]);
    }
}
