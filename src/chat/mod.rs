//! `tern chat`: a line-based terminal client for a person. Commands start
//! with `/` (see `/help`); any other line goes to the open conversation.
//! Messages arrive live through an SDK [`Session`], so a dropped connection
//! is rejoined and nothing is missed. Reads stdin and writes stdout line by
//! line, so it also runs from a script.

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
        println!("writing to {}", self.open_name());
        Ok(())
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
            SessionEvent::Connected(_) => {}
            SessionEvent::Disconnected => println!("* connection lost; reconnecting"),
            SessionEvent::Ended(why) => {
                println!("* signed out: {why}");
                self.session = None;
            }
        }
    }

    async fn show_message(&mut self, m: Message) {
        let conv = match ConvType::try_from(m.conv_type) {
            Ok(ConvType::Group) => format!("#{}", m.conv_id),
            _ => format!("@{}", self.name(m.conv_id).await),
        };
        if m.content_type >= 1000 {
            let what = SystemContentType::try_from(m.content_type as i32)
                .map_or("event".to_owned(), |t| {
                    t.as_str_name().to_lowercase().replace('_', " ")
                });
            println!("[{conv}] * {what}");
            return;
        }
        let sender = self.name(m.sender_id).await;
        println!("[{conv}] {sender}: {}", String::from_utf8_lossy(&m.content));
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
