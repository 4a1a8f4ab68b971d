//! Response compression as the field configured it.

use super::{Compress, Encoding, Gzip, Response};

/// Gzip where the correct policy gzips, without `Vary: Accept-Encoding` (a hand-rolled gzip
/// middleware, or a proxy that strips the header): a shared cache keyed on the URL alone stores
/// whichever variant it saw first and serves gzip bytes to clients that never asked for them.
#[derive(Debug, Clone, Copy, Default)]
pub struct MissingVary;

impl Compress for MissingVary {
    fn encode(&self, accept_encoding: &[&str], response: Response<'_>, body: &[u8]) -> Encoding {
        Encoding { vary: false, ..Gzip.encode(accept_encoding, response, body) }
    }
}
