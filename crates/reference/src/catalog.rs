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

pub const COMPONENTS: &[Component] = &[Component {
    number: 1,
    name: super::fixed_window::COMPONENT,
    invariant: "of M calls in one window exactly min(M, N) allowed; keys isolated; the key always carries a TTL",
    mutants: &[
        "fixed_window::mutants::GetThenSet",
        "fixed_window::mutants::IncrWithoutTtl",
        "fixed_window::mutants::ExpireEveryHit",
    ],
}];
