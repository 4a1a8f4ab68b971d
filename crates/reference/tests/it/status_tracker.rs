//! #6 processing-status tracker.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use reference::clock::{Clock, ManualClock, Millis, millis};
use reference::status_tracker::{
    Cap, Fields, MAX_FIELD_BYTES, MAX_FIELDS, MAX_STATUS_BYTES, StatusError, StatusTracker, TTL, Tracker,
    invariant, key, mutants, suite,
};
use reference::store::{MemoryStore, Store, Ttl};
use reference::sync::block_on;
use serde_json::json;

use crate::common::model_rejects;

fn rig() -> (Arc<ManualClock>, MemoryStore) {
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let store = MemoryStore::new(clock.clone());
    (clock, store)
}

fn correct(store: &MemoryStore) -> Tracker<MemoryStore> {
    Tracker::new(store.clone())
}

fn read_modify_write(store: &MemoryStore) -> mutants::ReadModifyWrite<MemoryStore> {
    mutants::ReadModifyWrite { store: store.clone() }
}

fn merge_without_ttl(store: &MemoryStore) -> mutants::MergeWithoutTtl<MemoryStore> {
    mutants::MergeWithoutTtl { store: store.clone() }
}

// --- contention: real threads -------------------------------------------------------------

#[test]
fn status_tracker_contention_disjoint_merges_all_survive() {
    let (_, store) = rig();
    suite::disjoint_merges(Arc::new(correct(&store)), 16, 4, 50).unwrap();
}

#[test]
fn status_tracker_mutant_read_modify_write_caught_by_contention() {
    let (_, store) = rig();
    // Races are probabilistic on real threads; many rounds make a miss vanishingly unlikely.
    let violation = suite::disjoint_merges(Arc::new(read_modify_write(&store)), 16, 4, 500).unwrap_err();
    assert_eq!(violation.rule, "lost-field", "{violation}");
}

// --- TTL -----------------------------------------------------------------------------------

#[test]
fn status_tracker_expires_a_day_after_last_write() {
    let (clock, store) = rig();
    suite::expires_a_day_after_last_write(&correct(&store), &store, &clock).unwrap();
}

#[test]
fn status_tracker_mutant_merge_without_ttl_caught_by_ttl_check() {
    let (clock, store) = rig();
    let violation =
        suite::expires_a_day_after_last_write(&merge_without_ttl(&store), &store, &clock).unwrap_err();
    assert_eq!(violation.rule, "key-without-ttl", "{violation}");
}

#[test]
fn status_tracker_merge_keeps_other_fields() {
    let (_, store) = rig();
    let tracker = correct(&store);
    let status = Fields::from_iter([("stage".into(), json!("transcribing")), ("progress".into(), json!(10))]);
    block_on(tracker.update("v1", status)).unwrap();
    let merged = block_on(tracker.merge("v1", Fields::from_iter([("progress".into(), json!(55))]))).unwrap();
    let expected =
        Fields::from_iter([("stage".into(), json!("transcribing")), ("progress".into(), json!(55))]);
    assert_eq!(merged, expected);
    assert_eq!(block_on(tracker.get("v1")).unwrap(), Some(expected));
}

// --- caps ----------------------------------------------------------------------------------

/// `count` fields named `{prefix}{n}`, each a string of `chars` characters.
fn capped_fields(prefix: &str, count: usize, chars: usize) -> Fields {
    (0..count).map(|n| (format!("{prefix}{n}"), json!("x".repeat(chars)))).collect()
}

fn refused_for(result: Result<Fields, StatusError>) -> Cap {
    match result {
        Err(StatusError::OverCap { cap, .. }) => cap,
        other => panic!("expected a refusal for a cap, got {other:?}"),
    }
}

