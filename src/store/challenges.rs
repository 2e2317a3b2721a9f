//! Challenges: the CTFd fields (standard and decaying values, state, requirements, next) and
//! fctf's deployment settings.
//!
//! Decisions: challenge names are unique (`challenges_name_uq`; admin-api D4, ctfcli keys on
//! the name). The dynamic-value parameters live on the challenge row (no separate
//! `dynamic_challenge` table); a challenge decays when `function` is `linear` or `logarithmic`
//! and has an `initial` value. `value` is stored and recomputed inside the transaction that
//! records a solve (see `submissions.rs`) and whenever the challenge is created or replaced.
//! Requirements are stored as the CTFd JSON text, untouched.

use std::str::FromStr;

use sqlx::any::AnyRow;
use sqlx::{Any, Row};

use super::scoring::{decaying_function, recompute_value_in};
use super::sql::bool_of;
use super::{Store, StoreError};
use crate::domain::{ChallengeId, UserId};

/// Visibility of a challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ChallengeState {
    /// Listed and playable.
    #[default]
    Visible,
    /// Invisible to players.
    Hidden,
    /// Listed and viewable, not submittable.
    Locked,
}

impl ChallengeState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChallengeState::Visible => "visible",
            ChallengeState::Hidden => "hidden",
            ChallengeState::Locked => "locked",
        }
    }
}

impl FromStr for ChallengeState {
    type Err = StoreError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "visible" => Ok(ChallengeState::Visible),
            "hidden" => Ok(ChallengeState::Hidden),
            "locked" => Ok(ChallengeState::Locked),
            other => Err(StoreError::Other(format!("unknown challenge state {other:?}"))),
        }
    }
}

/// How instances of a deployable challenge run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploySettings {
    /// Players need a private instance (`require_deploy`).
    pub require_deploy: bool,
    /// Container image (kubernetes runtime).
    pub image: Option<String>,
    /// Shell command (local runtime).
    pub command: Option<String>,
    /// Port the challenge listens on.
    pub exposed_port: Option<i64>,
    /// `http` or `tcp`: how the gateway exposes it.
    pub protocol: String,
    /// Instance lifetime in minutes (`None`: the platform default).
    pub time_limit_minutes: Option<i64>,
    /// CPU request and limit in millicores.
    pub cpu_request: Option<i64>,
    /// CPU limit in millicores.
    pub cpu_limit: Option<i64>,
    /// Memory request and limit in MiB.
    pub memory_request: Option<i64>,
    /// Memory limit in MiB.
    pub memory_limit: Option<i64>,
    /// Hardened pod security context.
    pub harden_container: bool,
    /// Run under gVisor.
    pub use_gvisor: bool,
    /// One instance for everyone (team id −2), started by an admin.
    pub shared_instance: bool,
    /// Starts allowed per team (0 = unlimited).
    pub max_deploy_count: i64,
}

impl Default for DeploySettings {
    fn default() -> Self {
        DeploySettings {
            require_deploy: false,
            image: None,
            command: None,
            exposed_port: None,
            protocol: "http".to_owned(),
            time_limit_minutes: None,
            cpu_request: None,
            cpu_limit: None,
            memory_request: None,
            memory_limit: None,
            harden_container: true,
            use_gvisor: false,
            shared_instance: false,
            max_deploy_count: 0,
        }
    }
}

