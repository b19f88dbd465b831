//! `tern`: parse the command line, build, run. See `tern --help`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tokio::net::TcpListener;

use tern::cli::{Cli, Command, ConnectArgs, LogicArgs, ServeArgs};
use tern::cluster::{self, LogicBackends, LogicNode};
use tern::standalone::Standalone;
use tern_logic::store::Store;
use tern_public::bus::{NatsBus, NatsOptions};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve(cli.serve)) {
        Command::Serve(args) => serve(args).await,
        Command::Connect(args) => connect(args).await,
        Command::Logic(args) => logic(args).await,
        Command::Bench(args) => tern::bench::run(args).await,
        Command::Chat(args) => tern::chat::run(args).await,
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    tern_public::telemetry::init(&args.common.log);
    args.validate()?;
    let store = match &args.database_url {
        Some(url) => Store::connect(url).await,
        None => Store::open_sqlite_dir(&args.data_dir).await,
    }
    .context("opening the database")?;
    let listener = TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("binding the client listener on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let http = TcpListener::bind(&args.http_listen)
        .await
        .with_context(|| format!("binding the HTTP listener on {}", args.http_listen))?;
    let http_addr = http.local_addr()?;
    let storage = match &args.database_url {
        Some(_) => "the database at --database-url".to_owned(),
        None => args.data_dir.join("tern.db").display().to_string(),
    };
    let (token, token_source) = match &args.admin_token {
        Some(t) => (
            t.clone(),
            "from --admin-token / TERN_ADMIN_TOKEN".to_owned(),
        ),
        None => {
            let (t, made) = tern::standalone::admin_token_in(&args.data_dir)?;
            let path = args.data_dir.join("admin-token").display().to_string();
            (
                t,
                if made {
                    format!("new, in {path}")
                } else {
                    format!("in {path}")
                },
            )
        }
    };
    let mut connect_cfg = args.connect_config();
    connect_cfg.tls = args.tls.load()?;
    let scheme = reload_on_sighup(&connect_cfg);
    let server = Standalone::start(store, connect_cfg, args.logic_config()?, Some(token))
        .await?
        .with_http(args.http_config());
    let stop = shutdown_signal();
    println!("tern standalone");
    println!("  clients ({scheme}):  {addr}");
    println!("  http:           {http_addr} (admin API under /api/v1, /healthz, /readyz)");
    println!("  admin token:    {token_source}");
    println!("  storage:        {storage}");
    println!("  stop with ctrl-c (clients are told to reconnect, then the server exits)");
    server.run(listener, Some(http), stop).await
}

async fn connect(args: ConnectArgs) -> anyhow::Result<()> {
    tern_public::telemetry::init(&args.common.log);
    let node_id = args.node_id()?;
    let mut cfg = args.connect_config(node_id.clone());
    cfg.tls = args.tls.load()?;
    let scheme = reload_on_sighup(&cfg);
    let bus = NatsBus::connect(NatsOptions {
        url: args.nats_url.clone(),
        name: node_id.clone(),
        op_timeout: cfg.request_timeout,
    })
    .await?;
    cluster::check_bus_limits(&bus, cfg.max_frame_len)?;
    let listener = TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("binding the client listener on {}", args.listen))?;
    let stop = shutdown_signal();
    println!("tern connect {node_id}");
    println!("  clients ({scheme}):  {}", listener.local_addr()?);
    println!("  bus:            {}", args.nats_url);
    let metrics = match &args.metrics_listen {
        Some(addr) => {
            let l = TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding the metrics listener on {addr}"))?;
            println!("  metrics (HTTP): {}", l.local_addr()?);
            Some(l)
        }
        None => None,
    };
    let http = args.http_config();
    cluster::run_connect(listener, metrics, http, cfg, Arc::new(bus), stop).await
}

async fn logic(args: LogicArgs) -> anyhow::Result<()> {
    tern_public::telemetry::init(&args.common.log);
    args.validate()?;
    let name = args
        .node_id
        .clone()
        .unwrap_or_else(|| tern::cli::fresh_node_id("logic"));
    let cfg = args.logic_config()?;
    let backends = LogicBackends::open(
        &args.database_url,
        args.redis_url
            .as_deref()
            .map(|u| (u, args.redis_prefix.as_str())),
        Duration::from_secs(args.member_cache_ttl_secs),
    )
    .await?;
    let bus = NatsBus::connect(NatsOptions {
        url: args.nats_url.clone(),
        name: name.clone(),
        op_timeout: Duration::from_secs(5),
    })
    .await?;
    cluster::check_bus_limits(&bus, cfg.max_frame_len)?;
    let http = TcpListener::bind(&args.http_listen)
        .await
        .with_context(|| format!("binding the HTTP listener on {}", args.http_listen))?;
    let http_addr = http.local_addr()?;
    if args.admin_token.is_none() {
        tracing::warn!("no --admin-token: the admin API answers 401 to every request");
    }
    let node = LogicNode::start(cfg, backends, Arc::new(bus), http, args.admin_token.clone())
        .await?
        .with_http(args.http_config());
    let stop = shutdown_signal();
    // Printed once the node serves: scripts and tests wait for these lines.
    println!("tern logic {name}");
    println!("  http:           {http_addr}");
    println!("  bus:            {}", args.nats_url);
    println!(
        "  presence:       {}",
        args.redis_url
            .as_deref()
            .unwrap_or("in memory (single logic node)")
    );
    node.run(stop).await
}

/// With TLS on, reads the certificate files again at every SIGHUP (a bad
/// file is logged and the old certificate stays). Returns how the client
/// listener speaks: "TLS" or "TCP".
fn reload_on_sighup(cfg: &tern_connect::ConnectConfig) -> &'static str {
    let Some(tls) = cfg.tls.clone() else {
        return "TCP";
    };
    // Listen before the listener opens: SIGHUP's default action is to exit.
    #[cfg(unix)]
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Err(e) => {
            tracing::warn!(error = %e, "no SIGHUP handler; the TLS certificate will not reload")
        }
        Ok(mut hup) => {
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    match tls.reload() {
                        Ok(()) => tracing::info!("TLS certificate reloaded"),
                        Err(e) => {
                            tracing::error!(error = %e, "TLS certificate reload failed; keeping the old one")
                        }
                    }
                }
            });
        }
    }
    "TLS"
}

/// Resolves on ctrl-c or SIGTERM.
/// Resolves at SIGTERM or ctrl-c. The handlers are installed when this is
/// called, not when first awaited: each command calls it before printing
/// the lines scripts and tests wait for, so a SIGTERM sent right after
/// them drains instead of killing the process.
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let (term, int) = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::terminate()).ok(),
            signal(SignalKind::interrupt()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = wait(term) => {}
                () = wait(int) => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutdown requested; draining");
    }
}
