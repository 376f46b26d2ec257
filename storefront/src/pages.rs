//! The pages: each handler reads the visitor's session, asks the gateway, and renders a
//! template or redirects (303 after every form, so a refresh never sends it again).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{
    ConnectInfo, FromRequest, FromRequestParts, Path, Query, RawForm, Request, State,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::sync::{Mutex, OwnedMutexGuard};
use uuid::Uuid;

use crate::gateway::{Caller, Gateway, GatewayError, Product};
use crate::session::{Customer, MAX_QUANTITY, REFRESH_LOCK, Session, Sessions, cookie_value};
use crate::views::{self, Views};

/// Products per catalogue page.
const PAGE_SIZE: u64 = 12;

/// How long the list of categories is kept before it is read again.
const CATEGORIES_TTL: Duration = Duration::from_secs(60);

/// An access token is refreshed when it has less than this left.
const REFRESH_MARGIN_SECS: i64 = 30;

/// Longest an order page's script waits for a change in one request.
const MAX_WAIT_SECS: u64 = 5;

/// The sort orders offered, with their words.
const SORTS: [(&str, &str); 5] = [
    ("name", "Name, A to Z"),
    ("-name", "Name, Z to A"),
    ("price", "Price, low to high"),
    ("-price", "Price, high to low"),
    ("newest", "Newest first"),
];

/// What every page shares.
#[derive(Debug)]
pub struct Shop {
    /// The platform's public API.
    pub gateway: Gateway,
    /// Sessions.
    pub sessions: Sessions,
    /// Templates and assets.
    pub views: Views,
    /// The shop's name.
    pub name: String,
    categories: Mutex<Option<(Instant, Vec<String>)>>,
}

impl Shop {
    /// The shop.
    pub fn new(gateway: Gateway, sessions: Sessions, views: Views, name: String) -> Self {
        Self {
            gateway,
            sessions,
            views,
            name,
            categories: Mutex::new(None),
        }
    }
}

/// The state of the pages.
pub type AppState = Arc<Shop>;

/// The visitor of one request: their session (loaded by [`with_session`], written back after
/// the handler) and their address.
#[derive(Clone, Debug)]
pub struct Visit {
    session: Arc<Mutex<Session>>,
    address: Option<String>,
}

impl Visit {
    /// The session, for the rest of the handler.
    pub async fn session(&self) -> OwnedMutexGuard<Session> {
        self.session.clone().lock_owned().await
    }

    fn caller(&self, token: Option<String>) -> Caller {
        Caller {
            address: self.address.clone(),
            token,
        }
    }
}

/// A form this visitor sent, with its CSRF token checked, and their session: the only way a
/// handler gets a POST's fields, so none can forget the check.
pub struct Posted {
    /// The form's fields.
    fields: Fields,
    /// The session, held for the rest of the handler.
    session: OwnedMutexGuard<Session>,
    /// The visitor.
    visit: Visit,
}

