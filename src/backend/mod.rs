//! Backend connections to MySQL servers: client-side handshake, pools, response relay.

pub mod conn;
pub mod error;
pub mod pool;
pub mod relay;

pub use conn::{BackendConn, Credentials};
pub use error::BackendError;
pub use pool::{PoolKey, Pools};
