//! Challenge `POST`/`PATCH` accept form data (urlencoded and multipart fields) as CTFd does,
//! with exactly the validation of JSON bodies: the same stored challenge from the same fields,
//! the same 400 bodies for the same mistakes, and nothing written on a refusal.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::admin_support::{AdminApi, on_both_databases};

/// The read shape without what differs between two otherwise identical challenges.
fn comparable(mut view: Value) -> Value {
    for key in ["id", "name"] {
        view.as_object_mut().unwrap().remove(key);
    }
    view
}

async fn forms_are_validated_like_json(api: AdminApi) {
    let first = api.ok(Method::POST, "/api/v1/challenges", Some(&json!({"name": "first", "value": 10}))).await;
    let requirements = format!("{{\"prerequisites\": [{}], \"anonymize\": true}}", first["id"]);
    let fields = [
        ("category", "web"),
        ("description", "A form-made challenge"),
        ("value", "150"),
        ("state", "hidden"),
        ("type", "standard"),
        ("max_attempts", "3"),
        ("connection_info", ""),
        ("requirements", requirements.as_str()),
        ("require_deploy", "true"),
        ("deploy_command", "exec true"),
        ("harden_container", "false"),
        ("time_limit", "15"),
    ];
    let mut with_name = vec![("name", "urlencoded")];
    with_name.extend_from_slice(&fields);
    let created = api.form(Method::POST, "/api/v1/challenges", &with_name).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let urlencoded = created.data().clone();
    assert_eq!(urlencoded["value"], 150);
    assert_eq!(urlencoded["require_deploy"], true);
    assert_eq!(urlencoded["harden_container"], false);
    let mut with_name = vec![("name", "multipart")];
    with_name.extend_from_slice(&fields);
    let created = api.multipart(Method::POST, "/api/v1/challenges", &api.admin.token, &with_name, &[]).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let multipart = created.data().clone();
    let json_body: serde_json::Map<String, Value> = fields
        .iter()
        .map(|(key, value)| ((*key).to_owned(), Value::String((*value).to_owned())))
        .chain([("name".to_owned(), json!("json"))])
        .collect();
    let from_json = api.ok(Method::POST, "/api/v1/challenges", Some(&Value::Object(json_body))).await;
    assert_eq!(comparable(urlencoded.clone()), comparable(from_json.clone()));
    assert_eq!(comparable(multipart.clone()), comparable(from_json));
    let id = urlencoded["id"].as_i64().unwrap();
    let stored = api.ok(Method::GET, &format!("/api/v1/challenges/{id}/requirements"), None).await;
    assert_eq!(stored, json!({"prerequisites": [first["id"]], "anonymize": true}));

    // PATCH: multipart and urlencoded change only the fields they carry.
    let path = format!("/api/v1/challenges/{id}");
    let patched =
        api.multipart(Method::PATCH, &path, &api.admin.token, &[("value", "175"), ("state", "visible")], &[]).await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_eq!((patched.data()["value"].clone(), patched.data()["state"].clone()), (json!(175), json!("visible")));
    assert_eq!(patched.data()["description"], "A form-made challenge");
    let patched = api.form(Method::PATCH, &path, &[("connection_info", "nc host 1337"), ("value", "180")]).await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_eq!(patched.data()["connection_info"], "nc host 1337");

    // The same mistakes give the same answers, and change nothing.
    let before = api.snapshot().await;
    let bad = [("name", "bad"), ("value", "ten"), ("state", "gone"), ("exposed_port", "70000")];
    let as_form = api.form(Method::POST, "/api/v1/challenges", &bad).await;
    let as_multipart = api.multipart(Method::POST, "/api/v1/challenges", &api.admin.token, &bad, &[]).await;
    let as_json = api
        .admin(
            Method::POST,
            "/api/v1/challenges",
            Some(&json!({"name": "bad", "value": "ten", "state": "gone", "exposed_port": "70000"})),
        )
        .await;
    for answer in [&as_form, &as_multipart] {
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.body);
        assert_eq!(answer.body, as_json.body);
    }
    let errors = as_form.body["errors"].as_object().unwrap();
    assert_eq!(errors.keys().collect::<Vec<_>>(), vec!["exposed_port", "state", "value"]);
    let taken = api.form(Method::PATCH, &path, &[("name", "first")]).await;
    assert_eq!(taken.status, StatusCode::BAD_REQUEST);
    assert!(taken.body["errors"]["name"].is_array());
    let with_file = api
        .multipart(Method::POST, "/api/v1/challenges", &api.admin.token, &[("name", "filed")], &[("a.txt", b"a")])
        .await;
    assert_eq!(with_file.status, StatusCode::BAD_REQUEST, "{}", with_file.body);
    let empty_name = api.form(Method::POST, "/api/v1/challenges", &[("name", ""), ("value", "1")]).await;
    assert!(empty_name.body["errors"]["name"].is_array(), "{}", empty_name.body);
    assert_eq!(api.snapshot().await, before, "refused forms write nothing");

    // A challenge writer may use forms too; a player may not.
    let writer = api
        .multipart(Method::POST, "/api/v1/challenges", &api.writer.token, &[("name", "w"), ("value", "1")], &[])
        .await;
    assert_eq!(writer.status, StatusCode::OK, "{}", writer.body);
    let player = api
        .multipart(Method::POST, "/api/v1/challenges", &api.player.token, &[("name", "p"), ("value", "1")], &[])
        .await;
    assert_eq!(player.status, StatusCode::FORBIDDEN);
}

on_both_databases! {
    challenge_forms => forms_are_validated_like_json,
}
