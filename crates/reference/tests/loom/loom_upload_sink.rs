//! #12 upload sink: two uploads sharing one memory meter, every interleaving. Each is stored
//! whole, the meter never counts more than one chunk per upload at once, and it is back to
//! zero when both are done.

use std::sync::Arc;

use loom::thread;
use reference::sync::block_on;
use reference::upload_sink::mutants::WholeBodyBuffered;
use reference::upload_sink::{Chunks, MemoryWriter, Meter, Sink, Streaming, invariant};

use crate::common::{Found, assert_caught, assert_holds, explore};

/// Stores `data` in one-byte chunks through `imp`, counted in `meter`, and judges the bytes.
fn upload<S: Sink>(imp: &S, data: &[u8], meter: &Meter, found: &Found) {
    let mut writer = MemoryWriter::default();
    let stored = block_on(imp.store(Chunks::of(data, 1), &mut writer, u64::MAX, meter)).unwrap();
    found.record(invariant::stored_whole(data, &stored, &writer.bytes));
}

/// A three-byte upload on a spawned thread and a one-byte upload on the model's own.
fn two_uploads<S: Sink + 'static>(imp: S, found: &Found) {
    let (imp, meter) = (Arc::new(imp), Arc::new(Meter::new()));
    let other = {
        let (imp, meter, found) = (Arc::clone(&imp), Arc::clone(&meter), found.clone());
        thread::spawn(move || upload(&*imp, b"abc", &meter, &found))
    };
    upload(&*imp, b"z", &meter, found);
    other.join().unwrap();
    // One one-byte chunk per upload at most, and nothing once both are done.
    found.record(invariant::held_bounded(meter.peak(), 2, 4));
    found.record(invariant::held_bounded(meter.held(), 0, 4));
}

#[test]
fn upload_sink_concurrent_uploads_hold_one_chunk_each() {
    assert_holds(&explore(|found| two_uploads(Streaming, found)));
}

#[test]
fn upload_sink_mutant_whole_body_buffered_caught_by_loom() {
    assert_caught(&explore(|found| two_uploads(WholeBodyBuffered, found)), "body-held-in-memory");
}
