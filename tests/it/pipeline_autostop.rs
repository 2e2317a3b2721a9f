//! Automatic stops from flag submissions, on both topologies: a correct flag, and the wrong
//! attempt that uses the last of the budget, stop the team's running instance of that
//! challenge (and only that team's); its gateway token is refused and its slot released.

use std::time::Duration;

use fctf::domain::TeamId;
use fctf::store::InstanceState;

use crate::pipeline_support::{HTTP_SERVER, Platform, Topology, on_both_topologies};

on_both_topologies! {
    solve_stops => a_correct_flag_stops_the_teams_instance_and_refuses_its_token, a_correct_flag_stops_the_teams_instance_and_refuses_its_token_postgres;
    exhausted_stops => the_last_wrong_attempt_stops_the_teams_instance_and_refuses_its_token, the_last_wrong_attempt_stops_the_teams_instance_and_refuses_its_token_postgres;
}

const FLAG: &str = "FCTF{pipeline_autostop}";
const REFUSAL: Duration = Duration::from_secs(2);

/// Waits until the team holds no instance slot (it is released just after the row stops).
async fn wait_no_slots(platform: &Platform, team: TeamId) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !platform.slots(team).await.is_empty() {
        assert!(std::time::Instant::now() < deadline, "team {team} still holds a slot");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn solve_stops(topology: Topology) {
    let Some(platform) = Platform::start(topology, &[], &[]).await else { return };
    let (solver, _, solver_token) = platform.team("solver").await;
    let (bystander, _, bystander_token) = platform.team("bystander").await;
    let challenge = platform.challenge("Solvable", HTTP_SERVER).await;
    platform.flag(challenge, FLAG).await;
    for token in [&solver_token, &bystander_token] {
        let (status, body) = platform.start_instance(token, challenge).await;
        assert_eq!(status, 200, "{body}");
    }
    let (solver_gateway, _) = platform.wait_running(&solver_token, challenge).await;
    let (bystander_gateway, _) = platform.wait_running(&bystander_token, challenge).await;
    let instance = platform.live(solver, challenge).await.unwrap();
    assert_eq!(platform.through_gateway(&solver_gateway).await, 200);

    let (status, body) = platform.attempt(&solver_token, challenge, FLAG).await;
    assert_eq!((status, body["data"]["status"].as_str()), (200, Some("correct")), "{body}");
    let stopped = platform.wait_state(instance.id, InstanceState::Stopped).await;
    assert_eq!(stopped.reason.as_deref(), Some("stopped after a correct flag"));
    assert_eq!(platform.gateway_answers(&solver_gateway, 401, REFUSAL).await, 401, "token refused");
    wait_no_slots(&platform, solver).await;
    let (status, body) = platform.check_status(&solver_token, challenge).await;
    assert_eq!((status, body["pod_status"].as_str()), (200, Some("NOT_FOUND")), "{body}");
    let (status, body) = platform.start_instance(&solver_token, challenge).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("already solved"), "{body}");

    // The other team's instance of the same challenge is untouched.
    let other = platform.live(bystander, challenge).await.unwrap();
    assert_eq!(other.state, InstanceState::Running);
    assert_eq!(platform.through_gateway(&bystander_gateway).await, 200);
    assert_eq!(platform.slots(bystander).await, vec![challenge.to_string()]);
    platform.stop().await;
}

async fn exhausted_stops(topology: Topology) {
    let Some(platform) = Platform::start(topology, &[], &[]).await else { return };
    let (team, _, token) = platform.team("guesser").await;
    let challenge = platform.challenge_with("Two Tries", HTTP_SERVER, |spec| spec.max_attempts = 2).await;
    platform.flag(challenge, FLAG).await;
    let (status, body) = platform.start_instance(&token, challenge).await;
    assert_eq!(status, 200, "{body}");
    let (gateway_token, _) = platform.wait_running(&token, challenge).await;
    let instance = platform.live(team, challenge).await.unwrap();

    // A wrong attempt that leaves a try schedules no stop.
    let (status, body) = platform.attempt(&token, challenge, "FCTF{first guess}").await;
    assert_eq!((status, body["data"]["status"].as_str()), (200, Some("incorrect")), "{body}");
    assert!(body["data"]["message"].as_str().unwrap().contains("You have 1 try remaining"), "{body}");
    assert_eq!(platform.through_gateway(&gateway_token).await, 200);
    assert_eq!(platform.store.get_instance(instance.id).await.unwrap().state, InstanceState::Running);

    // The last one does.
    let (status, body) = platform.attempt(&token, challenge, "FCTF{second guess}").await;
    assert_eq!((status, body["data"]["status"].as_str()), (200, Some("incorrect")), "{body}");
    assert!(body["data"]["message"].as_str().unwrap().contains("You have 0 tries remaining"), "{body}");
    let stopped = platform.wait_state(instance.id, InstanceState::Stopped).await;
    assert_eq!(stopped.reason.as_deref(), Some("stopped after the last allowed attempt"));
    assert_eq!(platform.gateway_answers(&gateway_token, 401, REFUSAL).await, 401, "token refused");
    wait_no_slots(&platform, team).await;
    let (status, body) = platform.start_instance(&token, challenge).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("0 tries remaining"), "{body}");
    // Any further attempt is refused.
    let (status, body) = platform.attempt(&token, challenge, FLAG).await;
    assert_eq!((status, body["data"]["status"].as_str()), (400, Some("incorrect")), "{body}");
    platform.stop().await;
}
