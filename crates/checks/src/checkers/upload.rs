//! Streamed uploads arrive whole (#12). Bodies of several sizes (the empty one included) are
//! streamed, each in several chunkings (one chunk, large chunks, small odd ones), released
//! together over the instances, with a fresh user per size so no upload limit is reached. The
//! size and SHA-256 the stack answers must be those of the bytes sent, and the metadata read
//! back on every instance must agree. A stack that drops, repeats or reorders chunks, or keeps
//! a partial body, answers another digest.
//!
//!
//! Whether the stack streams the body to storage or buffers it whole first
//! (`upload_sink::mutants::WholeBodyBuffered`) no answer shows: both store the same bytes and answer
//! the same digest. The difference is the memory an upload holds, so with `memory` the check
//! sends one more, larger body alone to each instance and then reads that instance's gauge of
//! the most upload bytes it held at once: a stack that streams holds a few socket reads, one
//! that buffers holds the whole body.

use client::{Target, TargetError};
use profile::template::RequestTemplate;
use report::checks::{MAX_UNKNOWN, Verdict};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::burst;
use crate::checkers::support::{self, hex, pointer_string, pointer_u64};
use crate::history::{Op, Outcome, Record};
use crate::kind::{FieldError, Kind, at_least_one};

pub const KIND: &str = "upload";

