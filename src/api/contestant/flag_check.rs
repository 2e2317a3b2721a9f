//! Flag matching (contract §3.6 plus fctf's per-team dynamic flags).
//!
//! Flags of a challenge are tried in creation order; the first match wins:
//! - `static`: exact text, compared without an early exit; `data = "case_insensitive"` compares
//!   the Unicode lower-case forms.
//! - `regex`: the whole submission must match (`^(?:pattern)$`), case-insensitive with
//!   `data = "case_insensitive"`. The `regex` crate matches in linear time, so no timeout is
//!   needed; patterns are bounded (2 KiB of text, 1 MiB compiled) and submissions by the
//!   caller (1000 characters). Compiled patterns are cached in process. An invalid pattern ends
//!   the check with the contract's "Regex parse error occured".
//! - `dynamic` (fctf): `content` is the prefix; see `domain::flags` for the format. Another
//!   team's genuine flag is reported as [`Verdict::SharedDynamic`] so the caller can record a
//!   cheat event.
//! - any other type: an internal error (the contract's 500).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use regex::{Regex, RegexBuilder};

use crate::domain::flags::{DynamicFlagMatch, check_dynamic_flag, constant_time_eq};
use crate::domain::{ChallengeId, TeamId};
use crate::store::Flag;

/// Longest regex pattern accepted, in bytes.
pub const MAX_PATTERN_LEN: usize = 2048;
/// Compiled-size limit of a regex.
const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// Cached compiled patterns (the cache is cleared when it grows beyond this).
const REGEX_CACHE_CAPACITY: usize = 1024;

/// The outcome of matching a submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A flag matched.
    Correct,
    /// No flag matched.
    Incorrect,
    /// The submission is another team's dynamic flag.
    SharedDynamic {
        /// The team the flag belongs to.
        owner: TeamId,
    },
    /// A regex flag could not be compiled.
    RegexError,
    /// A flag has a type fctf does not know.
    UnknownType(String),
}

/// Compiled patterns by `(pattern, case-insensitive)`; `None` records an invalid pattern.
type CompiledPatterns = HashMap<(String, bool), Option<Arc<Regex>>>;

/// Compiled regex flags, shared by the requests of one process.
#[derive(Debug, Default)]
pub struct RegexCache {
    compiled: Mutex<CompiledPatterns>,
}

impl RegexCache {
    /// The compiled full-match form of `pattern`, or `None` when it is invalid or too large.
    pub fn get(&self, pattern: &str, case_insensitive: bool) -> Option<Arc<Regex>> {
        let key = (pattern.to_owned(), case_insensitive);
        {
            let compiled = self.compiled.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some(found) = compiled.get(&key) {
                return found.clone();
            }
        }
        let built = if pattern.len() > MAX_PATTERN_LEN {
            None
        } else {
            RegexBuilder::new(&format!("^(?:{pattern})$"))
                .case_insensitive(case_insensitive)
                .size_limit(REGEX_SIZE_LIMIT)
                .dfa_size_limit(REGEX_SIZE_LIMIT)
                .build()
                .ok()
                .map(Arc::new)
        };
        let mut compiled = self.compiled.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if compiled.len() >= REGEX_CACHE_CAPACITY {
            compiled.clear();
        }
        compiled.insert(key, built.clone());
        built
    }
}

fn static_matches(content: &str, submitted: &str, case_insensitive: bool) -> bool {
    if case_insensitive {
        constant_time_eq(content.to_lowercase().as_bytes(), submitted.to_lowercase().as_bytes())
    } else {
        constant_time_eq(content.as_bytes(), submitted.as_bytes())
    }
}

/// What the dynamic-flag check needs: the secret and the submitting team.
#[derive(Debug, Clone, Copy)]
pub struct DynamicContext<'a> {
    /// The secret flags derive from (`Secrets::internal`).
    pub secret: &'a [u8],
    /// The challenge.
    pub challenge: ChallengeId,
    /// The submitting team (`None`: dynamic flags cannot match).
    pub team: Option<TeamId>,
}

