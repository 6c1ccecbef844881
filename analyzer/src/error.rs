//! The library's typed errors. Each variant names the file or option at fault and, where there is one,
//! what to do about it. The binary adds context with `anyhow` and prints the chain.

use std::path::PathBuf;

/// Why the analyzer could not do what it was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No run directory given on the command line could be read at all.
    #[error("nothing readable in {}: {}", .paths.join(", "), .reasons.join("; "))]
    NothingReadable {
        /// The directories given.
        paths: Vec<String>,
        /// Why each one failed.
        reasons: Vec<String>,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The dataframe engine failed; this is a bug in the analyzer, please report it with the command.
    #[error("polars: {0}")]
    Polars(#[from] polars::error::PolarsError),
    /// A report template failed to render; this is a bug in the analyzer.
    #[error("template {name}: {source:#}")]
    Template {
        /// The template's name.
        name: &'static str,
        /// What minijinja said.
        #[source]
        source: minijinja::Error,
    },
    /// A chart could not be drawn; this is a bug in the analyzer.
    #[error("chart {name}: {message}")]
    Chart {
        /// The chart's name.
        name: &'static str,
        /// What plotters said.
        message: String,
    },
    /// `--format pdf` needs a Chromium binary and none was found.
    #[error(
        "--format pdf prints the HTML report with headless Chromium, and none was found on the PATH \
         (looked for {looked_for}); install the Debian package `chromium` (apt-get install chromium) \
         or use --format html and your browser's \"Save as PDF\""
    )]
    ChromiumMissing {
        /// The program names tried.
        looked_for: String,
    },
    /// Chromium ran but produced no PDF.
    #[error("headless Chromium did not print {}: {message}", .path.display())]
    PdfFailed {
        /// The PDF that should have been written.
        path: PathBuf,
        /// Chromium's exit status and the end of its error output.
        message: String,
    },
    /// An SLO file or a profile's `thresholds` field is malformed: where, what, and how to write it.
    #[error("{at}: {message}")]
    Slo {
        /// `file:line:column`.
        at: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A command-line value is not valid.
    #[error("{0}")]
    Usage(String),
    /// The run's load generator health is INVALID (`check` and `compare` refuse to judge it): its
    /// numbers describe another test than the profile's.
    #[error(
        "{}: the load generator's health is INVALID ({}), so its numbers describe another test than \
         the profile's; remove what made it INVALID (each reason says what to do; `analyzer report {}` \
         shows the evidence per second) and run it again{}",
        .dir.display(), .reasons.join("; "), .dir.display(), .escape
    )]
    InvalidRun {
        /// The run directory.
        dir: PathBuf,
        /// Why the health is INVALID, each with what to do.
        reasons: Vec<String>,
        /// How to judge it anyway, when the command can ("" when it cannot).
        escape: &'static str,
    },
    /// The shard directories given cannot be merged into one run (shards of different runs, the
    /// same shard twice, different profiles), or a sharded run lacks shards a command needs.
    #[error("{0}")]
    Shards(String),
}

impl Error {
    /// Whether the error is bad input (a bad option, an unreadable or unusable run, a malformed SLO
    /// file) rather than a failure of the analyzer: commands exit with status 2 for these.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            Error::NothingReadable { .. }
                | Error::Usage(_)
                | Error::Slo { .. }
                | Error::Shards(_)
                | Error::InvalidRun { .. }
        )
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// The analyzer's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
