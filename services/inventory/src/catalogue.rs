//! The product catalogue: public reads (cached, with ETags) and administrators' writes.

use anyhow::Context as _;
use bson::{Document, doc};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::cache::{CachedBody, ReadCache};
use crate::domain::{Category, Description, Money, ProductName, Quantity, Sku, escape_regex};
use crate::error::{InventoryError, is_duplicate_key};
use crate::store::{PriceDoc, ProductDoc, StockDoc, Store};

/// The largest page of products.
pub const MAX_PAGE_SIZE: u64 = 100;
/// The page size when none is asked for.
pub const DEFAULT_PAGE_SIZE: u64 = 20;
/// The last page number accepted (deeper pages cost the database more than they are worth).
pub const MAX_PAGE: u64 = 10_000;
/// The longest search term.
pub const MAX_SEARCH_LEN: usize = 100;

/// An amount of money: integer minor units and an ISO 4217 code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MoneyView {
    /// Minor units (cents).
    pub minor: i64,
    /// ISO 4217 code.
    pub currency: String,
}

/// Stock as shoppers see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StockView {
    /// Units that can be ordered now.
    pub available: i64,
    /// Units held for orders being checked out.
    pub reserved: i64,
}

/// A product.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "019367a8-5b1e-7c2d-9e4f-0a1b2c3d4e5f",
    "sku": "KIT-ENAMEL-MUG",
    "name": "Enamel camping mug",
    "description": "350 ml, white enamel with a blue rim.",
    "price": {"minor": 1250, "currency": "EUR"},
    "category": "kitchen",
    "stock": {"available": 42, "reserved": 3},
    "low_stock_threshold": 5,
    "version": 1,
    "created_at": "2026-11-22T09:30:00Z",
    "updated_at": "2026-11-22T09:30:00Z"
}))]
pub struct ProductView {
    /// Id (UUID v7).
    pub id: Uuid,
    /// Stock-keeping unit, upper case.
    pub sku: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Price of one unit.
    pub price: MoneyView,
    /// Category, lower case.
    pub category: String,
    /// Stock.
    pub stock: StockView,
    /// `inventory.low_stock` is emitted when available stock falls below this.
    pub low_stock_threshold: i64,
    /// Send it back with an update; a stale one gets 409.
    pub version: i64,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl TryFrom<ProductDoc> for ProductView {
    type Error = anyhow::Error;

    fn try_from(product: ProductDoc) -> anyhow::Result<Self> {
        Ok(Self {
            id: product
                .id
                .parse()
                .with_context(|| format!("product _id `{}` is not a UUID", product.id))?,
            sku: product.sku,
            name: product.name,
            description: product.description,
            price: MoneyView {
                minor: product.price.minor,
                currency: product.price.currency,
            },
            category: product.category,
            stock: StockView {
                available: product.stock.available,
                reserved: product.stock.reserved,
            },
            low_stock_threshold: product.low_stock_threshold,
            version: product.version,
            created_at: product.created_at.to_chrono(),
            updated_at: product.updated_at.to_chrono(),
        })
    }
}

/// A page of products.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProductPage {
    /// The products on this page.
    pub items: Vec<ProductView>,
    /// This page's number, from 1.
    pub page: u64,
    /// The page size asked for.
    pub page_size: u64,
    /// How many products match, on all pages.
    pub total: u64,
}

/// The order of a product list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortOrder {
    /// By name, A to Z (the default).
    NameAscending,
    /// By name, Z to A.
    NameDescending,
    /// Cheapest first.
    PriceAscending,
    /// Dearest first.
    PriceDescending,
    /// Most recently added first.
    Newest,
}

