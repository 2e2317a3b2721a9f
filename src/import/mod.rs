//! Offline event tools behind the CLI: `fctf challenge import <dir|challenge.yml>...` (ctfcli's
//! `challenge.yml` format, written straight to the store) and `fctf event export|import FILE`
//! (the whole event as one document).
//!
//! `import_challenges` reads every argument (a `challenge.yml`, a directory holding one, or a
//! tree of them), reports progress on the given writer, and never stops at a bad file: each
//! file gets its own outcome. The import is idempotent (see `apply`).

pub mod apply;
pub mod event;
pub mod solution;
pub mod yml;

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

pub use apply::Action;
pub use event::{EventDocument, EventError, EventSummary, export_event, import_event};

use crate::api::admin::storage::FileStorage;
use crate::store::Store;

/// The outcome for one `challenge.yml` (or one argument that named none).
#[derive(Debug, Clone)]
pub struct FileReport {
    /// The file (or the argument).
    pub path: PathBuf,
    /// The challenge name, once read.
    pub name: Option<String>,
    /// What happened, or every problem found.
    pub outcome: Result<Action, Vec<String>>,
}

impl FileReport {
    fn failed(path: PathBuf, name: Option<String>, problems: Vec<String>) -> Self {
        Self { path, name, outcome: Err(problems) }
    }
}

/// Imports every challenge the arguments name; writes one progress line per step to
/// `progress` (a failing writer is ignored).
pub async fn import_challenges(
    store: &Store,
    data_dir: &Path,
    arguments: &[PathBuf],
    progress: &mut dyn Write,
) -> Vec<FileReport> {
    let storage = FileStorage::new(data_dir);
    let mut reports = Vec::new();
    let mut paths = Vec::new();
    for argument in arguments {
        match yml::discover(argument) {
            Ok(found) => paths.extend(found),
            Err(problem) => reports.push(FileReport::failed(argument.clone(), None, vec![problem])),
        }
    }
    let total = paths.len();
    let mut names = HashSet::new();
    let mut staged = Vec::new();
    for (index, path) in paths.into_iter().enumerate() {
        let _ = writeln!(progress, "[{}/{total}] {} {}", index + 1, bar(index + 1, total), path.display());
        let plan = match std::fs::read_to_string(&path) {
            Ok(text) => yml::parse(&path, &text),
            Err(error) => Err(vec![format!("cannot read the file: {error}")]),
        };
        let plan = match plan {
            Ok(plan) => plan,
            Err(problems) => {
                reports.push(FileReport::failed(path, None, problems));
                continue;
            }
        };
        if !names.insert(plan.name.clone()) {
            let problem = format!("another file of this import is also named {:?}", plan.name);
            reports.push(FileReport::failed(path, Some(plan.name), vec![problem]));
            continue;
        }
        match apply::stage(store, &storage, &plan).await {
            Ok(result) => staged.push((plan, result)),
            Err(problem) => reports.push(FileReport::failed(path, Some(plan.name), vec![problem])),
        }
    }
    for (plan, result) in staged {
        let outcome = apply::finish(store, &plan, &result).await.map_err(|problem| vec![problem]);
        reports.push(FileReport { path: plan.path.clone(), name: Some(plan.name.clone()), outcome });
    }
    reports.sort_by(|a, b| a.path.cmp(&b.path));
    reports
}

/// Writes one line per report and a summary; returns how many failed.
pub fn write_report(reports: &[FileReport], out: &mut dyn Write) -> usize {
    let mut failed = 0;
    for report in reports {
        let name = report.name.as_deref().map(|name| format!(" ({name})")).unwrap_or_default();
        match &report.outcome {
            Ok(action) => {
                let word = match action {
                    Action::Created => "created",
                    Action::Updated => "updated",
                    Action::Unchanged => "unchanged",
                };
                let _ = writeln!(out, "{word:>9}  {}{name}", report.path.display());
            }
            Err(problems) => {
                failed += 1;
                let _ = writeln!(out, "   FAILED  {}{name}", report.path.display());
                for problem in problems {
                    let _ = writeln!(out, "           - {problem}");
                }
            }
        }
    }
    let _ = writeln!(out, "{} challenge file(s): {} imported, {failed} failed", reports.len(), reports.len() - failed);
    failed
}

/// A 20-character progress bar.
fn bar(done: usize, total: usize) -> String {
    let filled = (done * 20).checked_div(total).unwrap_or(20);
    format!("[{}{}]", "#".repeat(filled), "-".repeat(20 - filled.min(20)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_fills_up() {
        assert_eq!(bar(0, 4), "[--------------------]");
        assert_eq!(bar(2, 4), "[##########----------]");
        assert_eq!(bar(4, 4), "[####################]");
        assert_eq!(bar(0, 0), "[####################]");
    }
}
