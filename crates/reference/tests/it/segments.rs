//! #13 segment concatenation. A pure function: no contention test, nothing is shared.

use proptest::prelude::*;
use reference::segments::mutants::QuadraticAppend;
use reference::segments::{Concatenate, Linear, invariant, suite};

use crate::common::model_rejects;

/// Segment lists of every shape: none, empty segments, uneven lengths.
fn segment_lists() -> impl Strategy<Value = Vec<Vec<u8>>> {
    proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..48), 0..40)
}

/// The join against the trivially correct model (`<[Vec<u8>]>::concat`), and its cost.
fn against_model<C: Concatenate>(imp: &C, segments: &[Vec<u8>]) -> Result<(), String> {
    let joined = imp.concat(segments);
    if joined.bytes != segments.concat() {
        return Err(format!("output differs from the model for {} segments", segments.len()));
    }
    invariant::linear_cost(segments, joined.cost).map_err(|v| v.to_string())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn segments_linear_matches_model(segments in segment_lists()) {
        prop_assert_eq!(against_model(&Linear, &segments), Ok(()));
        prop_assert_eq!(suite::join(&Linear, &segments), Ok(()));
    }
}

#[test]
fn segments_linear_copies_exactly_the_total_at_seed_sizes() {
    suite::seed_sizes(&Linear, 1_024).unwrap();
    for count in [10u64, 100, 1_000] {
        let joined = Linear.concat(&suite::segments(count as usize, 1_024));
        assert_eq!(joined.cost.copied, count * 1_024);
        assert_eq!(joined.cost.allocations, 1);
    }
}

#[test]
fn segments_linear_joins_nothing_without_allocating() {
    let joined = Linear.concat(&[Vec::<u8>::new(), Vec::new()]);
    assert!(joined.bytes.is_empty());
    assert_eq!((joined.cost.copied, joined.cost.allocations), (0, 0));
}

#[test]
fn segments_mutant_quadratic_append_caught_by_cost_check() {
    let violation = suite::seed_sizes(&QuadraticAppend, 1_024).unwrap_err();
    assert_eq!(violation.rule, "superlinear-copying", "{violation}");
    // Step i re-copies the i - 1 segments already joined: n(n + 1)/2 segment sizes in all.
    for count in [10u64, 100, 1_000] {
        let joined = QuadraticAppend.concat(&suite::segments(count as usize, 1_024));
        assert_eq!(joined.cost.copied, count * (count + 1) / 2 * 1_024);
        assert_eq!(joined.cost.allocations, count);
    }
}

#[test]
fn segments_mutant_quadratic_append_output_passes_so_only_cost_catches_it() {
    let segments = suite::segments(100, 64);
    let joined = QuadraticAppend.concat(&segments);
    invariant::output_is_concatenation(&segments, &joined.bytes).unwrap();
    let violation = invariant::linear_cost(&segments, joined.cost).unwrap_err();
    assert_eq!(violation.rule, "superlinear-copying", "{violation}");
}

#[test]
fn segments_mutant_quadratic_append_rejected_by_model() {
    assert!(model_rejects(segment_lists(), |segments| against_model(&QuadraticAppend, segments)));
}
