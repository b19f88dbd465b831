//! Flags reach the configs; bad values and combinations are refused.

use super::*;

/// `tern logic` on a bus and an in-memory database, with `extra` flags.
fn logic_args(extra: &[&str]) -> LogicArgs {
    let argv = ["tern", "logic", "--nats", "nats://127.0.0.1:4222"];
    let db = ["--database-url", "sqlite::memory:"];
    let cli = Cli::try_parse_from(argv.iter().chain(&db).chain(extra)).unwrap();
    let Some(Command::Logic(l)) = cli.command else {
        panic!("logic")
    };
    l
}

#[test]
fn no_arguments_means_serve_with_defaults() {
    let cli = Cli::try_parse_from(["tern"]).unwrap();
    assert!(cli.command.is_none());
    assert_eq!(cli.serve.listen, "127.0.0.1:7400");
    assert_eq!(cli.serve.data_dir, PathBuf::from("./data"));
    cli.serve.validate().unwrap();
    let c = cli.serve.connect_config();
    assert_eq!(c.heartbeat_interval, Duration::from_secs(30));
    assert_eq!(c.max_frame_len, 256 * 1024);
    assert_eq!(c.write_queue_bytes, 1024 * 1024);
}

#[test]
fn the_output_byte_bound_is_a_flag_of_serve_and_connect() {
    let cli = Cli::try_parse_from(["tern", "--write-queue-bytes", "65536"]).unwrap();
    assert_eq!(cli.serve.connect_config().write_queue_bytes, 65536);
    let cli = Cli::try_parse_from([
        "tern",
        "connect",
        "--nats",
        "nats://127.0.0.1:4222",
        "--write-queue-bytes",
        "2097152",
    ])
    .unwrap();
    let Some(Command::Connect(c)) = cli.command else {
        panic!("connect")
    };
    assert_eq!(
        c.connect_config("n".into()).write_queue_bytes,
        2 * 1024 * 1024
    );
    assert!(
        Cli::try_parse_from(["tern", "--write-queue-bytes", "100"]).is_err(),
        "below one small page"
    );
}

#[test]
fn flags_reach_the_configs_and_bad_values_are_refused() {
    let cli = Cli::try_parse_from([
        "tern",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--heartbeat-interval-secs",
        "5",
    ])
    .unwrap();
    let Some(Command::Serve(args)) = cli.command else {
        panic!("serve")
    };
    assert_eq!(
        args.connect_config().heartbeat_interval,
        Duration::from_secs(5)
    );
    assert!(Cli::try_parse_from(["tern", "--heartbeat-interval-secs", "0"]).is_err());
    let cli = Cli::try_parse_from([
        "tern",
        "--max-frame-len",
        "8192",
        "--max-content-len",
        "8000",
    ])
    .unwrap();
    assert!(cli.serve.validate().is_err());
}

#[test]
fn the_batch_linger_is_a_flag_of_serve_and_logic() {
    let cli = Cli::try_parse_from(["tern"]).unwrap();
    assert_eq!(
        cli.serve.logic_config().unwrap().batch_linger,
        Duration::from_millis(1)
    );
    let cli = Cli::try_parse_from(["tern", "--batch-linger-us", "0"]).unwrap();
    assert_eq!(
        cli.serve.logic_config().unwrap().batch_linger,
        Duration::ZERO
    );
    let args = logic_args(&["--batch-linger-us", "250"]);
    assert_eq!(
        args.logic_config().unwrap().batch_linger,
        Duration::from_micros(250)
    );
    assert!(Cli::try_parse_from(["tern", "--batch-linger-us", "100001"]).is_err());
}

