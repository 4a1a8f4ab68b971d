//! The task-queue invariants as checks over a drained run.

use std::collections::{BTreeMap, BTreeSet};

use crate::invariant::{Judgement, Violation};
use crate::store::QueueDepth;

use super::COMPONENT;

/// What a run left behind once the workers stopped finding work.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Drained {
    /// Every task id the producer enqueued.
    pub enqueued: Vec<u64>,
    /// Task id → how many deliveries reported its effect as taking hold.
    pub applied: BTreeMap<u64, usize>,
    /// The task ids whose effect is in the store.
    pub took_effect: BTreeSet<u64>,
    pub depth: QueueDepth,
}

/// The queue drained, and every enqueued task took effect exactly once.
pub fn exactly_once(run: &Drained) -> Judgement {
    if run.depth != QueueDepth::default() {
        return Err(Violation::new(
            COMPONENT,
            "queue-not-drained",
            format!("{} tasks ready and {} in flight after the run", run.depth.ready, run.depth.in_flight),
        ));
    }
    let lost: Vec<u64> = run.enqueued.iter().copied().filter(|id| !run.took_effect.contains(id)).collect();
    if !lost.is_empty() {
        return Err(Violation::new(
            COMPONENT,
            "task-lost",
            format!(
                "{} of {} tasks never took effect and are no longer queued (first: {:?})",
                lost.len(),
                run.enqueued.len(),
                &lost[..lost.len().min(5)]
            ),
        ));
    }
    if let Some((id, times)) = run.applied.iter().find(|(_, times)| **times > 1) {
        return Err(Violation::new(
            COMPONENT,
            "effect-duplicated",
            format!("task {id} took effect {times} times"),
        ));
    }
    Ok(())
}
