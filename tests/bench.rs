//! `tern bench` checks itself: a short run of each scenario against a
//! standalone server finishes, reports non-zero rates, and finds every
//! message where it should be.

mod common;

use std::time::Duration;

use common::*;

/// Runs `tern bench <args>`; its stdout, after checking it succeeded.
async fn bench(args: &[String]) -> String {
    let (ok, out) = bench_result(args).await;
    assert!(ok, "tern bench {args:?} failed:\n{out}");
    out
}

/// Runs `tern bench <args>`: whether it succeeded, and its stdout and stderr.
async fn bench_result(args: &[String]) -> (bool, String) {
    let out = tokio::time::timeout(
        Duration::from_secs(300),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_tern"))
            .arg("bench")
            .args(args)
            .env("TERN_LOG", "warn")
            .output(),
    )
    .await
    .expect("the bench finishes in time")
    .expect("run tern bench");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The number after `label` on its line, e.g. `stored: 1234 (56 /s)`.
fn number(out: &str, label: &str) -> f64 {
    let line = out
        .lines()
        .find(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("no {label:?} line in:\n{out}"));
    line[label.len()..]
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .find(|w| !w.is_empty())
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no number in {line:?}"))
}

/// The one JSON object a `--json` run printed.
fn json_of(out: &str) -> serde_json::Value {
    out.lines()
        .find(|l| l.starts_with('{'))
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no JSON object in:\n{out}"))
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

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

    let out = bench(&strings(&[
        "group",
        "--addr",
        &addr,
        "--sizes",
        "3,5",
        "--messages",
        "2",
        "--json",
    ]))
    .await;
    let json = json_of(&out);
    let groups = json["groups"].as_array().expect("groups");
    assert_eq!(groups.len(), 2, "{json}");
    for (g, size) in groups.iter().zip([3u64, 5]) {
        assert_eq!(g["size"].as_u64(), Some(size));
        assert_eq!(g["deliveries"].as_u64(), Some(2 * (size - 1)), "{g}");
        assert_eq!(g["missing"].as_u64(), Some(0));
    }

    let out = bench(&strings(&[
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
        "--json",
    ]))
    .await;
    let json = json_of(&out);
    assert_eq!(json["list_length"].as_u64(), Some(120), "{json}");
    assert_eq!(json["every_seq_once_in_order"].as_bool(), Some(true));
    for at in ["start", "middle", "end"] {
        assert_eq!(json["one_page"][at]["n"].as_u64(), Some(2), "{json}");
    }

    let pid = std::process::id().to_string();
    let out = bench(&strings(&[
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
    ]))
    .await;
    assert_eq!(number(&out, "connections:"), 20.0, "{out}");

    let out = bench(&strings(&[
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
    assert!(out.contains("deliveries:        60 of 60"), "{out}");

    let out = bench(&strings(&[
        "http",
        "--http",
        &http,
        "--admin-token",
        ADMIN_TOKEN,
        "--path",
        "/api/v1/rooms",
        "--connections",
        "2",
        "--duration-secs",
        "1",
    ]))
    .await;
    assert!(number(&out, "requests:") > 0.0, "{out}");
    assert_eq!(number(&out, "non-2xx:"), 0.0, "{out}");
    server.stop().await;
}

/// The loss check trusts the lists, not the pushes: with every push dropped
/// nothing is lost (devices catch up by SYNC); with SENDs answered but never
/// stored, the bench reports the loss and fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_direct_bench_counts_what_the_lists_hold() {
    use common::proxy::{Fault, Proxy};
    let server = Shape::Standalone.start().await;

    let lossy_pushes = Proxy::with_fault(server.addr(), Fault::DropPushes).await;
    let addr = lossy_pushes.addr.to_string();
    let out = bench(&strings(&[
        "direct",
        "--addr",
        &addr,
        "--users",
        "3",
        "--duration-secs",
        "1",
    ]))
    .await;
    assert!(number(&out, "stored:") > 0.0, "{out}");
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
