//! The account and its devices managed by their own user (types 90-97),
//! in both shapes: what each command does to the user's other devices, to
//! their tokens and push tokens, and what it refuses.

use std::time::Duration;

use crate::common::groups::{code, create};
use crate::common::*;
use tern_client::proto::{DeviceEntry, KickReason, PushProvider};
use tern_client::{Client, Code, Event, PushTarget};

const NEW_PASSWORD: &str = "a brand new password";

/// The next event that is not an unmatched reply nor a list entry.
async fn next(d: &mut Device) -> Event {
    loop {
        match d.next_event().await {
            Event::Unmatched(_) | Event::Push(_) => continue,
            e => return e,
        }
    }
}

/// Asserts that `d` is sent KICKED with `reason`, then closed.
async fn assert_kicked(d: &mut Device, reason: KickReason) {
    match next(d).await {
        Event::Kicked(k) => assert_eq!(k.reason, reason as i32, "kick reason"),
        other => panic!("expected KICKED({reason:?}), got {other:?}"),
    }
    assert!(
        matches!(next(d).await, Event::Closed),
        "closed after KICKED"
    );
}

/// Whether `creds` still sign in: Ok, or the refusal's code.
async fn signs_in(addr: std::net::SocketAddr, c: &Creds) -> Result<(), Option<Code>> {
    let (client, _events) = Client::connect(addr).await.unwrap();
    client
        .sign_in(c.user_id, c.device_id, &c.token)
        .await
        .map(drop)
        .map_err(|e| e.code())
}

/// Signs `c` in on a new connection, which then closes.
async fn resume(addr: std::net::SocketAddr, c: &Creds) -> tern_client::SignedIn {
    let (client, _events) = Client::connect(addr).await.unwrap();
    client
        .sign_in(c.user_id, c.device_id, &c.token)
        .await
        .expect("sign in")
}

async fn logs_in(
    addr: std::net::SocketAddr,
    user: &str,
    password: &str,
) -> Result<(), Option<Code>> {
    let (client, _events) = Client::connect(addr).await.unwrap();
    client
        .login(user, password, None)
        .await
        .map(drop)
        .map_err(|e| e.code())
}

fn entry(list: &[DeviceEntry], device_id: u64) -> &DeviceEntry {
    list.iter()
        .find(|d| d.device_id == device_id)
        .unwrap_or_else(|| panic!("device {device_id} not listed in {list:?}"))
}

fn apns(token: &str) -> PushTarget {
    PushTarget::Apns {
        token: token.into(),
        topic: "com.example.chat".into(),
        sandbox: true,
    }
}

async fn changing_the_password_signs_out_only_what_was_asked(shape: Shape) {
    let server = shape.start().await;
    let addr = server.addr();
    let phone = register(addr, "ann").await;
    let tablet = login(addr, "ann").await;

    let wrong = phone
        .client
        .change_password("not it at all", NEW_PASSWORD, true);
    assert_eq!(code(wrong.await), Some(Code::Unauthenticated));
    let short = phone.client.change_password(PASSWORD, "short", true);
    assert_eq!(code(short.await), Some(Code::BadRequest));
    assert_eq!(logs_in(addr, "ann", PASSWORD).await, Ok(()), "unchanged");

    // Keeping the other devices: the tablet is not touched.
    phone
        .client
        .change_password(PASSWORD, NEW_PASSWORD, false)
        .await
        .unwrap();
    assert_eq!(
        logs_in(addr, "ann", PASSWORD).await,
        Err(Some(Code::Unauthenticated))
    );
    assert_eq!(logs_in(addr, "ann", NEW_PASSWORD).await, Ok(()));
    tablet.client.heartbeat().await.unwrap();
    assert_eq!(signs_in(addr, &tablet.creds()).await, Ok(()));

    // Signing the others out: the tablet is kicked and its token is dead,
    // the phone that asked stays.
    let mut tablet = sign_in(addr, &tablet.creds()).await.0;
    phone
        .client
        .change_password(NEW_PASSWORD, PASSWORD, true)
        .await
        .unwrap();
    assert_kicked(&mut tablet, KickReason::TokenRevoked).await;
    assert_eq!(
        signs_in(addr, &tablet.creds()).await,
        Err(Some(Code::Unauthenticated))
    );
    phone.client.heartbeat().await.unwrap();
    assert_eq!(signs_in(addr, &phone.creds()).await, Ok(()));
}

