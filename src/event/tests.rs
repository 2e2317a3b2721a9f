//! Event configuration parsing and validation.

use std::collections::BTreeMap;

use super::*;

fn config(pairs: &[(&str, &str)]) -> EventConfig {
    EventConfig::from_map(pairs.iter().map(|(key, value)| ((*key).to_owned(), (*value).to_owned())).collect())
}

#[test]
fn defaults_follow_the_contract_with_fctf_decisions() {
    let defaults = EventConfig::default();
    assert_eq!(defaults.ctf_name, "CTF");
    assert_eq!(defaults.user_mode, UserMode::Teams);
    assert_eq!(defaults.limit_challenges, 3);
    assert_eq!(defaults.incorrect_submissions_per_min, 10);
    assert!(!defaults.captain_only_start_challenge && !defaults.captain_only_submit_challenge);
    assert_eq!(defaults.score_visibility, ScoreVisibility::Public);
    assert!(defaults.reject_shared_dynamic_flags);
    assert!(defaults.is_running(1_000));
}

#[test]
fn values_are_typed_and_malformed_ones_read_as_defaults() {
    let parsed = config(&[
        ("start", "100"),
        ("end", "200"),
        ("paused", "1"),
        ("view_after_ctf", "TRUE"),
        ("user_mode", "users"),
        ("limit_challenges", "many"),
        ("hidden_categories", "Web\r\n  Crypto \n\n"),
        ("score_visibility", "private"),
        ("challenge_difficulty_visibility", "enabled"),
        ("ctf_name", "  "),
    ]);
    assert_eq!((parsed.start, parsed.end), (100, 200));
    assert!(parsed.paused && parsed.view_after_ctf);
    assert_eq!(parsed.user_mode, UserMode::Users);
    assert_eq!(parsed.limit_challenges, 3);
    assert!(parsed.is_category_hidden(" web ") && parsed.is_category_hidden("CRYPTO"));
    assert!(!parsed.is_category_hidden("pwn"));
    assert_eq!(parsed.score_visibility, ScoreVisibility::Private);
    assert!(parsed.challenge_difficulty_visibility);
    assert_eq!(parsed.ctf_name, "CTF");
}

#[test]
fn time_window_predicates() {
    let window = config(&[("start", "100"), ("end", "200")]);
    assert!(!window.is_running(100) && window.is_running(101) && !window.is_running(200));
    assert!(window.has_started(101) && !window.has_started(100));
    assert!(window.has_ended(201) && !window.has_ended(200));
    let open_ended = config(&[("start", "100")]);
    assert!(open_ended.is_running(1_000_000) && !open_ended.has_ended(1_000_000));
    let frozen = config(&[("freeze", "150")]);
    assert!(frozen.is_frozen(150) && !frozen.is_frozen(149));
    let iso = config(&[("start", "2026-01-01T00:00:00Z")]);
    assert_eq!(iso.start, 1_767_225_600);
}

#[test]
fn validation_names_the_problem() {
    assert!(validate_value("start", "1700000000").is_ok());
    assert!(validate_value("start", "yesterday").is_err());
    assert!(validate_value("paused", "maybe").is_err());
    assert!(validate_value("user_mode", "clans").is_err());
    assert!(validate_value("limit_challenges", "-1").is_err());
    assert!(validate_value("anything_else", "free text").is_ok());
    assert!(validate_value("ctf_description", &"x".repeat(70_000)).is_err());
}

#[tokio::test]
async fn updates_are_validated_atomically_and_visible_to_other_processes() {
    let store = crate::store::Store::connect_sqlite("sqlite::memory:", 1).await.unwrap();
    store.migrate().await.unwrap();
    let cache = Cache::memory("t:");
    let first = EventSettings::load(store.clone(), cache.clone()).await.unwrap();
    let second = EventSettings::load(store.clone(), cache.clone()).await.unwrap();
    let token = CancellationToken::new();
    let _refresher = second.spawn_refresher(token.clone());
    tokio::time::sleep(Duration::from_millis(50)).await;

    let mut bad = BTreeMap::new();
    bad.insert("ctf_name".to_owned(), Some("Finals".to_owned()));
    bad.insert("paused".to_owned(), Some("perhaps".to_owned()));
    let Err(UpdateError::Invalid(problems)) = first.update(&bad).await else { panic!("invalid update accepted") };
    assert_eq!(problems.keys().collect::<Vec<_>>(), vec!["paused"]);
    assert_eq!(first.current().ctf_name, "CTF", "nothing was written");

    let mut good = BTreeMap::new();
    good.insert("ctf_name".to_owned(), Some("Finals".to_owned()));
    good.insert("paused".to_owned(), Some("true".to_owned()));
    first.update(&good).await.unwrap();
    assert_eq!(first.current().ctf_name, "Finals");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while second.current().ctf_name != "Finals" {
        assert!(tokio::time::Instant::now() < deadline, "the change signal did not reach the other handle");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(second.current().paused);

    let mut delete = BTreeMap::new();
    delete.insert("paused".to_owned(), None);
    first.update(&delete).await.unwrap();
    assert!(!first.current().paused);
    token.cancel();
}
