//! The WebSocket session suites, run against any implementation: concurrent connects and
//! disconnects on real threads, heartbeats against the clock, per-type limits under contention,
//! and the batcher driven through a trickle and a stalled socket.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::{ManualClock, Millis, millis};
use crate::fixed_window;
use crate::invariant::Judgement;
use crate::limit::RateLimiter;
use crate::sync::block_on;
use crate::testing::burst;

use super::batcher::{Batch, BatchConfig, Batching};
use super::invariant::{self, Event};
use super::{Connections, MessageLimits, message_limit, seed};

/// `rounds` rounds on fresh users: `threads` concurrent connects admit exactly
/// `min(threads, max)`.
pub fn concurrent_connects<C: Connections + 'static>(
    conns: Arc<C>,
    max: usize,
    threads: usize,
    rounds: usize,
) -> Judgement {
    for round in 0..rounds {
        let (c, user) = (Arc::clone(&conns), format!("user-{round}"));
        let admitted =
            burst(threads, move |i| block_on(c.connect(&user, &format!("c{i}"))).expect("store call"));
        invariant::exactly_min_admitted(max, &admitted)?;
    }
    Ok(())
}

/// `rounds` rounds on fresh users: a user holding all `max` slots closes every connection at
/// once, one thread each; afterwards `max` connects, one after the other, are all admitted.
pub fn concurrent_disconnects<C: Connections + 'static>(
    conns: Arc<C>,
    max: usize,
    rounds: usize,
) -> Judgement {
    for round in 0..rounds {
        let user = format!("user-{round}");
        for i in 0..max {
            block_on(conns.connect(&user, &format!("c{i}"))).expect("store call");
        }
        let (c, u) = (Arc::clone(&conns), user.clone());
        burst(max, move |i| block_on(c.disconnect(&u, &format!("c{i}"))).expect("store call"));
        let again: Vec<bool> =
            (0..max).map(|i| block_on(conns.connect(&user, &format!("d{i}"))).expect("store call")).collect();
        invariant::slots_freed(max, &again)?;
    }
    Ok(())
}

/// A user opens `max` connections and keeps them alive with a heartbeat every half lease for
/// three leases; one more connect must still be refused.
pub fn heartbeats_hold_slots<C: Connections>(
    conns: &C,
    clock: &ManualClock,
    max: usize,
    lease: Duration,
) -> Judgement {
    let user = "heartbeating";
    let ids: Vec<String> = (0..max).map(|i| format!("c{i}")).collect();
    let admitted: Vec<bool> =
        ids.iter().map(|id| block_on(conns.connect(user, id)).expect("store call")).collect();
    invariant::exactly_min_admitted(max, &admitted)?;
    let mut live = ids.len();
    for _ in 0..6 {
        clock.advance(lease / 2);
        for id in &ids {
            if !block_on(conns.heartbeat(user, id)).expect("store call") {
                live -= 1;
            }
        }
    }
    if block_on(conns.connect(user, "one-more")).expect("store call") {
        live += 1;
    }
    invariant::within_limit(user, max, live)
}

/// A process holding `max` connections of a user crashes (no heartbeat, no disconnect); once
/// the lease has passed, the user can open `max` new ones.
pub fn lapsed_slots_freed<C: Connections>(
    conns: &C,
    clock: &ManualClock,
    max: usize,
    lease: Duration,
) -> Judgement {
    let user = "crashed";
    for i in 0..max {
        block_on(conns.connect(user, &format!("old{i}"))).expect("store call");
    }
    clock.advance(lease + Duration::from_millis(1));
    let again: Vec<bool> =
        (0..max).map(|i| block_on(conns.connect(user, &format!("new{i}"))).expect("store call")).collect();
    invariant::slots_freed(max, &again)
}

/// The message types the suite sends: the seed's three and two that share the "other" budget.
pub const MESSAGE_TYPES: [&str; 5] =
    ["comment_add", "typing_indicator", "reaction_add", "poll_vote", "cursor_move"];

/// `rounds` rounds on fresh users: `threads` threads each send `per_thread` messages of every
/// type in [`MESSAGE_TYPES`] at once; each type (and the shared "other" budget) admits exactly
/// `min(calls, its limit)`.
pub fn message_limits<L: RateLimiter + 'static>(
    limits: Arc<MessageLimits<L>>,
    threads: usize,
    per_thread: usize,
    rounds: usize,
) -> Judgement {
    for round in 0..rounds {
        let (l, user) = (Arc::clone(&limits), format!("user-{round}"));
        let decisions: Vec<_> = burst(threads, move |_| {
            let mut mine = Vec::new();
            for _ in 0..per_thread {
                for kind in MESSAGE_TYPES {
                    mine.push((kind, block_on(l.check(&user, kind)).expect("store call")));
                }
            }
            mine
        })
        .into_iter()
        .flatten()
        .collect();
        for bucket in ["comment_add", "typing_indicator", "reaction_add", "other"] {
            let mine: Vec<_> =
                decisions.iter().filter(|(k, _)| bucket_of(k) == bucket).map(|(_, d)| *d).collect();
            fixed_window::invariant::exactly_min_allowed(message_limit(bucket).max, &mine)?;
        }
    }
    Ok(())
}