/// Matches `submitted` (already trimmed) against the challenge's flags.
pub fn judge(flags: &[Flag], submitted: &str, regexes: &RegexCache, dynamic: DynamicContext<'_>) -> Verdict {
    let mut shared: Option<TeamId> = None;
    for flag in flags {
        let case_insensitive =
            flag.flag.data.as_deref().is_some_and(|data| data.eq_ignore_ascii_case("case_insensitive"));
        match flag.flag.kind.to_ascii_lowercase().as_str() {
            "static" => {
                if static_matches(&flag.flag.content, submitted, case_insensitive) {
                    return Verdict::Correct;
                }
            }
            "regex" => match regexes.get(&flag.flag.content, case_insensitive) {
                Some(regex) => {
                    if regex.is_match(submitted) {
                        return Verdict::Correct;
                    }
                }
                None => return Verdict::RegexError,
            },
            "dynamic" => {
                let Some(team) = dynamic.team else { continue };
                match check_dynamic_flag(dynamic.secret, dynamic.challenge, team, &flag.flag.content, submitted) {
                    DynamicFlagMatch::Own => return Verdict::Correct,
                    DynamicFlagMatch::OtherTeam(owner) => shared = Some(owner),
                    DynamicFlagMatch::NoMatch => {}
                }
            }
            other => return Verdict::UnknownType(other.to_owned()),
        }
    }
    match shared {
        Some(owner) => Verdict::SharedDynamic { owner },
        None => Verdict::Incorrect,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewFlag;

    fn flag(kind: &str, content: &str, data: Option<&str>) -> Flag {
        Flag {
            id: 1,
            flag: NewFlag {
                challenge_id: ChallengeId(1),
                kind: kind.into(),
                content: content.into(),
                data: data.map(str::to_owned),
            },
        }
    }

    fn context(team: Option<i64>) -> DynamicContext<'static> {
        DynamicContext { secret: b"secret", challenge: ChallengeId(1), team: team.map(TeamId) }
    }

    #[test]
    fn static_flags() {
        let regexes = RegexCache::default();
        let flags = [flag("static", "FCTF{Yes}", None), flag("Static", "other", Some("case_insensitive"))];
        assert_eq!(judge(&flags, "FCTF{Yes}", &regexes, context(Some(1))), Verdict::Correct);
        assert_eq!(judge(&flags, "fctf{yes}", &regexes, context(Some(1))), Verdict::Incorrect);
        assert_eq!(judge(&flags, "OTHER", &regexes, context(Some(1))), Verdict::Correct);
        assert_eq!(judge(&[], "x", &regexes, context(Some(1))), Verdict::Incorrect);
    }

    #[test]
    fn regex_flags_match_the_whole_submission() {
        let regexes = RegexCache::default();
        let flags = [flag("regex", r"FCTF\{[a-z]+\}", None)];
        assert_eq!(judge(&flags, "FCTF{abc}", &regexes, context(None)), Verdict::Correct);
        assert_eq!(judge(&flags, "xFCTF{abc}", &regexes, context(None)), Verdict::Incorrect);
        assert_eq!(judge(&flags, "FCTF{abc}x", &regexes, context(None)), Verdict::Incorrect);
        assert_eq!(judge(&flags, "FCTF{ABC}", &regexes, context(None)), Verdict::Incorrect);
        let insensitive = [flag("regex", r"FCTF\{[a-z]+\}", Some("case_insensitive"))];
        assert_eq!(judge(&insensitive, "fctf{ABC}", &regexes, context(None)), Verdict::Correct);
        let alternation = [flag("regex", "a|b", None)];
        assert_eq!(
            judge(&alternation, "ab", &regexes, context(None)),
            Verdict::Incorrect,
            "anchoring wraps alternations"
        );
    }

    #[test]
    fn bad_and_huge_patterns_are_errors() {
        let regexes = RegexCache::default();
        assert_eq!(judge(&[flag("regex", "(", None)], "x", &regexes, context(None)), Verdict::RegexError);
        let huge = "a".repeat(MAX_PATTERN_LEN + 1);
        assert_eq!(judge(&[flag("regex", &huge, None)], "a", &regexes, context(None)), Verdict::RegexError);
        let explosive = r"(\w{1,500}){1,500}";
        assert_eq!(judge(&[flag("regex", explosive, None)], "a", &regexes, context(None)), Verdict::RegexError);
        assert_eq!(
            judge(&[flag("mystery", "x", None)], "x", &regexes, context(None)),
            Verdict::UnknownType("mystery".into())
        );
    }

    #[test]
    fn dynamic_flags() {
        let regexes = RegexCache::default();
        let flags = [flag("dynamic", "FCTF", None)];
        let own = crate::domain::flags::dynamic_flag(b"secret", ChallengeId(1), TeamId(5), "FCTF");
        let foreign = crate::domain::flags::dynamic_flag(b"secret", ChallengeId(1), TeamId(6), "FCTF");
        assert_eq!(judge(&flags, &own, &regexes, context(Some(5))), Verdict::Correct);
        assert_eq!(judge(&flags, &foreign, &regexes, context(Some(5))), Verdict::SharedDynamic { owner: TeamId(6) });
        assert_eq!(judge(&flags, &own, &regexes, context(None)), Verdict::Incorrect);
        assert_eq!(judge(&flags, "FCTF{5_00}", &regexes, context(Some(5))), Verdict::Incorrect);
    }
}