/// Every editable field of a challenge: the input of create and of full replacement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewChallenge {
    /// Display and lookup name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Markdown byline.
    pub attribution: String,
    /// How to connect (free text).
    pub connection_info: Option<String>,
    /// Challenge suggested after a solve.
    pub next_id: Option<ChallengeId>,
    /// 0 = unlimited.
    pub max_attempts: i64,
    /// Points (recomputed for decaying challenges).
    pub value: i64,
    /// Category.
    pub category: String,
    /// `standard`, `dynamic`, `multiple_choice`, …
    pub kind: String,
    /// Visibility.
    pub state: ChallengeState,
    /// CTFd requirements JSON `{"prerequisites":[ids],"anonymize":…}`.
    pub requirements: Option<String>,
    /// `any`, `all` or `team`.
    pub logic: String,
    /// Sort key on the board.
    pub position: i64,
    /// When it becomes visible (Unix seconds).
    pub scheduled_at: Option<i64>,
    /// Value before any solve (decaying challenges).
    pub initial: Option<i64>,
    /// Lowest decayed value.
    pub minimum: Option<i64>,
    /// Decay parameter (solves to reach the minimum, or points per solve for linear).
    pub decay: Option<i64>,
    /// `static`, `linear` or `logarithmic`.
    pub function: String,
    /// Difficulty (1 to 5).
    pub difficulty: Option<i64>,
    /// Seconds between two attempts of a team.
    pub cooldown: i64,
    /// Account that authored it.
    pub author_id: Option<UserId>,
    /// Deployment settings.
    pub deploy: DeploySettings,
}

impl Default for NewChallenge {
    fn default() -> Self {
        NewChallenge {
            name: String::new(),
            description: String::new(),
            attribution: String::new(),
            connection_info: None,
            next_id: None,
            max_attempts: 0,
            value: 0,
            category: String::new(),
            kind: "standard".to_owned(),
            state: ChallengeState::Visible,
            requirements: None,
            logic: "any".to_owned(),
            position: 0,
            scheduled_at: None,
            initial: None,
            minimum: None,
            decay: None,
            function: "static".to_owned(),
            difficulty: None,
            cooldown: 0,
            author_id: None,
            deploy: DeploySettings::default(),
        }
    }
}

/// A stored challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Row id.
    pub id: ChallengeId,
    /// The editable fields.
    pub spec: NewChallenge,
    /// Image build status (`PENDING_DEPLOY`, `DEPLOY_SUCCEEDED`, `DEPLOY_FAILED`), if any.
    pub deploy_status: Option<String>,
    /// Creation time (Unix seconds).
    pub created: i64,
    /// Last change (Unix seconds).
    pub updated: i64,
}

impl Challenge {
    /// True when the value decays with solves.
    pub fn decays(&self) -> bool {
        decaying_function(&self.spec.function) && self.spec.initial.is_some()
    }

    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        let state: String = row.try_get("state")?;
        let spec = NewChallenge {
            name: row.try_get("name")?,
            description: row.try_get("description")?,
            attribution: row.try_get("attribution")?,
            connection_info: row.try_get("connection_info")?,
            next_id: row.try_get::<Option<i64>, _>("next_id")?.map(ChallengeId),
            max_attempts: row.try_get("max_attempts")?,
            value: row.try_get("value")?,
            category: row.try_get("category")?,
            kind: row.try_get("type")?,
            state: state.parse().map_err(|error| sqlx::Error::Decode(Box::new(error)))?,
            requirements: row.try_get("requirements")?,
            logic: row.try_get("logic")?,
            position: row.try_get("position")?,
            scheduled_at: row.try_get("scheduled_at")?,
            initial: row.try_get("initial")?,
            minimum: row.try_get("minimum")?,
            decay: row.try_get("decay")?,
            function: row.try_get("function")?,
            difficulty: row.try_get("difficulty")?,
            cooldown: row.try_get("cooldown")?,
            author_id: row.try_get::<Option<i64>, _>("author_id")?.map(UserId),
            deploy: DeploySettings {
                require_deploy: bool_of(row, "require_deploy")?,
                image: row.try_get("image")?,
                command: row.try_get("deploy_command")?,
                exposed_port: row.try_get("exposed_port")?,
                protocol: row.try_get("connection_protocol")?,
                time_limit_minutes: row.try_get("time_limit_minutes")?,
                cpu_request: row.try_get("cpu_request")?,
                cpu_limit: row.try_get("cpu_limit")?,
                memory_request: row.try_get("memory_request")?,
                memory_limit: row.try_get("memory_limit")?,
                harden_container: bool_of(row, "harden_container")?,
                use_gvisor: bool_of(row, "use_gvisor")?,
                shared_instance: bool_of(row, "shared_instance")?,
                max_deploy_count: row.try_get("max_deploy_count")?,
            },
        };
        Ok(Challenge {
            id: ChallengeId(row.try_get("id")?),
            spec,
            deploy_status: row.try_get("deploy_status")?,
            created: row.try_get("created")?,
            updated: row.try_get("updated")?,
        })
    }
}

