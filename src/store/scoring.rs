//! Decaying challenge values (CTFd's dynamic scoring).
//!
//! The value is stored on the challenge and recomputed inside the transaction that changes
//! what it depends on: a new solve (`submissions.rs`), a create or replace of the challenge, or
//! an explicit resync after bans. Solves count when neither the solving user nor its team is
//! hidden or banned.

use sqlx::{Any, Row, Transaction};

use super::{Store, StoreError};
use crate::domain::ChallengeId;

/// True for the functions that make a value decay.
pub(crate) fn decaying_function(function: &str) -> bool {
    matches!(function, "linear" | "logarithmic")
}

/// The value of a decaying challenge after `solve_count` counted solves (CTFd's formulas; the
/// first solver gets `initial`). `None` when `function` does not decay.
pub fn dynamic_value(initial: i64, minimum: i64, decay: i64, function: &str, solve_count: i64) -> Option<i64> {
    let steps = (solve_count - 1).max(0);
    let value = match function {
        "linear" => initial.saturating_sub(decay.saturating_mul(steps)),
        "logarithmic" => {
            let divisor = if decay == 0 { 1.0 } else { (decay as f64) * (decay as f64) };
            let raw = ((minimum - initial) as f64 / divisor) * (steps as f64) * (steps as f64) + initial as f64;
            raw.ceil() as i64
        }
        _ => return None,
    };
    Some(value.max(minimum))
}

impl Store {
    /// Recomputes the value of a decaying challenge from its counted solves (admin "resync");
    /// returns the current value.
    pub async fn recompute_challenge_value(&self, id: ChallengeId) -> Result<i64, StoreError> {
        let mut transaction = self.begin_write().await?;
        if !self.lock_row(&mut transaction, "challenges", id.get()).await? {
            return Err(StoreError::NotFound);
        }
        let value = recompute_value_in(&mut transaction, id).await?;
        transaction.commit().await?;
        Ok(value)
    }
}

/// Recomputes and stores a decaying value inside `transaction`; returns the current value.
/// Solves count when neither the solving user nor its team is hidden or banned.
pub(crate) async fn recompute_value_in(
    transaction: &mut Transaction<'static, Any>,
    id: ChallengeId,
) -> Result<i64, StoreError> {
    let row = sqlx::query("SELECT value, initial, minimum, decay, function FROM challenges WHERE id = $1")
        .bind(id.get())
        .fetch_one(&mut **transaction)
        .await?;
    let current: i64 = row.try_get("value")?;
    let initial: Option<i64> = row.try_get("initial")?;
    let function: String = row.try_get("function")?;
    let Some(initial) = initial.filter(|_| decaying_function(&function)) else {
        return Ok(current);
    };
    let minimum: i64 = row.try_get::<Option<i64>, _>("minimum")?.unwrap_or(0);
    let decay: i64 = row.try_get::<Option<i64>, _>("decay")?.unwrap_or(0);
    let solves: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM solves JOIN users ON users.id = solves.user_id \
         LEFT JOIN teams ON teams.id = solves.team_id \
         WHERE solves.challenge_id = $1 AND users.hidden = 0 AND users.banned = 0 \
         AND (teams.id IS NULL OR (teams.hidden = 0 AND teams.banned = 0))",
    )
    .bind(id.get())
    .fetch_one(&mut **transaction)
    .await?;
    let value = dynamic_value(initial, minimum, decay, &function, solves).unwrap_or(current);
    if value != current {
        sqlx::query("UPDATE challenges SET value = $2 WHERE id = $1")
            .bind(id.get())
            .bind(value)
            .execute(&mut **transaction)
            .await?;
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logarithmic_decay_matches_ctfd() {
        let values: Vec<i64> =
            [0, 1, 2, 11, 21, 40].iter().filter_map(|&n| dynamic_value(500, 100, 20, "logarithmic", n)).collect();
        assert_eq!(values, vec![500, 500, 499, 400, 100, 100]);
    }

    #[test]
    fn linear_decay_is_clamped_and_static_does_not_decay() {
        assert_eq!(dynamic_value(500, 100, 50, "linear", 3), Some(400));
        assert_eq!(dynamic_value(500, 100, 50, "linear", 100), Some(100));
        assert_eq!(dynamic_value(500, 100, 0, "logarithmic", 5), Some(100));
        assert_eq!(dynamic_value(500, 100, 50, "static", 3), None);
    }
}