impl SortOrder {
    /// Parses `name`, `-name`, `price`, `-price` or `newest`.
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "name" => Self::NameAscending,
            "-name" => Self::NameDescending,
            "price" => Self::PriceAscending,
            "-price" => Self::PriceDescending,
            "newest" => Self::Newest,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::NameAscending => "name",
            Self::NameDescending => "-name",
            Self::PriceAscending => "price",
            Self::PriceDescending => "-price",
            Self::Newest => "newest",
        }
    }

    /// The sort document; `_id` breaks ties, so pages never overlap.
    fn document(self) -> Document {
        match self {
            Self::NameAscending => doc! { "name_key": 1, "_id": 1 },
            Self::NameDescending => doc! { "name_key": -1, "_id": -1 },
            Self::PriceAscending => doc! { "price.minor": 1, "_id": 1 },
            Self::PriceDescending => doc! { "price.minor": -1, "_id": -1 },
            Self::Newest => doc! { "created_at": -1, "_id": -1 },
        }
    }
}

/// A validated product list request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListRequest {
    /// Only this category.
    pub category: Option<Category>,
    /// Only names containing this (case-insensitive).
    pub search: Option<String>,
    /// The order.
    pub sort: SortOrder,
    /// From 1.
    pub page: u64,
    /// 1 to [`MAX_PAGE_SIZE`].
    pub page_size: u64,
}

impl ListRequest {
    /// Parses the query parameters; a bad one is a 400 that names it.
    pub fn parse(
        category: Option<&str>,
        search: Option<&str>,
        sort: Option<&str>,
        page: Option<i64>,
        page_size: Option<i64>,
    ) -> Result<Self, InventoryError> {
        let bad = |message: String| InventoryError::BadRequest(message);
        let category = category
            .filter(|raw| !raw.is_empty())
            .map(|raw| Category::parse(raw, "category"))
            .transpose()
            .map_err(|error| bad(format!("`category` {}", error.message)))?;
        let search = search.map(str::trim).filter(|term| !term.is_empty());
        if let Some(term) = search
            && term.chars().count() > MAX_SEARCH_LEN
        {
            return Err(bad(format!(
                "`q` must be at most {MAX_SEARCH_LEN} characters"
            )));
        }
        let sort = match sort {
            None => SortOrder::NameAscending,
            Some(raw) => SortOrder::parse(raw).ok_or_else(|| {
                bad(format!(
                    "`sort` must be one of name, -name, price, -price, newest (not `{raw}`)"
                ))
            })?,
        };
        let page = page.unwrap_or(1);
        let page = u64::try_from(page)
            .ok()
            .filter(|page| (1..=MAX_PAGE).contains(page))
            .ok_or_else(|| bad(format!("`page` must be between 1 and {MAX_PAGE}")))?;
        let page_size = page_size.unwrap_or(DEFAULT_PAGE_SIZE as i64);
        let page_size = u64::try_from(page_size)
            .ok()
            .filter(|size| (1..=MAX_PAGE_SIZE).contains(size))
            .ok_or_else(|| bad(format!("`page_size` must be between 1 and {MAX_PAGE_SIZE}")))?;
        Ok(Self {
            category,
            search: search.map(str::to_owned),
            sort,
            page,
            page_size,
        })
    }

    fn filter(&self) -> Document {
        let mut filter = Document::new();
        if let Some(category) = &self.category {
            filter.insert("category", category.as_str());
        }
        if let Some(term) = &self.search {
            filter.insert(
                "name",
                doc! { "$regex": escape_regex(term), "$options": "i" },
            );
        }
        filter
    }

    /// The cache key: every parameter, the search term hashed (it is free text).
    fn cache_key(&self) -> String {
        use sha2::{Digest as _, Sha256};
        let search = self.search.as_deref().map_or_else(String::new, |term| {
            crate::cache::hex(&Sha256::digest(term.to_lowercase().as_bytes())[..12])
        });
        format!(
            "list:c={}:q={search}:s={}:p={}:n={}",
            self.category.as_ref().map_or("", Category::as_str),
            self.sort.as_str(),
            self.page,
            self.page_size,
        )
    }
}

/// How a product is named in a path: a UUID is an id, anything else a SKU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProductKey {
    /// By id.
    Id(Uuid),
    /// By SKU.
    Sku(Sku),
}

