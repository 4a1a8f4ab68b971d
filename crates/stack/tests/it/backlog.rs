//! The listener's backlog: connections the kernel completes while the stack is too busy to
//! accept them wait for it, rather than having their SYNs dropped (a one-second retransmission
//! for each client, seen by `stampede load` as a p99.9 of ~1,045 ms on new WebSocket sessions
//! at 8,000 requests/s before the backlog was raised).

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use stack::StackConfig;

/// Connections attempted while nothing accepts.
const ATTEMPTS: usize = 1000;

/// Connects to `addr` one after another until `ATTEMPTS` have connected or one is not
/// completed by the kernel within 300 ms (its SYN dropped: the queue is full). How many
/// connected; they are held until the end of the caller's test.
fn fill(addr: SocketAddr, held: &mut Vec<TcpStream>) -> usize {
    for _ in 0..ATTEMPTS {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            Ok(stream) => held.push(stream),
            Err(_) => break,
        }
    }
    held.len()
}

/// The kernel's cap on any listener's backlog.
fn somaxconn() -> usize {
    std::fs::read_to_string("/proc/sys/net/core/somaxconn").map_or(4096, |s| s.trim().parse().unwrap_or(4096))
}

#[test]
fn connections_wait_in_the_backlog_while_the_stack_cannot_accept() {
    // A current-thread runtime runs its tasks only inside `block_on`: once the stack has
    // started, nothing accepts until the runtime is driven again.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let stack = runtime.block_on(stack::start(StackConfig::default())).expect("the stack starts");
    let expected = ATTEMPTS.min(somaxconn());
    let mut held = Vec::new();
    let connected = fill(stack.addr(), &mut held);
    assert!(
        connected >= expected,
        "{connected} of {ATTEMPTS} connections completed while the stack was busy"
    );

    // The same attempts against a listener bound the usual way (tokio's and the standard
    // library's backlog, 128): the check tells the two apart.
    let usual = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let mut held_usual = Vec::new();
    let connected_usual = fill(usual.local_addr().unwrap(), &mut held_usual);
    assert!(connected_usual < expected.min(200), "a backlog of 128 held {connected_usual}");
    drop((held, held_usual, usual));
    runtime.block_on(stack.shutdown()).expect("the stack shuts down");
}
