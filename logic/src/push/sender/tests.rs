use super::*;
use crate::store::{push_tests, OutboxRow};
use tokio::sync::{Notify, Semaphore};

/// Answers every notification at once but those to `slow`, which wait
/// for `release`.
struct Held {
    slow: String,
    release: Arc<Notify>,
    delivered: Arc<Semaphore>,
}

#[async_trait::async_trait]
impl Provider for Held {
    async fn send(&self, n: &Notification) -> Outcome {
        if n.token == self.slow {
            self.release.notified().await;
        }
        self.delivered.add_permits(1);
        Outcome::Delivered
    }
}

/// One offline device per token, each with one notification due.
async fn outbox(s: &Store, tokens: &[&str]) {
    let names: Vec<String> = (0..tokens.len()).map(|i| format!("u{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let users = crate::store::tests::users(s, &names).await;
    for (&user_id, token) in users.iter().zip(tokens) {
        let device_id = push_tests::device(s, user_id).await;
        s.set_push_token(&push_tests::token(user_id, device_id, token))
            .await
            .unwrap();
        let msg = crate::store::messages::test_message(users[0], user_id, None);
        s.append(vec![Arc::new(msg)]).await.unwrap().unwrap();
        // The store tests' row, created now and due for an hour.
        let row = OutboxRow {
            created_at: now_ms(),
            expires_at: now_ms() + 3_600_000,
            ..push_tests::row(user_id, device_id, &format!("m{device_id}"), 1)
        };
        let (pushed, _) = s.push_cursor(user_id).await.unwrap().unwrap();
        assert!(s
            .plan_push(user_id, pushed, pushed + 1, &[row])
            .await
            .unwrap());
    }
}

#[tokio::test]
async fn a_slow_answer_holds_its_own_slot_not_the_claim() {
    let (s, _guard) = crate::store::tests::sqlite().await;
    // The slow one first: the first claim takes it.
    outbox(&s, &["slow", "f1", "f2", "f3", "f4", "f5"]).await;
    sqlx::query("UPDATE push_outbox SET next_attempt_at = next_attempt_at - 1000 WHERE id = (SELECT MIN(id) FROM push_outbox)")
        .execute(s.pool())
        .await
        .unwrap();
    let release = Arc::new(Notify::new());
    let delivered = Arc::new(Semaphore::new(0));
    let providers = Providers {
        fcm: Some(Arc::new(Held {
            slow: "slow".into(),
            release: release.clone(),
            delivered: delivered.clone(),
        })),
        ..Providers::default()
    };
    let metrics = LogicMetrics::default();
    let sender = {
        let (s, metrics) = (s.clone(), metrics.clone());
        tokio::spawn(
            async move { send_due(&s, &providers, &metrics, Duration::from_secs(60), 2).await },
        )
    };
    // Two slots: the slow one holds one, the five others pass through
    // the other while it waits.
    let five = tokio::time::timeout(Duration::from_secs(30), delivered.acquire_many(5))
        .await
        .expect("the others are not held behind the slow one");
    five.unwrap().forget();
    release.notify_one();
    assert_eq!(sender.await.unwrap(), 6);
    assert_eq!(s.push_outbox_depth().await.unwrap(), 0);
}

#[test]
fn backoff_doubles_up_to_the_cap_and_keeps_at_least_half() {
    for attempts in 1..20 {
        let full = FIRST_RETRY
            .saturating_mul(2u32.saturating_pow(attempts - 1))
            .min(MAX_RETRY);
        let d = backoff(attempts);
        assert!(d >= full / 2 && d <= full, "{attempts}: {d:?}");
    }
}
