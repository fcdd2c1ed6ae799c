//! Client-facing side: listener, handshake and auth, tenant resolution, the session pipeline.
