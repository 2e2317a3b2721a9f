//! Newtype identifiers, so a team id can never be passed where a challenge id is expected.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl $name {
            /// Returns the raw database id.
            pub fn get(self) -> i64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

id_type!(
    /// A user (player or staff) account.
    UserId
);
id_type!(
    /// A team. By the FCTF convention −1 is an admin preview and −2 a shared instance.
    TeamId
);
id_type!(
    /// A challenge.
    ChallengeId
);
id_type!(
    /// One lifetime of a challenge instance (a durable row in the store).
    InstanceId
);

impl TeamId {
    /// The pseudo-team of admin preview instances.
    pub const PREVIEW: TeamId = TeamId(-1);
    /// The pseudo-team of instances shared by every team.
    pub const SHARED: TeamId = TeamId(-2);

    /// True for a real team (not preview or shared).
    pub fn is_real(self) -> bool {
        self.0 > 0
    }
}

id_type!(
    /// A hint of a challenge.
    HintId
);
id_type!(
    /// A flag submission (a solve has the id of its correct submission).
    SubmissionId
);
id_type!(
    /// A scoreboard bracket (division).
    BracketId
);
