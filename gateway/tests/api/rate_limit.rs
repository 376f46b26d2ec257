//! Rate limits in Redis: 429 with headers, shared between gateway instances, per user or per
//! address, failing open when Redis is down; permits leased in batches for large limits, and
//! full windows refused without asking Redis.

use gateway::config::{ClassLimitSettings, Config};
use platform_config::Secret;
use platform_testkit::{Server, TcpProxy, unique_name, url};

use crate::helpers::{
    ECHO_ROUTES, StandIn, config, echo_setup, metric, problem, route_file, spawn_app,
};

#[tokio::test]
async fn over_the_limit_a_client_gets_a_429_problem_with_retry_after_and_ratelimit_headers() {
    let setup = echo_setup(|config| config.rate_limit.read = ClassLimitSettings::new(3, 60)).await;
    for remaining in ["2", "1", "0"] {
        let response = setup.gateway.get("/api/v1/echo").send().await.unwrap();
        assert_eq!(response.status(), 200);
        let headers = response.headers();
        assert_eq!(headers["ratelimit-limit"], "3");
        assert_eq!(headers["ratelimit-remaining"], remaining);
        assert_eq!(headers["ratelimit-policy"], "3;w=60");
        let reset: u64 = headers["ratelimit-reset"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&reset), "{reset}");
    }

    let response = setup.gateway.get("/api/v1/echo").send().await.unwrap();
    let headers = response.headers().clone();
    let body = problem(response, 429).await;
    assert!(
        body["detail"].as_str().unwrap().contains("`read`"),
        "{body}"
    );
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(headers["ratelimit-remaining"], "0");
    assert_eq!(headers["ratelimit-reset"], headers["retry-after"]);
    assert_eq!(
        setup.upstream.hits(),
        3,
        "the refused request never left the gateway"
    );
}

