//! Users, teams, sessions, API tokens and configuration.

use std::collections::HashSet;

use super::fixtures;
use crate::store::{
    FieldOwner, ImportTeam, ImportUser, JoinOutcome, NewField, NewTeam, NewUser, Store, StoreError, TeamUpdate,
    UserRole, UserUpdate,
};

pub(super) async fn users_crud_and_unique_names(store: &Store) {
    let alice = fixtures::user(store, "Alice").await;
    let user = store.get_user(alice).await.unwrap();
    assert_eq!(user.name, "Alice");
    assert_eq!(user.role, UserRole::User);
    assert_eq!(user.team_id, None);
    assert_eq!(store.get_user_by_name("alice").await.unwrap().map(|found| found.id), Some(alice));
    assert_eq!(store.get_user_by_email("ALICE@example.test").await.unwrap().map(|found| found.id), Some(alice));

    let duplicate = NewUser {
        name: "ALICE".to_owned(),
        email: None,
        password_hash: "x".to_owned(),
        role: UserRole::User,
        verified: false,
    };
    let error = store.create_user(&duplicate).await.unwrap_err();
    assert!(error.is_conflict_on("users_name_uq"), "{error:?}");
    let same_email = NewUser { name: "other".to_owned(), email: Some("alice@EXAMPLE.test".to_owned()), ..duplicate };
    let error = store.create_user(&same_email).await.unwrap_err();
    assert!(error.is_conflict_on("users_email_uq"), "{error:?}");

    let admin = NewUser { name: "root".to_owned(), role: UserRole::Admin, ..same_email.clone() };
    let admin = NewUser { email: None, ..admin };
    store.create_user(&admin).await.unwrap();
    assert_eq!(store.count_users_with_role(UserRole::Admin).await.unwrap(), 1);
    assert_eq!(store.count_users().await.unwrap(), 2);

    let update = UserUpdate {
        name: Some("alice2".to_owned()),
        email: Some(None),
        role: Some(UserRole::Writer),
        country: Some(Some("VN".to_owned())),
        banned: Some(true),
        ..UserUpdate::default()
    };
    let user = store.update_user(alice, &update).await.unwrap();
    assert_eq!((user.name.as_str(), user.email.as_deref(), user.role), ("alice2", None, UserRole::Writer));
    assert_eq!(user.country.as_deref(), Some("VN"));
    assert!(user.banned);
    let renamed_to_taken = UserUpdate { name: Some("Root".to_owned()), ..UserUpdate::default() };
    assert!(store.update_user(alice, &renamed_to_taken).await.unwrap_err().is_conflict_on("users_name_uq"));

    let listed: Vec<String> = store.list_users(0, 10).await.unwrap().into_iter().map(|listed| listed.name).collect();
    assert_eq!(listed, vec!["alice2", "root"]);
    assert_eq!(store.list_users(1, 10).await.unwrap().len(), 1);

    store.record_user_ip(alice, "10.0.0.1").await.unwrap();
    store.record_user_ip(alice, "10.0.0.1").await.unwrap();
    store.record_user_ip(alice, "10.0.0.2").await.unwrap();
    assert_eq!(store.list_user_ips(alice).await.unwrap().len(), 2);

    assert!(store.delete_user(alice).await.unwrap());
    assert!(!store.delete_user(alice).await.unwrap());
    assert!(matches!(store.get_user(alice).await, Err(StoreError::NotFound)));
    assert!(matches!(store.update_user(alice, &UserUpdate::default()).await, Err(StoreError::NotFound)));
}

