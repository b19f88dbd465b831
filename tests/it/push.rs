//! Offline push end to end, in both shapes, against the local APNs, FCM
//! and webhook stand-ins: who is notified of what, with which badge and
//! collapse id, dead tokens, retries and their bound.

use std::collections::BTreeSet;
use std::time::Duration;

use tern_client::proto::{ConvType, PushProvider as Wire};
use tern_client::PushTarget;
use tern_logic::push::config::{ApnsConfig, FcmConfig, PushConfig, PushWebhookConfig};
use tern_testkit::push::{ApnsStandIn, FcmStandIn, Refusal, WebhookReceiver};

use crate::common::groups::create;
use crate::common::*;

/// The three stand-ins and a server configured to use them.
struct Providers {
    apns: ApnsStandIn,
    fcm: FcmStandIn,
    hook: WebhookReceiver,
}

impl Providers {
    async fn start() -> Providers {
        let (apns, fcm, hook) = tokio::join!(
            ApnsStandIn::start(),
            FcmStandIn::start(),
            WebhookReceiver::start()
        );
        Providers { apns, fcm, hook }
    }

    fn config(&self, max_age: Duration) -> PushConfig {
        PushConfig {
            apns: Some(ApnsConfig {
                key_pem: self.apns.key_pem().into(),
                key_id: self.apns.key_id().into(),
                team_id: self.apns.team_id().into(),
                default_topic: self.apns.topic().into(),
                url: self.apns.url(),
                sandbox_url: self.apns.url(),
            }),
            fcm: Some(FcmConfig {
                project_id: self.fcm.project_id().into(),
                client_email: self.fcm.client_email().into(),
                private_key_pem: self.fcm.private_key_pem().into(),
                token_uri: self.fcm.token_uri(),
                url: self.fcm.url(),
            }),
            webhook: Some(PushWebhookConfig {
                url: self.hook.url(),
                secret: self.hook.secret().into(),
            }),
            preview: true,
            max_age,
            lease: Duration::from_secs(2),
            sweep: Duration::from_millis(200),
            ..PushConfig::default()
        }
    }

    fn logic(&self, max_age: Duration) -> tern_logic::LogicConfig {
        tern_logic::LogicConfig {
            push: self.config(max_age),
            ..open_logic()
        }
    }
}

