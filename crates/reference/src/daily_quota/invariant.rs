//! The daily-quota invariants as checks over what was observed.

use std::time::Duration;

use crate::invariant::{Judgement, Violation};
use crate::store::Ttl;

use super::{COMPONENT, Consumption};

/// Judges the consumes of one user on one local day, begun on a fresh day, against the units
/// the counter reads afterwards: nothing lost, nothing counted that was refused, never above
/// the limit, and nothing refused that would have fit.
pub fn day_total(limit: u64, consumptions: &[Consumption], used: u64) -> Judgement {
    let accepted: u64 = consumptions.iter().filter(|c| c.accepted).map(|c| c.units).sum();
    let calls = consumptions.len();
    let admitted = consumptions.iter().filter(|c| c.accepted).count();
    if used < accepted {
        return Err(Violation::new(
            COMPONENT,
            "lost-units",
            format!("{admitted} of {calls} consumes accepted for {accepted} units, the counter reads {used}"),
        ));
    }
    if used > accepted {
        return Err(Violation::new(
            COMPONENT,
            "phantom-units",
            format!("{admitted} of {calls} consumes accepted for {accepted} units, the counter reads {used}"),
        ));
    }
    if used > limit {
        return Err(Violation::new(
            COMPONENT,
            "over-admission",
            format!("{used} units accepted in one day, limit {limit}"),
        ));
    }
    // The count only grows within a day, so a refusal saw at most `used`.
    if let Some(refused) = consumptions.iter().find(|c| !c.accepted && used + c.units <= limit) {
        return Err(Violation::new(
            COMPONENT,
            "false-refusal",
            format!("{} units refused though the day ended at {used} of {limit}", refused.units),
        ));
    }
    Ok(())
}

/// A consume made before local midnight, on a day that had `used_before` units, still counts
/// against that day.
pub fn same_day(used_before: u64, consumption: &Consumption) -> Judgement {
    let expected = used_before + consumption.units;
    if !consumption.accepted || consumption.used == expected {
        return Ok(());
    }
    Err(Violation::new(
        COMPONENT,
        "early-reset",
        format!(
            "before local midnight a day at {used_before} units read {} after a consume",
            consumption.used
        ),
    ))
}

/// The first consume at or after local midnight sees a fresh day.
pub fn fresh_day(consumption: &Consumption) -> Judgement {
    if !consumption.accepted || consumption.used == consumption.units {
        return Ok(());
    }
    Err(Violation::new(
        COMPONENT,
        "missed-reset",
        format!(
            "the first consume of a local day ({} units) read {} used",
            consumption.units, consumption.used
        ),
    ))
}

/// A live counter key expires exactly at the next local midnight, `left` from now.
pub fn expires_at_local_midnight(key: &str, ttl: Ttl, left: Duration) -> Judgement {
    let rule = match ttl {
        Ttl::Remaining(remaining) if remaining == left => return Ok(()),
        Ttl::Remaining(remaining) if remaining < left => "ttl-before-midnight",
        Ttl::Missing => "ttl-before-midnight",
        Ttl::Remaining(_) | Ttl::Persistent => "ttl-past-midnight",
    };
    Err(Violation::new(
        COMPONENT,
        rule,
        format!("key {key} has TTL {ttl:?}, local midnight is {left:?} away"),
    ))
}
