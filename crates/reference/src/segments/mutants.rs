//! Segment concatenation as the field wrote it before the fix.

use super::{Buffer, Concatenate, Joined};

/// `all_bytes += piece.raw_data` in a loop (seed 003 "before"): bytes are immutable, so every
/// `+=` allocates a new object and re-copies the whole accumulator. Joining `n` segments of `s`
/// bytes copies about `n²·s/2` bytes and allocates `n` times.
#[derive(Debug, Clone, Copy, Default)]
pub struct QuadraticAppend;

impl Concatenate for QuadraticAppend {
    fn concat<T: AsRef<[u8]>>(&self, segments: &[T]) -> Joined {
        let mut acc = Buffer::default();
        for segment in segments {
            acc = acc.plus(segment.as_ref());
        }
        acc.finish()
    }
}
