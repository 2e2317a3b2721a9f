//! Challenges, flags and hints.

use super::fixtures;
use crate::store::{
    ChallengeState, DeploySettings, NewChallenge, NewFlag, NewHint, NewUnlock, Store, StoreError, UnlockOutcome,
};

pub(super) async fn challenge_round_trip_with_deploy_settings(store: &Store) {
    let author = fixtures::user(store, "author").await;
    let first = fixtures::challenge(store, "warmup", 50).await;
    let spec = NewChallenge {
        name: "pwn me".to_owned(),
        description: "line one\nline two".to_owned(),
        attribution: "by someone".to_owned(),
        connection_info: Some("nc host 1337".to_owned()),
        next_id: Some(first),
        max_attempts: 5,
        value: 300,
        category: "pwn".to_owned(),
        kind: "standard".to_owned(),
        state: ChallengeState::Hidden,
        requirements: Some(r#"{"prerequisites":[1],"anonymize":true}"#.to_owned()),
        logic: "any".to_owned(),
        position: 3,
        scheduled_at: Some(1_700_000_000),
        difficulty: Some(4),
        cooldown: 30,
        author_id: Some(author),
        deploy: DeploySettings {
            require_deploy: true,
            image: Some("registry.local/pwn:1".to_owned()),
            command: Some("python3 server.py".to_owned()),
            exposed_port: Some(9000),
            protocol: "tcp".to_owned(),
            time_limit_minutes: Some(45),
            cpu_request: Some(100),
            cpu_limit: Some(500),
            memory_request: Some(64),
            memory_limit: Some(256),
            harden_container: false,
            use_gvisor: true,
            shared_instance: true,
            max_deploy_count: 3,
        },
        ..NewChallenge::default()
    };
    let created = store.create_challenge(&spec).await.unwrap();
    assert_eq!(created.spec, spec);
    assert!(!created.decays());
    assert_eq!(store.get_challenge(created.id).await.unwrap(), created);
    assert_eq!(store.get_challenge_by_name("pwn me").await.unwrap().map(|found| found.id), Some(created.id));
    let duplicate =
        store.create_challenge(&NewChallenge { name: "pwn me".to_owned(), ..NewChallenge::default() }).await;
    assert!(duplicate.unwrap_err().is_conflict_on("challenges_name_uq"));

    let mut changed = created.spec.clone();
    changed.state = ChallengeState::Visible;
    changed.deploy.shared_instance = false;
    changed.next_id = None;
    let updated = store.update_challenge(created.id, &changed).await.unwrap();
    assert_eq!(updated.spec, changed);
    assert!(store.set_challenge_state(created.id, ChallengeState::Locked).await.unwrap());
    assert!(store.set_challenge_deploy_status(created.id, Some("DEPLOY_SUCCEEDED")).await.unwrap());
    let reread = store.get_challenge(created.id).await.unwrap();
    assert_eq!(
        (reread.spec.state, reread.deploy_status.as_deref()),
        (ChallengeState::Locked, Some("DEPLOY_SUCCEEDED"))
    );
    let names: Vec<String> =
        store.list_challenges().await.unwrap().into_iter().map(|challenge| challenge.spec.name).collect();
    assert_eq!(names, vec!["warmup", "pwn me"]);

    assert!(store.delete_challenge(first).await.unwrap());
    assert!(matches!(store.get_challenge(first).await, Err(StoreError::NotFound)));
    assert!(matches!(store.update_challenge(first, &changed).await, Err(StoreError::NotFound)));
}

pub(super) async fn flags_and_hints_in_creation_order(store: &Store) {
    let challenge_id = fixtures::challenge(store, "flags", 100).await;
    let other = fixtures::challenge(store, "other", 100).await;
    let mut flag_ids = Vec::new();
    for (content, data) in [("flag{a}", None), ("FLAG{b}", Some("case_insensitive")), ("flag{c}", Some(""))] {
        let flag = NewFlag {
            challenge_id,
            kind: "static".to_owned(),
            content: content.to_owned(),
            data: data.map(str::to_owned),
        };
        let created = store.create_flag(&flag).await.unwrap();
        assert_eq!(created.flag, flag);
        flag_ids.push(created.id);
    }
    store
        .create_flag(&NewFlag { challenge_id: other, kind: "regex".to_owned(), content: "^x+$".to_owned(), data: None })
        .await
        .unwrap();
    let flags = store.list_flags(Some(challenge_id)).await.unwrap();
    assert_eq!(flags.iter().map(|flag| flag.id).collect::<Vec<_>>(), flag_ids);
    assert_eq!(flags[2].flag.data.as_deref(), Some(""), "data is stored as sent");
    assert_eq!(flags[0].flag.data, None);
    assert_eq!(store.list_flags(None).await.unwrap().len(), 4);
    assert!(store.delete_flag(flag_ids[0]).await.unwrap());
    assert_eq!(store.list_flags(Some(challenge_id)).await.unwrap().len(), 2);
    let orphan = NewFlag {
        challenge_id: crate::domain::ChallengeId(9999),
        kind: "static".to_owned(),
        content: "x".to_owned(),
        data: None,
    };
    assert!(matches!(store.create_flag(&orphan).await, Err(StoreError::Conflict { .. })));

    let hint = NewHint { challenge_id, title: None, content: "look closer".to_owned(), cost: 10, requirements: None };
    let first = store.create_hint(&hint).await.unwrap();
    let second = store.create_hint(&NewHint { title: Some("t".to_owned()), cost: 0, ..hint.clone() }).await.unwrap();
    assert_eq!(first.hint, hint);
    assert_eq!(store.get_hint(first.id).await.unwrap(), first);
    let listed: Vec<_> = store.list_hints(Some(challenge_id)).await.unwrap().into_iter().map(|hint| hint.id).collect();
    assert_eq!(listed, vec![first.id, second.id]);
    assert!(store.delete_hint(first.id).await.unwrap());
    assert!(!store.delete_hint(first.id).await.unwrap());
    assert!(matches!(store.get_hint(first.id).await, Err(StoreError::NotFound)));
    assert_eq!(store.list_hints(None).await.unwrap().len(), 1);
}

pub(super) async fn recreated_hint_keeps_unlocks(store: &Store) {
    let account = fixtures::team_account(store, "keepers").await;
    let challenge_id = fixtures::challenge(store, "synced", 100).await;
    let hint = NewHint { challenge_id, title: None, content: "same text".to_owned(), cost: 0, requirements: None };
    let original = store.create_hint(&hint).await.unwrap();
    let outcome =
        store.unlock_hint(&NewUnlock { hint_id: original.id, account, require_affordable: true }).await.unwrap();
    assert!(matches!(outcome, UnlockOutcome::Unlocked { award_id: None, .. }));
    // A sync deletes and recreates every hint.
    assert!(store.delete_hint(original.id).await.unwrap());
    let recreated = store.create_hint(&hint).await.unwrap();
    let different = store.create_hint(&NewHint { content: "other text".to_owned(), ..hint.clone() }).await.unwrap();
    let unlocks = store.list_unlocks(account).await.unwrap();
    assert_eq!(unlocks.len(), 1);
    assert_eq!(unlocks[0].hint_id, recreated.id);
    let again =
        store.unlock_hint(&NewUnlock { hint_id: recreated.id, account, require_affordable: true }).await.unwrap();
    assert_eq!(again, UnlockOutcome::AlreadyUnlocked);
    assert_ne!(different.id, recreated.id);
}

pub(super) async fn tags_topics_files_and_brackets(store: &Store) {
    let challenge_id = fixtures::challenge(store, "catalogued", 10).await;
    let first = store.create_tag(challenge_id, "easy").await.unwrap();
    store.create_tag(challenge_id, "web").await.unwrap();
    let values: Vec<String> =
        store.list_tags(Some(challenge_id)).await.unwrap().into_iter().map(|tag| tag.value).collect();
    assert_eq!(values, vec!["easy", "web"]);
    assert!(store.delete_tag(first.id).await.unwrap());
    assert_eq!(store.list_tags(None).await.unwrap().len(), 1);

    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move { store.link_topic(challenge_id, "crypto").await }));
    }
    let mut topic_ids = std::collections::HashSet::new();
    for task in tasks {
        topic_ids.insert(task.await.unwrap().unwrap().topic_id);
    }
    assert_eq!(topic_ids.len(), 1, "a topic is created once");
    let links = store.list_topic_links(challenge_id).await.unwrap();
    assert_eq!(links.len(), 8);
    assert!(store.unlink_topic(links[0].id).await.unwrap());
    assert_eq!(store.list_topic_links(challenge_id).await.unwrap().len(), 7);

    let uploaded =
        store.upsert_file("challenge", "abc/task.zip", Some("00aa"), Some(3), Some(challenge_id)).await.unwrap();
    let replaced =
        store.upsert_file("challenge", "abc/task.zip", Some("11bb"), Some(4), Some(challenge_id)).await.unwrap();
    assert_eq!(uploaded.id, replaced.id, "same location, same row");
    assert_eq!(replaced.sha1sum.as_deref(), Some("11bb"));
    store.upsert_file("page", "media/logo.png", None, None, None).await.unwrap();
    assert_eq!(store.list_files(Some("challenge"), None).await.unwrap(), vec![replaced.clone()]);
    assert_eq!(store.get_file_by_location("abc/task.zip").await.unwrap(), Some(replaced.clone()));
    assert!(store.delete_file(replaced.id).await.unwrap());
    assert_eq!(store.list_files(None, None).await.unwrap().len(), 1);

    let bracket = store.create_bracket("students", "", "teams").await.unwrap();
    assert_eq!(store.list_brackets().await.unwrap(), vec![bracket.clone()]);
    let team = store
        .create_team(&crate::store::NewTeam {
            name: "bracketed".to_owned(),
            bracket_id: Some(bracket.id),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(store.delete_bracket(bracket.id).await.unwrap());
    assert_eq!(store.get_team(team.id).await.unwrap().bracket_id, None);
}
