//! The internal gRPC API: prices and availability, and stock reservations for the checkout saga.

use platform_auth::CallerService;
use platform_proto::common::v1 as common;
use platform_proto::inventory::v1::inventory_service_server::InventoryService;
use platform_proto::inventory::v1::{
    self as proto, CommitRequest, CommitResponse, GetProductsRequest, GetProductsResponse,
    ReleaseRequest, ReleaseResponse, ReservationStatus, ReserveRequest, ReserveResponse,
};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::catalogue::Catalogue;
use crate::domain::{MAX_RESERVATION_ITEMS, Sku, parse_reservation_lines};
use crate::error::InventoryError;
use crate::stock::Stock;
use crate::store::ReservationState;

/// `platform.inventory.v1.InventoryService`, served behind the service-credential interceptor.
pub struct InventoryGrpc {
    catalogue: Catalogue,
    stock: Stock,
}

impl InventoryGrpc {
    /// The service over the catalogue and the stock operations.
    pub fn new(catalogue: Catalogue, stock: Stock) -> Self {
        Self { catalogue, stock }
    }
}

fn status(state: ReservationState) -> ReservationStatus {
    match state {
        ReservationState::Reserved => ReservationStatus::Reserved,
        ReservationState::Committed => ReservationStatus::Committed,
        ReservationState::Released => ReservationStatus::Released,
        ReservationState::Expired => ReservationStatus::Expired,
    }
}

fn order_id(raw: &str) -> Result<Uuid, Status> {
    Uuid::parse_str(raw)
        .map_err(|_| Status::invalid_argument(format!("order_id `{raw}` is not a UUID")))
}

/// Records the caller and the order in the call's span.
fn record<T>(request: &Request<T>, order: &str) -> Result<(), Status> {
    let caller = CallerService::of(request)?;
    let span = tracing::Span::current();
    span.record("caller", caller.name());
    span.record("order_id", order);
    Ok(())
}

#[tonic::async_trait]
impl InventoryService for InventoryGrpc {
    #[tracing::instrument(skip_all, fields(caller))]
    async fn get_products(
        &self,
        request: Request<GetProductsRequest>,
    ) -> Result<Response<GetProductsResponse>, Status> {
        let caller = CallerService::of(&request)?.name().to_owned();
        tracing::Span::current().record("caller", caller.as_str());
        let request = request.into_inner();
        if request.skus.len() > MAX_RESERVATION_ITEMS {
            return Err(Status::invalid_argument(format!(
                "skus must have at most {MAX_RESERVATION_ITEMS} entries"
            )));
        }
        let skus = request
            .skus
            .iter()
            .enumerate()
            .map(|(index, raw)| Sku::parse(raw, &format!("skus[{index}]")))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| InventoryError::Invalid(vec![error]))?;
        let products = self.catalogue.products_by_skus(&skus).await?;
        Ok(Response::new(GetProductsResponse {
            products: products
                .into_iter()
                .map(|product| proto::Product {
                    id: product.id,
                    sku: product.sku,
                    name: product.name,
                    price: Some(common::Money {
                        minor: product.price.minor,
                        currency: product.price.currency,
                    }),
                    available: product.stock.available,
                })
                .collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(caller, order_id))]
    async fn reserve(
        &self,
        request: Request<ReserveRequest>,
    ) -> Result<Response<ReserveResponse>, Status> {
        record(&request, &request.get_ref().order_id)?;
        let request = request.into_inner();
        let order_id = order_id(&request.order_id)?;
        let items: Vec<(String, i64)> = request
            .items
            .into_iter()
            .map(|item| (item.sku, item.quantity))
            .collect();
        let lines = parse_reservation_lines(&items).map_err(InventoryError::Invalid)?;
        let outcome = self.stock.reserve(order_id, &lines).await?;
        Ok(Response::new(ReserveResponse {
            status: status(outcome.status).into(),
            expires_at: outcome
                .expires_at
                .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                .unwrap_or_default(),
        }))
    }

    #[tracing::instrument(skip_all, fields(caller, order_id))]
    async fn release(
        &self,
        request: Request<ReleaseRequest>,
    ) -> Result<Response<ReleaseResponse>, Status> {
        record(&request, &request.get_ref().order_id)?;
        let order_id = order_id(&request.into_inner().order_id)?;
        let state = self.stock.release(order_id).await?;
        Ok(Response::new(ReleaseResponse {
            status: status(state).into(),
        }))
    }

    #[tracing::instrument(skip_all, fields(caller, order_id))]
    async fn commit(
        &self,
        request: Request<CommitRequest>,
    ) -> Result<Response<CommitResponse>, Status> {
        record(&request, &request.get_ref().order_id)?;
        let order_id = order_id(&request.into_inner().order_id)?;
        let state = self.stock.commit(order_id).await?;
        Ok(Response::new(CommitResponse {
            status: status(state).into(),
        }))
    }
}