/// `size` bytes that repeat no short pattern (xorshift), so a dropped or repeated chunk
/// changes the digest.
pub fn body(size: u64) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15 ^ size;
    (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// The chunk size of the memory probe's upload.
const MEMORY_CHUNK: usize = 64 * 1024;

/// `body` cut into chunks of `chunk` bytes (one chunk when 0).
fn chunks(body: &[u8], chunk: usize) -> Vec<Vec<u8>> {
    if chunk == 0 || body.is_empty() {
        return vec![body.to_vec()];
    }
    body.chunks(chunk).map(<[u8]>::to_vec).collect()
}

/// Runs the check against `target`.
pub async fn run(target: &Target, check: &UploadCheck) -> Result<Verdict, TargetError> {
    let mut history = Vec::new();
    for (s, &size) in check.sizes.iter().enumerate() {
        let user = target.user(&format!("{}-{size}", check.name)).await?;
        let sent = body(size);
        let digest = hex(&Sha256::digest(&sent));
        let uploads = burst::release(check.chunk_sizes.len(), |c| {
            let target = target.clone();
            let check = check.clone();
            let chunk = check.chunk_sizes[c];
            let instance = (s + c) % target.instances();
            let token = user.tokens[instance].clone();
            let parts = chunks(&sent, chunk);
            let digest = digest.clone();
            async move {
                let count = parts.len();
                let answer = target.execute(check.upload(&target, instance, &token, parts)).await;
                let value = json!({
                    "size": size,
                    "sha256": digest,
                    "chunk": chunk,
                    "chunks": count,
                    "id": pointer_string(&answer.body, &check.id),
                    "answered_bytes": check.bytes.as_deref().and_then(|p| pointer_u64(&answer.body, p)),
                    "answered_sha256": check.sha256.as_deref().and_then(|p| pointer_string(&answer.body, p)),
                    "asks_bytes": check.bytes.is_some(),
                    "asks_sha256": check.sha256.is_some(),
                });
                answer.op(s, instance, "upload", support::by_status(&answer), value)
            }
        })
        .await;
        for upload in uploads.iter().filter(|op| op.outcome == Outcome::Ok) {
            let Some(id) = upload.value["id"].as_str() else { continue };
            for instance in 0..target.instances() {
                let request =
                    target.request(instance, Some(&user.tokens[instance]), &check.read_back, &[("id", id)]);
                let (answer, raw) = target.execute_raw(request).await;
                // The bytes themselves, digested here; or the metadata the stack states.
                let (bytes, sha256) = match check.read_back_as {
                    ReadBack::Bytes => (
                        answer.status.map(|_| raw.len() as u64),
                        answer.status.map(|_| hex(&Sha256::digest(&raw))),
                    ),
                    ReadBack::Metadata => (
                        check.bytes.as_deref().and_then(|p| pointer_u64(&answer.body, p)),
                        check.sha256.as_deref().and_then(|p| pointer_string(&answer.body, p)),
                    ),
                };
                let value = json!({
                    "id": id,
                    "size": size,
                    "sha256": digest,
                    "answered_bytes": bytes,
                    "answered_sha256": sha256,
                });
                history.push(answer.op(s, instance, "read-back", support::read(&answer), value));
            }
        }
        history.extend(uploads);
    }
    if let Some(memory) = &check.memory {
        let user = target.user(&format!("{}-memory", check.name)).await?;
        let sent = body(memory.size);
        let digest = hex(&Sha256::digest(&sent));
        let process = check.sizes.len();
        for instance in 0..target.instances() {
            let (chunk, parts) = (MEMORY_CHUNK, chunks(&sent, MEMORY_CHUNK));
            let count = parts.len();
            let answer = target.execute(check.upload(target, instance, &user.tokens[instance], parts)).await;
            let value = json!({
                "size": memory.size,
                "sha256": digest,
                "chunk": chunk,
                "chunks": count,
                "id": pointer_string(&answer.body, &check.id),
                "answered_bytes": check.bytes.as_deref().and_then(|p| pointer_u64(&answer.body, p)),
                "answered_sha256": check.sha256.as_deref().and_then(|p| pointer_string(&answer.body, p)),
                "asks_bytes": check.bytes.is_some(),
                "asks_sha256": check.sha256.is_some(),
            });
            history.push(answer.op(process, instance, "upload", support::by_status(&answer), value));
            let invoke_us = target.clock.now_us();
            let text = target.metrics_text(instance, &memory.metrics).await.map_err(|reason| {
                TargetError::Setup {
                    url: target.urls[instance].clone(),
                    reason: format!("{}: {reason}", memory.metrics),
                }
            })?;
            let Some(peak) = profile::prometheus::value(&text, &memory.metric, &[]) else {
                return Err(TargetError::Configuration {
                    check: check.name.clone(),
                    reason: format!(
                        "instance {instance}'s {} has no sample {:?} (memory.metric)",
                        memory.metrics, memory.metric
                    ),
                });
            };
            history.push(Op {
                process,
                instance,
                action: "memory".into(),
                outcome: Outcome::Ok,
                status: Some(200),
                invoke_us,
                complete_us: target.clock.now_us(),
                value: json!({ "peak_bytes": peak as u64, "max_bytes": memory.max_bytes, "largest": memory.size }),
            });
        }
    }
    Ok(judge(&check.name, &history))
}

/// Judges `upload`s and their `read-back`s: each carries what was sent (`size`, `sha256`)
/// and what was answered (`answered_bytes`, `answered_sha256`).
pub fn judge(name: &str, history: &[Op]) -> Verdict {
    let mut verdict = Verdict::new(name, KIND, history.len(), json!({}));
    let (mut stored, mut read_backs, mut unknown, mut undescribed) = (0, 0, 0, 0);
    // What the profile asks an answer to state: an upload's size and digest may be left to a
    // read-back of the bytes (`asks_bytes`, `asks_sha256` false); unmarked, both are asked.
    let asks = |op: &Op, field: &str| op.value[field] != false;
    let describes = |op: &Op| {
        op.value["id"].is_string()
            && (!asks(op, "asks_bytes") || op.value["answered_bytes"].is_u64())
            && (!asks(op, "asks_sha256") || op.value["answered_sha256"].is_string())
    };
    let status = |op: &Op| op.status.map_or("nothing".to_owned(), |s| s.to_string());
    for op in history {
        let what = format!("{} bytes in chunks of {}", op.value["size"], op.value["chunk"]);
        let agrees = !asks(op, "asks_bytes") || op.value["answered_bytes"] == op.value["size"];
        let same_digest = !asks(op, "asks_sha256") || op.value["answered_sha256"] == op.value["sha256"];
        match (op.action.as_str(), op.outcome) {
            (_, Outcome::Unknown) => unknown += 1,
            ("upload", Outcome::Fail) => {
                verdict.violate("refused", format!("{what}: answered {}", status(op)), [op.clone()]);
            }
            // An answer that states no id, size or digest cannot be compared (`answers-describe`).
            ("upload" | "read-back", Outcome::Ok) if !describes(op) => undescribed += 1,
            ("upload", Outcome::Ok) => {
                stored += 1;
                if !agrees {
                    verdict.violate(
                        "size-mismatch",
                        format!("{what}: answered {} bytes", op.value["answered_bytes"]),
                        [op.clone()],
                    );
                }
                if !same_digest {
                    verdict.violate(
                        "digest-mismatch",
                        format!(
                            "{what}: answered sha256 {} for {}",
                            op.value["answered_sha256"], op.value["sha256"]
                        ),
                        [op.clone()],
                    );
                }
            }
            ("read-back", Outcome::Fail) => verdict.violate(
                "not-visible",
                format!(
                    "upload {} read back on instance {}: answered {}",
                    op.value["id"],
                    op.instance,
                    status(op)
                ),
                [op.clone()],
            ),
            ("read-back", Outcome::Ok) => {
                read_backs += 1;
                if !agrees || !same_digest {
                    verdict.violate(
                        "read-back-mismatch",
                        format!(
                            "upload {} on instance {}: {} bytes, sha256 {}; sent {} bytes, sha256 {}",
                            op.value["id"],
                            op.instance,
                            op.value["answered_bytes"],
                            op.value["answered_sha256"],
                            op.value["size"],
                            op.value["sha256"]
                        ),
                        [op.clone()],
                    );
                }
            }
            ("memory", Outcome::Ok) => {
                let (peak, max) = (&op.value["peak_bytes"], &op.value["max_bytes"]);
                if peak.as_u64() > max.as_u64() {
                    verdict.violate(
                        "body-held-in-memory",
                        format!(
                            "instance {} held up to {peak} upload bytes at once (bound {max}; the largest \
                             upload was {} bytes): bodies are buffered, not streamed",
                            op.instance, op.value["largest"]
                        ),
                        [op.clone()],
                    );
                }
            }
            _ => {}
        }
    }
    let uploads = history.iter().filter(|op| op.action == "upload").count();
    verdict.require(
        "uploads-stored",
        stored > 0,
        format!("{stored} of {uploads} uploads stored"),
        "the upload must answer 2xx",
    );
    verdict.require(
        "answers-describe",
        undescribed == 0,
        format!("{undescribed} answers stated no id, size or digest"),
        "the upload's answer and its read-back must carry the id, size and digest at `id`, `bytes`, `sha256`",
    );
    verdict.require(
        "read-backs",
        read_backs > 0,
        format!("{read_backs} read-backs of the stored uploads"),
        "`read_back` must answer 2xx with the upload's metadata",
    );
    verdict.bound_unknown(history, MAX_UNKNOWN);
    let peaks: Vec<&serde_json::Value> =
        history.iter().filter(|op| op.action == "memory").map(|op| &op.value["peak_bytes"]).collect();
    verdict.evidence = json!({
        "stored": stored,
        "read_backs": read_backs,
        "unknown": unknown,
        "peak_held_bytes_per_instance": peaks,
    });
    verdict.summarize(format!(
        "{stored} streamed uploads: size and SHA-256 as sent, the same on {read_backs} read-backs"
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::checkers::support::testing::op;

    fn upload(bytes: u64, sha: &str) -> Op {
        op(
            0,
            0,
            "upload",
            0,
            Outcome::Ok,
            json!({ "size": 5, "sha256": "ab", "chunk": 2, "id": "u", "answered_bytes": bytes, "answered_sha256": sha }),
        )
    }

    fn read_back(instance: usize, bytes: u64, sha: &str) -> Op {
        op(
            0,
            instance,
            "read-back",
            1,
            Outcome::Ok,
            json!({ "id": "u", "size": 5, "sha256": "ab", "answered_bytes": bytes, "answered_sha256": sha }),
        )
    }

    #[test]
    fn an_answer_that_states_only_the_id_is_judged_by_the_bytes_read_back() {
        let mut only_id = upload(0, "");
        only_id.value["answered_bytes"] = json!(null);
        only_id.value["answered_sha256"] = json!(null);
        only_id.value["asks_bytes"] = json!(false);
        only_id.value["asks_sha256"] = json!(false);
        let v = judge("u", &[only_id.clone(), read_back(0, 5, "ab")]);
        assert!(v.held(), "{v:?}");
        let v = judge("u", &[only_id.clone(), read_back(0, 4, "cd")]);
        assert_eq!(v.rules(), ["read-back-mismatch"]);
        // Asked and missing is still an answer that does not describe the upload.
        let mut missing = only_id;
        missing.value["asks_bytes"] = json!(true);
        let v = judge("u", &[missing, read_back(0, 5, "ab")]);
        assert!(v.missing().contains(&"answers-describe"), "{:?}", v.missing());
    }

    #[test]
    fn what_was_sent_everywhere_passes() {
        let verdict = judge("u", &[upload(5, "ab"), read_back(0, 5, "ab"), read_back(1, 5, "ab")]);
        assert!(verdict.held(), "{:?}", verdict.violations);
    }

    #[test]
    fn uploads_nobody_answered_are_inconclusive() {
        let mut lost = upload(5, "ab");
        lost.outcome = Outcome::Unknown;
        lost.status = Some(503);
        let verdict = judge("u", &[lost.clone(), lost]);
        assert!(verdict.inconclusive() && verdict.rules().is_empty(), "{verdict:?}");
        assert_eq!(verdict.missing(), ["uploads-stored", "read-backs", "unknown-within-bound"]);
    }

    #[test]
    fn each_rule_fails_alone() {
        assert_eq!(judge("u", &[upload(4, "ab")]).rules(), ["size-mismatch"]);
        assert_eq!(judge("u", &[upload(5, "cd")]).rules(), ["digest-mismatch"]);
        assert_eq!(judge("u", &[upload(5, "ab"), read_back(1, 5, "cd")]).rules(), ["read-back-mismatch"]);
        let lost = op(0, 1, "read-back", 1, Outcome::Fail, json!({ "id": "u" }));
        assert_eq!(judge("u", &[upload(5, "ab"), lost]).rules(), ["not-visible"]);
        let refused = op(0, 0, "upload", 0, Outcome::Fail, json!({ "size": 5 }));
        assert_eq!(judge("u", &[upload(5, "ab"), refused]).rules(), ["refused"]);
        // An answer naming no upload cannot be compared: nothing violated, nothing held.
        let mut anonymous = upload(5, "ab");
        anonymous.value["id"] = json!(null);
        let verdict = judge("u", &[anonymous, read_back(0, 5, "ab")]);
        assert_eq!(
            (verdict.inconclusive(), verdict.missing()),
            (true, vec!["uploads-stored", "answers-describe"])
        );
    }

    fn memory(peak: u64) -> Op {
        op(
            9,
            1,
            "memory",
            0,
            Outcome::Ok,
            json!({ "peak_bytes": peak, "max_bytes": 262_144, "largest": 1_048_583 }),
        )
    }

    #[test]
    fn a_stack_holding_a_whole_body_breaks_the_memory_bound() {
        let streaming = [upload(5, "ab"), read_back(0, 5, "ab"), memory(65_536)];
        assert!(judge("u", &streaming).held());
        // WholeBodyBuffered: three 1 MiB bodies collected at once.
        let buffered = judge("u", &[upload(5, "ab"), memory(3 * 1_048_583)]);
        assert_eq!(buffered.rules(), ["body-held-in-memory"]);
        assert!(buffered.violations[0].detail.contains("instance 1"), "{:?}", buffered.violations);
    }

    #[test]
    fn bodies_and_chunkings_are_what_they_say() {
        let sent = body(70_001);
        assert_eq!(sent.len(), 70_001);
        assert_ne!(sent[..1000], sent[1000..2000]);
        let parts = chunks(&sent, 997);
        assert_eq!(parts.len(), 71);
        assert_eq!(parts.concat(), sent);
        assert_eq!(chunks(&sent, 0).len(), 1);
        assert_eq!(chunks(&[], 997), vec![Vec::<u8>::new()]);
    }

    #[test]
    fn the_evidence_and_summary_say_what_was_seen() {
        let v = judge("u", &[upload(5, "ab"), read_back(0, 5, "ab"), read_back(1, 5, "ab")]);
        assert_eq!(
            v.evidence,
            json!({ "peak_held_bytes_per_instance": [], "read_backs": 2, "stored": 1, "unknown": 0 })
        );
        assert_eq!(v.summary, "1 streamed uploads: size and SHA-256 as sent, the same on 2 read-backs");
        let mut lost = upload(5, "ab");
        lost.outcome = Outcome::Unknown;
        let v = judge("u", &[upload(5, "ab"), lost, read_back(0, 5, "ab")]);
        assert_eq!(v.evidence["unknown"], 1);
        assert!(
            v.summary.contains("1 of 2 uploads stored") || v.summary.contains("1 of 3 operations"),
            "{}",
            v.summary
        );
        // The gauge exactly at its bound is within it; its peaks travel in the evidence.
        let v = judge("u", &[upload(5, "ab"), read_back(0, 5, "ab"), memory(262_144)]);
        assert!(v.held(), "{:?}", v.violations);
        assert_eq!(v.evidence["peak_held_bytes_per_instance"], json!([262_144]));
        // An answer naming no size or digest is counted apart.
        let mut vague = upload(5, "ab");
        vague.value["answered_sha256"] = json!(null);
        let v = judge("u", &[upload(5, "ab"), vague, read_back(0, 5, "ab")]);
        assert!(v.summary.contains("1 answers stated no id, size or digest"), "{}", v.summary);
    }
}

/// Streamed uploads arrive whole (#12): bodies of several sizes, each streamed in several
/// chunkings; the answered size and SHA-256 are those of what was sent, and the metadata read
/// back on every instance agrees.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadCheck {
    pub name: String,
    /// The upload; its body is streamed by the checker.
    pub request: RequestTemplate,
    /// Body sizes in bytes.
    #[serde(default = "default_upload_sizes")]
    pub sizes: Vec<u64>,
    /// Chunk sizes the bodies are streamed in; 0 sends the body as one chunk.
    #[serde(default = "default_chunk_sizes")]
    pub chunk_sizes: Vec<usize>,
    /// JSON pointers to the upload's id, size and lowercase hex SHA-256, in the upload's answer
    /// and in a metadata read-back; the size and digest may be left out when the read-back
    /// is of the bytes.
    pub id: String,
    #[serde(default)]
    pub bytes: Option<String>,
    #[serde(default)]
    pub sha256: Option<String>,
    /// Sends the body as the one file part of a multipart/form-data form (Django, DRF, Rails,
    /// multer) instead of raw.
    #[serde(default)]
    pub multipart: Option<MultipartUpload>,
    /// Reads the upload back; `{id}`.
    pub read_back: RequestTemplate,
    /// What the read-back answers: the upload's metadata (the size and digest at `bytes` and
    /// `sha256`; default) or its bytes, which stampede digests.
    #[serde(default)]
    pub read_back_as: ReadBack,
    /// The memory the stack holds per upload, read from its metrics after the uploads: a
    /// streaming stack holds a chunk at a time, one that buffers holds the body.
    #[serde(default)]
    pub memory: Option<UploadMemory>,
}

/// The form an upload is sent in.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultipartUpload {
    /// The form field of the file.
    #[serde(default = "default_field")]
    pub field: String,
    #[serde(default = "default_filename")]
    pub filename: String,
    #[serde(default = "default_content_type")]
    pub content_type: String,
}

fn default_field() -> String {
    "file".to_owned()
}

fn default_filename() -> String {
    "upload.bin".to_owned()
}

fn default_content_type() -> String {
    "application/octet-stream".to_owned()
}

/// What an upload's read-back answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReadBack {
    #[default]
    Metadata,
    Bytes,
}

