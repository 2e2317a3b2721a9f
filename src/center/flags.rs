//! Per-instance flags: a challenge with a flag of kind `dynamic` hands each team's instance
//! that team's dynamic flag as `FLAG` (`domain::flags`, the format the submission code checks:
//! `<prefix>{<team>_<mac>}`, keyed with the internal secret), and keeps it on the instance row.
//!
//! Decision: preview (−1) and shared (−2) instances get no dynamic flag, since no team could
//! submit it as its own.

use crate::domain::flags::dynamic_flag;
use crate::domain::{ChallengeId, TeamId};
use crate::store::Flag;

/// The kind of flag that makes per-team flags.
pub const DYNAMIC_KIND: &str = "dynamic";

/// The flag of a new instance of `challenge` for `team`, when the challenge has a dynamic flag.
pub fn instance_flag(flags: &[Flag], secret: &[u8], challenge: ChallengeId, team: TeamId) -> Option<String> {
    if !team.is_real() {
        return None;
    }
    let template = flags.iter().find(|flag| flag.flag.kind.eq_ignore_ascii_case(DYNAMIC_KIND))?;
    Some(dynamic_flag(secret, challenge, team, &template.flag.content))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::flags::{DynamicFlagMatch, check_dynamic_flag};
    use crate::store::NewFlag;

    fn flag(kind: &str, content: &str) -> Flag {
        Flag {
            id: 1,
            flag: NewFlag { challenge_id: ChallengeId(3), kind: kind.into(), content: content.into(), data: None },
        }
    }

    #[test]
    fn instances_get_the_flag_the_submission_code_accepts() {
        assert_eq!(instance_flag(&[flag("static", "FLAG{s}")], b"k", ChallengeId(3), TeamId(5)), None);
        let flags = [flag("static", "FLAG{s}"), flag("dynamic", "FCTF")];
        let issued = instance_flag(&flags, b"k", ChallengeId(3), TeamId(5)).unwrap();
        assert_eq!(check_dynamic_flag(b"k", ChallengeId(3), TeamId(5), "FCTF", &issued), DynamicFlagMatch::Own);
        assert_eq!(instance_flag(&flags, b"k", ChallengeId(3), TeamId::SHARED), None);
    }
}