async fn logout_signs_out_this_device_alone(shape: Shape) {
    let server = shape.start().await;
    let addr = server.addr();
    let mut phone = register(addr, "ann").await;
    let tablet = login(addr, "ann").await;
    phone
        .client
        .set_push_token(apns(&"ab".repeat(32)))
        .await
        .unwrap();
    let before = tablet.client.devices().await.unwrap().devices;
    assert_eq!(
        entry(&before, phone.device_id).push_provider,
        PushProvider::Apns as i32
    );

    phone.client.logout().await.unwrap();
    assert_kicked(&mut phone, KickReason::LoggedOut).await;
    assert_eq!(
        signs_in(addr, &phone.creds()).await,
        Err(Some(Code::Unauthenticated))
    );
    let after = tablet.client.devices().await.unwrap().devices;
    let gone = entry(&after, phone.device_id);
    assert!(!gone.signed_in, "{gone:?}");
    assert_eq!(
        gone.push_provider,
        PushProvider::Unspecified as i32,
        "a signed-out device gets no notifications"
    );
    assert!(entry(&after, tablet.device_id).signed_in);
    assert_eq!(signs_in(addr, &tablet.creds()).await, Ok(()));
}

async fn devices_are_listed_and_another_can_be_signed_out(shape: Shape) {
    let server = shape.start().await;
    let addr = server.addr();
    let phone = register(addr, "ann").await;
    let mut tablet = login(addr, "ann").await;
    let bob = register(addr, "bob").await;
    tablet
        .client
        .set_push_token(PushTarget::Fcm {
            token: "fcm-token-of-the-tablet".into(),
        })
        .await
        .unwrap();

    let list = phone.client.devices().await.unwrap().devices;
    let ids: Vec<u64> = list.iter().map(|d| d.device_id).collect();
    assert_eq!(ids, [phone.device_id, tablet.device_id], "oldest first");
    let (me, other) = (
        entry(&list, phone.device_id),
        entry(&list, tablet.device_id),
    );
    assert!(me.current && !other.current);
    assert!(me.online && other.online && me.signed_in && other.signed_in);
    assert_eq!(other.push_provider, PushProvider::Fcm as i32);
    assert_eq!(me.push_provider, PushProvider::Unspecified as i32);

    let myself = phone.client.revoke_device(phone.device_id).await;
    assert_eq!(code(myself), Some(Code::BadRequest));
    let not_mine = phone.client.revoke_device(bob.device_id).await;
    assert_eq!(code(not_mine), Some(Code::NotFound));
    assert_eq!(signs_in(addr, &bob.creds()).await, Ok(()), "bob untouched");
    let unknown = phone.client.revoke_device(u64::MAX).await;
    assert_eq!(code(unknown), Some(Code::NotFound));

    phone.client.revoke_device(tablet.device_id).await.unwrap();
    assert_kicked(&mut tablet, KickReason::TokenRevoked).await;
    assert_eq!(
        signs_in(addr, &tablet.creds()).await,
        Err(Some(Code::Unauthenticated))
    );
    let list = phone.client.devices().await.unwrap().devices;
    let revoked = entry(&list, tablet.device_id);
    assert!(!revoked.signed_in);
    assert_eq!(revoked.push_provider, PushProvider::Unspecified as i32);
    phone.client.heartbeat().await.unwrap();
}

