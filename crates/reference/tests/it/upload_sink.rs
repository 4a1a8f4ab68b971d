//! #12 streaming upload sink.

use std::sync::Arc;

use proptest::prelude::*;
use reference::sync::block_on;
use reference::upload_sink::mutants::WholeBodyBuffered;
use reference::upload_sink::{
    Body, Chunks, MemoryWriter, Meter, Sink, SinkError, Stored, Streaming, Writer, invariant, sha256, suite,
};

use crate::common::model_rejects;

/// A body of `data` cut at the given `cuts` (offsets, in any order, out of range ones ignored).
fn cut(data: &[u8], cuts: &[usize]) -> Chunks {
    let mut at: Vec<usize> = cuts.iter().copied().filter(|c| *c < data.len()).collect();
    at.extend([0, data.len()]);
    at.sort_unstable();
    at.dedup();
    at.windows(2).map(|w| data[w[0]..w[1]].to_vec()).collect()
}

/// Stores `chunks` through `imp` alone; the sink's report, the bytes written and the meter.
fn store<S: Sink>(imp: &S, chunks: Chunks, max: u64) -> (Result<Stored, SinkError>, MemoryWriter, Meter) {
    let (meter, mut writer) = (Meter::new(), MemoryWriter::default());
    let stored = block_on(imp.store(chunks, &mut writer, max, &meter));
    (stored, writer, meter)
}

/// The sink against the trivially correct model: the stored bytes are the body, and what was
/// held at once is at most the largest chunk.
fn against_model<S: Sink>(imp: &S, (data, cuts): &(Vec<u8>, Vec<usize>)) -> Result<(), String> {
    let chunks = cut(data, cuts);
    let largest = chunks.largest() as u64;
    let (stored, writer, meter) = store(imp, chunks, u64::MAX);
    let stored = stored.map_err(|e| e.to_string())?;
    invariant::stored_whole(data, &stored, &writer.bytes).map_err(|v| v.to_string())?;
    invariant::held_bounded(meter.peak(), largest, data.len() as u64).map_err(|v| v.to_string())?;
    if meter.held() != 0 {
        return Err(format!("{} bytes still held after the upload", meter.held()));
    }
    Ok(())
}

/// Bodies up to 4 KiB cut anywhere, in up to 16 places.
fn bodies() -> impl Strategy<Value = (Vec<u8>, Vec<usize>)> {
    (proptest::collection::vec(any::<u8>(), 0..4_096), proptest::collection::vec(0..4_096usize, 0..16))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn upload_sink_streaming_matches_model(case in bodies()) {
        prop_assert_eq!(against_model(&Streaming, &case), Ok(()));
    }
}

#[test]
fn upload_sink_streaming_stores_every_chunking_whole() {
    suite::every_chunking(&Streaming).unwrap();
}

#[test]
fn upload_sink_streaming_holds_one_chunk_whatever_the_body_size() {
    suite::memory_flat_in_body_size(&Streaming, 4_096).unwrap();
    let (stored, writer, meter) = store(&Streaming, Chunks::of(&suite::body(1 << 20, 3), 4_096), u64::MAX);
    assert_eq!(stored.unwrap().bytes, 1 << 20);
    assert_eq!((meter.peak(), meter.held()), (4_096, 0));
    assert_eq!(writer.writes, 256, "one write a chunk, as it arrives");
}

#[test]
fn upload_sink_streaming_concurrent_uploads_share_one_meter() {
    suite::concurrent_uploads(Arc::new(Streaming), 8, 64, 1_024).unwrap();
}

#[test]
fn upload_sink_mutant_whole_body_buffered_caught_by_memory_check() {
    let violation = suite::memory_flat_in_body_size(&WholeBodyBuffered, 4_096).unwrap_err();
    assert_eq!(violation.rule, "body-held-in-memory", "{violation}");
    let (stored, writer, meter) =
        store(&WholeBodyBuffered, Chunks::of(&suite::body(1 << 20, 3), 4_096), u64::MAX);
    assert_eq!(stored.unwrap().bytes, 1 << 20);
    assert_eq!((meter.peak(), meter.held()), (1 << 20, 0), "the whole body held, then let go");
    assert_eq!(writer.writes, 1);
}

#[test]
fn upload_sink_mutant_whole_body_buffered_caught_by_concurrent_uploads() {
    let violation = suite::concurrent_uploads(Arc::new(WholeBodyBuffered), 8, 64, 1_024).unwrap_err();
    assert_eq!(violation.rule, "body-held-in-memory", "{violation}");
}

#[test]
fn upload_sink_mutant_whole_body_buffered_stores_the_right_bytes_so_only_memory_catches_it() {
    // The suite judges the bytes first: the memory rule is the first one broken.
    let violation = suite::every_chunking(&WholeBodyBuffered).unwrap_err();
    assert_eq!(violation.rule, "body-held-in-memory", "{violation}");
    let data = suite::body(10_000, 5);
    let (stored, writer, _) = store(&WholeBodyBuffered, Chunks::of(&data, 1_000), u64::MAX);
    invariant::stored_whole(&data, &stored.unwrap(), &writer.bytes).unwrap();
}

#[test]
fn upload_sink_mutant_whole_body_buffered_rejected_by_model() {
    assert!(model_rejects(bodies(), |case| against_model(&WholeBodyBuffered, case)));
}

