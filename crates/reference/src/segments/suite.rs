//! The segment-concatenation suite, run against any implementation. A join is a pure function
//! of its inputs, so there is no contention to provoke: the suite judges output and cost.

use crate::invariant::Judgement;

use super::{Concatenate, invariant};

/// Joins `segments` and judges the output and the cost.
pub fn join<C: Concatenate, T: AsRef<[u8]>>(imp: &C, segments: &[T]) -> Judgement {
    let joined = imp.concat(segments);
    invariant::output_is_concatenation(segments, &joined.bytes)?;
    invariant::linear_cost(segments, joined.cost)
}

/// The seed's table: 10, 100 and 1,000 segments of `segment_len` distinct-looking bytes each.
pub fn seed_sizes<C: Concatenate>(imp: &C, segment_len: usize) -> Judgement {
    for count in [10, 100, 1_000] {
        join(imp, &segments(count, segment_len))?;
    }
    Ok(())
}

/// `count` segments of `len` bytes, each filled with a byte of its own so misplacement shows.
pub fn segments(count: usize, len: usize) -> Vec<Vec<u8>> {
    (0..count).map(|i| vec![(i % 251) as u8; len]).collect()
}
