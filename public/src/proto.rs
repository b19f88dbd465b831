//! Generated protobuf types (prost, from proto/*.proto).

/// The client protocol: values carried in TLV frames.
pub mod client {
    include!(concat!(env!("OUT_DIR"), "/tern.client.rs"));
}

/// Internal bus messages between connect and logic nodes.
pub mod bus {
    include!(concat!(env!("OUT_DIR"), "/tern.bus.rs"));
}