#[tokio::test]
async fn two_gateway_instances_share_one_limit() {
    let upstream = StandIn::start("echo").await;
    let mut first = config(
        ECHO_ROUTES,
        &[("echo", &upstream.url)],
        "http://127.0.0.1:9/jwks",
    )
    .await;
    first.rate_limit.read = ClassLimitSettings::new(4, 60);
    let mut second = first.clone();
    second.routes.file = Some(route_file(ECHO_ROUTES));
    let first = spawn_app(first).await;
    let second = spawn_app(second).await;

    let mut statuses = Vec::new();
    for gateway in [&first, &second, &first, &second, &first, &second] {
        statuses.push(
            gateway
                .get("/api/v1/echo")
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses, [200, 200, 200, 200, 429, 429]);
    assert_eq!(upstream.hits(), 4);
}

#[tokio::test]
async fn users_are_limited_one_by_one_and_anonymous_clients_by_address() {
    let setup = echo_setup(|config| {
        config.rate_limit.read = ClassLimitSettings::new(2, 60);
        config.rate_limit.trust_forwarded_for = true;
    })
    .await;
    let ada = setup.identities.customer().token;
    let bob = setup.identities.customer().token;
    let status = |path: &'static str, token: Option<String>, forwarded: &'static str| {
        let mut request = setup.gateway.get(path).header("x-forwarded-for", forwarded);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };

    // Same address, two users: each has their own quota.
    for _ in 0..2 {
        assert_eq!(
            status("/api/v1/private", Some(ada.clone()), "198.51.100.1").await,
            200
        );
    }
    assert_eq!(
        status("/api/v1/private", Some(ada.clone()), "198.51.100.1").await,
        429
    );
    assert_eq!(
        status("/api/v1/private", Some(bob.clone()), "198.51.100.1").await,
        200
    );

    // Anonymous: by address, which the trusted proxy in front reports.
    for _ in 0..2 {
        assert_eq!(status("/api/v1/echo", None, "203.0.113.1").await, 200);
    }
    assert_eq!(status("/api/v1/echo", None, "203.0.113.1").await, 429);
    assert_eq!(
        status("/api/v1/echo", None, "10.0.0.1, 203.0.113.2").await,
        200
    );
}

/// A missing, forged or foreign token used to skip the limiter altogether (authentication ran
/// first and answered 401): such requests count against the client's address like anonymous
/// ones, and past the limit get 429s.
#[tokio::test]
async fn requests_with_a_missing_or_bad_token_are_limited_by_address() {
    let setup = echo_setup(|config| {
        config.rate_limit.read = ClassLimitSettings::new(3, 60);
        config.rate_limit.trust_forwarded_for = true;
    })
    .await;
    let ada = setup.identities.customer().token;
    let mut forged = ada.clone();
    forged.push('x');
    let send = |path: &'static str, token: Option<&str>, forwarded: &'static str| {
        let mut request = setup.gateway.get(path).header("x-forwarded-for", forwarded);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move { request.send().await.unwrap() }
    };

    let mut remaining = Vec::new();
    for (path, token) in [
        ("/api/v1/private", None),
        ("/api/v1/private", Some(forged.as_str())),
        ("/api/v1/maybe", Some(forged.as_str())),
    ] {
        let response = send(path, token, "203.0.113.7").await;
        remaining.push(response.headers()["ratelimit-remaining"].clone());
        problem(response, 401).await;
    }
    assert_eq!(remaining, ["2", "1", "0"]);
    let body = problem(
        send("/api/v1/private", Some(&forged), "203.0.113.7").await,
        429,
    )
    .await;
    assert!(
        body["detail"].as_str().unwrap().contains("`read`"),
        "{body}"
    );
    // The same address's anonymous requests share that count...
    problem(send("/api/v1/echo", None, "203.0.113.7").await, 429).await;
    // ...but another address, and a user with a valid token, have quotas of their own.
    problem(send("/api/v1/private", None, "203.0.113.8").await, 401).await;
    assert_eq!(
        send("/api/v1/private", Some(&ada), "203.0.113.7")
            .await
            .status(),
        200
    );
    assert_eq!(setup.upstream.hits(), 1, "no refused request was forwarded");
}

#[tokio::test]
async fn without_a_trusted_proxy_a_client_cannot_dodge_its_limit_with_x_forwarded_for() {
    let setup = echo_setup(|config| config.rate_limit.read = ClassLimitSettings::new(2, 60)).await;
    let mut statuses = Vec::new();
    for forwarded in ["203.0.113.1", "203.0.113.2", "203.0.113.3"] {
        let response = setup
            .gateway
            .get("/api/v1/echo")
            .header("x-forwarded-for", forwarded)
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 429]);
}

#[tokio::test]
async fn when_redis_is_down_requests_pass_unlimited_and_the_failures_are_counted() {
    let redis = TcpProxy::start(&url(Server::Redis).await.unwrap())
        .await
        .unwrap();
    let upstream = StandIn::start("echo").await;
    let mut config = config(
        ECHO_ROUTES,
        &[("echo", &upstream.url)],
        "http://127.0.0.1:9/jwks",
    )
    .await;
    config.redis.url = Secret::new(redis.url_for(&url(Server::Redis).await.unwrap()));
    config.rate_limit.read = ClassLimitSettings::new(2, 60);
    config.rate_limit.key_prefix = unique_name("gw");
    let gateway = spawn_app(config).await;

    let response = gateway.get("/api/v1/echo").send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["ratelimit-remaining"],
        "1",
        "Redis answers"
    );

    redis.cut();
    for _ in 0..5 {
        let response = gateway.get("/api/v1/echo").send().await.unwrap();
        assert_eq!(response.status(), 200, "fails open");
        assert!(
            !response.headers().contains_key("ratelimit-remaining"),
            "no quota is claimed when none was counted"
        );
    }
    let metrics = gateway.metrics().await;
    let failures: f64 = metric(&metrics, "gateway_rate_limit_failures_total");
    assert!(failures >= 5.0, "{failures}");
    assert!(
        metrics
            .contains(r#"gateway_rate_limit_decisions_total{class="read",decision="failed_open"}"#),
        "{metrics}"
    );

    // Back: the limit holds again (1 used before the outage, 1 left).
    redis.restore();
    platform_testkit::eventually(
        std::time::Duration::from_secs(10),
        "Redis to be used again",
        || async {
            let response = gateway.get("/api/v1/echo").send().await.unwrap();
            response
                .headers()
                .contains_key("ratelimit-remaining")
                .then_some(())
        },
    )
    .await
    .unwrap();
    assert_eq!(
        gateway.get("/api/v1/echo").send().await.unwrap().status(),
        429
    );
}

