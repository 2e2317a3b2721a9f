//! Mutated tokens: none may pass, whether fed to the verifier, the HTTP port or the TCP port.
//! Also the liveness markers the revocation relies on.

use std::collections::BTreeSet;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use futures::StreamExt as _;
use rand::{Rng, SeedableRng};

use super::harness::*;
use crate::cache::Cache;
use crate::domain::InstanceId;
use crate::domain::gateway_token::{self, Verifier};

/// Deterministic mutations of `token` (the original itself excluded).
fn mutations(token: &str, other: &str, seed: u64) -> Vec<String> {
    let mut out: BTreeSet<String> = BTreeSet::new();
    let bytes = token.as_bytes();
    // Every single-bit flip of every character.
    for index in 0..bytes.len() {
        for bit in 0..8 {
            let mut flipped = bytes.to_vec();
            flipped[index] ^= 1 << bit;
            out.insert(String::from_utf8_lossy(&flipped).into_owned());
        }
    }
    // Truncations from either end, and deletions of one character.
    for cut in 0..bytes.len() {
        out.insert(token[..cut].to_owned());
        out.insert(token[cut + 1..].to_owned());
        out.insert(format!("{}{}", &token[..cut], &token[cut + 1..]));
    }
    let (payload, signature) = token.split_once('.').expect("token shape");
    let (other_payload, other_signature) = other.split_once('.').expect("token shape");
    // Swapped and recombined parts, extra parts, padding, other alphabets.
    for variant in [
        format!("{signature}.{payload}"),
        format!("{payload}.{other_signature}"),
        format!("{other_payload}.{signature}"),
        format!("{payload}.{signature}.{signature}"),
        format!("{payload}."),
        format!(".{signature}"),
        format!("{payload}.{signature}="),
        format!("{payload}=.{signature}"),
        format!("{payload}..{signature}"),
        format!(" {token}"),
        format!("{token}\t"),
        payload.to_owned(),
        token.to_uppercase(),
        token.to_lowercase(),
        token.replace('-', "+").replace('_', "/"),
    ] {
        out.insert(variant);
    }
    // Re-encoded payloads with a forged exp or route, under every base64 flavour.
    let json: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    let mut forged = Vec::new();
    for exp in [json["exp"].as_i64().unwrap() + 1, 4_102_444_800, i64::MAX, 0, -1] {
        let mut changed = json.clone();
        changed["exp"] = exp.into();
        forged.push(changed);
    }
    for route in ["127.0.0.1:22", "admin", ""] {
        let mut changed = json.clone();
        changed["route"] = route.into();
        forged.push(changed);
    }
    let mut without_iid = json.clone();
    without_iid.as_object_mut().unwrap().remove("iid");
    forged.push(without_iid);
    let mut spaced = serde_json::to_string_pretty(&json).unwrap().into_bytes();
    spaced.push(b' ');
    for value in forged {
        let text = serde_json::to_vec(&value).unwrap();
        for encoded in [URL_SAFE_NO_PAD.encode(&text), URL_SAFE.encode(&text), STANDARD.encode(&text)] {
            out.insert(format!("{encoded}.{signature}"));
        }
    }
    out.insert(format!("{}.{signature}", URL_SAFE_NO_PAD.encode(&spaced)));
    // Random multi-byte corruption.
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/";
    for _ in 0..6000 {
        let mut changed = bytes.to_vec();
        for _ in 0..rng.random_range(1..4) {
            let index = rng.random_range(0..changed.len());
            changed[index] = alphabet[rng.random_range(0..alphabet.len())];
        }
        out.insert(String::from_utf8_lossy(&changed).into_owned());
    }
    out.remove(token);
    out.into_iter().collect()
}