#[test]
fn status_tracker_capped_merge_takes_each_cap_exactly_and_refuses_one_more_writing_nothing() {
    let (_, store) = rig();
    let tracker = correct(&store);
    // One field's value: exactly MAX_FIELD_BYTES of JSON passes, one byte more does not.
    block_on(tracker.merge_capped("v1", capped_fields("big", 1, MAX_FIELD_BYTES - 2))).unwrap();
    assert_eq!(
        refused_for(block_on(tracker.merge_capped("v1", capped_fields("bigger", 1, MAX_FIELD_BYTES - 1)))),
        Cap::FieldBytes
    );
    // Fields: up to MAX_FIELDS in the status, not one more, whether asked at once or merged in.
    block_on(tracker.merge_capped("v2", capped_fields("f", MAX_FIELDS, 1))).unwrap();
    let before = block_on(tracker.get("v2")).unwrap();
    assert_eq!(refused_for(block_on(tracker.merge_capped("v2", capped_fields("g", 1, 1)))), Cap::Fields);
    assert_eq!(
        refused_for(block_on(tracker.merge_capped("v3", capped_fields("f", MAX_FIELDS + 1, 1)))),
        Cap::Fields
    );
    assert_eq!(block_on(tracker.get("v3")).unwrap(), None, "a refused request writes nothing");
    // Replacing fields a full status holds is not growing it.
    block_on(tracker.merge_capped("v2", capped_fields("f", 2, 3))).unwrap();
    assert_eq!(block_on(tracker.get("v2")).unwrap().unwrap().len(), MAX_FIELDS);
    assert_ne!(block_on(tracker.get("v2")).unwrap(), before);
    // Bytes: fields within their own cap that together pass the status's.
    let quarter = capped_fields("q", 4, MAX_FIELD_BYTES - 2);
    assert_eq!(refused_for(block_on(tracker.merge_capped("v4", quarter.clone()))), Cap::StatusBytes);
    for (name, value) in quarter.iter().take(3) {
        block_on(tracker.merge_capped("v4", Fields::from_iter([(name.clone(), value.clone())]))).unwrap();
    }
    let full = block_on(tracker.get("v4")).unwrap();
    let last = Fields::from_iter(quarter.into_iter().skip(3));
    assert_eq!(refused_for(block_on(tracker.merge_capped("v4", last))), Cap::StatusBytes);
    assert_eq!(block_on(tracker.get("v4")).unwrap(), full, "a refused merge changes nothing");
    assert!(serde_json::to_vec(&full).unwrap().len() <= MAX_STATUS_BYTES);
    // The service's own merges are not capped.
    block_on(tracker.merge("v2", capped_fields("service", 1, 1))).unwrap();
    assert_eq!(block_on(tracker.get("v2")).unwrap().unwrap().len(), MAX_FIELDS + 1);
}

#[test]
fn status_tracker_refusal_names_the_cap_and_its_value() {
    let (_, store) = rig();
    let error =
        block_on(correct(&store).merge_capped("v1", capped_fields("f", 1, MAX_FIELD_BYTES))).unwrap_err();
    let text = error.to_string();
    assert!(text.contains("max_field_bytes") && text.contains(&MAX_FIELD_BYTES.to_string()), "{text}");
    assert!(text.contains("\"f0\""), "names the field: {text}");
}

#[test]
fn status_tracker_mutant_unbounded_status_grows_past_every_cap() {
    let (_, store) = rig();
    let mutant = mutants::UnboundedStatus { store: store.clone() };
    block_on(mutant.merge_capped("v1", capped_fields("huge", 1, 4 * MAX_FIELD_BYTES))).unwrap();
    block_on(mutant.merge_capped("v1", capped_fields("f", MAX_FIELDS, 1))).unwrap();
    let stored = block_on(mutant.get("v1")).unwrap();
    let violation = invariant::within_caps(&key("v1"), stored.as_ref()).unwrap_err();
    assert_eq!(violation.rule, "status-over-cap", "{violation}");
    // The suite catches it too, and passes the correct tracker.
    let violation = suite::capped_merges_stay_within_caps(Arc::new(mutant), 8, 2, 1).unwrap_err();
    assert_eq!(violation.rule, "status-over-cap", "{violation}");
    let (_, fresh) = rig();
    suite::capped_merges_stay_within_caps(Arc::new(correct(&fresh)), 8, 2, 20).unwrap();
}

// --- model-based ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Step {
    Update(u8, Vec<(u8, u8)>),
    Merge(u8, Vec<(u8, u8)>),
    Get(u8),
    Advance(u64),
}