impl ProductKey {
    /// Parses a path segment; neither a UUID nor a well-formed SKU is a 400.
    pub fn parse(raw: &str) -> Result<Self, InventoryError> {
        if let Ok(id) = Uuid::parse_str(raw) {
            return Ok(Self::Id(id));
        }
        Sku::parse(raw, "id_or_sku").map(Self::Sku).map_err(|_| {
            InventoryError::BadRequest(format!(
                "`{raw}` is neither a product id (a UUID) nor a SKU (1 to 64 letters, digits and `-`)"
            ))
        })
    }

    fn cache_key(&self) -> String {
        match self {
            Self::Id(id) => format!("product:id:{id}"),
            Self::Sku(sku) => format!("product:sku:{sku}"),
        }
    }
}

/// A new product, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewProduct {
    /// SKU.
    pub sku: Sku,
    /// Name.
    pub name: ProductName,
    /// Description.
    pub description: Description,
    /// Price.
    pub price: Money,
    /// Category.
    pub category: Category,
    /// Units on the shelf to begin with.
    pub initial_stock: i64,
    /// Low-stock threshold.
    pub low_stock_threshold: i64,
}

/// The low-stock threshold when none is given.
pub const DEFAULT_LOW_STOCK_THRESHOLD: i64 = 5;

impl NewProduct {
    /// The document to store.
    pub fn into_document(self) -> ProductDoc {
        let now = bson::DateTime::now();
        ProductDoc {
            id: Uuid::now_v7().to_string(),
            sku: self.sku.as_str().to_owned(),
            name_key: self.name.sort_key(),
            name: self.name.as_str().to_owned(),
            description: self.description.as_str().to_owned(),
            price: PriceDoc {
                minor: self.price.minor,
                currency: self.price.currency,
            },
            category: self.category.as_str().to_owned(),
            stock: StockDoc {
                available: self.initial_stock,
                reserved: 0,
                sold: 0,
            },
            low_stock_threshold: self.low_stock_threshold,
            version: 1,
            created_at: now,
            updated_at: now,
        }
    }
}

/// Changes to a product's details, validated; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProductChanges {
    /// New name.
    pub name: Option<ProductName>,
    /// New description.
    pub description: Option<Description>,
    /// New price.
    pub price: Option<Money>,
    /// New category.
    pub category: Option<Category>,
    /// New threshold.
    pub low_stock_threshold: Option<i64>,
}

/// A change to a product, validated: what changes, and the `version` it was based on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProductUpdate {
    /// The version read before the change; a stale one is a conflict.
    pub version: i64,
    /// What changes (never nothing).
    pub changes: ProductChanges,
}

impl ProductChanges {
    /// Whether nothing would change.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    fn set_document(&self) -> Document {
        let mut set = Document::new();
        if let Some(name) = &self.name {
            set.insert("name", name.as_str());
            set.insert("name_key", name.sort_key());
        }
        if let Some(description) = &self.description {
            set.insert("description", description.as_str());
        }
        if let Some(price) = &self.price {
            set.insert(
                "price",
                doc! { "minor": price.minor, "currency": &price.currency },
            );
        }
        if let Some(category) = &self.category {
            set.insert("category", category.as_str());
        }
        if let Some(threshold) = self.low_stock_threshold {
            set.insert("low_stock_threshold", threshold);
        }
        set
    }
}

/// The catalogue operations, over the store and the read cache.
#[derive(Clone)]
pub struct Catalogue {
    store: Store,
    cache: ReadCache,
}

impl Catalogue {
    /// The catalogue in `store`, its reads cached in `cache`.
    pub fn new(store: Store, cache: ReadCache) -> Self {
        Self { store, cache }
    }

