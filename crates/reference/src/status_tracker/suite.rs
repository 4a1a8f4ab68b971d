//! The status-tracker suites, run against any implementation and store.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::clock::ManualClock;
use crate::invariant::Judgement;
use crate::store::Store;
use crate::sync::block_on;
use crate::testing::burst;

use super::{Fields, MAX_FIELD_BYTES, StatusError, StatusTracker, TTL, invariant, key};

fn field(name: String, value: serde_json::Value) -> Fields {
    Fields::from_iter([(name, value)])
}

/// `rounds` times, `threads` concurrent writers on one fresh video, each merging
/// `fields_per_thread` fields of its own one at a time: the status ends up holding every one.
pub fn disjoint_merges<T: StatusTracker + 'static>(
    tracker: Arc<T>,
    threads: usize,
    fields_per_thread: usize,
    rounds: usize,
) -> Judgement {
    for round in 0..rounds {
        let video = format!("video-{round}");
        let (shared, id) = (Arc::clone(&tracker), video.clone());
        let written = burst(threads, move |thread| {
            let mut mine = Fields::new();
            for n in 0..fields_per_thread {
                let one = field(format!("t{thread}-f{n}"), json!(n));
                block_on(shared.merge(&id, one.clone())).expect("tracker call");
                mine.extend(one);
            }
            mine
        });
        let merged: Fields = written.into_iter().flatten().collect();
        let stored = block_on(tracker.get(&video)).expect("tracker call");
        invariant::merges_survive(&key(&video), &merged, stored.as_ref())?;
    }
    Ok(())
}

/// `rounds` times, `threads` concurrent clients on one fresh video, each making `per_thread`
/// capped merges of one field of its own holding [`MAX_FIELD_BYTES`] of JSON — together far
/// more than a status holds (`threads * per_thread` must be at least 5: four such fields are
/// over the cap). The status stays within its caps, every accepted field survives, every
/// refused one is absent, and some were refused.
pub fn capped_merges_stay_within_caps<T: StatusTracker + 'static>(
    tracker: Arc<T>,
    threads: usize,
    per_thread: usize,
    rounds: usize,
) -> Judgement {
    assert!(threads * per_thread >= 5, "too few merges to reach the caps");
    for round in 0..rounds {
        let video = format!("capped-{round}");
        let (shared, id) = (Arc::clone(&tracker), video.clone());
        let outcomes = burst(threads, move |thread| {
            let mut accepted = Fields::new();
            let mut refused = Vec::new();
            for n in 0..per_thread {
                // A string of MAX_FIELD_BYTES - 2 characters is MAX_FIELD_BYTES of JSON.
                let name = format!("t{thread}-f{n}");
                let one = field(name.clone(), json!("x".repeat(MAX_FIELD_BYTES - 2)));
                match block_on(shared.merge_capped(&id, one.clone())) {
                    Ok(_) => accepted.extend(one),
                    Err(StatusError::OverCap { .. }) => refused.push(name),
                    Err(e) => panic!("tracker call: {e}"),
                }
            }
            (accepted, refused)
        });
        let (accepted, refused): (Vec<Fields>, Vec<Vec<String>>) = outcomes.into_iter().unzip();
        let accepted: Fields = accepted.into_iter().flatten().collect();
        let refused: Vec<String> = refused.into_iter().flatten().collect();
        let key = key(&video);
        let stored = block_on(tracker.get(&video)).expect("tracker call");
        invariant::within_caps(&key, stored.as_ref())?;
        invariant::merges_survive(&key, &accepted, stored.as_ref())?;
        invariant::refused_not_written(&key, &refused, stored.as_ref())?;
        if refused.is_empty() {
            return Err(crate::invariant::Violation::new(
                super::COMPONENT,
                "no-cap",
                format!("{key}: all {} merges of {MAX_FIELD_BYTES} bytes accepted", accepted.len()),
            ));
        }
    }
    Ok(())
}

/// Updates and merges spaced 23 h apart: after every write the key carries a TTL within a day,
/// the status is there until 24 h after the last write and gone from then on.
pub fn expires_a_day_after_last_write<T: StatusTracker, S: Store>(
    tracker: &T,
    store: &S,
    clock: &ManualClock,
) -> Judgement {
    let video = "expiring";
    let key = key(video);
    let almost = TTL - Duration::from_secs(60 * 60);
    let writes: [&dyn Fn() -> Fields; 3] = [
        &|| {
            let status = field("stage".into(), json!("downloading"));
            block_on(tracker.update(video, status.clone())).expect("tracker call");
            status
        },
        &|| block_on(tracker.merge(video, field("progress".into(), json!(40)))).expect("tracker call"),
        &|| block_on(tracker.merge(video, field("progress".into(), json!(90)))).expect("tracker call"),
    ];
    for write in writes {
        write();
        invariant::ttl_within_a_day(&key, block_on(store.pttl(&key)).expect("store call"))?;
        clock.advance(almost);
        let stored = block_on(tracker.get(video)).expect("tracker call");
        invariant::lives_a_day(&key, almost, stored.as_ref())?;
    }
    clock.advance(TTL - almost);
    let stored = block_on(tracker.get(video)).expect("tracker call");
    invariant::lives_a_day(&key, TTL, stored.as_ref())
}
