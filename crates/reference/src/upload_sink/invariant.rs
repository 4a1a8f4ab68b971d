//! The upload-sink invariants as checks over what an upload stored and held.

use crate::invariant::{Judgement, Violation};

use super::{COMPONENT, Stored, hex, sha256};

/// The upload stored exactly the body `sent`: the size and SHA-256 the sink reported are the
/// sent bytes' ("wrong-size", "wrong-digest"), and so are the bytes it wrote, `written`
/// ("stored-bytes-differ").
pub fn stored_whole(sent: &[u8], stored: &Stored, written: &[u8]) -> Judgement {
    if stored.bytes != sent.len() as u64 {
        return Err(Violation::new(
            COMPONENT,
            "wrong-size",
            format!("{} bytes sent, {} reported stored", sent.len(), stored.bytes),
        ));
    }
    let digest = sha256(sent);
    if stored.sha256 != digest {
        return Err(Violation::new(
            COMPONENT,
            "wrong-digest",
            format!(
                "{} bytes sent with SHA-256 {}, reported {}",
                sent.len(),
                hex(&digest),
                stored.sha256_hex()
            ),
        ));
    }
    if written != sent {
        let at = written.iter().zip(sent).position(|(a, b)| a != b).unwrap_or(written.len().min(sent.len()));
        return Err(Violation::new(
            COMPONENT,
            "stored-bytes-differ",
            format!("{} bytes sent, {} written; first difference at offset {at}", sent.len(), written.len()),
        ));
    }
    Ok(())
}

/// Uploads of `body_bytes` held at most `bound` body bytes in memory at once (`peak`, a
/// [`Meter`](super::Meter)'s high-water mark): the bound is what streaming needs — the largest
/// chunk of each upload in flight at once — and does not grow with the bodies.
pub fn held_bounded(peak: u64, bound: u64, body_bytes: u64) -> Judgement {
    if peak <= bound {
        return Ok(());
    }
    Err(Violation::new(
        COMPONENT,
        "body-held-in-memory",
        format!(
            "uploading {body_bytes} bytes held {peak} bytes in memory at once; streaming holds at most {bound}"
        ),
    ))
}
