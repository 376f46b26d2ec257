//! Sessions in a real Redis: what two requests of one visitor, running at once, leave behind.

use std::time::Duration;

use platform_testkit::{redis_connection, unique_name};
use storefront::session::{Customer, Sessions};

async fn sessions() -> Sessions {
    let redis = redis_connection().await.expect("a test Redis (REDIS_URL)");
    Sessions::new(redis, &unique_name("sf"), Duration::from_secs(600), true)
}

fn customer(token: &str) -> Customer {
    Customer {
        email: "ann@example.com".to_owned(),
        display_name: "Ann".to_owned(),
        admin: false,
        access_token: token.to_owned(),
        access_expires_at: 1,
        refresh_token: format!("refresh-{token}"),
    }
}

#[tokio::test]
async fn a_cart_change_does_not_write_back_tokens_another_request_refreshed() {
    let sessions = sessions().await;
    let mut first = sessions.load(None).await.unwrap();
    first.set_customer(Some(customer("old")));
    sessions.save(&mut first).await.unwrap();

    // Two requests of the same visitor load the session at once.
    let mut refreshing = sessions.load(Some(&first.id)).await.unwrap();
    let mut shopping = sessions.load(Some(&first.id)).await.unwrap();
    refreshing.set_customer(Some(customer("new")));
    sessions.save(&mut refreshing).await.unwrap();
    shopping.data_mut().add_to_cart("KIT-MUG", 2);
    sessions.save(&mut shopping).await.unwrap();

    let now = sessions.load(Some(&first.id)).await.unwrap();
    assert_eq!(now.data.cart_count(), 2, "the cart change is kept");
    assert_eq!(
        now.data.customer.unwrap().access_token,
        "new",
        "and so are the refreshed tokens"
    );
}

#[tokio::test]
async fn one_request_at_a_time_refreshes_a_sessions_tokens() {
    let sessions = sessions().await;
    let mut session = sessions.load(None).await.unwrap();
    sessions.save(&mut session).await.unwrap();
    assert!(sessions.lock_refresh(&session).await.unwrap());
    assert!(!sessions.lock_refresh(&session).await.unwrap(), "held");
    sessions.unlock_refresh(&session).await.unwrap();
    assert!(sessions.lock_refresh(&session).await.unwrap(), "given back");
}

#[tokio::test]
async fn signing_in_moves_the_session_to_a_new_id_and_forgets_the_old() {
    let sessions = sessions().await;
    let mut session = sessions.load(None).await.unwrap();
    session.data_mut().add_to_cart("KIT-MUG", 1);
    sessions.save(&mut session).await.unwrap();
    let (old_id, old_csrf) = (session.id.clone(), session.data.csrf.clone());

    sessions.renew(&mut session).await.unwrap();
    session.set_customer(Some(customer("t")));
    sessions.save(&mut session).await.unwrap();

    assert_ne!(session.id, old_id);
    assert_ne!(session.data.csrf, old_csrf);
    let old = sessions.load(Some(&old_id)).await.unwrap();
    assert!(old.is_new, "the old id names nothing any more");
    let new = sessions.load(Some(&session.id)).await.unwrap();
    assert_eq!(new.data.cart_count(), 1, "the cart came along");
    assert!(new.data.customer.is_some());
}
