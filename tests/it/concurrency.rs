//! Contiguity under concurrency: many senders, one receiver, a syncing
//! reader racing the writes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::common::*;

const SENDERS: usize = 20;
const PER_SENDER: usize = 50;

async fn concurrent_sends_give_the_receiver_seqs_1_to_n_with_no_gap_ever_visible(shape: Shape) {
    let server = shape.start().await;
    let receiver = register(server.addr(), "receiver").await;
    let target = receiver.user_id;
    let mut senders = Vec::new();
    for i in 0..SENDERS {
        senders.push(register(server.addr(), &format!("sender{i}")).await);
    }

    // A reader that syncs over and over while the sends run: every page must
    // continue exactly where the previous one stopped. A seq appearing below
    // one already synced past would show up as a page starting too low.
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        // A second device of the receiver.
        let dev = login(server.addr(), "receiver").await;
        let done = done.clone();
        tokio::spawn(async move {
            let mut last = 0u64;
            let mut seen = Vec::new();
            let mut syncs = 0u32;
            loop {
                let finished = done.load(Ordering::SeqCst);
                let page = dev.client.sync(last, 37).await.expect("sync");
                syncs += 1;
                for m in &page.messages {
                    assert_eq!(
                        m.seq,
                        last + 1,
                        "gap or reordering seen by a syncing client"
                    );
                    last = m.seq;
                    seen.push((m.sender_id, m.client_msg_id.clone()));
                }
                assert!(page.max_seq >= last, "max_seq behind a delivered seq");
                if finished && !page.has_more {
                    return (last, seen, syncs);
                }
            }
        })
    };

    let mut tasks = Vec::new();
    for s in senders {
        tasks.push(tokio::spawn(async move {
            for n in 0..PER_SENDER {
                s.client
                    .send_text(target, &format!("{n}"), &format!("{}-{n}", s.user_id))
                    .await
                    .expect("send");
            }
            s.user_id
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    done.store(true, Ordering::SeqCst);
    let (last, seen, syncs) = reader.await.unwrap();

    let total = SENDERS * PER_SENDER;
    assert_eq!(last, total as u64);
    assert_eq!(seen.len(), total);
    assert!(syncs > 1, "the reader raced the writers");

    // The list itself: exactly 1..=1000, and each sender's messages in the
    // order they were sent.
    let list = receiver.client.sync_all(0).await.unwrap();
    assert_eq!(
        list.iter().map(|m| m.seq).collect::<Vec<_>>(),
        (1..=total as u64).collect::<Vec<_>>()
    );
    let mut next_per_sender = std::collections::HashMap::<u64, usize>::new();
    for m in &list {
        let n: usize = text(m).parse().unwrap();
        let expected = next_per_sender.entry(m.sender_id).or_default();
        assert_eq!(
            n, *expected,
            "sender {}'s messages out of order",
            m.sender_id
        );
        *expected += 1;
    }
    assert!(next_per_sender.values().all(|&n| n == PER_SENDER));
    server.stop().await;
}

in_both_shapes! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)] concurrent_sends_give_the_receiver_seqs_1_to_n_with_no_gap_ever_visible,
}