async fn deleting_the_account_signs_out_every_device(shape: Shape) {
    let server = shape.start().await;
    let addr = server.addr();
    let mut phone = register(addr, "ann").await;
    let mut tablet = login(addr, "ann").await;
    let bob = register(addr, "bob").await;
    let group = create(&phone, &[bob.user_id]).await;

    let wrong = phone.client.delete_account("not the password").await;
    assert_eq!(code(wrong), Some(Code::Unauthenticated));
    let owner = phone.client.delete_account(PASSWORD).await;
    assert_eq!(code(owner), Some(Code::Conflict), "owns a group");
    phone.client.group_dismiss(group.group_id).await.unwrap();

    phone.client.delete_account(PASSWORD).await.unwrap();
    assert_kicked(&mut phone, KickReason::UserDisabled).await;
    assert_kicked(&mut tablet, KickReason::UserDisabled).await;
    for creds in [phone.creds(), tablet.creds()] {
        assert_eq!(
            signs_in(addr, &creds).await,
            Err(Some(Code::Unauthenticated))
        );
    }
    let found = bob.client.user_get(&[phone.user_id]).await.unwrap();
    assert!(found.is_empty(), "a deleted user is not found: {found:?}");
    // The name is free again, for someone else.
    let again = register(addr, "ann").await;
    assert_ne!(again.user_id, phone.user_id);
}

async fn a_refreshed_token_replaces_the_old_one_once_used(shape: Shape) {
    let server = shape.start().await;
    let addr = server.addr();
    let phone = register(addr, "ann").await;
    let first = phone.creds();

    let second = phone.client.refresh_token().await.unwrap();
    assert_ne!(second.token, first.token);
    let second = Creds {
        token: second.token,
        ..first.clone()
    };
    // Until the new token is used, the old one still works (the refresh
    // reply may have been lost), and is answered with yet another token.
    let third = resume(addr, &first)
        .await
        .new_token
        .expect("the old token is replaced again");
    let third = Creds {
        token: third.token,
        ..first.clone()
    };
    // The newest is used: every older one stops working.
    let resumed = resume(addr, &third).await;
    assert!(resumed.new_token.is_none(), "a fresh token is kept");
    for old in [&first, &second] {
        assert_eq!(signs_in(addr, old).await, Err(Some(Code::Unauthenticated)));
    }
    assert_eq!(signs_in(addr, &third).await, Ok(()));

    // The plain way: the refreshed token is used, the old one dies.
    let (device, _) = sign_in(addr, &third).await;
    let fourth = Creds {
        token: device.client.refresh_token().await.unwrap().token,
        ..first.clone()
    };
    assert_eq!(signs_in(addr, &fourth).await, Ok(()));
    assert_eq!(
        signs_in(addr, &third).await,
        Err(Some(Code::Unauthenticated))
    );
    // That sign-in took the device away from `device`'s connection, which
    // may no longer refresh (it is closed, or refused).
    assert!(device.client.refresh_token().await.is_err());
}

async fn signing_out_retires_the_previous_token_too(shape: Shape) {
    let server = shape.start().await;
    let addr = server.addr();
    let phone = register(addr, "ann").await;
    let tablet = login(addr, "ann").await;
    let laptop = login(addr, "ann").await;
    // Each holds a current token and the one it replaced.
    let refreshed = |d: &Device, token: String| Creds { token, ..d.creds() };
    let tablet_new = refreshed(&tablet, tablet.client.refresh_token().await.unwrap().token);
    let laptop_new = refreshed(&laptop, laptop.client.refresh_token().await.unwrap().token);
    let phone_new = refreshed(&phone, phone.client.refresh_token().await.unwrap().token);

    phone.client.revoke_device(tablet.device_id).await.unwrap();
    laptop.client.logout().await.unwrap();
    // The device that stays keeps only its current token.
    phone
        .client
        .change_password(PASSWORD, NEW_PASSWORD, true)
        .await
        .unwrap();
    for dead in [
        tablet.creds(),
        tablet_new,
        laptop.creds(),
        laptop_new,
        phone.creds(),
    ] {
        assert_eq!(
            signs_in(addr, &dead).await,
            Err(Some(Code::Unauthenticated)),
            "device {}",
            dead.device_id
        );
    }
    assert_eq!(signs_in(addr, &phone_new).await, Ok(()));
}

