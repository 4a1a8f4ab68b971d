//! The faults crate from the outside: proxies and toxics as a TCP client sees them, the HTTP
//! API as Toxiproxy's clients send it, the client against the server, and Redis through a
//! proxy. Everything runs on loopback, on port 0, each test bounded in time.

mod api;
mod client;
mod redis;
mod rig;
mod toxics;
