//! Solves, submissions, dynamic values and hint unlocks, including their concurrency.

use super::fixtures;
use crate::store::{
    Account, NewActionLog, NewAward, NewChallenge, NewHint, NewUnlock, SolveOutcome, Store, StoreError, SubmissionKind,
    UnlockOutcome,
};

pub(super) async fn record_solve_is_exactly_once_under_concurrency(store: &Store) {
    let account = fixtures::team_account(store, "racers").await;
    let teammate = fixtures::user(store, "racers-second").await;
    store.add_team_member(fixtures::team_of(account), teammate, None).await.unwrap();
    let challenge_id = fixtures::challenge(store, "race", 100).await;
    let mut tasks = Vec::new();
    for index in 0..50 {
        let store = store.clone();
        // Both members of the team submit at once.
        let submitter = Account { user_id: if index % 2 == 0 { account.user_id } else { teammate }, ..account };
        tasks.push(tokio::spawn(async move {
            store.record_solve(challenge_id, submitter, "flag{race}", Some("10.0.0.1")).await
        }));
    }
    let mut solved = 0;
    let mut already = 0;
    for task in tasks {
        match task.await.unwrap().expect("no error under contention") {
            SolveOutcome::Solved { value, .. } => {
                assert_eq!(value, 100);
                solved += 1;
            }
            SolveOutcome::AlreadySolved => already += 1,
        }
    }
    assert_eq!((solved, already), (1, 49));
    assert_eq!(store.list_challenge_solves(challenge_id).await.unwrap().len(), 1);
    let correct = store.list_submissions(Some(challenge_id), Some(SubmissionKind::Correct), 0, 100).await.unwrap();
    assert_eq!(correct.len(), 1, "losers leave no submission behind");
    assert!(store.has_solved(challenge_id, account).await.unwrap());
    assert_eq!(store.account_score(account).await.unwrap(), 100);
    let missing = store.record_solve(crate::domain::ChallengeId(9999), account, "x", None).await;
    assert!(matches!(missing, Err(StoreError::NotFound)));
}

pub(super) async fn users_mode_solves_are_per_user(store: &Store) {
    let challenge_id = fixtures::challenge(store, "solo", 10).await;
    let first = Account { user_id: fixtures::user(store, "solo1").await, team_id: None };
    let second = Account { user_id: fixtures::user(store, "solo2").await, team_id: None };
    assert!(matches!(store.record_solve(challenge_id, first, "f", None).await.unwrap(), SolveOutcome::Solved { .. }));
    assert_eq!(store.record_solve(challenge_id, first, "f", None).await.unwrap(), SolveOutcome::AlreadySolved);
    assert!(matches!(store.record_solve(challenge_id, second, "f", None).await.unwrap(), SolveOutcome::Solved { .. }));
    assert!(store.has_solved(challenge_id, second).await.unwrap());
    // The unique index itself refuses a second users-mode solve, named the same on both backends.
    let duplicate = sqlx::query("INSERT INTO submissions (challenge_id, user_id, provided, type, date) VALUES ($1, $2, 'f', 'correct', 0) RETURNING id")
        .bind(challenge_id.get())
        .bind(first.user_id.get())
        .fetch_one(&store.pool)
        .await
        .unwrap();
    let submission_id: i64 = sqlx::Row::get(&duplicate, "id");
    let error: StoreError = sqlx::query("INSERT INTO solves (id, challenge_id, user_id, date) VALUES ($1, $2, $3, 0)")
        .bind(submission_id)
        .bind(challenge_id.get())
        .bind(first.user_id.get())
        .execute(&store.pool)
        .await
        .unwrap_err()
        .into();
    assert!(error.is_conflict_on("solves_user_challenge_uq"), "{error:?}");
}

