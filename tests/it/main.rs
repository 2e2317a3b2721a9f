//! The one integration-test binary: in-process apps (`harness`), split-role clusters on the real
//! backends, and process-level smoke tests of the built executable.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin_accounts;
mod admin_authz;
mod admin_challenges;
mod admin_concurrency;
mod admin_event;
mod admin_forms;
mod admin_fuzz;
mod admin_imports;
mod admin_instances;
mod admin_matrix;
mod admin_support;
mod admin_ui;
mod contestant_accounts;
mod contestant_bench;
mod contestant_play;
mod contestant_races;
mod contestant_support;
mod foundation;
mod gateway;
mod harness;
mod pipeline_autostop;
mod pipeline_bench;
mod pipeline_failures;
mod pipeline_flow;
mod pipeline_races;
mod pipeline_support;
mod smoke;
