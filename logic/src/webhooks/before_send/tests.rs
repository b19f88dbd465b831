//! The hook's answers, the fail policy, and calls over a real socket.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

#[test]
fn the_three_answers_parse() {
    assert_eq!(parse(br#"{"action":"allow"}"#).unwrap(), Verdict::Allow);
    assert_eq!(
        parse(br#"{"action":"reject","code":42,"reason":"spam","extra":true}"#).unwrap(),
        Verdict::Reject {
            code: 42,
            reason: "spam".into()
        }
    );
    assert_eq!(
        parse(br#"{"action":"replace","content":"aGk="}"#).unwrap(),
        Verdict::Replace {
            content: Bytes::from_static(b"hi"),
            content_type: None
        }
    );
    assert_eq!(
        parse(br#"{"content_type":7,"action":"replace","content":""}"#).unwrap(),
        Verdict::Replace {
            content: Bytes::new(),
            content_type: Some(7)
        }
    );
}

#[test]
fn a_reject_without_code_or_reason_still_rejects() {
    assert_eq!(
        parse(br#"{"action":"reject"}"#).unwrap(),
        Verdict::Reject {
            code: 0,
            reason: String::new()
        }
    );
}

#[test]
fn a_long_reason_is_cut_at_a_character_boundary() {
    let reason = "é".repeat(300);
    let body = serde_json::json!({"action": "reject", "code": 1, "reason": reason});
    let Verdict::Reject { reason, .. } = parse(body.to_string().as_bytes()).unwrap() else {
        panic!("a reject")
    };
    assert_eq!(reason.chars().count(), MAX_REASON_CHARS);
    assert_eq!(cut("short".into(), 256), "short");
}

#[test]
fn anything_else_is_a_broken_answer() {
    for body in [
        &b""[..],
        b"allow",
        b"{}",
        b"[]",
        br#"{"action":"ALLOW"}"#,
        br#"{"action":"maybe"}"#,
        br#"{"action":"replace"}"#,
        br#"{"action":"replace","content":"not base64!"}"#,
        br#"{"action":"replace","content":"aGk=","content_type":-1}"#,
        br#"{"action":"reject","code":"42"}"#,
        br#"{"action":"reject","code":-1}"#,
    ] {
        assert!(
            matches!(parse(body), Err(HookError::Parse(_))),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn the_fail_policy_decides_only_when_there_is_no_usable_answer() {
    for policy in [FailPolicy::Open, FailPolicy::Closed] {
        assert!(matches!(
            decide(policy, Ok(Verdict::Allow)),
            Decision::Allow
        ));
        let reject = Verdict::Reject {
            code: 3,
            reason: "no".into(),
        };
        assert!(matches!(
            decide(policy, Ok(reject)),
            Decision::Reject { code: 3, .. }
        ));
        let replace = Verdict::Replace {
            content: Bytes::from_static(b"x"),
            content_type: Some(2),
        };
        assert!(matches!(
            decide(policy, Ok(replace)),
            Decision::Replace {
                content_type: Some(2),
                ..
            }
        ));
    }
    let open = decide(FailPolicy::Open, Err(HookError::Status(500)));
    assert!(matches!(open, Decision::FailOpen(HookError::Status(500))));
    assert_eq!(open.outcome(), "failed_open");
    let closed = decide(FailPolicy::Closed, Err(HookError::Timeout(Duration::ZERO)));
    assert!(matches!(
        closed,
        Decision::FailClosed(HookError::Timeout(_))
    ));
    assert_eq!(closed.outcome(), "failed_closed");
}

#[test]
fn unusable_settings_are_refused() {
    let ok = BeforeSendConfig::new("http://127.0.0.1:9/hook", "s");
    assert!(ok.check().is_ok());
    assert!(BeforeSendConfig::new("https://example.com/h", "s")
        .check()
        .is_ok());
    for bad in [
        BeforeSendConfig::new("ftp://127.0.0.1/hook", "s"),
        BeforeSendConfig::new("not a url", "s"),
        BeforeSendConfig::new("http://127.0.0.1:9/hook", ""),
        BeforeSendConfig {
            timeout: Duration::from_millis(5),
            ..ok.clone()
        },
        BeforeSendConfig {
            timeout: Duration::from_secs(31),
            ..ok.clone()
        },
    ] {
        assert!(bad.check().is_err(), "{bad:?}");
    }
    // Unusable settings still make a hook, whose every call fails.
    let broken = BeforeSend::start(BeforeSendConfig::new("ftp://x", "s"));
    assert!(broken.http.is_err());
}

fn request() -> HookRequest<'static> {
    HookRequest {
        sender_id: 7,
        sender_device_id: 8,
        conv_type: "user",
        conv_id: 9,
        content_type: 1,
        content: encode(b"hello"),
        mentions: &[9],
        client_msg_id: "c-1",
    }
}

/// One HTTP/1.1 exchange on a loopback port: returns the request it read
/// and answers `response` (raw), or never answers when `None`.
async fn one_shot(response: Option<&'static str>) -> (String, tokio::task::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        // Headers, then a body of content-length bytes.
        loop {
            let n = sock.read(&mut buf).await.unwrap();
            seen.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&seen).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let len: usize = text
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if seen.len() >= end + 4 + len {
                    break;
                }
            }
        }
        match response {
            Some(r) => sock.write_all(r.as_bytes()).await.unwrap(),
            None => tokio::time::sleep(Duration::from_secs(30)).await,
        }
        String::from_utf8_lossy(&seen).to_string()
    });
    (url, task)
}

#[tokio::test]
async fn a_call_is_signed_json_and_reads_the_answer() {
    let answer = r#"{"action":"reject","code":5,"reason":"nope"}"#;
    let response: &'static str = Box::leak(
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
            answer.len()
        )
        .into_boxed_str(),
    );
    let (url, server) = one_shot(Some(response)).await;
    let hook = BeforeSend::new(BeforeSendConfig::new(url, "key")).unwrap();
    let verdict = hook.call(&request(), 1024).await.unwrap();
    assert_eq!(
        verdict,
        Verdict::Reject {
            code: 5,
            reason: "nope".into()
        }
    );
    let seen = server.await.unwrap();
    let (head, body) = seen.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("POST /hook HTTP/1.1"));
    let header = |name: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no {name} header in {head}"))
            .to_owned()
    };
    assert_eq!(header("content-type"), "application/json");
    let ts: i64 = header("x-tern-timestamp").parse().unwrap();
    assert!((ts - tern_public::time::now_ms() / 1000).abs() < 60);
    assert!(signing::verify(
        b"key",
        ts,
        body.as_bytes(),
        &header("x-tern-signature")
    ));
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "sender_id": 7, "sender_device_id": 8, "conv_type": "user", "conv_id": 9,
            "content_type": 1, "content": "aGVsbG8=", "mentions": [9], "client_msg_id": "c-1"
        })
    );
}

