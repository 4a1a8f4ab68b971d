//! Segment concatenation: the linear join beside the field's quadratic append, with std's
//! `<[Vec<u8>]>::concat` as the named reference, at the seed's 10, 100 and 1,000 segments.
//! Prints wall time per join and the ratios; the exact cost (bytes copied) is checked by the
//! tests, not here.

#![allow(clippy::disallowed_methods, reason = "a benchmark measures wall time")]

use std::hint::black_box;
use std::time::{Duration, Instant};

use reference::segments::mutants::QuadraticAppend;
use reference::segments::{Concatenate, Linear, suite};

/// Bytes per segment: about 23 ms of 44.1 kHz 16-bit stereo audio.
const SEGMENT: usize = 4_096;

/// Mean time of `join` over enough runs to fill about 200 ms (at least 3).
fn time(join: impl Fn() -> usize) -> Duration {
    let mut runs = 0u32;
    let started = Instant::now();
    while runs < 3 || started.elapsed() < Duration::from_millis(200) {
        black_box(join());
        runs += 1;
    }
    started.elapsed() / runs
}

fn main() {
    println!(
        "{:>8} {:>12} {:>12} {:>12} {:>16} {:>14} {:>16}",
        "segments", "std concat", "linear", "quadratic", "quadratic/linear", "linear/std", "copied q/l"
    );
    for count in [10, 100, 1_000] {
        let segments = suite::segments(count, SEGMENT);
        let reference = time(|| black_box(&segments).concat().len());
        let linear = time(|| Linear.concat(black_box(&segments)).bytes.len());
        let quadratic = time(|| QuadraticAppend.concat(black_box(&segments)).bytes.len());
        let copies = QuadraticAppend.concat(&segments).cost.copied as f64
            / Linear.concat(&segments).cost.copied as f64;
        println!(
            "{count:>8} {:>12?} {:>12?} {:>12?} {:>15.1}x {:>13.2}x {:>15.1}x",
            reference,
            linear,
            quadratic,
            quadratic.as_secs_f64() / linear.as_secs_f64(),
            linear.as_secs_f64() / reference.as_secs_f64(),
            copies
        );
    }
}
