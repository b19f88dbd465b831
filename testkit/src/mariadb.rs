//! MariaDB for tests: one server per test process, shared by its tests, each
//! test getting its own database ([`mysql_database`]); and, for the tests
//! that stop, restart or switch a server read-only, a private server of
//! their own ([`mariadb_server`]).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use sqlx::{Connection, Executor, MySqlConnection};

use crate::process::{
    data_dir, free_port, kill, require, restartable_port, spawn_tied, wait_for_port,
    wait_for_port_closed,
};

const START_WITHIN: Duration = Duration::from_secs(60);

struct Shared {
    port: u16,
}

static SHARED: OnceLock<Result<Shared, String>> = OnceLock::new();
static NEXT_DB: AtomicU32 = AtomicU32::new(0);
static NEXT_PRIVATE: AtomicU32 = AtomicU32::new(0);

/// The URL of a new, empty database on this process's MariaDB server,
/// starting the server on first use. Panics with a clear message when the
/// server cannot be started.
pub async fn mysql_database() -> String {
    let server = match SHARED.get_or_init(start_shared) {
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

fn start_shared() -> Result<Shared, String> {
    let dir = data_dir("mariadb");
    install(&dir)?;
    let port = free_port();
    // The shared server checks no privileges: every test is root.
    spawn(&dir, port, false)?;
    Ok(Shared { port })
}

/// A MariaDB server of one test, with privileges checked (so that the
/// server's read_only switch applies to [`MariaDb::url`]'s user, as it
/// would to an application's), killed when dropped.
pub struct MariaDb {
    dir: PathBuf,
    port: u16,
    pid: Option<u32>,
}

/// Starts a private MariaDB server on a port it can be restarted on, with
/// the database `tern` and the user `tern` (password `tern`, all privileges
/// on that database and nothing else). Panics with a clear message when the
/// server cannot be started.
pub async fn mariadb_server() -> MariaDb {
    let start = || -> Result<MariaDb, String> {
        let base = data_dir(&format!(
            "mariadb-private{}",
            NEXT_PRIVATE.fetch_add(1, Ordering::Relaxed)
        ));
        install(&base)?;
        let port = restartable_port();
        let pid = spawn(&base, port, true)?;
        Ok(MariaDb {
            dir: base,
            port,
            pid: Some(pid),
        })
    };
    let server = tokio::task::spawn_blocking(start)
        .await
        .expect("starting MariaDB")
        .unwrap_or_else(|e| panic!("MariaDB for tests: {e}"));
    let mut root = server.root().await;
    for sql in [
        "CREATE DATABASE tern",
        "CREATE USER 'tern'@'%' IDENTIFIED BY 'tern'",
        "GRANT ALL ON tern.* TO 'tern'@'%'",
    ] {
        root.execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    server
}

impl MariaDb {
    /// The loopback port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `mysql://tern:tern@127.0.0.1:<port>/tern`.
    pub fn url(&self) -> String {
        format!("mysql://tern:tern@127.0.0.1:{}/tern", self.port)
    }

    /// A connection as root, over the server's Unix socket (root may only
    /// sign in locally).
    pub async fn root(&self) -> MySqlConnection {
        let url = format!(
            "mysql://root@localhost/?socket={}",
            self.dir.join("mysqld.sock").display()
        );
        MySqlConnection::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("connecting to the test MariaDB as root: {e}"))
    }

    /// Switches the server's read_only on or off.
    pub async fn set_read_only(&self, on: bool) {
        let sql = format!("SET GLOBAL read_only = {}", u8::from(on));
        self.root()
            .await
            .execute(sql.as_str())
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Kills the server at once (SIGKILL), as a crash would; returns once
    /// its port is closed.
    pub async fn kill(&mut self) {
        if let Some(pid) = self.pid.take() {
            kill(pid);
            let port = self.port;
            tokio::task::spawn_blocking(move || wait_for_port_closed(port, START_WITHIN))
                .await
                .expect("waiting for MariaDB to die")
                .unwrap_or_else(|e| panic!("MariaDB did not die: {e}"));
        }
    }

    /// Starts the server again on the same port and data after
    /// [`MariaDb::kill`] (crash recovery included); returns once it listens.
    pub async fn restart(&mut self) {
        self.kill().await;
        let (dir, port) = (self.dir.clone(), self.port);
        let pid = tokio::task::spawn_blocking(move || spawn(&dir, port, true))
            .await
            .expect("restarting MariaDB")
            .unwrap_or_else(|e| panic!("restarting MariaDB: {e}"));
        self.pid = Some(pid);
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        if let Some(pid) = self.pid.take() {
            kill(pid);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn as_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    #[allow(unsafe_code)]
    let euid = unsafe { libc::geteuid() };
    euid == 0
}

/// Makes a data directory under `dir/data`.
fn install(dir: &Path) -> Result<(), String> {
    let install = require("mariadb-install-db", "mariadb-server")?;
    let log = |name: &str| -> Result<std::fs::File, String> {
        std::fs::File::create(dir.join(name)).map_err(|e| e.to_string())
    };
    let mut args: Vec<String> = vec![
        "--no-defaults".into(),
        format!("--datadir={}", dir.join("data").display()),
        "--auth-root-authentication-method=normal".into(),
        "--skip-test-db".into(),
        "--skip-name-resolve".into(),
    ];
    // mariadbd refuses to run as root unless told to (CI runs as root).
    if as_root() {
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
    Ok(())
}

/// Starts mariadbd on `dir`'s data and `port`; returns once it listens.
fn spawn(dir: &Path, port: u16, check_privileges: bool) -> Result<u32, String> {
    let mariadbd = require("mariadbd", "mariadb-server")?;
    let mut cmd = Command::new(&mariadbd);
    cmd.arg("--no-defaults")
        .arg(format!("--datadir={}", dir.join("data").display()))
        .arg(format!("--port={port}"))
        .arg("--bind-address=127.0.0.1")
        .arg(format!("--socket={}", dir.join("mysqld.sock").display()))
        .arg(format!("--pid-file={}", dir.join("mysqld.pid").display()))
        .arg(format!("--log-error={}", dir.join("error.log").display()))
        // Tests need correctness, not durability or speed of a real deployment.
        .args([
            "--skip-log-bin",
            "--innodb-buffer-pool-size=128M",
            "--innodb-flush-log-at-trx-commit=2",
            "--max-connections=1000",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if !check_privileges {
        cmd.arg("--skip-grant-tables");
    }
    if as_root() {
        cmd.arg("--user=root");
    }
    let pid = spawn_tied(cmd)?;
    wait_for_port(port, START_WITHIN).map_err(|e| {
        let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(10).collect();
        format!(
            "{e}; mariadbd error log ends:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
    })?;
    Ok(pid)
}
