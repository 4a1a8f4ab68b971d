//! The stack's integration tests: stacks started in this process on 127.0.0.1:0 with the
//! memory backend, driven over HTTP and WebSocket like any client would; and the multi-layer
//! cache on the Redis and PostgreSQL stores the stack deploys it on.

mod backlog;
mod bounded;
mod chat;
mod multi_layer;
mod slow_clients;
mod support;
mod uploads;