    /// A page of products, as the JSON body served (from the cache when it has it).
    #[tracing::instrument(skip_all)]
    pub async fn list(&self, request: &ListRequest) -> Result<CachedBody, InventoryError> {
        self.cache
            .get_or_load(&request.cache_key(), || async {
                let filter = request.filter();
                let items = self
                    .store
                    .list_products(
                        filter.clone(),
                        request.sort.document(),
                        (request.page - 1) * request.page_size,
                        request.page_size as i64,
                    )
                    .await?;
                let total = self.store.count_products(filter).await?;
                let page = ProductPage {
                    items: items
                        .into_iter()
                        .map(ProductView::try_from)
                        .collect::<anyhow::Result<_>>()?,
                    page: request.page,
                    page_size: request.page_size,
                    total,
                };
                Ok(serde_json::to_vec(&page).context("serialising a product page")?)
            })
            .await
    }

    /// One product, as the JSON body served (from the cache when it has it).
    #[tracing::instrument(skip_all)]
    pub async fn product(&self, key: &ProductKey) -> Result<CachedBody, InventoryError> {
        self.cache
            .get_or_load(&key.cache_key(), || async {
                let product = match key {
                    ProductKey::Id(id) => self.store.product_by_id(&id.to_string()).await?,
                    ProductKey::Sku(sku) => self.store.product_by_sku(sku.as_str()).await?,
                };
                let product = product.ok_or_else(|| match key {
                    ProductKey::Id(id) => InventoryError::NotFound(format!("no product {id}")),
                    ProductKey::Sku(sku) => {
                        InventoryError::NotFound(format!("no product with SKU {sku}"))
                    }
                })?;
                let view = ProductView::try_from(product)?;
                Ok(serde_json::to_vec(&view).context("serialising a product")?)
            })
            .await
    }

    /// Adds a product; a SKU that exists is a conflict.
    #[tracing::instrument(skip_all, fields(sku = %product.sku))]
    pub async fn create(&self, product: NewProduct) -> Result<ProductView, InventoryError> {
        let sku = product.sku.clone();
        let document = product.into_document();
        match self.store.insert_product(&document).await {
            Ok(()) => {}
            Err(error) if is_duplicate_key(&error) => {
                return Err(InventoryError::Conflict(format!(
                    "a product with SKU {sku} already exists"
                )));
            }
            Err(error) => return Err(error.into()),
        }
        self.cache.invalidate().await;
        tracing::info!(product_id = %document.id, "product created");
        Ok(ProductView::try_from(document)?)
    }

    /// Changes a product's details if `version` is still its version.
    #[tracing::instrument(skip_all, fields(product_id = %id))]
    pub async fn update(
        &self,
        id: Uuid,
        version: i64,
        changes: &ProductChanges,
    ) -> Result<ProductView, InventoryError> {
        let id_text = id.to_string();
        let updated = self
            .store
            .update_product_if_version(&id_text, version, changes.set_document())
            .await?;
        let Some(updated) = updated else {
            return Err(match self.store.product_by_id(&id_text).await? {
                None => InventoryError::NotFound(format!("no product {id}")),
                Some(current) => InventoryError::Conflict(format!(
                    "version {version} of product {id} is stale: it is at version {}; \
                     read it again and re-apply the change",
                    current.version
                )),
            });
        };
        self.cache.invalidate().await;
        tracing::info!(version = updated.version, "product updated");
        Ok(ProductView::try_from(updated)?)
    }

    /// Puts units on the shelf.
    #[tracing::instrument(skip_all, fields(product_id = %id, quantity = quantity.get()))]
    pub async fn restock(
        &self,
        id: Uuid,
        quantity: Quantity,
    ) -> Result<ProductView, InventoryError> {
        let restocked = self
            .store
            .restock(&id.to_string(), quantity.get())
            .await?
            .ok_or_else(|| InventoryError::NotFound(format!("no product {id}")))?;
        self.cache.invalidate().await;
        tracing::info!(available = restocked.stock.available, "product restocked");
        Ok(ProductView::try_from(restocked)?)
    }

