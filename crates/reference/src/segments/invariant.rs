//! The segment-concatenation invariants as checks over what a join produced and cost.

use crate::invariant::{Judgement, Violation};

use super::{COMPONENT, Cost, total_len};

/// The output is the segments, in order, nothing added or missing.
pub fn output_is_concatenation<T: AsRef<[u8]>>(segments: &[T], output: &[u8]) -> Judgement {
    let expected: Vec<u8> = segments.iter().flat_map(|s| s.as_ref().iter().copied()).collect();
    if output == expected.as_slice() {
        return Ok(());
    }
    let first_difference =
        output.iter().zip(&expected).position(|(a, b)| a != b).unwrap_or(output.len().min(expected.len()));
    Err(Violation::new(
        COMPONENT,
        "wrong-output",
        format!(
            "{} bytes out for {} segments totalling {} bytes; first difference at offset {first_difference}",
            output.len(),
            segments.len(),
            expected.len()
        ),
    ))
}

/// The join copied no byte more than once and allocated at most once: its cost is linear in
/// the total, independent of how many segments there were.
pub fn linear_cost<T: AsRef<[u8]>>(segments: &[T], cost: Cost) -> Judgement {
    let total = total_len(segments) as u64;
    if cost.copied > total {
        return Err(Violation::new(
            COMPONENT,
            "superlinear-copying",
            format!(
                "copied {} bytes to join {} segments totalling {total} bytes ({:.1}x the output)",
                cost.copied,
                segments.len(),
                cost.copied as f64 / total as f64
            ),
        ));
    }
    if cost.allocations > 1 {
        return Err(Violation::new(
            COMPONENT,
            "repeated-allocation",
            format!("{} allocations to join {} segments, expected one", cost.allocations, segments.len()),
        ));
    }
    Ok(())
}
