//! The report crate's integration tests: `report.json` against its committed schema,
//! `report.html`'s sections read from the page, and `report.html` loaded in a headless browser.

mod browser;
mod page;
mod sample;
mod schema;
