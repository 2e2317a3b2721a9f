//! `fctf challenge import` is idempotent and reports per file; `fctf event export` then
//! `import` into an empty data directory reproduces the event record by record (and file by
//! file), on SQLite, on PostgreSQL and from one to the other.

use std::path::{Path, PathBuf};

use axum::http::Method;
use fctf::domain::{ChallengeId, HintId};
use fctf::import::{Action, EventError, export_event, import_challenges, import_event};
use fctf::store::{Account, NewUnlock, Store};
use serde_json::json;

use crate::admin_support::{AdminApi, Db, on_both_databases};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ctfcli/challenges")
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

async fn import(api: &AdminApi, paths: &[PathBuf]) -> Vec<fctf::import::FileReport> {
    let mut progress = Vec::new();
    let reports = import_challenges(&api.store, api.data_dir.path(), paths, &mut progress).await;
    let progress = String::from_utf8(progress).unwrap();
    assert!(progress.contains("[1/"), "{progress}");
    reports
}

async fn importing_twice_leaves_one_copy(api: AdminApi) {
    let source = tempfile::tempdir().unwrap();
    copy_tree(&fixtures(), source.path());
    let first = import(&api, &[source.path().to_path_buf()]).await;
    assert_eq!(first.len(), 5);
    assert!(first.iter().all(|report| matches!(report.outcome, Ok(Action::Created))), "{first:?}");
    let after_first = api.snapshot().await;
    let second = import(&api, &[source.path().to_path_buf()]).await;
    assert!(second.iter().all(|report| matches!(report.outcome, Ok(Action::Unchanged))), "{second:?}");
    assert_eq!(api.snapshot().await, after_first, "a second import changes nothing");

    let challenges = api.ok(Method::GET, "/api/v1/challenges?view=admin", None).await;
    assert_eq!(challenges.as_array().unwrap().len(), 5);
    let kinds = api.store.get_challenge_by_name("Flag Kinds").await.unwrap().unwrap();
    let warmup = api.store.get_challenge_by_name("Warmup").await.unwrap().unwrap();
    let bundle = api.store.get_challenge_by_name("File Bundle").await.unwrap().unwrap();
    assert_eq!(kinds.spec.next_id, Some(bundle.id), "next resolved by name within the batch");
    let requirements: serde_json::Value = serde_json::from_str(bundle.spec.requirements.as_deref().unwrap()).unwrap();
    assert_eq!(requirements["anonymize"], true);
    assert_eq!(requirements["prerequisites"].as_array().unwrap().len(), 2);
    let dynamic = api.store.get_challenge_by_name("Dynamic Decay").await.unwrap().unwrap();
    assert_eq!(dynamic.spec.state.as_str(), "hidden");
    assert_eq!((dynamic.spec.initial, dynamic.spec.decay, dynamic.spec.minimum), (Some(500), Some(15), Some(100)));
    assert_eq!(warmup.spec.max_attempts, 5);
    assert!(dynamic.spec.deploy.require_deploy && dynamic.spec.deploy.shared_instance, "deploy: is read");
    let web = api.store.get_challenge_by_name("Instance Web").await.unwrap().unwrap();
    assert_eq!((web.spec.deploy.require_deploy, web.spec.deploy.time_limit_minutes), (true, Some(30)), "extra too");

    // The write-up's image is a solution file and the stored text links to it.
    let image = std::fs::read(source.path().join("file-bundle/solution/diagram.png")).unwrap();
    let solution_file = || async {
        let files = api.ok(Method::GET, "/api/v1/files?type=solution", None).await;
        assert_eq!(files.as_array().unwrap().len(), 1, "{files}");
        files[0].clone()
    };
    let stored_image = solution_file().await;
    assert_eq!(stored_image["sha1sum"], fctf::api::admin::storage::sha1_hex(&image));
    let location = stored_image["location"].as_str().unwrap().to_owned();
    assert!(location.ends_with("/diagram.png"), "{location}");
    let solutions = api.ok(Method::GET, "/api/v1/solutions", None).await;
    assert_eq!(solutions[0]["state"], "visible");
    assert!(solutions[0]["content"].as_str().unwrap().ends_with(&format!("![diagram](/files/{location})\n")));
    let download = api.admin(Method::GET, &format!("/files/{location}"), None).await;
    assert_eq!(download.status, axum::http::StatusCode::OK);
    let flags = api.store.list_flags(Some(kinds.id)).await.unwrap();
    assert_eq!(flags.len(), 3);
    assert_eq!(flags[2].flag.kind, "regex");

    // A player unlocks a paid hint; an edit elsewhere in the file keeps the unlock.
    let account = Account { user_id: api.player.id, team_id: Some(api.team) };
    let paid = api.store.list_hints(Some(kinds.id)).await.unwrap()[1].id;
    api.store.unlock_hint(&NewUnlock { hint_id: paid, account, require_affordable: false }).await.unwrap();
    let yml = source.path().join("flag-kinds/challenge.yml");
    let text = std::fs::read_to_string(&yml)
        .unwrap()
        .replace("fctf{exact}", "fctf{exact2}")
        .replace("Free nudge", "Free hint");
    std::fs::write(&yml, text).unwrap();
    std::fs::write(source.path().join("warmup/dist/note.txt"), "changed\n").unwrap();
    let third = import(&api, &[source.path().to_path_buf()]).await;
    let outcome =
        |name: &str| third.iter().find(|report| report.name.as_deref() == Some(name)).unwrap().outcome.clone();
    assert_eq!(outcome("Flag Kinds").unwrap(), Action::Updated);
    assert_eq!(outcome("Warmup").unwrap(), Action::Updated);
    assert_eq!(outcome("File Bundle").unwrap(), Action::Unchanged);

    // A changed image is rewritten in place: same location, new content, no second file.
    std::fs::write(source.path().join("file-bundle/solution/diagram.png"), b"new diagram").unwrap();
    let fourth = import(&api, &[source.path().join("file-bundle")]).await;
    assert_eq!(fourth[0].outcome.clone().unwrap(), Action::Updated);
    let replaced = solution_file().await;
    assert_eq!(replaced["location"], location.as_str());
    assert_eq!(replaced["sha1sum"], fctf::api::admin::storage::sha1_hex(b"new diagram"));
    assert_eq!(api.store.list_flags(Some(kinds.id)).await.unwrap()[0].flag.content, "fctf{exact2}");
    let hints = api.store.list_hints(Some(kinds.id)).await.unwrap();
    let unlocked: Vec<HintId> =
        api.store.list_unlocks(account).await.unwrap().iter().map(|unlock| unlock.hint_id).collect();
    assert_eq!(unlocked, vec![hints[1].id], "the unchanged paid hint keeps its unlock");
    let files = api.ok(Method::GET, &format!("/api/v1/challenges/{}/files", warmup.id), None).await;
    assert_eq!(files.as_array().unwrap().len(), 1);
    assert_eq!(files[0]["sha1sum"], fctf::api::admin::storage::sha1_hex(b"changed\n"));

    // One bad file does not stop the batch, and each file gets its own report.
    let broken = source.path().join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(broken.join("challenge.yml"), "name: Broken\nvalue: ten\nflags: [a]\n").unwrap();
    let invalid_yaml = source.path().join("invalid");
    std::fs::create_dir_all(&invalid_yaml).unwrap();
    std::fs::write(invalid_yaml.join("challenge.yml"), "name: [unclosed\n").unwrap();
    let reports = import(&api, &[source.path().to_path_buf(), PathBuf::from("/does/not/exist")]).await;
    assert_eq!(reports.len(), 8);
    let failed: Vec<_> = reports.iter().filter(|report| report.outcome.is_err()).collect();
    assert_eq!(failed.len(), 3, "{reports:?}");
    let broken_report = reports.iter().find(|report| report.path.ends_with("broken/challenge.yml")).unwrap();
    assert!(format!("{:?}", broken_report.outcome).contains("value"), "{broken_report:?}");
    let mut printed = Vec::new();
    assert_eq!(fctf::import::write_report(&reports, &mut printed), 3);
    assert!(String::from_utf8(printed).unwrap().contains("8 challenge file(s): 5 imported, 3 failed"));
    assert!(api.store.get_challenge_by_name("Broken").await.unwrap().is_none());
    assert_eq!(api.ok(Method::GET, "/api/v1/challenges?view=admin", None).await.as_array().unwrap().len(), 5);
}

