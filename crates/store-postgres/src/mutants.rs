//! The DB pool (#9) as the field configures it before the fix.

use crate::pool::{PgPool, PoolError, PoolPolicy};

/// SQLAlchemy's `max_overflow=-1`: no cap on overflow connections, so every caller beyond
/// `pool_size` that finds no idle connection opens one more server connection, and a burst of
/// requests becomes a burst of connections until the server refuses them
/// (`too many clients already`) for every process sharing it.
#[derive(Debug, Clone, Copy, Default)]
pub struct UnboundedOverflow;

impl UnboundedOverflow {
    /// Overflow far beyond any load (the server's own limit comes first): what deadpool,
    /// which allocates a slot per connection up front, is given for "no cap".
    const MAX_OVERFLOW: usize = 10_000;

    /// A pool with `policy`'s settings and no effective cap on overflow connections.
    pub fn pool(&self, url: &str, application_name: &str, policy: PoolPolicy) -> Result<PgPool, PoolError> {
        PgPool::new(url, application_name, PoolPolicy { max_overflow: Self::MAX_OVERFLOW, ..policy })
    }
}
