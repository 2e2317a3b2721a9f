//! Per-instance flags: a challenge with a flag of kind `dynamic` gets a fresh flag for every
//! instance, handed to the instance as `FLAG` and kept on the instance row so that the
//! submission code can match it (and detect one team submitting another team's flag).
//!
//! Decision (the spec names the kind but not its format): the dynamic flag's content is a
//! template; `{random}` in it is replaced by 24 random hex digits; without that placeholder the
//! random part is inserted before a final `}` (`FLAG{web_}` → `FLAG{web_3fa9…}`), or appended.

use rand::RngCore;

use crate::store::Flag;

/// The kind of flag that makes per-instance flags.
pub const DYNAMIC_KIND: &str = "dynamic";
const PLACEHOLDER: &str = "{random}";

/// A fresh flag for a new instance, when the challenge has a dynamic flag.
pub fn instance_flag(flags: &[Flag]) -> Option<String> {
    let template = flags.iter().find(|flag| flag.flag.kind.eq_ignore_ascii_case(DYNAMIC_KIND))?;
    let mut bytes = [0u8; 12];
    rand::rng().fill_bytes(&mut bytes);
    Some(render(&template.flag.content, &hex::encode(bytes)))
}

fn render(template: &str, random: &str) -> String {
    if template.contains(PLACEHOLDER) {
        return template.replace(PLACEHOLDER, random);
    }
    match template.strip_suffix('}') {
        Some(head) => format!("{head}{random}}}"),
        None => format!("{template}{random}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ChallengeId;
    use crate::store::NewFlag;

    fn flag(kind: &str, content: &str) -> Flag {
        Flag {
            id: 1,
            flag: NewFlag { challenge_id: ChallengeId(1), kind: kind.into(), content: content.into(), data: None },
        }
    }

    #[test]
    fn templates_render_with_the_random_part() {
        assert_eq!(render("FLAG{a_{random}_b}", "x"), "FLAG{a_x_b}");
        assert_eq!(render("FLAG{web_}", "x"), "FLAG{web_x}");
        assert_eq!(render("plain", "x"), "plainx");
    }

    #[test]
    fn only_dynamic_flags_make_instance_flags_and_each_is_fresh() {
        assert_eq!(instance_flag(&[flag("static", "FLAG{s}")]), None);
        let flags = [flag("static", "FLAG{s}"), flag("dynamic", "FLAG{d_}")];
        let first = instance_flag(&flags).unwrap();
        let second = instance_flag(&flags).unwrap();
        assert!(first.starts_with("FLAG{d_") && first.ends_with('}') && first.len() == "FLAG{d_}".len() + 24);
        assert_ne!(first, second);
    }
}
