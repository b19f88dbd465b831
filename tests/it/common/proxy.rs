//! A TCP proxy in front of a server whose connections a test can cut at
//! once, the way a dead network or a killed socket looks to a client; or
//! that breaks the server in one way ([`Fault`]) to prove a checker fails.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures::{SinkExt, StreamExt};
use prost::Message as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio_util::codec::{FramedRead, FramedWrite};

use tern_client::proto::{Reply, Request, SendReply};
use tern_public::{Frame, FrameCodec, FrameType};

/// What the proxy does to the traffic it relays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Relays every byte.
    None,
    /// Never lets a PUSH reach the client (the list still has everything).
    DropPushes,
    /// Answers every SEND OK itself and never forwards it: nothing is stored.
    FakeSends,
}

pub struct Proxy {
    pub addr: SocketAddr,
    cut: broadcast::Sender<()>,
    accept: JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        let _ = self.cut.send(());
    }
}

impl Proxy {
    /// Listens on a free loopback port and relays every connection to `target`.
    pub async fn start(target: SocketAddr) -> Proxy {
        Proxy::with_fault(target, Fault::None).await
    }

    /// Like [`Proxy::start`], breaking the traffic as `fault` says.
    pub async fn with_fault(target: SocketAddr, fault: Fault) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (cut, _) = broadcast::channel(16);
        let cuts = cut.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut stop = cuts.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    if fault == Fault::None {
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                            _ = stop.recv() => {}
                        }
                    } else {
                        tokio::select! {
                            () = relay_frames(inbound, outbound, fault) => {}
                            _ = stop.recv() => {}
                        }
                    }
                    // Both sockets drop here: each side sees its peer vanish.
                });
            }
        });
        Proxy { addr, cut, accept }
    }

    /// Drops every relayed connection now; new ones are still relayed.
    pub fn cut(&self) {
        let _ = self.cut.send(());
    }
}

/// Relays frame by frame, applying `fault`.
async fn relay_frames(inbound: TcpStream, outbound: TcpStream, fault: Fault) {
    let (client_rd, client_wr) = inbound.into_split();
    let (server_rd, server_wr) = outbound.into_split();
    let mut from_client = FramedRead::new(client_rd, FrameCodec::default());
    let mut from_server = FramedRead::new(server_rd, FrameCodec::default());
    let mut to_server = FramedWrite::new(server_wr, FrameCodec::default());
    let mut to_client = FramedWrite::new(client_wr, FrameCodec::default());
    let (tx, mut rx) = mpsc::channel::<Frame>(1024);
    let fake_seq = Arc::new(AtomicU64::new(1_000_000));
    let writer = async move {
        while let Some(f) = rx.recv().await {
            if to_client.send(f).await.is_err() {
                return;
            }
        }
    };
    let up_tx = tx.clone();
    let up = async move {
        while let Some(Ok(f)) = from_client.next().await {
            if fault == Fault::FakeSends && f.ty == FrameType::Send.as_u16() {
                let Ok(req) = Request::decode(f.value) else {
                    return;
                };
                let body = SendReply {
                    message_id: rand::random::<[u8; 16]>().to_vec().into(),
                    seq: fake_seq.fetch_add(1, Ordering::Relaxed),
                    created_at_ms: 0,
                };
                let reply = Reply {
                    request_id: req.request_id,
                    code: 0,
                    message: String::new(),
                    payload: body.encode_to_vec().into(),
                    retry_after_ms: 0,
                };
                let frame = Frame::from_message(FrameType::Reply.as_u16(), &reply);
                if up_tx.send(frame).await.is_err() {
                    return;
                }
            } else if to_server.send(f).await.is_err() {
                return;
            }
        }
    };
    let down = async move {
        while let Some(Ok(f)) = from_server.next().await {
            if fault == Fault::DropPushes && f.ty == FrameType::Push.as_u16() {
                continue;
            }
            if tx.send(f).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        () = writer => {}
        () = up => {}
        () = down => {}
    }
}
