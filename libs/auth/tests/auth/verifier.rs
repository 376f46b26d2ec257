//! `JwksVerifier` against a real (stand-in) JWKS endpoint.

use std::time::Duration;

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use platform_auth::{AuthError, Claims, Role, TokenSigner};
use serde_json::json;
use tokio::task::JoinSet;

use platform_testkit::service::{JwksStandIn, claims, jwk_set};

use crate::helpers::{VerifierOf as _, b64_json, customer, fixture};

#[tokio::test]
async fn a_valid_token_is_accepted_with_its_claims() {
    platform_telemetry::init_for_tests();
    let signer = TokenSigner::generate("key-1");
    let jwks = JwksStandIn::start(signer.jwk_set()).await;
    let claims = claims(&[Role::Customer, Role::Admin]);

    let user = jwks
        .verifier()
        .verify(&signer.sign(&claims).unwrap())
        .await
        .unwrap();

    assert_eq!(user.user_id, claims.sub);
    assert_eq!(user.email, claims.email);
    assert_eq!(user.roles, vec![Role::Customer, Role::Admin]);
    assert_eq!(user.expires_at, claims.exp);
    assert_eq!(user.token_id, claims.jti);
}

#[tokio::test]
async fn an_expired_token_is_rejected_as_expired() {
    platform_telemetry::init_for_tests();
    let signer = TokenSigner::generate("key-1");
    let jwks = JwksStandIn::start(signer.jwk_set()).await;
    let verifier = jwks.verifier_with(|config| config.with_leeway(Duration::from_secs(5)));
    let fresh = customer();
    let expired = Claims {
        iat: fresh.iat - chrono::TimeDelta::minutes(20),
        exp: fresh.iat - chrono::TimeDelta::minutes(5),
        ..fresh
    };

    let result = verifier.verify(&signer.sign(&expired).unwrap()).await;

    assert_eq!(result, Err(AuthError::Expired));
}

#[tokio::test]
async fn a_token_whose_payload_was_tampered_with_is_rejected() {
    platform_telemetry::init_for_tests();
    let signer = TokenSigner::generate("key-1");
    let jwks = JwksStandIn::start(signer.jwk_set()).await;
    let token = signer.sign(&customer()).unwrap();
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut payload: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &parts[1])
            .unwrap(),
    )
    .unwrap();
    payload["roles"] = json!(["customer", "admin"]);
    parts[1] = b64_json(&payload);

    let result = jwks.verifier().verify(&parts.join(".")).await;

    assert_eq!(result, Err(AuthError::BadSignature));
}

#[tokio::test]
async fn a_token_signed_by_another_key_under_a_published_kid_is_rejected() {
    platform_telemetry::init_for_tests();
    let published = TokenSigner::generate("key-1");
    let impostor = TokenSigner::generate("key-1");
    let jwks = JwksStandIn::start(published.jwk_set()).await;

    let result = jwks
        .verifier()
        .verify(&impostor.sign(&customer()).unwrap())
        .await;

    assert_eq!(result, Err(AuthError::BadSignature));
}

#[tokio::test]
async fn an_unknown_kid_makes_the_verifier_refetch_and_accept_the_rotated_key() {
    platform_telemetry::init_for_tests();
    let old = TokenSigner::generate("key-old");
    let new = TokenSigner::generate("key-new");
    let jwks = JwksStandIn::start(old.jwk_set()).await;
    let verifier = jwks.verifier_with(|config| config.with_min_refresh_interval(Duration::ZERO));
    verifier
        .verify(&old.sign(&customer()).unwrap())
        .await
        .unwrap();
    assert_eq!(
        verifier.verify(&new.sign(&customer()).unwrap()).await,
        Err(AuthError::UnknownKey),
        "the new key is not published yet"
    );

    jwks.serve(jwk_set(&[&old, &new]));

    verifier
        .verify(&new.sign(&customer()).unwrap())
        .await
        .unwrap();
    verifier
        .verify(&old.sign(&customer()).unwrap())
        .await
        .unwrap();
    assert_eq!(
        jwks.fetches(),
        3,
        "one fetch per unknown kid, none for known ones"
    );
}

