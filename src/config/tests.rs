//! Configuration loading and validation tests. No process environment is touched: every test
//! passes its own variables to `load_from`.

use std::collections::HashMap;

use super::*;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(key, value)| ((*key).to_owned(), (*value).to_owned())).collect()
}

fn load_env(pairs: &[(&str, &str)]) -> Settings {
    load_from(None, &env(pairs), &Overrides::default()).expect("configuration should load")
}

#[test]
fn embedded_defaults_load_and_validate_for_all_roles() {
    let settings = load_env(&[]);
    let roles = settings.validate().expect("defaults are valid");
    assert!(roles.is_all());
    assert_eq!(settings.api.listen.port(), 8000);
    assert_eq!(settings.center.listen.port(), 8001);
    assert_eq!(settings.gateway.http_listen.port(), 8080);
    assert_eq!(settings.gateway.tcp_listen.port(), 1337);
    assert_eq!(settings.ops.listen.port(), 9000);
    assert_eq!(settings.store.backend, crate::store::StoreBackendKind::Sqlite);
    assert_eq!(settings.cache.backend, crate::cache::CacheBackendKind::Memory);
    assert_eq!(settings.queue.backend, crate::queue::QueueBackendKind::Memory);
    assert_eq!(settings.runtime.backend, crate::runtime::RuntimeBackendKind::Local);
}

#[test]
fn operator_environment_variables_are_honoured() {
    let settings = load_env(&[
        ("FCTF_DATA_DIR", "/tmp/fctf-x"),
        ("FCTF_API__LISTEN", "127.0.0.1:18000"),
        ("FCTF_CENTER__LISTEN", "127.0.0.1:18001"),
        ("FCTF_GATEWAY__HTTP_LISTEN", "127.0.0.1:18080"),
        ("FCTF_GATEWAY__TCP_LISTEN", "127.0.0.1:11337"),
        ("FCTF_OPS__LISTEN", "127.0.0.1:19000"),
        ("FCTF_STORE__BACKEND", "postgres"),
        ("FCTF_STORE__URL", "postgres://u:pw@db/fctf"),
        ("FCTF_CACHE__BACKEND", "redis"),
        ("FCTF_CACHE__URL", "redis://cache:6379"),
        ("FCTF_QUEUE__BACKEND", "rabbitmq"),
        ("FCTF_QUEUE__URL", "amqp://guest:guest@mq:5672"),
        ("FCTF_RUNTIME__BACKEND", "kubernetes"),
        ("FCTF_ROLES", "api,gateway"),
    ]);
    assert_eq!(settings.data_dir, std::path::PathBuf::from("/tmp/fctf-x"));
    assert_eq!(settings.api.listen.to_string(), "127.0.0.1:18000");
    assert_eq!(settings.center.listen.to_string(), "127.0.0.1:18001");
    assert_eq!(settings.gateway.http_listen.to_string(), "127.0.0.1:18080");
    assert_eq!(settings.gateway.tcp_listen.to_string(), "127.0.0.1:11337");
    assert_eq!(settings.ops.listen.to_string(), "127.0.0.1:19000");
    assert_eq!(settings.store.backend, crate::store::StoreBackendKind::Postgres);
    assert_eq!(settings.store.url.expose(), "postgres://u:pw@db/fctf");
    assert_eq!(settings.cache.backend, crate::cache::CacheBackendKind::Redis);
    assert_eq!(settings.queue.backend, crate::queue::QueueBackendKind::Rabbitmq);
    assert_eq!(settings.runtime.backend, crate::runtime::RuntimeBackendKind::Kubernetes);
    let roles = settings.role_set().unwrap();
    assert!(roles.contains(Role::Api) && roles.contains(Role::Gateway));
    assert!(!roles.contains(Role::Center));
}

#[test]
fn command_line_roles_override_the_environment() {
    let overrides = Overrides { roles: vec![Role::Center], data_dir: Some("/srv/fctf".into()) };
    let settings = load_from(None, &env(&[("FCTF_ROLES", "api")]), &overrides).unwrap();
    let roles = settings.role_set().unwrap();
    assert!(roles.contains(Role::Center) && !roles.contains(Role::Api));
    assert_eq!(settings.data_dir, std::path::PathBuf::from("/srv/fctf"));
}

#[test]
fn split_roles_on_embedded_backends_report_every_problem_at_once() {
    let settings = load_env(&[("FCTF_ROLES", "api,center")]);
    let error = settings.validate().unwrap_err();
    let text = error.to_string();
    assert!(error.problems.len() >= 5, "{text}");
    assert!(text.contains("store.backend = sqlite cannot be shared"), "{text}");
    assert!(text.contains("cache.backend = memory"), "{text}");
    assert!(text.contains("queue.backend = memory needs the center and consumer"), "{text}");
    assert!(text.contains("runtime.backend = local"), "{text}");
    assert!(text.contains("secrets.jwt must be set"), "{text}");
}

