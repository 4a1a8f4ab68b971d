//! The stack's integration tests: stacks started in this process on 127.0.0.1:0 with the
//! memory backend, driven over HTTP and WebSocket like any client would.

mod backlog;
mod chat;
mod support;
mod uploads;