pub(super) async fn teams_members_and_captain(store: &Store) {
    let team = store.create_team(&NewTeam { name: "Red".to_owned(), ..NewTeam::default() }).await.unwrap();
    let error = store.create_team(&NewTeam { name: "red".to_owned(), ..NewTeam::default() }).await.unwrap_err();
    assert!(error.is_conflict_on("teams_name_uq"), "{error:?}");
    let other = store.create_team(&NewTeam { name: "Blue".to_owned(), ..NewTeam::default() }).await.unwrap();
    let first = fixtures::user(store, "first").await;
    let second = fixtures::user(store, "second").await;
    let outsider = fixtures::user(store, "outsider").await;

    assert_eq!(store.add_team_member(team.id, first, Some(2)).await.unwrap(), JoinOutcome::Joined);
    assert_eq!(store.add_team_member(other.id, first, None).await.unwrap(), JoinOutcome::AlreadyInTeam);
    assert_eq!(store.add_team_member(team.id, second, Some(2)).await.unwrap(), JoinOutcome::Joined);
    assert_eq!(store.add_team_member(team.id, outsider, Some(2)).await.unwrap(), JoinOutcome::TeamFull);
    assert_eq!(store.get_user(first).await.unwrap().team_id, Some(team.id));
    let members: Vec<_> = store.team_members(team.id).await.unwrap().into_iter().map(|user| user.id).collect();
    assert_eq!(members, vec![first, second]);

    assert!(!store.set_team_captain(team.id, Some(outsider)).await.unwrap());
    assert!(store.set_team_captain(team.id, Some(second)).await.unwrap());
    assert_eq!(store.get_team(team.id).await.unwrap().captain_id, Some(second));
    assert!(store.remove_team_member(team.id, second, true).await.unwrap());
    assert!(!store.remove_team_member(team.id, second, true).await.unwrap());
    let team_now = store.get_team(team.id).await.unwrap();
    assert_eq!(team_now.captain_id, None);
    assert_eq!(store.get_user(second).await.unwrap().team_id, None);

    let update = crate::store::TeamUpdate {
        banned: Some(true),
        invite_code: Some(Some("join-red".to_owned())),
        ..Default::default()
    };
    let updated = store.update_team(team.id, &update).await.unwrap();
    assert!(updated.banned);
    assert_eq!(store.get_team_by_invite_code("join-red").await.unwrap().map(|found| found.id), Some(team.id));
    assert_eq!(store.get_team_by_name("RED").await.unwrap().map(|found| found.id), Some(team.id));
    assert_eq!(store.count_teams().await.unwrap(), 2);
    assert!(matches!(
        store.add_team_member(crate::domain::TeamId(9999), outsider, None).await,
        Err(StoreError::NotFound)
    ));

    assert!(store.delete_team(team.id).await.unwrap());
    assert_eq!(store.get_user(first).await.unwrap().team_id, None, "members are detached");
    assert_eq!(store.list_teams(0, 10).await.unwrap().len(), 1);
}

pub(super) async fn concurrent_joins_respect_the_team_size(store: &Store) {
    let team = store.create_team(&NewTeam { name: "Full".to_owned(), ..NewTeam::default() }).await.unwrap();
    let mut users = Vec::new();
    for index in 0..12 {
        users.push(fixtures::user(store, &format!("joiner{index}")).await);
    }
    let mut tasks = Vec::new();
    for user_id in users {
        let store = store.clone();
        tasks.push(tokio::spawn(async move { store.add_team_member(team.id, user_id, Some(4)).await }));
    }
    let mut joined = 0;
    for task in tasks {
        match task.await.unwrap().unwrap() {
            JoinOutcome::Joined => joined += 1,
            JoinOutcome::TeamFull => {}
            JoinOutcome::AlreadyInTeam => panic!("nobody was in a team"),
        }
    }
    assert_eq!(joined, 4);
    assert_eq!(store.team_members(team.id).await.unwrap().len(), 4);
}

