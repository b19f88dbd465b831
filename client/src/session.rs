//! A device that stays signed in: [`Session`] keeps one connection to the
//! first server of a list that takes it, heartbeats, and when the
//! connection drops signs in again (next address, growing backoff) and
//! SYNCs from the last seq it handed to the app. The app sees one stream of
//! [`SessionEvent`]s in which every list entry appears exactly once, in seq
//! order, across any number of drops.
//!
//! ```no_run
//! # async fn demo(creds: tern_client::Credentials) {
//! use tern_client::{Session, SessionEvent, SessionOptions};
//! let addrs = vec!["127.0.0.1:7400".parse().unwrap(), "127.0.0.1:7401".parse().unwrap()];
//! let (session, mut events) = Session::start(addrs, creds, 0, SessionOptions::default());
//! while let Some(event) = events.recv().await {
//!     if let SessionEvent::Message(m) = event {
//!         println!("#{} from {}", m.seq, m.sender_id);
//!     }
//! }
//! # drop(session); }
//! ```

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinHandle;

use tern_public::proto::client::{
    ConvType, Conversation, KickReason, Message, RoomMessage, SendReply, SendRequest, TokenReply,
};
use tern_public::Code;

use crate::conversations::{Applied, ConversationView};
use crate::seq::{Incoming, SeqTracker};
use crate::{Client, ClientError, Event, TlsConfig};

/// What a device keeps to sign in again.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The user, as REGISTER or LOGIN answered.
    pub user_id: u64,
    /// This device of the user.
    pub device_id: u64,
    /// The device's token: it signs the device in without a password.
    pub token: String,
}

/// How a session retries.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// First wait after a failed connect; doubles up to `backoff_max`.
    pub backoff_min: Duration,
    /// Longest wait between two rounds of connection attempts.
    pub backoff_max: Duration,
    /// How long one request (and [`Session::send`] with its retries) may take.
    pub request_timeout: Duration,
    /// Connect over TLS (the same settings for every address); `None` is plain TCP.
    pub tls: Option<TlsConfig>,
    /// Keep a [`ConversationView`] of the user's conversations, read with
    /// [`Session::conversations`]: loaded once signed in, then kept by the
    /// entries the session hands over, across reconnects.
    pub conversations: bool,
}

impl Default for SessionOptions {
    fn default() -> SessionOptions {
        SessionOptions {
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            tls: None,
            conversations: false,
        }
    }
}

/// What a session tells the app.
#[derive(Debug, Clone)]
pub enum SessionEvent {
    /// Signed in (again) on this server; whatever was missed follows as
    /// [`SessionEvent::Message`]s.
    Connected(SocketAddr),
    /// The next entry of the device's list: each seq once, ascending.
    Message(Message),
    /// A live room message or broadcast (not stored; none while offline).
    Room(RoomMessage),
    /// The connection dropped; the session is reconnecting.
    Disconnected,
    /// The server replaced the device's token at sign-in: store `creds`
    /// in place of the old ones (the session uses them from now on). The
    /// old token stops working once the new one has been used.
    TokenRefreshed {
        creds: Credentials,
        expires_at_ms: i64,
    },
    /// The server ended the session for good (token revoked, user disabled,
    /// signed in elsewhere, or the credentials no longer work); nothing
    /// follows.
    Ended(String),
}

/// Events buffered for the app; a slow app slows the reading of the socket.
const EVENT_QUEUE: usize = 1024;

/// A device kept signed in. Dropping it closes the connection.
pub struct Session {
    shared: Arc<Shared>,
    request_timeout: Duration,
    driver: JoinHandle<()>,
}

