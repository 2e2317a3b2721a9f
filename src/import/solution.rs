//! The write-up of a `challenge.yml` (`solution:` a path, or `{path, state}`), read as ctfcli
//! installs it: `--8<-- "file"` snippet lines are replaced by the file's text, then every
//! markdown image (`![alt](path)`) whose path is local (not a URL, not absolute) becomes a
//! solution file, its link rewritten to `/files/<location>` when the import stores it
//! (`apply`). Paths are relative to the write-up's directory.
//!
//! Decisions: a missing snippet or image is a problem of the file (ctfcli only warns, or
//! crashes); images are found after snippets are inlined, so images inside snippets are
//! uploaded too; two different images may not share a file name (the name is a solution
//! file's identity from one import to the next).

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::yml::text_of;

/// A write-up to store (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SolutionPlan {
    /// The text with snippets inlined and image links not yet rewritten.
    pub content: String,
    /// `hidden` (default), `visible` or `solved`.
    pub state: String,
    /// Local images: where each link's path is in `content`, and the file it names.
    pub images: Vec<ImageRef>,
}

/// A local image link of a write-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// Byte range of the link's path in [`SolutionPlan::content`].
    pub range: std::ops::Range<usize>,
    /// The image file.
    pub file: PathBuf,
}

impl SolutionPlan {
    /// The content with each image link pointing at `location_of(file)`.
    pub fn rewritten(&self, location_of: impl Fn(&Path) -> Option<String>) -> String {
        let mut text = String::with_capacity(self.content.len());
        let mut copied = 0;
        for image in &self.images {
            let Some(location) = location_of(&image.file) else { continue };
            text.push_str(&self.content[copied..image.range.start]);
            text.push_str(&format!("/files/{location}"));
            copied = image.range.end;
        }
        text.push_str(&self.content[copied..]);
        text
    }
}

pub(super) fn solution_of(
    root: &Map<String, Value>,
    directory: &Path,
    problems: &mut Vec<String>,
) -> Option<SolutionPlan> {
    let (relative, state) = match root.get("solution") {
        None | Some(Value::Null) => return None,
        Some(Value::String(path)) => (path.clone(), "hidden".to_owned()),
        Some(Value::Object(object)) => {
            let Some(path) = object.get("path").and_then(text_of) else {
                problems.push("solution: needs a path".to_owned());
                return None;
            };
            let state = object.get("state").and_then(text_of).unwrap_or_else(|| "hidden".into());
            if !matches!(state.as_str(), "hidden" | "visible" | "solved") {
                problems.push("solution: state must be hidden, visible or solved".to_owned());
                return None;
            }
            (path, state)
        }
        Some(_) => {
            problems.push("solution: must be a path or {path, state}".to_owned());
            return None;
        }
    };
    let path = directory.join(&relative);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) => {
            problems.push(format!("solution: cannot read {relative}: {error}"));
            return None;
        }
    };
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let content = inline_snippets(&text, &base, problems);
    let mut images = Vec::new();
    for (range, target) in markdown_image_targets(&content) {
        if !is_local_target(&target) {
            continue;
        }
        let file = base.join(&target);
        if !file.is_file() {
            problems.push(format!("solution: image {target} does not exist"));
            continue;
        }
        let name = file.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
        let clash = images.iter().any(|other: &ImageRef| {
            other.file != file && other.file.file_name().is_some_and(|other_name| other_name.to_string_lossy() == name)
        });
        if clash {
            problems.push(format!("solution: two different images are named {name}"));
            continue;
        }
        images.push(ImageRef { range, file });
    }
    Some(SolutionPlan { content, state, images })
}

