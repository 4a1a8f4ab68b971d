//! #5 video get-or-create.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use reference::clock::ManualClock;
use reference::store::MemoryStore;
use reference::sync::block_on;
use reference::video::{Registry, Status, Video, VideoError, VideoRegistry, mutants, suite};

use crate::common::model_rejects;

fn rig() -> (Arc<ManualClock>, MemoryStore) {
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let store = MemoryStore::new(clock.clone());
    (clock, store)
}

fn correct(store: &MemoryStore) -> Registry<MemoryStore> {
    Registry::new(store.clone())
}

fn check_then_insert(store: &MemoryStore) -> mutants::CheckThenInsert<MemoryStore> {
    mutants::CheckThenInsert { store: store.clone() }
}

fn select_for_update(store: &MemoryStore) -> mutants::SelectForUpdate<MemoryStore> {
    mutants::SelectForUpdate { store: store.clone() }
}

fn unconditional_update(store: &MemoryStore) -> mutants::UnconditionalUpdate<MemoryStore> {
    mutants::UnconditionalUpdate { store: store.clone() }
}

// --- contention: real threads -------------------------------------------------------------

#[test]
fn video_contention_new_url_created_and_claimed_once() {
    let (_, store) = rig();
    suite::new_url(Arc::new(correct(&store)), 16, 300).unwrap();
}

#[test]
fn video_contention_failed_video_reclaimed_once() {
    let (_, store) = rig();
    suite::failed_retry(Arc::new(correct(&store)), 16, 300).unwrap();
}

#[test]
fn video_contention_settled_videos_never_reprocessed() {
    let (_, store) = rig();
    suite::settled(Arc::new(correct(&store)), 16).unwrap();
}

#[test]
fn video_contention_one_transition_wins() {
    let (_, store) = rig();
    suite::one_transition_wins(Arc::new(correct(&store)), 16, 200).unwrap();
}

#[test]
fn video_mutant_check_then_insert_caught_by_contention() {
    let (_, store) = rig();
    // Races are probabilistic on real threads; many rounds make a miss vanishingly unlikely.
    let violation = suite::new_url(Arc::new(check_then_insert(&store)), 16, 2_000).unwrap_err();
    assert_eq!(violation.rule, "duplicate-create", "{violation}");
}

#[test]
fn video_mutant_select_for_update_caught_by_contention() {
    let (_, store) = rig();
    let violation = suite::failed_retry(Arc::new(select_for_update(&store)), 16, 50).unwrap_err();
    assert_eq!(violation.rule, "duplicate-processing", "{violation}");
}

#[test]
fn video_mutant_unconditional_update_caught_by_contention() {
    let (_, store) = rig();
    let violation =
        suite::one_transition_wins(Arc::new(unconditional_update(&store)), 16, 2_000).unwrap_err();
    assert_eq!(violation.rule, "duplicate-transition", "{violation}");
}

// --- the state machine ---------------------------------------------------------------------

#[test]
fn video_refuses_illegal_transitions() {
    let (_, store) = rig();
    suite::refuses_illegal_transitions(&correct(&store)).unwrap();
}

#[test]
fn video_mutant_unconditional_update_caught_by_transition_check() {
    let (_, store) = rig();
    let violation = suite::refuses_illegal_transitions(&unconditional_update(&store)).unwrap_err();
    assert_eq!(violation.rule, "illegal-transition", "{violation}");
}

#[test]
fn video_keys_of_different_users_never_collide() {
    let (_, store) = rig();
    let registry = correct(&store);
    let first = block_on(registry.get_or_create("a:b", "c")).unwrap();
    let second = block_on(registry.get_or_create("a", "b:c")).unwrap();
    assert!(first.created && second.created, "{first:?} {second:?}");
}

// --- model-based ---------------------------------------------------------------------------

/// The videos a history works on: two users, shared URLs, and users whose keys would collide
/// if the user part were not escaped.
const VIDEOS: [(&str, &str); 5] = [
    ("1", "https://youtu.be/a"),
    ("1", "https://youtu.be/b"),
    ("2", "https://youtu.be/a"),
    ("a:b", "c"),
    ("a", "b:c"),
];

#[derive(Debug, Clone, Copy)]
enum Step {
    GetOrCreate(usize),
    Start(usize),
    Complete(usize),
    Fail(usize),
    Get(usize),
    Advance(u64),
}

fn histories() -> impl Strategy<Value = Vec<Step>> {
    let video = 0..VIDEOS.len();
    let step = prop_oneof![
        3 => video.clone().prop_map(Step::GetOrCreate),
        2 => video.clone().prop_map(Step::Start),
        1 => video.clone().prop_map(Step::Complete),
        2 => video.clone().prop_map(Step::Fail),
        1 => video.prop_map(Step::Get),
        1 => (0..=48 * 60 * 60 * 1_000u64).prop_map(Step::Advance),
    ];
    proptest::collection::vec(step, 1..60)
}

