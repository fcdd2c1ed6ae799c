//! Backend connections to MySQL servers: client-side handshake, pools, response relay.

pub mod auth;
pub mod conn;
pub mod error;
pub mod pool;
pub mod relay;

pub use auth::{Credentials, Proof};
pub use conn::BackendConn;
pub use error::BackendError;
pub use pool::{PoolKey, Pools};
