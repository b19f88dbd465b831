//! Running `tern bench` from the tests and reading what it printed.

use std::time::Duration;

/// Runs `tern bench <args>`; its stdout, after checking it succeeded.
pub async fn bench(args: &[String]) -> String {
    let (ok, out) = bench_result(args).await;
    assert!(ok, "tern bench {args:?} failed:\n{out}");
    out
}

/// Runs `tern bench <args>`: whether it succeeded, and its stdout and stderr.
pub async fn bench_result(args: &[String]) -> (bool, String) {
    let out = run_bench(args).await;
    (out.status.success(), text_of(&out))
}

/// Runs `tern bench <args> --json`: whether it succeeded, and the one JSON
/// object that must be all of its stdout (stderr is for progress).
pub async fn bench_json_result(args: &[String]) -> (bool, serde_json::Value) {
    let args: Vec<String> = args.iter().cloned().chain(["--json".into()]).collect();
    let out = run_bench(&args).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json = match stdout.lines().collect::<Vec<_>>()[..] {
        [line] => serde_json::from_str(line).ok(),
        _ => None,
    };
    let json = json.unwrap_or_else(|| {
        panic!(
            "tern bench {args:?}: stdout is not one JSON line:\n{}",
            text_of(&out)
        )
    });
    (out.status.success(), json)
}

/// [`bench_json_result`] of a run that must succeed.
pub async fn bench_json(args: &[String]) -> serde_json::Value {
    let (ok, json) = bench_json_result(args).await;
    assert!(ok, "tern bench {args:?} --json failed: {json}");
    json
}

pub async fn run_bench(args: &[String]) -> std::process::Output {
    tokio::time::timeout(
        Duration::from_secs(300),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_tern"))
            .arg("bench")
            .args(args)
            .env("TERN_LOG", "warn")
            .output(),
    )
    .await
    .expect("the bench finishes in time")
    .expect("run tern bench")
}

pub fn text_of(out: &std::process::Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The number after `label` on its line, e.g. `stored: 1234 (56 /s)`.
pub fn number(out: &str, label: &str) -> f64 {
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
pub fn json_of(out: &str) -> serde_json::Value {
    out.lines()
        .find(|l| l.starts_with('{'))
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no JSON object in:\n{out}"))
}

pub fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}
