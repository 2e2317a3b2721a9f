//! Gateway tests: one suite of behaviours, run on the memory cache and (when
//! `FCTF_TEST_REDIS_URL` is set) on Redis with a unique key prefix per test. Each case starts its
//! own gateway and upstreams on loopback ports chosen by the system.

mod bench;
mod fuzz;
mod harness;
mod http_cases;
mod logs;
mod outage;
mod relay_cases;
mod tcp_cases;
mod tls_cases;
mod wire_cases;

/// Generates one test per case and backend: `memory::<case>` and `redis::<case>`.
macro_rules! gateway_suite {
    ($($module:ident :: $case:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let cache = super::harness::memory_cache().await.expect("memory cache");
                    super::$module::$case(cache).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(cache) = super::harness::redis_cache().await else { return };
                    super::$module::$case(cache).await;
                }
            )*
        }
    };
}

gateway_suite!(
    http_cases::each_url_token_form_redirects_with_the_cookie_first,
    http_cases::cookie_requests_are_proxied_without_the_gateway_cookie,
    http_cases::html_is_not_cached_and_upstream_cannot_touch_the_gateway_cookie,
    http_cases::missing_invalid_and_expired_tokens_get_401,
    http_cases::app_parameters_shaped_like_tokens_pass_with_a_valid_cookie,
    http_cases::oversized_bodies_get_413_declared_or_chunked,
    http_cases::dead_route_gets_502_and_health_stays_up,
    http_cases::upstream_dial_timeout_gets_502_quickly,
    http_cases::flood_from_one_client_is_rate_limited_but_a_burst_passes,
    http_cases::trusted_proxy_headers_choose_the_rate_limit_bucket,
    http_cases::websocket_upgrade_passes_through,
    http_cases::revoked_token_is_refused_within_two_seconds,
    http_cases::token_without_instance_id_skips_the_liveness_check,
    tcp_cases::prompt_is_sent_at_once,
    tcp_cases::empty_and_invalid_tokens_get_auth_failed,
    tcp_cases::valid_token_is_granted_and_bytes_after_the_line_are_forwarded,
    tcp_cases::per_token_cap_grants_15_of_30,
    tcp_cases::leases_are_released_when_sessions_end,
    tcp_cases::session_is_cut_at_exp,
    tcp_cases::bytes_relayed_before_a_cut_at_exp_are_counted,
    tcp_cases::revoked_token_is_refused_and_open_session_cut,
    tcp_cases::dial_failure_is_reported,
    tcp_cases::dial_timeout_is_reported_and_closes,
    tcp_cases::proxy_protocol_gives_the_client_address,
    tcp_cases::shutdown_drains_then_cuts_sessions,
    tcp_cases::dedicated_io_threads_serve_and_stop,
    tls_cases::tls_and_plaintext_share_both_ports,
    fuzz::mutated_tokens_never_pass,
    fuzz::liveness_marks_expire_and_clear,
);
