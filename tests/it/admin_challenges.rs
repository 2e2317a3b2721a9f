//! The CTFd contract of challenges and their children as ctfcli relies on it (admin-api §1,
//! §2.2–2.7, §4.2): the 3.7 read shape (D1), unique names (D4), type changes (D6), children in
//! insertion order, flag data round trips, topic links, hint unlocks that survive a sync (D7),
//! multipart uploads with sha1 and downloads.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use fctf::domain::HintId;
use fctf::store::{Account, NewUnlock, UnlockOutcome};
use serde_json::{Value, json};

use crate::admin_support::{AdminApi, on_both_databases};

async fn create(api: &AdminApi, body: Value) -> i64 {
    api.ok(Method::POST, "/api/v1/challenges", Some(&body)).await["id"].as_i64().unwrap()
}

async fn read_shape_follows_ctfd_3_7(api: AdminApi) {
    let id = create(
        &api,
        json!({"name": "std", "category": "web", "description": "d", "attribution": "a", "type": "standard",
               "state": "hidden", "value": 100, "max_attempts": 0, "connection_info": null, "position": 2,
               "unknown": {"ignored": true}}),
    )
    .await;
    let detail = api.ok(Method::GET, &format!("/api/v1/challenges/{id}?view=admin"), None).await;
    for key in [
        "id",
        "name",
        "value",
        "description",
        "attribution",
        "connection_info",
        "next_id",
        "category",
        "state",
        "max_attempts",
        "type",
        "files",
    ] {
        assert!(detail.get(key).is_some(), "{key} missing: {detail}");
    }
    for key in ["logic", "initial", "decay", "minimum", "function"] {
        assert!(detail.get(key).is_none(), "{key} must be left out: {detail}");
    }
    assert_eq!(detail["state"], "hidden");
    assert_eq!(detail["files"], json!([]));
    let duplicate = api.admin(Method::POST, "/api/v1/challenges", Some(&json!({"name": "std", "value": 1}))).await;
    assert_eq!(duplicate.status, StatusCode::BAD_REQUEST);
    assert!(duplicate.body["errors"]["name"].is_array(), "{}", duplicate.body);

    let dynamic = create(
        &api,
        json!({"name": "dyn", "type": "dynamic", "value": 500, "initial": 500, "decay": 10, "minimum": 100, "logic": "all"}),
    )
    .await;
    let detail = api.ok(Method::GET, &format!("/api/v1/challenges/{dynamic}"), None).await;
    assert_eq!((detail["value"].clone(), detail["initial"].clone()), (json!(500), json!(500)));
    assert_eq!(detail["function"], "logarithmic");
    assert_eq!(detail["logic"], "all");
    // D6: switching to standard stops the decay and keeps the value.
    let switched =
        api.ok(Method::PATCH, &format!("/api/v1/challenges/{dynamic}"), Some(&json!({"type": "standard"}))).await;
    assert!(switched.get("initial").is_none(), "{switched}");
    assert_eq!(switched["value"], 500);
    let missing =
        api.admin(Method::PATCH, &format!("/api/v1/challenges/{id}"), Some(&json!({"type": "dynamic"}))).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);

    // Requirements and next (ctfcli's PATCHes) round-trip.
    let requirements = json!({"requirements": {"prerequisites": [id], "anonymize": false}});
    api.ok(Method::PATCH, &format!("/api/v1/challenges/{dynamic}"), Some(&requirements)).await;
    let stored = api.ok(Method::GET, &format!("/api/v1/challenges/{dynamic}/requirements"), None).await;
    assert_eq!(stored, json!({"prerequisites": [id], "anonymize": false}));
    api.ok(Method::PATCH, &format!("/api/v1/challenges/{dynamic}"), Some(&json!({"next_id": id}))).await;
    let cleared =
        api.ok(Method::PATCH, &format!("/api/v1/challenges/{dynamic}"), Some(&json!({"next_id": null}))).await;
    assert_eq!(cleared["next_id"], Value::Null);
    let unknown =
        api.admin(Method::PATCH, &format!("/api/v1/challenges/{dynamic}"), Some(&json!({"next_id": 424242}))).await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert!(unknown.body["errors"]["next_id"].is_array());
    let own = api
        .admin(
            Method::PATCH,
            &format!("/api/v1/challenges/{id}"),
            Some(&json!({"requirements": {"prerequisites": [id]}})),
        )
        .await;
    assert_eq!(own.status, StatusCode::BAD_REQUEST);
    let list = api.ok(Method::GET, "/api/v1/challenges?view=admin", None).await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    let filtered = api.ok(Method::GET, "/api/v1/challenges?view=admin&category=web", None).await;
    assert_eq!(filtered.as_array().unwrap().len(), 1);
    assert_eq!(api.ok(Method::GET, &format!("/api/v1/challenges/{id}/requirements"), None).await, Value::Null);
    // fctf's deployment fields ride on the same endpoints.
    let deploy = json!({"require_deploy": true, "image": "registry/chal:1", "exposed_port": 8080,
                        "connection_protocol": "tcp", "time_limit": 30, "cpu_limit": 500, "memory_limit": 256,
                        "use_gvisor": true, "max_deploy_count": 3});
    let updated = api.ok(Method::PATCH, &format!("/api/v1/challenges/{id}"), Some(&deploy)).await;
    assert_eq!(updated["image"], "registry/chal:1");
    assert_eq!(updated["connection_protocol"], "tcp");
    assert_eq!(updated["time_limit"], 30);
    let bad = api.admin(Method::PATCH, &format!("/api/v1/challenges/{id}"), Some(&json!({"image": null}))).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "a deployable challenge needs an image");
    let non_numeric = api.admin(Method::GET, "/api/v1/challenges/abc", None).await;
    assert_eq!(non_numeric.status, StatusCode::NOT_FOUND);
    api.ok(Method::DELETE, &format!("/api/v1/challenges/{dynamic}"), None).await;
    assert_eq!(
        api.admin(Method::GET, &format!("/api/v1/challenges/{dynamic}"), None).await.status,
        StatusCode::NOT_FOUND
    );
}

