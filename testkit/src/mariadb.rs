//! A MariaDB server for the tests of one process.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use sqlx::{Connection, Executor, MySqlConnection};

use crate::process::{data_dir, free_port, require, spawn_tied, wait_for_port};

struct Server {
    port: u16,
}

static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();
static NEXT_DB: AtomicU32 = AtomicU32::new(0);

/// The URL of a new, empty database on this process's MariaDB server,
/// starting the server on first use. Panics with a clear message when the
/// server cannot be started.
pub async fn mysql_database() -> String {
    let server = match SERVER.get_or_init(start) {
        Ok(s) => s,
        Err(e) => panic!("MariaDB for tests: {e}"),
    };
    let name = format!(
        "t{}_{}_{}",
        std::process::id(),
        NEXT_DB.fetch_add(1, Ordering::Relaxed),
        rand::random::<u16>()
    );
    let admin = format!("mysql://root@127.0.0.1:{}/", server.port);
    let mut conn = MySqlConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("connecting to the test MariaDB: {e}"));
    conn.execute(format!("CREATE DATABASE `{name}`").as_str())
        .await
        .unwrap_or_else(|e| panic!("creating test database {name}: {e}"));
    format!("mysql://root@127.0.0.1:{}/{name}", server.port)
}

fn start() -> Result<Server, String> {
    let install = require("mariadb-install-db", "mariadb-server")?;
    let mariadbd = require("mariadbd", "mariadb-server")?;
    let dir = data_dir("mariadb");
    let data = dir.join("data");
    let log = |name: &str| -> Result<std::fs::File, String> {
        std::fs::File::create(dir.join(name)).map_err(|e| e.to_string())
    };
    // mariadbd refuses to run as root unless told to (CI runs as root).
    // SAFETY: geteuid has no preconditions.
    #[allow(unsafe_code)]
    let as_root = unsafe { libc::geteuid() } == 0;
    let mut args: Vec<String> = vec![
        "--no-defaults".into(),
        format!("--datadir={}", data.display()),
        "--auth-root-authentication-method=normal".into(),
        "--skip-test-db".into(),
        "--skip-name-resolve".into(),
    ];
    if as_root {
        args.push("--user=root".into());
    }
    let status = Command::new(&install)
        .args(&args)
        .stdout(log("install.log")?)
        .stderr(log("install.err")?)
        .status()
        .map_err(|e| format!("running {}: {e}", install.display()))?;
    if !status.success() {
        return Err(format!(
            "mariadb-install-db failed; see {}",
            dir.join("install.err").display()
        ));
    }

    let port = free_port();
    let mut cmd = Command::new(&mariadbd);
    cmd.arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .arg(format!("--port={port}"))
        .arg("--bind-address=127.0.0.1")
        .arg(format!("--socket={}", dir.join("mysqld.sock").display()))
        .arg(format!("--pid-file={}", dir.join("mysqld.pid").display()))
        .arg(format!("--log-error={}", dir.join("error.log").display()))
        // Tests need correctness, not durability or speed of a real deployment.
        .args([
            "--skip-grant-tables",
            "--skip-log-bin",
            "--innodb-buffer-pool-size=128M",
        ])
        .args([
            "--innodb-flush-log-at-trx-commit=2",
            "--max-connections=1000",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if as_root {
        cmd.arg("--user=root");
    }
    spawn_tied(cmd)?;
    wait_for_port(port, Duration::from_secs(60)).map_err(|e| {
        let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(10).collect();
        format!(
            "{e}; mariadbd error log ends:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
    })?;
    Ok(Server { port })
}
