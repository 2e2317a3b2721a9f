//! Per-team dynamic flags: derived statelessly from a secret, the challenge and the team.
//!
//! Format (decided here, shared with the pipeline, which hands the same string to an instance
//! as `FLAG`): `<prefix>{<team id>_<mac>}` where `<mac>` is the first 16 bytes of
//! `HMAC-SHA256(secret, "fctf-dynamic-flag/v1:<challenge id>:<team id>")` in lower-case hex,
//! e.g. `FCTF{42_9f86d081884c7d659a2feaa0c55ad015}`. The prefix comes from the flag row
//! (`type = "dynamic"`, `content` = prefix). fctf uses the `internal` secret
//! (`Secrets::internal`), which every role that mints or checks flags already holds.
//!
//! Embedding the team id in clear costs nothing (the MAC cannot be forged without the secret)
//! and makes checking O(1) both ways: the submitter's own flag is one MAC comparison, and a
//! flag of *another* team is recognised by verifying the MAC for the team id it names, with no
//! table of issued flags. 128 bits of MAC make guessing hopeless.

use ring::hmac;

use crate::domain::{ChallengeId, TeamId};

/// Bytes of MAC kept in a flag (32 hex characters).
const MAC_BYTES: usize = 16;

fn mac(secret: &[u8], challenge: ChallengeId, team: TeamId) -> hmac::Tag {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    hmac::sign(&key, format!("fctf-dynamic-flag/v1:{}:{}", challenge.get(), team.get()).as_bytes())
}

/// The dynamic flag of `team` for `challenge`.
pub fn dynamic_flag(secret: &[u8], challenge: ChallengeId, team: TeamId, prefix: &str) -> String {
    let tag = mac(secret, challenge, team);
    let truncated = &tag.as_ref()[..MAC_BYTES];
    format!("{prefix}{{{}_{}}}", team.get(), hex::encode(truncated))
}

/// What a submission is, measured against the dynamic flags of one challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DynamicFlagMatch {
    /// The submitting team's own flag.
    Own,
    /// A genuine flag of another team (flag sharing).
    OtherTeam(TeamId),
    /// Not a valid dynamic flag of this challenge.
    NoMatch,
}

/// Checks `submitted` against the dynamic flags of `challenge` for `team`, in constant time
/// with respect to the MAC.
pub fn check_dynamic_flag(
    secret: &[u8],
    challenge: ChallengeId,
    team: TeamId,
    prefix: &str,
    submitted: &str,
) -> DynamicFlagMatch {
    let Some(inner) = submitted.strip_prefix(prefix).and_then(|rest| rest.strip_prefix('{')) else {
        return DynamicFlagMatch::NoMatch;
    };
    let Some(inner) = inner.strip_suffix('}') else { return DynamicFlagMatch::NoMatch };
    let Some((team_text, mac_text)) = inner.split_once('_') else { return DynamicFlagMatch::NoMatch };
    if team_text.is_empty() || team_text.len() > 18 || !team_text.bytes().all(|byte| byte.is_ascii_digit()) {
        return DynamicFlagMatch::NoMatch;
    }
    let Ok(claimed) = team_text.parse::<i64>() else { return DynamicFlagMatch::NoMatch };
    let Ok(given) = hex::decode(mac_text.to_ascii_lowercase()) else { return DynamicFlagMatch::NoMatch };
    if given.len() != MAC_BYTES {
        return DynamicFlagMatch::NoMatch;
    }
    let claimed = TeamId(claimed);
    let expected = mac(secret, challenge, claimed);
    if !constant_time_eq(&expected.as_ref()[..MAC_BYTES], &given) {
        return DynamicFlagMatch::NoMatch;
    }
    if claimed == team { DynamicFlagMatch::Own } else { DynamicFlagMatch::OtherTeam(claimed) }
}

/// Compares two byte strings without an early exit on the first difference.
pub fn constant_time_eq(left: &[u8], right: &[u8]) -> bool {
    if left.len() != right.len() {
        return false;
    }
    left.iter().zip(right).fold(0u8, |difference, (a, b)| difference | (a ^ b)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"test secret";

    #[test]
    fn flags_are_deterministic_per_team_and_challenge() {
        let first = dynamic_flag(SECRET, ChallengeId(7), TeamId(3), "FCTF");
        assert_eq!(first, dynamic_flag(SECRET, ChallengeId(7), TeamId(3), "FCTF"));
        assert_ne!(first, dynamic_flag(SECRET, ChallengeId(7), TeamId(4), "FCTF"));
        assert_ne!(first, dynamic_flag(SECRET, ChallengeId(8), TeamId(3), "FCTF"));
        assert_ne!(first, dynamic_flag(b"other", ChallengeId(7), TeamId(3), "FCTF"));
        assert!(first.starts_with("FCTF{3_") && first.ends_with('}'));
        assert_eq!(first.len(), "FCTF{3_}".len() + 32);
    }

    #[test]
    fn own_and_foreign_flags_are_recognised() {
        let own = dynamic_flag(SECRET, ChallengeId(7), TeamId(3), "FCTF");
        let foreign = dynamic_flag(SECRET, ChallengeId(7), TeamId(9), "FCTF");
        assert_eq!(check_dynamic_flag(SECRET, ChallengeId(7), TeamId(3), "FCTF", &own), DynamicFlagMatch::Own);
        assert_eq!(
            check_dynamic_flag(SECRET, ChallengeId(7), TeamId(3), "FCTF", &foreign),
            DynamicFlagMatch::OtherTeam(TeamId(9))
        );
        assert_eq!(
            check_dynamic_flag(SECRET, ChallengeId(7), TeamId(3), "FCTF", &own.to_uppercase()),
            DynamicFlagMatch::Own,
            "hex case does not matter"
        );
    }

    #[test]
    fn forged_or_malformed_flags_do_not_match() {
        let own = dynamic_flag(SECRET, ChallengeId(7), TeamId(3), "FCTF");
        let other_challenge = dynamic_flag(SECRET, ChallengeId(8), TeamId(3), "FCTF");
        let relabelled = own.replace("{3_", "{4_");
        for candidate in [
            other_challenge.as_str(),
            relabelled.as_str(),
            "FCTF{3_00000000000000000000000000000000}",
            "FCTF{}",
            "FCTF{_abc}",
            "FCTF{x_00}",
            "flag{3_00}",
            "",
            "FCTF{99999999999999999999999_00}",
        ] {
            assert_eq!(
                check_dynamic_flag(SECRET, ChallengeId(7), TeamId(3), "FCTF", candidate),
                DynamicFlagMatch::NoMatch,
                "{candidate}"
            );
        }
        assert_eq!(
            check_dynamic_flag(SECRET, ChallengeId(7), TeamId(3), "CTF", &own),
            DynamicFlagMatch::NoMatch,
            "the prefix must match"
        );
    }

    #[test]
    fn an_empty_prefix_works() {
        let flag = dynamic_flag(SECRET, ChallengeId(1), TeamId(2), "");
        assert!(flag.starts_with("{2_"));
        assert_eq!(check_dynamic_flag(SECRET, ChallengeId(1), TeamId(2), "", &flag), DynamicFlagMatch::Own);
    }
}
