//! DNS-safe names of instance runtime objects (pure logic, no I/O).
//!
//! The contract is `argo/README.md` §1.2 (the `start-chal-v2-template` contract):
//!
//! ```text
//! team  = decimal team id for real teams, "preview" for -1, "shared" for -2
//! slug  = challenge name, Unicode NFKD, non-ASCII dropped, lower-cased, every run of characters
//!         outside [a-z0-9] replaced by "-", leading/trailing "-" removed; "chal" when empty
//! full  = "team-{team}-{challenge_id}-{slug}-{instance_id}"
//! name  = full                                                  if len(full) <= 63
//!       = full[..54] without trailing "-" + "-" + 8 hex of SHA-256(full)   otherwise
//! ```
//!
//! So every name is a valid DNS label (RFC 1123: lower-case ASCII letters, digits and `-`, at
//! most 63 characters, starting and ending with an alphanumeric character), deterministic from
//! (team, challenge, instance id), and unique per instance (the instance id is part of `full`,
//! and the hash covers it when truncated). fctf never parses names back: ids travel in labels.
//!
//! Decision where the contract is silent: a team id that is neither positive, −1 nor −2 (never
//! produced by fctf) is written `n<absolute value>`, so the name stays a valid label.

use sha2::{Digest, Sha256};
use unicode_normalization::UnicodeNormalization;

use crate::domain::{ChallengeId, InstanceId, TeamId};

/// The longest DNS label.
pub const MAX_LABEL_LEN: usize = 63;
/// Characters of `full` kept before the hash suffix when a name is truncated.
const TRUNCATED_PREFIX_LEN: usize = 54;
/// Hex digits of the SHA-256 suffix of a truncated name.
const HASH_SUFFIX_LEN: usize = 8;
/// The slug of a name with no usable ASCII letter or digit.
const EMPTY_SLUG: &str = "chal";

/// The team as written in names and label values (`7`, `preview`, `shared`).
pub fn team_label(team_id: TeamId) -> String {
    match team_id {
        TeamId::PREVIEW => "preview".to_owned(),
        TeamId::SHARED => "shared".to_owned(),
        TeamId(id) if id > 0 => id.to_string(),
        TeamId(id) => format!("n{}", id.unsigned_abs()),
    }
}

/// The challenge name folded to `[a-z0-9-]`, never empty.
pub fn slug(challenge_name: &str) -> String {
    let mut slug = String::with_capacity(challenge_name.len());
    let mut pending_dash = false;
    for character in challenge_name.nfkd() {
        if !character.is_ascii() {
            // Combining marks and letters with no ASCII decomposition are dropped, not
            // separators ("Ünïcode" → "unicode").
            continue;
        }
        let lower = character.to_ascii_lowercase();
        if lower.is_ascii_lowercase() || lower.is_ascii_digit() {
            if pending_dash && !slug.is_empty() {
                slug.push('-');
            }
            pending_dash = false;
            slug.push(lower);
        } else {
            pending_dash = true;
        }
    }
    if slug.is_empty() { EMPTY_SLUG.to_owned() } else { slug }
}

/// The namespace (local: process) name of one instance.
pub fn instance_name(
    team_id: TeamId,
    challenge_id: ChallengeId,
    challenge_name: &str,
    instance_id: InstanceId,
) -> String {
    let full = format!("team-{}-{}-{}-{}", team_label(team_id), challenge_id, slug(challenge_name), instance_id);
    if full.len() <= MAX_LABEL_LEN {
        return full;
    }
    // `full` is ASCII, so byte offsets are character offsets.
    let prefix = full[..TRUNCATED_PREFIX_LEN].trim_end_matches('-');
    let digest = hex::encode(Sha256::digest(full.as_bytes()));
    format!("{prefix}-{}", &digest[..HASH_SUFFIX_LEN])
}

/// True when `name` is a valid RFC 1123 DNS label.
pub fn is_dns_label(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_LABEL_LEN
        && bytes.iter().all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || *byte == b'-')
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(team: i64, challenge_name: &str) -> String {
        instance_name(TeamId(team), ChallengeId(12), challenge_name, InstanceId(4217))
    }

    /// The naming table of `argo/README.md` §1.2.
    #[test]
    fn matches_the_contract_examples() {
        assert_eq!(name(7, "Web Chall: Ünïcode édition!"), "team-7-12-web-chall-unicode-edition-4217");
        assert_eq!(name(-1, "Web Chall: Ünïcode édition!"), "team-preview-12-web-chall-unicode-edition-4217");
        assert_eq!(name(-2, "Web Chall: Ünïcode édition!"), "team-shared-12-web-chall-unicode-edition-4217");
        assert_eq!(
            name(7, "A Very Long Challenge Name That Goes On And On, Forever & Ever!"),
            "team-7-12-a-very-long-challenge-name-that-goes-on-and-0795e719"
        );
        assert_eq!(name(7, "中文"), "team-7-12-chal-4217");
    }

    #[test]
    fn slugs_fold_compatibility_characters_and_collapse_separators() {
        assert_eq!(slug("  --Ｆｕｌｌ＿Width__ ﬁle  "), "full-width-file");
        assert_eq!(slug("đ-Đ"), "chal");
        assert_eq!(slug("x²"), "x2");
        assert_eq!(slug("ÀÉÎÕÜ ça"), "aeiou-ca");
        assert_eq!(slug(""), "chal");
    }

    #[test]
    fn every_name_is_a_dns_label_and_unique_per_instance() {
        let awkward = [
            "",
            "-",
            "Ω",
            "a".repeat(300).as_str(),
            "-leading and trailing-",
            "ends with digits 123",
            "đường",
            "x-".repeat(40).as_str(),
        ]
        .map(str::to_owned);
        for team in [1, 999_999_999, -1, -2, 0, -7] {
            for challenge_name in &awkward {
                for instance in [1, 4217, i64::MAX] {
                    let generated =
                        instance_name(TeamId(team), ChallengeId(i64::MAX), challenge_name, InstanceId(instance));
                    assert!(is_dns_label(&generated), "{generated:?} from {team} {challenge_name:?}");
                    let other =
                        instance_name(TeamId(team), ChallengeId(i64::MAX), challenge_name, InstanceId(instance - 1));
                    assert_ne!(generated, other);
                }
            }
        }
    }

    #[test]
    fn truncated_names_keep_the_parseable_prefix() {
        let generated = name(7, &"long name ".repeat(20));
        assert_eq!(generated.len(), 63);
        assert!(generated.starts_with("team-7-12-long-name-"), "{generated}");
    }

    #[test]
    fn labels_are_checked() {
        assert!(is_dns_label("a"));
        assert!(is_dns_label("team-7-12-x-1"));
        assert!(!is_dns_label("-a"));
        assert!(!is_dns_label("a-"));
        assert!(!is_dns_label("A"));
        assert!(!is_dns_label(&"a".repeat(64)));
        assert!(!is_dns_label(""));
    }
}
