//! Durable instance records.

use super::fixtures;
use crate::domain::TeamId;
use crate::store::{InstanceState, NewInstance, Store, StoreError};

pub(super) async fn one_live_instance_per_team_and_challenge(store: &Store) {
    let account = fixtures::team_account(store, "deployers").await;
    let team_id = fixtures::team_of(account);
    let challenge_id = fixtures::challenge(store, "box", 100).await;
    let new_instance =
        NewInstance { team_id, challenge_id, user_id: Some(account.user_id), flag: Some("flag{t}".to_owned()) };
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let store = store.clone();
        let new_instance = new_instance.clone();
        tasks.push(tokio::spawn(async move { store.create_instance(&new_instance).await }));
    }
    let mut created = Vec::new();
    let mut conflicts = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(instance) => created.push(instance),
            Err(error) if error.is_conflict_on("instances_live_uq") => conflicts += 1,
            Err(error) => panic!("unexpected {error:?}"),
        }
    }
    assert_eq!((created.len(), conflicts), (1, 19));
    let instance = &created[0];
    assert_eq!(instance.state, InstanceState::Queued);
    assert_eq!(instance.flag.as_deref(), Some("flag{t}"));
    assert_eq!(store.find_live_instance(team_id, challenge_id).await.unwrap().as_ref(), Some(instance));

    // Other teams, the preview and the shared pseudo-teams are independent.
    for other_team in [TeamId::PREVIEW, TeamId::SHARED] {
        store
            .create_instance(&NewInstance { team_id: other_team, user_id: None, flag: None, ..new_instance.clone() })
            .await
            .unwrap();
    }
    assert_eq!(store.list_live_instances(None).await.unwrap().len(), 3);
    assert_eq!(store.list_live_instances(Some(team_id)).await.unwrap().len(), 1);

    // Once stopped, the team may start again.
    assert!(
        store
            .transition_instance(instance.id, &InstanceState::LIVE, InstanceState::Stopped, Some("user stop"))
            .await
            .unwrap()
    );
    let stopped = store.get_instance(instance.id).await.unwrap();
    assert_eq!((stopped.state, stopped.reason.as_deref()), (InstanceState::Stopped, Some("user stop")));
    assert!(stopped.stopped_at.is_some());
    assert_eq!(store.find_live_instance(team_id, challenge_id).await.unwrap(), None);
    let again = store.create_instance(&new_instance).await.unwrap();
    assert_ne!(again.id, instance.id);
    // Reviving the old lifetime would make two live instances.
    let revived = store.transition_instance(instance.id, &[InstanceState::Stopped], InstanceState::Queued, None).await;
    assert!(revived.unwrap_err().is_conflict_on("instances_live_uq"));
    assert_eq!(store.list_instances(Some(team_id), Some(challenge_id), 0, 10).await.unwrap().len(), 2);
}

pub(super) async fn transition_guard_has_one_winner(store: &Store) {
    let account = fixtures::team_account(store, "stoppers").await;
    let challenge_id = fixtures::challenge(store, "stoppable", 100).await;
    let new_instance = NewInstance { team_id: fixtures::team_of(account), challenge_id, user_id: None, flag: None };
    let instance = store.create_instance(&new_instance).await.unwrap();
    assert!(store.mark_instance_running(instance.id, "127.0.0.1:40000", crate::store::now() + 600).await.unwrap());
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.transition_instance(instance.id, &[InstanceState::Running], InstanceState::Stopping, None).await
        }));
    }
    let mut winners = 0;
    for task in tasks {
        if task.await.unwrap().unwrap() {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
    assert_eq!(store.get_instance(instance.id).await.unwrap().state, InstanceState::Stopping);
    assert!(!store.transition_instance(instance.id, &[], InstanceState::Stopped, None).await.unwrap());
    assert!(
        !store
            .transition_instance(
                crate::domain::InstanceId(9999),
                &[InstanceState::Running],
                InstanceState::Stopped,
                None
            )
            .await
            .unwrap()
    );
}

pub(super) async fn instance_lifecycle(store: &Store) {
    let account = fixtures::team_account(store, "lifecycle").await;
    let team_id = fixtures::team_of(account);
    let challenge_id = fixtures::challenge(store, "lived", 100).await;
    let instance = store
        .create_instance(&NewInstance { team_id, challenge_id, user_id: Some(account.user_id), flag: None })
        .await
        .unwrap();
    assert_eq!(store.count_started_instances(team_id, challenge_id).await.unwrap(), 0);
    assert!(store.set_instance_runtime_name(instance.id, "fctf-t1-c1-abc").await.unwrap());
    assert!(
        store.transition_instance(instance.id, &[InstanceState::Queued], InstanceState::Deploying, None).await.unwrap()
    );
    let now = crate::store::now();
    assert!(store.mark_instance_running(instance.id, "127.0.0.1:40001", now + 100).await.unwrap());
    assert!(!store.mark_instance_running(instance.id, "127.0.0.1:40002", now + 100).await.unwrap(), "already running");
    let running = store.get_instance(instance.id).await.unwrap();
    assert_eq!(running.state, InstanceState::Running);
    assert_eq!(running.upstream.as_deref(), Some("127.0.0.1:40001"));
    assert_eq!(running.runtime_name.as_deref(), Some("fctf-t1-c1-abc"));
    assert_eq!(running.expires_at, Some(now + 100));
    assert!(running.ready_at.is_some());
    assert_eq!(store.count_started_instances(team_id, challenge_id).await.unwrap(), 1);
    assert!(store.list_expired_instances(now + 99).await.unwrap().is_empty());
    assert!(store.set_instance_expiry(instance.id, now + 50).await.unwrap());
    assert_eq!(store.list_expired_instances(now + 60).await.unwrap().len(), 1);
    assert!(store.set_instance_reason(instance.id, "expired").await.unwrap());
    assert!(
        store.transition_instance(instance.id, &[InstanceState::Running], InstanceState::Failed, None).await.unwrap()
    );
    let failed = store.get_instance(instance.id).await.unwrap();
    assert_eq!((failed.state, failed.reason.as_deref()), (InstanceState::Failed, Some("expired")));
    assert!(!store.set_instance_expiry(instance.id, now).await.unwrap(), "not live any more");
    assert!(matches!(store.get_instance(crate::domain::InstanceId(9999)).await, Err(StoreError::NotFound)));
    let orphan = NewInstance { team_id, challenge_id: crate::domain::ChallengeId(9999), user_id: None, flag: None };
    assert!(matches!(store.create_instance(&orphan).await, Err(StoreError::Conflict { .. })));
}
