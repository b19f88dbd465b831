//! `tern chat`: a line-based terminal client for a person. Commands start
//! with `/` (see `/help`); any other line goes to the open conversation.
//! Messages arrive live through an SDK [`Session`], so a dropped connection
//! is rejoined and nothing is missed. `/list` shows the conversations with
//! their unread counts, opening one marks it read, and `/history` scrolls
//! back through it. Reads stdin and writes stdout line by line, so it also
//! runs from a script.

mod command;

use std::collections::HashMap;
use std::net::SocketAddr;

use anyhow::{bail, Context};
use clap::Args;
use tokio::io::{AsyncBufReadExt, BufReader};

use tern_client::proto::{
    ConvType, FriendState, GroupCreateRequest, Message, RoomMessage, SendRequest, SystemContentType,
};
use tern_client::{Client, Credentials, Session, SessionEvent, SessionOptions, TlsConfig};

use command::{parse, Command, Target, HELP};

#[derive(Debug, Args)]
pub struct ChatArgs {
    /// Server address(es), comma separated: the first that answers is used.
    #[arg(long, env = "TERN_CHAT_ADDR", default_value = "127.0.0.1:7400")]
    pub addr: String,
    /// Connect over TLS, trusting the system's root certificates.
    #[arg(long)]
    pub tls: bool,
    /// Connect over TLS, trusting only the CA certificate(s) in this PEM file.
    #[arg(long, value_name = "PEM")]
    pub tls_ca: Option<std::path::PathBuf>,
    /// The name the server's certificate must carry; defaults to the IP of
    /// the first address.
    #[arg(long)]
    pub tls_server_name: Option<String>,
}

/// Where typed text goes.
enum Open {
    User(u64, String),
    Group(u64),
    Room(String),
}

struct Chat {
    addrs: Vec<SocketAddr>,
    tls: Option<TlsConfig>,
    session: Option<(Session, u64)>,
    open: Option<Open>,
    /// Where `/history` goes on in the open conversation: the seq to read
    /// below (0: from the newest), `None` once its first entry was shown.
    history_before: Option<u64>,
    names: HashMap<u64, String>,
}

pub async fn run(a: ChatArgs) -> anyhow::Result<()> {
    let addrs = a
        .addr
        .split(',')
        .map(|s| {
            s.trim()
                .parse()
                .with_context(|| format!("{s:?} is not an ip:port"))
        })
        .collect::<anyhow::Result<Vec<SocketAddr>>>()?;
    let name = match &a.tls_server_name {
        Some(n) => n.clone(),
        None => addrs[0].ip().to_string(),
    };
    let tls = match (&a.tls_ca, a.tls) {
        (Some(ca), _) => Some(TlsConfig::with_ca_file(&name, ca)?),
        (None, true) => Some(TlsConfig::system_roots(&name)?),
        (None, false) => None,
    };
    let mut chat = Chat {
        addrs,
        tls,
        session: None,
        open: None,
        history_before: Some(0),
        names: HashMap::new(),
    };
    println!("tern chat: /register or /login, then /open someone; /help for more");
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    let (_keep, mut events) = tokio::sync::mpsc::channel::<SessionEvent>(1);
    loop {
        tokio::select! {
            line = stdin.next_line() => {
                let Some(line) = line? else { return Ok(()) };
                match parse(&line) {
                    Ok(Command::Quit) => return Ok(()),
                    Ok(cmd) => match chat.apply(cmd).await {
                        Ok(Some(new_events)) => events = new_events,
                        Ok(None) => {}
                        Err(e) => println!("error: {e:#}"),
                    },
                    Err(e) => println!("error: {e}"),
                }
            }
            Some(event) = events.recv() => chat.show(event).await,
        }
    }
}

impl Chat {
    async fn client(&self) -> anyhow::Result<std::sync::Arc<Client>> {
        let Some((session, _)) = &self.session else {
            bail!("sign in first: /register or /login");
        };
        Ok(session.client().await?)
    }

