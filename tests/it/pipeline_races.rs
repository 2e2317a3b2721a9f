//! Concurrent starts and stops through the contestant API, on both topologies.

use fctf::store::InstanceState;
use serde_json::Value;

use crate::pipeline_support::{HTTP_SERVER, Platform, Topology, on_both_topologies};

on_both_topologies! {
    concurrent_starts => ten_concurrent_starts_of_one_team_start_exactly_one, ten_concurrent_starts_of_one_team_start_exactly_one_postgres;
    team_limit => ten_challenges_at_once_start_exactly_the_team_limit, ten_challenges_at_once_start_exactly_the_team_limit_postgres;
    concurrent_stops => ten_concurrent_stops_stop_exactly_once, ten_concurrent_stops_stop_exactly_once_postgres;
}

const FRESH: &str = "Request received. Your challenge has been queued for deployment.";

fn message(body: &Value) -> String {
    body["message"].as_str().or_else(|| body["error"].as_str()).unwrap_or_default().to_owned()
}

async fn concurrent_starts(topology: Topology) {
    let Some(platform) = Platform::start(topology, &[], &[]).await else { return };
    let (team, _, token) = platform.team("racers").await;
    let challenge = platform.challenge("Contended", HTTP_SERVER).await;
    let answers = futures::future::join_all((0..10).map(|_| platform.start_instance(&token, challenge))).await;
    let fresh = answers.iter().filter(|(status, body)| *status == 200 && message(body) == FRESH).count();
    assert_eq!(fresh, 1, "{answers:?}");
    for (status, body) in answers.iter().filter(|(_, body)| message(body) != FRESH) {
        let text = message(body);
        assert!(
            ["already started", "in progress", "deploying", "running"].iter().any(|word| text.contains(word)),
            "{status} {body}"
        );
        assert!(matches!(status, 200 | 400), "{status} {body}");
    }
    let live = platform.store.list_live_instances(Some(team)).await.unwrap();
    assert_eq!(live.len(), 1, "one instance exists");
    platform.wait_running(&token, challenge).await;
    platform.stop().await;
}

async fn team_limit(topology: Topology) {
    let Some(platform) = Platform::start(topology, &[], &[("limit_challenges", "3")]).await else { return };
    let (team, _, token) = platform.team("greedy").await;
    let mut challenges = Vec::new();
    for index in 0..10 {
        challenges.push(platform.challenge(&format!("Many {index}"), HTTP_SERVER).await);
    }
    let answers =
        futures::future::join_all(challenges.iter().map(|challenge| platform.start_instance(&token, *challenge))).await;
    let started = answers.iter().filter(|(status, body)| *status == 200 && message(body) == FRESH).count();
    assert_eq!(started, 3, "{answers:?}");
    for (status, body) in answers.iter().filter(|(_, body)| message(body) != FRESH) {
        assert_eq!(*status, 400, "{body}");
        assert!(message(body).contains("maximum limit of 3"), "{body}");
    }
    assert_eq!(platform.slots(team).await.len(), 3);
    assert_eq!(platform.store.list_live_instances(Some(team)).await.unwrap().len(), 3);
    platform.stop().await;
}

async fn concurrent_stops(topology: Topology) {
    let Some(platform) = Platform::start(topology, &[], &[]).await else { return };
    let (team, _, token) = platform.team("stoppers").await;
    let challenge = platform.challenge("Stoppable", HTTP_SERVER).await;
    assert_eq!(platform.start_instance(&token, challenge).await.0, 200);
    platform.wait_running(&token, challenge).await;
    let id = platform.live(team, challenge).await.unwrap().id;
    let answers = futures::future::join_all((0..10).map(|_| platform.stop_instance(&token, challenge))).await;
    let stopped = answers.iter().filter(|(status, _)| *status == 200).count();
    assert_eq!(stopped, 1, "{answers:?}");
    for (status, body) in answers.iter().filter(|(status, _)| *status != 200) {
        assert_eq!(*status, 400, "{body}");
        assert!(message(body).contains("already stopped"), "{body}");
    }
    platform.wait_state(id, InstanceState::Stopped).await;
    assert!(platform.slots(team).await.is_empty());
    platform.stop().await;
}
