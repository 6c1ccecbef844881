//! The live view end to end: the real engine binary with `--web` and `--metrics` against a test
//! server on loopback. The dashboard's feed and `/metrics` are read over HTTP while the run goes and
//! compared with the run's logs; a real Prometheus scrapes a run; headless Chromium (driven by
//! Selenium) loads the dashboard, raises the users and stops a run, and the analyzer's report shows
//! the change; steering over HTTP raises and lowers users, and bad control requests are refused;
//! hostile clients do what they can.

#[path = "../util.rs"]
mod util;

mod browser;
mod dashboard;
mod harness;
mod prometheus;
mod steering;