    /// Runs a command; a sign-in returns the new session's events.
    async fn apply(
        &mut self,
        cmd: Command,
    ) -> anyhow::Result<Option<tokio::sync::mpsc::Receiver<SessionEvent>>> {
        match cmd {
            Command::Register { username, password } => {
                return self.sign_in(true, &username, &password).await.map(Some);
            }
            Command::Login { username, password } => {
                return self.sign_in(false, &username, &password).await.map(Some);
            }
            Command::Open(t) => self.open(t).await?,
            Command::Say(text) => self.say(text).await?,
            Command::Friends => self.friends().await?,
            Command::List => self.list().await?,
            Command::History => self.history().await?,
            Command::Groups => {
                let list = self.client().await?.group_list_mine(0, 0).await?;
                if list.groups.is_empty() {
                    println!("no groups yet: /group <name> <username>...");
                }
                for g in list.groups {
                    println!("#{} {} ({} members)", g.group_id, g.name, g.member_count);
                }
            }
            Command::Add(name) => {
                let user_id = self.user_id(&name).await?;
                self.client().await?.friend_request(user_id, "").await?;
                println!("asked {name} to be friends");
            }
            Command::Accept(name) => {
                let user_id = self.user_id(&name).await?;
                self.client().await?.friend_accept(user_id).await?;
                println!("{name} and you are friends");
            }
            Command::Group { name, members } => {
                let mut member_ids = Vec::new();
                for m in &members {
                    member_ids.push(self.user_id(m).await?);
                }
                let req = GroupCreateRequest {
                    name,
                    member_ids,
                    ..Default::default()
                };
                let g = self.client().await?.group_create(&req).await?;
                println!(
                    "made #{} {}; /open #{} to write there",
                    g.group_id, g.name, g.group_id
                );
            }
            Command::Leave(room) => {
                self.client().await?.room_leave(&room).await?;
                println!("left ~{room}");
            }
            Command::Devices => {
                for d in self.client().await?.devices().await?.devices {
                    let mark = if d.current { "*" } else { " " };
                    let state = match (d.online, d.signed_in) {
                        (true, _) => "online",
                        (false, true) => "signed in",
                        (false, false) => "signed out",
                    };
                    println!(
                        "{mark} {} {} {} ({state})",
                        d.device_id, d.platform, d.model
                    );
                }
            }
            Command::Revoke(device_id) => {
                self.client().await?.revoke_device(device_id).await?;
                println!("device {device_id} is signed out");
            }
            Command::Password { old, new } => {
                self.client()
                    .await?
                    .change_password(&old, &new, false)
                    .await?;
                println!("password changed; other devices stay signed in (/devices, /revoke)");
            }
            Command::Logout => {
                self.client().await?.logout().await?;
                self.session = None;
                self.open = None;
                println!("signed out");
            }
            Command::DeleteAccount(password) => {
                self.client().await?.delete_account(&password).await?;
                self.session = None;
                self.open = None;
                println!("account deleted");
            }
            Command::Help => println!("{HELP}"),
            Command::Quit | Command::Nothing => {}
        }
        Ok(None)
    }

    async fn sign_in(
        &mut self,
        register: bool,
        username: &str,
        password: &str,
    ) -> anyhow::Result<tokio::sync::mpsc::Receiver<SessionEvent>> {
        let (client, _events) = Client::connect_with(self.addrs[0], self.tls.as_ref())
            .await
            .context("connecting")?;
        let auth = if register {
            client.register(username, password, username).await?
        } else {
            client.login(username, password, None).await?
        };
        drop(client);
        let creds = Credentials {
            user_id: auth.user_id,
            device_id: auth.device_id,
            token: auth.token,
        };
        let opts = SessionOptions {
            tls: self.tls.clone(),
            ..Default::default()
        };
        let (session, events) = Session::start(self.addrs.clone(), creds, 0, opts);
        self.names.insert(auth.user_id, username.to_lowercase());
        self.session = Some((session, auth.user_id));
        self.open = None;
        println!(
            "signed in as {} (user {})",
            username.to_lowercase(),
            auth.user_id
        );
        Ok(events)
    }