#[tokio::test]
async fn a_key_dropped_from_the_jwks_stops_verifying_after_the_next_refresh() {
    platform_telemetry::init_for_tests();
    let old = TokenSigner::generate("key-old");
    let new = TokenSigner::generate("key-new");
    let jwks = JwksStandIn::start(old.jwk_set()).await;
    let verifier = jwks.verifier();
    verifier
        .verify(&old.sign(&customer()).unwrap())
        .await
        .unwrap();

    jwks.serve(new.jwk_set());
    assert_eq!(verifier.refresh().await.unwrap(), 1);

    assert_eq!(
        verifier.verify(&old.sign(&customer()).unwrap()).await,
        Err(AuthError::UnknownKey)
    );
    verifier
        .verify(&new.sign(&customer()).unwrap())
        .await
        .unwrap();
}

#[tokio::test]
async fn cached_keys_keep_verifying_while_the_jwks_server_is_down() {
    platform_telemetry::init_for_tests();
    let signer = TokenSigner::generate("key-1");
    let mut jwks = JwksStandIn::start(signer.jwk_set()).await;
    let verifier = jwks.verifier_with(|config| config.with_min_refresh_interval(Duration::ZERO));
    verifier
        .verify(&signer.sign(&customer()).unwrap())
        .await
        .unwrap();

    jwks.stop().await;

    verifier
        .verify(&signer.sign(&customer()).unwrap())
        .await
        .unwrap();
    assert!(
        verifier.refresh().await.is_err(),
        "the server is really down"
    );
    verifier
        .verify(&signer.sign(&customer()).unwrap())
        .await
        .unwrap();
    let unknown = TokenSigner::generate("key-2");
    assert_eq!(
        verifier.verify(&unknown.sign(&customer()).unwrap()).await,
        Err(AuthError::KeysUnavailable),
        "an uncached key cannot be told unknown while the keys cannot be fetched"
    );
}

#[tokio::test]
async fn a_verifier_that_never_reached_the_jwks_server_reports_keys_unavailable() {
    platform_telemetry::init_for_tests();
    let signer = TokenSigner::generate("key-1");
    let mut jwks = JwksStandIn::start(signer.jwk_set()).await;
    let verifier = jwks.verifier();
    jwks.stop().await;

    let result = verifier.verify(&signer.sign(&customer()).unwrap()).await;

    assert_eq!(result, Err(AuthError::KeysUnavailable));
}

