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
        number: 13,
        name: super::segments::COMPONENT,
        invariant: "output equals the concatenation; bytes copied never exceed the total, one allocation",
        mutants: &["segments::mutants::QuadraticAppend"],
    },
    Component {
        number: 14,
        name: super::l1_cache::COMPONENT,
        invariant: "after invalidate(pattern) returns no instance serves a matching entry; L1 bounded; stats exact",
        mutants: &["l1_cache::mutants::Unbounded", "l1_cache::mutants::LocalOnlyInvalidate"],
    },
    Component {
        number: 17,
        name: super::ws_session::COMPONENT,
        invariant: "never more than 5 live connections per user; slots freed on disconnect; batches in order, none lost, ≤ 10, ≤ 100 ms",
        mutants: &[
            "ws_session::mutants::RacyCounter",
            "ws_session::mutants::GetThenSetMessageLimits",
            "ws_session::mutants::RestartingTimer",
        ],
    },
];