async fn push_tokens_belong_to_one_device_at_a_time(shape: Shape) {
    let server = shape.start().await;
    let addr = server.addr();
    let phone = register(addr, "ann").await;
    let bob = register(addr, "bob").await;
    let token = "0f".repeat(32);

    for bad in [
        apns("not hex"),
        PushTarget::Fcm {
            token: String::new(),
        },
        PushTarget::Webhook {
            token: "has a space".into(),
        },
    ] {
        let refused = phone.client.set_push_token(bad).await;
        assert_eq!(code(refused), Some(Code::BadRequest));
    }
    let provider = |list: &[DeviceEntry], id| entry(list, id).push_provider;
    let listed = phone.client.devices().await.unwrap().devices;
    assert_eq!(
        provider(&listed, phone.device_id),
        PushProvider::Unspecified as i32,
        "a refused token is not stored"
    );

    phone.client.set_push_token(apns(&token)).await.unwrap();
    // Replaced by another provider on the same device.
    phone
        .client
        .set_push_token(PushTarget::Webhook {
            token: "gateway-1".into(),
        })
        .await
        .unwrap();
    let listed = phone.client.devices().await.unwrap().devices;
    assert_eq!(
        provider(&listed, phone.device_id),
        PushProvider::Webhook as i32
    );
    // The phone changes hands: bob registers the same token, it leaves ann.
    phone.client.set_push_token(apns(&token)).await.unwrap();
    bob.client
        .set_push_token(apns(&token.to_uppercase()))
        .await
        .unwrap();
    let listed = phone.client.devices().await.unwrap().devices;
    assert_eq!(
        provider(&listed, phone.device_id),
        PushProvider::Unspecified as i32,
        "one token notifies one device"
    );
    let bobs = bob.client.devices().await.unwrap().devices;
    assert_eq!(provider(&bobs, bob.device_id), PushProvider::Apns as i32);

    // New devices registering at once (their rows share the newest keys)
    // all succeed: the store retries what collides.
    let mut devices = Vec::new();
    for _ in 0..8 {
        devices.push(login(addr, "ann").await);
    }
    let sets = devices.iter().enumerate().map(|(i, d)| {
        d.client.set_push_token(PushTarget::Fcm {
            token: format!("fcm-{i}"),
        })
    });
    for set in futures::future::join_all(sets).await {
        set.expect("a concurrent registration succeeds");
    }
    let listed = phone.client.devices().await.unwrap().devices;
    for d in &devices {
        assert_eq!(provider(&listed, d.device_id), PushProvider::Fcm as i32);
    }

    bob.client.remove_push_token().await.unwrap();
    bob.client.remove_push_token().await.unwrap();
    let bobs = bob.client.devices().await.unwrap().devices;
    assert_eq!(
        provider(&bobs, bob.device_id),
        PushProvider::Unspecified as i32
    );
}

/// A token past half its life is replaced at sign-in, so a device that
/// signs in now and then never needs the password again.
#[tokio::test]
async fn sign_in_replaces_a_token_past_half_its_life() {
    const TTL: Duration = Duration::from_secs(4);
    let logic = tern_logic::LogicConfig {
        token_ttl: TTL,
        ..open_logic()
    };
    let server = start_with(open_connect(), logic).await;
    let addr = server.addr();
    let phone = register(addr, "ann").await;
    let fresh = resume(addr, &phone.creds()).await;
    assert!(fresh.new_token.is_none(), "a fresh token is kept");
    // The rule is about time: nothing to wait for but the clock.
    tokio::time::sleep(TTL / 2 + Duration::from_millis(200)).await;
    let aged = resume(addr, &phone.creds()).await;
    let new = aged.new_token.expect("replaced past half its life");
    let now = tern_public::time::now_ms();
    assert!(new.token_expires_at_ms > now + (TTL.as_millis() as i64) * 3 / 4);
    let renewed = Creds {
        token: new.token,
        ..phone.creds()
    };
    assert_eq!(signs_in(addr, &renewed).await, Ok(()));
    assert_eq!(
        signs_in(addr, &phone.creds()).await,
        Err(Some(Code::Unauthenticated))
    );
}

