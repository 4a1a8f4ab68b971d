//! The stack over HTTP, in process on port 0: its OpenAPI contract and its error cases.
//! One test binary for both, to keep the build short.

mod contract;
mod errors;
mod support;