/// The counter of an anonymous local client's `read` window, as Redis holds it.
async fn read_counter(prefix: &str) -> Option<u64> {
    let mut redis = platform_testkit::redis_connection().await.unwrap();
    redis::cmd("GET")
        .arg(format!("{prefix}:read:ip:127.0.0.1"))
        .query_async(&mut redis)
        .await
        .unwrap()
}

fn with_read_limit(config: &mut Config, limit: u64) -> String {
    config.rate_limit.read = ClassLimitSettings::new(limit, 60);
    config.rate_limit.key_prefix.clone()
}

fn remaining(response: &reqwest::Response) -> u64 {
    response.headers()["ratelimit-remaining"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn with_a_large_limit_a_gateway_asks_redis_once_per_hundred_requests_and_counts_down_by_one()
{
    let mut prefix = String::new();
    let setup = echo_setup(|config| {
        prefix = with_read_limit(config, 10_000);
        config.rate_limit.timeout_ms = 2_000;
    })
    .await;

    for sent in 1..=250_u64 {
        let response = setup.gateway.get("/api/v1/echo").send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["ratelimit-limit"], "10000");
        assert_eq!(remaining(&response), 10_000 - sent, "request {sent}");
    }
    assert_eq!(
        read_counter(&prefix).await,
        Some(300),
        "three leases of 100 permits: three calls to Redis for 250 requests"
    );
    assert_eq!(setup.upstream.hits(), 250);
}

#[tokio::test]
async fn concurrent_requests_of_one_client_share_one_call_for_permits() {
    let mut prefix = String::new();
    // Loaded machines answer slower than the default Redis deadline; a request that fails open
    // would carry no count, and this test is about the counts.
    let setup = echo_setup(|config| {
        prefix = with_read_limit(config, 10_000);
        config.rate_limit.timeout_ms = 2_000;
    })
    .await;

    let responses = futures::future::join_all(
        (0..50).map(|_| async { setup.gateway.get("/api/v1/echo").send().await.unwrap() }),
    )
    .await;
    let mut left: Vec<u64> = responses
        .iter()
        .map(|response| {
            assert_eq!(response.status(), 200);
            remaining(response)
        })
        .collect();
    left.sort_unstable();
    assert_eq!(
        left,
        (9_950..10_000).collect::<Vec<_>>(),
        "each request took its own permit"
    );
    assert_eq!(
        read_counter(&prefix).await,
        Some(100),
        "one lease of 100 served all 50, instead of one lease per request in flight"
    );
}

#[tokio::test]
async fn two_gateway_instances_leasing_from_one_limit_never_admit_more_than_it() {
    let upstream = StandIn::start("echo").await;
    let mut first = config(
        ECHO_ROUTES,
        &[("echo", &upstream.url)],
        "http://127.0.0.1:9/jwks",
    )
    .await;
    // 1,000 per window: each instance leases 10 permits at a time.
    let prefix = with_read_limit(&mut first, 1_000);
    let mut second = first.clone();
    second.routes.file = Some(route_file(ECHO_ROUTES));
    let first = spawn_app(first).await;
    let second = spawn_app(second).await;

    // Twice as many requests to the first as to the second, until the first refusal: the
    // second may then hold up to 9 unspent permits, the first too.
    let mut admitted = [0_u64; 2];
    let mut refused = [false; 2];
    let mut turn = 0_usize;
    while !refused.iter().any(|&refused| refused) {
        let which = usize::from(turn % 3 == 2);
        turn += 1;
        let gateway = [&first, &second][which];
        match gateway
            .get("/api/v1/echo")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
        {
            200 => admitted[which] += 1,
            429 => refused[which] = true,
            other => panic!("unexpected status {other}"),
        }
        assert!(turn <= 2_000, "no refusal after {turn} requests");
    }
    let total: u64 = admitted.iter().sum();
    assert!(
        (1_000 - 2 * (10 - 1)..=1_000).contains(&total),
        "admitted {total} ({admitted:?}) at the first refusal"
    );

    // Both now spend what they hold, and no more.
    while !refused.iter().all(|&refused| refused) {
        for (which, gateway) in [&first, &second].into_iter().enumerate() {
            match gateway
                .get("/api/v1/echo")
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
            {
                200 => admitted[which] += 1,
                429 => refused[which] = true,
                other => panic!("unexpected status {other}"),
            }
        }
    }
    let total: u64 = admitted.iter().sum();
    assert!(total <= 1_000, "admitted {total} ({admitted:?})");
    assert_eq!(upstream.hits() as u64, total);
    for gateway in [&first, &second] {
        for _ in 0..3 {
            assert_eq!(
                gateway.get("/api/v1/echo").send().await.unwrap().status(),
                429
            );
        }
    }
    assert_eq!(upstream.hits() as u64, total);
    let counter = read_counter(&prefix).await.unwrap();
    assert!(counter >= total, "{counter}");
}

#[tokio::test]
async fn after_a_refusal_a_client_gets_429s_without_the_gateway_asking_redis_again() {
    let mut prefix = String::new();
    let setup = echo_setup(|config| prefix = with_read_limit(config, 3)).await;
    // Another gateway spent the window already.
    let mut redis = platform_testkit::redis_connection().await.unwrap();
    let key = format!("{prefix}:read:ip:127.0.0.1");
    let (): () = redis::cmd("SET")
        .arg(&key)
        .arg(3)
        .arg("PX")
        .arg(60_000)
        .query_async(&mut redis)
        .await
        .unwrap();

    let response = setup.gateway.get("/api/v1/echo").send().await.unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(read_counter(&prefix).await, Some(4), "Redis refused it");

    for _ in 0..5 {
        let response = setup.gateway.get("/api/v1/echo").send().await.unwrap();
        let headers = response.headers().clone();
        problem(response, 429).await;
        let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry_after), "{retry_after}");
        assert_eq!(headers["ratelimit-reset"], headers["retry-after"]);
        assert_eq!(headers["ratelimit-remaining"], "0");
    }
    assert_eq!(
        read_counter(&prefix).await,
        Some(4),
        "the refusals after the first one were decided without Redis"
    );
    assert_eq!(setup.upstream.hits(), 0);
}

