//! #16 response compression. A pure policy: no contention test, nothing is shared.

use proptest::prelude::*;
use reference::compression::invariant::{self, Exchange};
use reference::compression::mutants::MissingVary;
use reference::compression::{
    Compress, Encoding, Gzip, MIN_SIZE, Response, accepts_gzip, compressible, gunzip, gzip, saves_enough,
    suite,
};

fn json(len: usize) -> Response<'static> {
    Response { content_type: Some("application/json"), encoded: false, len }
}

#[test]
fn compression_accept_encoding_asks_for_gzip_only_with_a_positive_preferred_q() {
    for (accept, asks) in [
        (&[][..], false),
        (&["gzip"][..], true),
        (&["GZIP"][..], true),
        (&["x-gzip"][..], true),
        (&["deflate, gzip;q=0.001"][..], true),
        (&["br", "gzip"][..], true),
        (&["gzip;q=0"][..], false),
        (&["gzip;q=0.000"][..], false),
        (&["gzip;q=0, gzip;q=0.5"][..], true),
        (&["identity"][..], false),
        (&["identity;q=1, gzip;q=0.5"][..], false),
        (&["identity;q=0.5, gzip;q=0.5"][..], true),
        (&["identity;q=0, gzip"][..], true),
        (&["*"][..], false),
        (&["gzip;q=2"][..], false),
        (&["gzip;q=0.5x"][..], false),
        (&["gzip;level=1"][..], false),
        (&[" gzip ; q=0.8 "][..], true),
    ] {
        assert_eq!(accepts_gzip(accept.iter().copied()), asks, "{accept:?}");
    }
}

#[test]
fn compression_compressible_is_at_least_1_kib_unencoded_and_not_an_image() {
    assert!(compressible(&json(MIN_SIZE)));
    assert!(!compressible(&json(MIN_SIZE - 1)));
    assert!(!compressible(&Response { encoded: true, ..json(10_000) }));
    assert!(compressible(&Response { content_type: None, ..json(10_000) }));
    for (content_type, expected) in [
        ("text/html; charset=utf-8", true),
        ("image/png", false),
        ("image/svg+xml", true),
        ("application/grpc", false),
        ("text/event-stream", false),
    ] {
        let response = Response { content_type: Some(content_type), ..json(10_000) };
        assert_eq!(compressible(&response), expected, "{content_type}");
    }
}

#[test]
fn compression_saves_enough_from_ten_percent() {
    assert!(saves_enough(1_000, 900));
    assert!(!saves_enough(1_000, 901));
    assert!(!saves_enough(1_000, 1_200));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn compression_gzip_decodes_to_the_original(body in proptest::collection::vec(any::<u8>(), 0..8_192)) {
        prop_assert_eq!(gunzip(&gzip(&body)).unwrap(), body);
    }
}

#[test]
fn compression_gzip_policy_holds_over_the_table() {
    suite::table(&Gzip).unwrap();
}

#[test]
fn compression_gzip_policy_varies_every_compressible_response_and_gzips_only_when_asked() {
    let body = suite::json_list(100);
    let asked = Gzip.encode(&["gzip"], json(body.len()), &body);
    assert!(asked.vary && asked.gzip.as_ref().is_some_and(|g| g.len() * 4 < body.len()), "{asked:?}");
    let not_asked = Gzip.encode(&[], json(body.len()), &body);
    assert_eq!(not_asked, Encoding { gzip: None, vary: true }, "the identity variant varies too");
    let small = suite::json_list(2);
    assert_eq!(Gzip.encode(&["gzip"], json(small.len()), &small), Encoding::default());
    let noise = suite::noise(8_192);
    let incompressible =
        Response { content_type: Some("application/octet-stream"), encoded: false, len: noise.len() };
    assert_eq!(Gzip.encode(&["gzip"], incompressible, &noise), Encoding { gzip: None, vary: true });
}

#[test]
fn compression_mutant_missing_vary_caught_by_the_vary_check() {
    let violation = suite::table(&MissingVary).unwrap_err();
    assert_eq!(violation.rule, "missing-vary", "{violation}");
    // It gzips exactly as the correct policy does: only the header is missing.
    let body = suite::json_list(100);
    let encoded = MissingVary.encode(&["gzip"], json(body.len()), &body);
    assert_eq!(encoded.gzip, Gzip.encode(&["gzip"], json(body.len()), &body).gzip);
    assert!(!encoded.vary);
}

/// Gzip whenever the body is compressible, asked or not.
struct GzipRegardless;

impl Compress for GzipRegardless {
    fn encode(&self, _: &[&str], response: Response<'_>, body: &[u8]) -> Encoding {
        Gzip.encode(&["gzip"], response, body)
    }
}

/// Never gzip, always vary.
struct NeverGzip;

impl Compress for NeverGzip {
    fn encode(&self, _: &[&str], response: Response<'_>, _: &[u8]) -> Encoding {
        Encoding { gzip: None, vary: compressible(&response) }
    }
}

/// Gzip every body asked for, small or incompressible.
struct GzipEverything;

impl Compress for GzipEverything {
    fn encode(&self, accept: &[&str], _: Response<'_>, body: &[u8]) -> Encoding {
        Encoding { gzip: accepts_gzip(accept.iter().copied()).then(|| gzip(body)), vary: true }
    }
}

/// Gzip with the stream's trailer cut off, as a body truncated in flight.
struct Truncated;

impl Compress for Truncated {
    fn encode(&self, accept: &[&str], response: Response<'_>, body: &[u8]) -> Encoding {
        let mut encoded = Gzip.encode(accept, response, body);
        if let Some(bytes) = encoded.gzip.as_mut() {
            bytes.truncate(bytes.len() - 8);
        }
        encoded
    }
}

#[test]
fn compression_each_rule_rejects_the_mutant_that_breaks_it() {
    for (rule, verdict) in [
        ("unrequested-gzip", suite::table(&GzipRegardless)),
        ("not-compressed", suite::table(&NeverGzip)),
        ("needless-gzip", suite::table(&GzipEverything)),
        ("undecodable", suite::table(&Truncated)),
    ] {
        let violation = verdict.expect_err(rule);
        assert_eq!(violation.rule, rule, "{violation}");
    }
}

#[test]
fn compression_decoded_body_must_equal_the_original() {
    let original = suite::json_list(50);
    let other = gzip(&suite::json_list(49));
    let exchange = Exchange {
        original: &original,
        content_type: Some("application/json"),
        asked_gzip: true,
        content_encoding: Some("gzip"),
        vary: &["Accept-Encoding"],
        body: &other,
    };
    assert_eq!(invariant::exchange(&exchange).unwrap_err().rule, "decoded-differs");
    let right = gzip(&original);
    invariant::exchange(&Exchange { body: &right, ..exchange }).unwrap();
    // `Vary` may name the header among others, in any case.
    invariant::exchange(&Exchange { body: &right, vary: &["origin, ACCEPT-ENCODING"], ..exchange }).unwrap();
}
