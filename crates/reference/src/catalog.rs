//! The components this crate implements, for `stampede components` and the reports.

/// One component: its number in DESIGN.md, its invariant, and the mutants kept beside it.
#[derive(Debug, Clone, Copy)]
pub struct Component {
    pub number: u8,
    pub name: &'static str,
    pub invariant: &'static str,
    /// Type paths of the mutants, relative to the crate root.
    pub mutants: &'static [&'static str],
}

pub const COMPONENTS: &[Component] = &[
    Component {
        number: 1,
        name: super::fixed_window::COMPONENT,
        invariant: "of M calls in one window exactly min(M, N) allowed; keys isolated; the key always carries a TTL",
        mutants: &[
            "fixed_window::mutants::GetThenSet",
            "fixed_window::mutants::IncrWithoutTtl",
            "fixed_window::mutants::ExpireEveryHit",
        ],
    },
    Component {
        number: 2,
        name: super::sliding_window::COMPONENT,
        invariant: "never more than N admissions in any interval of length W; refused only while N admissions are live",
        mutants: &["sliding_window::mutants::FixedWindowAsSliding"],
    },
    Component {
        number: 2,
        name: super::gcra::COMPONENT,
        invariant: "any interval of length L admits at most burst + floor(L / T); decisions equal a model GCRA's; idle keys vanish",
        mutants: &["gcra::mutants::GetThenSet"],
    },
    Component {
        number: 4,
        name: super::usage_tracker::COMPONENT,
        invariant: "check-and-record is one atomic step: counters equal the requests granted, never above the day or hour limit; every key carries a TTL",
        mutants: &["usage_tracker::mutants::CheckThenRecord"],
    },
];
