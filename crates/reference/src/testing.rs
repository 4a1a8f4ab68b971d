//! Helpers for the contention suites: real threads released together.

use std::sync::{Arc, Barrier};

/// Runs `op(i)` for `i in 0..threads`, each on its own thread, all released by one barrier so
/// they contend as hard as the machine allows; the results in thread order.
pub fn burst<T, F>(threads: usize, op: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize) -> T + Send + Sync + 'static,
{
    let barrier = Arc::new(Barrier::new(threads));
    let op = Arc::new(op);
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let (barrier, op) = (Arc::clone(&barrier), Arc::clone(&op));
            std::thread::spawn(move || {
                barrier.wait();
                op(i)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().expect("burst thread panicked")).collect()
}
