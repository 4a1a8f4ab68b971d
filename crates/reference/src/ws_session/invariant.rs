//! The WebSocket session invariants as checks over what was observed.

use std::collections::{HashMap, HashSet};

use crate::clock::{Millis, millis};
use crate::invariant::{Judgement, Violation};

use super::COMPONENT;
use super::batcher::BatchConfig;

/// Of one burst of `admitted.len()` concurrent connects of one user holding no slot, exactly
/// `min(M, max)` were admitted.
pub fn exactly_min_admitted(max: usize, admitted: &[bool]) -> Judgement {
    let (calls, count) = (admitted.len(), admitted.iter().filter(|a| **a).count());
    let expected = calls.min(max);
    match count.cmp(&expected) {
        std::cmp::Ordering::Equal => Ok(()),
        std::cmp::Ordering::Greater => Err(Violation::new(
            COMPONENT,
            "over-admission",
            format!("{count} of {calls} concurrent connects admitted, limit {max}"),
        )),
        std::cmp::Ordering::Less => Err(Violation::new(
            COMPONENT,
            "false-refusal",
            format!("{count} of {calls} concurrent connects admitted, expected {expected}"),
        )),
    }
}

/// A user never has more than `max` live connections (admitted, not disconnected, lease kept
/// up by heartbeats).
pub fn within_limit(user: &str, max: usize, live: usize) -> Judgement {
    if live <= max {
        return Ok(());
    }
    Err(Violation::new(
        COMPONENT,
        "over-admission",
        format!("user {user} has {live} live connections, limit {max}"),
    ))
}

/// Once every connection of a user has disconnected, a burst of `admitted.len()` connects is
/// admitted exactly as on a fresh user: disconnects gave every slot back.
pub fn slots_freed(max: usize, admitted: &[bool]) -> Judgement {
    match exactly_min_admitted(max, admitted) {
        Err(v) if v.rule == "false-refusal" => Err(Violation::new(
            COMPONENT,
            "slot-leak",
            format!("after every connection disconnected: {}", v.evidence),
        )),
        other => other,
    }
}

/// What a batcher's driver saw, in call order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Message `id` was queued at `at`.
    Pushed { id: u64, at: Millis },
    /// Message `id` was refused at `at`.
    Refused { id: u64, at: Millis },
    /// A batch was handed out for the socket at `at`.
    Delivered { ids: Vec<u64>, at: Millis },
    /// The socket finished writing the last batch at `at`.
    Written { at: Millis },
}

/// Judges a batcher's history: messages delivered in push order, none duplicated, batches of at
/// most `max_batch`, each message out no later than `max_wait` after its push or the moment the
/// socket last became free, whichever is later (given polls at the batcher's deadlines),
/// refusals exactly at `bound` pending. With `settled` (the driver freed the socket and waited
/// out every deadline at the end) every accepted message must have been delivered.
pub fn batches(config: BatchConfig, events: &[Event], settled: bool) -> Judgement {
    let fail = |rule, evidence: String| Err(Violation::new(COMPONENT, rule, evidence));
    let max_wait = millis(config.max_wait);
    let mut accepted: Vec<u64> = Vec::new();
    let mut pushed_at: HashMap<u64, Millis> = HashMap::new();
    let mut delivered: HashSet<u64> = HashSet::new();
    let mut freed_at: Millis = 0;
    for event in events {
        let pending = accepted.len() - delivered.len();
        match event {
            Event::Pushed { id, at } => {
                if pending >= config.bound {
                    return fail(
                        "queue-overflow",
                        format!(
                            "message {id} accepted at {at} with {pending} pending, bound {}",
                            config.bound
                        ),
                    );
                }
                accepted.push(*id);
                pushed_at.insert(*id, *at);
            }
            Event::Refused { id, at } => {
                if pending < config.bound {
                    return fail(
                        "premature-refusal",
                        format!(
                            "message {id} refused at {at} with {pending} pending, bound {}",
                            config.bound
                        ),
                    );
                }
            }
            Event::Written { at } => freed_at = *at,
            Event::Delivered { ids, at } => {
                if ids.len() > config.max_batch {
                    return fail(
                        "oversized-batch",
                        format!("batch of {} at {at}, at most {}", ids.len(), config.max_batch),
                    );
                }
                for id in ids {
                    if !delivered.insert(*id) {
                        return fail("duplicated-message", format!("message {id} delivered again at {at}"));
                    }
                    let position = delivered.len() - 1;
                    if accepted.get(position) != Some(id) {
                        return fail(
                            "out-of-order",
                            format!(
                                "message {id} delivered at {at} in place of {:?}",
                                accepted.get(position)
                            ),
                        );
                    }
                    let pushed = pushed_at[id];
                    let limit = pushed.saturating_add(max_wait).max(freed_at);
                    if *at > limit {
                        return fail(
                            "late-delivery",
                            format!(
                                "message {id} pushed at {pushed} left at {at}, {} ms later; the socket was free \
                                 from {freed_at}, the limit is {} ms",
                                at - pushed,
                                max_wait
                            ),
                        );
                    }
                }
            }
        }
    }
    if settled && delivered.len() < accepted.len() {
        let lost: Vec<_> = accepted.iter().filter(|id| !delivered.contains(id)).take(10).collect();
        return fail(
            "lost-message",
            format!(
                "{} of {} accepted messages never delivered, first {lost:?}",
                accepted.len() - delivered.len(),
                accepted.len()
            ),
        );
    }
    Ok(())
}