/// The budget a message type counts against: its own if the seed's table lists it, else the
/// shared "other" one.
fn bucket_of(kind: &str) -> &str {
    if seed::MESSAGE_LIMITS.iter().any(|(k, _)| *k == kind) { kind } else { "other" }
}

/// Drives a batcher the way a socket task does and records what it saw: messages numbered in
/// push order, polls at the batcher's deadlines, and a socket that writes each batch at once
/// (`instant_socket`) or only when told ([`Driver::written`]).
#[derive(Debug)]
pub struct Driver<B> {
    batcher: B,
    now: Millis,
    next_id: u64,
    on_the_wire: bool,
    instant_socket: bool,
    events: Vec<Event>,
}

impl<B: Batching<u64>> Driver<B> {
    pub fn new(batcher: B, start: Millis, instant_socket: bool) -> Self {
        Self { batcher, now: start, next_id: 0, on_the_wire: false, instant_socket, events: Vec::new() }
    }

    pub fn now(&self) -> Millis {
        self.now
    }

    pub fn batcher(&self) -> &B {
        &self.batcher
    }

    pub fn events(&self) -> &[Event] {
        &self.events
    }

    pub fn on_the_wire(&self) -> bool {
        self.on_the_wire
    }

    /// Pushes the next message; whether it was accepted, and the batch that left (before an
    /// instant socket wrote it).
    pub fn push(&mut self) -> (bool, Option<Batch<u64>>) {
        let (id, at) = (self.next_id, self.now);
        self.next_id += 1;
        match self.batcher.push(id, at) {
            Ok(batch) => {
                self.events.push(Event::Pushed { id, at });
                (true, self.record(batch))
            }
            Err(full) => {
                self.events.push(Event::Refused { id: full.message, at });
                (false, None)
            }
        }
    }

    /// Moves the clock to `at` (never backwards) and polls.
    pub fn poll_at(&mut self, at: Millis) -> Option<Batch<u64>> {
        self.now = self.now.max(at);
        let batch = self.batcher.poll(self.now);
        self.record(batch)
    }

    /// Moves the clock to `target`, polling at every deadline the batcher sets on the way.
    pub fn advance_to(&mut self, target: Millis) {
        while let Some(deadline) = self.batcher.next_deadline().filter(|d| *d <= target) {
            if self.poll_at(deadline).is_none() && self.batcher.next_deadline() == Some(deadline) {
                break; // The batcher ignores its own deadline; the history shows the wait.
            }
        }
        self.now = self.now.max(target);
    }

    /// The socket has written the batch on the wire.
    pub fn written(&mut self) -> Option<Batch<u64>> {
        self.on_the_wire = false;
        self.events.push(Event::Written { at: self.now });
        let batch = self.batcher.sent(self.now);
        self.record(batch)
    }

    /// Frees the socket and waits out every deadline until nothing is pending.
    pub fn settle(&mut self) {
        self.instant_socket = true;
        if self.on_the_wire {
            self.written();
        }
        while self.batcher.pending() > 0 {
            let Some(deadline) = self.batcher.next_deadline() else { break };
            let before = self.batcher.pending();
            self.advance_to(deadline);
            if self.batcher.pending() == before {
                break;
            }
        }
    }

    fn record(&mut self, batch: Option<Batch<u64>>) -> Option<Batch<u64>> {
        let ids = batch?;
        self.events.push(Event::Delivered { ids: ids.clone(), at: self.now });
        self.on_the_wire = true;
        if self.instant_socket {
            self.written();
        }
        Some(ids)
    }
}

/// A steady trickle: `messages` messages `gap` apart on a socket that writes at once, then
/// settled. No message may wait more than `max_wait`.
pub fn trickle<B: Batching<u64>>(
    batcher: B,
    config: BatchConfig,
    gap: Duration,
    messages: usize,
) -> Judgement {
    let mut driver = Driver::new(batcher, 0, true);
    for _ in 0..messages {
        driver.push();
        let next = driver.now() + millis(gap);
        driver.advance_to(next);
    }
    driver.settle();
    invariant::batches(config, driver.events(), true)
}

/// A stalled socket: one batch goes on the wire and is not written while `bound + 1` more
/// messages arrive; the last is refused, and once the socket drains, the `bound` accepted ones
/// all leave, in order.
pub fn stalled_socket<B: Batching<u64>>(batcher: B, config: BatchConfig) -> Judgement {
    let mut driver = Driver::new(batcher, 0, false);
    driver.push();
    driver.advance_to(millis(config.max_wait));
    for _ in 0..=config.bound {
        driver.push();
        let next = driver.now() + 1;
        driver.advance_to(next);
    }
    driver.settle();
    invariant::batches(config, driver.events(), true)
}
