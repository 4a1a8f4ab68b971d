//! The upload sink as the field wrote it before streaming.

use sha2::{Digest, Sha256};

use super::{Body, Meter, Sink, SinkError, Stored, Writer};

/// The whole body collected in memory first, then hashed and written: Django's
/// `request.body`, a `file.read()` without a size. The bytes stored and the digest are right;
/// the memory held grows with the body, so a large upload (or a few at once) exhausts the
/// process.
#[derive(Debug, Clone, Copy, Default)]
pub struct WholeBodyBuffered;

impl Sink for WholeBodyBuffered {
    async fn store<B: Body, W: Writer>(
        &self,
        mut body: B,
        writer: &mut W,
        max: u64,
        meter: &Meter,
    ) -> Result<Stored, SinkError> {
        let mut whole = Vec::new();
        let mut held = meter.hold();
        while let Some(chunk) = body.next_chunk().await {
            let chunk = chunk.map_err(|e| SinkError::Body(e.to_string()))?;
            let chunk = chunk.as_ref();
            if (whole.len() + chunk.len()) as u64 > max {
                return Err(SinkError::TooLarge { max });
            }
            whole.extend_from_slice(chunk);
            held.grow(chunk.len());
        }
        writer.write_all(&whole).await?;
        Ok(Stored { bytes: whole.len() as u64, sha256: Sha256::digest(&whole).into() })
    }
}