#[test]
fn split_roles_on_production_backends_are_valid() {
    let settings = load_env(&[
        ("FCTF_ROLES", "api,gateway"),
        ("FCTF_STORE__BACKEND", "postgres"),
        ("FCTF_STORE__URL", "postgres://db/fctf"),
        ("FCTF_CACHE__BACKEND", "redis"),
        ("FCTF_CACHE__URL", "redis://cache"),
        ("FCTF_QUEUE__BACKEND", "rabbitmq"),
        ("FCTF_QUEUE__URL", "amqp://mq"),
        ("FCTF_SECRETS__JWT", "a"),
        ("FCTF_SECRETS__GATEWAY", "b"),
        ("FCTF_SECRETS__INTERNAL", "c"),
        ("FCTF_SECRETS__FILES", "d"),
    ]);
    settings.validate().expect("a production split is valid");
}

#[test]
fn gateway_alone_needs_no_store_but_a_shared_cache() {
    let settings = load_env(&[("FCTF_ROLES", "gateway"), ("FCTF_SECRETS__GATEWAY", "k")]);
    let error = settings.validate().unwrap_err();
    assert_eq!(error.problems.len(), 1, "{error}");
    assert!(error.problems[0].contains("cache.backend = memory"), "{error}");
}

#[test]
fn missing_backend_urls_are_reported() {
    let settings = load_env(&[
        ("FCTF_STORE__BACKEND", "postgres"),
        ("FCTF_CACHE__BACKEND", "redis"),
        ("FCTF_QUEUE__BACKEND", "rabbitmq"),
    ]);
    let error = settings.validate().unwrap_err();
    assert_eq!(error.problems.len(), 3, "{error}");
}

#[test]
fn clashing_listen_addresses_are_reported() {
    let settings = load_env(&[("FCTF_API__LISTEN", "0.0.0.0:9000"), ("FCTF_GATEWAY__HTTP_LISTEN", "127.0.0.1:9000")]);
    let error = settings.validate().unwrap_err();
    assert_eq!(error.problems.len(), 1, "{error}");
    assert!(error.problems[0].contains("ops.listen"), "{error}");
    assert!(error.problems[0].contains("api.listen") && error.problems[0].contains("gateway.http_listen"), "{error}");
}

#[test]
fn port_zero_never_clashes() {
    let settings = load_env(&[
        ("FCTF_API__LISTEN", "127.0.0.1:0"),
        ("FCTF_CENTER__LISTEN", "127.0.0.1:0"),
        ("FCTF_OPS__LISTEN", "127.0.0.1:0"),
    ]);
    settings.validate().expect("port 0 is always free");
}

#[test]
fn test_harness_variables_are_not_configuration() {
    let settings = load_env(&[("FCTF_TEST_DATABASE_URL", "postgres://x"), ("FCTF_TEST_REDIS_URL", "redis://y")]);
    settings.validate().expect("FCTF_TEST_* variables are ignored");
}

#[test]
fn unknown_keys_and_bad_values_are_rejected() {
    let error = load_from(None, &env(&[("FCTF_API__LISTENN", "x")]), &Overrides::default()).unwrap_err();
    assert!(error.to_string().contains("listenn"), "{error}");
    let error = load_from(None, &env(&[("FCTF_STORE__BACKEND", "mysql")]), &Overrides::default()).unwrap_err();
    assert!(error.to_string().contains("mysql"), "{error}");
    let settings = load_env(&[("FCTF_ROLES", "api,web")]);
    let error = settings.validate().unwrap_err();
    assert!(error.to_string().contains("valid roles"), "{error}");
}

#[test]
fn configuration_file_layer_sits_between_defaults_and_environment() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fctf.toml");
    std::fs::write(&path, "[api]\nlisten = \"127.0.0.1:7000\"\npublic_url = \"https://ctf.example\"\n").unwrap();
    let settings =
        load_from(Some(&path), &env(&[("FCTF_API__LISTEN", "127.0.0.1:7001")]), &Overrides::default()).unwrap();
    assert_eq!(settings.api.public_url, "https://ctf.example");
    assert_eq!(settings.api.listen.to_string(), "127.0.0.1:7001");
    let missing = load_from(Some(&dir.path().join("nope.toml")), &env(&[]), &Overrides::default());
    assert!(missing.is_err());
}

