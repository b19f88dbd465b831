//! What a line typed into `tern chat` means. Pure parsing, so every form
//! and every mistake has a unit test.

/// A conversation to write to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `@name`: a user, by username.
    User(String),
    /// `#id`: a group, by id.
    Group(u64),
    /// `~room`: a live room (joined on opening).
    Room(String),
}

/// One line of input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Register {
        username: String,
        password: String,
    },
    Login {
        username: String,
        password: String,
    },
    Open(Target),
    /// Text for the open conversation.
    Say(String),
    Friends,
    Groups,
    /// The conversation list, with unread counts.
    List,
    /// Older messages of the open conversation, a page each time.
    History,
    /// Ask a user (by username) to be friends.
    Add(String),
    /// Accept a user's (by username) friend request.
    Accept(String),
    /// Create a group with these usernames.
    Group {
        name: String,
        members: Vec<String>,
    },
    Leave(String),
    /// This user's devices.
    Devices,
    /// Sign another device of this user out, by its id.
    Revoke(u64),
    /// Change the password; the other devices stay signed in.
    Password {
        old: String,
        new: String,
    },
    /// Sign this device out.
    Logout,
    /// Delete the account, confirmed with its password.
    DeleteAccount(String),
    Help,
    Quit,
    Nothing,
}

pub const HELP: &str = "\
commands:
  /register <username> <password>   make an account and sign in
  /login <username> <password>      sign in
  /open @user | #group | ~room      write to a user, a group or a live room
  <text>                            send to the open conversation
  /list                             conversations, newest first, with unread counts
  /history                          older messages of the open conversation (again: older still)
  /friends   /groups                list them
  /add <username>                   ask to be friends
  /accept <username>                accept a friend request
  /group <name> <username>...       make a group with these friends
  /leave <room>                     leave a live room
  /devices                          your devices (* this one)
  /revoke <device id>               sign another device of yours out
  /password <old> <new>             change your password
  /logout                           sign this device out
  /delete-account <password>        delete your account
  /help   /quit";

/// Parses one line; `Err` says what is wrong, for the person typing.
pub fn parse(line: &str) -> Result<Command, String> {
    let line = line.trim();
    if line.is_empty() {
        return Ok(Command::Nothing);
    }
    let Some(rest) = line.strip_prefix('/') else {
        return Ok(Command::Say(line.to_owned()));
    };
    let mut words = rest.split_whitespace();
    let name = words.next().unwrap_or("");
    let args: Vec<&str> = words.collect();
    let one = |what: &str| match args.as_slice() {
        [a] => Ok(a.to_string()),
        _ => Err(format!("usage: /{name} <{what}>")),
    };
    let credentials = || match args.as_slice() {
        [u, p] => Ok((u.to_string(), p.to_string())),
        _ => Err(format!("usage: /{name} <username> <password>")),
    };
    match name {
        "register" => {
            credentials().map(|(username, password)| Command::Register { username, password })
        }
        "login" => credentials().map(|(username, password)| Command::Login { username, password }),
        "open" => target(&one("@user | #group | ~room")?).map(Command::Open),
        "friends" => Ok(Command::Friends),
        "groups" => Ok(Command::Groups),
        "list" => Ok(Command::List),
        "history" => Ok(Command::History),
        "add" => one("username").map(Command::Add),
        "accept" => one("username").map(Command::Accept),
        "group" => match args.as_slice() {
            [name, members @ ..] if !members.is_empty() => Ok(Command::Group {
                name: name.to_string(),
                members: members
                    .iter()
                    .map(|m| m.trim_start_matches('@').to_owned())
                    .collect(),
            }),
            _ => Err("usage: /group <name> <username>...".into()),
        },
        "leave" => one("room").map(|r| Command::Leave(r.trim_start_matches('~').to_owned())),
        "devices" => Ok(Command::Devices),
        "revoke" => one("device id")?
            .parse()
            .map(Command::Revoke)
            .map_err(|_| "usage: /revoke <device id>: a number, as /devices shows".into()),
        "password" => match args.as_slice() {
            [old, new] => Ok(Command::Password {
                old: old.to_string(),
                new: new.to_string(),
            }),
            _ => Err("usage: /password <old> <new>".into()),
        },
        "logout" => Ok(Command::Logout),
        "delete-account" => one("password").map(Command::DeleteAccount),
        "help" | "?" => Ok(Command::Help),
        "quit" | "exit" => Ok(Command::Quit),
        other => Err(format!("unknown command /{other}; /help lists them")),
    }
}

fn target(s: &str) -> Result<Target, String> {
    if let Some(user) = s.strip_prefix('@').filter(|u| !u.is_empty()) {
        Ok(Target::User(user.to_owned()))
    } else if let Some(group) = s.strip_prefix('#') {
        group
            .parse()
            .map(Target::Group)
            .map_err(|_| format!("{s:?}: a group is # and its number"))
    } else if let Some(room) = s.strip_prefix('~').filter(|r| !r.is_empty()) {
        Ok(Target::Room(room.to_owned()))
    } else {
        Err(format!("{s:?}: open @user, #group or ~room"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_said_and_blank_lines_are_nothing() {
        assert_eq!(
            parse("  hello there "),
            Ok(Command::Say("hello there".into()))
        );
        assert_eq!(parse("   "), Ok(Command::Nothing));
    }

    #[test]
    fn commands_with_arguments() {
        assert_eq!(
            parse("/login ann secret123"),
            Ok(Command::Login {
                username: "ann".into(),
                password: "secret123".into()
            })
        );
        assert_eq!(
            parse("/open @ben"),
            Ok(Command::Open(Target::User("ben".into())))
        );
        assert_eq!(parse("/open #12"), Ok(Command::Open(Target::Group(12))));
        assert_eq!(
            parse("/open ~lobby"),
            Ok(Command::Open(Target::Room("lobby".into())))
        );
        assert_eq!(
            parse("/group crew @ann ben"),
            Ok(Command::Group {
                name: "crew".into(),
                members: vec!["ann".into(), "ben".into()]
            })
        );
        assert_eq!(parse("/leave ~lobby"), Ok(Command::Leave("lobby".into())));
        assert_eq!(parse("/quit"), Ok(Command::Quit));
        assert_eq!(parse("/list"), Ok(Command::List));
        assert_eq!(parse("/history"), Ok(Command::History));
        assert_eq!(parse("/devices"), Ok(Command::Devices));
        assert_eq!(parse("/revoke 42"), Ok(Command::Revoke(42)));
        assert_eq!(
            parse("/password old12345 new12345"),
            Ok(Command::Password {
                old: "old12345".into(),
                new: "new12345".into()
            })
        );
        assert_eq!(parse("/logout"), Ok(Command::Logout));
        assert_eq!(
            parse("/delete-account secret123"),
            Ok(Command::DeleteAccount("secret123".into()))
        );
    }

    #[test]
    fn mistakes_say_what_is_wrong() {
        for (line, says) in [
            ("/login ann", "usage: /login"),
            ("/open ben", "open @user"),
            ("/open #x", "group is #"),
            ("/open @", "open @user"),
            ("/group crew", "usage: /group"),
            ("/dance", "unknown command /dance"),
            ("/revoke phone", "usage: /revoke"),
            ("/revoke", "usage: /revoke"),
            ("/password onlyone", "usage: /password"),
            ("/delete-account", "usage: /delete-account"),
        ] {
            let err = parse(line).unwrap_err();
            assert!(err.contains(says), "{line}: {err}");
        }
    }
}