pub(super) async fn dynamic_value_decays_with_solves(store: &Store) {
    let spec = NewChallenge {
        name: "decaying".to_owned(),
        kind: "dynamic".to_owned(),
        value: 1,
        initial: Some(500),
        minimum: Some(100),
        decay: Some(2),
        function: "logarithmic".to_owned(),
        ..NewChallenge::default()
    };
    let challenge = store.create_challenge(&spec).await.unwrap();
    assert!(challenge.decays());
    assert_eq!(challenge.spec.value, 500, "a decaying challenge starts at initial");
    let mut accounts = Vec::new();
    for index in 0..4 {
        accounts.push(fixtures::team_account(store, &format!("decay{index}")).await);
    }
    let mut tasks = Vec::new();
    for account in accounts.clone() {
        let store = store.clone();
        tasks.push(tokio::spawn(async move { store.record_solve(challenge.id, account, "f", None).await }));
    }
    let mut values = Vec::new();
    for task in tasks {
        if let SolveOutcome::Solved { value, .. } = task.await.unwrap().unwrap() {
            values.push(value);
        }
    }
    values.sort_unstable();
    // Serialized per challenge: the solves see 1, 2, 3 and 4 counted solves.
    assert_eq!(values, vec![100, 100, 400, 500]);
    assert_eq!(store.get_challenge(challenge.id).await.unwrap().spec.value, 100);
    // Banning solvers and resyncing raises the value again.
    let team = fixtures::team_of(accounts[0]);
    store.update_team(team, &crate::store::TeamUpdate { banned: Some(true), ..Default::default() }).await.unwrap();
    store
        .update_team(
            fixtures::team_of(accounts[1]),
            &crate::store::TeamUpdate { banned: Some(true), ..Default::default() },
        )
        .await
        .unwrap();
    assert_eq!(store.recompute_challenge_value(challenge.id).await.unwrap(), 400);
}

pub(super) async fn incorrect_submissions_are_counted(store: &Store) {
    let account = fixtures::team_account(store, "wrong").await;
    let teammate = fixtures::user(store, "wrong-second").await;
    store.add_team_member(fixtures::team_of(account), teammate, None).await.unwrap();
    let other = fixtures::team_account(store, "elsewhere").await;
    let challenge_id = fixtures::challenge(store, "guess", 10).await;
    for user_id in [account.user_id, teammate, account.user_id] {
        let submitter = Account { user_id, ..account };
        store
            .record_submission(challenge_id, submitter, SubmissionKind::Incorrect, "nope", Some("1.1.1.1"))
            .await
            .unwrap();
    }
    store.record_submission(challenge_id, other, SubmissionKind::Incorrect, "nope", None).await.unwrap();
    assert_eq!(store.count_submissions(challenge_id, account, SubmissionKind::Incorrect).await.unwrap(), 3);
    assert_eq!(store.count_submissions(challenge_id, other, SubmissionKind::Incorrect).await.unwrap(), 1);
    assert!(store.record_submission(challenge_id, account, SubmissionKind::Correct, "x", None).await.is_err());
    let listed = store.list_submissions(Some(challenge_id), None, 0, 2).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].provided, "nope");
    let fetched = store.get_submission(listed[0].id).await.unwrap();
    assert_eq!(fetched, listed[0]);
    assert!(store.delete_submission(listed[0].id).await.unwrap());
    assert_eq!(
        store.list_submissions(Some(challenge_id), Some(SubmissionKind::Incorrect), 0, 10).await.unwrap().len(),
        3
    );
}

