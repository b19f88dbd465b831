//! Subject names (DESIGN.md "Bus"), all under one configurable prefix.

/// Builds the bus subjects under a prefix (default `tern`).
#[derive(Debug, Clone)]
pub struct Subjects {
    prefix: String,
}

/// Queue group shared by all logic nodes: each request reaches one of them.
pub const LOGIC_QUEUE: &str = "logic";

impl Subjects {
    /// Subjects under `prefix`; clusters sharing one NATS use distinct prefixes.
    pub fn new(prefix: impl Into<String>) -> Subjects {
        Subjects {
            prefix: prefix.into(),
        }
    }

    /// connect -> any logic: client requests (request/reply, queue group `logic`).
    pub fn logic_rpc(&self) -> String {
        format!("{}.logic.rpc", self.prefix)
    }

    /// connect -> any logic: device offline and node lifecycle events.
    pub fn logic_events(&self) -> String {
        format!("{}.logic.events", self.prefix)
    }

    /// logic -> logic: each node answers how it shares state, so a node
    /// that cannot run beside others refuses to start.
    pub fn logic_mode(&self) -> String {
        format!("{}.logic.mode", self.prefix)
    }

    /// logic -> one connect node: deliveries and kicks.
    pub fn node(&self, node_id: &str) -> String {
        format!("{}.node.{node_id}", self.prefix)
    }

    /// logic -> connect nodes with members in a room.
    pub fn room(&self, room_id: &str) -> String {
        format!("{}.room.{room_id}", self.prefix)
    }

    /// logic -> every connect node.
    pub fn broadcast(&self) -> String {
        format!("{}.broadcast", self.prefix)
    }
}

impl Default for Subjects {
    fn default() -> Self {
        Subjects::new("tern")
    }
}
