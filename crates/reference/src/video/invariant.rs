//! The get-or-create invariants as checks over what was observed.

use crate::invariant::{Judgement, Violation};

use super::{COMPONENT, GetOrCreate, Status, Video};

/// Judges C concurrent `get_or_create` calls for one (user, url) whose record had status
/// `before` (`None`: it did not exist): a new record is created by exactly one caller; a new or
/// failed one is claimed for processing by exactly one caller; any other is claimed by none.
pub fn claims(before: Option<Status>, outcomes: &[GetOrCreate]) -> Judgement {
    let calls = outcomes.len();
    let created = outcomes.iter().filter(|o| o.created).count();
    let claimed = outcomes.iter().filter(|o| o.should_process).count();
    let was = before.map_or("missing", Status::as_str);
    let expected_created = usize::from(before.is_none());
    if created > expected_created {
        return Err(Violation::new(
            COMPONENT,
            "duplicate-create",
            format!("{created} of {calls} concurrent requests created a video that was {was}"),
        ));
    }
    if created < expected_created {
        return Err(Violation::new(
            COMPONENT,
            "missing-create",
            format!("none of {calls} concurrent requests created the missing video"),
        ));
    }
    let expected_claims = usize::from(matches!(before, None | Some(Status::Failed)));
    if claimed > 0 && before == Some(Status::Completed) {
        return Err(Violation::new(
            COMPONENT,
            "completed-reprocessed",
            format!("{claimed} of {calls} requests told to process a completed video"),
        ));
    }
    if claimed > expected_claims {
        return Err(Violation::new(
            COMPONENT,
            "duplicate-processing",
            format!("{claimed} of {calls} concurrent requests told to process a video that was {was}"),
        ));
    }
    if claimed < expected_claims {
        return Err(Violation::new(
            COMPONENT,
            "unclaimed",
            format!("none of {calls} concurrent requests claimed the {was} video for processing"),
        ));
    }
    Ok(())
}

/// Of C concurrent requests to leave one status (for `to`: "processing", "completed or
/// failed"), exactly one was applied (`Some`: the record after it; `None`: refused).
pub fn one_transition(to: &str, applied: &[Option<Video>]) -> Judgement {
    let calls = applied.len();
    let won = applied.iter().flatten().count();
    match won {
        1 => Ok(()),
        0 => Err(Violation::new(
            COMPONENT,
            "lost-transition",
            format!("none of {calls} concurrent requests moved the video to {to}"),
        )),
        _ => Err(Violation::new(
            COMPONENT,
            "duplicate-transition",
            format!("{won} of {calls} concurrent requests moved the video to {to}"),
        )),
    }
}

/// A transition from `from` to `to` was applied only if the state machine has that edge.
pub fn transition_legal(from: Option<Status>, to: Status, applied: bool) -> Judgement {
    if !applied || from.is_some_and(|from| from.can_become(to)) {
        return Ok(());
    }
    let was = from.map_or("missing", Status::as_str);
    Err(Violation::new(COMPONENT, "illegal-transition", format!("a {was} video was moved to {to}")))
}
