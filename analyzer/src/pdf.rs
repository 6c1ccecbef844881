//! `--format pdf`: the HTML report printed by headless Chromium. The HTML's print stylesheet does
//! the layout, so the PDF matches what a browser's "Save as PDF" gives.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result};

/// Browser binaries tried, in order.
const BROWSERS: [&str; 4] = [
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
];

/// The first browser found on the PATH.
pub fn find_browser() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    BROWSERS.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// Prints `html` to the PDF file `pdf`.
pub fn print(html: &str, pdf: &Path) -> Result<()> {
    let browser = find_browser().ok_or_else(|| Error::ChromiumMissing {
        looked_for: BROWSERS.join(", "),
    })?;
    let scratch =
        std::env::temp_dir().join(format!("stampede-analyzer-pdf-{}", std::process::id()));
    let profile = scratch.join("profile");
    std::fs::create_dir_all(&profile).map_err(|e| Error::io(&profile, e))?;
    let page = scratch.join("report.html");
    std::fs::write(&page, html).map_err(|e| Error::io(&page, e))?;
    let pdf_abs = if pdf.is_absolute() {
        pdf.to_owned()
    } else {
        std::env::current_dir()
            .map_err(|e| Error::io(".", e))?
            .join(pdf)
    };
    let _ = std::fs::remove_file(&pdf_abs);
    // The flags keep Chromium off the network and away from the user's profile: the report is a local
    // file with no external resources, and nothing else is needed.
    let output = Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-pdf-header-footer",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--print-to-pdf={}", pdf_abs.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .map_err(|e| Error::io(&browser, e));
    let _ = std::fs::remove_dir_all(&scratch);
    let output = output?;
    let written = std::fs::metadata(&pdf_abs)
        .map(|m| m.len() > 0)
        .unwrap_or(false);
    if !written {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
        return Err(Error::PdfFailed {
            path: pdf_abs,
            message: format!(
                "{} exited with {}: {}",
                browser.display(),
                output.status,
                tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
            ),
        });
    }
    Ok(())
}
