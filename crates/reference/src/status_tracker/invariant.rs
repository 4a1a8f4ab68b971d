//! The status-tracker invariants as checks over what was observed.

use std::time::Duration;

use crate::invariant::{Judgement, Violation};
use crate::store::Ttl;

use super::{COMPONENT, Fields, MAX_FIELDS, MAX_STATUS_BYTES, TTL, encode};

/// After merges of disjoint fields, the stored status holds every one of them.
pub fn merges_survive(key: &str, merged: &Fields, stored: Option<&Fields>) -> Judgement {
    let empty = Fields::new();
    let stored = stored.unwrap_or(&empty);
    let lost: Vec<&str> = merged
        .iter()
        .filter(|(name, value)| stored.get(*name) != Some(value))
        .map(|(n, _)| n.as_str())
        .collect();
    if lost.is_empty() {
        return Ok(());
    }
    Err(Violation::new(
        COMPONENT,
        "lost-field",
        format!("{} of {} merged fields missing from {key}: {}", lost.len(), merged.len(), lost.join(", ")),
    ))
}

/// A status key that exists carries a TTL of at most 24 h.
pub fn ttl_within_a_day(key: &str, ttl: Ttl) -> Judgement {
    match ttl {
        Ttl::Missing => Ok(()),
        Ttl::Remaining(left) if left <= TTL => Ok(()),
        Ttl::Persistent => {
            Err(Violation::new(COMPONENT, "key-without-ttl", format!("status {key} never expires")))
        }
        Ttl::Remaining(left) => Err(Violation::new(
            COMPONENT,
            "ttl-over-a-day",
            format!("status {key} expires in {left:?}, more than {TTL:?}"),
        )),
    }
}

/// A status read `since_write` after its last write is there before 24 h and gone from then on.
pub fn lives_a_day(key: &str, since_write: Duration, stored: Option<&Fields>) -> Judgement {
    match (since_write < TTL, stored.is_some()) {
        (true, true) | (false, false) => Ok(()),
        (true, false) => Err(Violation::new(
            COMPONENT,
            "expired-early",
            format!("status {key} gone {since_write:?} after its last write"),
        )),
        (false, true) => Err(Violation::new(
            COMPONENT,
            "outlived-ttl",
            format!("status {key} still there {since_write:?} after its last write"),
        )),
    }
}

/// A status written only by capped merges holds at most [`MAX_FIELDS`] fields and
/// [`MAX_STATUS_BYTES`] bytes of JSON.
pub fn within_caps(key: &str, stored: Option<&Fields>) -> Judgement {
    let Some(stored) = stored else { return Ok(()) };
    let bytes = encode(stored).len();
    if stored.len() <= MAX_FIELDS && bytes <= MAX_STATUS_BYTES {
        return Ok(());
    }
    Err(Violation::new(
        COMPONENT,
        "status-over-cap",
        format!(
            "status {key} holds {} fields, {bytes} bytes of JSON: over the caps of {MAX_FIELDS} fields, \
             {MAX_STATUS_BYTES} bytes",
            stored.len()
        ),
    ))
}

/// A merge refused for a cap wrote nothing: none of its fields is in the stored status.
pub fn refused_not_written(key: &str, refused: &[String], stored: Option<&Fields>) -> Judgement {
    let written: Vec<&str> = refused
        .iter()
        .filter(|name| stored.is_some_and(|s| s.contains_key(*name)))
        .map(String::as_str)
        .collect();
    if written.is_empty() {
        return Ok(());
    }
    Err(Violation::new(
        COMPONENT,
        "refused-field-written",
        format!("{key} holds fields of merges refused for a cap: {}", written.join(", ")),
    ))
}
