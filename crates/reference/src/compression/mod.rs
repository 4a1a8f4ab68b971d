//! #16 Response compression (seed 004: gzip above 1 KiB, `Vary: Accept-Encoding`).
//!
//! A response is *compressible* when its body is at least [`MIN_SIZE`] bytes, not already
//! encoded, and of a content type worth compressing (not an image other than SVG, not gRPC,
//! not an event stream). A compressible response varies by `Accept-Encoding`, so it carries
//! `Vary: Accept-Encoding` whatever it is sent as: without it a shared cache may hand the gzip
//! bytes to a client that never asked for them ([`mutants::MissingVary`]). It is sent
//! gzip-encoded when the request asks for gzip ([`accepts_gzip`]) and the encoding saves at
//! least [`MIN_SAVING_PERCENT`] of the body; the decoded body is the original.
//!
//! The policy is a pure decision ([`compressible`], [`accepts_gzip`], [`saves_enough`]) plus
//! the encoder ([`gzip`]); the stack applies it to every response whose size it knows.

pub mod invariant;
pub mod mutants;
#[cfg(all(feature = "testing", not(loom)))]
pub mod suite;

use std::io::{Read, Write};

pub const COMPONENT: &str = "compression";

/// Bodies of at least this many bytes are compressed (seed 004: above 1 KiB).
pub const MIN_SIZE: usize = 1024;

/// Gzip is sent only when it makes the body at least this many percent smaller.
pub const MIN_SAVING_PERCENT: usize = 10;

/// Content types never compressed (prefixes): images are compressed already, gRPC frames its
/// own messages, an event stream must reach the client as each event is written.
const NOT_FOR: [&str; 3] = ["image/", "application/grpc", "text/event-stream"];

/// A response, as far as compressing it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response<'a> {
    pub content_type: Option<&'a str>,
    /// It already has a `Content-Encoding` or is a range (`Content-Range`).
    pub encoded: bool,
    /// The body's length.
    pub len: usize,
}

/// Whether `response` is compressible, and so varies by `Accept-Encoding`.
pub fn compressible(response: &Response<'_>) -> bool {
    let content_type = response.content_type.unwrap_or("");
    let excluded = NOT_FOR.iter().any(|prefix| content_type.starts_with(prefix))
        && !content_type.starts_with("image/svg+xml");
    response.len >= MIN_SIZE && !response.encoded && !excluded
}

/// Whether a request whose `Accept-Encoding` values are `accept_encoding` asks for gzip:
/// `gzip` (or `x-gzip`) with a q-value above zero, and at least that of `identity` when
/// `identity` is named. Unknown codings, `*` and malformed q-values are ignored.
pub fn accepts_gzip<'a>(accept_encoding: impl IntoIterator<Item = &'a str>) -> bool {
    let (mut gzip, mut identity) = (None::<u16>, None::<u16>);
    for item in accept_encoding.into_iter().flat_map(|value| value.split(',')) {
        let mut parts = item.splitn(2, ';');
        let coding = parts.next().unwrap_or("").trim();
        let Some(q) = parts.next().map_or(Some(1000), |q| qvalue(q.trim())) else { continue };
        let slot = if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            &mut gzip
        } else if coding.eq_ignore_ascii_case("identity") {
            &mut identity
        } else {
            continue;
        };
        *slot = Some(slot.map_or(q, |seen| seen.max(q)));
    }
    gzip.is_some_and(|gzip| gzip > 0 && gzip >= identity.unwrap_or(0))
}

/// A q-value (`q=0.5`) in thousandths; `None` when malformed.
fn qvalue(text: &str) -> Option<u16> {
    let value = text.strip_prefix("q=").or_else(|| text.strip_prefix("Q="))?;
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    if !matches!(whole, "0" | "1") || fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = format!("{fraction:0<3}").parse::<u16>().ok()?;
    let q = if whole == "1" { 1000 + thousandths } else { thousandths };
    (q <= 1000).then_some(q)
}

/// Whether an encoding of `encoded` bytes saves at least [`MIN_SAVING_PERCENT`] of `original`.
pub fn saves_enough(original: usize, encoded: usize) -> bool {
    encoded.saturating_mul(100) <= original.saturating_mul(100 - MIN_SAVING_PERCENT)
}

/// `body` gzip-encoded at the default level.
pub fn gzip(body: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(body).expect("writing into memory cannot fail");
    encoder.finish().expect("writing into memory cannot fail")
}

/// A gzip body decoded.
pub fn gunzip(body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body).read_to_end(&mut out)?;
    Ok(out)
}

/// How to send a response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Encoding {
    /// The body to send instead, with `Content-Encoding: gzip`; `None`: the body as it is.
    pub gzip: Option<Vec<u8>>,
    /// The response carries `Vary: Accept-Encoding`.
    pub vary: bool,
}

/// The compression policy: the correct one and its mutant.
pub trait Compress: Send + Sync {
    /// How to send `response`, whose body is `body`, to a request whose `Accept-Encoding`
    /// values are `accept_encoding`.
    fn encode(&self, accept_encoding: &[&str], response: Response<'_>, body: &[u8]) -> Encoding;
}

/// The correct policy.
#[derive(Debug, Clone, Copy, Default)]
pub struct Gzip;

impl Compress for Gzip {
    fn encode(&self, accept_encoding: &[&str], response: Response<'_>, body: &[u8]) -> Encoding {
        if !compressible(&response) {
            return Encoding::default();
        }
        let gzip = accepts_gzip(accept_encoding.iter().copied())
            .then(|| gzip(body))
            .filter(|encoded| saves_enough(body.len(), encoded.len()));
        Encoding { gzip, vary: true }
    }
}