/// An event with a bit of everything: challenges with files and hints, accounts, solves,
/// unlocks, awards, settings, pages, notifications, tickets and the audit log.
async fn populate(api: &AdminApi) {
    let reports = import(api, &[fixtures()]).await;
    assert!(reports.iter().all(|report| report.outcome.is_ok()), "{reports:?}");
    api.ok(
        Method::PATCH,
        "/api/v1/configs",
        Some(&json!({"ctf_name": "Round Trip", "start": 100, "hidden_categories": "a\nb"})),
    )
    .await;
    let field = api.ok(Method::POST, "/api/v1/configs/fields", Some(&json!({"name": "School", "type": "team"}))).await;
    api.ok(
        Method::PATCH,
        &format!("/api/v1/teams/{}", api.team),
        Some(&json!({"fields": [{"field_id": field["id"], "value": "é 😀"}], "captain_id": api.player.id})),
    )
    .await;
    let warmup = api.store.get_challenge_by_name("Warmup").await.unwrap().unwrap();
    let dynamic = api.store.get_challenge_by_name("Dynamic Decay").await.unwrap().unwrap();
    let account = Account { user_id: api.player.id, team_id: Some(api.team) };
    api.store.record_solve(warmup.id, account, "fctf{warm_up}", Some("10.0.0.1")).await.unwrap();
    api.store.record_solve(dynamic.id, account, "fctf{decay}", None).await.unwrap();
    let hint = api.store.list_hints(Some(dynamic.id)).await.unwrap()[0].id;
    api.store.unlock_hint(&NewUnlock { hint_id: hint, account, require_affordable: true }).await.unwrap();
    api.ok(Method::POST, "/api/v1/awards", Some(&json!({"user_id": api.player.id, "name": "early bird", "value": 5})))
        .await;
    api.ok(
        Method::POST,
        "/api/v1/submissions",
        Some(&json!({"challenge_id": warmup.id, "user_id": api.player.id, "provided": "x", "type": "incorrect"})),
    )
    .await;
    api.ok(Method::POST, "/api/v1/pages", Some(&json!({"route": "rules", "title": "Rules", "content": "Be nice"})))
        .await;
    api.upload(
        &api.admin.token,
        &[("type", "page"), ("location", "media/logo.png")],
        &[("logo.png", &[137, 80, 78, 71])],
    )
    .await;
    api.ok(Method::POST, "/api/v1/notifications", Some(&json!({"title": "Go", "content": "Started"}))).await;
    api.ok(Method::POST, "/api/v1/tokens", Some(&json!({"description": "ci"}))).await;
    api.store
        .create_ticket(&fctf::store::NewTicket {
            author_id: api.player.id,
            title: "Help".into(),
            kind: "Question".into(),
            description: "?".into(),
        })
        .await
        .unwrap();
    api.ok(Method::PATCH, &format!("/api/v1/challenges/{}", warmup.id), Some(&json!({"next_id": dynamic.id}))).await;
    api.store.record_user_ip(api.player.id, "10.0.0.1").await.unwrap();
}

