//! `tern chat` driven like a person would: two instances talk one-to-one,
//! in a group and in a room, and each shows what the other said.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use crate::common::*;

struct Chat {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
}

impl Chat {
    fn start(addr: SocketAddr) -> Chat {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tern"))
            .args(["chat", "--addr", &addr.to_string()])
            .env("TERN_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start tern chat");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Chat {
            child,
            stdin,
            lines,
        }
    }

    fn type_line(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").expect("write to tern chat");
    }

    /// The first line from now on that contains `needle`.
    fn shows(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(line) => seen.push(line),
                Err(_) => panic!("{needle:?} never shown; shown: {seen:#?}"),
            }
        }
    }
}

impl Drop for Chat {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn two_people_chat_in_a_conversation_a_group_and_a_room() {
    let server = Shape::Standalone.start().await;
    let addr = server.addr();
    tokio::task::spawn_blocking(move || {
        let mut ann = Chat::start(addr);
        let mut ben = Chat::start(addr);
        ann.type_line("/register ann password123");
        ann.shows("signed in as ann");
        ben.type_line("/register ben password123");
        ben.shows("signed in as ben");

        ann.type_line("/open @ben");
        ann.shows("writing to @ben");
        ann.type_line("hello ben");
        assert_eq!(ben.shows("hello ben"), "[@ann] ann: hello ben");
        assert_eq!(
            ann.shows("hello ben"),
            "[@ben] ann: hello ben",
            "own message too"
        );
        ben.type_line("/open @ann");
        ben.type_line("hi ann");
        assert_eq!(ann.shows("hi ann"), "[@ben] ben: hi ann");

        ann.type_line("/group crew ben");
        let made = ann.shows("made #");
        let group = made
            .split_whitespace()
            .nth(1)
            .expect("made #<id> crew")
            .to_owned();
        ann.type_line(&format!("/open {group}"));
        ann.type_line("all hands");
        assert_eq!(ben.shows("all hands"), format!("[{group}] ann: all hands"));

        ben.type_line("/open ~lobby");
        ben.shows("writing to ~lobby");
        ann.type_line("/open ~lobby");
        ann.shows("writing to ~lobby");
        ann.type_line("anyone here?");
        assert_eq!(ben.shows("anyone here?"), "[~lobby] ann: anyone here?");

        ann.type_line("/open @nobody");
        assert!(ann.shows("error:").contains("no user"));
        ann.type_line("/dance");
        assert!(ann.shows("error:").contains("unknown command /dance"));

        ben.type_line("/quit");
        let status = ben.child.wait().expect("ben exits");
        assert!(status.success(), "{status:?}");
    })
    .await
    .unwrap();
    server.stop().await;
}

#[tokio::test]
async fn the_list_shows_unread_until_a_conversation_is_opened_and_history_scrolls_back() {
    let server = Shape::Standalone.start().await;
    let addr = server.addr();
    tokio::task::spawn_blocking(move || {
        let mut ann = Chat::start(addr);
        let mut ben = Chat::start(addr);
        ann.type_line("/register ann password123");
        ann.shows("signed in as ann");
        ben.type_line("/register ben password123");
        ben.shows("signed in as ben");
        ben.type_line("/open @ann");
        ben.shows("writing to @ann");
        for i in 0..12 {
            ben.type_line(&format!("note {i}"));
        }
        ann.shows("ben: note 11");

        ann.type_line("/list");
        let line = ann.shows("@ben");
        assert!(line.contains("12 unread"), "{line}");
        assert!(line.contains("last: ben: note 11"), "{line}");
        assert_eq!(ann.shows("in all"), "12 unread in all");

        // Opening reads it; the list says so.
        ann.type_line("/open @ben");
        ann.shows("writing to @ben");
        ann.type_line("/list");
        let line = ann.shows("@ben");
        assert!(!line.contains("unread"), "{line}");

        // Scrolling back: the newest ten, then the two before, then the start.
        ann.type_line("/history");
        assert_eq!(ann.shows("note"), "  ben: note 2");
        ann.shows("ben: note 11");
        ann.type_line("/history");
        assert_eq!(ann.shows("note"), "  ben: note 0");
        ann.shows("ben: note 1");
        ann.shows("(the start of @ben)");
        ann.type_line("/history");
        ann.shows("(that was the start of @ben)");
    })
    .await
    .unwrap();
    server.stop().await;
}