pub(super) async fn hint_unlock_is_exactly_once_under_concurrency(store: &Store) {
    let account = fixtures::team_account(store, "buyers").await;
    let team_id = fixtures::team_of(account);
    let award = NewAward {
        team_id: Some(team_id),
        user_id: Some(account.user_id),
        name: "bonus".to_owned(),
        value: 100,
        ..NewAward::default()
    };
    store.create_award(&award).await.unwrap();
    let challenge_id = fixtures::challenge(store, "hinted", 10).await;
    let hint = store
        .create_hint(&NewHint { challenge_id, title: None, content: "secret".to_owned(), cost: 30, requirements: None })
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let store = store.clone();
        let unlock = NewUnlock { hint_id: hint.id, account, require_affordable: true };
        tasks.push(tokio::spawn(async move { store.unlock_hint(&unlock).await }));
    }
    let mut unlocked = 0;
    for task in tasks {
        match task.await.unwrap().expect("no error under contention") {
            UnlockOutcome::Unlocked { award_id, .. } => {
                assert!(award_id.is_some());
                unlocked += 1;
            }
            UnlockOutcome::AlreadyUnlocked => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(unlocked, 1);
    assert_eq!(store.list_unlocks(account).await.unwrap().len(), 1);
    let charges: Vec<i64> =
        store.list_awards(Some(team_id), None).await.unwrap().into_iter().map(|award| award.award.value).collect();
    assert_eq!(charges, vec![100, -30], "charged exactly once");
    assert_eq!(store.account_score(account).await.unwrap(), 70);
    let missing = NewUnlock { hint_id: crate::domain::HintId(9999), account, require_affordable: true };
    assert!(matches!(store.unlock_hint(&missing).await, Err(StoreError::NotFound)));
}

pub(super) async fn concurrent_unlocks_cannot_overspend(store: &Store) {
    let account = fixtures::team_account(store, "thrifty").await;
    let challenge_id = fixtures::challenge(store, "paid", 15).await;
    assert!(matches!(store.record_solve(challenge_id, account, "f", None).await.unwrap(), SolveOutcome::Solved { .. }));
    let mut hints = Vec::new();
    for index in 0..6 {
        let new_hint =
            NewHint { challenge_id, title: None, content: format!("hint {index}"), cost: 10, requirements: None };
        hints.push(store.create_hint(&new_hint).await.unwrap().id);
    }
    let mut tasks = Vec::new();
    for hint_id in hints {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.unlock_hint(&NewUnlock { hint_id, account, require_affordable: true }).await
        }));
    }
    let mut unlocked = 0;
    let mut refused = 0;
    for task in tasks {
        match task.await.unwrap().unwrap() {
            UnlockOutcome::Unlocked { .. } => unlocked += 1,
            UnlockOutcome::InsufficientScore { score, cost } => {
                assert_eq!((score, cost), (5, 10));
                refused += 1;
            }
            UnlockOutcome::AlreadyUnlocked => panic!("different hints"),
        }
    }
    assert_eq!((unlocked, refused), (1, 5));
    assert_eq!(store.account_score(account).await.unwrap(), 5);
}

pub(super) async fn submissions_commit_with_their_action_log(store: &Store) {
    let account = fixtures::team_account(store, "logged").await;
    let challenge_id = fixtures::challenge(store, "logged", 100).await;
    let log = |action_type: i64, detail: &str| NewActionLog {
        user_id: Some(account.user_id),
        team_id: account.team_id,
        challenge_id: Some(challenge_id),
        action_type,
        action_detail: detail.to_owned(),
        topic_name: Some("web".into()),
    };
    let wrong = log(4, "Submitted an incorrect flag for logged");
    store
        .record_submission_with_log(challenge_id, account, SubmissionKind::Incorrect, "nope", None, Some(&wrong))
        .await
        .unwrap();
    assert_eq!(store.count_submissions(challenge_id, account, SubmissionKind::Incorrect).await.unwrap(), 1);
    let solved = log(3, "Solved logged");
    let outcome = store.record_solve_with_log(challenge_id, account, "flag", None, Some(&solved)).await.unwrap();
    assert!(matches!(outcome, SolveOutcome::Solved { .. }));
    let again = store.record_solve_with_log(challenge_id, account, "flag", None, Some(&solved)).await.unwrap();
    assert_eq!(again, SolveOutcome::AlreadySolved);
    let logs = store.list_action_logs(None, Some(account.user_id), 10).await.unwrap();
    let mut types: Vec<i64> = logs.iter().map(|entry| entry.log.action_type).collect();
    types.sort_unstable();
    assert_eq!(types, vec![3, 4], "one entry per recorded submission, none for the refused solve: {logs:?}");
    let refused = store
        .record_submission_with_log(challenge_id, account, SubmissionKind::Correct, "flag", None, Some(&wrong))
        .await;
    assert!(refused.is_err(), "correct submissions go through record_solve");
    assert_eq!(store.list_action_logs(None, Some(account.user_id), 10).await.unwrap().len(), 2, "nothing written");
}
