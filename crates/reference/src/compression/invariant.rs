//! The compression invariants as checks over one exchange as the client saw it.

use crate::invariant::{Judgement, Violation};

use super::{COMPONENT, MIN_SAVING_PERCENT, Response, compressible, gunzip, gzip, saves_enough};

/// One request and its response, as the client saw them.
#[derive(Debug, Clone, Copy)]
pub struct Exchange<'a> {
    /// The body the handler produced.
    pub original: &'a [u8],
    pub content_type: Option<&'a str>,
    /// The request asked for gzip ([`accepts_gzip`](super::accepts_gzip) of its
    /// `Accept-Encoding`).
    pub asked_gzip: bool,
    /// The response's `Content-Encoding`, if any.
    pub content_encoding: Option<&'a str>,
    /// The response's `Vary` values.
    pub vary: &'a [&'a str],
    /// The body as received.
    pub body: &'a [u8],
}

impl Exchange<'_> {
    fn gzipped(&self) -> bool {
        self.content_encoding.is_some_and(|e| e.trim().eq_ignore_ascii_case("gzip"))
    }

    fn compressible(&self) -> bool {
        compressible(&Response { content_type: self.content_type, encoded: false, len: self.original.len() })
    }
}

/// The body received, decoded, is the original ("decoded-differs"); a gzip body that does not
/// decode is "undecodable".
pub fn decodes_to_original(exchange: &Exchange<'_>) -> Judgement {
    let decoded = if exchange.gzipped() {
        gunzip(exchange.body).map_err(|e| {
            Violation::new(
                COMPONENT,
                "undecodable",
                format!("a {}-byte gzip body does not decode: {e}", exchange.body.len()),
            )
        })?
    } else {
        exchange.body.to_vec()
    };
    if decoded == exchange.original {
        return Ok(());
    }
    Err(Violation::new(
        COMPONENT,
        "decoded-differs",
        format!(
            "{} bytes decoded ({} received, content-encoding {:?}) for a {}-byte body",
            decoded.len(),
            exchange.body.len(),
            exchange.content_encoding,
            exchange.original.len()
        ),
    ))
}

/// A compressible response carries `Vary: Accept-Encoding`, whether gzip-encoded or not
/// ("missing-vary").
pub fn vary_present(exchange: &Exchange<'_>) -> Judgement {
    let varies = exchange
        .vary
        .iter()
        .flat_map(|value| value.split(','))
        .any(|name| name.trim().eq_ignore_ascii_case("accept-encoding") || name.trim() == "*");
    if varies || !exchange.compressible() {
        return Ok(());
    }
    Err(Violation::new(
        COMPONENT,
        "missing-vary",
        format!(
            "a {}-byte {} response ({}) without Vary: Accept-Encoding (Vary: {:?})",
            exchange.original.len(),
            exchange.content_type.unwrap_or("untyped"),
            if exchange.gzipped() { "gzip-encoded" } else { "identity" },
            exchange.vary
        ),
    ))
}

/// Gzip only for a request that asked for it ("unrequested-gzip"), only for a compressible
/// body and only when it saves enough ("needless-gzip"); and a request that asked for it gets
/// it whenever it saves at least the minimum ("not-compressed").
pub fn gzip_when_asked_and_worth_it(exchange: &Exchange<'_>) -> Judgement {
    let len = exchange.original.len();
    if exchange.gzipped() {
        if !exchange.asked_gzip {
            return Err(Violation::new(
                COMPONENT,
                "unrequested-gzip",
                format!("a {len}-byte body gzip-encoded for a request that did not ask for gzip"),
            ));
        }
        if !exchange.compressible() || !saves_enough(len, exchange.body.len()) {
            return Err(Violation::new(
                COMPONENT,
                "needless-gzip",
                format!(
                    "a {len}-byte {} body gzip-encoded to {} bytes: below the minimum size or saving less than {MIN_SAVING_PERCENT} %",
                    exchange.content_type.unwrap_or("untyped"),
                    exchange.body.len()
                ),
            ));
        }
        return Ok(());
    }
    if exchange.asked_gzip && exchange.compressible() {
        let would = gzip(exchange.original).len();
        if saves_enough(len, would) {
            return Err(Violation::new(
                COMPONENT,
                "not-compressed",
                format!(
                    "a {len}-byte body sent as is to a request that asked for gzip, which makes it {would} bytes"
                ),
            ));
        }
    }
    Ok(())
}

/// Every compression invariant over `exchange`.
pub fn exchange(exchange: &Exchange<'_>) -> Judgement {
    decodes_to_original(exchange)?;
    vary_present(exchange)?;
    gzip_when_asked_and_worth_it(exchange)
}
