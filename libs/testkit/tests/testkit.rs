//! The test kit itself: isolation between tests, and the proxy's cut and restore.

use std::time::Duration;

use platform_testkit::{TcpProxy, eventually, fresh_pg_database};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

#[tokio::test]
async fn each_test_database_is_its_own() {
    let first = fresh_pg_database().await.unwrap();
    let second = fresh_pg_database().await.unwrap();
    assert_ne!(first.name, second.name);
    sqlx::query("CREATE TABLE only_here (id int)")
        .execute(&first.pool)
        .await
        .unwrap();
    let visible: Option<String> = sqlx::query_scalar("SELECT to_regclass('only_here')::text")
        .fetch_one(&second.pool)
        .await
        .unwrap();
    assert_eq!(
        visible, None,
        "a table made in one test database is absent from another"
    );
}

/// An echo server on 127.0.0.1:0.
async fn echo_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = [0_u8; 64];
                while let Ok(n) = socket.read(&mut buffer).await {
                    if n == 0 || socket.write_all(&buffer[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    format!("tcp://{addr}")
}

async fn echoes(stream: &mut TcpStream) -> bool {
    if stream.write_all(b"ping").await.is_err() {
        return false;
    }
    let mut buffer = [0_u8; 4];
    matches!(
        tokio::time::timeout(Duration::from_secs(2), stream.read_exact(&mut buffer)).await,
        Ok(Ok(_)) if &buffer == b"ping"
    )
}

#[tokio::test]
async fn the_proxy_forwards_until_cut_and_again_once_restored() {
    let server = echo_server().await;
    let proxy = TcpProxy::start(&server).await.unwrap();
    assert_eq!(
        proxy.url_for("postgres://user:secret@10.0.0.1:5432/db"),
        format!("postgres://user:secret@{}/db", proxy.addr())
    );

    let mut open = TcpStream::connect(proxy.addr()).await.unwrap();
    assert!(echoes(&mut open).await, "forwards while up");

    proxy.cut();
    let mut buffer = [0_u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(2), open.read(&mut buffer)).await;
    assert!(
        matches!(read, Ok(Ok(0) | Err(_))),
        "an open connection is closed by the cut: {read:?}"
    );
    let mut refused = TcpStream::connect(proxy.addr()).await.unwrap();
    assert!(
        !echoes(&mut refused).await,
        "a new connection gets nothing through"
    );

    proxy.restore();
    let mut again = TcpStream::connect(proxy.addr()).await.unwrap();
    assert!(echoes(&mut again).await, "forwards again once restored");
}

#[tokio::test]
async fn eventually_returns_the_first_value_or_says_what_it_waited_for() {
    let mut calls = 0;
    let value = eventually(Duration::from_secs(1), "the third call", || {
        calls += 1;
        let ready = calls >= 3;
        async move { ready.then_some("done") }
    })
    .await
    .unwrap();
    assert_eq!((value, calls), ("done", 3));

    let error = eventually(Duration::from_millis(100), "a miracle", || async {
        None::<()>
    })
    .await
    .unwrap_err();
    assert!(error.to_string().contains("a miracle"), "{error}");
}
