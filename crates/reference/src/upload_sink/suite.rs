//! The upload-sink suite, run against any [`Sink`]: bodies cut every way, bodies of growing
//! size in chunks of one size, and uploads on real threads sharing one meter.

use std::sync::Arc;

use crate::invariant::Judgement;
use crate::sync::block_on;
use crate::testing::burst;

use super::{Chunks, MemoryWriter, Meter, Sink, invariant};

/// `len` bytes that repeat no short pattern (xorshift from `seed`), so a dropped, repeated or
/// reordered chunk changes the digest.
pub fn body(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// Stores `data` cut into `chunk`-byte chunks through `imp`, alone on a fresh meter: stored
/// whole, and never more than the largest chunk held at once.
pub fn upload<S: Sink>(imp: &S, data: &[u8], chunk: usize) -> Judgement {
    let (meter, mut writer) = (Meter::new(), MemoryWriter::default());
    let chunks = Chunks::of(data, chunk);
    let largest = chunks.largest() as u64;
    let stored = block_on(imp.store(chunks, &mut writer, u64::MAX, &meter)).expect("in-memory upload");
    invariant::stored_whole(data, &stored, &writer.bytes)?;
    invariant::held_bounded(meter.peak(), largest, data.len() as u64)
}

/// One body of 100,003 bytes in every chunking from one byte at a time to one chunk, and the
/// empty body.
pub fn every_chunking<S: Sink>(imp: &S) -> Judgement {
    let data = body(100_003, 12);
    for chunk in [1, 7, 4_096, 65_537, data.len()] {
        upload(imp, &data, chunk)?;
    }
    upload(imp, &[], 4_096)
}

/// Bodies of 1, 16 and 256 chunks of `chunk` bytes: what a sink holds at once stays one chunk
/// as the body grows.
pub fn memory_flat_in_body_size<S: Sink>(imp: &S, chunk: usize) -> Judgement {
    for chunks in [1, 16, 256] {
        upload(imp, &body(chunks * chunk, chunks as u64), chunk)?;
    }
    Ok(())
}

/// `threads` uploads of `chunks` chunks of `chunk` bytes each, on real threads released
/// together, sharing one meter: each stored whole, and no more held at once than one chunk per
/// upload.
pub fn concurrent_uploads<S: Sink + 'static>(
    imp: Arc<S>,
    threads: usize,
    chunks: usize,
    chunk: usize,
) -> Judgement {
    let meter = Arc::new(Meter::new());
    let shared = Arc::clone(&meter);
    let verdicts = burst(threads, move |i| {
        let data = body(chunks * chunk, i as u64 + 1);
        let mut writer = MemoryWriter::default();
        let stored = block_on(imp.store(Chunks::of(&data, chunk), &mut writer, u64::MAX, &shared))
            .expect("in-memory upload");
        invariant::stored_whole(&data, &stored, &writer.bytes)
    });
    verdicts.into_iter().collect::<Judgement>()?;
    invariant::held_bounded(meter.peak(), (threads * chunk) as u64, (threads * chunks * chunk) as u64)
}