const CHALLENGE_COLUMNS: &str = "id, name, description, attribution, connection_info, next_id, max_attempts, value, \
     category, type, state, requirements, logic, position, scheduled_at, initial, minimum, decay, function, difficulty, \
     cooldown, time_limit_minutes, require_deploy, image, deploy_command, exposed_port, connection_protocol, cpu_request, \
     cpu_limit, memory_request, memory_limit, harden_container, use_gvisor, shared_instance, max_deploy_count, \
     deploy_status, author_id, created, updated";

/// The 34 editable columns, in the order `bind_spec` binds them.
const SPEC_COLUMNS: [&str; 34] = [
    "name",
    "description",
    "attribution",
    "connection_info",
    "next_id",
    "max_attempts",
    "value",
    "category",
    "type",
    "state",
    "requirements",
    "logic",
    "position",
    "scheduled_at",
    "initial",
    "minimum",
    "decay",
    "function",
    "difficulty",
    "cooldown",
    "author_id",
    "require_deploy",
    "image",
    "deploy_command",
    "exposed_port",
    "connection_protocol",
    "time_limit_minutes",
    "cpu_request",
    "cpu_limit",
    "memory_request",
    "memory_limit",
    "harden_container",
    "use_gvisor",
    "shared_instance",
];

type AnyQuery<'q> = sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>;

fn bind_spec<'q>(query: AnyQuery<'q>, spec: &'q NewChallenge) -> AnyQuery<'q> {
    let deploy = &spec.deploy;
    query
        .bind(&spec.name)
        .bind(&spec.description)
        .bind(&spec.attribution)
        .bind(&spec.connection_info)
        .bind(spec.next_id.map(ChallengeId::get))
        .bind(spec.max_attempts)
        .bind(spec.value)
        .bind(&spec.category)
        .bind(&spec.kind)
        .bind(spec.state.as_str())
        .bind(&spec.requirements)
        .bind(&spec.logic)
        .bind(spec.position)
        .bind(spec.scheduled_at)
        .bind(spec.initial)
        .bind(spec.minimum)
        .bind(spec.decay)
        .bind(&spec.function)
        .bind(spec.difficulty)
        .bind(spec.cooldown)
        .bind(spec.author_id.map(UserId::get))
        .bind(i64::from(deploy.require_deploy))
        .bind(&deploy.image)
        .bind(&deploy.command)
        .bind(deploy.exposed_port)
        .bind(&deploy.protocol)
        .bind(deploy.time_limit_minutes)
        .bind(deploy.cpu_request)
        .bind(deploy.cpu_limit)
        .bind(deploy.memory_request)
        .bind(deploy.memory_limit)
        .bind(i64::from(deploy.harden_container))
        .bind(i64::from(deploy.use_gvisor))
        .bind(i64::from(deploy.shared_instance))
}

impl Store {
    /// Creates a challenge (a decaying one starts at its current decayed value, `initial` with
    /// no solves); `Conflict` on `challenges_name_uq`.
    pub async fn create_challenge(&self, spec: &NewChallenge) -> Result<Challenge, StoreError> {
        let now = super::now();
        let columns = SPEC_COLUMNS.join(", ");
        let values = super::sql::placeholders(1, SPEC_COLUMNS.len());
        let sql = format!(
            "INSERT INTO challenges ({columns}, max_deploy_count, created, updated) VALUES ({values}, ${}, ${}, ${}) RETURNING id",
            SPEC_COLUMNS.len() + 1,
            SPEC_COLUMNS.len() + 2,
            SPEC_COLUMNS.len() + 3,
        );
        let mut transaction = self.begin_write().await?;
        let row = bind_spec(sqlx::query(&sql), spec)
            .bind(spec.deploy.max_deploy_count)
            .bind(now)
            .bind(now)
            .fetch_one(&mut *transaction)
            .await?;
        let id: i64 = row.try_get("id")?;
        recompute_value_in(&mut transaction, ChallengeId(id)).await?;
        transaction.commit().await?;
        self.get_challenge(ChallengeId(id)).await
    }

