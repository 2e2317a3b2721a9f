//! Concurrent admin requests keep the invariants: one challenge per name, one solve per
//! account when submissions are re-judged at once, one topic per value, and an uploaded
//! file's row always describes the bytes on disk when uploads to one location race.

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use fctf::api::admin::storage::sha1_hex;
use serde_json::json;

use crate::admin_support::{AdminApi, on_both_databases};

const RACERS: usize = 8;

async fn race<F, Fut, T>(count: usize, task: F) -> Vec<T>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = (0..count).map(|index| tokio::spawn(task(index))).collect();
    let mut results = Vec::with_capacity(count);
    for handle in handles {
        results.push(handle.await.unwrap());
    }
    results
}

async fn concurrent_requests_keep_invariants(api: AdminApi) {
    let api = Arc::new(api);
    let statuses =
        race(RACERS, |_| {
            let api = api.clone();
            async move {
                api.admin(Method::POST, "/api/v1/challenges", Some(&json!({"name": "same", "value": 1}))).await.status
            }
        })
        .await;
    assert_eq!(statuses.iter().filter(|status| **status == StatusCode::OK).count(), 1, "{statuses:?}");
    assert!(
        statuses.iter().all(|status| *status == StatusCode::OK || *status == StatusCode::BAD_REQUEST),
        "{statuses:?}"
    );
    let challenge = api.ok(Method::GET, "/api/v1/challenges?name=same", None).await[0]["id"].as_i64().unwrap();

    let mut submissions = Vec::new();
    for index in 0..RACERS {
        let body = json!({"challenge_id": challenge, "user_id": api.player.id, "provided": format!("try {index}"), "type": "incorrect"});
        submissions.push(api.ok(Method::POST, "/api/v1/submissions", Some(&body)).await["id"].as_i64().unwrap());
    }
    let submissions = Arc::new(submissions);
    let statuses = race(RACERS, |index| {
        let (api, submissions) = (api.clone(), submissions.clone());
        async move {
            let path = format!("/api/v1/submissions/{}", submissions[index]);
            api.admin(Method::PATCH, &path, Some(&json!({"type": "correct"}))).await.status
        }
    })
    .await;
    assert_eq!(statuses.iter().filter(|status| **status == StatusCode::OK).count(), 1, "{statuses:?}");
    let solves = api.ok(Method::GET, &format!("/api/v1/submissions?type=correct&challenge_id={challenge}"), None).await;
    assert_eq!(solves.as_array().unwrap().len(), 1);

    let mut challenges = Vec::new();
    for index in 0..RACERS {
        challenges.push(api.ok(Method::POST, "/api/v1/challenges", Some(&json!({"name": format!("c{index}"), "value": 1}))).await["id"].clone());
    }
    let challenges = Arc::new(challenges);
    let statuses = race(RACERS, |index| {
        let (api, challenges) = (api.clone(), challenges.clone());
        async move {
            let body = json!({"value": "shared topic", "type": "challenge", "challenge_id": challenges[index]});
            api.admin(Method::POST, "/api/v1/topics", Some(&body)).await.status
        }
    })
    .await;
    assert!(statuses.iter().all(|status| *status == StatusCode::OK), "{statuses:?}");
    assert_eq!(api.ok(Method::GET, "/api/v1/topics", None).await.as_array().unwrap().len(), 1);

    let statuses = race(RACERS, |index| {
        let api = api.clone();
        async move {
            let content = vec![u8::try_from(index).unwrap(); 64 * 1024 + index];
            let answer = api
                .upload(
                    &api.admin.token,
                    &[("type", "page"), ("location", "media/same.bin")],
                    &[("same.bin", &content)],
                )
                .await;
            answer.status
        }
    })
    .await;
    assert!(statuses.iter().all(|status| *status == StatusCode::OK), "{statuses:?}");
    let files = api.ok(Method::GET, "/api/v1/files?location=media/same.bin", None).await;
    assert_eq!(files.as_array().unwrap().len(), 1);
    let bytes = std::fs::read(api.data_dir.path().join("files/media/same.bin")).unwrap();
    assert_eq!(files[0]["sha1sum"], sha1_hex(&bytes), "the row describes the bytes on disk");
    assert_eq!(files[0]["size"], bytes.len());
}

on_both_databases! {
    concurrent => concurrent_requests_keep_invariants,
}
