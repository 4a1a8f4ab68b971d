//! The L1 cache invariants as checks over what was observed.

use crate::invariant::{Verdict, Violation};
use crate::store::glob_match;

use super::{COMPONENT, Stats};

/// What the callers of one instance saw: how many `get`s they made and how many returned a
/// value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub gets: u64,
    pub hits: u64,
}

impl std::ops::Add for Tally {
    type Output = Tally;

    fn add(self, other: Tally) -> Tally {
        Tally { gets: self.gets + other.gets, hits: self.hits + other.hits }
    }
}

/// One `get` made after an invalidation returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    pub instance: usize,
    pub key: String,
    pub served: Option<Vec<u8>>,
}

/// An instance never holds more than its capacity.
pub fn bounded(capacity: usize, len: usize) -> Verdict {
    if len <= capacity {
        return Ok(());
    }
    Err(Violation::new(COMPONENT, "unbounded", format!("{len} entries held, capacity {capacity}")))
}

/// The stats agree with what the callers saw, exactly, and account for every entry: each one
/// inserted is still held or was evicted, expired or invalidated.
pub fn stats_exact(seen: Tally, stats: Stats, len: usize) -> Verdict {
    let inexact = |what: String| Err(Violation::new(COMPONENT, "inexact-stats", what));
    if stats.gets() != seen.gets {
        return inexact(format!(
            "hits {} + misses {} = {}, but callers made {} gets",
            stats.hits,
            stats.misses,
            stats.gets(),
            seen.gets
        ));
    }
    if stats.hits != seen.hits {
        return inexact(format!("{} hits counted, callers were served {}", stats.hits, seen.hits));
    }
    let gone = stats.evictions + stats.expirations + stats.invalidations;
    if stats.inserts != len as u64 + gone {
        return inexact(format!(
            "{} inserts, but {len} held + {} evicted + {} expired + {} invalidated = {}",
            stats.inserts,
            stats.evictions,
            stats.expirations,
            stats.invalidations,
            len as u64 + gone
        ));
    }
    Ok(())
}

/// `reads` were made after `invalidate(pattern)` returned and before any matching key was set
/// again: none of them may have been served a value for a matching key.
pub fn no_stale_reads(pattern: &str, reads: &[Read]) -> Verdict {
    match reads.iter().find(|r| r.served.is_some() && glob_match(pattern, &r.key)) {
        None => Ok(()),
        Some(read) => Err(Violation::new(
            COMPONENT,
            "stale-read",
            format!(
                "instance {} served {} = {:?} after invalidate({pattern}) returned",
                read.instance,
                read.key,
                String::from_utf8_lossy(read.served.as_deref().unwrap_or_default())
            ),
        )),
    }
}