fn apns_token(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

/// A production APNs target with the server's default topic.
fn apns(token: &str) -> PushTarget {
    PushTarget::Apns {
        token: token.into(),
        topic: String::new(),
        sandbox: false,
    }
}

/// A device of `user` that registers `target` and then disconnects;
/// returns once `watcher` (another device of the user) sees it offline.
async fn offline_device(
    addr: std::net::SocketAddr,
    user: &str,
    target: PushTarget,
    watcher: &Device,
) -> u64 {
    let d = login(addr, user).await;
    d.client.set_push_token(target).await.unwrap();
    let id = d.device_id;
    drop(d);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let list = watcher.client.devices().await.unwrap().devices;
        let me = list.iter().find(|e| e.device_id == id).expect("listed");
        if !me.online {
            return id;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "device {id} still online"
        );
        // Presence is updated when connect reports the close: poll it.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A 16-byte message id as a UUID string (8-4-4-4-12 lower-case hex).
fn uuid(id: &[u8]) -> String {
    let h = hex::encode(id);
    assert_eq!(h.len(), 32, "a 16-byte id");
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

async fn each_offline_device_is_notified_once_per_message(shape: Shape) {
    let p = Providers::start().await;
    let server = shape
        .start_with(open_connect(), p.logic(Duration::from_secs(600)))
        .await;
    let addr = server.addr();
    let ann = register(addr, "ann").await;
    let laptop = register(addr, "bob").await;
    let phone_token = apns_token(1);
    let phone = apns(&phone_token);
    offline_device(addr, "bob", phone, &laptop).await;
    let tablet = PushTarget::Fcm {
        token: "fcm-tablet".into(),
    };
    offline_device(addr, "bob", tablet, &laptop).await;
    // Online with a token: gets PUSHes, no notification.
    let online_token = apns_token(2);
    laptop
        .client
        .set_push_token(apns(&online_token))
        .await
        .unwrap();

    let mut sent = Vec::new();
    for i in 0..3 {
        let text = format!("hello {i}");
        let r = ann
            .client
            .send_text(laptop.user_id, &text, &text)
            .await
            .unwrap();
        sent.push(uuid(&r.message_id));
    }
    p.apns.wait_accepted(3).await;
    p.fcm.wait_accepted(3).await;
    // A fourth message: once it is in, anything sent twice would be too.
    let r = ann
        .client
        .send_text(laptop.user_id, "last", "last")
        .await
        .unwrap();
    sent.push(uuid(&r.message_id));
    p.apns.wait_accepted(4).await;
    p.fcm.wait_accepted(4).await;

    let apns: Vec<_> = p.apns.accepted();
    assert_eq!(apns.len(), 4, "one per message: {apns:?}");
    assert!(
        apns.iter().all(|r| r.token == phone_token),
        "none for the online laptop"
    );
    assert_eq!(p.apns.requests(&online_token), 0);
    let collapse: BTreeSet<String> = apns
        .iter()
        .map(|r| r.headers["apns-collapse-id"].clone())
        .collect();
    assert_eq!(
        collapse,
        sent.iter().cloned().collect(),
        "collapse id = message id"
    );
    let badges: Vec<u64> = apns
        .iter()
        .map(|r| r.body["aps"]["badge"].as_u64().expect("a badge"))
        .collect();
    assert!(badges.iter().all(|b| (1..=4).contains(b)), "{badges:?}");
    assert_eq!(
        badges.iter().max(),
        Some(&4),
        "the badge is bob's total unread"
    );
    let last = apns
        .iter()
        .find(|r| r.headers["apns-collapse-id"] == sent[3])
        .unwrap();
    assert_eq!(last.body["aps"]["alert"]["title"], "ann");
    assert_eq!(last.body["aps"]["alert"]["body"], "last");
    assert_eq!(last.headers["apns-push-type"], "alert");
    assert!(last.headers.contains_key("apns-expiration"));
    let fcm = p.fcm.accepted();
    assert_eq!(fcm.len(), 4, "{fcm:?}");
    let tags: BTreeSet<String> = fcm
        .iter()
        .map(|m| {
            m.message["android"]["collapse_key"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(tags, sent.iter().cloned().collect());
}

async fn muted_conversations_and_own_messages_stay_quiet_but_mentions_do_not(shape: Shape) {
    let p = Providers::start().await;
    let server = shape
        .start_with(open_connect(), p.logic(Duration::from_secs(600)))
        .await;
    let addr = server.addr();
    let ann = register(addr, "ann").await;
    let laptop = register(addr, "bob").await;
    let target = PushTarget::Webhook {
        token: "bob-phone".into(),
    };
    offline_device(addr, "bob", target, &laptop).await;
    let group = create(&ann, &[laptop.user_id]).await;
    laptop
        .client
        .conv_set(ConvType::Group, group.group_id, None, Some(true), None)
        .await
        .unwrap();

    let quiet = crate::common::groups::group_text(group.group_id, "muted", "q1");
    ann.client.send(&quiet).await.unwrap();
    let mut mention = crate::common::groups::group_text(group.group_id, "@bob", "m1");
    mention.mentions = vec![laptop.user_id];
    let mentioned = uuid(&ann.client.send(&mention).await.unwrap().message_id);
    laptop
        .client
        .send_text(ann.user_id, "mine", "own")
        .await
        .unwrap();
    let direct = uuid(
        &ann.client
            .send_text(laptop.user_id, "hi", "d1")
            .await
            .unwrap()
            .message_id,
    );

    let got = p.hook.wait_deliveries(2).await;
    // The last one planned is the direct message: nothing else follows it.
    let ids: Vec<&str> = got
        .iter()
        .map(|d| d.json["message_id"].as_str().unwrap())
        .collect();
    assert!(got.iter().all(|d| d.verified), "signed");
    assert_eq!(
        ids.iter().copied().collect::<BTreeSet<_>>(),
        BTreeSet::from([mentioned.as_str(), direct.as_str()]),
        "the mention breaks the mute; the muted message and bob's own do not notify"
    );
    assert_eq!(p.hook.deliveries().len(), 2);
}

async fn a_dead_token_is_removed_and_a_recall_withdraws(shape: Shape) {
    let p = Providers::start().await;
    let server = shape
        .start_with(open_connect(), p.logic(Duration::from_secs(600)))
        .await;
    let addr = server.addr();
    let ann = register(addr, "ann").await;
    let laptop = register(addr, "bob").await;
    let dead = apns_token(3);
    p.apns.refuse(&dead, Refusal::Unregistered);
    let dead_id = offline_device(addr, "bob", apns(&dead), &laptop).await;
    offline_device(
        addr,
        "bob",
        PushTarget::Fcm {
            token: "fcm-alive".into(),
        },
        &laptop,
    )
    .await;

    let r = ann
        .client
        .send_text(laptop.user_id, "oops", "x1")
        .await
        .unwrap();
    p.fcm.wait_accepted(1).await;
    // The dead token leaves the device's record.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let list = laptop.client.devices().await.unwrap().devices;
        let d = list.iter().find(|d| d.device_id == dead_id).unwrap();
        if d.push_provider == Wire::Unspecified as i32 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "dead token kept");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(p.apns.requests(&dead), 1);

    ann.client.recall(r.message_id.clone()).await.unwrap();
    let both = p.fcm.wait_accepted(2).await;
    let withdraw = &both[1].message;
    assert_eq!(withdraw["data"]["kind"], "withdraw");
    assert!(
        withdraw.get("notification").is_none(),
        "a withdrawal shows nothing"
    );
    assert_eq!(withdraw["data"]["message_id"], uuid(&r.message_id));
    assert_eq!(
        p.apns.requests(&dead),
        1,
        "a removed token gets nothing more"
    );
}

/// A 503 is tried again after its Retry-After; a provider that keeps
/// failing is given up once the notification is too old.
#[tokio::test]
async fn retries_follow_a_503_and_stop_at_the_bound() {
    let p = Providers::start().await;
    let server = start_with(open_connect(), p.logic(Duration::from_secs(4))).await;
    let addr = server.addr();
    let ann = register(addr, "ann").await;
    let laptop = register(addr, "bob").await;
    let flaky = apns_token(4);
    p.apns.refuse_times(
        &flaky,
        Refusal::Unavailable {
            retry_after: Some(1),
        },
        2,
    );
    let down = "fcm-down";
    p.fcm.refuse(
        down,
        Refusal::Unavailable {
            retry_after: Some(1),
        },
    );
    let apns = apns(&flaky);
    offline_device(addr, "bob", apns, &laptop).await;
    let fcm = PushTarget::Fcm { token: down.into() };
    offline_device(addr, "bob", fcm, &laptop).await;

    ann.client
        .send_text(laptop.user_id, "hi", "r1")
        .await
        .unwrap();
    p.apns.wait_accepted(1).await;
    assert_eq!(p.apns.requests(&flaky), 3, "two refusals, then accepted");
    // The age bound (4 s) stops the retries of the one always down: wait
    // for the server to count it given up, then make sure no more come.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, _, text) = crate::common::http::call(server.http[0], "GET", "/metrics", None).await;
        if text.contains("reason=\"gave_up\"") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never given up:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let tries = p.fcm.requests(down);
    assert!(
        (2..=5).contains(&tries),
        "{tries} tries in 4 s at 1 s apart"
    );
}

in_both_shapes! {
    #[tokio::test] each_offline_device_is_notified_once_per_message,
    #[tokio::test] muted_conversations_and_own_messages_stay_quiet_but_mentions_do_not,
    #[tokio::test] a_dead_token_is_removed_and_a_recall_withdraws,
}
