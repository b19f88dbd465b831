//! No secret reaches the logs: the binary runs at debug level while a
//! client registers, fails a login, logs in, resumes with its token, and an
//! admin changes a password with right and wrong tokens; afterwards no
//! password, device token or admin token appears anywhere in what the
//! process printed.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Command, Stdio};

use crate::common::http::call;
use crate::common::*;

const NEW_PASSWORD: &str = "admin-set-secret-pass";
const WRONG_PASSWORD: &str = "wrong-secret-pass-42";
const WRONG_ADMIN_TOKEN: &str = "wrong-admin-token-zzz";

#[tokio::test]
async fn passwords_and_tokens_never_reach_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tern"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path())
        .args(["--admin-token", ADMIN_TOKEN])
        .env("TERN_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tern");
    let mut stderr = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut all = String::new();
        let _ = stderr.read_to_string(&mut all);
        all
    });
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = String::new();
    let (mut client_addr, mut http_addr) = (None, None);
    while client_addr.is_none() || http_addr.is_none() {
        let line = stdout.next().expect("tern printed its addresses").unwrap();
        let addr = |rest: &str| rest.split_whitespace().next()?.parse::<SocketAddr>().ok();
        if let Some(rest) = line.trim().strip_prefix("clients (TCP):") {
            client_addr = addr(rest);
        } else if let Some(rest) = line.trim().strip_prefix("http:") {
            http_addr = addr(rest);
        }
        printed.push_str(&line);
        printed.push('\n');
    }
    let stdout = std::thread::spawn(move || {
        let mut rest = String::new();
        for line in stdout.map_while(Result::ok) {
            rest.push_str(&line);
            rest.push('\n');
        }
        rest
    });
    let (addr, http) = (client_addr.unwrap(), http_addr.unwrap());

    let ann = register(addr, "ann").await;
    let (c, _events) = tern_client::Client::connect(addr).await.unwrap();
    assert!(c.login("ann", WRONG_PASSWORD, None).await.is_err());
    let again = login(addr, "ann").await;
    let (_resumed, _session) = sign_in(addr, &ann.creds()).await;
    let path = format!("/api/v1/users/{}/password", ann.user_id);
    let body = serde_json::json!({ "password": NEW_PASSWORD });
    let (status, _, _) = call(http, "PUT", &path, Some(body)).await;
    assert_eq!(status, 204);
    let (status, _) = call_with_token(http, WRONG_ADMIN_TOKEN).await;
    assert_eq!(status, 401);

    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let logs = format!(
        "{printed}{}{}",
        stdout.join().unwrap(),
        stderr.join().unwrap()
    );
    assert!(
        logs.contains("DEBUG"),
        "the server logged at debug level: {logs}"
    );
    for secret in [
        PASSWORD,
        NEW_PASSWORD,
        WRONG_PASSWORD,
        ADMIN_TOKEN,
        WRONG_ADMIN_TOKEN,
        ann.token.as_str(),
        again.token.as_str(),
    ] {
        assert!(
            !logs.contains(secret),
            "{secret:?} is in the server's output:\n{logs}"
        );
    }
}

/// GET /api/v1/users with `token` as the bearer token.
async fn call_with_token(http: SocketAddr, token: &str) -> (u16, String) {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::rt::TokioIo;
    let stream = tokio::net::TcpStream::connect(http).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::builder()
        .uri("/api/v1/users")
        .header("host", http.to_string())
        .header("authorization", format!("Bearer {token}"))
        .body(Empty::<bytes::Bytes>::new())
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}
