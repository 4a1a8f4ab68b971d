//! The L1 cache invariants as checks over what was observed.

use crate::invariant::{Judgement, Violation};
use crate::store::glob_match;

use super::multi_layer::LayerStats;
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
pub fn bounded(capacity: usize, len: usize) -> Judgement {
    if len <= capacity {
        return Ok(());
    }
    Err(Violation::new(COMPONENT, "unbounded", format!("{len} entries held, capacity {capacity}")))
}

/// The stats agree with what the callers saw, exactly, and account for every entry: each one
/// inserted is still held or was evicted, expired or invalidated.
pub fn stats_exact(seen: Tally, stats: Stats, len: usize) -> Judgement {
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
pub fn no_stale_reads(pattern: &str, reads: &[Read]) -> Judgement {
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

/// One call in a recorded multi-layer history; `start` and `end` are stamps from one shared
/// counter, taken just before the call and just after it returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Values are unique per `set`, so a served value names the `set` that wrote it.
    Set {
        key: String,
        value: Vec<u8>,
        start: u64,
        end: u64,
    },
    Invalidate {
        pattern: String,
        start: u64,
        end: u64,
    },
    Get {
        instance: usize,
        key: String,
        served: Option<Vec<u8>>,
        start: u64,
        end: u64,
    },
}

/// A `get` that began after an `invalidate(pattern)` returned must not serve, for a matching
/// key, a value whose `set` returned before that invalidation began. Sets overlapping the
/// invalidation may legitimately survive it and are not judged.
pub fn no_stale_after_invalidate(history: &[Event]) -> Judgement {
    let mut set_end: std::collections::HashMap<(&str, &[u8]), u64> = std::collections::HashMap::new();
    let mut invalidations = Vec::new();
    for event in history {
        match event {
            Event::Set { key, value, end, .. } => {
                set_end.insert((key.as_str(), value.as_slice()), *end);
            }
            Event::Invalidate { pattern, start, end } => invalidations.push((pattern.as_str(), *start, *end)),
            Event::Get { .. } => {}
        }
    }
    for event in history {
        let Event::Get { instance, key, served: Some(value), start: read_at, .. } = event else { continue };
        let Some(&written) = set_end.get(&(key.as_str(), value.as_slice())) else {
            return Err(Violation::new(
                COMPONENT,
                "phantom-read",
                format!(
                    "instance {instance} served {key} = {:?}, which no set wrote",
                    String::from_utf8_lossy(value)
                ),
            ));
        };
        let stale = invalidations
            .iter()
            .find(|(pattern, start, end)| written < *start && *end < *read_at && glob_match(pattern, key));
        if let Some((pattern, ..)) = stale {
            return Err(Violation::new(
                COMPONENT,
                "stale-read",
                format!(
                    "instance {instance} served {key} = {:?} after invalidate({pattern}) returned",
                    String::from_utf8_lossy(value)
                ),
            ));
        }
    }
    Ok(())
}

/// Exactly one layer counter moved per `get`, the hits are the values served, and the L1
/// hits are the L1's own.
pub fn layers_exact(seen: Tally, layers: LayerStats, l1: Stats) -> Judgement {
    let inexact = |what: String| Err(Violation::new(COMPONENT, "inexact-layer-stats", what));
    if layers.gets() != seen.gets {
        return inexact(format!("{layers:?} count {} gets, callers made {}", layers.gets(), seen.gets));
    }
    if layers.hits() != seen.hits {
        return inexact(format!(
            "{layers:?} count {} hits, callers were served {}",
            layers.hits(),
            seen.hits
        ));
    }
    if layers.l1_hits != l1.hits {
        return inexact(format!("{} l1 hits counted, the l1 counted {}", layers.l1_hits, l1.hits));
    }
    Ok(())
}
