//! The components this crate implements, for `stampede components` and the reports.

/// One component: its number in DESIGN.md, its invariant, and the mutants kept beside it.
#[derive(Debug, Clone, Copy)]
pub struct Component {
    pub number: u8,
    pub name: &'static str,
    pub invariant: &'static str,
    /// Type paths of the mutants: `<module>::mutants::<Type>`, the module being a folder of
    /// this crate or, for #8 and #9, the `upstream` and `store_postgres` crates.
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
        number: 3,
        name: super::daily_quota::COMPONENT,
        invariant: "used == sum of accepted units; used <= limit; the day resets exactly at local midnight",
        mutants: &[
            "daily_quota::mutants::IncrOrSet",
            "daily_quota::mutants::UtcMidnight",
            "daily_quota::mutants::TwentyFourHourDay",
        ],
    },
    Component {
        number: 4,
        name: super::usage_tracker::COMPONENT,
        invariant: "check-and-record is one atomic step: counters equal the requests granted, never above the day or hour limit; every key carries a TTL",
        mutants: &["usage_tracker::mutants::CheckThenRecord"],
    },
    Component {
        number: 5,
        name: super::video::COMPONENT,
        invariant: "of C concurrent requests exactly one creates and one processes; a failed video is re-claimed \
                    by exactly one retry; completed is never reprocessed; illegal transitions refused",
        mutants: &[
            "video::mutants::CheckThenInsert",
            "video::mutants::SelectForUpdate",
            "video::mutants::UnconditionalUpdate",
        ],
    },
    Component {
        number: 6,
        name: super::status_tracker::COMPONENT,
        invariant: "concurrent merges of disjoint fields all survive; the key always carries a TTL <= 24 h; \
                    an entry disappears 24 h after its last write; a client's merges keep it within 64 fields, \
                    16 KiB a field, 64 KiB in all",
        mutants: &[
            "status_tracker::mutants::ReadModifyWrite",
            "status_tracker::mutants::MergeWithoutTtl",
            "status_tracker::mutants::UnboundedStatus",
        ],
    },
    Component {
        number: 7,
        name: super::circuit_breaker::COMPONENT,
        invariant: "open fails fast without calling upstream; half-open admits exactly one trial; success closes, failure re-opens",
        mutants: &["circuit_breaker::mutants::HalfOpenAdmitsAll"],
    },
    Component {
        number: 8,
        name: "upstream-client",
        invariant: "never more than 100 upstream connections open (busy + idle); connections opened far fewer than requests; every request within its 10 s deadline",
        mutants: &["upstream::mutants::ClientPerRequest", "upstream::mutants::Uncapped"],
    },
    Component {
        number: 9,
        name: "db-pool",
        invariant: "never more server connections than pool_size + max_overflow (30) in pg_stat_activity; a typed error after the 30 s wait; \
                    dead connections replaced before use, connections older than 1 h recycled",
        mutants: &["store_postgres::mutants::UnboundedOverflow"],
    },
    Component {
        number: 10,
        name: super::task_queue::COMPONENT,
        invariant: "no task lost when a worker dies mid-task; effects applied exactly once; the queue drains",
        mutants: &["task_queue::mutants::AckOnReceive", "task_queue::mutants::NotIdempotent"],
    },
    Component {
        number: 11,
        name: super::token_refresh::COMPONENT,
        invariant: "across K scheduler instances exactly one refresh per token per period; no upstream call with an expired token",
        mutants: &["token_refresh::mutants::NoLease"],
    },
    Component {
        number: 12,
        name: super::upload_sink::COMPONENT,
        invariant: "stored bytes and SHA-256 equal the bytes sent, for any chunking; memory held is one chunk per upload, whatever the body's size",
        mutants: &["upload_sink::mutants::WholeBodyBuffered"],
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
        mutants: &[
            "l1_cache::mutants::Unbounded",
            "l1_cache::mutants::LocalOnlyInvalidate",
            "l1_cache::mutants::MultiLayerLocalOnly",
            "l1_cache::mutants::UnfencedPromotion",
            "l1_cache::mutants::UnguardedL2Promotion",
        ],
    },
    Component {
        number: 15,
        name: super::pagination::COMPONENT,
        invariant: "a cursor walk serves every row that existed when it started exactly once, newest first, \
                    whatever is inserted meanwhile; pages of 20 by default, at most 100",
        mutants: &["pagination::mutants::CreatedOnlyCursor", "pagination::mutants::Offset"],
    },
    Component {
        number: 16,
        name: super::compression::COMPONENT,
        invariant: "gzip above 1 KiB when asked for and saving >= 10 %; the decoded body equals the original; \
                    Vary: Accept-Encoding on every compressible response; no gzip without Accept-Encoding",
        mutants: &["compression::mutants::MissingVary"],
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
    Component {
        number: 18,
        name: super::query_budget::COMPONENT,
        invariant: "fewer than 10 queries per request; a list endpoint's queries do not grow with its page size; \
                    every query of a request counted, concurrent ones included",
        mutants: &["query_budget::mutants::PerRowQuery", "query_budget::mutants::LostIncrement"],
    },
];