impl<S: Send + Sync> FromRequest<S> for Posted {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let visit = request
            .extensions()
            .get::<Visit>()
            .cloned()
            .ok_or_else(|| {
                PageError::Internal("a form without the session layer".to_owned()).into_response()
            })?;
        let form = RawForm::from_request(request, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let fields = Fields::parse(form);
        let session = visit.session().await;
        fields
            .check_csrf(&session)
            .map_err(IntoResponse::into_response)?;
        Ok(Self {
            fields,
            session,
            visit,
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Visit {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Visit>()
            .cloned()
            .ok_or_else(|| PageError::Internal("a page without the session layer".to_owned()))
    }
}

/// Why a page could not be shown.
#[derive(Clone, Debug)]
pub enum PageError {
    /// Only for signed-in customers: to the sign-in page, then back to `next`.
    SignIn {
        /// Where to go after signing in.
        next: String,
    },
    /// A form without this session's CSRF token.
    Csrf,
    /// Not allowed.
    Forbidden(String),
    /// No such thing.
    NotFound(String),
    /// A malformed request.
    BadRequest(String),
    /// The platform did not answer.
    Unavailable(String),
    /// A defect of the storefront's own.
    Internal(String),
}

impl PageError {
    fn status(&self) -> StatusCode {
        match self {
            Self::SignIn { .. } => StatusCode::SEE_OTHER,
            Self::Csrf | Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn words(&self) -> (&'static str, String) {
        match self {
            Self::SignIn { .. } => ("Please sign in", String::new()),
            Self::Csrf => (
                "This form has expired",
                "The form was not sent from this shop's page, or the page is too old. Go back, \
                 reload the page and try again."
                    .to_owned(),
            ),
            Self::Forbidden(detail) => ("Not allowed", detail.clone()),
            Self::NotFound(detail) => ("Not found", detail.clone()),
            Self::BadRequest(detail) => ("That did not work", detail.clone()),
            Self::Unavailable(detail) => ("The shop is busy", detail.clone()),
            Self::Internal(_) => (
                "Something went wrong on our side",
                "The page could not be shown. Try again in a moment.".to_owned(),
            ),
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        if let Self::SignIn { next } = &self {
            let to = format!("/login?next={}", views::urlencode(next));
            return Redirect::to(&to).into_response();
        }
        // Rendered by `with_session`, which has the visitor's session for the page's header.
        let mut response = self.status().into_response();
        response.extensions_mut().insert(self);
        response
    }
}

/// The middleware of every page: loads the session the cookie names (or starts one), runs the
/// page, renders an error page, writes the session back when it changed, sets the cookie for a
/// new one, and adds the headers every page carries.
pub async fn with_session(
    State(shop): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let cookie = cookie_value(
        request
            .headers()
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok()),
    )
    .map(str::to_owned);
    let session = match shop.sessions.load(cookie.as_deref()).await {
        Ok(session) => session,
        Err(error) => {
            tracing::error!(%error, "the session store did not answer");
            let mut response = (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "The shop cannot open your session just now. Try again in a moment.",
            )
                .into_response();
            with_page_headers(response.headers_mut());
            return response;
        }
    };
    let address = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip().to_string());
    let visit = Visit {
        session: Arc::new(Mutex::new(session)),
        address,
    };
    request.extensions_mut().insert(visit.clone());
    let mut response = next.run(request).await;

    let mut session = visit.session().await;
    if let Some(error) = response.extensions_mut().remove::<PageError>() {
        response = shop.error_page(&mut session, &error);
    }
    if let Err(error) = shop.sessions.save(&mut session).await {
        tracing::error!(%error, "the session could not be saved");
    } else if session.is_new
        && let Ok(cookie) = HeaderValue::from_str(&shop.sessions.cookie(&session))
    {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    with_page_headers(response.headers_mut());
    response
}

/// Pages are personal (never cached), framed by nobody, and run only the shop's own script.
fn with_page_headers(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
}

/// The header, messages and assets of every page.
#[derive(Serialize)]
struct Chrome {
    shop: String,
    csrf: String,
    customer: Option<ChromeCustomer>,
    cart_count: i64,
    flash: Vec<crate::session::Flash>,
    css: String,
    js: String,
    refresh: bool,
}

#[derive(Serialize)]
struct ChromeCustomer {
    email: String,
    admin: bool,
}

impl Shop {
    fn chrome(&self, session: &mut Session, refresh: bool) -> Chrome {
        Chrome {
            shop: self.name.clone(),
            csrf: session.data.csrf.clone(),
            customer: session
                .data
                .customer
                .as_ref()
                .map(|customer| ChromeCustomer {
                    email: customer.email.clone(),
                    admin: customer.admin,
                }),
            cart_count: session.data.cart_count(),
            flash: session.take_flash(),
            css: self.views.css.url.clone(),
            js: self.views.js.url.clone(),
            refresh,
        }
    }

    /// Renders `template` with `context` (an object), the page's title and the chrome.
    fn render(
        &self,
        session: &mut Session,
        status: StatusCode,
        template: &str,
        title: &str,
        context: Value,
    ) -> Response {
        self.render_page(session, status, template, title, context, false)
    }

    fn render_page(
        &self,
        session: &mut Session,
        status: StatusCode,
        template: &str,
        title: &str,
        context: Value,
        refresh: bool,
    ) -> Response {
        let mut object = match context {
            Value::Object(object) => object,
            _ => Map::new(),
        };
        object.insert("title".to_owned(), json!(title));
        let chrome =
            serde_json::to_value(self.chrome(session, refresh)).expect("the chrome serialises");
        object.insert("chrome".to_owned(), chrome);
        match self.views.render(template, Value::Object(object)) {
            Ok(html) => (
                status,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                html,
            )
                .into_response(),
            Err(error) => {
                tracing::error!(template, error = %error, "a template failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                    "Something went wrong on our side. Try again in a moment.",
                )
                    .into_response()
            }
        }
    }

    fn error_page(&self, session: &mut Session, error: &PageError) -> Response {
        if let PageError::Internal(cause) = error {
            tracing::error!(cause, "a page failed");
        }
        let (heading, detail) = error.words();
        self.render(
            session,
            error.status(),
            "error.html",
            heading,
            json!({ "heading": heading, "detail": detail }),
        )
    }

    /// A call on behalf of the signed-in customer, with a fresh access token (refreshed when
    /// it is about to expire); to the sign-in page when nobody is signed in or the session
    /// ended.
    async fn customer(
        &self,
        visit: &Visit,
        session: &mut Session,
        next: &str,
    ) -> Result<Caller, PageError> {
        let Some(customer) = session.data.customer.clone() else {
            session.data_mut().flash("info", "Sign in to continue.");
            return Err(PageError::SignIn {
                next: next.to_owned(),
            });
        };
        if customer.access_expires_at - now() > REFRESH_MARGIN_SECS {
            return Ok(visit.caller(Some(customer.access_token)));
        }
        if !self.sessions.lock_refresh(session).await? {
            // Another request of this visitor is refreshing: its tokens, once stored, are ours.
            let deadline = Instant::now() + REFRESH_LOCK;
            while Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let stored = self.sessions.stored_customer(session).await?;
                match stored {
                    Some(fresh) if fresh.access_expires_at > customer.access_expires_at => {
                        let token = fresh.access_token.clone();
                        session.data.customer = Some(fresh);
                        return Ok(visit.caller(Some(token)));
                    }
                    Some(_) => {}
                    None => return Err(Self::session_ended(session, next)),
                }
            }
            return Err(PageError::Unavailable(
                "signing you in again took too long; try again in a moment".to_owned(),
            ));
        }
        let refreshed = self
            .gateway
            .refresh(&visit.caller(None), &customer.refresh_token)
            .await;
        let outcome = match refreshed {
            Ok(tokens) => {
                session.set_customer(Some(Customer {
                    access_token: tokens.access_token.clone(),
                    access_expires_at: now() + tokens.expires_in as i64,
                    refresh_token: tokens.refresh_token,
                    ..customer
                }));
                // Stored at once, for the requests waiting on it.
                match self.sessions.save(session).await {
                    Ok(()) => Ok(visit.caller(Some(tokens.access_token))),
                    Err(error) => Err(error.into()),
                }
            }
            Err(error @ GatewayError::Unavailable(_)) => {
                Err(PageError::Unavailable(error.detail()))
            }
            Err(_) => Err(Self::session_ended(session, next)),
        };
        if let Err(error) = self.sessions.unlock_refresh(session).await {
            tracing::warn!(%error, "the refresh lock could not be released (it expires)");
        }
        outcome
    }

    fn session_ended(session: &mut Session, next: &str) -> PageError {
        session.set_customer(None);
        session.data_mut().flash(
            "error",
            "Your session has ended. Sign in again to continue.",
        );
        PageError::SignIn {
            next: next.to_owned(),
        }
    }

    /// A failed call, as the page to show instead.
    fn failed(session: &mut Session, error: &GatewayError, next: &str) -> PageError {
        match error.status() {
            Some(StatusCode::UNAUTHORIZED) => Self::session_ended(session, next),
            Some(StatusCode::FORBIDDEN) => PageError::Forbidden(error.detail()),
            Some(StatusCode::NOT_FOUND) => PageError::NotFound(error.detail()),
            Some(status) if status.is_client_error() && status != StatusCode::TOO_MANY_REQUESTS => {
                PageError::BadRequest(error.detail())
            }
            _ => {
                tracing::warn!(%error, "a gateway call failed");
                PageError::Unavailable(error.detail())
            }
        }
    }

    /// The categories, from a scan of the catalogue kept for a minute (the API has no list of
    /// categories; a shop of thousands of products would add one).
    async fn categories(&self, caller: &Caller) -> Vec<String> {
        let mut cached = self.categories.lock().await;
        if let Some((at, categories)) = cached.as_ref()
            && at.elapsed() < CATEGORIES_TTL
        {
            return categories.clone();
        }
        let mut found = std::collections::BTreeSet::new();
        for page in 1..=5u64 {
            let query = [("page", page.to_string()), ("page_size", "100".to_owned())];
            match self.gateway.products(caller, &query).await {
                Ok(result) => {
                    found.extend(result.items.into_iter().map(|product| product.category));
                    if page * result.page_size >= result.total {
                        break;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "the categories could not be read");
                    return cached.as_ref().map(|(_, c)| c.clone()).unwrap_or_default();
                }
            }
        }
        let categories: Vec<String> = found.into_iter().collect();
        *cached = Some((Instant::now(), categories.clone()));
        categories
    }
}

impl From<redis::RedisError> for PageError {
    fn from(error: redis::RedisError) -> Self {
        Self::Unavailable(format!("the session store failed: {error}"))
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A form's fields.
struct Fields(Vec<(String, String)>);

impl Fields {
    fn parse(RawForm(bytes): RawForm) -> Self {
        Self(
            form_urlencoded::parse(&bytes)
                .map(|(key, value)| (key.into_owned(), value.into_owned()))
                .collect(),
        )
    }

    fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map_or("", |(_, value)| value.trim())
    }

    fn all(&self, name: &str) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .filter(move |(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Refuses a form without this session's token.
    fn check_csrf(&self, session: &Session) -> Result<(), PageError> {
        if session.csrf_matches(self.get("csrf")) {
            Ok(())
        } else {
            Err(PageError::Csrf)
        }
    }
}

/// Where to go after signing in: a path of this shop, never another site.
fn local_path(next: &str) -> String {
    let safe = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(char::is_control);
    if safe {
        next.to_owned()
    } else {
        "/".to_owned()
    }
}

fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// A gateway's field errors, by form field (`price.minor` is the form's `price`).
fn field_errors(error: &GatewayError) -> BTreeMap<String, String> {
    let mut errors = BTreeMap::new();
    for problem in error.field_errors() {
        let field = match problem.field.as_str() {
            "price.currency" => "currency",
            other => other.split(['.', '[']).next().unwrap_or(other),
        };
        errors
            .entry(field.to_owned())
            .or_insert_with(|| problem.message.clone());
    }
    errors
}

// ---------------------------------------------------------------- the catalogue

/// The catalogue's query.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CatalogueQuery {
    category: String,
    q: String,
    sort: String,
    page: String,
}

/// `GET /`: the catalogue.
pub async fn catalogue(
    State(shop): State<AppState>,
    visit: Visit,
    Query(query): Query<CatalogueQuery>,
) -> Result<Response, PageError> {
    let mut session = visit.session().await;
    let caller = visit.caller(None);
    let sort = if SORTS.iter().any(|(value, _)| *value == query.sort) {
        query.sort.clone()
    } else {
        "name".to_owned()
    };
    let page = query.page.parse::<u64>().unwrap_or(1).clamp(1, 10_000);
    let category = query.category.trim().to_ascii_lowercase();
    let q = query.q.trim().to_owned();
    let mut params = vec![
        ("page", page.to_string()),
        ("page_size", PAGE_SIZE.to_string()),
        ("sort", sort.clone()),
    ];
    if !category.is_empty() {
        params.push(("category", category.clone()));
    }
    if !q.is_empty() {
        params.push(("q", q.clone()));
    }
    let categories = shop.categories(&caller).await;
    let (products, total) = match shop.gateway.products(&caller, &params).await {
        Ok(result) => (result.items, result.total),
        Err(error) if error.status() == Some(StatusCode::BAD_REQUEST) => {
            session.data_mut().flash("error", error.detail());
            (Vec::new(), 0)
        }
        Err(error) => return Err(Shop::failed(&mut session, &error, "/")),
    };
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    let link = |page: u64| {
        let mut url = format!("/?sort={}&page={page}", views::urlencode(&sort));
        if !category.is_empty() {
            let _ = write!(url, "&category={}", views::urlencode(&category));
        }
        if !q.is_empty() {
            let _ = write!(url, "&q={}", views::urlencode(&q));
        }
        url
    };
    let title = if category.is_empty() {
        "Products".to_owned()
    } else {
        category.clone()
    };
    let context = json!({
        "products": products,
        "total": total,
        "page": page,
        "pages": pages,
        "prev_url": (page > 1).then(|| link(page - 1)),
        "next_url": (page < pages).then(|| link(page + 1)),
        "categories": categories,
        "category": category,
        "q": q,
        "sort": sort,
        "sorts": SORTS.iter().map(|(value, label)| json!({"value": value, "label": label})).collect::<Vec<_>>(),
    });
    Ok(shop.render(
        &mut session,
        StatusCode::OK,
        "catalogue.html",
        &title,
        context,
    ))
}

/// `GET /products/{sku}`.
pub async fn product(
    State(shop): State<AppState>,
    visit: Visit,
    Path(sku): Path<String>,
) -> Result<Response, PageError> {
    let mut session = visit.session().await;
    let product = match shop.gateway.product(&visit.caller(None), &sku).await {
        Ok(product) => product,
        Err(error)
            if matches!(
                error.status(),
                Some(StatusCode::NOT_FOUND | StatusCode::BAD_REQUEST)
            ) =>
        {
            return Err(PageError::NotFound(format!(
                "The shop has no product with the code “{sku}”."
            )));
        }
        Err(error) => return Err(Shop::failed(&mut session, &error, "/")),
    };
    let title = product.name.clone();
    let context = json!({ "product": product, "max_quantity": MAX_QUANTITY });
    Ok(shop.render(
        &mut session,
        StatusCode::OK,
        "product.html",
        &title,
        context,
    ))
}

// ---------------------------------------------------------------- the cart

#[derive(Serialize)]
struct CartLineView {
    sku: String,
    name: String,
    quantity: i64,
    unit_price: crate::gateway::Money,
    total: crate::gateway::Money,
    available: i64,
    short: bool,
}

/// `GET /cart`.
pub async fn cart(State(shop): State<AppState>, visit: Visit) -> Result<Response, PageError> {
    let mut session = visit.session().await;
    let caller = visit.caller(None);
    let lookups = session
        .data
        .cart
        .iter()
        .map(|line| shop.gateway.product(&caller, &line.sku));
    let found: Vec<Result<Product, GatewayError>> = futures::future::join_all(lookups).await;
    let mut lines = Vec::new();
    let mut gone = Vec::new();
    for (line, product) in session.data.cart.iter().zip(found) {
        match product {
            Ok(product) => lines.push(CartLineView {
                sku: line.sku.clone(),
                quantity: line.quantity,
                total: crate::gateway::Money {
                    minor: product.price.minor * line.quantity,
                    currency: product.price.currency.clone(),
                },
                short: line.quantity > product.stock.available,
                available: product.stock.available,
                name: product.name,
                unit_price: product.price,
            }),
            Err(error) if error.status() == Some(StatusCode::NOT_FOUND) => {
                gone.push(line.sku.clone());
            }
            Err(error) => return Err(Shop::failed(&mut session, &error, "/cart")),
        }
    }
    if !gone.is_empty() {
        let data = session.data_mut();
        data.cart.retain(|line| !gone.contains(&line.sku));
        data.flash(
            "error",
            format!(
                "No longer sold, so taken out of your cart: {}.",
                gone.join(", ")
            ),
        );
    }
    let total = crate::gateway::Money {
        minor: lines.iter().map(|line| line.total.minor).sum(),
        currency: lines
            .first()
            .map_or_else(|| "EUR".to_owned(), |line| line.total.currency.clone()),
    };
    let cards = if session.data.customer.is_some() && !lines.is_empty() {
        let caller = shop.customer(&visit, &mut session, "/cart").await?;
        match shop.gateway.cards(&caller).await {
            Ok(cards) => cards,
            Err(error) => return Err(Shop::failed(&mut session, &error, "/cart")),
        }
    } else {
        Vec::new()
    };
    let context = json!({
        "lines": lines,
        "total": total,
        "cards": cards,
        // One key per rendering of the form: sending it twice (a double click, a refresh of
        // the answer, the back button) is the same order; a new visit to the cart is a new one.
        "attempt": Uuid::new_v4(),
        "max_quantity": MAX_QUANTITY,
    });
    Ok(shop.render(
        &mut session,
        StatusCode::OK,
        "cart.html",
        "Your cart",
        context,
    ))
}

fn quantity_field(fields: &Fields) -> Option<i64> {
    fields
        .get("quantity")
        .parse::<i64>()
        .ok()
        .filter(|quantity| (0..=MAX_QUANTITY).contains(quantity))
}

/// `POST /cart/add`.
pub async fn cart_add(
    State(shop): State<AppState>,
    Posted {
        fields,
        mut session,
        visit,
    }: Posted,
) -> Result<Response, PageError> {
    let sku = fields.get("sku").to_owned();
    let back = format!("/products/{}", views::urlencode(&sku));
    let Some(quantity) = quantity_field(&fields).filter(|quantity| *quantity > 0) else {
        session.data_mut().flash(
            "error",
            format!("Choose a quantity from 1 to {MAX_QUANTITY}."),
        );
        return Ok(see_other(&back));
    };
    let product = match shop.gateway.product(&visit.caller(None), &sku).await {
        Ok(product) => product,
        Err(error) if error.status().is_some_and(|s| s.is_client_error()) => {
            return Err(PageError::NotFound(format!(
                "The shop has no product with the code “{sku}”."
            )));
        }
        Err(error) => return Err(Shop::failed(&mut session, &error, &back)),
    };
    let in_cart = session
        .data
        .cart
        .iter()
        .find(|line| line.sku == product.sku)
        .map_or(0, |line| line.quantity);
    if in_cart + quantity > product.stock.available {
        let left = (product.stock.available - in_cart).max(0);
        session.data_mut().flash(
            "error",
            format!(
                "Only {} of {} in stock{}: you can add {left} more.",
                product.stock.available,
                product.name,
                if in_cart > 0 {
                    format!(" and {in_cart} already in your cart")
                } else {
                    String::new()
                }
            ),
        );
        return Ok(see_other(&back));
    }
    let data = session.data_mut();
    if data.add_to_cart(&product.sku, quantity) {
        data.flash(
            "info",
            format!("Added {quantity} × {} to your cart.", product.name),
        );
    } else {
        data.flash(
            "error",
            "Your cart is full: check out or remove something first.",
        );
    }
    Ok(see_other(&back))
}

/// `POST /cart/update`.
pub async fn cart_update(
    Posted {
        fields,
        mut session,
        ..
    }: Posted,
) -> Result<Response, PageError> {
    match quantity_field(&fields) {
        Some(quantity) => session.data_mut().set_quantity(fields.get("sku"), quantity),
        None => session.data_mut().flash(
            "error",
            format!("Choose a quantity from 0 to {MAX_QUANTITY}."),
        ),
    }
    Ok(see_other("/cart"))
}

/// `POST /cart/remove`.
pub async fn cart_remove(
    Posted {
        fields,
        mut session,
        ..
    }: Posted,
) -> Result<Response, PageError> {
    session.data_mut().set_quantity(fields.get("sku"), 0);
    Ok(see_other("/cart"))
}

// ---------------------------------------------------------------- accounts

/// `?next=` of the sign-in and register pages.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct NextQuery {
    next: String,
}

/// `GET /register`.
pub async fn register_page(
    State(shop): State<AppState>,
    visit: Visit,
    Query(query): Query<NextQuery>,
) -> Response {
    let mut session = visit.session().await;
    let context = json!({ "next": local_path(&query.next), "form": {}, "errors": {} });
    shop.render(
        &mut session,
        StatusCode::OK,
        "register.html",
        "Create an account",
        context,
    )
}

/// `POST /register`: creates the account and signs in.
pub async fn register(
    State(shop): State<AppState>,
    Posted {
        fields,
        mut session,
        visit,
    }: Posted,
) -> Result<Response, PageError> {
    let (email, password, name) = (
        fields.get("email"),
        fields.all("password").next().unwrap_or(""),
        fields.get("display_name"),
    );
    let next = local_path(fields.get("next"));
    let caller = visit.caller(None);
    if let Err(error) = shop.gateway.register(&caller, email, password, name).await {
        let mut errors = field_errors(&error);
        match error.status() {
            Some(StatusCode::CONFLICT) => {
                errors.insert(
                    "email".to_owned(),
                    "An account with this e-mail exists: sign in instead.".to_owned(),
                );
            }
            Some(status) if status.is_client_error() => {
                if errors.is_empty() {
                    session.data_mut().flash("error", error.detail());
                }
            }
            _ => return Err(Shop::failed(&mut session, &error, "/register")),
        }
        let context = json!({
            "next": next, "errors": errors,
            "form": { "email": email, "display_name": name },
        });
        return Ok(shop.render(
            &mut session,
            StatusCode::UNPROCESSABLE_ENTITY,
            "register.html",
            "Create an account",
            context,
        ));
    }
    if let Err(error) = sign_in(&shop, &visit, &mut session, email, password).await? {
        session.data_mut().flash(
            "error",
            format!(
                "Your account is ready, but signing in failed: {}",
                error.detail()
            ),
        );
        return Ok(see_other(&format!(
            "/login?next={}",
            views::urlencode(&next)
        )));
    }
    session
        .data_mut()
        .flash("info", "Welcome! Your account is ready.");
    Ok(see_other(&next))
}

/// Signs in: tokens and who it is go into the session, whose id changes.
async fn sign_in(
    shop: &Shop,
    visit: &Visit,
    session: &mut Session,
    email: &str,
    password: &str,
) -> Result<Result<(), GatewayError>, PageError> {
    let tokens = match shop
        .gateway
        .login(&visit.caller(None), email, password)
        .await
    {
        Ok(tokens) => tokens,
        Err(error) => return Ok(Err(error)),
    };
    let me = match shop
        .gateway
        .me(&visit.caller(Some(tokens.access_token.clone())))
        .await
    {
        Ok(me) => me,
        Err(error) => return Err(Shop::failed(session, &error, "/login")),
    };
    shop.sessions.renew(session).await?;
    session.set_customer(Some(Customer {
        email: me.email,
        display_name: me.display_name,
        admin: me.roles.iter().any(|role| role == "admin"),
        access_token: tokens.access_token,
        access_expires_at: now() + tokens.expires_in as i64,
        refresh_token: tokens.refresh_token,
    }));
    tracing::info!(user_id = %me.id, "signed in");
    Ok(Ok(()))
}

/// `GET /login`.
pub async fn login_page(
    State(shop): State<AppState>,
    visit: Visit,
    Query(query): Query<NextQuery>,
) -> Response {
    let mut session = visit.session().await;
    let context = json!({ "next": local_path(&query.next), "form": {}, "errors": {} });
    shop.render(
        &mut session,
        StatusCode::OK,
        "login.html",
        "Sign in",
        context,
    )
}

/// `POST /login`.
pub async fn login(
    State(shop): State<AppState>,
    Posted {
        fields,
        mut session,
        visit,
    }: Posted,
) -> Result<Response, PageError> {
    let email = fields.get("email");
    let password = fields.all("password").next().unwrap_or("");
    let next = local_path(fields.get("next"));
    match sign_in(&shop, &visit, &mut session, email, password).await? {
        Ok(()) => {
            let name = session
                .data
                .customer
                .as_ref()
                .map(|customer| customer.display_name.clone())
                .unwrap_or_default();
            session
                .data_mut()
                .flash("info", format!("Signed in. Welcome back, {name}."));
            Ok(see_other(&next))
        }
        Err(error) => {
            let (status, message) = match error.status() {
                Some(StatusCode::UNAUTHORIZED) => (
                    StatusCode::UNAUTHORIZED,
                    "Wrong e-mail or password.".to_owned(),
                ),
                Some(StatusCode::TOO_MANY_REQUESTS) => (
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too many attempts: wait a minute, then try again.".to_owned(),
                ),
                Some(status) if status.is_client_error() => (status, error.detail()),
                _ => return Err(Shop::failed(&mut session, &error, "/login")),
            };
            session.data_mut().flash("error", message.clone());
            let context = json!({
                "next": next, "form": { "email": email }, "errors": { "password": message },
            });
            Ok(shop.render(&mut session, status, "login.html", "Sign in", context))
        }
    }
}

/// `POST /logout`: revokes the refresh token and forgets the session.
pub async fn logout(
    State(shop): State<AppState>,
    Posted {
        mut session, visit, ..
    }: Posted,
) -> Result<Response, PageError> {
    let customer = session.data.customer.clone();
    session.set_customer(None);
    if let Some(customer) = customer
        && let Err(error) = shop
            .gateway
            .logout(&visit.caller(None), &customer.refresh_token)
            .await
    {
        tracing::warn!(%error, "the refresh token could not be revoked");
    }
    shop.sessions.renew(&mut session).await?;
    let data = session.data_mut();
    data.cart.clear();
    data.flash("info", "Signed out.");
    Ok(see_other("/"))
}

// ---------------------------------------------------------------- cards

/// `GET /account/cards`.
pub async fn cards(State(shop): State<AppState>, visit: Visit) -> Result<Response, PageError> {
    let mut session = visit.session().await;
    let caller = shop
        .customer(&visit, &mut session, "/account/cards")
        .await?;
    let cards = shop
        .gateway
        .cards(&caller)
        .await
        .map_err(|error| Shop::failed(&mut session, &error, "/account/cards"))?;
    let context = json!({ "cards": cards, "adding": false });
    Ok(shop.render(
        &mut session,
        StatusCode::OK,
        "cards.html",
        "Your cards",
        context,
    ))
}

/// `GET /account/cards/new`.
pub async fn card_form(
    State(shop): State<AppState>,
    visit: Visit,
    Query(query): Query<NextQuery>,
) -> Result<Response, PageError> {
    let mut session = visit.session().await;
    shop.customer(&visit, &mut session, "/account/cards/new")
        .await?;
    let context = json!({
        "adding": true, "next": local_path(&query.next), "form": {}, "errors": {},
    });
    Ok(shop.render(
        &mut session,
        StatusCode::OK,
        "cards.html",
        "Add a card",
        context,
    ))
}

/// `POST /account/cards/new`.
pub async fn add_card(
    State(shop): State<AppState>,
    Posted {
        fields,
        mut session,
        visit,
    }: Posted,
) -> Result<Response, PageError> {
    let caller = shop
        .customer(&visit, &mut session, "/account/cards/new")
        .await?;
    let next = local_path(fields.get("next"));
    let number: String = fields
        .get("card_number")
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    let mut errors = BTreeMap::new();
    let month = fields.get("exp_month").parse::<i64>();
    let year = fields.get("exp_year").parse::<i64>();
    if month.is_err() {
        errors.insert(
            "exp_month".to_owned(),
            "Enter the month as a number, 1 to 12.".to_owned(),
        );
    }
    if year.is_err() {
        errors.insert(
            "exp_year".to_owned(),
            "Enter the year as four digits.".to_owned(),
        );
    }
    if let (Ok(month), Ok(year)) = (month, year) {
        match shop
            .gateway
            .add_card(&caller, &number, month, year, fields.get("cvc"))
            .await
        {
            Ok(card) => {
                session.data_mut().flash(
                    "info",
                    format!("Saved your {} ending {}.", card.brand, card.last4),
                );
                let to = if next == "/" { "/account/cards" } else { &next };
                return Ok(see_other(to));
            }
            Err(error) if error.status() == Some(StatusCode::UNPROCESSABLE_ENTITY) => {
                errors = field_errors(&error);
                if errors.is_empty() {
                    session.data_mut().flash("error", error.detail());
                }
            }
            Err(error) => return Err(Shop::failed(&mut session, &error, "/account/cards/new")),
        }
    }
    let context = json!({
        "adding": true, "next": next, "errors": errors,
        "form": {
            "card_number": fields.get("card_number"),
            "exp_month": fields.get("exp_month"),
            "exp_year": fields.get("exp_year"),
        },
    });
    Ok(shop.render(
        &mut session,
        StatusCode::UNPROCESSABLE_ENTITY,
        "cards.html",
        "Add a card",
        context,
    ))
}

// ---------------------------------------------------------------- orders

/// `POST /checkout`: places the order shown on the cart page. The form's `attempt` is the
/// idempotency key, so the same form sent twice is one order.
pub async fn checkout(
    State(shop): State<AppState>,
    Posted {
        fields,
        mut session,
        visit,
    }: Posted,
) -> Result<Response, PageError> {
    let caller = shop.customer(&visit, &mut session, "/cart").await?;
    let attempt = Uuid::parse_str(fields.get("attempt")).map_err(|_| {
        PageError::BadRequest(
            "The checkout form is incomplete: reload the cart and try again.".to_owned(),
        )
    })?;
    let payment_method = Uuid::parse_str(fields.get("payment_method_id"))
        .map_err(|_| PageError::BadRequest("Choose a card to pay with.".to_owned()))?;
    let lines: Option<Vec<(String, i64)>> = fields
        .all("line")
        .map(|line| {
            let (sku, quantity) = line.rsplit_once(':')?;
            Some((sku.to_owned(), quantity.parse().ok()?))
        })
        .collect();
    let Some(lines) = lines.filter(|lines| !lines.is_empty()) else {
        return Err(PageError::BadRequest(
            "The checkout form is incomplete: reload the cart and try again.".to_owned(),
        ));
    };
    match shop
        .gateway
        .place_order(&caller, attempt, &lines, payment_method)
        .await
    {
        Ok(order) => {
            session.data_mut().remove_ordered(&lines);
            tracing::info!(order_id = %order.id, %attempt, "order placed");
            Ok(see_other(&format!("/orders/{}", order.id)))
        }
        Err(error)
            if error.status().is_some_and(|status| {
                status.is_client_error() && status != StatusCode::UNAUTHORIZED
            }) =>
        {
            let mut message = error.detail();
            for problem in error.field_errors() {
                let _ = write!(message, " {}: {}.", problem.field, problem.message);
            }
            session
                .data_mut()
                .flash("error", format!("The order was not placed: {message}"));
            Ok(see_other("/cart"))
        }
        Err(error) => Err(Shop::failed(&mut session, &error, "/cart")),
    }
}

fn order_id(raw: &str) -> Result<Uuid, PageError> {
    Uuid::parse_str(raw).map_err(|_| PageError::NotFound("There is no such order.".to_owned()))
}

/// `GET /orders/{id}`.
pub async fn order(
    State(shop): State<AppState>,
    visit: Visit,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = order_id(&id)?;
    let here = format!("/orders/{id}");
    let mut session = visit.session().await;
    let caller = shop.customer(&visit, &mut session, &here).await?;
    let order = shop
        .gateway
        .order(&caller, id, None)
        .await
        .map_err(|error| Shop::failed(&mut session, &error, &here))?;
    let live = views::in_progress(&order.status);
    let title = format!("Order {}", &order.id.to_string()[..8]);
    let context = json!({ "order": order, "live": live });
    Ok(shop.render_page(
        &mut session,
        StatusCode::OK,
        "order.html",
        &title,
        context,
        live,
    ))
}

/// `?wait=` of the status endpoint.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct WaitQuery {
    wait: String,
}

/// `GET /orders/{id}/status`: what the order page's script follows.
pub async fn order_status(
    State(shop): State<AppState>,
    visit: Visit,
    Path(id): Path<String>,
    Query(query): Query<WaitQuery>,
) -> Result<Response, PageError> {
    let id = order_id(&id)?;
    let here = format!("/orders/{id}");
    let mut session = visit.session().await;
    let caller = shop.customer(&visit, &mut session, &here).await?;
    let wait = query.wait.parse::<u64>().unwrap_or(0).min(MAX_WAIT_SECS);
    // The session is not held while the gateway waits: other pages of this visitor go on.
    drop(session);
    let order = shop.gateway.order(&caller, id, Some(wait)).await;
    let mut session = visit.session().await;
    let order = order.map_err(|error| Shop::failed(&mut session, &error, &here))?;
    Ok(axum::Json(json!({
        "status": order.status,
        "status_words": views::status_words(&order.status),
        "in_progress": views::in_progress(&order.status),
    }))
    .into_response())
}

/// `POST /orders/{id}/cancel`.
pub async fn cancel_order(
    State(shop): State<AppState>,
    Path(id): Path<String>,
    Posted {
        mut session, visit, ..
    }: Posted,
) -> Result<Response, PageError> {
    let id = order_id(&id)?;
    let here = format!("/orders/{id}");
    let caller = shop.customer(&visit, &mut session, &here).await?;
    match shop.gateway.cancel_order(&caller, id).await {
        Ok(_) => session
            .data_mut()
            .flash("info", "Cancelling your order: the refund is on its way."),
        Err(error) if error.status() == Some(StatusCode::CONFLICT) => session.data_mut().flash(
            "error",
            format!("This order cannot be cancelled: {}", error.detail()),
        ),
        Err(error) => return Err(Shop::failed(&mut session, &error, &here)),
    }
    Ok(see_other(&here))
}

/// `GET /orders`.
pub async fn orders(State(shop): State<AppState>, visit: Visit) -> Result<Response, PageError> {
    let mut session = visit.session().await;
    let caller = shop.customer(&visit, &mut session, "/orders").await?;
    let orders = shop
        .gateway
        .orders(&caller)
        .await
        .map_err(|error| Shop::failed(&mut session, &error, "/orders"))?;
    let context = json!({ "orders": orders });
    Ok(shop.render(
        &mut session,
        StatusCode::OK,
        "orders.html",
        "Your orders",
        context,
    ))
}

/// `GET /notifications`.
pub async fn notifications(
    State(shop): State<AppState>,
    visit: Visit,
) -> Result<Response, PageError> {
    let mut session = visit.session().await;
    let caller = shop
        .customer(&visit, &mut session, "/notifications")
        .await?;
    let notifications = shop
        .gateway
        .notifications(&caller)
        .await
        .map_err(|error| Shop::failed(&mut session, &error, "/notifications"))?;
    let context = json!({ "notifications": notifications });
    Ok(shop.render(
        &mut session,
        StatusCode::OK,
        "notifications.html",
        "Messages",
        context,
    ))
}

// ---------------------------------------------------------------- administration

async fn admin_caller(
    shop: &Shop,
    visit: &Visit,
    session: &mut Session,
) -> Result<Caller, PageError> {
    let caller = shop.customer(visit, session, "/admin").await?;
    if session.data.customer.as_ref().is_some_and(|c| c.admin) {
        Ok(caller)
    } else {
        Err(PageError::Forbidden(
            "Only administrators can manage products and stock.".to_owned(),
        ))
    }
}

async fn admin_page(
    shop: &Shop,
    session: &mut Session,
    caller: &Caller,
    status: StatusCode,
    form: Value,
    errors: &BTreeMap<String, String>,
) -> Result<Response, PageError> {
    let query = [
        ("page_size", "100".to_owned()),
        ("sort", "newest".to_owned()),
    ];
    let page = shop
        .gateway
        .products(caller, &query)
        .await
        .map_err(|error| Shop::failed(session, &error, "/admin"))?;
    let context = json!({
        "products": page.items, "total": page.total, "form": form, "errors": errors,
    });
    Ok(shop.render(session, status, "admin.html", "Products and stock", context))
}

/// `GET /admin`.
pub async fn admin(State(shop): State<AppState>, visit: Visit) -> Result<Response, PageError> {
    let mut session = visit.session().await;
    let caller = admin_caller(&shop, &visit, &mut session).await?;
    admin_page(
        &shop,
        &mut session,
        &caller,
        StatusCode::OK,
        json!({}),
        &BTreeMap::new(),
    )
    .await
}

/// `12.50` as 1250 minor units.
fn parse_price(text: &str) -> Option<i64> {
    if text.is_empty() || text.starts_with(['.', ',']) && text.len() == 1 {
        return None;
    }
    let (units, cents) = match text.split_once(['.', ',']) {
        Some((units, cents)) if (1..=2).contains(&cents.len()) => (units, cents),
        Some(_) => return None,
        None => (text, "0"),
    };
    if !units.bytes().all(|b| b.is_ascii_digit()) || !cents.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let units: i64 = if units.is_empty() {
        0
    } else {
        units.parse().ok()?
    };
    let cents: i64 = if cents.len() == 1 {
        cents.parse::<i64>().ok()? * 10
    } else {
        cents.parse().ok()?
    };
    units.checked_mul(100)?.checked_add(cents)
}

/// `POST /admin/products`.
pub async fn create_product(
    State(shop): State<AppState>,
    Posted {
        fields,
        mut session,
        visit,
    }: Posted,
) -> Result<Response, PageError> {
    let caller = admin_caller(&shop, &visit, &mut session).await?;
    let names = [
        "sku",
        "name",
        "description",
        "category",
        "price",
        "currency",
        "initial_stock",
    ];
    let form: Map<String, Value> = names
        .iter()
        .map(|name| ((*name).to_owned(), json!(fields.get(name))))
        .collect();
    let mut errors = BTreeMap::new();
    let price = parse_price(fields.get("price"));
    if price.is_none() {
        errors.insert("price".to_owned(), "Enter a price like 12.50.".to_owned());
    }
    let stock = match fields.get("initial_stock") {
        "" => Some(0),
        text => text.parse::<i64>().ok(),
    };
    if stock.is_none() {
        errors.insert(
            "initial_stock".to_owned(),
            "Enter a whole number of units.".to_owned(),
        );
    }
    if let (Some(price), Some(stock)) = (price, stock) {
        let description = fields.get("description");
        let product = json!({
            "sku": fields.get("sku"),
            "name": fields.get("name"),
            "description": (!description.is_empty()).then_some(description),
            "category": fields.get("category"),
            "price": { "minor": price, "currency": fields.get("currency").to_ascii_uppercase() },
            "initial_stock": stock,
        });
        match shop.gateway.create_product(&caller, &product).await {
            Ok(product) => {
                shop.categories.lock().await.take();
                session
                    .data_mut()
                    .flash("info", format!("Added {} ({}).", product.name, product.sku));
                return Ok(see_other("/admin"));
            }
            Err(error) if error.status() == Some(StatusCode::CONFLICT) => {
                errors.insert(
                    "sku".to_owned(),
                    "A product with this SKU exists.".to_owned(),
                );
            }
            Err(error) if error.status() == Some(StatusCode::UNPROCESSABLE_ENTITY) => {
                errors = field_errors(&error);
                if errors.is_empty() {
                    session.data_mut().flash("error", error.detail());
                }
            }
            Err(error) => return Err(Shop::failed(&mut session, &error, "/admin")),
        }
    }
    admin_page(
        &shop,
        &mut session,
        &caller,
        StatusCode::UNPROCESSABLE_ENTITY,
        Value::Object(form),
        &errors,
    )
    .await
}

/// `POST /admin/products/{id}/restock`.
pub async fn restock(
    State(shop): State<AppState>,
    Path(id): Path<String>,
    Posted {
        fields,
        mut session,
        visit,
    }: Posted,
) -> Result<Response, PageError> {
    let caller = admin_caller(&shop, &visit, &mut session).await?;
    let id = Uuid::parse_str(&id)
        .map_err(|_| PageError::NotFound("There is no such product.".to_owned()))?;
    let Some(quantity) = fields
        .get("quantity")
        .parse::<i64>()
        .ok()
        .filter(|q| *q > 0)
    else {
        session
            .data_mut()
            .flash("error", "Restock by a whole number of units, at least 1.");
        return Ok(see_other("/admin"));
    };
    match shop.gateway.restock(&caller, id, quantity).await {
        Ok(product) => session.data_mut().flash(
            "info",
            format!(
                "Restocked {}: {} available now.",
                product.name, product.stock.available
            ),
        ),
        Err(error) if error.status() == Some(StatusCode::UNPROCESSABLE_ENTITY) => {
            session.data_mut().flash("error", error.detail());
        }
        Err(error) => return Err(Shop::failed(&mut session, &error, "/admin")),
    }
    Ok(see_other("/admin"))
}

// ---------------------------------------------------------------- assets

/// `GET /static/app.css`.
pub async fn css(State(shop): State<AppState>, headers: HeaderMap) -> Response {
    shop.views.css.respond(if_none_match(&headers))
}

/// `GET /static/app.js`.
pub async fn js(State(shop): State<AppState>, headers: HeaderMap) -> Response {
    shop.views.js.respond(if_none_match(&headers))
}

fn if_none_match(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
}

/// Any other path: a page saying so.
pub async fn not_found() -> PageError {
    PageError::NotFound("There is no page at this address.".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(local_path("/cart"), "/cart");
        assert_eq!(local_path("/orders/1?x=2"), "/orders/1?x=2");
        for hostile in [
            "https://evil.example",
            "//evil.example",
            "/\\evil",
            "",
            "cart",
        ] {
            assert_eq!(local_path(hostile), "/", "{hostile}");
        }
    }

    #[test]
    fn prices_are_read_as_a_person_writes_them() {
        assert_eq!(parse_price("12.50"), Some(1250));
        assert_eq!(parse_price("12,5"), Some(1250));
        assert_eq!(parse_price("7"), Some(700));
        assert_eq!(parse_price(".99"), Some(99));
        for bad in ["", "1.234", "-1", "abc", "1e3", "99999999999999999999"] {
            assert_eq!(parse_price(bad), None, "{bad}");
        }
    }

    #[test]
    fn field_errors_land_on_the_forms_fields() {
        let error = GatewayError::Answered {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            problem: crate::gateway::Problem {
                errors: vec![
                    crate::gateway::FieldProblem {
                        field: "price.minor".to_owned(),
                        message: "must be positive".to_owned(),
                    },
                    crate::gateway::FieldProblem {
                        field: "price.currency".to_owned(),
                        message: "unknown".to_owned(),
                    },
                ],
                ..Default::default()
            },
        };
        let errors = field_errors(&error);
        assert_eq!(errors["price"], "must be positive");
        assert_eq!(errors["currency"], "unknown");
    }
}
