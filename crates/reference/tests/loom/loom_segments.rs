//! #13 segment concatenation: two joins of the same segments at once, every interleaving. A
//! join shares nothing — its cost is metered by the buffer it builds, not by anything global —
//! and this model holds that: each join's output and cost are its own.

use std::sync::Arc;

use loom::thread;
use reference::segments::mutants::QuadraticAppend;
use reference::segments::{Concatenate, Linear, invariant};

use crate::common::{Found, assert_caught, assert_holds, explore};

fn segments() -> Vec<Vec<u8>> {
    (0..4).map(|i| vec![i; 3]).collect()
}

/// Joins [`segments`] on a spawned thread and on the model's own, and judges both.
fn two_joins<C: Concatenate + Send + Sync + 'static>(imp: C, found: &Found) {
    let (imp, shared) = (Arc::new(imp), Arc::new(segments()));
    let other = {
        let (imp, shared) = (Arc::clone(&imp), Arc::clone(&shared));
        thread::spawn(move || imp.concat(&shared))
    };
    let joins = [imp.concat(&shared), other.join().unwrap()];
    for joined in joins {
        found.record(invariant::output_is_concatenation(&shared, &joined.bytes));
        found.record(invariant::linear_cost(&shared, joined.cost));
    }
}

#[test]
fn segments_concurrent_joins_are_each_linear() {
    assert_holds(&explore(|found| two_joins(Linear, found)));
}

#[test]
fn segments_mutant_quadratic_append_caught_by_loom() {
    assert_caught(&explore(|found| two_joins(QuadraticAppend, found)), "superlinear-copying");
}
