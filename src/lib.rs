//! # fctf
//!
//! A capture-the-flag competition platform in one executable. A process runs any set of five
//! roles (`--role`, default `all`):
//!
//! | role | owns |
//! |---|---|
//! | `api` | contestant API, admin API, player portal and admin UI (HTTP :8000) |
//! | `center` | deployment control and the instance state machine (HTTP :8001, signed) |
//! | `consumer` | deploy jobs from the queue to the runtime, under a global concurrency cap |
//! | `listener` | watches the runtime and reconciles instance state |
//! | `gateway` | authenticated HTTP (:8080) and TCP (:1337) access to instances |
//!
//! Roles never import each other; they meet through four seams, each a cheap-to-clone handle
//! over a private backend trait: [`store::Store`] (SQLite or PostgreSQL), [`cache::Cache`]
//! (memory or Redis), the queue ([`queue::QueueProducer`]/[`queue::QueueConsumer`]; memory or
//! RabbitMQ) and [`runtime::Runtime`] (local processes or Kubernetes). `all` is only the set of
//! every role, so every split of roles over processes runs the same code.
//!
//! Data flow: players talk to `api`; a start request reserves a slot in the cache and asks
//! `center`, which records the instance in the store and publishes a deploy job; `consumer`
//! starts it on the runtime; `listener` turns runtime events into instance states and mints the
//! gateway token; `gateway` verifies that token and proxies to the instance.
//!
//! [`app`] is the composition root; [`config`] loads and validates the settings; [`cli`]
//! parses the command line.

pub mod api;
pub mod app;
pub mod auth;
pub mod cache;
pub mod center;
pub mod cli;
pub mod config;
pub mod consumer;
pub mod control;
pub mod domain;
pub mod event;
pub mod gateway;
pub mod import;
pub mod listener;
pub mod metrics;
pub mod queue;
pub mod runtime;
pub mod shutdown;
pub mod store;
pub mod telemetry;
pub mod web;
