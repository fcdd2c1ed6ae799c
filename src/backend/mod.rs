//! Backend connections to MySQL servers: client-side handshake, leases under a cap, state
//! restore, prepared-statement caches, response relay.

pub mod auth;
pub mod change_user;
pub mod conn;
pub mod error;
pub mod held;
pub mod lease;
pub mod pool;
pub mod relay;
pub mod restore;
pub mod stmt_cache;

pub use auth::{Credentials, Proof};
pub use conn::BackendConn;
pub use error::{local_shortage, BackendError};
pub use pool::{KeyFields, PoolKey, Pools};
