//! #12 Streaming uploads (seed 000, "Video Streaming Upload": stream in chunks, never load the
//! whole file), over the reference upload sink (`reference::upload_sink`).
//!
//! A body goes from the socket to the disk through the sink the stack runs (the streaming one,
//! or with `--mutant` the one that buffers the whole body): the request's data stream is the
//! sink's [`Body`], and the partial file its [`Writer`]. The bytes land in `{dir}/.{id}.part`,
//! which is synced and renamed to `{dir}/{id}` only once the whole body is in: the final name
//! never holds a partial body. Any failure on the way — the cap passed, the client gone, a
//! write error, the request future dropped — removes the partial file.
//!
//! The sink counts every body byte it holds in the process's [`Meter`], with a high-water mark
//! (the file writer's fixed 64 KiB buffer aside): `/metrics` shows both, and that is what the
//! `upload` check reads to tell streaming from buffering.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use futures_util::{Stream, StreamExt};
use reference::limit::RateLimiter;
use reference::sliding_window::SlidingWindow;
use reference::upload_sink::{Body, Meter, Sink, SinkError, Stored, Writer};
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::time::Instant;

use crate::backend::{AnyStore, Backends};
use crate::components::UploadSinkSlot;
use crate::settings::Settings;

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

impl Writer for Part {
    async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.file.write_all(bytes).await
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

/// The floor on a body's rate: after `grace`, the bytes received must keep up with `rate`
/// bytes a second on average since the body began, and no two chunks may be further apart
/// than `grace` (a client that sent fast cannot bank the credit to stall for hours); the first
/// chunk that would come later than that ends the body with an error and marks the floor
/// tripped (shared, so the handler can tell a slow client from a broken one whatever the
/// reader made of the error).
#[derive(Debug, Clone)]
pub(crate) struct Floor {
    rate: u64,
    grace: Duration,
    tripped: Arc<AtomicBool>,
}

impl Floor {
    pub(crate) fn new(rate: u64, grace: Duration) -> Self {
        Self { rate: rate.max(1), grace, tripped: Arc::new(AtomicBool::new(false)) }
    }

    /// Whether a body came slower than the floor.
    pub(crate) fn tripped(&self) -> bool {
        self.tripped.load(Ordering::Relaxed)
    }

    /// When the next chunk must have come: the average's deadline for more than `received`
    /// bytes since `start`, or `grace` after the `last` chunk, whichever is sooner.
    fn deadline(&self, start: Instant, last: Instant, received: u64) -> Instant {
        let average = start + self.grace + Duration::from_secs_f64(received as f64 / self.rate as f64);
        average.min(last + self.grace)
    }
}

/// A body that keeps up with the floor or ends: `body` as it is without one.
pub(crate) fn with_floor<S, E>(
    body: S,
    floor: Option<Floor>,
) -> Pin<Box<dyn Stream<Item = Result<Bytes, String>> + Send>>
where
    S: Stream<Item = Result<Bytes, E>> + Send + 'static,
    E: std::fmt::Display,
{
    let start = Instant::now();
    let body = Box::pin(body);
    let state = (body, 0u64, start, floor, false);
    Box::pin(futures_util::stream::unfold(
        state,
        move |(mut body, received, last, floor, ended)| async move {
            if ended {
                return None;
            }
            let next = match &floor {
                Some(f) => {
                    match tokio::time::timeout_at(f.deadline(start, last, received), body.next()).await {
                        Ok(next) => next,
                        Err(_) => {
                            f.tripped.store(true, Ordering::Relaxed);
                            let error = format!(
                                "{received} bytes in {:.1} s: slower than the floor",
                                start.elapsed().as_secs_f64()
                            );
                            return Some((Err(error), (body, received, last, floor, true)));
                        }
                    }
                }
                None => body.next().await,
            };
            match next {
                Some(Ok(chunk)) => {
                    let received = received + chunk.len() as u64;
                    Some((Ok(chunk), (body, received, Instant::now(), floor, false)))
                }
                Some(Err(e)) => Some((Err(e.to_string()), (body, received, last, floor, true))),
                None => None,
            }
        },
    ))
}

/// A request's data stream as the sink reads it.
struct Socket<S>(S);

impl<S, E> Body for Socket<S>
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
    E: std::fmt::Display + Send,
{
    type Chunk = Bytes;
    type Error = E;

    async fn next_chunk(&mut self) -> Option<Result<Bytes, E>> {
        self.0.next().await
    }
}

/// The uploads of one stack process: where bodies go, the sink, the per-user limit, the
/// memory meter.
pub struct Uploads {
    dir: PathBuf,
    sink: UploadSinkSlot,
    max_bytes: u64,
    limiter: SlidingWindow<AnyStore>,
    meter: Meter,
}

impl std::fmt::Debug for Uploads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Uploads")
            .field("dir", &self.dir)
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

impl Uploads {
    /// The limit is a sliding window on the shared store: 15 a day means no 24 hours ever
    /// hold more than 15 uploads of one user, on any instance.
    pub(crate) fn new(settings: &Settings, backends: &Backends) -> Self {
        Self {
            dir: settings.upload_dir.clone(),
            sink: UploadSinkSlot::new(settings.mutant),
            max_bytes: settings.max_upload_bytes,
            limiter: SlidingWindow::new(
                backends.kv.clone(),
                Arc::clone(&backends.clock),
                "upload",
                settings.upload_limit,
            ),
            meter: Meter::new(),
        }
    }

    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// The body bytes this process's uploads hold in memory, now and at most.
    pub fn meter(&self) -> &Meter {
        &self.meter
    }

    pub(crate) fn limiter(&self) -> &impl RateLimiter {
        &self.limiter
    }

    /// Streams `body` into `{dir}/{id}`: at most the size cap of it, renamed into place once
    /// whole.
    pub(crate) async fn store<S, E>(&self, id: &str, body: S) -> Result<Stored, SinkError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display + Send,
    {
        let mut part = Part::create(&self.dir, id).await?;
        let stored = self.sink.store(Socket(body), &mut part, self.max_bytes, &self.meter).await?;
        part.commit(&self.dir.join(id)).await?;
        Ok(stored)
    }

    /// Upload `id`'s stored bytes, opened for reading; none when this process has not stored it.
    pub(crate) async fn open(&self, id: &str) -> Option<tokio::fs::File> {
        tokio::fs::File::open(self.dir.join(id)).await.ok()
    }

    /// Removes upload `id`'s bytes, if any.
    pub(crate) async fn remove(&self, id: &str) {
        let _ = tokio::fs::remove_file(self.dir.join(id)).await;
    }
}