#[test]
fn verifier_rejects_every_mutation() {
    let key = b"fuzz-key";
    let now = chrono::Utc::now().timestamp();
    let token = gateway_token::mint(key, now + 600, "127.0.0.1:8000", Some(InstanceId(77)));
    let other = gateway_token::mint(key, now + 900, "127.0.0.1:9000", None);
    let verifier = Verifier::new(key);
    let variants = mutations(&token, &other, 7);
    assert!(variants.len() > 5000, "{} variants", variants.len());
    for variant in &variants {
        // A mutation that is the other genuine token is not a bypass.
        if variant == &other {
            continue;
        }
        assert!(verifier.verify(variant, now).is_err(), "mutation accepted: {variant:?}");
    }
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || b"-_.".contains(&byte) {
                (byte as char).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

pub(crate) async fn mutated_tokens_never_pass(cache: Cache) {
    let upstream = http_upstream().await;
    let echo = tcp_echo().await;
    let gateway = TestGateway::start(cache, |cfg| {
        cfg.http_ip_rate = 0.0;
        cfg.http_token_rate = 0.0;
        cfg.tcp_ip_rate = 0.0;
        cfg.tcp_token_rate = 0.0;
    })
    .await;
    let token = gateway.mint_live(&upstream.to_string(), 600, 40).await;
    let other = gateway.mint(&upstream.to_string(), 900, Some(InstanceId(41)));
    let variants = mutations(&token, &other, 11);
    let http_sample: Vec<String> = variants.iter().step_by(2).cloned().collect();
    assert!(http_sample.len() >= 2500, "{}", http_sample.len());
    let client = client();
    let statuses: Vec<(String, u16)> = futures::stream::iter(http_sample)
        .map(|variant| {
            let url = gateway.url(&format!("/?fctftoken={}", percent_encode(&variant)));
            let request = client.get(url);
            async move { (variant, request.send().await.unwrap().status().as_u16()) }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    for (variant, status) in &statuses {
        assert_eq!(*status, 401, "HTTP accepted a mutation: {variant:?}");
    }
    // Cookie form, for the variants a cookie can carry.
    let cookie_sample: Vec<String> = variants
        .iter()
        .skip(1)
        .step_by(7)
        .filter(|variant| variant.bytes().all(|byte| byte.is_ascii_graphic() && byte != b';'))
        .cloned()
        .collect();
    for variant in &cookie_sample {
        let response = client.get(gateway.url("/")).header("cookie", format!("FCTF_Auth_Token={variant}")).send();
        assert_eq!(response.await.unwrap().status(), 401, "cookie accepted a mutation: {variant:?}");
    }
    // TCP, a sample.
    let tcp_token = gateway.mint_live(&echo.to_string(), 600, 42).await;
    let tcp_other = gateway.mint(&echo.to_string(), 900, None);
    // The token line is trimmed (a pasted token with a stray space or tab still works), so a
    // mutation that only pads the genuine token is that token, not a bypass.
    let tcp_sample = mutations(&tcp_token, &tcp_other, 13);
    for variant in
        tcp_sample.iter().step_by(40).filter(|variant| !variant.contains('\n') && variant.trim() != tcp_token)
    {
        let mut stream = tokio::net::TcpStream::connect(gateway.tcp).await.unwrap();
        read_until(&mut stream, "Please enter your token").await;
        send_line(&mut stream, variant).await;
        assert_eq!(read_to_close(&mut stream).await, "Auth failed!\n", "TCP accepted {variant:?}");
    }
    // The genuine token still works after all that.
    let genuine = client.get(gateway.url("/")).header("cookie", format!("FCTF_Auth_Token={token}")).send();
    assert_eq!(genuine.await.unwrap().status(), 200);
}

pub(crate) async fn liveness_marks_expire_and_clear(cache: Cache) {
    let now = chrono::Utc::now().timestamp();
    let id = InstanceId(rand::rng().random_range(1..i64::MAX));
    assert!(!cache.is_instance_live(id).await.unwrap());
    cache.mark_instance_live(id, now + 600).await.unwrap();
    assert!(cache.is_instance_live(id).await.unwrap());
    cache.clear_instance_live(id).await.unwrap();
    assert!(!cache.is_instance_live(id).await.unwrap());
    cache.mark_instance_live(id, now - 1).await.unwrap();
    assert!(!cache.is_instance_live(id).await.unwrap(), "a past time marks nothing");
    cache.mark_instance_live(id, now + 2).await.unwrap();
    assert!(cache.is_instance_live(id).await.unwrap());
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert!(!cache.is_instance_live(id).await.unwrap(), "the marker expires at its time");
}
