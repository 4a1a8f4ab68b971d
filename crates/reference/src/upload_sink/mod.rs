//! #12 Streaming upload sink (seed 000, "Video Streaming Upload": stream in chunks, never load
//! the whole file).
//!
//! A body arrives a chunk at a time ([`Body`]: the socket, in the stack) and leaves for storage
//! a chunk at a time ([`Writer`]: a file being written, in the stack). Each chunk is counted
//! against the size cap, hashed (SHA-256, incrementally) and written, then dropped, so the
//! memory an upload holds is one chunk, whatever the body's size, and the bytes stored and
//! their digest are the bytes sent, however the body was cut into chunks.
//!
//! [`Meter`] is the memory invariant's instrument: every body byte a sink holds is counted
//! while held, with a high-water mark, in one meter shared by every upload of a process.
//! [`mutants::WholeBodyBuffered`] collects the whole body before hashing and writing it: the
//! same bytes stored, the same digest answered, and a high-water mark the size of the body.
//!
//! No I/O here: the stack implements [`Body`] over its request stream and [`Writer`] over its
//! partial file; [`Chunks`] and [`MemoryWriter`] are the in-memory ones the tests and loom
//! models drive.

pub mod invariant;
pub mod mutants;
#[cfg(all(feature = "testing", not(loom)))]
pub mod suite;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::fmt;
use std::future::Future;

use sha2::{Digest, Sha256};

use crate::sync::{AtomicU64, Ordering};

pub const COMPONENT: &str = "upload-sink";

/// A request body, read a chunk at a time.
pub trait Body: Send {
    type Chunk: AsRef<[u8]> + Send;
    type Error: fmt::Display + Send;

    /// The next chunk; `None` once the body has ended.
    fn next_chunk(&mut self) -> impl Future<Output = Option<Result<Self::Chunk, Self::Error>>> + Send;
}

/// Where a body's bytes go.
pub trait Writer: Send {
    fn write_all(&mut self, bytes: &[u8]) -> impl Future<Output = std::io::Result<()>> + Send;
}

/// Body bytes held in memory by the uploads that share this meter: now, and the most at any
/// moment.
#[derive(Debug, Default)]
pub struct Meter {
    held: AtomicU64,
    peak: AtomicU64,
}

impl Meter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes held now.
    pub fn held(&self) -> u64 {
        self.held.load(Ordering::SeqCst)
    }

    /// The high-water mark of [`Meter::held`].
    pub fn peak(&self) -> u64 {
        self.peak.load(Ordering::SeqCst)
    }

    /// Starts holding bytes; they count until the returned guard is dropped.
    pub fn hold(&self) -> Held<'_> {
        Held { meter: self, bytes: 0 }
    }
}

/// Bytes counted as held by a [`Meter`] until dropped.
#[derive(Debug)]
pub struct Held<'a> {
    meter: &'a Meter,
    bytes: u64,
}

impl Held<'_> {
    /// Counts `bytes` more as held.
    pub fn grow(&mut self, bytes: usize) {
        let bytes = bytes as u64;
        self.bytes += bytes;
        let now = self.meter.held.fetch_add(bytes, Ordering::SeqCst) + bytes;
        self.meter.peak.fetch_max(now, Ordering::SeqCst);
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.meter.held.fetch_sub(self.bytes, Ordering::SeqCst);
    }
}

/// What a sink stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    pub bytes: u64,
    pub sha256: [u8; 32],
}

impl Stored {
    /// The digest in lowercase hex.
    pub fn sha256_hex(&self) -> String {
        hex(&self.sha256)
    }
}

/// `bytes` in lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// The SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Why a body was not stored.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("body larger than the limit of {max} bytes")]
    TooLarge { max: u64 },
    #[error("reading the body failed: {0}")]
    Body(String),
    #[error("cannot store the upload: {0}")]
    Write(#[from] std::io::Error),
}

/// Moves a body into a writer: the correct streaming sink and its mutant.
pub trait Sink: Send + Sync {
    /// Reads `body` to its end into `writer`, at most `max` bytes of it, every body byte held
    /// counted in `meter`; the size and SHA-256 of what was written.
    fn store<B: Body, W: Writer>(
        &self,
        body: B,
        writer: &mut W,
        max: u64,
        meter: &Meter,
    ) -> impl Future<Output = Result<Stored, SinkError>> + Send;
}

/// The correct sink: each chunk counted, hashed and written as it arrives, then dropped.
#[derive(Debug, Clone, Copy, Default)]
pub struct Streaming;

impl Sink for Streaming {
    async fn store<B: Body, W: Writer>(
        &self,
        mut body: B,
        writer: &mut W,
        max: u64,
        meter: &Meter,
    ) -> Result<Stored, SinkError> {
        let mut hasher = Sha256::new();
        let mut bytes = 0u64;
        while let Some(chunk) = body.next_chunk().await {
            let chunk = chunk.map_err(|e| SinkError::Body(e.to_string()))?;
            let chunk = chunk.as_ref();
            let mut held = meter.hold();
            held.grow(chunk.len());
            bytes += chunk.len() as u64;
            if bytes > max {
                return Err(SinkError::TooLarge { max });
            }
            hasher.update(chunk);
            writer.write_all(chunk).await?;
        }
        Ok(Stored { bytes, sha256: hasher.finalize().into() })
    }
}

/// A body of chunks held in memory, handed out in order; always ready.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chunks {
    chunks: VecDeque<Vec<u8>>,
}

impl Chunks {
    /// `data` cut into chunks of `size` bytes (the last one shorter); no chunk for no data.
    pub fn of(data: &[u8], size: usize) -> Self {
        Self { chunks: data.chunks(size.max(1)).map(<[u8]>::to_vec).collect() }
    }

    /// The largest chunk's length: what a streaming sink may hold at once.
    pub fn largest(&self) -> usize {
        self.chunks.iter().map(Vec::len).max().unwrap_or(0)
    }
}

impl FromIterator<Vec<u8>> for Chunks {
    fn from_iter<I: IntoIterator<Item = Vec<u8>>>(chunks: I) -> Self {
        Self { chunks: chunks.into_iter().collect() }
    }
}

impl Body for Chunks {
    type Chunk = Vec<u8>;
    type Error = Infallible;

    async fn next_chunk(&mut self) -> Option<Result<Vec<u8>, Infallible>> {
        self.chunks.pop_front().map(Ok)
    }
}

/// A writer into memory, counting the writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryWriter {
    pub bytes: Vec<u8>,
    pub writes: usize,
}

impl Writer for MemoryWriter {
    async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.bytes.extend_from_slice(bytes);
        self.writes += 1;
        Ok(())
    }
}