/// What the model expects of a transition: the status and attempt after it, or why not.
type Outcome = Result<(Status, u32), String>;

/// The trivially correct model: status and attempt per video.
#[derive(Default)]
struct Model {
    videos: HashMap<usize, (Status, u32)>,
}

impl Model {
    fn get_or_create(&mut self, video: usize) -> (Status, u32, bool, bool) {
        match self.videos.get(&video).copied() {
            None => {
                self.videos.insert(video, (Status::Pending, 1));
                (Status::Pending, 1, true, true)
            }
            Some((Status::Failed, attempt)) => {
                self.videos.insert(video, (Status::Pending, attempt + 1));
                (Status::Pending, attempt + 1, false, true)
            }
            Some((status, attempt)) => (status, attempt, false, false),
        }
    }

    fn transition(&mut self, video: usize, to: Status) -> Outcome {
        let edges = [
            (Status::Pending, Status::Processing),
            (Status::Processing, Status::Completed),
            (Status::Processing, Status::Failed),
        ];
        match self.videos.get_mut(&video) {
            None => Err("not found".into()),
            Some((from, _)) if !edges.contains(&(*from, to)) => Err(format!("{from} cannot become {to}")),
            Some((from, attempt)) => {
                *from = to;
                Ok((to, *attempt))
            }
        }
    }
}

fn observed(result: Result<Video, VideoError>) -> Result<Outcome, String> {
    match result {
        Ok(video) => Ok(Ok((video.status, video.attempt))),
        Err(VideoError::NotFound { .. }) => Ok(Err("not found".into())),
        Err(VideoError::IllegalTransition { from, to, .. }) => Ok(Err(format!("{from} cannot become {to}"))),
        Err(other) => Err(other.to_string()),
    }
}

/// One observation, as the registry made it or as the model predicts it.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    /// Status, attempt, created, should_process.
    Claim(Status, u32, bool, bool),
    Transition(Outcome),
    Record(Option<(Status, u32)>),
}

/// Runs `steps` against a registry and the model; the first disagreement, if any.
fn against_model<R: VideoRegistry>(make: fn(&MemoryStore) -> R, steps: &[Step]) -> Result<(), String> {
    let (clock, store) = rig();
    let registry = make(&store);
    let mut model = Model::default();
    for (n, step) in steps.iter().enumerate() {
        let (got, want) = match *step {
            Step::Advance(ms) => {
                clock.advance(Duration::from_millis(ms));
                continue;
            }
            Step::GetOrCreate(v) => {
                let (user, url) = VIDEOS[v];
                let got = block_on(registry.get_or_create(user, url)).map_err(|e| e.to_string())?;
                if (got.video.user.as_str(), got.video.url.as_str()) != (user, url) {
                    return Err(format!("step {n} {step:?}: got the record of another video: {got:?}"));
                }
                let (status, attempt, created, claimed) = model.get_or_create(v);
                (
                    Seen::Claim(got.video.status, got.video.attempt, got.created, got.should_process),
                    Seen::Claim(status, attempt, created, claimed),
                )
            }
            Step::Start(v) | Step::Complete(v) | Step::Fail(v) => {
                let (user, url) = VIDEOS[v];
                let (result, to) = match step {
                    Step::Start(_) => (block_on(registry.start(user, url)), Status::Processing),
                    Step::Complete(_) => (block_on(registry.complete(user, url)), Status::Completed),
                    _ => (block_on(registry.fail(user, url)), Status::Failed),
                };
                (Seen::Transition(observed(result)?), Seen::Transition(model.transition(v, to)))
            }
            Step::Get(v) => {
                let (user, url) = VIDEOS[v];
                let got = block_on(registry.get(user, url)).map_err(|e| e.to_string())?;
                (
                    Seen::Record(got.map(|video| (video.status, video.attempt))),
                    Seen::Record(model.videos.get(&v).copied()),
                )
            }
        };
        if got != want {
            return Err(format!("step {n} {step:?}: got {got:?}, model says {want:?}"));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn video_matches_model(steps in histories()) {
        prop_assert_eq!(against_model(correct, &steps), Ok(()));
    }
}

#[test]
fn video_mutant_select_for_update_rejected_by_model() {
    assert!(model_rejects(histories(), |steps| against_model(select_for_update, steps)));
}

#[test]
fn video_mutant_unconditional_update_rejected_by_model() {
    assert!(model_rejects(histories(), |steps| against_model(unconditional_update, steps)));
}