async fn children_keep_order_and_data(api: AdminApi) {
    let id = create(&api, json!({"name": "kids", "value": 1})).await;
    for (content, data) in [(" fctf{a} ", Value::Null), ("fctf{b}", json!("")), ("fctf{c}", json!("case_insensitive"))]
    {
        let body = json!({"challenge_id": id, "type": "static", "content": content, "data": data});
        api.ok(Method::POST, "/api/v1/flags", Some(&body)).await;
    }
    let flags = api.ok(Method::GET, &format!("/api/v1/challenges/{id}/flags"), None).await;
    let flags = flags.as_array().unwrap();
    assert_eq!(flags[0]["content"], "fctf{a}", "static content is trimmed");
    assert_eq!(
        (flags[0]["data"].clone(), flags[1]["data"].clone(), flags[2]["data"].clone()),
        (Value::Null, json!(""), json!("case_insensitive"))
    );
    assert!(flags.windows(2).all(|pair| pair[0]["id"].as_i64() < pair[1]["id"].as_i64()));
    let bad = api
        .admin(Method::POST, "/api/v1/flags", Some(&json!({"challenge_id": id, "content": "x", "data": "sometimes"})))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let orphan = api.admin(Method::POST, "/api/v1/flags", Some(&json!({"challenge_id": 9999, "content": "x"}))).await;
    assert_eq!(orphan.status, StatusCode::BAD_REQUEST);

    for tag in ["b", "a"] {
        api.ok(Method::POST, "/api/v1/tags", Some(&json!({"challenge_id": id, "value": tag}))).await;
    }
    let tags: Vec<Value> = api.ok(Method::GET, "/api/v1/tags", None).await.as_array().unwrap().clone();
    assert_eq!(tags.iter().map(|tag| tag["value"].clone()).collect::<Vec<_>>(), vec![json!("b"), json!("a")]);

    let link = api
        .ok(Method::POST, "/api/v1/topics", Some(&json!({"value": "crypto", "type": "challenge", "challenge_id": id})))
        .await;
    let other = create(&api, json!({"name": "other", "value": 1})).await;
    api.ok(
        Method::POST,
        "/api/v1/topics",
        Some(&json!({"value": "crypto", "type": "challenge", "challenge_id": other})),
    )
    .await;
    assert_eq!(api.ok(Method::GET, "/api/v1/topics", None).await.as_array().unwrap().len(), 1, "the topic is shared");
    let links = api.ok(Method::GET, &format!("/api/v1/challenges/{id}/topics"), None).await;
    assert_eq!(links[0]["id"], link["id"]);
    assert_eq!(links[0]["value"], "crypto");
    let wrong_type = api
        .admin(Method::POST, "/api/v1/topics", Some(&json!({"value": "x", "type": "page", "challenge_id": id})))
        .await;
    assert_eq!(wrong_type.status, StatusCode::BAD_REQUEST);
    let deleted =
        api.admin(Method::DELETE, &format!("/api/v1/topics?type=challenge&target_id={}", link["id"]), None).await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert_eq!(deleted.body, json!({"success": true}));
    assert_eq!(api.ok(Method::GET, &format!("/api/v1/challenges/{id}/topics"), None).await, json!([]));
    let again =
        api.admin(Method::DELETE, &format!("/api/v1/topics?type=challenge&target_id={}", link["id"]), None).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    assert_eq!(
        api.ok(Method::GET, &format!("/api/v1/challenges/{other}/topics"), None).await.as_array().unwrap().len(),
        1
    );
    assert_eq!(api.ok(Method::GET, "/api/v1/solutions", None).await, json!([]));
}