const DAY: u64 = 24 * 60 * 60 * 1_000;

fn histories() -> impl Strategy<Value = Vec<Step>> {
    let fields = || proptest::collection::vec((0..4u8, 0..3u8), 0..3);
    let step = prop_oneof![
        2 => (0..3u8, fields()).prop_map(|(video, fields)| Step::Update(video, fields)),
        3 => (0..3u8, fields()).prop_map(|(video, fields)| Step::Merge(video, fields)),
        2 => (0..3u8).prop_map(Step::Get),
        1 => (0..=2 * 60 * 60 * 1_000u64).prop_map(Step::Advance),
        1 => (0..=30 * 60 * 60 * 1_000u64).prop_map(Step::Advance),
        1 => prop::sample::select(vec![1, DAY - 1, DAY]).prop_map(Step::Advance),
    ];
    proptest::collection::vec(step, 1..60)
}

fn fields(pairs: &[(u8, u8)]) -> Fields {
    pairs.iter().map(|(name, value)| (format!("f{name}"), json!(value))).collect()
}

/// The trivially correct model: per video, its fields and when it expires.
#[derive(Default)]
struct Model {
    statuses: HashMap<u8, (Fields, Millis)>,
}

impl Model {
    fn live(&mut self, video: u8, now: Millis) -> Option<&mut (Fields, Millis)> {
        self.statuses.retain(|_, (_, expires_at)| *expires_at > now);
        self.statuses.get_mut(&video)
    }
}

/// Runs `steps` against a tracker and the model; the first disagreement, if any. After every
/// step each status key must expire exactly when the model says.
fn against_model<T: StatusTracker>(make: fn(&MemoryStore) -> T, steps: &[Step]) -> Result<(), String> {
    let (clock, store) = rig();
    let tracker = make(&store);
    let mut model = Model::default();
    let err = |e: &dyn std::fmt::Display| e.to_string();
    for (n, step) in steps.iter().enumerate() {
        let now = clock.now();
        match step {
            Step::Advance(ms) => clock.advance(Duration::from_millis(*ms)),
            Step::Update(video, pairs) => {
                block_on(tracker.update(&format!("v{video}"), fields(pairs))).map_err(|e| err(&e))?;
                model.statuses.insert(*video, (fields(pairs), now + millis(TTL)));
            }
            Step::Merge(video, pairs) => {
                let got =
                    block_on(tracker.merge(&format!("v{video}"), fields(pairs))).map_err(|e| err(&e))?;
                let mut want = model.live(*video, now).map(|(status, _)| status.clone()).unwrap_or_default();
                want.extend(fields(pairs));
                if got != want {
                    return Err(format!("step {n} {step:?}: merge returned {got:?}, model says {want:?}"));
                }
                model.statuses.insert(*video, (want, now + millis(TTL)));
            }
            Step::Get(video) => {
                let got = block_on(tracker.get(&format!("v{video}"))).map_err(|e| err(&e))?;
                let want = model.live(*video, now).map(|(status, _)| status.clone());
                if got != want {
                    return Err(format!("step {n} {step:?}: got {got:?}, model says {want:?}"));
                }
            }
        }
        let now = clock.now();
        for video in 0..3u8 {
            let key = key(&format!("v{video}"));
            let ttl = block_on(store.pttl(&key)).map_err(|e| err(&e))?;
            invariant::ttl_within_a_day(&key, ttl).map_err(|v| format!("after step {n} {step:?}: {v}"))?;
            let want = model
                .live(video, now)
                .map_or(Ttl::Missing, |(_, at)| Ttl::Remaining(Duration::from_millis(*at - now)));
            if ttl != want {
                return Err(format!("after step {n} {step:?}: {key} has TTL {ttl:?}, model says {want:?}"));
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn status_tracker_matches_model(steps in histories()) {
        prop_assert_eq!(against_model(correct, &steps), Ok(()));
    }
}

#[test]
fn status_tracker_mutant_merge_without_ttl_rejected_by_model() {
    assert!(model_rejects(histories(), |steps| against_model(merge_without_ttl, steps)));
}