async fn empty_store(db: Db) -> Option<(Store, Option<fctf::store::testing::TestDatabase>, tempfile::TempDir)> {
    let data_dir = tempfile::tempdir().unwrap();
    match db {
        Db::Sqlite => {
            let url = format!("sqlite://{}?mode=rwc", data_dir.path().join("fctf.db").display());
            let store = Store::connect_sqlite(&url, 4).await.unwrap();
            store.migrate().await.unwrap();
            Some((store, None, data_dir))
        }
        Db::Postgres => {
            let (store, database) = fctf::store::testing::fresh_postgres_store(4).await.unwrap()?;
            Some((store, Some(database), data_dir))
        }
    }
}

async fn round_trip(api: &AdminApi, target: Db) {
    let Some((store, _database, target_dir)) = empty_store(target).await else { return };
    let file = api.data_dir.path().join("event.json");
    let exported = export_event(&api.store, api.data_dir.path(), &file).await.unwrap();
    assert_eq!(exported.files, 5, "three challenge files, a write-up image and a page file");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600, "the export holds secrets");
    }
    assert!(exported.missing_files.is_empty());
    let imported = import_event(&store, target_dir.path(), &file).await.unwrap();
    assert_eq!((imported.rows, imported.files), (exported.rows, exported.files));
    let original = api.snapshot().await;
    let copy = store.dump_event_tables().await.unwrap();
    for (table, rows) in &original {
        assert_eq!(copy.get(table), Some(rows), "table {table} differs after the round trip");
    }
    assert_eq!(copy, original);
    for record in api.store.list_file_records().await.unwrap() {
        let location = &record.file.location;
        let before = std::fs::read(api.data_dir.path().join("files").join(location)).unwrap();
        let after = std::fs::read(target_dir.path().join("files").join(location)).unwrap();
        assert_eq!(before, after, "{location}");
    }
    // The imported event keeps working: new rows get fresh ids, the second import is refused.
    let next = store
        .create_challenge(&fctf::store::NewChallenge { name: "after import".into(), ..Default::default() })
        .await
        .unwrap();
    let highest = original["challenges"].rows.len() as i64;
    assert!(next.id > ChallengeId(highest), "{:?}", next.id);
    match import_event(&store, target_dir.path(), &file).await {
        Err(EventError::NotEmpty(_)) => {}
        other => panic!("a second import must be refused: {other:?}"),
    }
}

