//! Domain identifiers and pure logic shared by every role. No I/O here.

pub mod flags;
pub mod ids;
pub mod text;

pub use ids::{BracketId, ChallengeId, HintId, InstanceId, SubmissionId, TeamId, UserId};
