//! The synchronisation facade: loom's types under `cfg(loom)`, std's otherwise.
//!
//! Every piece of shared mutable state in this crate goes through here, so the same code is
//! model-checked by loom and run for real. Sharing handles (`Arc`) is left to std: reference
//! counts carry no logic worth modelling.

#[cfg(loom)]
pub use loom::sync::atomic::{AtomicU64, Ordering};
#[cfg(loom)]
pub use loom::sync::{Mutex, MutexGuard};

#[cfg(not(loom))]
pub use std::sync::atomic::{AtomicU64, Ordering};
#[cfg(not(loom))]
pub use std::sync::{Mutex, MutexGuard};

/// Locks `mutex`, ignoring poisoning: a panic in another thread leaves the protected data in a
/// state every caller of this crate must already tolerate (each critical section is one whole
/// operation), and propagating the poison would turn one failed check into many.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Runs a future that never waits on I/O to completion on the current thread.
///
/// The in-memory store's futures are always ready on first poll; this is how the synchronous
/// tests, the loom models and the stress threads drive the async component API.
#[cfg(loom)]
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    loom::future::block_on(future)
}

/// Runs a future that never waits on I/O to completion on the current thread.
///
/// The in-memory store's futures are always ready on first poll; this is how the synchronous
/// tests, the loom models and the stress threads drive the async component API.
#[cfg(not(loom))]
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    use std::task::{Context, Poll, Waker};
    let future = std::pin::pin!(future);
    match future.poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        // A store that really waits (Redis, PostgreSQL) is driven by tokio, never by this.
        Poll::Pending => panic!("block_on drives only futures that are ready on first poll"),
    }
}