#[test]
fn cluster_subcommands_take_their_urls_and_make_unique_node_ids() {
    let cli = Cli::try_parse_from([
        "tern",
        "connect",
        "--nats",
        "nats://127.0.0.1:4222",
        "--alive-interval-ms",
        "250",
    ])
    .unwrap();
    let Some(Command::Connect(c)) = cli.command else {
        panic!("connect")
    };
    let (a, b) = (c.node_id().unwrap(), c.node_id().unwrap());
    assert_ne!(a, b, "each start gets its own id");
    assert!(a.starts_with("connect-"));
    assert_eq!(
        c.connect_config(a).alive_interval,
        Duration::from_millis(250)
    );

    let cli = Cli::try_parse_from([
        "tern",
        "logic",
        "--nats",
        "nats://127.0.0.1:4222",
        "--database-url",
        "mysql://root@127.0.0.1/tern",
        "--redis-url",
        "redis://127.0.0.1:6379",
        "--http",
        "127.0.0.1:0",
    ])
    .unwrap();
    let Some(Command::Logic(l)) = cli.command else {
        panic!("logic")
    };
    l.validate().unwrap();
    assert_eq!(l.redis_url.as_deref(), Some("redis://127.0.0.1:6379"));
    assert_eq!(l.http_listen, "127.0.0.1:0");

    assert!(
        Cli::try_parse_from(["tern", "logic", "--nats", "nats://x"]).is_err(),
        "logic needs a database"
    );
    let cli = Cli::try_parse_from(["tern", "connect", "--nats", "n", "--node-id", "a.b"]).unwrap();
    let Some(Command::Connect(c)) = cli.command else {
        panic!("connect")
    };
    assert!(c.node_id().is_err(), "a dot would split the NATS subject");
}

#[test]
fn every_http_port_is_bounded_and_shuts_down_within_the_drain_grace() {
    let cli = Cli::try_parse_from(["tern", "--drain-grace-secs", "3"]).unwrap();
    let h = cli.serve.http_config();
    assert_eq!(h.header_timeout, Duration::from_secs(10));
    assert_eq!(h.idle_timeout, Duration::from_secs(60));
    assert_eq!(h.max_connections, 1000);
    assert_eq!(h.shutdown_grace, Duration::from_secs(3));

    let cli = Cli::try_parse_from([
        "tern",
        "connect",
        "--nats",
        "n",
        "--http-header-timeout-secs",
        "2",
        "--http-max-connections",
        "5",
    ])
    .unwrap();
    let Some(Command::Connect(c)) = cli.command else {
        panic!("connect")
    };
    let h = c.http_config();
    assert_eq!(h.header_timeout, Duration::from_secs(2));
    assert_eq!(
        (h.max_connections, h.shutdown_grace),
        (5, Duration::from_secs(10))
    );

    let l = logic_args(&["--drain-grace-secs", "1", "--http-idle-timeout-secs", "5"]);
    let h = l.http_config();
    assert_eq!(h.idle_timeout, Duration::from_secs(5));
    assert_eq!(h.shutdown_grace, Duration::from_secs(1));

    assert!(Cli::try_parse_from(["tern", "--http-header-timeout-secs", "0"]).is_err());
    assert!(Cli::try_parse_from(["tern", "--http-max-connections", "0"]).is_err());
}

#[test]
fn push_is_off_by_default_and_its_settings_are_checked_at_start() {
    let cli = Cli::try_parse_from(["tern"]).unwrap();
    let cfg = cli.serve.logic_config().unwrap();
    assert!(!cfg.push.enabled());
    assert!(
        !cfg.push.preview,
        "no message text on a lock screen by default"
    );

    let cli = Cli::try_parse_from([
        "tern",
        "--push-webhook-url",
        "http://127.0.0.1:9/push",
        "--push-webhook-secret",
        "s3cret",
        "--push-preview",
    ])
    .unwrap();
    let cfg = cli.serve.logic_config().unwrap();
    assert!(cfg.push.enabled() && cfg.push.preview);

    let no_secret = Cli::try_parse_from(["tern", "--push-webhook-url", "http://127.0.0.1:9/"]);
    let err = no_secret.unwrap().serve.logic_config().unwrap_err();
    assert!(
        format!("{err:#}").contains("--push-webhook-secret"),
        "{err:#}"
    );

    let missing = Cli::try_parse_from(["tern", "--apns-key-file", "/nonexistent/key.p8"]);
    let err = missing.unwrap().serve.logic_config().unwrap_err();
    assert!(format!("{err:#}").contains("--apns-key-file"), "{err:#}");

    let dir = tempfile::tempdir().unwrap();
    let sa = dir.path().join("sa.json");
    std::fs::write(&sa, "{\"project_id\": 1}").unwrap();
    let bad = Cli::try_parse_from(["tern", "--fcm-service-account", sa.to_str().unwrap()]);
    let err = bad.unwrap().serve.logic_config().unwrap_err();
    assert!(
        format!("{err:#}").contains("--fcm-service-account"),
        "{err:#}"
    );
}

