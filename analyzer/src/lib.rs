//! # The Stampede analyzer
//!
//! Turns runs (`runs/<id>/manifest.json` + `core-N.log`, read through the `formats` crate) into
//! reports: HTML with charts, Markdown and JSON, for one run or a comparison of several.
//!
//! The pipeline, one module per step:
//!
//! ```text
//! load      run dir → compact u32 columns (streamed block by block, cores in parallel) → polars frames
//! stats     per-name and total summaries: counts, rates and moments (polars, lazy); exact
//!           nearest-rank percentiles in two passes (select); HdrHistograms past the exact limit (approx)
//! timeseries, failures   per-second series and the failure breakdown (polars, lazy)
//! analysis  all of the above for one run: RunAnalysis
//! view      RunAnalysis(es) → ReportView, a flat tree of strings and numbers; charts → SVG (plotters)
//! render    ReportView → HTML / Markdown through minijinja templates; RunAnalysis → JSON
//! ```
//!
//! The analyzer reads files and writes files; it never touches the network.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod analysis;
pub mod approx;
pub mod charts;
pub mod cli;
pub mod error;
pub mod export;
pub mod failures;
pub mod format;
pub mod load;
pub mod pdf;
pub mod render;
pub mod report;
pub mod select;
pub mod stats;
pub mod synth;
pub mod timeseries;
pub mod timing;
pub mod view;

pub use error::{Error, Result};
