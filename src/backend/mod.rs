//! Backend connections to MySQL servers: client-side handshake, pools, relay.