/// Replaces each `--8<-- "file"` (or `'file'`) directive by the file's text.
fn inline_snippets(text: &str, base: &Path, problems: &mut Vec<String>) -> String {
    const MARKER: &str = "--8<--";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(MARKER) {
        out.push_str(&rest[..start]);
        let after = &rest[start + MARKER.len()..];
        let trimmed = after.trim_start_matches([' ', '\t']);
        let skipped = after.len() - trimmed.len();
        let quote = trimmed.chars().next().filter(|quote| (*quote == '"' || *quote == '\'') && skipped > 0);
        let closing = quote.and_then(|quote| trimmed[1..].find(quote).map(|end| (quote, end)));
        match closing {
            Some((_, end)) if !trimmed[1..1 + end].contains('\n') && end > 0 => {
                let name = &trimmed[1..1 + end];
                match std::fs::read_to_string(base.join(name)) {
                    Ok(snippet) => out.push_str(&snippet),
                    Err(error) => problems.push(format!("solution: snippet {name}: {error}")),
                }
                rest = &trimmed[end + 2..];
            }
            _ => {
                out.push_str(MARKER);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The link targets of the markdown images `![alt](target "title")` in `text`, with their byte
/// ranges (`<target>` loses its angle brackets).
fn markdown_image_targets(text: &str) -> Vec<(std::ops::Range<usize>, String)> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(offset) = text[from..].find("![") {
        let alt_start = from + offset + 2;
        from = alt_start;
        let Some(alt_end) = text[alt_start..].find(']').map(|end| alt_start + end) else { break };
        if !text[alt_end + 1..].starts_with('(') {
            continue;
        }
        let inner_start = alt_end + 2;
        let Some(inner_end) = text[inner_start..].find(')').map(|end| inner_start + end) else { break };
        let inner = &text[inner_start..inner_end];
        let leading = inner.len() - inner.trim_start().len();
        let target_start = inner_start + leading;
        let body = &text[target_start..inner_end];
        let (range, target) = if let Some(stripped) = body.strip_prefix('<') {
            match stripped.find('>') {
                Some(end) => (target_start + 1..target_start + 1 + end, stripped[..end].to_owned()),
                None => continue,
            }
        } else {
            let end = body.find(char::is_whitespace).unwrap_or(body.len());
            (target_start..target_start + end, body[..end].to_owned())
        };
        if !target.is_empty() {
            found.push((range, target));
        }
        from = inner_end + 1;
    }
    found
}

/// True for a relative file path (not a URL, an absolute path, an anchor or a data URI).
fn is_local_target(target: &str) -> bool {
    !(target.contains("://")
        || target.starts_with('/')
        || target.starts_with('#')
        || target.starts_with("data:")
        || target.starts_with("mailto:"))
}

#[cfg(test)]
mod tests {
    use super::super::yml::parse;

    #[test]
    fn solutions_inline_snippets_and_find_local_images() {
        let directory = tempfile::tempdir().unwrap();
        let solution = directory.path().join("solution");
        std::fs::create_dir(&solution).unwrap();
        std::fs::write(solution.join("a.png"), b"png").unwrap();
        std::fs::write(solution.join("steps.md"), "Then ![step](a.png \"title\").\n").unwrap();
        std::fs::write(
            solution.join("writeup.md"),
            "# W\n![a](a.png) ![remote](https://x/y.png) ![abs](/files/d/z.png)\n--8<-- \"steps.md\"\n",
        )
        .unwrap();
        let path = directory.path().join("challenge.yml");
        let text = "name: S\nvalue: 1\nsolution: {path: solution/writeup.md, state: visible}\n";
        let plan = parse(&path, text).unwrap().solution.unwrap();
        assert_eq!(plan.state, "visible");
        assert!(plan.content.contains("Then ![step](a.png"), "{}", plan.content);
        assert_eq!(plan.images.len(), 2);
        let rewritten = plan.rewritten(|_| Some("0123/a.png".into()));
        assert_eq!(
            rewritten,
            "# W\n![a](/files/0123/a.png) ![remote](https://x/y.png) ![abs](/files/d/z.png)\n\
             Then ![step](/files/0123/a.png \"title\").\n\n"
        );
        let missing = "name: S\nvalue: 1\nsolution: solution/steps.md\n";
        std::fs::remove_file(solution.join("a.png")).unwrap();
        let problems = parse(&path, missing).unwrap_err();
        assert_eq!(problems, vec!["solution: image a.png does not exist".to_owned()]);
    }
}