    async fn open(&mut self, t: Target) -> anyhow::Result<()> {
        self.open = Some(match t {
            Target::User(name) => Open::User(self.user_id(&name).await?, name.to_lowercase()),
            Target::Group(id) => Open::Group(id),
            Target::Room(room) => {
                self.client().await?.room_join(&room).await?;
                Open::Room(room)
            }
        });
        self.history_before = Some(0);
        println!("writing to {}", self.open_name());
        // Opening a conversation reads it: every device of this user, and
        // a one-to-one partner, learns how far.
        if let Some((conv_type, conv_id)) = self.open_conversation() {
            let client = self.client().await?;
            match client.mark_read(conv_type, conv_id, 0).await {
                Ok(_) => {}
                // Nothing in it yet.
                Err(e) if e.code() == Some(tern_client::Code::NotFound) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// The open conversation, unless it is a room (which has no list).
    fn open_conversation(&self) -> Option<(ConvType, u64)> {
        match &self.open {
            Some(Open::User(id, _)) => Some((ConvType::User, *id)),
            Some(Open::Group(id)) => Some((ConvType::Group, *id)),
            Some(Open::Room(_)) | None => None,
        }
    }

    /// `/list`: the first page of conversations, pinned first, newest first.
    async fn list(&mut self) -> anyhow::Result<()> {
        let list = self.client().await?.conv_list(None, 20).await?;
        if list.conversations.is_empty() {
            println!("no conversations yet: /open @user or #group and write");
        }
        for c in list.conversations {
            let conv = self.conv_name(c.conv_type, c.conv_id).await;
            let mut line = conv;
            if c.pinned {
                line.push_str(" (pinned)");
            }
            if c.muted {
                line.push_str(" (muted)");
            }
            match (c.unread, c.mentions) {
                (0, _) => {}
                (n, 0) => line.push_str(&format!("  {n} unread")),
                (n, m) => line.push_str(&format!("  {n} unread, {m} for you")),
            }
            if let Some(m) = c.last_message {
                line.push_str(&format!("  last: {}", self.preview(&m).await));
            }
            println!("{line}");
        }
        if list.total_unread > 0 {
            println!("{} unread in all", list.total_unread);
        }
        Ok(())
    }

    /// `/history`: the next older page of the open conversation, oldest first.
    async fn history(&mut self) -> anyhow::Result<()> {
        let Some((conv_type, conv_id)) = self.open_conversation() else {
            bail!("open a conversation first: /open @user or #group");
        };
        let Some(before) = self.history_before else {
            println!("(that was the start of {})", self.open_name());
            return Ok(());
        };
        let page = self
            .client()
            .await?
            .conv_history(conv_type, conv_id, before, 10)
            .await?;
        self.history_before = (page.next_before_seq != 0).then_some(page.next_before_seq);
        for m in page.messages.into_iter().rev() {
            println!("  {}", self.preview(&m).await);
        }
        if self.history_before.is_none() {
            println!("(the start of {})", self.open_name());
        }
        Ok(())
    }

    /// "sender: text", or "* event" for a system event.
    async fn preview(&mut self, m: &Message) -> String {
        if m.content_type >= 1000 {
            return format!("* {}", event_name(m.content_type));
        }
        let sender = self.name(m.sender_id).await;
        format!("{sender}: {}", String::from_utf8_lossy(&m.content))
    }

    /// How a conversation is written: @user or #group.
    async fn conv_name(&mut self, conv_type: i32, conv_id: u64) -> String {
        match ConvType::try_from(conv_type) {
            Ok(ConvType::Group) => format!("#{conv_id}"),
            Ok(ConvType::System) => "[system]".to_owned(),
            _ => format!("@{}", self.name(conv_id).await),
        }
    }

    fn open_name(&self) -> String {
        match &self.open {
            Some(Open::User(_, name)) => format!("@{name}"),
            Some(Open::Group(id)) => format!("#{id}"),
            Some(Open::Room(room)) => format!("~{room}"),
            None => "nobody".into(),
        }
    }

    async fn say(&mut self, text: String) -> anyhow::Result<()> {
        let (conv_type, conv_id) = match &self.open {
            None => bail!("open a conversation first: /open @user, #group or ~room"),
            Some(Open::Room(room)) => {
                return Ok(self
                    .client()
                    .await?
                    .room_send(room, 1, text.into_bytes())
                    .await?);
            }
            Some(Open::User(id, _)) => (ConvType::User, *id),
            Some(Open::Group(id)) => (ConvType::Group, *id),
        };
        let Some((session, _)) = &self.session else {
            bail!("sign in first");
        };
        let req = SendRequest {
            conv_type: conv_type as i32,
            conv_id,
            content_type: tern_client::TEXT,
            content: text.into_bytes().into(),
            client_msg_id: format!("{:032x}", rand::random::<u128>()),
            mentions: vec![],
        };
        // The message shows when it comes back through the session.
        session.send(req).await?;
        Ok(())
    }

    async fn friends(&mut self) -> anyhow::Result<()> {
        let list = self.client().await?.friend_list(0, 0).await?;
        if list.friends.is_empty() {
            println!("no friends yet: /add <username>");
        }
        for f in list.friends {
            let p = f.profile.unwrap_or_default();
            let state = match FriendState::try_from(f.state) {
                Ok(FriendState::Accepted) => "friend",
                Ok(FriendState::Requested) => "asked by you",
                Ok(FriendState::Pending) => "asks you (/accept)",
                Ok(FriendState::Blocked) => "blocked",
                _ => "?",
            };
            println!("@{} {state}", p.username);
        }
        Ok(())
    }

    /// A user's id by exact username.
    async fn user_id(&mut self, name: &str) -> anyhow::Result<u64> {
        let name = name.trim_start_matches('@').to_lowercase();
        if let Some((&id, _)) = self.names.iter().find(|(_, n)| **n == name) {
            return Ok(id);
        }
        let list = self.client().await?.user_search(&name, "", 1).await?;
        let user = list.users.into_iter().find(|u| u.username == name);
        let user = user.with_context(|| format!("no user {name:?}"))?;
        self.names.insert(user.user_id, user.username);
        Ok(user.user_id)
    }

    /// A user's name by id, asked once.
    async fn name(&mut self, user_id: u64) -> String {
        if let Some(n) = self.names.get(&user_id) {
            return n.clone();
        }
        let name = match self.client().await {
            Ok(c) => c
                .user_get(&[user_id])
                .await
                .ok()
                .and_then(|users| users.into_iter().next())
                .map(|u| u.username),
            Err(_) => None,
        };
        let name = name.unwrap_or_else(|| format!("user{user_id}"));
        self.names.insert(user_id, name.clone());
        name
    }

    async fn show(&mut self, event: SessionEvent) {
        match event {
            SessionEvent::Message(m) => self.show_message(m).await,
            SessionEvent::Room(m) => self.show_room(m).await,
            // The session keeps the new token; this client stores none.
            SessionEvent::Connected(_) | SessionEvent::TokenRefreshed { .. } => {}
            SessionEvent::Disconnected => println!("* connection lost; reconnecting"),
            SessionEvent::Ended(why) => {
                println!("* signed out: {why}");
                self.session = None;
            }
        }
    }

    async fn show_message(&mut self, m: Message) {
        // Read positions, receipts and settings are bookkeeping, not news.
        if (1300..1400).contains(&m.content_type) {
            return;
        }
        let conv = self.conv_name(m.conv_type, m.conv_id).await;
        let text = self.preview(&m).await;
        println!("[{conv}] {text}");
        // What arrives in the open conversation is read as it is shown.
        if self.open_conversation() == ConvType::try_from(m.conv_type).ok().zip(Some(m.conv_id)) {
            if let Ok(client) = self.client().await {
                let _ = client
                    .mark_read(
                        ConvType::try_from(m.conv_type).unwrap_or(ConvType::User),
                        m.conv_id,
                        m.seq,
                    )
                    .await;
            }
        }
    }

    async fn show_room(&mut self, m: RoomMessage) {
        let text = String::from_utf8_lossy(&m.content);
        if m.room_id.is_empty() {
            println!("[broadcast] {text}");
        } else {
            let sender = self.name(m.sender_id).await;
            println!("[~{}] {sender}: {text}", m.room_id);
        }
    }
}

/// A system event's name for a person: "friend requested", "group created".
fn event_name(content_type: u32) -> String {
    SystemContentType::try_from(content_type as i32).map_or("event".to_owned(), |t| {
        t.as_str_name().to_lowercase().replace('_', " ")
    })
}