/// What `ctf challenge sync` does to hints: list all, delete the challenge's, recreate them.
async fn sync_hints(api: &AdminApi, challenge: i64, hints: &[Value]) -> Vec<i64> {
    for hint in api.ok(Method::GET, "/api/v1/hints", None).await.as_array().unwrap() {
        if hint["challenge_id"] == challenge {
            api.ok(Method::DELETE, &format!("/api/v1/hints/{}", hint["id"]), None).await;
        }
    }
    let mut ids = Vec::new();
    for hint in hints {
        let mut body = hint.clone();
        body["challenge_id"] = json!(challenge);
        let chained = body.get("requirements").is_some();
        let content = body["content"].clone();
        if chained {
            body["content"] = json!("");
        }
        let requirements = body.as_object_mut().unwrap().remove("requirements");
        let id = api.ok(Method::POST, "/api/v1/hints", Some(&body)).await["id"].as_i64().unwrap();
        if let Some(requirements) = requirements {
            let prerequisites: Vec<i64> =
                requirements.as_array().unwrap().iter().map(|index| ids[index.as_u64().unwrap() as usize]).collect();
            api.ok(
                Method::PATCH,
                &format!("/api/v1/hints/{id}"),
                Some(&json!({"requirements": {"prerequisites": prerequisites}})),
            )
            .await;
            api.ok(Method::PATCH, &format!("/api/v1/hints/{id}"), Some(&json!({"content": content}))).await;
        }
        ids.push(id);
    }
    ids
}

async fn unlocks_survive_a_sync_that_recreates_unchanged_hints(api: AdminApi) {
    let challenge = create(&api, json!({"name": "hinted", "value": 100})).await;
    let hints = [
        json!({"content": "free", "title": "", "cost": 0}),
        json!({"content": "paid", "title": "Paid", "cost": 30}),
        json!({"content": "chained", "title": "", "cost": 10, "requirements": [1]}),
    ];
    let first = sync_hints(&api, challenge, &hints).await;
    let account = Account { user_id: api.player.id, team_id: Some(api.team) };
    for hint in &first[1..] {
        let outcome = api
            .store
            .unlock_hint(&NewUnlock { hint_id: HintId(*hint), account, require_affordable: false })
            .await
            .unwrap();
        assert!(matches!(outcome, UnlockOutcome::Unlocked { .. }), "{outcome:?}");
    }
    let chained = api.ok(Method::GET, &format!("/api/v1/hints/{}", first[2]), None).await;
    assert_eq!(chained["requirements"], json!({"prerequisites": [first[1]]}));

    let second = sync_hints(&api, challenge, &hints).await;
    assert!(second.iter().all(|id| !first.contains(id)), "a sync gives new hint ids");
    let unlocked: Vec<HintId> =
        api.store.list_unlocks(account).await.unwrap().iter().map(|unlock| unlock.hint_id).collect();
    assert_eq!(unlocked, vec![HintId(second[1]), HintId(second[2])], "the unlocks follow the recreated hints");
    let awards = api.store.list_awards(Some(api.team), None).await.unwrap();
    assert_eq!(awards.len(), 2, "nothing is charged twice");
    let again = api
        .store
        .unlock_hint(&NewUnlock { hint_id: HintId(second[1]), account, require_affordable: false })
        .await
        .unwrap();
    assert_eq!(again, UnlockOutcome::AlreadyUnlocked);

    // A changed hint does not inherit the unlocks of a different one.
    let changed =
        [hints[0].clone(), json!({"content": "paid, reworded", "title": "Paid", "cost": 30}), hints[2].clone()];
    let third = sync_hints(&api, challenge, &changed).await;
    let unlocked: Vec<HintId> =
        api.store.list_unlocks(account).await.unwrap().iter().map(|unlock| unlock.hint_id).collect();
    assert!(!unlocked.contains(&HintId(third[1])));
    assert!(unlocked.contains(&HintId(third[2])));
    let listed = api.ok(Method::GET, "/api/v1/hints", None).await;
    assert!(listed.as_array().unwrap().iter().all(|hint| hint.get("content").is_none()), "the list is the locked view");
    assert_eq!(listed.as_array().unwrap().len(), 3);
}