struct Shared {
    current: watch::Sender<Option<Arc<Client>>>,
    /// The highest seq a reply told us of (own sends are not pushed back).
    known: AtomicU64,
    known_changed: Notify,
    /// [`Session::reconnect`] was called.
    reconnect: Notify,
    /// The conversations, when [`SessionOptions::conversations`] asks for
    /// them; `None` until first loaded. Never held across an await.
    view: std::sync::Mutex<Option<ConversationView>>,
    keep_view: bool,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl Session {
    /// Signs `creds` in on the first of `addrs` that takes it and keeps it
    /// signed in; the list resumes after `after_seq` (the last seq the app
    /// has, 0 for everything).
    pub fn start(
        addrs: Vec<SocketAddr>,
        creds: Credentials,
        after_seq: u64,
        opts: SessionOptions,
    ) -> (Session, mpsc::Receiver<SessionEvent>) {
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        let shared = Arc::new(Shared {
            current: watch::channel(None).0,
            known: AtomicU64::new(after_seq),
            known_changed: Notify::new(),
            reconnect: Notify::new(),
            view: std::sync::Mutex::new(None),
            keep_view: opts.conversations,
        });
        let request_timeout = opts.request_timeout;
        let driver = tokio::spawn(drive(
            shared.clone(),
            addrs,
            creds,
            SeqTracker::new(after_seq),
            opts,
            tx,
        ));
        let session = Session {
            shared,
            request_timeout,
            driver,
        };
        (session, rx)
    }

    /// The signed-in connection, waiting up to the request timeout for one.
    pub async fn client(&self) -> Result<Arc<Client>, ClientError> {
        let mut rx = self.shared.current.subscribe();
        let wait = async {
            rx.wait_for(|c| c.is_some())
                .await
                .map(|c| c.clone().expect("waited for Some"))
        };
        match tokio::time::timeout(self.request_timeout, wait).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(_)) => Err(ClientError::Closed),
            Err(_) => Err(ClientError::Timeout),
        }
    }

    /// Drops the connection and signs in again at once, on the next
    /// address; when the session is waiting to reconnect, it stops waiting.
    /// For an app that learns the network changed: the old connection may
    /// be dead without either side knowing, until heartbeats time out.
    /// Requests in flight fail as [`ClientError::Closed`]; [`Session::send`]
    /// sends them again.
    pub fn reconnect(&self) {
        self.shared.reconnect.notify_one();
    }

    /// The user's conversations that are not hidden, pinned first, then
    /// newest first, as of the last entry the session handed over; empty
    /// unless [`SessionOptions::conversations`] is set, or before the first
    /// sign-in loaded them.
    pub fn conversations(&self) -> Vec<Conversation> {
        let view = self.shared.view.lock().expect("view lock");
        view.as_ref()
            .map(|v| v.list().into_iter().cloned().collect())
            .unwrap_or_default()
    }

    /// One conversation of the view, hidden or not.
    pub fn conversation(&self, conv_type: ConvType, conv_id: u64) -> Option<Conversation> {
        let view = self.shared.view.lock().expect("view lock");
        view.as_ref()?.get(conv_type, conv_id).cloned()
    }

    /// The badge: unread over the conversations that are not muted.
    pub fn total_unread(&self) -> u64 {
        let view = self.shared.view.lock().expect("view lock");
        view.as_ref().map_or(0, ConversationView::total_unread)
    }

    /// SEND, riding out drops: a send that fails in transit is sent again
    /// with the same client_msg_id (the server stores it once) until the
    /// request timeout. Needs a client_msg_id; without one a retry could
    /// store the message twice, so it is tried once.
    pub async fn send(&self, req: SendRequest) -> Result<SendReply, ClientError> {
        let deadline = tokio::time::Instant::now() + self.request_timeout;
        loop {
            let result = match self.client().await {
                Ok(c) => c.send(&req).await,
                Err(e) => Err(e),
            };
            let retry = match &result {
                Ok(reply) => {
                    // Our own message is in our list but is not pushed to us.
                    self.shared.known.fetch_max(reply.seq, Ordering::Relaxed);
                    self.shared.known_changed.notify_one();
                    false
                }
                Err(ClientError::Closed | ClientError::Timeout | ClientError::Io(_)) => true,
                Err(e) => e.code() == Some(Code::Unavailable),
            };
            if !retry || req.client_msg_id.is_empty() || tokio::time::Instant::now() >= deadline {
                return result;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// How a connection ended.
enum End {
    Reconnect,
    Stop(String),
}

async fn drive(
    shared: Arc<Shared>,
    addrs: Vec<SocketAddr>,
    mut creds: Credentials,
    mut tracker: SeqTracker,
    opts: SessionOptions,
    tx: mpsc::Sender<SessionEvent>,
) {
    if addrs.is_empty() {
        let _ = tx
            .send(SessionEvent::Ended("no server address".into()))
            .await;
        return;
    }
    let mut backoff = opts.backoff_min;
    for attempt in 0usize.. {
        let addr = addrs[attempt % addrs.len()];
        match sign_in(addr, &creds, &opts).await {
            Ok((client, events, heartbeat, new_token)) => {
                backoff = opts.backoff_min;
                if let Some(t) = new_token {
                    // Told before anything else, so the app stores it even
                    // if this connection drops at once.
                    creds.token = t.token;
                    let refreshed = SessionEvent::TokenRefreshed {
                        creds: creds.clone(),
                        expires_at_ms: t.token_expires_at_ms,
                    };
                    if tx.send(refreshed).await.is_err() {
                        return;
                    }
                }
                let client = Arc::new(client);
                // A reconnect asked for before this connection is done.
                let _ = shared.reconnect.notified().now_or_never();
                let mut beat = client.spawn_heartbeat(heartbeat);
                shared.current.send_replace(Some(client.clone()));
                let end = if tx.send(SessionEvent::Connected(addr)).await.is_err() {
                    End::Stop("the app dropped the events".into())
                } else {
                    let user_id = creds.user_id;
                    serve(
                        &client,
                        events,
                        &mut beat,
                        &mut tracker,
                        &shared,
                        &tx,
                        user_id,
                    )
                    .await
                };
                beat.abort();
                shared.current.send_replace(None);
                match end {
                    End::Stop(why) => {
                        let _ = tx.send(SessionEvent::Ended(why)).await;
                        return;
                    }
                    End::Reconnect => {
                        if tx.send(SessionEvent::Disconnected).await.is_err() {
                            return;
                        }
                    }
                }
            }
            Err(e) if matches!(e.code(), Some(Code::Unauthenticated | Code::Forbidden)) => {
                let _ = tx.send(SessionEvent::Ended(e.to_string())).await;
                return;
            }
            Err(_) => {
                // Every address refused once: wait before the next round.
                if (attempt + 1) % addrs.len() == 0 {
                    let jitter = rand_jitter(backoff);
                    tokio::select! {
                        () = tokio::time::sleep(backoff + jitter) => {}
                        () = shared.reconnect.notified() => {}
                    }
                    backoff = (backoff * 2).min(opts.backoff_max);
                }
            }
        }
        if tx.is_closed() {
            return;
        }
    }
}

/// Up to a quarter of `d`, so devices cut off together do not return together.
fn rand_jitter(d: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |t| t.subsec_nanos());
    d / 4 * (nanos % 1000) / 1000
}

async fn sign_in(
    addr: SocketAddr,
    creds: &Credentials,
    opts: &SessionOptions,
) -> Result<(Client, mpsc::Receiver<Event>, Duration, Option<TokenReply>), ClientError> {
    let timeout = opts.request_timeout;
    let connect = Client::connect_with(addr, opts.tls.as_ref());
    let (mut client, events) = tokio::time::timeout(timeout, connect)
        .await
        .map_err(|_| ClientError::Timeout)??;
    client.set_request_timeout(timeout);
    let signed = client
        .sign_in(creds.user_id, creds.device_id, &creds.token)
        .await?;
    let heartbeat = Duration::from_secs(u64::from(signed.session.heartbeat_interval_secs.max(1)));
    Ok((client, events, heartbeat, signed.new_token))
}

/// Hands a signed-in connection's list entries to the app in order until
/// the connection ends.
async fn serve(
    client: &Client,
    mut events: mpsc::Receiver<Event>,
    beat: &mut JoinHandle<()>,
    tracker: &mut SeqTracker,
    shared: &Shared,
    tx: &mpsc::Sender<SessionEvent>,
    user_id: u64,
) -> End {
    if shared.keep_view && load_view(client, shared, user_id).await.is_err() {
        return End::Reconnect;
    }
    if catch_up(client, tracker, shared, tx).await.is_err() {
        return End::Reconnect;
    }
    loop {
        let caught_up = tokio::select! {
            event = events.recv() => match event {
                Some(Event::Push(m)) => match tracker.on_push(m.seq) {
                    Incoming::Apply => hand_over(client, shared, tx, m).await,
                    Incoming::Duplicate => Ok(()),
                    Incoming::Gap => catch_up(client, tracker, shared, tx).await,
                },
                Some(Event::RoomPush(m)) => emit(tx, SessionEvent::Room(m)).await,
                Some(Event::Kicked(k)) => {
                    return match KickReason::try_from(k.reason) {
                        Ok(KickReason::Draining | KickReason::Unspecified) | Err(_) => End::Reconnect,
                        Ok(reason) => End::Stop(format!("kicked: {}", reason.as_str_name())),
                    };
                }
                Some(Event::Unmatched(_)) => Ok(()),
                Some(Event::Closed) | None => return End::Reconnect,
            },
            () = shared.known_changed.notified() => {
                if shared.known.load(Ordering::Relaxed) > tracker.applied() {
                    catch_up(client, tracker, shared, tx).await
                } else {
                    Ok(())
                }
            }
            // The heartbeat task ends when a heartbeat fails.
            _ = &mut *beat => return End::Reconnect,
            () = shared.reconnect.notified() => return End::Reconnect,
        };
        match caught_up {
            Ok(()) => {}
            Err(Lost::Connection) => return End::Reconnect,
            Err(Lost::App) => return End::Stop("the app dropped the events".into()),
        }
    }
}

enum Lost {
    Connection,
    App,
}

async fn emit(tx: &mpsc::Sender<SessionEvent>, e: SessionEvent) -> Result<(), Lost> {
    tx.send(e).await.map_err(|_| Lost::App)
}

/// SYNCs after the last applied seq and hands the new entries over.
async fn catch_up(
    client: &Client,
    tracker: &mut SeqTracker,
    shared: &Shared,
    tx: &mpsc::Sender<SessionEvent>,
) -> Result<(), Lost> {
    loop {
        let before = tracker.applied();
        let page = client.sync(before, 0).await.map_err(|_| Lost::Connection)?;
        for m in tracker.take_new(page.messages) {
            hand_over(client, shared, tx, m).await?;
        }
        // A page that moved nothing (it should not happen) must not spin.
        if !page.has_more || tracker.applied() == before {
            return Ok(());
        }
    }
}

/// Loads the conversation view the first time the session signs in; later
/// sign-ins keep it, since the entries missed meanwhile follow in order.
/// Conversations that could not be read fresh are read now.
async fn load_view(client: &Client, shared: &Shared, user_id: u64) -> Result<(), ClientError> {
    let loaded = shared.view.lock().expect("view lock").is_some();
    if !loaded {
        let mut view = ConversationView::new(user_id);
        view.load(client).await?;
        *shared.view.lock().expect("view lock") = Some(view);
    }
    refresh_stale(client, shared).await
}

/// Hands one entry to the app, after the conversation view applied it.
async fn hand_over(
    client: &Client,
    shared: &Shared,
    tx: &mpsc::Sender<SessionEvent>,
    m: Message,
) -> Result<(), Lost> {
    if shared.keep_view {
        let applied = match shared.view.lock().expect("view lock").as_mut() {
            Some(view) => view.apply(&m),
            None => Applied::Done,
        };
        if let Applied::Refresh(..) = applied {
            // Read before the app sees the entry; a conversation that
            // cannot be read now stays marked and is read on reconnect.
            if let Err(e) = refresh_stale(client, shared).await {
                tracing::debug!(error = %e, "conversation not refreshed; again on reconnect");
            }
        }
    }
    emit(tx, SessionEvent::Message(m)).await
}

/// Reads from the server every conversation the view marked stale.
async fn refresh_stale(client: &Client, shared: &Shared) -> Result<(), ClientError> {
    let stale = match shared.view.lock().expect("view lock").as_ref() {
        Some(view) => view.stale(),
        None => return Ok(()),
    };
    for (conv_type, conv_id) in stale {
        let c = match client.conv_get(conv_type, conv_id).await {
            Ok(c) => Some(c),
            // Not in the list after all (nothing to show).
            Err(e) if e.code() == Some(Code::NotFound) => None,
            Err(e) => return Err(e),
        };
        if let Some(view) = shared.view.lock().expect("view lock").as_mut() {
            view.refreshed(conv_type, conv_id, c);
        }
    }
    Ok(())
}