#[test]
fn the_before_send_hook_is_off_by_default_and_its_flags_reach_serve_and_logic() {
    let cli = Cli::try_parse_from(["tern"]).unwrap();
    assert!(cli.serve.logic_config().unwrap().before_send.is_none());

    let cli = Cli::try_parse_from([
        "tern",
        "--before-send-url",
        "http://127.0.0.1:9/hook",
        "--before-send-secret",
        "s3cret",
    ])
    .unwrap();
    let hook = cli.serve.logic_config().unwrap().before_send.unwrap();
    assert_eq!(hook.url, "http://127.0.0.1:9/hook");
    assert_eq!(hook.secret, "s3cret");
    assert_eq!(hook.timeout, Duration::from_millis(1000));
    assert_eq!(hook.fail, tern_logic::FailPolicy::Open);
    assert!(!hook.admin);
    assert!(
        !format!("{hook:?}").contains("s3cret"),
        "the secret stays out of Debug"
    );

    let l = logic_args(&[
        "--before-send-url",
        "https://moderation.example/hook",
        "--before-send-secret",
        "k",
        "--before-send-timeout-ms",
        "250",
        "--before-send-fail",
        "closed",
        "--before-send-admin",
    ]);
    let hook = l.logic_config().unwrap().before_send.unwrap();
    assert_eq!(hook.timeout, Duration::from_millis(250));
    assert_eq!(hook.fail, tern_logic::FailPolicy::Closed);
    assert!(hook.admin);
}

#[test]
fn bad_before_send_settings_are_refused_at_start() {
    let no_secret = Cli::try_parse_from(["tern", "--before-send-url", "http://127.0.0.1:9/"]);
    let err = no_secret.unwrap().serve.logic_config().unwrap_err();
    assert!(
        format!("{err:#}").contains("--before-send-secret"),
        "{err:#}"
    );
    let not_http = Cli::try_parse_from([
        "tern",
        "--before-send-url",
        "ftp://127.0.0.1/",
        "--before-send-secret",
        "k",
    ]);
    let err = not_http.unwrap().serve.logic_config().unwrap_err();
    assert!(format!("{err:#}").contains("--before-send-url"), "{err:#}");
    for timeout in ["9", "30001"] {
        assert!(
            Cli::try_parse_from(["tern", "--before-send-timeout-ms", timeout]).is_err(),
            "{timeout}"
        );
    }
    assert!(Cli::try_parse_from(["tern", "--before-send-fail", "maybe"]).is_err());
    let past_connect = Cli::try_parse_from([
        "tern",
        "--before-send-url",
        "http://127.0.0.1:9/",
        "--before-send-secret",
        "k",
        "--before-send-timeout-ms",
        "5000",
    ]);
    let err = past_connect.unwrap().serve.validate().unwrap_err();
    assert!(
        format!("{err:#}").contains("--request-timeout-secs"),
        "{err:#}"
    );
}

#[test]
fn webhook_and_push_secrets_stay_out_of_debug_output() {
    let cli = Cli::try_parse_from([
        "tern",
        "--push-webhook-url",
        "http://127.0.0.1:9/push",
        "--push-webhook-secret",
        "push-s3cret-xyz",
        "--after-send-url",
        "http://127.0.0.1:9/after",
        "--after-send-secret",
        "after-s3cret-xyz",
        "--before-send-url",
        "http://127.0.0.1:9/before",
        "--before-send-secret",
        "before-s3cret-xyz",
    ])
    .unwrap();
    let shown = format!("{:?} {:?}", cli.serve, cli.serve.logic_config().unwrap());
    for secret in ["push-s3cret-xyz", "after-s3cret-xyz", "before-s3cret-xyz"] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert!(shown.contains("127.0.0.1:9/after"), "the URLs are shown");
}