impl UploadCheck {
    /// The upload of `parts` streamed chunk by chunk: the raw body, or the file part of a form.
    fn upload(
        &self,
        target: &Target,
        instance: usize,
        token: &str,
        parts: Vec<Vec<u8>>,
    ) -> reqwest::RequestBuilder {
        let length: u64 = parts.iter().map(|p| p.len() as u64).sum();
        let stream = futures_util::stream::iter(parts.into_iter().map(Ok::<_, std::io::Error>));
        let request = target.request(instance, Some(token), &self.request, &[]);
        match &self.multipart {
            None => request.body(reqwest::Body::wrap_stream(stream)),
            Some(form) => {
                // Its length known, the form goes with a Content-Length: servers that read no
                // chunked body (WSGI's) take it too; the bytes still go chunk by chunk.
                let body = reqwest::Body::wrap_stream(stream);
                let part = reqwest::multipart::Part::stream_with_length(body, length)
                    .file_name(form.filename.clone())
                    .mime_str(&form.content_type)
                    .expect("multipart.content_type is validated when the profile is read");
                request.multipart(reqwest::multipart::Form::new().part(form.field.clone(), part))
            }
        }
    }
}

/// Where a stack reports the most upload body bytes it held at once, and the bound.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadMemory {
    /// The metrics endpoint (Prometheus text), read on every instance.
    pub metrics: String,
    /// The gauge: the most upload body bytes the process has held in memory at once.
    pub metric: String,
    /// The bound: above what a streaming stack holds for the check's concurrent uploads (a
    /// socket read or two each), below half of `size`.
    pub max_bytes: u64,
    /// One more upload of this many bytes, sent alone to each instance in 64 KiB chunks before
    /// the gauge is read, so that a stack holding a whole body goes past the bound.
    #[serde(default = "default_memory_upload")]
    pub size: u64,
}