#[test]
fn upload_sink_refuses_a_body_over_the_cap_having_written_no_more_than_the_cap() {
    let data = suite::body(10_000, 9);
    for imp in [&Streaming as &dyn DynSink, &WholeBodyBuffered] {
        let (meter, mut writer) = (Meter::new(), MemoryWriter::default());
        let refused = imp.store_dyn(Chunks::of(&data, 1_000), &mut writer, 4_500, &meter);
        assert!(matches!(refused, Err(SinkError::TooLarge { max: 4_500 })), "{refused:?}");
        assert!(writer.bytes.len() <= 4_500 && data.starts_with(&writer.bytes));
        assert_eq!(meter.held(), 0, "nothing held once refused");
        let (meter, mut writer) = (Meter::new(), MemoryWriter::default());
        let exact = imp.store_dyn(Chunks::of(&data, 1_000), &mut writer, 10_000, &meter).unwrap();
        assert_eq!((exact.bytes, exact.sha256), (10_000, sha256(&data)), "a body of exactly the cap fits");
    }
}

/// A sink as a trait object, to run both implementations in one loop.
trait DynSink {
    fn store_dyn(
        &self,
        body: Chunks,
        writer: &mut MemoryWriter,
        max: u64,
        meter: &Meter,
    ) -> Result<Stored, SinkError>;
}

impl<S: Sink> DynSink for S {
    fn store_dyn(
        &self,
        body: Chunks,
        writer: &mut MemoryWriter,
        max: u64,
        meter: &Meter,
    ) -> Result<Stored, SinkError> {
        block_on(self.store(body, writer, max, meter))
    }
}

/// A body whose second chunk fails, as a client that goes away mid-upload.
struct Broken(u8);

impl Body for Broken {
    type Chunk = Vec<u8>;
    type Error = &'static str;

    async fn next_chunk(&mut self) -> Option<Result<Vec<u8>, &'static str>> {
        self.0 += 1;
        Some(if self.0 == 1 { Ok(vec![1; 100]) } else { Err("connection reset") })
    }
}

#[test]
fn upload_sink_body_error_is_reported_and_nothing_stays_held() {
    let (meter, mut writer) = (Meter::new(), MemoryWriter::default());
    let error = block_on(Streaming.store(Broken(0), &mut writer, u64::MAX, &meter)).unwrap_err();
    assert!(matches!(error, SinkError::Body(ref e) if e == "connection reset"), "{error}");
    assert_eq!((meter.held(), meter.peak()), (0, 100));
}

/// A writer that fails, as a full disk.
struct Full;

impl Writer for Full {
    async fn write_all(&mut self, _: &[u8]) -> std::io::Result<()> {
        Err(std::io::Error::other("no space left on device"))
    }
}

#[test]
fn upload_sink_write_error_is_reported() {
    let error =
        block_on(Streaming.store(Chunks::of(&[7; 10], 4), &mut Full, u64::MAX, &Meter::new())).unwrap_err();
    assert!(matches!(error, SinkError::Write(_)), "{error}");
    assert_eq!(error.to_string(), "cannot store the upload: no space left on device");
}

/// A sink that loses a body's last chunk (a loop that stops one read early): what the
/// integrity check is for.
struct DropsLastChunk;

impl Sink for DropsLastChunk {
    async fn store<B: Body, W: Writer>(
        &self,
        mut body: B,
        writer: &mut W,
        _max: u64,
        _meter: &Meter,
    ) -> Result<Stored, SinkError> {
        let mut kept: Vec<u8> = Vec::new();
        let mut last: Option<Vec<u8>> = None;
        while let Some(chunk) = body.next_chunk().await {
            let chunk = chunk.map_err(|e| SinkError::Body(e.to_string()))?;
            if let Some(previous) = last.replace(chunk.as_ref().to_vec()) {
                writer.write_all(&previous).await?;
                kept.extend_from_slice(&previous);
            }
        }
        Ok(Stored { bytes: kept.len() as u64, sha256: sha256(&kept) })
    }
}

#[test]
fn upload_sink_integrity_check_rejects_a_chunk_dropping_mutant() {
    let violation = suite::every_chunking(&DropsLastChunk).unwrap_err();
    assert_eq!(violation.rule, "wrong-size", "{violation}");
}

#[test]
fn upload_sink_integrity_check_names_each_way_a_body_differs() {
    let sent = b"the bytes sent".to_vec();
    let right = Stored { bytes: sent.len() as u64, sha256: sha256(&sent) };
    invariant::stored_whole(&sent, &right, &sent).unwrap();
    let short = Stored { bytes: 3, ..right };
    assert_eq!(invariant::stored_whole(&sent, &short, &sent).unwrap_err().rule, "wrong-size");
    let digest = Stored { sha256: sha256(b"other bytes sent"), ..right };
    assert_eq!(invariant::stored_whole(&sent, &digest, &sent).unwrap_err().rule, "wrong-digest");
    let reordered = b"bytes sent the ".to_vec();
    let violation = invariant::stored_whole(&sent, &right, &reordered).unwrap_err();
    assert_eq!(violation.rule, "stored-bytes-differ");
    assert!(violation.evidence.contains("first difference at offset 0"), "{violation}");
    assert_eq!(right.sha256_hex().len(), 64);
}
