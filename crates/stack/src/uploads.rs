//! #12 Streaming uploads (seed 000, "Video Streaming Upload": stream in chunks, never load the
//! whole file).
//!
//! A body goes from the socket to the disk one chunk at a time: each chunk is hashed (SHA-256,
//! incrementally), counted against the size cap and written, then dropped, so the memory an
//! upload holds is one chunk whatever the body's size. The bytes land in `{dir}/.{id}.part`,
//! which is synced and renamed to `{dir}/{id}` only once the whole body is in: the final name
//! never holds a partial body. Any failure on the way — the cap passed, the client gone, a
//! write error, the request future dropped — removes the partial file.
//!
//! [`Meter`] is the memory check's instrument: every body byte the process's upload handlers
//! hold in memory is counted while held, with a high-water mark (the file writer's fixed
//! 64 KiB buffer aside). [`UploadSink::WholeBodyBuffered`] is the mutant
//! the check must catch: it collects the body before hashing and writing it, so its high-water
//! mark is the body's size.

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Bytes;
use futures_util::{Stream, StreamExt};
use reference::limit::RateLimiter;
use reference::sliding_window::SlidingWindow;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncWriteExt, BufWriter};

use crate::app::Settings;
use crate::backend::{AnyStore, Backends};

/// How an upload's body gets from the socket to the disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UploadSink {
    /// Each chunk hashed and written as it arrives; one chunk in memory at a time.
    #[default]
    Streaming,
    /// Mutant: the whole body collected in memory first, then hashed and written (Django's
    /// `request.body`, a `file.read()` without a size): memory grows with the body.
    WholeBodyBuffered,
}

/// Body bytes held in memory by this process's uploads: now, and the most at any moment.
#[derive(Debug, Default)]
pub struct Meter {
    held: AtomicU64,
    peak: AtomicU64,
}

impl Meter {
    /// Bytes held now.
    pub fn held(&self) -> u64 {
        self.held.load(Ordering::SeqCst)
    }

    /// The high-water mark of [`Meter::held`].
    pub fn peak(&self) -> u64 {
        self.peak.load(Ordering::SeqCst)
    }

    fn hold(&self) -> Held<'_> {
        Held { meter: self, bytes: 0 }
    }
}

/// Bytes counted as held until dropped.
struct Held<'a> {
    meter: &'a Meter,
    bytes: u64,
}

impl Held<'_> {
    fn grow(&mut self, bytes: usize) {
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

/// A stored body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub bytes: u64,
    /// Lowercase hex.
    pub sha256: String,
}

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("body larger than the limit of {max} bytes")]
    TooLarge { max: u64 },
    #[error("reading the body failed: {0}")]
    Body(String),
    #[error("cannot store the upload: {0}")]
    Io(#[from] std::io::Error),
}

/// The file writer's buffer: small chunks (a client sending a byte at a time) are written to
/// the file in blocks of this size. A fixed cost, whatever the body's size.
const WRITE_BUFFER: usize = 64 * 1024;

/// `{dir}/.{id}.part` while it is written; removed on drop unless renamed into place.
struct Part {
    path: PathBuf,
    file: BufWriter<tokio::fs::File>,
    done: bool,
}

impl Part {
    async fn create(dir: &Path, id: &str) -> std::io::Result<Self> {
        tokio::fs::create_dir_all(dir).await?;
        let path = dir.join(format!(".{id}.part"));
        let file = tokio::fs::OpenOptions::new().write(true).create_new(true).open(&path).await?;
        Ok(Self { path, file: BufWriter::with_capacity(WRITE_BUFFER, file), done: false })
    }

    /// Syncs the bytes to the disk, then renames the file to `to`.
    async fn commit(mut self, to: &Path) -> std::io::Result<()> {
        self.file.flush().await?;
        self.file.get_mut().sync_all().await?;
        tokio::fs::rename(&self.path, to).await?;
        self.done = true;
        Ok(())
    }
}

impl Drop for Part {
    fn drop(&mut self) {
        if !self.done {
            // One unlink: short enough to do in place, and it must happen even when the
            // request future is dropped mid-body.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// Streams `body` into `{dir}/{id}`, at most `max` bytes of it.
pub async fn store<E: Display>(
    sink: UploadSink,
    dir: &Path,
    id: &str,
    body: impl Stream<Item = Result<Bytes, E>>,
    max: u64,
    meter: &Meter,
) -> Result<Stored, UploadError> {
    let mut body = std::pin::pin!(body);
    let mut part = Part::create(dir, id).await?;
    let mut hasher = Sha256::new();
    let mut bytes = 0u64;
    match sink {
        UploadSink::Streaming => {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| UploadError::Body(e.to_string()))?;
                let mut held = meter.hold();
                held.grow(chunk.len());
                bytes += chunk.len() as u64;
                if bytes > max {
                    return Err(UploadError::TooLarge { max });
                }
                hasher.update(&chunk);
                part.file.write_all(&chunk).await?;
            }
        }
        UploadSink::WholeBodyBuffered => {
            let mut whole = Vec::new();
            let mut held = meter.hold();
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| UploadError::Body(e.to_string()))?;
                bytes += chunk.len() as u64;
                if bytes > max {
                    return Err(UploadError::TooLarge { max });
                }
                whole.extend_from_slice(&chunk);
                held.grow(chunk.len());
            }
            hasher.update(&whole);
            part.file.write_all(&whole).await?;
        }
    }
    part.commit(&dir.join(id)).await?;
    Ok(Stored { bytes, sha256: hex(&hasher.finalize()) })
}

/// The uploads of one stack process: where bodies go, the per-user limit, the memory meter.
pub struct Uploads {
    dir: PathBuf,
    sink: UploadSink,
    max_bytes: u64,
    limiter: SlidingWindow<AnyStore>,
    meter: Meter,
}

impl std::fmt::Debug for Uploads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Uploads").field("dir", &self.dir).field("sink", &self.sink).finish_non_exhaustive()
    }
}

impl Uploads {
    /// The limit is a sliding window on the shared store: 15 a day means no 24 hours ever
    /// hold more than 15 uploads of one user, on any instance.
    pub fn new(settings: &Settings, backends: &Backends) -> Self {
        Self {
            dir: settings.upload_dir.clone(),
            sink: settings.upload_sink,
            max_bytes: settings.max_upload_bytes,
            limiter: SlidingWindow::new(
                backends.kv.clone(),
                Arc::clone(&backends.clock),
                "upload",
                settings.upload_limit,
            ),
            meter: Meter::default(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where upload `id`'s bytes are once stored.
    pub fn path(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    pub fn meter(&self) -> &Meter {
        &self.meter
    }

    pub fn limiter(&self) -> &impl RateLimiter {
        &self.limiter
    }

    /// Stores `body` as upload `id`.
    pub async fn store<E: Display>(
        &self,
        id: &str,
        body: impl Stream<Item = Result<Bytes, E>>,
    ) -> Result<Stored, UploadError> {
        store(self.sink, &self.dir, id, body, self.max_bytes, &self.meter).await
    }

    /// Removes upload `id`'s bytes, if any.
    pub async fn remove(&self, id: &str) {
        let _ = tokio::fs::remove_file(self.path(id)).await;
    }
}

/// This process's own directory under the system's temporary directory.
pub fn default_dir() -> PathBuf {
    std::env::temp_dir().join(format!("stampede-uploads-{}", std::process::id()))
}