fn default_memory_upload() -> u64 {
    8 * 1024 * 1024
}

fn default_upload_sizes() -> Vec<u64> {
    vec![0, 1_000, 70_001, 1_048_583]
}

fn default_chunk_sizes() -> Vec<usize> {
    vec![0, 65_536, 997]
}

impl Kind for UploadCheck {
    const KIND: &'static str = KIND;

    fn name(&self) -> &str {
        &self.name
    }

    fn requests(&self) -> Vec<(&'static str, &RequestTemplate)> {
        vec![("request", &self.request), ("read_back", &self.read_back)]
    }

    fn pointers(&self) -> Vec<(&'static str, &str)> {
        let mut pointers = vec![("id", self.id.as_str())];
        pointers.extend(self.bytes.as_deref().map(|p| ("bytes", p)));
        pointers.extend(self.sha256.as_deref().map(|p| ("sha256", p)));
        pointers
    }

    fn validate(&self) -> Result<(), FieldError> {
        if self.sizes.is_empty() {
            return Err(FieldError::new("sizes", "sizes and chunk_sizes must not be empty"));
        }
        if self.chunk_sizes.is_empty() {
            return Err(FieldError::new("chunk_sizes", "sizes and chunk_sizes must not be empty"));
        }
        if self.read_back_as == ReadBack::Metadata && (self.bytes.is_none() || self.sha256.is_none()) {
            return Err(FieldError::new(
                "read_back_as",
                "a metadata read-back is compared at `bytes` and `sha256`: give both, or read_back_as = \"bytes\"",
            ));
        }
        if self.multipart.is_some()
            && self.request.headers.keys().any(|k| k.eq_ignore_ascii_case("content-type"))
        {
            return Err(FieldError::new(
                "request",
                "with multipart the form sets Content-Type (with its boundary): remove it from request.headers",
            ));
        }
        if let Some(form) = &self.multipart
            && reqwest::multipart::Part::bytes(Vec::new()).mime_str(&form.content_type).is_err()
        {
            return Err(FieldError::new(
                "multipart.content_type",
                format!("{:?} is not a media type", form.content_type),
            ));
        }
        let Some(memory) = &self.memory else { return Ok(()) };
        at_least_one("memory.max_bytes", memory.max_bytes)?;
        if memory.size <= memory.max_bytes.saturating_mul(2) {
            return Err(FieldError::new(
                "memory.max_bytes",
                format!(
                    "memory.max_bytes {} must be under half of memory.size ({}), or a stack holding \
                     whole bodies could pass",
                    memory.max_bytes, memory.size
                ),
            ));
        }
        Ok(())
    }

    async fn run(&self, target: &Target) -> Result<Verdict, TargetError> {
        run(target, self).await
    }
}