#[tokio::test]
async fn a_failed_fetch_is_retried_after_a_moment_not_after_the_full_interval() {
    platform_telemetry::init_for_tests();
    let signer = TokenSigner::generate("key-1");
    // The issuer is still starting: its key set is empty, so the first fetch fails.
    let jwks = JwksStandIn::start(jwk_set(&[])).await;
    let verifier = jwks.verifier();
    let token = signer.sign(&customer()).unwrap();
    assert_eq!(
        verifier.verify(&token).await,
        Err(AuthError::KeysUnavailable)
    );

    jwks.serve(signer.jwk_set());
    assert_eq!(
        verifier.verify(&token).await,
        Err(AuthError::KeysUnavailable),
        "not refetched at once"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;

    assert!(
        verifier.verify(&token).await.is_ok(),
        "refetched after a moment, not ten seconds"
    );
    assert_eq!(jwks.fetches(), 2);
}

#[tokio::test]
async fn preloaded_keys_verify_without_any_fetch() {
    platform_telemetry::init_for_tests();
    let signer = TokenSigner::generate("key-1");
    let jwks = JwksStandIn::start(jwk_set(&[])).await;
    let verifier = jwks.verifier();

    assert_eq!(verifier.preload(&signer.jwk_set()).unwrap(), 1);
    let claims = customer();
    let user = verifier
        .verify(&signer.sign(&claims).unwrap())
        .await
        .unwrap();

    assert_eq!(user.email, claims.email);
    assert_eq!(
        jwks.fetches(),
        0,
        "the issuer verifies its own tokens without a round trip"
    );
    assert!(
        verifier.preload(&jwk_set(&[])).is_err(),
        "an empty set is refused, not silently accepted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_unknown_kids_causes_at_most_one_fetch() {
    platform_telemetry::init_for_tests();
    let signer = TokenSigner::generate("key-1");
    let jwks = JwksStandIn::start(signer.jwk_set()).await;
    jwks.set_delay(Duration::from_millis(200));
    let verifier = jwks.verifier(); // default interval: 10 s
    let mut burst = JoinSet::new();
    for n in 0..50 {
        let token = TokenSigner::generate(format!("garbage-{n}"))
            .sign(&customer())
            .unwrap();
        let verifier = verifier.clone();
        burst.spawn(async move { verifier.verify(&token).await });
    }

    let results = burst.join_all().await;

    assert!(
        results
            .iter()
            .all(|result| *result == Err(AuthError::UnknownKey))
    );
    assert_eq!(jwks.fetches(), 1);
    // The one fetch did load the real key.
    verifier
        .verify(&signer.sign(&customer()).unwrap())
        .await
        .unwrap();
    assert_eq!(jwks.fetches(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_verifications_share_one_fetch() {
    platform_telemetry::init_for_tests();
    let signer = TokenSigner::generate("key-1");
    let jwks = JwksStandIn::start(signer.jwk_set()).await;
    jwks.set_delay(Duration::from_millis(200));
    let verifier = jwks.verifier_with(|config| config.with_min_refresh_interval(Duration::ZERO));
    let mut requests = JoinSet::new();
    for _ in 0..20 {
        let token = signer.sign(&customer()).unwrap();
        let verifier = verifier.clone();
        requests.spawn(async move { verifier.verify(&token).await });
    }

    let results = requests.join_all().await;

    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(jwks.fetches(), 1);
}

#[tokio::test]
async fn the_background_refresh_learns_a_rotated_key_before_a_token_needs_it() {
    platform_telemetry::init_for_tests();
    let old = TokenSigner::generate("key-old");
    let new = TokenSigner::generate("key-new");
    let jwks = JwksStandIn::start(old.jwk_set()).await;
    let verifier =
        jwks.verifier_with(|config| config.with_min_refresh_interval(Duration::from_secs(3600)));
    let refresher = verifier.spawn_refresh(Duration::from_secs(1));
    verifier
        .verify(&old.sign(&customer()).unwrap())
        .await
        .unwrap();

    jwks.serve(jwk_set(&[&old, &new]));
    tokio::time::timeout(Duration::from_secs(10), async {
        while !verifier.cached_kids().contains(&"key-new".to_owned()) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the background refresh never learned the new key");

    let result = verifier.verify(&new.sign(&customer()).unwrap()).await;
    refresher.abort();
    result.unwrap();
}

#[tokio::test]
async fn the_background_refresh_stops_once_the_verifier_is_dropped() {
    platform_telemetry::init_for_tests();
    let signer = TokenSigner::generate("key-1");
    let jwks = JwksStandIn::start(signer.jwk_set()).await;
    let verifier = jwks.verifier();
    let refresher = verifier.spawn_refresh(Duration::from_secs(1));

    drop(verifier);

    tokio::time::timeout(Duration::from_secs(5), refresher)
        .await
        .expect("the refresh task outlived its verifier")
        .unwrap();
}

#[tokio::test]
async fn a_token_for_another_audience_is_rejected() {
    platform_telemetry::init_for_tests();
    let signer = TokenSigner::generate("key-1");
    let jwks = JwksStandIn::start(signer.jwk_set()).await;
    let claims = Claims {
        aud: "some-other-api".to_owned(),
        ..customer()
    };

    let result = jwks.verifier().verify(&signer.sign(&claims).unwrap()).await;

    assert_eq!(result, Err(AuthError::WrongAudience));
}

#[tokio::test]
async fn a_token_from_another_issuer_is_rejected() {
    platform_telemetry::init_for_tests();
    let signer = TokenSigner::generate("key-1");
    let jwks = JwksStandIn::start(signer.jwk_set()).await;
    let claims = Claims {
        iss: "someone-else".to_owned(),
        ..customer()
    };

    let result = jwks.verifier().verify(&signer.sign(&claims).unwrap()).await;

    assert_eq!(result, Err(AuthError::WrongIssuer));
}

#[tokio::test]
async fn an_unsigned_token_with_alg_none_is_rejected() {
    platform_telemetry::init_for_tests();
    let signer = TokenSigner::generate("key-1");
    let jwks = JwksStandIn::start(signer.jwk_set()).await;
    let header = json!({"alg": "none", "typ": "JWT", "kid": "key-1"});
    let payload = serde_json::to_value(customer()).unwrap();
    let token = format!("{}.{}.", b64_json(&header), b64_json(&payload));

    let result = jwks.verifier().verify(&token).await;

    assert_eq!(result, Err(AuthError::Malformed));
}

#[tokio::test]
async fn an_hs256_token_keyed_with_the_public_key_is_rejected() {
    platform_telemetry::init_for_tests();
    let signer = TokenSigner::generate("key-1");
    let jwks = JwksStandIn::start(signer.jwk_set()).await;
    let verifier = jwks.verifier();
    let public_jwk = serde_json::to_value(signer.public_jwk()).unwrap();
    let x = public_jwk["x"].as_str().unwrap();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("key-1".to_owned());
    let raw_key =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, x).unwrap();

    for secret in [
        x.as_bytes(),
        &raw_key[..],
        public_jwk.to_string().as_bytes(),
    ] {
        let token =
            jsonwebtoken::encode(&header, &customer(), &EncodingKey::from_secret(secret)).unwrap();
        assert_eq!(
            verifier.verify(&token).await,
            Err(AuthError::DisallowedAlgorithm)
        );
    }
}

#[tokio::test]
async fn an_rs256_token_is_accepted_with_an_rsa_key_and_refused_under_another_rsa_algorithm() {
    platform_telemetry::init_for_tests();
    let private_key = EncodingKey::from_rsa_pem(fixture("rsa-test-only.pem").as_bytes()).unwrap();
    let mut jwk = Jwk::from_encoding_key(&private_key, Algorithm::RS256).unwrap();
    jwk.common.key_id = Some("rsa-1".to_owned());
    let jwks = JwksStandIn::start(jsonwebtoken::jwk::JwkSet { keys: vec![jwk] }).await;
    let verifier = jwks.verifier();
    let sign = |algorithm| {
        let mut header = Header::new(algorithm);
        header.kid = Some("rsa-1".to_owned());
        jsonwebtoken::encode(&header, &customer(), &private_key).unwrap()
    };

    verifier.verify(&sign(Algorithm::RS256)).await.unwrap();
    assert_eq!(
        verifier.verify(&sign(Algorithm::PS256)).await,
        Err(AuthError::DisallowedAlgorithm),
        "the key is published for RS256 only"
    );
}

#[tokio::test]
async fn a_key_loaded_from_an_openssl_pem_signs_tokens_its_public_jwk_verifies() {
    platform_telemetry::init_for_tests();
    let signer = TokenSigner::from_pkcs8_pem("pem-1", &fixture("ed25519-test-only.pem")).unwrap();
    // `openssl pkey -in ed25519-test-only.pem -pubout -outform DER | tail -c 32 | base64url`
    let x = serde_json::to_value(signer.public_jwk()).unwrap()["x"].clone();
    assert_eq!(x, json!("rXujJxfPti1qZTntfkuD_ASgEhFWch4PMZw-xGfNeBY"));
    let jwks = JwksStandIn::start(signer.jwk_set()).await;

    let user = jwks
        .verifier()
        .verify(&signer.sign(&customer()).unwrap())
        .await
        .unwrap();

    assert_eq!(user.roles, vec![Role::Customer]);
}

#[tokio::test]
async fn a_token_without_a_kid_is_rejected_without_fetching_keys() {
    platform_telemetry::init_for_tests();
    let signer = TokenSigner::generate("key-1");
    let jwks = JwksStandIn::start(signer.jwk_set()).await;
    let token = signer.sign(&customer()).unwrap();
    let signature = token.rsplit('.').next().unwrap();
    let payload = token.split('.').nth(1).unwrap();
    let header = b64_json(&json!({"alg": "EdDSA", "typ": "JWT"}));

    let result = jwks
        .verifier()
        .verify(&format!("{header}.{payload}.{signature}"))
        .await;

    assert_eq!(result, Err(AuthError::Malformed));
    assert_eq!(jwks.fetches(), 0);
}

#[tokio::test]
async fn keys_are_fetched_on_first_use_and_cached_by_kid() {
    platform_telemetry::init_for_tests();
    let signer = TokenSigner::generate("key-1");
    let jwks = JwksStandIn::start(signer.jwk_set()).await;
    let verifier = jwks.verifier();

    let expected = platform_config::JwtSettings::default();
    assert_eq!(verifier.config().issuer, expected.issuer);
    assert_eq!(verifier.config().audience, expected.audience);
    assert!(verifier.cached_kids().is_empty());
    verifier
        .verify(&signer.sign(&customer()).unwrap())
        .await
        .unwrap();
    assert_eq!(verifier.cached_kids(), vec!["key-1".to_owned()]);
}
