//! Domain identifiers and pure logic shared by every role. No I/O here.

pub mod gateway_token;
pub mod ids;

pub use ids::{BracketId, ChallengeId, HintId, InstanceId, SubmissionId, TeamId, UserId};
