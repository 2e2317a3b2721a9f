//! Domain identifiers and pure logic shared by every role. No I/O here.

pub mod flags;
pub mod gateway_token;
pub mod ids;
pub mod instance_names;
pub mod text;

pub use ids::{BracketId, ChallengeId, HintId, InstanceId, SubmissionId, TeamId, UserId};
