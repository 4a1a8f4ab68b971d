//! The report crate's integration tests: `report.json` against its committed schema, and
//! `report.html` loaded in a headless browser.

mod browser;
mod sample;
mod schema;
