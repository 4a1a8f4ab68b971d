//! #13 Segment concatenation (seed 003, "Memory Leak in Audio Processing").
//!
//! Joining `n` byte segments allocates once, sized up front to the total, and copies each
//! segment once: the bytes copied equal the total length, whatever `n` is. The cost is metered
//! by [`Buffer`], the only way an implementation builds its output, so "linear in segments" is
//! checked exactly (bytes copied, allocations made) rather than timed.

pub mod invariant;
pub mod mutants;
#[cfg(all(feature = "testing", not(loom)))]
pub mod suite;

pub const COMPONENT: &str = "segment-concat";

/// What building a buffer cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cost {
    /// Bytes written into a buffer, counting every re-copy of bytes already held.
    pub copied: u64,
    /// Heap allocations made, counting every reallocation.
    pub allocations: u64,
}

/// A byte buffer that meters its own cost. Its storage behaves like a `Vec<u8>` whose growth
/// is explicit: outgrowing the capacity reallocates (doubling) and re-copies what it held.
#[derive(Debug, Default)]
pub struct Buffer {
    bytes: Vec<u8>,
    capacity: usize,
    cost: Cost,
}

impl Buffer {
    /// An empty buffer with room for `capacity` bytes; one allocation unless `capacity` is 0.
    pub fn with_capacity(capacity: usize) -> Self {
        let mut buffer = Self::default();
        buffer.allocate(capacity);
        buffer
    }

    /// Appends `piece`, reallocating first if it does not fit.
    pub fn extend(&mut self, piece: &[u8]) {
        let needed = self.bytes.len() + piece.len();
        if needed > self.capacity {
            self.allocate(needed.max(self.capacity * 2));
        }
        self.bytes.extend_from_slice(piece);
        self.cost.copied += piece.len() as u64;
    }

    /// A new buffer holding `self` followed by `piece`, like `a + b` on immutable bytes: one
    /// allocation of exactly the joint length, both sides copied. The cost carries over.
    pub fn plus(self, piece: &[u8]) -> Self {
        let mut joined = Self { cost: self.cost, ..Self::default() };
        joined.allocate(self.bytes.len() + piece.len());
        joined.extend(&self.bytes);
        joined.extend(piece);
        joined
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub fn cost(&self) -> Cost {
        self.cost
    }

    pub fn finish(self) -> Joined {
        Joined { bytes: self.bytes, cost: self.cost }
    }

    /// Moves the contents into fresh storage of `capacity` bytes, metering the re-copy.
    fn allocate(&mut self, capacity: usize) {
        if capacity == 0 {
            return;
        }
        let mut fresh = Vec::with_capacity(capacity);
        fresh.extend_from_slice(&self.bytes);
        self.cost.copied += self.bytes.len() as u64;
        self.cost.allocations += 1;
        self.bytes = fresh;
        self.capacity = capacity;
    }
}

/// The joined bytes and what joining them cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    pub bytes: Vec<u8>,
    pub cost: Cost,
}

/// Joins byte segments into one.
pub trait Concatenate {
    fn concat<T: AsRef<[u8]>>(&self, segments: &[T]) -> Joined;
}

/// The correct join (`b''.join(pieces)`): size the output once, copy each segment once.
#[derive(Debug, Clone, Copy, Default)]
pub struct Linear;

impl Concatenate for Linear {
    fn concat<T: AsRef<[u8]>>(&self, segments: &[T]) -> Joined {
        let mut out = Buffer::with_capacity(total_len(segments));
        for segment in segments {
            out.extend(segment.as_ref());
        }
        out.finish()
    }
}

/// The combined length of `segments`.
pub fn total_len<T: AsRef<[u8]>>(segments: &[T]) -> usize {
    segments.iter().map(|s| s.as_ref().len()).sum()
}
