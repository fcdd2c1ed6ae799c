//! Switchyard: a read/write-splitting, tenant-aware MySQL wire-protocol proxy.

pub mod backend;
pub mod config;
pub mod frontend;
pub mod protocol;
pub mod router;
pub mod state;
