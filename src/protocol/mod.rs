//! Pure wire layer: packet codec, handshake, auth scrambles, OK/ERR/EOF, response scanning.

pub mod auth;
pub mod caching_sha2;
pub mod codec;
pub mod command;
pub mod compress;
pub mod crypt;
pub mod handshake;
pub mod packets;
pub mod proxy_header;
pub mod scan;
pub mod stream;
pub mod tls;

pub use codec::PacketStream;
pub use mysql_common::constants::{CapabilityFlags, MariadbCapabilities, StatusFlags};

/// Largest payload of one physical packet; a payload of exactly this size continues in the next.
pub const MAX_PAYLOAD: usize = 0xFF_FFFF;
