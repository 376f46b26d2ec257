use crate::helpers::{Dependencies, outage_and_recovery, spawn_app};

#[tokio::test]
async fn readiness_reports_mongo_down_while_it_is_unreachable_and_ready_again_once_it_returns()
-> anyhow::Result<()> {
    let dependencies = Dependencies::connect().await?;
    let app = spawn_app(&dependencies.health).await?;

    outage_and_recovery(&app, &dependencies.mongo, "mongodb").await
}
