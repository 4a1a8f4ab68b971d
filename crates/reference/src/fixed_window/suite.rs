//! The contention suite for fixed-window limiters, run against any implementation and store.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::ManualClock;
use crate::invariant::Judgement;
use crate::limit::{Limit, RateLimiter};
use crate::store::Store;
use crate::sync::block_on;
use crate::testing::burst;

use super::invariant;

/// `rounds` bursts of `threads` concurrent calls, each round on a fresh key: every burst admits
/// exactly `min(threads, max)`.
pub fn contention<L: RateLimiter + 'static>(
    limiter: Arc<L>,
    max: u64,
    threads: usize,
    rounds: usize,
) -> Judgement {
    for round in 0..rounds {
        let limiter = Arc::clone(&limiter);
        let decisions =
            burst(threads, move |_| block_on(limiter.check(&format!("round-{round}"))).expect("store call"));
        invariant::exactly_min_allowed(max, &decisions)?;
    }
    Ok(())
}

/// Keys are isolated: `ids` identifiers hit concurrently, each gets its own `min(calls, max)`.
pub fn keys_isolated<L: RateLimiter + 'static>(
    limiter: Arc<L>,
    max: u64,
    ids: usize,
    calls_per_id: usize,
) -> Judgement {
    let decisions = burst(ids * calls_per_id, move |i| {
        let id = format!("user-{}", i % ids);
        (i % ids, block_on(limiter.check(&id)).expect("store call"))
    });
    for id in 0..ids {
        let mine: Vec<_> = decisions.iter().filter(|(who, _)| *who == id).map(|(_, d)| *d).collect();
        invariant::exactly_min_allowed(max, &mine)?;
    }
    Ok(())
}

/// Every hit leaves the key with a TTL no longer than the window.
pub fn ttl_always_set<L: RateLimiter, S: Store>(
    limiter: &L,
    store: &S,
    key: &str,
    id: &str,
    limit: Limit,
) -> Judgement {
    for _ in 0..limit.max + 2 {
        block_on(limiter.check(id)).expect("store call");
        let ttl = block_on(store.pttl(key)).expect("store call");
        invariant::key_has_ttl(key, ttl, limit.window)?;
    }
    Ok(())
}

/// An identifier denied at the end of a busy window is allowed again once the window that its
/// first hit opened has passed, even though it kept calling in between.
pub fn window_ends<L: RateLimiter>(limiter: &L, clock: &ManualClock, limit: Limit) -> Judgement {
    window_ends_with(limiter, limit, |by| clock.advance(by))
}

/// [`window_ends`] with time passed by `pass`: the memory store's clock moves by hand, a
/// server's only by waiting (the caller's `pass` sleeps; a test on a server keeps the window
/// short).
pub fn window_ends_with<L: RateLimiter>(limiter: &L, limit: Limit, pass: impl Fn(Duration)) -> Judgement {
    let id = "steady-caller";
    let mut last = None;
    for _ in 0..=limit.max {
        last = Some(block_on(limiter.check(id)).expect("store call"));
    }
    let denied = last.expect("at least one call");
    pass(limit.window / 2);
    block_on(limiter.check(id)).expect("store call");
    pass(limit.window / 2 + Duration::from_millis(1));
    let after = block_on(limiter.check(id)).expect("store call");
    invariant::window_ends(&denied, &after)
}
