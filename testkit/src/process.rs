//! Child servers that cannot outlive the test process.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (bound and released; servers bind it next).
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding 127.0.0.1:0 for a free port")
}

/// A free loopback port below the kernel's ephemeral range, for a server
/// that must come back on the same port after a restart. A port from the
/// ephemeral range (what binding port 0 gives) can become the local port
/// of some outgoing connection while the server is down, and the restart
/// would then fail to bind.
pub fn restartable_port() -> u16 {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let floor = low.saturating_sub(20_000).max(1024);
    for _ in 0..1000 {
        let port = rand::Rng::gen_range(&mut rand::thread_rng(), floor..low);
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {floor}..{low}");
}

/// Fails with the package that provides `binary` when it is missing.
pub(crate) fn require(binary: &str, package: &str) -> Result<PathBuf, String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/bin".into(), "/usr/local/bin".into()])
        .map(|dir| dir.join(binary))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            format!("`{binary}` not found: install the Debian package `{package}` (scripts/test.sh does: apt-get install {package})")
        })
}

/// A fresh directory for one server of this process; directories left by
/// earlier test processes that are gone are removed first.
pub(crate) fn data_dir(kind: &str) -> PathBuf {
    let base = std::env::temp_dir();
    let prefix = format!("tern-testkit-{kind}-");
    if let Ok(entries) = std::fs::read_dir(&base) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            // Only `<prefix><pid>`: another kind's prefix may extend this
            // one (`mariadb-` and `mariadb-private0-`).
            let pid = name
                .strip_prefix(&prefix)
                .and_then(|p| p.parse::<u32>().ok());
            if let Some(pid) = pid {
                if !Path::new("/proc").join(pid.to_string()).exists() {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
    }
    let dir = base.join(format!("{prefix}{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating a test server directory");
    dir
}

/// Spawns `cmd` from a thread that lives as long as the child, with the
/// kernel told to kill the child when that thread (so the process) exits.
/// Returns the child's pid; the thread reaps the child when it exits.
pub(crate) fn spawn_tied(mut cmd: Command) -> Result<u32, String> {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("testkit-server".into())
        .spawn(move || {
            use std::os::unix::process::CommandExt;
            // SAFETY: prctl is async-signal-safe and touches no memory of ours.
            #[allow(unsafe_code)]
            unsafe {
                cmd.pre_exec(|| {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            match cmd.spawn() {
                Ok(mut child) => {
                    let _ = tx.send(Ok(child.id()));
                    // The child dies when this thread does: keep it until the child exits.
                    let _ = child.wait();
                }
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                }
            }
        })
        .map_err(|e| e.to_string())?;
    rx.recv().map_err(|e| e.to_string())?
}

/// Kills a child started by [`spawn_tied`] at once (SIGKILL).
pub(crate) fn kill(pid: u32) {
    // SAFETY: kill has no memory preconditions; a stale pid is at worst ESRCH
    // because our waiting thread reaps the child only after it died.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGKILL);
    }
}

/// Waits until nothing accepts TCP connections on `port` any more.
pub(crate) fn wait_for_port_closed(port: u16, within: Duration) -> Result<(), String> {
    let until = Instant::now() + within;
    while Instant::now() < until {
        if TcpStream::connect(("127.0.0.1", port)).is_err() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(format!("127.0.0.1:{port} still listening after {within:?}"))
}

/// Waits until something accepts TCP connections on `port`.
pub(crate) fn wait_for_port(port: u16, within: Duration) -> Result<(), String> {
    let until = Instant::now() + within;
    while Instant::now() < until {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!(
        "nothing listened on 127.0.0.1:{port} within {within:?}"
    ))
}