    /// The products with these SKUs, in the order asked; the first unknown SKU is not found.
    /// Read from the database, never the cache: orders are priced with these.
    pub async fn products_by_skus(&self, skus: &[Sku]) -> Result<Vec<ProductDoc>, InventoryError> {
        let wanted: Vec<&str> = skus.iter().map(Sku::as_str).collect();
        let mut found = self.store.products_by_skus(&wanted).await?;
        let mut ordered = Vec::with_capacity(skus.len());
        for sku in &wanted {
            let index = found
                .iter()
                .position(|product| product.sku == *sku)
                .ok_or_else(|| InventoryError::NotFound(format!("unknown SKU {sku}")))?;
            ordered.push(found.swap_remove(index));
        }
        Ok(ordered)
    }

    /// Loads the demo catalogue when there is no product at all. Safe when several replicas
    /// start at once: the unique SKU index lets one copy of each product in.
    pub async fn seed_demo_if_empty(&self) -> anyhow::Result<usize> {
        if self
            .store
            .has_products()
            .await
            .context("looking for products")?
        {
            return Ok(0);
        }
        let products: Vec<ProductDoc> = crate::demo::catalogue()
            .into_iter()
            .map(NewProduct::into_document)
            .collect();
        let inserted = self
            .store
            .insert_products_skipping_duplicates(&products)
            .await?;
        if inserted > 0 {
            self.cache.invalidate().await;
            tracing::info!(inserted, "loaded the demo catalogue into an empty store");
        }
        Ok(inserted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_parameters_have_defaults_and_bounds() {
        let defaults = ListRequest::parse(None, None, None, None, None).unwrap();
        assert_eq!((defaults.page, defaults.page_size), (1, 20));
        assert_eq!(defaults.sort, SortOrder::NameAscending);
        assert!(ListRequest::parse(None, None, None, None, Some(100)).is_ok());
        for (page, size) in [
            (Some(0), None),
            (None, Some(0)),
            (None, Some(101)),
            (Some(-1), None),
        ] {
            assert!(matches!(
                ListRequest::parse(None, None, None, page, size),
                Err(InventoryError::BadRequest(_))
            ));
        }
        assert!(ListRequest::parse(None, None, Some("cheapest"), None, None).is_err());
        assert!(ListRequest::parse(Some("no spaces"), None, None, None, None).is_err());
        let blank = ListRequest::parse(Some(""), Some("  "), None, None, None).unwrap();
        assert_eq!((blank.category, blank.search), (None, None));
    }

    #[test]
    fn searches_are_literal_and_case_insensitive() {
        let request =
            ListRequest::parse(Some("Kitchen"), Some("mug (large)"), None, None, None).unwrap();
        assert_eq!(
            request.filter(),
            doc! {
                "category": "kitchen",
                "name": { "$regex": r"mug \(large\)", "$options": "i" },
            }
        );
    }

    #[test]
    fn every_parameter_is_part_of_the_cache_key() {
        let key = |category, search, sort, page, size| {
            ListRequest::parse(category, search, sort, page, size)
                .unwrap()
                .cache_key()
        };
        let base = key(None, None, None, None, None);
        assert_ne!(base, key(Some("books"), None, None, None, None));
        assert_ne!(base, key(None, Some("mug"), None, None, None));
        assert_ne!(base, key(None, None, Some("price"), None, None));
        assert_ne!(base, key(None, None, None, Some(2), None));
        assert_ne!(base, key(None, None, None, None, Some(5)));
        assert_eq!(
            key(None, Some("Mug"), None, None, None),
            key(None, Some("mug"), None, None, None),
            "the search is case-insensitive, and so is its key"
        );
    }

    #[test]
    fn a_path_segment_is_an_id_or_a_sku() {
        let id = Uuid::now_v7();
        assert_eq!(
            ProductKey::parse(&id.to_string()).unwrap(),
            ProductKey::Id(id)
        );
        assert_eq!(
            ProductKey::parse("kit-mug").unwrap(),
            ProductKey::Sku(Sku::parse("KIT-MUG", "sku").unwrap())
        );
        assert!(matches!(
            ProductKey::parse("not a sku!"),
            Err(InventoryError::BadRequest(_))
        ));
    }
}