#[test]
fn secrets_never_show_in_debug_output() {
    let settings = load_env(&[
        ("FCTF_STORE__URL", "postgres://user:hunter2@db/fctf"),
        ("FCTF_SECRETS__JWT", "jwt-secret-value"),
        ("FCTF_CACHE__URL", "redis://:redispass@cache"),
    ]);
    let debug = format!("{settings:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(!debug.contains("jwt-secret-value"), "{debug}");
    assert!(!debug.contains("redispass"), "{debug}");
    assert!(debug.contains("[redacted]"), "{debug}");
}

#[test]
fn every_default_key_is_documented() {
    let mut previous_was_comment = false;
    for line in DEFAULT_TOML.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') {
            previous_was_comment = true;
            continue;
        }
        if trimmed.is_empty() || trimmed.starts_with('[') {
            previous_was_comment = previous_was_comment && !trimmed.is_empty();
            continue;
        }
        assert!(previous_was_comment || trimmed.contains(" # "), "undocumented default: {trimmed}");
        previous_was_comment = previous_was_comment && !trimmed.is_empty();
    }
}

#[test]
fn generated_secrets_persist_in_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let settings = load_env(&[]);
    let first = Secrets::resolve(&settings.secrets, dir.path(), true).unwrap();
    let second = Secrets::resolve(&settings.secrets, dir.path(), true).unwrap();
    assert_eq!(first.jwt(), second.jwt());
    assert_ne!(first.jwt(), first.gateway());
    assert!(first.jwt().len() >= 32);
    let configured = load_env(&[("FCTF_SECRETS__JWT", "explicit")]);
    let mixed = Secrets::resolve(&configured.secrets, dir.path(), true).unwrap();
    assert_eq!(mixed.jwt(), b"explicit");
    assert_eq!(mixed.gateway(), first.gateway());
}

#[test]
fn the_gateway_is_public_on_another_host_name_than_the_portal_by_default() {
    let settings = load_env(&[]);
    assert_eq!(settings.api.public_url, "http://localhost:8000");
    assert_eq!(settings.gateway.public_http_base(), "http://127.0.0.1:8080");
    assert_eq!(settings.gateway.public_tcp(), ("127.0.0.1".to_owned(), 1337));
    assert!(settings.warnings().is_empty(), "{:?}", settings.warnings());

    let same = load_env(&[("FCTF_API__PUBLIC_URL", "http://127.0.0.1:8000")]);
    let warnings = same.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("logs the player out"), "{warnings:?}");
    same.validate().expect("a shared host name works, with a warning");
}

#[test]
fn the_gateway_public_coordinates_follow_tls_and_overrides() {
    let tls = load_env(&[
        ("FCTF_GATEWAY__PUBLIC_HOST", "gw.example.org"),
        ("FCTF_GATEWAY__TLS_CERT_FILE", "/tls/crt.pem"),
        ("FCTF_GATEWAY__TLS_KEY_FILE", "/tls/key.pem"),
        ("FCTF_GATEWAY__HTTP_LISTEN", "0.0.0.0:443"),
    ]);
    assert!(tls.gateway.tls_enabled());
    assert_eq!(tls.gateway.public_http_base(), "https://gw.example.org");
    assert_eq!(tls.gateway.public_http_host(), "gw.example.org");

    let proxied = load_env(&[
        ("FCTF_API__PUBLIC_URL", "https://ctf.example.org"),
        ("FCTF_GATEWAY__PUBLIC_HOST", "ctf.example.org"),
        ("FCTF_GATEWAY__PUBLIC_HTTP_URL", "https://Challenges.example.org/"),
        ("FCTF_GATEWAY__PUBLIC_TCP_PORT", "31337"),
    ]);
    proxied.validate().expect("valid");
    assert_eq!(proxied.gateway.public_http_base(), "https://Challenges.example.org");
    assert_eq!(proxied.gateway.public_tcp(), ("ctf.example.org".to_owned(), 31337));
    assert!(proxied.warnings().is_empty(), "the HTTP links decide the cookie host: {:?}", proxied.warnings());

    let ipv6 = load_env(&[("FCTF_GATEWAY__PUBLIC_HOST", "::1")]);
    assert_eq!(ipv6.gateway.public_http_base(), "http://[::1]:8080");
    assert_eq!(crate::gateway::url_host("::1"), "[::1]");
}

#[test]
fn unusable_gateway_public_settings_are_reported_where_the_portal_runs() {
    let settings =
        load_env(&[("FCTF_GATEWAY__PUBLIC_HOST", " "), ("FCTF_GATEWAY__PUBLIC_HTTP_URL", "gateway.example.org/x?y")]);
    let error = settings.validate().unwrap_err();
    assert_eq!(error.problems.len(), 2, "{error}");
    assert!(error.problems[0].contains("gateway.public_host"), "{error}");
    assert!(error.problems[1].contains("gateway.public_http_url"), "{error}");
    let gateway_only = load_env(&[
        ("FCTF_ROLES", "gateway"),
        ("FCTF_CACHE__BACKEND", "redis"),
        ("FCTF_CACHE__URL", "redis://cache"),
        ("FCTF_SECRETS__GATEWAY", "k"),
        ("FCTF_GATEWAY__PUBLIC_HTTP_URL", "nonsense"),
    ]);
    gateway_only.validate().expect("only the portal shows the public coordinates");
}
