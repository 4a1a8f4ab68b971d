//! Operation strategies and the mutant-rejection runner shared by the model-based tests.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestError, TestRunner};

/// One step of a generated history: a call on key `k{n}`, or the clock moving on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Call(u8),
    Advance(u64),
}

/// Histories of calls on `keys` keys interleaved with clock moves of up to `max_advance` ms.
pub(crate) fn ops(keys: u8, max_advance: u64) -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        3 => (0..keys).prop_map(Op::Call),
        1 => (0..=max_advance).prop_map(Op::Advance),
    ];
    proptest::collection::vec(op, 1..60)
}

/// Whether the model-based property `check` rejects some generated history — what a mutant
/// must do. The failing history is shrunk and printed, as evidence.
pub(crate) fn model_rejects<S, F>(strategy: S, check: F) -> bool
where
    S: Strategy,
    S::Value: std::fmt::Debug,
    F: Fn(&S::Value) -> Result<(), String>,
{
    let mut runner = TestRunner::new(Config { cases: 512, failure_persistence: None, ..Config::default() });
    match runner.run(&strategy, |value| check(&value).map_err(TestCaseError::fail)) {
        Ok(()) => false,
        Err(TestError::Fail(reason, value)) => {
            eprintln!("mutant rejected: {reason}\n  minimal history: {value:?}");
            true
        }
        Err(TestError::Abort(reason)) => panic!("model run aborted: {reason}"),
    }
}
