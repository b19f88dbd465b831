//! `tern bench` checks itself: a short run of each scenario against a
//! standalone server finishes, reports non-zero rates, and finds every
//! message where it should be.

use crate::common::bench::*;
use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_runs_short_and_finds_nothing_lost() {
    let server = Shape::Standalone.start().await;
    let addr = server.addr().to_string();
    let http = server.http[0].to_string();

    let out = bench(&strings(&[
        "direct",
        "--addr",
        &addr,
        "--users",
        "4",
        "--duration-secs",
        "1",
    ]))
    .await;
    assert!(number(&out, "stored:") > 0.0, "{out}");
    assert_eq!(number(&out, "lost:"), 0.0, "{out}");
    assert!(out.contains("lists exactly once, in order: yes"), "{out}");
    let out = bench(&strings(&[
        "direct",
        "--addr",
        &addr,
        "--users",
        "2",
        "--duration-secs",
        "1",
        "--json",
    ]))
    .await;
    let json = json_of(&out);
    assert!(json["stored"].as_u64() > Some(0), "{json}");
    assert_eq!(
        (json["lost"].as_u64(), json["lists_in_order"].as_bool()),
        (Some(0), Some(true))
    );
    assert!(
        json["send_to_reply"]["p99_ms"].as_f64() > Some(0.0),
        "{json}"
    );

    let json = bench_json(&strings(&[
        "group",
        "--addr",
        &addr,
        "--sizes",
        "3,5",
        "--messages",
        "2",
    ]))
    .await;
    assert_eq!(json["scenario"], "group", "{json}");
    assert_eq!(json["errors"], serde_json::json!({}), "{json}");
    let groups = json["groups"].as_array().expect("groups");
    assert_eq!(groups.len(), 2, "{json}");
    for (g, size) in groups.iter().zip([3u64, 5]) {
        assert_eq!(g["size"].as_u64(), Some(size));
        assert_eq!(g["sent"].as_u64(), Some(2), "{g}");
        assert_eq!(g["deliveries"].as_u64(), Some(2 * (size - 1)), "{g}");
        assert!(g["deliveries_per_sec"].as_f64() > Some(0.0), "{g}");
        assert_eq!(g["missing"].as_u64(), Some(0));
        assert_eq!(g["send_to_push"]["n"].as_u64(), Some(2 * (size - 1)), "{g}");
        assert_eq!(g["errors"], serde_json::json!({}), "{g}");
    }

    let json = bench_json(&strings(&[
        "sync",
        "--addr",
        &addr,
        "--messages",
        "120",
        "--page",
        "50",
        "--repeats",
        "2",
        "--senders",
        "2",
    ]))
    .await;
    assert_eq!(json["list_length"].as_u64(), Some(120), "{json}");
    assert_eq!(json["every_seq_once_in_order"].as_bool(), Some(true));
    for at in ["start", "middle", "end"] {
        assert_eq!(json["one_page"][at]["n"].as_u64(), Some(2), "{json}");
    }

    let json = bench_json(&strings(&[
        "conversations",
        "--addr",
        &addr,
        "--conversations",
        "30",
        "--history",
        "120",
        "--page",
        "10",
        "--repeats",
        "2",
        "--devices",
        "2",
    ]))
    .await;
    assert_eq!(json["scenario"], "conversations", "{json}");
    assert_eq!(json["conversations"].as_u64(), Some(31), "{json}");
    assert_eq!(json["first_list_page"]["n"].as_u64(), Some(2), "{json}");
    for at in ["newest", "oldest"] {
        assert_eq!(json["history_page"][at]["n"].as_u64(), Some(2), "{json}");
    }
    assert_eq!(json["mark_read"]["n"].as_u64(), Some(30), "{json}");

    let pid = std::process::id().to_string();
    let connections = strings(&[
        "connections",
        "--addr",
        &addr,
        "--count",
        "20",
        "--devices-per-user",
        "10",
        "--server-pid",
        &pid,
        "--hold-secs",
        "0",
    ]);
    let out = bench(&connections).await;
    assert_eq!(number(&out, "connections:"), 20.0, "{out}");
    assert!(out.contains("errors:               {}"), "{out}");
    let json = bench_json(&connections).await;
    assert_eq!(json["scenario"], "connections", "{json}");
    assert_eq!(json["connections"].as_u64(), Some(20), "{json}");
    assert_eq!(json["asked"].as_u64(), Some(20), "{json}");
    assert!(json["connect_per_sec"].as_f64() > Some(0.0), "{json}");
    assert!(json["rss_before_bytes"].as_u64() > Some(0), "{json}");
    assert!(json["rss_after_hold_bytes"].as_u64() > Some(0), "{json}");
    assert!(json["rss_per_connection_bytes"].is_number(), "{json}");
    assert_eq!(json["errors"], serde_json::json!({}), "{json}");

    let json = bench_json(&strings(&[
        "room",
        "--addr",
        &addr,
        "--http",
        &http,
        "--admin-token",
        ADMIN_TOKEN,
        "--members",
        "20",
        "--processes",
        "2",
        "--messages",
        "3",
        "--devices-per-user",
        "10",
        "--timeout-secs",
        "60",
    ]))
    .await;
    assert_eq!(json["scenario"], "room", "{json}");
    assert_eq!(json["members"].as_u64(), Some(20), "{json}");
    assert_eq!(json["member_processes"].as_u64(), Some(2), "{json}");
    assert_eq!(json["accepted"].as_u64(), Some(3), "{json}");
    assert_eq!(json["deliveries"].as_u64(), Some(60), "{json}");
    assert_eq!(json["expected_deliveries"].as_u64(), Some(60), "{json}");
    assert_eq!(json["missed"].as_u64(), Some(0), "{json}");
    assert!(json["deliveries_per_sec"].as_f64() > Some(0.0), "{json}");
    assert_eq!(json["post_to_202"]["n"].as_u64(), Some(3), "{json}");
    assert_eq!(json["post_to_room_push"]["n"].as_u64(), Some(60), "{json}");
    assert_eq!(json["errors"], serde_json::json!({}), "{json}");

    let http_run = |token: &str, extra: &[&str]| {
        let mut args = strings(&[
            "http",
            "--http",
            &http,
            "--admin-token",
            token,
            "--path",
            "/api/v1/rooms",
            "--connections",
            "2",
            "--duration-secs",
            "1",
        ]);
        args.extend(strings(extra));
        args
    };
    let out = bench(&http_run(ADMIN_TOKEN, &[])).await;
    assert!(number(&out, "requests:") > 0.0, "{out}");
    assert_eq!(number(&out, "non-2xx:"), 0.0, "{out}");
    assert!(out.contains("errors:            {}"), "{out}");
    let json = bench_json(&http_run(ADMIN_TOKEN, &[])).await;
    assert_eq!(json["scenario"], "http", "{json}");
    let requests = json["requests"].as_u64().expect("requests");
    assert!(requests > 0, "{json}");
    assert!(json["requests_per_sec"].as_f64() > Some(0.0), "{json}");
    assert_eq!(json["ok_2xx"].as_u64(), Some(requests), "{json}");
    assert_eq!(json["non_2xx"].as_u64(), Some(0), "{json}");
    assert_eq!(json["latency"]["n"].as_u64(), Some(requests), "{json}");
    assert_eq!(json["errors"], serde_json::json!({}), "{json}");

    // Refused requests are counted by status and reported, and the run fails.
    let (ok, json) = bench_json_result(&http_run("not-the-token", &["--max-requests", "10"])).await;
    assert!(!ok, "a run of only 401s passed: {json}");
    assert_eq!(json["requests"].as_u64(), Some(10), "{json}");
    assert_eq!(json["non_2xx"].as_u64(), Some(10), "{json}");
    assert_eq!(json["errors"], serde_json::json!({"401": 10}), "{json}");
    server.stop().await;
}

/// A friends-only server lets a user group only friends: `tern bench
/// group` befriends the members when the server says so, then measures as
/// on an open one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_befriends_its_members_on_a_friends_only_server() {
    let logic = tern_logic::LogicConfig {
        send_policy: tern_logic::SendPolicy::FriendsOnly,
        ..open_logic()
    };
    let server = Shape::Standalone.start_with(open_connect(), logic).await;
    let addr = server.addr().to_string();
    let json = bench_json(&strings(&[
        "group",
        "--addr",
        &addr,
        "--sizes",
        "3,5",
        "--messages",
        "2",
    ]))
    .await;
    assert_eq!(json["errors"], serde_json::json!({}), "{json}");
    for (g, size) in json["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .zip([3u64, 5])
    {
        assert_eq!(g["deliveries"].as_u64(), Some(2 * (size - 1)), "{g}");
        assert_eq!(g["missing"].as_u64(), Some(0), "{g}");
    }
    server.stop().await;
}