#[tokio::test]
async fn a_hook_that_does_not_answer_in_time_times_out() {
    let (url, _server) = one_shot(None).await;
    let cfg = BeforeSendConfig {
        timeout: Duration::from_millis(100),
        ..BeforeSendConfig::new(url, "key")
    };
    let hook = BeforeSend::new(cfg).unwrap();
    let started = std::time::Instant::now();
    let err = hook.call(&request(), 1024).await.unwrap_err();
    assert!(matches!(err, HookError::Timeout(_)), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn error_statuses_large_answers_and_refused_connections_fail() {
    let (url, _s) = one_shot(Some(
        "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n",
    ))
    .await;
    let hook = BeforeSend::new(BeforeSendConfig::new(url, "key")).unwrap();
    let err = hook.call(&request(), 1024).await.unwrap_err();
    assert!(matches!(err, HookError::Status(500)), "{err}");

    let (url, _s) = one_shot(Some("HTTP/1.1 204 No Content\r\n\r\n")).await;
    let hook = BeforeSend::new(BeforeSendConfig::new(url, "key")).unwrap();
    let err = hook.call(&request(), 1024).await.unwrap_err();
    assert!(
        matches!(err, HookError::Status(204)),
        "only 200 answers: {err}"
    );

    let (url, _s) = one_shot(Some(
        "HTTP/1.1 200 OK\r\ncontent-length: 20\r\n\r\n{\"action\":\"allow\"}  ",
    ))
    .await;
    let hook = BeforeSend::new(BeforeSendConfig::new(url, "key")).unwrap();
    let err = hook.call(&request(), 10).await.unwrap_err();
    assert!(matches!(err, HookError::TooLarge(10)), "{err}");

    // A port nobody listens on.
    let free = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", free.local_addr().unwrap());
    drop(free);
    let hook = BeforeSend::new(BeforeSendConfig::new(url, "key")).unwrap();
    let err = hook.call(&request(), 1024).await.unwrap_err();
    assert!(matches!(err, HookError::Request(_)), "{err}");
}