/// A Session hands the app the token that replaced its own, and signs in
/// with it from then on.
#[tokio::test]
async fn a_session_tells_the_app_of_its_new_token() {
    const TTL: Duration = Duration::from_secs(4);
    let logic = tern_logic::LogicConfig {
        token_ttl: TTL,
        ..open_logic()
    };
    let server = start_with(open_connect(), logic).await;
    let addr = server.addr();
    let phone = register(addr, "ann").await;
    let creds = tern_client::Credentials {
        user_id: phone.user_id,
        device_id: phone.device_id,
        token: phone.token.clone(),
    };
    drop(phone);
    tokio::time::sleep(TTL / 2 + Duration::from_millis(200)).await;
    let opts = tern_client::SessionOptions::default();
    let (session, mut events) = tern_client::Session::start(vec![addr], creds.clone(), 0, opts);
    let renewed = match tokio::time::timeout(WAIT, events.recv()).await {
        Ok(Some(tern_client::SessionEvent::TokenRefreshed { creds, .. })) => creds,
        other => panic!("expected TokenRefreshed first, got {other:?}"),
    };
    assert_ne!(renewed.token, creds.token);
    assert!(matches!(
        tokio::time::timeout(WAIT, events.recv()).await,
        Ok(Some(tern_client::SessionEvent::Connected(_)))
    ));
    // The session uses the new token when it signs in again.
    session.reconnect();
    loop {
        match tokio::time::timeout(WAIT, events.recv()).await {
            Ok(Some(tern_client::SessionEvent::Connected(_))) => break,
            Ok(Some(tern_client::SessionEvent::Disconnected)) => continue,
            other => panic!("expected to sign in again, got {other:?}"),
        }
    }
    let renewed = Creds {
        user_id: renewed.user_id,
        device_id: renewed.device_id,
        token: renewed.token,
    };
    let old = Creds {
        user_id: creds.user_id,
        device_id: creds.device_id,
        token: creds.token,
    };
    assert_eq!(
        signs_in(addr, &old).await,
        Err(Some(Code::Unauthenticated)),
        "the session signed in with the new token, which retires the old"
    );
    assert_eq!(signs_in(addr, &renewed).await, Ok(()));
}

/// Commands that take the password spend the sign-in budgets, so a stolen
/// session cannot guess it.
#[tokio::test]
async fn password_guesses_through_a_session_are_rate_limited() {
    let logic = tern_logic::LogicConfig {
        login_attempts_per_user_per_min: 3,
        ..open_logic()
    };
    let server = start_with(open_connect(), logic).await;
    let phone = register(server.addr(), "ann").await;
    for _ in 0..3 {
        let guess = phone.client.delete_account("guess guess").await;
        assert_eq!(code(guess), Some(Code::Unauthenticated));
    }
    let refused = phone
        .client
        .change_password("guess again", NEW_PASSWORD, false);
    assert_eq!(code(refused.await), Some(Code::RateLimited));
    let refused = phone.client.delete_account(PASSWORD).await;
    assert_eq!(code(refused), Some(Code::RateLimited), "even the right one");
}

in_both_shapes! {
    #[tokio::test] changing_the_password_signs_out_only_what_was_asked,
    #[tokio::test] logout_signs_out_this_device_alone,
    #[tokio::test] devices_are_listed_and_another_can_be_signed_out,
    #[tokio::test] deleting_the_account_signs_out_every_device,
    #[tokio::test] a_refreshed_token_replaces_the_old_one_once_used,
    #[tokio::test] signing_out_retires_the_previous_token_too,
    #[tokio::test] push_tokens_belong_to_one_device_at_a_time,
}
