//! The fixed-window invariants as checks over what was observed.

use crate::invariant::{Judgement, Violation};
use crate::limit::Decision;
use crate::store::Ttl;

use super::COMPONENT;

/// Of the `decisions` of one burst of calls inside one window for one key, starting from an
/// empty window, exactly `min(M, max)` were allowed.
pub fn exactly_min_allowed(max: u64, decisions: &[Decision]) -> Judgement {
    let calls = decisions.len() as u64;
    let allowed = decisions.iter().filter(|d| d.allowed).count() as u64;
    let expected = calls.min(max);
    match allowed.cmp(&expected) {
        std::cmp::Ordering::Equal => Ok(()),
        std::cmp::Ordering::Greater => Err(Violation::new(
            COMPONENT,
            "over-admission",
            format!("{allowed} of {calls} calls allowed in one window, limit {max}"),
        )),
        std::cmp::Ordering::Less => Err(Violation::new(
            COMPONENT,
            "false-denial",
            format!("{allowed} of {calls} calls allowed in one window, expected {expected}"),
        )),
    }
}

/// The key of a limiter that has been hit carries a TTL no longer than the window.
pub fn key_has_ttl(key: &str, ttl: Ttl, window: std::time::Duration) -> Judgement {
    match ttl {
        Ttl::Remaining(left) if left <= window => Ok(()),
        other => Err(Violation::new(
            COMPONENT,
            "key-without-ttl",
            format!("key {key} has TTL {other:?} after a hit, window {window:?}"),
        )),
    }
}

/// A call made once a full window has passed since the denied call `denied` is allowed.
pub fn window_ends(denied: &Decision, after_window: &Decision) -> Judgement {
    if denied.allowed || after_window.allowed {
        return Ok(());
    }
    Err(Violation::new(
        COMPONENT,
        "window-never-ends",
        format!("still denied a full window after a denial ({after_window:?})"),
    ))
}
