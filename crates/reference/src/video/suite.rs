//! The get-or-create suites, run against any registry and store.

use std::sync::Arc;

use crate::invariant::Judgement;
use crate::sync::block_on;
use crate::testing::burst;

use super::{GetOrCreate, Status, Video, VideoError, VideoRegistry, invariant};

const USER: &str = "42";

fn url(case: &str, round: usize) -> String {
    format!("https://www.youtube.com/watch?v={case}-{round}")
}

/// `threads` concurrent `get_or_create` calls for `url`.
fn requests<R: VideoRegistry + 'static>(registry: &Arc<R>, url: &str, threads: usize) -> Vec<GetOrCreate> {
    let (registry, url) = (Arc::clone(registry), url.to_owned());
    burst(threads, move |_| block_on(registry.get_or_create(USER, &url)).expect("registry call"))
}

/// Brings a new video at `url` to `status` through the registry's own transitions.
fn prepare<R: VideoRegistry>(registry: &R, url: &str, status: Status) {
    block_on(registry.get_or_create(USER, url)).expect("registry call");
    let path: &[Status] = match status {
        Status::Pending => &[],
        Status::Processing => &[Status::Processing],
        Status::Completed => &[Status::Processing, Status::Completed],
        Status::Failed => &[Status::Processing, Status::Failed],
    };
    for step in path {
        let done = match step {
            Status::Processing => block_on(registry.start(USER, url)),
            Status::Completed => block_on(registry.complete(USER, url)),
            _ => block_on(registry.fail(USER, url)),
        };
        done.expect("a legal transition");
    }
}

/// `rounds` bursts of `threads` concurrent requests, each for a new URL: exactly one creates
/// the record and exactly one is told to process it.
pub fn new_url<R: VideoRegistry + 'static>(registry: Arc<R>, threads: usize, rounds: usize) -> Judgement {
    for round in 0..rounds {
        invariant::claims(None, &requests(&registry, &url("new", round), threads))?;
    }
    Ok(())
}

/// `rounds` bursts of `threads` concurrent retries of a failed video: exactly one claims it.
pub fn failed_retry<R: VideoRegistry + 'static>(
    registry: Arc<R>,
    threads: usize,
    rounds: usize,
) -> Judgement {
    for round in 0..rounds {
        let url = url("failed", round);
        prepare(&*registry, &url, Status::Failed);
        invariant::claims(Some(Status::Failed), &requests(&registry, &url, threads))?;
    }
    Ok(())
}

/// Concurrent requests for a completed, a processing and a pending video: none is told to
/// process it.
pub fn settled<R: VideoRegistry + 'static>(registry: Arc<R>, threads: usize) -> Judgement {
    for status in [Status::Completed, Status::Processing, Status::Pending] {
        let url = url(status.as_str(), 0);
        prepare(&*registry, &url, status);
        invariant::claims(Some(status), &requests(&registry, &url, threads))?;
    }
    Ok(())
}

/// The transition's outcome: `Some` when applied, `None` when refused by the state machine.
fn applied(result: Result<Video, VideoError>) -> Option<Video> {
    match result {
        Ok(video) => Some(video),
        Err(VideoError::IllegalTransition { .. }) => None,
        Err(other) => panic!("registry call: {other}"),
    }
}

/// `rounds` times: `threads` concurrent starts of a pending video, then `threads` concurrent
/// completes and fails of the processing one; exactly one of each burst is applied.
pub fn one_transition_wins<R: VideoRegistry + 'static>(
    registry: Arc<R>,
    threads: usize,
    rounds: usize,
) -> Judgement {
    for round in 0..rounds {
        let url = url("transition", round);
        prepare(&*registry, &url, Status::Pending);
        let (shared, target) = (Arc::clone(&registry), url.clone());
        let started = burst(threads, move |_| applied(block_on(shared.start(USER, &target))));
        invariant::one_transition("processing", &started)?;
        let (shared, target) = (Arc::clone(&registry), url.clone());
        let ended = burst(threads, move |i| {
            let result = if i % 2 == 0 {
                block_on(shared.complete(USER, &target))
            } else {
                block_on(shared.fail(USER, &target))
            };
            applied(result)
        });
        invariant::one_transition("completed or failed", &ended)?;
    }
    Ok(())
}

/// Every transition from every status (and from a missing record): only the state machine's
/// edges are applied.
pub fn refuses_illegal_transitions<R: VideoRegistry>(registry: &R) -> Judgement {
    for (n, from) in Status::ALL.into_iter().map(Some).chain([None]).enumerate() {
        for to in [Status::Processing, Status::Completed, Status::Failed] {
            let url = url(&format!("edge-{n}"), to as usize);
            if let Some(from) = from {
                prepare(registry, &url, from);
            }
            let result = match to {
                Status::Processing => block_on(registry.start(USER, &url)),
                Status::Completed => block_on(registry.complete(USER, &url)),
                _ => block_on(registry.fail(USER, &url)),
            };
            let applied = match result {
                Ok(_) => true,
                Err(VideoError::IllegalTransition { .. } | VideoError::NotFound { .. }) => false,
                Err(other) => panic!("registry call: {other}"),
            };
            invariant::transition_legal(from, to, applied)?;
        }
    }
    Ok(())
}