pub(super) async fn sessions_one_active_per_user(store: &Store) {
    let user_id = fixtures::user(store, "sessions").await;
    let now = crate::store::now();
    let first = store.create_session(user_id, "token-1", now + 3600, Some("10.0.0.1"), Some("ua")).await.unwrap();
    assert_eq!(first.revoked_at, None);
    assert_eq!(store.get_active_session("token-1", now).await.unwrap(), Some(first.clone()));
    let second = store.create_session(user_id, "token-2", now + 3600, None, None).await.unwrap();
    assert_eq!(store.get_active_session("token-1", now).await.unwrap(), None, "a login revokes the older session");
    assert_eq!(store.get_active_session("token-2", now).await.unwrap().map(|session| session.id), Some(second.id));
    assert_eq!(
        store.get_user_session(user_id).await.unwrap().map(|session| session.token_id),
        Some("token-2".to_owned())
    );
    assert_eq!(store.get_active_session("token-2", now + 3600).await.unwrap(), None, "expired");
    let reused = store.create_session(user_id, "token-2", now + 3600, None, None).await.unwrap_err();
    assert!(reused.is_conflict_on("sessions_token_id_uq"), "{reused:?}");
    assert!(store.revoke_session("token-2").await.unwrap());
    assert!(!store.revoke_session("token-2").await.unwrap());
    assert_eq!(store.get_user_session(user_id).await.unwrap(), None);
    store.create_session(user_id, "token-3", now + 3600, None, None).await.unwrap();
    assert_eq!(store.revoke_user_sessions(user_id, Some("token-3")).await.unwrap(), 0);
    assert_eq!(store.revoke_user_sessions(user_id, None).await.unwrap(), 1);
    let listed: Vec<(String, bool)> = store
        .list_user_sessions(user_id, 2)
        .await
        .unwrap()
        .into_iter()
        .map(|session| (session.token_id, session.revoked_at.is_some()))
        .collect();
    assert_eq!(listed, [("token-3".to_owned(), true), ("token-2".to_owned(), true)]);
    let missing = store.create_session(crate::domain::UserId(9999), "token-x", now, None, None).await;
    assert!(matches!(missing, Err(StoreError::NotFound)));
}

pub(super) async fn concurrent_logins_leave_one_active_session(store: &Store) {
    let user_id = fixtures::user(store, "racer").await;
    let expires_at = crate::store::now() + 3600;
    let mut tasks = Vec::new();
    for index in 0..10 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.create_session(user_id, &format!("login-{index}"), expires_at, None, None).await
        }));
    }
    for task in tasks {
        task.await.unwrap().expect("every login succeeds; the last one wins");
    }
    let active: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE user_id = $1 AND revoked_at IS NULL")
        .bind(user_id.get())
        .fetch_one(&store.pool)
        .await
        .unwrap();
    assert_eq!(active, 1);
}

pub(super) async fn api_token_lookup_expiry_and_revoke(store: &Store) {
    let user_id = fixtures::user(store, "tokens").await;
    let now = crate::store::now();
    let forever = store.create_api_token(user_id, "digest-forever", None, "ci").await.unwrap();
    let short = store.create_api_token(user_id, "digest-short", Some(now + 60), "short").await.unwrap();
    let duplicate = store.create_api_token(user_id, "digest-short", None, "dup").await.unwrap_err();
    assert!(duplicate.is_conflict_on("api_tokens_digest_uq"), "{duplicate:?}");

    let (token, owner) = store.find_api_token("digest-forever", now).await.unwrap().expect("found");
    assert_eq!((token.id, token.user_id, owner.id, token.description.as_str()), (forever, user_id, user_id, "ci"));
    assert!(store.find_api_token("digest-short", now + 59).await.unwrap().is_some());
    assert!(store.find_api_token("digest-short", now + 60).await.unwrap().is_none(), "expired");
    assert!(store.find_api_token("unknown", now).await.unwrap().is_none());
    assert_eq!(store.get_api_token(short).await.unwrap().expires_at, Some(now + 60));
    assert_eq!(store.list_api_tokens(Some(user_id)).await.unwrap().len(), 2);
    assert!(store.revoke_api_token(forever).await.unwrap());
    assert!(!store.revoke_api_token(forever).await.unwrap());
    assert!(store.find_api_token("digest-forever", now).await.unwrap().is_none());
    assert_eq!(store.list_api_tokens(None).await.unwrap().len(), 1);
}