async fn files_upload_with_sha1_and_download(api: AdminApi) {
    let id = create(&api, json!({"name": "files", "value": 1})).await;
    let token = api.admin.token.clone();
    let challenge = id.to_string();
    let stored = api
        .upload(
            &token,
            &[("challenge_id", &challenge), ("type", "challenge")],
            &[("a b.txt", b"alpha"), ("bin", &[0, 1, 2, 255])],
        )
        .await;
    assert_eq!(stored.status, StatusCode::OK, "{}", stored.body);
    let files = stored.data().as_array().unwrap().clone();
    assert_eq!(files.len(), 2);
    let location = files[0]["location"].as_str().unwrap().to_owned();
    let (directory, name) = location.split_once('/').unwrap();
    assert_eq!((directory.len(), name), (32, "a b.txt"));
    assert_eq!(files[0]["sha1sum"], "be76331b95dfc399cd776d2fc68021e0db03cc4f");
    let detail = api.ok(Method::GET, &format!("/api/v1/challenges/{id}"), None).await;
    assert_eq!(detail["files"][0], format!("/files/{location}"));
    let listed = api.ok(Method::GET, "/api/v1/files?type=challenge", None).await;
    assert_eq!(listed.as_array().unwrap().len(), 2);

    let url = format!("/files/{directory}/a%20b.txt");
    let download =
        Request::builder().uri(&url).header("authorization", format!("Token {token}")).body(Body::empty()).unwrap();
    let answer = api.router.clone();
    let response = tower::ServiceExt::oneshot(answer, download).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-disposition"].to_str().unwrap().contains("a%20b.txt"));
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    assert_eq!(&bytes[..], b"alpha");
    assert_eq!(api.call(Method::GET, &url, None, None).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(api.call(Method::GET, &url, Some(&api.player.token), None).await.status, StatusCode::FORBIDDEN);

    // Re-uploading to a location replaces that row and file; siblings stay.
    let replaced = api
        .upload(
            &token,
            &[("challenge_id", &challenge), ("type", "challenge"), ("location", &location)],
            &[("a b.txt", b"beta")],
        )
        .await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.body);
    assert_eq!(replaced.data()[0]["id"], files[0]["id"]);
    assert_eq!(api.ok(Method::GET, "/api/v1/files", None).await.as_array().unwrap().len(), 2);
    let on_disk = api.data_dir.path().join("files").join(&location);
    assert_eq!(std::fs::read(&on_disk).unwrap(), b"beta");

    let two =
        api.upload(&token, &[("type", "page"), ("location", "media/x.png")], &[("x.png", b"x"), ("y.png", b"y")]).await;
    assert_eq!(two.status, StatusCode::BAD_REQUEST);
    assert!(two.body["errors"]["location"].is_array());
    let bad = api.upload(&token, &[("type", "page"), ("location", "media/sub/x.png")], &[("x.png", b"x")]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let none = api.upload(&token, &[("type", "page")], &[]).await;
    assert_eq!(none.status, StatusCode::BAD_REQUEST);
    let no_challenge = api.upload(&token, &[("type", "challenge")], &[("x", b"x")]).await;
    assert_eq!(no_challenge.status, StatusCode::BAD_REQUEST);
    let media = api.upload(&token, &[("type", "page"), ("location", "media/logo.png")], &[("logo.png", b"png")]).await;
    assert_eq!(media.data()[0]["location"], "media/logo.png");
    assert!(
        std::fs::read_dir(api.data_dir.path().join("files/.incoming")).unwrap().next().is_none(),
        "no temporary files are left"
    );

    api.ok(Method::DELETE, &format!("/api/v1/files/{}", files[0]["id"]), None).await;
    assert!(!on_disk.exists());
    assert_eq!(api.call(Method::GET, &url, Some(&token), None).await.status, StatusCode::NOT_FOUND);
    // Deleting the challenge removes its remaining file from disk.
    let second = api.data_dir.path().join("files").join(files[1]["location"].as_str().unwrap());
    assert!(second.exists());
    api.ok(Method::DELETE, &format!("/api/v1/challenges/{id}"), None).await;
    assert!(!second.exists());
    assert!(api.data_dir.path().join("files/media/logo.png").exists());
}

on_both_databases! {
    read_shape => read_shape_follows_ctfd_3_7,
    children => children_keep_order_and_data,
    unlocks_survive_sync => unlocks_survive_a_sync_that_recreates_unchanged_hints,
    files => files_upload_with_sha1_and_download,
}
