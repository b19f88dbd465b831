//! `tern`: parse the command line, build, run. See `tern --help`.

use anyhow::Context;
use clap::Parser;
use tokio::net::TcpListener;

use tern::cli::{Cli, Command, ServeArgs};
use tern_logic::store::Store;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve(cli.serve)) {
        Command::Serve(args) => serve(args).await,
        Command::Bench(args) => tern::bench::run(args).await,
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    tern_public::telemetry::init(&args.log);
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
    let storage = match &args.database_url {
        Some(_) => "the database at --database-url".to_owned(),
        None => args.data_dir.join("tern.db").display().to_string(),
    };
    println!("tern standalone");
    println!("  clients (TCP):  {addr}");
    println!("  storage:        {storage}");
    println!("  stop with ctrl-c (clients are told to reconnect, then the server exits)");
    tern::standalone::serve(
        listener,
        store,
        args.connect_config(),
        args.logic_config(),
        shutdown_signal(),
    )
    .await
}

/// Resolves on ctrl-c or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutdown requested; draining");
}
