//! The compression suite, run against any [`Compress`]: a table of bodies (small and large,
//! compressible and not) against a table of `Accept-Encoding` headers, every exchange judged.
//! A policy is a pure function of its inputs, so there is no contention to provoke.

use crate::invariant::Judgement;

use super::invariant::{self, Exchange};
use super::{Compress, Response, accepts_gzip};

/// `Accept-Encoding` values a client may send, from none to several codings with q-values.
pub const ACCEPT: &[&[&str]] = &[
    &[],
    &["gzip"],
    &["gzip, deflate, br"],
    &["br", "x-gzip;q=0.5"],
    &["gzip;q=0"],
    &["identity"],
    &["identity;q=1, gzip;q=0.5"],
    &["*"],
];

/// A JSON list of `items` video records: what the feed answers, compressible.
pub fn json_list(items: usize) -> Vec<u8> {
    let items: Vec<String> = (0..items)
        .map(|i| {
            format!(r#"{{"id":"{i:016x}","url":"https://www.youtube.com/watch?v=v{i}","status":"pending"}}"#)
        })
        .collect();
    format!(r#"{{"items":[{}],"next_cursor":null}}"#, items.join(",")).into_bytes()
}

/// `len` bytes that repeat no pattern (xorshift): gzip cannot shrink them.
pub fn noise(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// Sends `body` as a `content_type` response through `imp` to a request with `accept`, and
/// judges the exchange.
pub fn exchange<C: Compress>(imp: &C, accept: &[&str], content_type: &str, body: &[u8]) -> Judgement {
    let response = Response { content_type: Some(content_type), encoded: false, len: body.len() };
    let encoding = imp.encode(accept, response, body);
    let vary: &[&str] = if encoding.vary { &["accept-encoding"] } else { &[] };
    invariant::exchange(&Exchange {
        original: body,
        content_type: Some(content_type),
        asked_gzip: accepts_gzip(accept.iter().copied()),
        content_encoding: encoding.gzip.as_ref().map(|_| "gzip"),
        vary,
        body: encoding.gzip.as_deref().unwrap_or(body),
    })
}

/// Every body of the table against every header of [`ACCEPT`].
pub fn table<C: Compress>(imp: &C) -> Judgement {
    let bodies: [(&str, Vec<u8>); 6] = [
        ("application/json", json_list(2)),
        ("application/json", json_list(12)),
        ("application/json", json_list(100)),
        ("application/octet-stream", noise(8_192)),
        ("image/png", json_list(100)),
        ("image/svg+xml", json_list(100)),
    ];
    for (content_type, body) in &bodies {
        for accept in ACCEPT {
            exchange(imp, accept, content_type, body)?;
        }
    }
    Ok(())
}