pub(super) async fn config_bulk_set_and_get(store: &Store) {
    assert_eq!(store.get_config("ctf_name").await.unwrap(), None);
    let entries = vec![
        ("ctf_name".to_owned(), Some("Test CTF".to_owned())),
        ("user_mode".to_owned(), Some("teams".to_owned())),
        ("freeze".to_owned(), None),
    ];
    store.set_config_many(&entries).await.unwrap();
    let changed =
        vec![("user_mode".to_owned(), Some("users".to_owned())), ("start".to_owned(), Some("100".to_owned()))];
    store.set_config_many(&changed).await.unwrap();
    let all: Vec<(String, Option<String>)> =
        store.list_config().await.unwrap().into_iter().map(|entry| (entry.key, entry.value)).collect();
    assert_eq!(
        all,
        vec![
            ("ctf_name".to_owned(), Some("Test CTF".to_owned())),
            ("freeze".to_owned(), None),
            ("start".to_owned(), Some("100".to_owned())),
            ("user_mode".to_owned(), Some("users".to_owned())),
        ]
    );
    let single = store.set_config("ctf_name", Some("Renamed")).await.unwrap();
    assert_eq!(store.get_config("ctf_name").await.unwrap(), Some(single));
    assert!(store.delete_config("freeze").await.unwrap());
    assert!(!store.delete_config("freeze").await.unwrap());
    let ids: HashSet<i64> = store.list_config().await.unwrap().into_iter().map(|entry| entry.id).collect();
    assert_eq!(ids.len(), 3);
}

fn import_user(name: &str, team: Option<&str>) -> ImportUser {
    ImportUser {
        user: NewUser {
            name: name.to_owned(),
            email: Some(format!("{name}@import.test")),
            password_hash: "hash".to_owned(),
            role: UserRole::User,
            verified: true,
        },
        profile: UserUpdate { country: Some(Some("FR".to_owned())), ..UserUpdate::default() },
        team_name: team.map(str::to_owned),
        fields: Vec::new(),
    }
}

pub(super) async fn import_creates_every_account_or_none(store: &Store) {
    let existing = store.create_team(&NewTeam { name: "Old Team".to_owned(), ..NewTeam::default() }).await.unwrap();
    let field = store
        .create_field(&NewField {
            name: "School".to_owned(),
            kind: "user".to_owned(),
            field_type: "text".to_owned(),
            ..NewField::default()
        })
        .await
        .unwrap();
    let listed = ImportTeam {
        team: NewTeam { name: "Blue".to_owned(), ..NewTeam::default() },
        profile: TeamUpdate { website: Some(Some("https://blue.test".to_owned())), ..TeamUpdate::default() },
        fields: Vec::new(),
    };
    let mut first = import_user("ann", Some("blue"));
    first.fields = vec![(field.id, "Lycée".to_owned())];
    let users =
        vec![first, import_user("ben", Some("Green")), import_user("cid", Some("old team")), import_user("dee", None)];
    let imported = store.import_accounts(&[listed], &users).await.unwrap();
    let names: Vec<&str> = imported.teams.iter().map(|(_, name)| name.as_str()).collect();
    assert_eq!(names, ["Blue", "Green"]);
    let (blue, green) = (imported.teams[0].0, imported.teams[1].0);
    let team_of: Vec<_> = imported.users.iter().map(|(_, team)| *team).collect();
    assert_eq!(team_of, [Some(blue), Some(green), Some(existing.id), None]);
    let ann = store.get_user(imported.users[0].0).await.unwrap();
    assert_eq!((ann.country.as_deref(), ann.team_id), (Some("FR"), Some(blue)));
    assert_eq!(store.get_team(blue).await.unwrap().captain_id, Some(ann.id));
    assert_eq!(store.get_team(blue).await.unwrap().website.as_deref(), Some("https://blue.test"));
    assert_eq!(store.get_team(green).await.unwrap().captain_id, Some(imported.users[1].0));
    let entries = store.list_field_entries(FieldOwner::User(ann.id)).await.unwrap();
    assert_eq!(entries.iter().map(|entry| entry.value.as_str()).collect::<Vec<_>>(), ["Lycée"]);

    // A conflict on the last row undoes the whole import.
    let before = store.count_users().await.unwrap();
    let mut same_name = import_user("ANN", None);
    same_name.user.email = None;
    let clash = vec![import_user("eve", Some("Purple")), same_name];
    let error = store.import_accounts(&[], &clash).await.unwrap_err();
    assert!(error.is_conflict_on("users_name_uq"), "{error:?}");
    assert_eq!(store.count_users().await.unwrap(), before);
    assert!(store.get_team_by_name("purple").await.unwrap().is_none());
}
