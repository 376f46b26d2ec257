//! The storefront's own behaviour, without a browser and without a platform behind it: its
//! sessions (a real Redis), CSRF, redirects, error pages and assets. The journeys through a real
//! platform, in a real browser, are `host/tests/e2e/storefront.rs`.

use std::time::Duration;

use platform_testkit::{Server, unique_name, url};
use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, SET_COOKIE};
use storefront::{App, Config};

/// A storefront on a free port whose gateway is a closed port: every call to the platform
/// fails to connect.
async fn storefront() -> String {
    platform_http::install_crypto_provider();
    let redis = url(Server::Redis).await.expect("a test Redis (REDIS_URL)");
    let config: Config = platform_config::load_from(
        "STOREFRONT",
        [
            ("STOREFRONT__HTTP__HOST", "127.0.0.1".to_owned()),
            ("STOREFRONT__HTTP__PORT", "0".to_owned()),
            ("STOREFRONT__REDIS__URL", redis),
            ("STOREFRONT__GATEWAY__URL", "http://127.0.0.1:1".to_owned()),
            ("STOREFRONT__GATEWAY__TIMEOUT_MS", "2000".to_owned()),
            ("STOREFRONT__SESSION__KEY_PREFIX", unique_name("sf")),
        ]
        .map(|(key, value)| (key.to_owned(), value)),
    )
    .expect("the test's settings load");
    let app = App::build(config).await.expect("the storefront starts");
    let base = format!("http://{}", app.http_addr());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    base
}

fn client() -> reqwest::Client {
    platform_http::install_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn session_cookie(response: &reqwest::Response) -> String {
    let set = response
        .headers()
        .get(SET_COOKIE)
        .expect("a new visitor gets a session cookie")
        .to_str()
        .unwrap()
        .to_owned();
    set.split(';').next().unwrap().to_owned()
}

#[tokio::test]
async fn a_visitor_gets_an_httponly_secure_samesite_session_and_keeps_it() {
    let base = storefront().await;
    let http = client();
    let first = http.get(format!("{base}/login")).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let set = first.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    for attribute in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(set.contains(attribute), "{set}");
    }
    let cookie = session_cookie(&first);
    assert!(
        first.headers()[CACHE_CONTROL]
            .to_str()
            .unwrap()
            .contains("no-store")
    );
    assert!(
        first.headers()[CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    let again = http
        .get(format!("{base}/login"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert!(
        again.headers().get(SET_COOKIE).is_none(),
        "a known session keeps its cookie"
    );
    let forged = http
        .get(format!("{base}/login"))
        .header("cookie", "storefront_session=../../etc/passwd")
        .send()
        .await
        .unwrap();
    assert_ne!(
        session_cookie(&forged),
        "storefront_session=../../etc/passwd",
        "an id the store never made is replaced"
    );
}

#[tokio::test]
async fn a_form_without_the_sessions_csrf_token_is_refused() {
    let base = storefront().await;
    let http = client();
    let page = http.get(format!("{base}/login")).send().await.unwrap();
    let cookie = session_cookie(&page);
    let html = page.text().await.unwrap();
    let token = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the sign-in form carries a CSRF token");

    for (what, body) in [
        ("no token", "sku=KIT-MUG&quantity=1".to_owned()),
        (
            "another token",
            "csrf=forged&sku=KIT-MUG&quantity=1".to_owned(),
        ),
    ] {
        let refused = http
            .post(format!("{base}/cart/add"))
            .header("cookie", &cookie)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{what}");
        let text = refused.text().await.unwrap();
        assert!(text.contains("This form has expired"), "{what}: {text}");
    }
    // Another visitor's token is not this one's.
    let other = http.get(format!("{base}/login")).send().await.unwrap();
    let refused = http
        .post(format!("{base}/logout"))
        .header("cookie", session_cookie(&other))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(format!("csrf={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_page_says_in_words_when_the_platform_cannot_be_reached() {
    let base = storefront().await;
    let response = client().get(format!("{base}/")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        response.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = response.text().await.unwrap();
    assert!(
        html.contains("cannot reach its back end"),
        "the page says why: {html}"
    );
    assert!(html.contains("id=\"nav-login\""), "with the shop's header");
}

#[tokio::test]
async fn a_page_for_customers_sends_a_visitor_to_sign_in_and_back() {
    let base = storefront().await;
    for path in ["/orders", "/notifications", "/account/cards", "/admin"] {
        let response = client().get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        let location = response.headers()["location"].to_str().unwrap();
        assert_eq!(
            location,
            format!("/login?next={}", path.replace('/', "%2F")),
            "{path}"
        );
    }
    // Only this shop's own paths are followed after signing in.
    let page = client()
        .get(format!("{base}/login?next=https://evil.example/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("name=\"next\" value=\"/\""), "{page}");
}

#[tokio::test]
async fn an_unknown_page_or_order_is_a_404_page() {
    let base = storefront().await;
    for path in ["/nowhere", "/orders/not-an-id"] {
        let response = client().get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(
            response
                .text()
                .await
                .unwrap()
                .contains("<h1>Not found</h1>")
        );
    }
}

#[tokio::test]
async fn assets_are_cached_for_good_and_revalidated_by_tag() {
    let base = storefront().await;
    let page = client()
        .get(format!("{base}/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for asset in ["/static/app.css?v=", "/static/app.js?v="] {
        let start = page.find(asset).expect("the page links its assets");
        let url = &page[start..start + page[start..].find('"').unwrap()];
        let response = client().get(format!("{base}{url}")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{url}");
        assert!(
            response.headers()[CACHE_CONTROL]
                .to_str()
                .unwrap()
                .contains("immutable")
        );
        let tag = response.headers()[ETAG].clone();
        let again = client()
            .get(format!("{base}{url}"))
            .header("if-none-match", tag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{url}");
    }
}
