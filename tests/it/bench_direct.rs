//! `tern bench direct` checks itself: its loss check reads the lists, so
//! dropped pushes lose nothing and unstored sends fail the run; its worker
//! processes, target rate and friendships do what they say.

use crate::common;

use crate::common::bench::*;
use crate::common::*;

/// The loss check trusts the lists, not the pushes: with every push dropped
/// nothing is lost (devices catch up by SYNC); with SENDs answered but never
/// stored, the bench reports the loss and fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_direct_bench_counts_what_the_lists_hold() {
    use crate::common::proxy::{Fault, Proxy};
    let server = Shape::Standalone.start().await;

    let lossy_pushes = Proxy::with_fault(server.addr(), Fault::DropPushes).await;
    let addr = lossy_pushes.addr.to_string();
    // The server runs in this process: its CPU is this process's.
    let pid = std::process::id().to_string();
    let out = bench(&strings(&[
        "direct",
        "--addr",
        &addr,
        "--users",
        "3",
        "--duration-secs",
        "1",
        "--server-pid",
        &pid,
    ]))
    .await;
    assert!(number(&out, "stored:") > 0.0, "{out}");
    assert!(number(&out, "server CPU:") > 0.0, "{out}");
    assert_eq!(
        number(&out, "pushes missed:"),
        number(&out, "stored:"),
        "every push was dropped: {out}"
    );
    assert_eq!(number(&out, "lost:"), 0.0, "{out}");

    let black_hole = Proxy::with_fault(server.addr(), Fault::FakeSends).await;
    let addr = black_hole.addr.to_string();
    let (ok, out) = bench_result(&strings(&[
        "direct",
        "--addr",
        &addr,
        "--users",
        "3",
        "--duration-secs",
        "1",
    ]))
    .await;
    assert!(!ok, "a server that stores nothing passed the bench:\n{out}");
    assert!(number(&out, "lost:") > 0.0, "{out}");
    server.stop().await;
}

/// Users spread over two worker processes send to their friends at a target
/// rate, against a server with the default friends-only policy; without
/// the friendships the same run is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_users_in_workers_send_to_friends_at_a_target_rate() {
    let server = Shape::Standalone
        .start_with(Default::default(), tern_logic::LogicConfig::default())
        .await;
    let addr = server.addr().to_string();
    let (users, rate, secs) = (6, 30, 2);
    let json = bench_json(&strings(&[
        "direct",
        "--addr",
        &addr,
        "--users",
        &users.to_string(),
        "--workers",
        "2",
        "--friends",
        "2",
        "--rate",
        &rate.to_string(),
        "--duration-secs",
        &secs.to_string(),
    ]))
    .await;
    assert_eq!(json["workers"].as_u64(), Some(2), "{json}");
    assert_eq!(json["friends_per_user"].as_f64(), Some(2.0), "{json}");
    assert_eq!(json["errors"], serde_json::json!({}), "{json}");
    let stored = json["stored"].as_u64().expect("stored");
    // Each user sends once per users/rate seconds: never more than the target.
    assert!(
        stored > 0 && stored <= rate * secs,
        "{stored} stored at {rate}/s for {secs} s: {json}"
    );
    assert_eq!(
        (json["lost"].as_u64(), json["duplicated"].as_u64()),
        (Some(0), Some(0)),
        "{json}"
    );
    assert_eq!(json["lists_in_order"].as_bool(), Some(true), "{json}");

    let (ok, json) = bench_json_result(&strings(&[
        "direct",
        "--addr",
        &addr,
        "--users",
        "3",
        "--friends",
        "0",
        "--duration-secs",
        "1",
    ]))
    .await;
    assert!(
        !ok,
        "strangers messaged each other on a friends-only server: {json}"
    );
    assert!(json["errors"]["NOT_FRIENDS"].as_u64() > Some(0), "{json}");
    assert_eq!(json["stored"].as_u64(), Some(0), "{json}");
    server.stop().await;
}

/// `tern bench --tls-ca` connects every client, the workers' too, over TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_runs_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let ca = common::tls::TestCa::new(dir.path(), "bench");
    let files = ca.issue(dir.path());
    let tls = tern_connect::Tls::load(&files.cert, &files.key).expect("certificate");
    let connect = tern_connect::ConnectConfig {
        tls: Some(std::sync::Arc::new(tls)),
        ..Default::default()
    };
    let server = Shape::Standalone.start_with(connect, open_logic()).await;
    let addr = server.addr().to_string();
    let ca_path = ca.pem_path.to_str().expect("utf-8 path");
    let json = bench_json(&strings(&[
        "--tls-ca",
        ca_path,
        "direct",
        "--addr",
        &addr,
        "--users",
        "4",
        "--workers",
        "2",
        "--duration-secs",
        "1",
    ]))
    .await;
    assert!(json["stored"].as_u64() > Some(0), "{json}");
    assert_eq!(json["lost"].as_u64(), Some(0), "{json}");
    // Without --tls-ca the same run cannot even register.
    let (ok, _out) = bench_result(&strings(&[
        "direct",
        "--addr",
        &addr,
        "--users",
        "2",
        "--duration-secs",
        "1",
    ]))
    .await;
    assert!(!ok, "a plain bench ran against a TLS listener");
    server.stop().await;
}