#[tokio::test]
async fn when_redis_is_down_held_permits_are_spent_and_then_requests_pass_unlimited() {
    let redis = TcpProxy::start(&url(Server::Redis).await.unwrap())
        .await
        .unwrap();
    let upstream = StandIn::start("echo").await;
    let mut config = config(
        ECHO_ROUTES,
        &[("echo", &upstream.url)],
        "http://127.0.0.1:9/jwks",
    )
    .await;
    config.redis.url = Secret::new(redis.url_for(&url(Server::Redis).await.unwrap()));
    with_read_limit(&mut config, 10_000);
    let gateway = spawn_app(config).await;
    let response = gateway.get("/api/v1/echo").send().await.unwrap();
    assert_eq!(remaining(&response), 9_999, "a lease of 100, one spent");

    redis.cut();
    for left in (9_900..9_999).rev() {
        let response = gateway.get("/api/v1/echo").send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(remaining(&response), left, "held permits need no Redis");
    }
    // None held: the first request's call fails, and those waiting for it fail open with it.
    let responses = futures::future::join_all(
        (0..20).map(|_| async { gateway.get("/api/v1/echo").send().await.unwrap() }),
    )
    .await;
    for response in responses {
        assert_eq!(response.status(), 200, "fails open");
        assert!(!response.headers().contains_key("ratelimit-remaining"));
    }
    let metrics = gateway.metrics().await;
    let failures: f64 = metric(&metrics, "gateway_rate_limit_failures_total");
    assert!(failures >= 20.0, "{failures}");
}
