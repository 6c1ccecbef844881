//! # The Stampede analyzer
//!
//! Turns runs (`runs/<id>/manifest.json` + `core-N.log`, read through the `formats` crate) into
//! reports: HTML with charts, Markdown and JSON, for one run or a comparison of several.
//!
//! The pipeline, one module per step:
//!
//! ```text
//! load        run dir → compact u32 columns (t_s, name, corrected and uncorrected latency), streamed
//!             block by block, a pool of a thread per CPU over the logs; failed samples also go to a small failures
//!             frame; past the exact limit, HdrHistogram aggregates instead (approx)
//! select      exact nearest-rank percentiles, counts and moments of many groups in two passes
//! stats       per-name and total summaries (select, or approx; failures per name via polars)
//! timeseries  per-second series (select, or approx) and generator health from interval records (polars)
//! failures    the failure breakdown by kind, status, message and second (polars, lazy)
//! phases      timing phases per name (connect, TLS, waiting, receiving): select over a ttfb column
//!             and per-connection lists, or per-name histograms past the exact limit
//! health      the generator's health over the window and the verdict: OK, SUSPECT, INVALID, UNKNOWN
//! shards      a run made by several engines: its shard directories grouped and checked, loaded as
//!             one run on the common clock, each shard's health judged and the verdicts combined
//! analysis    all of the above for one run: RunAnalysis
//! view        RunAnalysis(es) → ReportView, a flat tree of strings and numbers; charts → SVG (plotters)
//! render      ReportView → HTML / Markdown through minijinja templates; RunAnalysis → JSON
//! report      the `report` command: load, analyze and render each run, write the files; pdf prints
//!             the HTML with headless Chromium; export streams samples to CSV, and hdr_export writes
//!             HdrHistogram interval logs; synth writes test runs
//! ```
//!
//! Invariants: the analyzer reads files and writes files and never touches the network; it reads
//! runs only through `formats`; text from a target (names, messages) is data, never markup; every
//! percentile is exact unless the report says otherwise.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod analysis;
pub mod approx;
pub mod charts;
pub mod check;
pub mod cli;
pub mod compare;
pub mod error;
pub mod export;
pub mod failures;
pub mod format;
pub mod hdr_export;
pub mod health;
pub mod load;
pub mod load_model;
pub mod locust;
pub mod pdf;
pub mod phases;
pub mod render;
pub mod report;
pub(crate) mod rng;
pub mod select;
pub mod shards;
pub mod significance;
pub mod slo;
pub mod stats;
pub mod synth;
pub mod tasks;
pub mod timeseries;
pub mod timing;
pub mod view;

pub use error::{Error, Result};