    /// Reads a challenge; `NotFound` when it does not exist.
    pub async fn get_challenge(&self, id: ChallengeId) -> Result<Challenge, StoreError> {
        let sql = format!("SELECT {CHALLENGE_COLUMNS} FROM challenges WHERE id = $1");
        Ok(Challenge::from_row(&sqlx::query(&sql).bind(id.get()).fetch_one(&self.pool).await?)?)
    }

    /// Finds a challenge by its exact name.
    pub async fn get_challenge_by_name(&self, name: &str) -> Result<Option<Challenge>, StoreError> {
        let sql = format!("SELECT {CHALLENGE_COLUMNS} FROM challenges WHERE name = $1");
        let row = sqlx::query(&sql).bind(name).fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(Challenge::from_row).transpose()?)
    }

    /// Every challenge by ascending id.
    pub async fn list_challenges(&self) -> Result<Vec<Challenge>, StoreError> {
        let sql = format!("SELECT {CHALLENGE_COLUMNS} FROM challenges ORDER BY id");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(Challenge::from_row).collect::<Result<_, _>>()?)
    }

    /// Replaces every editable field (callers merge a partial update into the current spec)
    /// and recomputes a decaying value; `NotFound`, or `Conflict` on a taken name.
    pub async fn update_challenge(&self, id: ChallengeId, spec: &NewChallenge) -> Result<Challenge, StoreError> {
        let assignments: Vec<String> =
            SPEC_COLUMNS.iter().enumerate().map(|(index, column)| format!("{column} = ${}", index + 1)).collect();
        let count = SPEC_COLUMNS.len();
        let sql = format!(
            "UPDATE challenges SET {}, max_deploy_count = ${}, updated = ${} WHERE id = ${}",
            assignments.join(", "),
            count + 1,
            count + 2,
            count + 3,
        );
        let mut transaction = self.begin_write().await?;
        let result = bind_spec(sqlx::query(&sql), spec)
            .bind(spec.deploy.max_deploy_count)
            .bind(super::now())
            .bind(id.get())
            .execute(&mut *transaction)
            .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        recompute_value_in(&mut transaction, id).await?;
        transaction.commit().await?;
        self.get_challenge(id).await
    }

    /// Sets the state only (sync hides then shows a challenge); false when it does not exist.
    pub async fn set_challenge_state(&self, id: ChallengeId, state: ChallengeState) -> Result<bool, StoreError> {
        let result = sqlx::query("UPDATE challenges SET state = $2, updated = $3 WHERE id = $1")
            .bind(id.get())
            .bind(state.as_str())
            .bind(super::now())
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Records the image build status; false when the challenge does not exist.
    pub async fn set_challenge_deploy_status(&self, id: ChallengeId, status: Option<&str>) -> Result<bool, StoreError> {
        let result = sqlx::query("UPDATE challenges SET deploy_status = $2, updated = $3 WHERE id = $1")
            .bind(id.get())
            .bind(status)
            .bind(super::now())
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Deletes a challenge with its flags, hints, files, tags, submissions, solves and
    /// instances rows (cascade); false when it did not exist.
    pub async fn delete_challenge(&self, id: ChallengeId) -> Result<bool, StoreError> {
        let result = sqlx::query("DELETE FROM challenges WHERE id = $1").bind(id.get()).execute(&self.pool).await?;
        Ok(result.rows_affected() == 1)
    }
}