async fn export_then_import_reproduces_the_event(api: AdminApi) {
    populate(&api).await;
    let target = if api.store_is_postgres() { Db::Postgres } else { Db::Sqlite };
    round_trip(&api, target).await;
    // A document for another schema or a damaged file is refused before anything is written.
    let (store, _database, target_dir) = empty_store(target).await.unwrap();
    let (mut document, _) = fctf::import::event::snapshot(&api.store, api.data_dir.path()).await.unwrap();
    document.files[0].data = "bm90IHRoZSBmaWxl".into();
    assert!(matches!(
        fctf::import::event::restore(&store, target_dir.path(), &document).await,
        Err(EventError::Format(_))
    ));
    document.schema += 1;
    assert!(matches!(
        fctf::import::event::restore(&store, target_dir.path(), &document).await,
        Err(EventError::Format(_))
    ));
    assert_eq!(store.count_event_rows().await.unwrap(), 0);
}

on_both_databases! {
    challenge_import => importing_twice_leaves_one_copy,
    event_round_trip => export_then_import_reproduces_the_event,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_event_imports_into_postgres() {
    if std::env::var(fctf::store::testing::DATABASE_URL_VAR).is_err() {
        eprintln!("skipped: {} is not set", fctf::store::testing::DATABASE_URL_VAR);
        return;
    }
    let api = AdminApi::new(Db::Sqlite).await.unwrap();
    populate(&api).await;
    round_trip(&api, Db::Postgres).await;
}

impl AdminApi {
    fn store_is_postgres(&self) -> bool {
        format!("{:?}", self.store).contains("Postgres")
    }
}
