//! The contestant API's store methods: account snapshots, team self-service, tickets with
//! near-duplicate detection, registration and the scoring snapshot.

use super::fixtures;
use crate::domain::UserId;
use crate::store::{Account, NewAward, NewTeam, NewTicket, NewUser, Store, TeamChange, TicketOutcome, UserRole};

pub(super) async fn account_snapshot_follows_session_and_team(store: &Store) {
    let user = fixtures::user(store, "snap").await;
    let snapshot = store.account_snapshot(user).await.unwrap().unwrap();
    assert_eq!((snapshot.team.clone(), snapshot.session.clone()), (None, None));
    assert!(snapshot.verified && !snapshot.banned && !snapshot.hidden);
    store.create_session(user, "token-1", 4_000_000_000, None, None).await.unwrap();
    let team = store.create_team(&NewTeam { name: "snappers".into(), ..NewTeam::default() }).await.unwrap();
    store.add_team_member(team.id, user, None).await.unwrap();
    store.set_team_captain(team.id, Some(user)).await.unwrap();
    let snapshot = store.account_snapshot(user).await.unwrap().unwrap();
    assert_eq!(snapshot.session, Some(("token-1".to_owned(), 4_000_000_000)));
    let team_snapshot = snapshot.team.unwrap();
    assert_eq!((team_snapshot.id, team_snapshot.captain_id, team_snapshot.banned), (team.id, Some(user), false));
    store.revoke_session("token-1").await.unwrap();
    assert_eq!(store.account_snapshot(user).await.unwrap().unwrap().session, None);
    assert_eq!(store.account_snapshot(UserId(999_999)).await.unwrap(), None);
}

pub(super) async fn team_self_service_is_atomic(store: &Store) {
    let founder = fixtures::user(store, "founder").await;
    let attempts =
        (0..8).map(|index| {
            let store = store.clone();
            async move {
                store.create_team_for(founder, &NewTeam { name: format!("crew{index}"), ..NewTeam::default() }).await
            }
        });
    let outcomes = futures::future::join_all(attempts).await;
    let created: Vec<_> = outcomes
        .iter()
        .filter_map(|outcome| match outcome {
            Ok(TeamChange::Done(team)) => Some(team.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(created.len(), 1, "a player founds one team: {outcomes:?}");
    assert!(outcomes.iter().all(|outcome| matches!(outcome, Ok(TeamChange::Done(_)) | Ok(TeamChange::AlreadyInTeam))));
    let team = &created[0];
    assert_eq!(team.captain_id, Some(founder));
    let mut joiners = Vec::new();
    for index in 0..6 {
        joiners.push(fixtures::user(store, &format!("joiner{index}")).await);
    }
    let joins = joiners.iter().map(|user| {
        let store = store.clone();
        let (user, team_id) = (*user, team.id);
        async move { store.join_team_for(user, team_id, Some(3)).await.unwrap() }
    });
    let outcomes = futures::future::join_all(joins).await;
    let joined = outcomes.iter().filter(|outcome| matches!(outcome, TeamChange::Done(_))).count();
    assert_eq!(joined, 2, "three members at most: {outcomes:?}");
    assert_eq!(store.team_members(team.id).await.unwrap().len(), 3);
    let loner = fixtures::user(store, "loner").await;
    let taken = store.create_team_for(loner, &NewTeam { name: team.name.to_uppercase(), ..NewTeam::default() }).await;
    assert!(taken.unwrap_err().is_conflict_on("teams_name_uq"), "team names are unique case-insensitively");
    assert_eq!(store.get_user(loner).await.unwrap().team_id, None, "nothing was written");
    let member = store.team_members(team.id).await.unwrap()[1].id;
    assert_eq!(store.member_record_count(member, team.id).await.unwrap(), 0);
    store
        .create_award(&NewAward {
            user_id: Some(member),
            team_id: Some(team.id),
            name: "x".into(),
            value: 1,
            ..NewAward::default()
        })
        .await
        .unwrap();
    assert_eq!(store.member_record_count(member, team.id).await.unwrap(), 1);
}

fn same_text(left: &str, right: &str) -> f64 {
    if left == right { 1.0 } else { 0.0 }
}

pub(super) async fn similar_tickets_are_created_once(store: &Store) {
    let author = fixtures::user(store, "writer").await;
    let ticket =
        NewTicket { author_id: author, title: "t".into(), kind: "Question".into(), description: "same".into() };
    let sends = (0..10).map(|_| {
        let store = store.clone();
        let ticket = ticket.clone();
        async move { store.create_ticket_unless_similar(&ticket, 0.7, same_text).await.unwrap() }
    });
    let outcomes = futures::future::join_all(sends).await;
    assert_eq!(outcomes.iter().filter(|outcome| matches!(outcome, TicketOutcome::Created(_))).count(), 1);
    assert_eq!(outcomes.iter().filter(|outcome| matches!(outcome, TicketOutcome::Similar)).count(), 9);
    let other = NewTicket { description: "different".into(), ..ticket };
    assert!(matches!(
        store.create_ticket_unless_similar(&other, 0.7, same_text).await.unwrap(),
        TicketOutcome::Created(_)
    ));
    assert_eq!(store.list_tickets(Some(author)).await.unwrap().len(), 2);
}

pub(super) async fn registration_and_score_data(store: &Store) {
    let field = store.create_registration_field("Student ID", "text", "", true).await.unwrap();
    let fields = store.registration_fields().await.unwrap();
    assert_eq!((fields.len(), fields[0].id, fields[0].required), (1, field, true));
    let before = store.count_active_players().await.unwrap();
    let user = NewUser {
        name: "newbie".into(),
        email: Some("n@x".into()),
        password_hash: "h".into(),
        role: UserRole::User,
        verified: false,
    };
    let id = store.register_player(&user, &[(field, "\"S-1\"".into())]).await.unwrap();
    assert_eq!(store.user_field_values(id).await.unwrap(), vec![(field, "\"S-1\"".to_owned())]);
    assert_eq!(store.count_active_players().await.unwrap(), before + 1);
    let duplicate = store.register_player(&NewUser { email: Some("other@x".into()), ..user }, &[]).await;
    assert!(duplicate.unwrap_err().is_conflict_on("users_name_uq"));
    assert!(store.user_field_values(id).await.unwrap().len() == 1, "the failed registration left nothing");

    let account = fixtures::team_account(store, "scorers").await;
    let challenge = fixtures::challenge(store, "scored", 120).await;
    store.record_solve(challenge, account, "flag", None).await.unwrap();
    let data = store.score_data().await.unwrap();
    assert!(data.challenges.iter().any(|row| row.id == challenge && row.value == 120));
    assert!(data.solves.iter().any(|row| row.challenge_id == challenge && row.team_id == account.team_id));
    assert!(data.teams.iter().any(|team| Some(team.id) == account.team_id));
    assert_eq!(store.solved_challenge_ids(account).await.unwrap(), vec![challenge]);
    let teammate = Account { user_id: fixtures::user(store, "mate").await, team_id: account.team_id };
    assert_eq!(store.solved_challenge_ids(teammate).await.unwrap(), vec![challenge], "solves are per team");
    assert_eq!(store.attempt_counts(challenge, teammate).await.unwrap(), (1, 0));
    assert_eq!(store.recompute_decaying_values().await.unwrap(), 0);
}
