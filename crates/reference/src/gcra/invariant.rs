//! The GCRA invariants as checks over what was observed.

use crate::clock::Millis;
use crate::invariant::{Judgement, Violation};
use crate::limit::Decision;

use super::{COMPONENT, NANOS_PER_MILLI, Params};

/// The GCRA burst bound: of the admissions made at `allowed_at` (in any order), every closed
/// interval of length `L` holds at most `burst + floor(L / T)`.
pub fn burst_bound(params: Params, allowed_at: &[Millis]) -> Judgement {
    let mut times = allowed_at.to_vec();
    times.sort_unstable();
    let burst = usize::try_from(params.burst).unwrap_or(usize::MAX);
    for (i, first) in times.iter().enumerate() {
        // Fewer than `burst + 1` admissions never break the bound.
        for (offset, last) in times.iter().enumerate().skip(i).skip(burst) {
            let count = (offset - i + 1) as u128;
            let length = u128::from(last - first) * u128::from(NANOS_PER_MILLI);
            let excess = count - burst as u128;
            if excess * u128::from(params.interval) > length {
                let bound = burst as u128 + length / u128::from(params.interval.max(1));
                return Err(Violation::new(
                    COMPONENT,
                    "over-admission",
                    format!(
                        "{count} admissions between {first} and {last} ms; bound {bound} \
                         (burst {} + floor({} ms / T), T = {:?})",
                        params.burst,
                        last - first,
                        params.interval()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Of a burst of concurrent calls at one instant, exactly `expected` (what a sequential GCRA
/// admits from the same state) were admitted.
pub fn burst_admits_exactly(expected: u64, decisions: &[Decision]) -> Judgement {
    let calls = decisions.len() as u64;
    let allowed = decisions.iter().filter(|d| d.allowed).count() as u64;
    let evidence =
        || format!("{allowed} of {calls} simultaneous calls admitted, a sequential gcra admits {expected}");
    match allowed.cmp(&expected) {
        std::cmp::Ordering::Equal => Ok(()),
        std::cmp::Ordering::Greater => Err(Violation::new(COMPONENT, "over-admission", evidence())),
        std::cmp::Ordering::Less => Err(Violation::new(COMPONENT, "false-denial", evidence())),
    }
}
