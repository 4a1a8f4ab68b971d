//! The checks crate's own tests: profiles and their errors, the checkers' judges on
//! synthetic histories (the correct behaviour and each rule broken), and the report schema.

mod judges;
mod profiles;
mod schema;
