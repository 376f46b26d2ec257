//! The {{resource}} table{% if emitted_event != "" %}, and the `{{emitted_event}}` event written to the outbox in the same
//! transaction as each new {{record}}{% endif %}.

use platform_events::Namespace;
{% if emitted_event != "" %}use platform_contracts::{{EmittedEvent}};
use platform_events::Envelope;
use platform_events::outbox::postgres::enqueue;
{% endif %}use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::{self, Reference};

/// The service's store.
#[derive(Clone)]
pub struct Store {
    pool: PgPool,
    namespace: Namespace,
}

/// Why a {{record}} is being recorded.
#[derive(Clone, Copy, Debug)]
pub enum Cause<'a> {
    /// The customer asked, over the API.
    Request,
    /// An event: its type and id.
    Event(&'a str, Uuid),
}

impl Store {
    /// A store on `pool`, publishing under `namespace`.
    pub fn new(pool: PgPool, namespace: Namespace) -> Self {
        Self { pool, namespace }
    }

    /// Creates a {{record}} for `customer` in one transaction{% if emitted_event != "" %} with its event{% endif %}.
    pub async fn create(&self, customer: Uuid, reference: &Reference) -> anyhow::Result<domain::{{Record}}> {
        let mut tx = self.pool.begin().await?;
        let created = self
            .record(&mut tx, customer, reference, Cause::Request)
            .await?
            .expect("a request has no source event to repeat");
        tx.commit().await?;
        Ok(created)
    }

    /// Records a {{record}} through `conn` (the caller's transaction){% if emitted_event != "" %} and writes its event to
    /// the outbox{% endif %}. `None` when the event that causes it was already recorded.
    pub async fn record(
        &self,
        conn: &mut PgConnection,
        customer: Uuid,
        reference: &Reference,
        cause: Cause<'_>,
    ) -> anyhow::Result<Option<domain::{{Record}}>> {
        let (cause_type, source_event) = match cause {
            Cause::Request => (None, None),
            Cause::Event(event_type, id) => (Some(event_type), Some(id)),
        };
        let created: Option<domain::{{Record}}> = sqlx::query_as(
            "INSERT INTO \"{{resource}}\" (id, user_id, reference, cause, source_event) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (source_event) DO NOTHING \
             RETURNING id, user_id, reference, cause, created_at",
        )
        .bind(Uuid::now_v7())
        .bind(customer)
        .bind(reference.as_str())
        .bind(cause_type)
        .bind(source_event)
        .fetch_optional(&mut *conn)
        .await?;
{% if emitted_event != "" %}        if let Some(created) = &created {
            let event = Envelope::new(
                crate::SERVICE_NAME,
                &created.id,
                {{EmittedEvent}} {
                    {{record}}_id: created.id,
                    user_id: created.user_id,
                    reference: created.reference.clone(),
                    cause: created.cause.clone(),
                },
            );
            enqueue(&mut *conn, &self.namespace, &event).await?;
        }
{% else %}        let _ = &self.namespace;
{% endif %}        Ok(created)
    }

    /// `customer`'s {{record}} `id`, if it is theirs.
    pub async fn get(&self, customer: Uuid, id: Uuid) -> anyhow::Result<Option<domain::{{Record}}>> {
        Ok(sqlx::query_as(
            "SELECT id, user_id, reference, cause, created_at FROM \"{{resource}}\" \
             WHERE id = $1 AND user_id = $2",
        )
        .bind(id)
        .bind(customer)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// `customer`'s {{resource}}, newest first: at most `limit`, older than `before` if given.
    pub async fn list(
        &self,
        customer: Uuid,
        limit: i64,
        before: Option<Uuid>,
    ) -> anyhow::Result<Vec<domain::{{Record}}>> {
        Ok(sqlx::query_as(
            "SELECT id, user_id, reference, cause, created_at FROM \"{{resource}}\" \
             WHERE user_id = $1 AND ($2::uuid IS NULL OR id < $2) \
             ORDER BY id DESC LIMIT $3",
        )
        .bind(customer)
        .bind(before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }
}
