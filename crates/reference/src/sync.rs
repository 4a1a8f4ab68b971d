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

/// Runs a future to completion on the current thread.
///
/// Under loom the futures are the memory store's, always ready on first poll.
#[cfg(loom)]
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    loom::future::block_on(future)
}

/// Runs a future to completion on the current thread: how the synchronous tests, the contention
/// suites' threads and the benchmarks drive the async component API.
///
/// The memory store's futures are ready on first poll and cost no allocation here; a future
/// that waits (a network store's) parks the thread until its waker fires. Such a store must
/// drive its I/O itself (on its own runtime), not from inside this poll.
#[cfg(not(loom))]
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    use std::task::{Context, Poll, Waker};
    let mut future = std::pin::pin!(future);
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => pollster::block_on(future),
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::task::{Context, Poll};

    use super::{AtomicU64, Ordering, block_on};

    /// Pending until another thread has run and woken the latest waker it was given.
    struct WokenFromAnotherThread(Arc<AtomicU64>);

    impl Future for WokenFromAnotherThread {
        type Output = u64;

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u64> {
            if self.0.load(Ordering::SeqCst) == 1 {
                return Poll::Ready(7);
            }
            let (done, waker) = (Arc::clone(&self.0), cx.waker().clone());
            std::thread::spawn(move || {
                done.store(1, Ordering::SeqCst);
                waker.wake();
            });
            Poll::Pending
        }
    }

    #[test]
    fn block_on_drives_a_ready_future() {
        assert_eq!(block_on(async { 3 }), 3);
    }

    #[test]
    fn block_on_parks_until_a_pending_future_is_woken() {
        assert_eq!(block_on(WokenFromAnotherThread(Arc::new(AtomicU64::new(0)))), 7);
    }
}
