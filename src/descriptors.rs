//! The process's descriptor limit. Every connection a load holds, and every connection a stack
//! serves, is a descriptor: a soft limit of 1,024 (a common default) stops 10,000 WebSocket
//! sessions long before the machine would. The soft limit is raised to the hard one when the
//! process starts, as servers do; what is still too low is said before a load starts.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Descriptors kept aside from what a load holds: the process's own files, listeners, the
/// connections to the stack's metrics and the report.
const RESERVE: u64 = 64;

/// The soft limit raised to the hard one (to `/proc/sys/fs/nr_open` when the hard one is
/// unlimited); left as it is when the kernel refuses.
pub(crate) fn raise() {
    let limit = getrlimit(Resource::Nofile);
    let ceiling = limit
        .maximum
        .or_else(|| std::fs::read_to_string("/proc/sys/fs/nr_open").ok().and_then(|n| n.trim().parse().ok()));
    if let (Some(ceiling), current) = (ceiling, limit.current)
        && current.is_some_and(|soft| soft < ceiling)
    {
        let _ = setrlimit(Resource::Nofile, Rlimit { current: Some(ceiling), maximum: limit.maximum });
    }
}

/// What to say when `connections` held at once, with the reserve, exceed the descriptor limit:
/// the figures and how to raise it. None when they fit.
pub(crate) fn short_of(connections: u64, what: &str) -> Option<String> {
    let limit = getrlimit(Resource::Nofile);
    let soft = limit.current?;
    (connections + RESERVE > soft).then(|| {
        let hard = limit.maximum.map_or("unlimited".to_owned(), |h| h.to_string());
        format!(
            "{what} may hold {connections} connections at once, and this process may open {soft} descriptors (hard \
             limit {hard}, {RESERVE} kept for its own files): connections past that fail to open. Raise the hard \
             limit (`ulimit -Hn`, systemd's LimitNOFILE, a container's --ulimit nofile) or hold fewer"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_one_and_a_load_past_it_is_named() {
        raise();
        let limit = getrlimit(Resource::Nofile);
        if let (Some(soft), Some(hard)) = (limit.current, limit.maximum) {
            assert_eq!(soft, hard, "the soft limit is the hard one after raise()");
        }
        let soft = limit.current.expect("a finite soft limit");
        assert_eq!(short_of(soft - RESERVE, "the load"), None, "what fits is not named");
        let said = short_of(soft, "the load").expect("past the limit is named");
        assert!(said.contains(&format!("may hold {soft} connections")), "{said}");
        assert!(said.contains("ulimit -Hn"), "{said}");
    }
}
