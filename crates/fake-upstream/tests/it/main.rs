//! The fake upstream from the outside: its token lifecycle, each fault as a client sees it, the
//! exactness of its stats under concurrency, its control API and its shutdown. Every test starts
//! its own fake on 127.0.0.1, port 0, sends it a fixed number of requests and stops it.

mod control;
mod faults;
mod rig;
mod shutdown;
mod stats;
mod tokens;
mod videos;
