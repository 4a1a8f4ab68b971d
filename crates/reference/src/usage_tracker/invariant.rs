//! The usage-tracker invariants as checks over what was observed.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::clock::Millis;
use crate::invariant::{Judgement, Violation};
use crate::store::Ttl;

use super::{Admission, COMPONENT, DAY_GRACE, DAY_MS, HOUR_MS, Usage, UsageLimits};

/// Of the requests granted at `granted_at`, no UTC day holds more than `per_day` and no UTC
/// hour more than `per_hour`.
pub fn never_over_limits(limits: UsageLimits, granted_at: &[Millis]) -> Judgement {
    for (name, period, limit) in [("day", DAY_MS, limits.per_day), ("hour", HOUR_MS, limits.per_hour)] {
        let mut counts: BTreeMap<u64, u64> = BTreeMap::new();
        for at in granted_at {
            *counts.entry(at / period).or_default() += 1;
        }
        if let Some((index, count)) = counts.into_iter().find(|(_, count)| *count > limit) {
            return Err(Violation::new(
                COMPONENT,
                "over-admission",
                format!("{count} requests granted in UTC {name} {index} since the epoch, limit {limit}"),
            ));
        }
    }
    Ok(())
}

/// Of a burst of concurrent requests at one instant, exactly `expected` (what the day's and
/// the hour's remaining quota allow) were granted.
pub fn burst_grants_exactly(expected: u64, admissions: &[Admission]) -> Judgement {
    let calls = admissions.len() as u64;
    let granted = admissions.iter().filter(|a| matches!(a, Admission::Granted(_))).count() as u64;
    let evidence =
        || format!("{granted} of {calls} simultaneous requests granted, remaining quota {expected}");
    match granted.cmp(&expected) {
        std::cmp::Ordering::Equal => Ok(()),
        std::cmp::Ordering::Greater => Err(Violation::new(COMPONENT, "over-admission", evidence())),
        std::cmp::Ordering::Less => Err(Violation::new(COMPONENT, "false-denial", evidence())),
    }
}

/// The counters read back equal what was granted and finished: nothing lost, nothing extra.
pub fn counters_conserved(granted: Usage, observed: Usage) -> Judgement {
    if granted == observed {
        return Ok(());
    }
    Err(Violation::new(
        COMPONENT,
        "counter-not-conserved",
        format!("counters read {observed:?}, requests granted and finished {granted:?}"),
    ))
}

/// Every key of the tracker carries a TTL, none longer than a day and its grace.
pub fn keys_carry_ttl(keys: &[(String, Ttl)]) -> Judgement {
    let longest = Duration::from_millis(DAY_MS) + DAY_GRACE;
    match keys.iter().find(|(_, ttl)| !matches!(ttl, Ttl::Remaining(left) if *left <= longest)) {
        None => Ok(()),
        Some((key, ttl)) => Err(Violation::new(
            COMPONENT,
            "key-without-ttl",
            format!("key {key} has TTL {ttl:?}, expected at most {longest:?}"),
        )),
    }
}
