//! Audit log, action logs, cheat events and the smaller records.

use super::fixtures;
use crate::store::{AuditQuery, NewActionLog, NewAuditEntry, NewCheatEvent, NewNotification, NewTicket, Store};

pub(super) async fn audit_log_round_trip(store: &Store) {
    let admin = fixtures::user(store, "auditor").await;
    let mut appended = Vec::new();
    for index in 0..3 {
        let entry = NewAuditEntry {
            actor_id: Some(admin),
            actor_name: "auditor".to_owned(),
            actor_role: "admin".to_owned(),
            action: "update".to_owned(),
            target_type: if index == 2 { "config".to_owned() } else { "challenge".to_owned() },
            target_id: Some(format!("{index}")),
            before_json: Some(r#"{"value":100}"#.to_owned()),
            after_json: Some(format!(r#"{{"value":{}}}"#, 100 + index)),
            ip: Some("192.0.2.1".to_owned()),
        };
        let stored = store.append_audit(&entry).await.unwrap();
        assert_eq!(stored.entry, entry);
        appended.push(stored);
    }
    let all = store.list_audit(&AuditQuery { limit: 10, ..AuditQuery::default() }).await.unwrap();
    assert_eq!(
        all.iter().map(|entry| entry.id).collect::<Vec<_>>(),
        appended.iter().rev().map(|entry| entry.id).collect::<Vec<_>>()
    );
    let challenges = store
        .list_audit(&AuditQuery { target_type: Some("challenge".to_owned()), limit: 10, ..AuditQuery::default() })
        .await
        .unwrap();
    assert_eq!(challenges.len(), 2);
    let page = store
        .list_audit(&AuditQuery { before_id: Some(appended[2].id), limit: 1, ..AuditQuery::default() })
        .await
        .unwrap();
    assert_eq!(page, vec![appended[1].clone()]);
    let by_target = store
        .list_audit(&AuditQuery {
            target_type: Some("challenge".to_owned()),
            target_id: Some("0".to_owned()),
            actor_id: Some(admin),
            ..AuditQuery { limit: 5, ..AuditQuery::default() }
        })
        .await
        .unwrap();
    assert_eq!(by_target, vec![appended[0].clone()]);
    // Deleting the actor keeps the entry (actor_id becomes NULL, the name stays).
    store.delete_user(admin).await.unwrap();
    let kept = store.list_audit(&AuditQuery { limit: 10, ..AuditQuery::default() }).await.unwrap();
    assert_eq!(kept.len(), 3);
    assert!(kept.iter().all(|entry| entry.entry.actor_id.is_none() && entry.entry.actor_name == "auditor"));
}

pub(super) async fn action_logs_cheat_events_and_records(store: &Store) {
    let account = fixtures::team_account(store, "loggers").await;
    let victim = fixtures::team_account(store, "victims").await;
    let team_id = fixtures::team_of(account);
    let challenge_id = fixtures::challenge(store, "logged", 10).await;
    let log = NewActionLog {
        user_id: Some(account.user_id),
        team_id: Some(team_id),
        challenge_id: Some(challenge_id),
        action_type: 3,
        action_detail: "correct flag".to_owned(),
        topic_name: Some("web".to_owned()),
    };
    store.append_action_log(&log).await.unwrap();
    store
        .append_action_log(&NewActionLog { user_id: Some(victim.user_id), team_id: victim.team_id, ..log.clone() })
        .await
        .unwrap();
    let team_logs = store.list_action_logs(Some(team_id), None, 10).await.unwrap();
    assert_eq!(team_logs.len(), 1);
    assert_eq!(team_logs[0].log, log);
    assert_eq!(store.list_action_logs(None, None, 10).await.unwrap().len(), 2);

    let event = NewCheatEvent {
        challenge_id,
        submitting_team_id: Some(team_id),
        submitting_user_id: Some(account.user_id),
        owner_team_id: victim.team_id,
        provided: "flag{victim}".to_owned(),
        ip: None,
    };
    store.record_cheat_event(&event).await.unwrap();
    let events = store.list_cheat_events(Some(challenge_id)).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event, event);

    let notification = NewNotification {
        title: "hello".to_owned(),
        content: "world".to_owned(),
        kind: "toast".to_owned(),
        sound: true,
        ..NewNotification::default()
    };
    let first = store.create_notification(&notification).await.unwrap();
    let second = store.create_notification(&NewNotification { sound: false, ..notification.clone() }).await.unwrap();
    let since_first = store.list_notifications(first).await.unwrap();
    assert_eq!(since_first.len(), 1);
    assert_eq!((since_first[0].id, since_first[0].notification.sound), (second, false));
    assert!(store.delete_notification(first).await.unwrap());
    assert_eq!(
        store.list_notifications(0).await.unwrap()[0].notification,
        NewNotification { sound: false, ..notification }
    );

    let ticket = NewTicket {
        author_id: account.user_id,
        title: "help".to_owned(),
        kind: "Question".to_owned(),
        description: "how?".to_owned(),
    };
    let answered = store.create_ticket(&ticket).await.unwrap();
    let open = store.create_ticket(&ticket).await.unwrap();
    assert_eq!((answered.status.as_str(), &answered.ticket), ("open", &ticket));
    assert!(store.reply_ticket(answered.id, victim.user_id, "like this", "closed").await.unwrap());
    assert!(!store.delete_open_ticket(answered.id, account.user_id).await.unwrap(), "answered tickets stay");
    assert!(!store.delete_open_ticket(open.id, victim.user_id).await.unwrap(), "only the author deletes");
    assert!(store.delete_open_ticket(open.id, account.user_id).await.unwrap());
    let remaining = store.list_tickets(Some(account.user_id)).await.unwrap();
    assert_eq!(remaining.len(), 1);
    assert_eq!(remaining[0].replier_message.as_deref(), Some("like this"));
    assert_eq!(store.get_ticket(answered.id).await.unwrap(), remaining[0]);

    let version = store.add_challenge_version(challenge_id, "registry/logged:1", Some(8080), None).await.unwrap();
    store.add_challenge_version(challenge_id, "registry/logged:2", None, Some(account.user_id)).await.unwrap();
    let versions = store.list_challenge_versions(challenge_id).await.unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[1], version);
    store.append_deploy_history(challenge_id, Some(version.id), "DEPLOY_SUCCEEDED", Some("wf-1"), None).await.unwrap();
    let history = store.list_deploy_history(challenge_id).await.unwrap();
    assert_eq!((history[0].status.as_str(), history[0].version_id), ("DEPLOY_SUCCEEDED", Some(version.id)));

    let awards = store.list_awards(None, Some(account.user_id)).await.unwrap();
    assert!(awards.is_empty());
}
