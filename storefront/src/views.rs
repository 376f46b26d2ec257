//! Rendering: the templates (`templates/`, compiled into the binary), the words the pages use
//! for the platform's codes, and the two assets (`static/`), served with a content hash in
//! their URL so browsers may cache them for good.

use std::fmt::Write as _;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::{Environment, Error, ErrorKind, Value};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

/// The templates, by name.
const TEMPLATES: [(&str, &str); 12] = [
    ("base.html", include_str!("../templates/base.html")),
    (
        "catalogue.html",
        include_str!("../templates/catalogue.html"),
    ),
    ("product.html", include_str!("../templates/product.html")),
    ("cart.html", include_str!("../templates/cart.html")),
    ("register.html", include_str!("../templates/register.html")),
    ("login.html", include_str!("../templates/login.html")),
    ("cards.html", include_str!("../templates/cards.html")),
    ("order.html", include_str!("../templates/order.html")),
    ("orders.html", include_str!("../templates/orders.html")),
    (
        "notifications.html",
        include_str!("../templates/notifications.html"),
    ),
    ("admin.html", include_str!("../templates/admin.html")),
    ("error.html", include_str!("../templates/error.html")),
];

/// The stylesheet.
pub const CSS: &str = include_str!("../static/app.css");

/// The script.
pub const JS: &str = include_str!("../static/app.js");

/// An asset: its body, type and versioned URL.
#[derive(Clone, Debug)]
pub struct Asset {
    /// `/static/app.css?v=<hash>`.
    pub url: String,
    body: &'static str,
    content_type: &'static str,
    etag: String,
}

impl Asset {
    fn new(path: &str, body: &'static str, content_type: &'static str) -> Self {
        let hash = hex(&Sha256::digest(body.as_bytes())[..8]);
        Self {
            url: format!("{path}?v={hash}"),
            body,
            content_type,
            etag: format!("\"{hash}\""),
        }
    }

    /// The asset, cached for a year (its URL changes with its content), or 304.
    pub fn respond(&self, if_none_match: Option<&str>) -> Response {
        let headers = [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(self.content_type),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
            (
                header::ETAG,
                HeaderValue::from_str(&self.etag).expect("a hex tag is a valid header"),
            ),
        ];
        if if_none_match == Some(self.etag.as_str()) {
            return (StatusCode::NOT_MODIFIED, headers).into_response();
        }
        (headers, self.body).into_response()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut text, b| {
        let _ = write!(text, "{b:02x}");
        text
    })
}

/// The templates and assets.
#[derive(Debug)]
pub struct Views {
    env: Environment<'static>,
    /// The stylesheet.
    pub css: Asset,
    /// The script.
    pub js: Asset,
}

impl Views {
    /// Compiles the templates (a broken one fails start-up, and the unit tests).
    pub fn new() -> Result<Self, Error> {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            env.add_template(name, source)?;
        }
        env.set_formatter(escape_html);
        env.add_filter("money", money);
        env.add_filter("urlencode", |text: &str| urlencode(text));
        env.add_filter("when", when);
        env.add_filter("status_words", |status: &str| status_words(status));
        env.add_filter("reason_words", |reason: &str| reason_words(reason));
        Ok(Self {
            env,
            css: Asset::new("/static/app.css", CSS, "text/css; charset=utf-8"),
            js: Asset::new("/static/app.js", JS, "text/javascript; charset=utf-8"),
        })
    }

    /// Renders a template with `context`.
    pub fn render(&self, name: &str, context: impl Serialize) -> Result<String, Error> {
        self.env
            .get_template(name)?
            .render(Value::from_serialize(context))
    }
}

/// HTML-escapes text as minijinja does, but for `/`, which needs no escaping (and paths full of
/// `&#x2f;` would only weigh more).
fn escape_html(
    out: &mut minijinja::Output,
    state: &minijinja::State,
    value: &Value,
) -> Result<(), Error> {
    if matches!(state.auto_escape(), minijinja::AutoEscape::Html)
        && !value.is_safe()
        && let Some(text) = value.as_str()
    {
        let mut escaped = String::with_capacity(text.len());
        for c in text.chars() {
            match c {
                '<' => escaped.push_str("&lt;"),
                '>' => escaped.push_str("&gt;"),
                '&' => escaped.push_str("&amp;"),
                '"' => escaped.push_str("&quot;"),
                '\'' => escaped.push_str("&#x27;"),
                other => escaped.push(other),
            }
        }
        return out.write_str(&escaped).map_err(Error::from);
    }
    minijinja::escape_formatter(out, state, value)
}

/// `{"minor": 1250, "currency": "EUR"}` as `€12.50`.
fn money(value: &Value) -> Result<String, Error> {
    let minor = value
        .get_attr("minor")
        .ok()
        .and_then(|minor| i64::try_from(minor).ok())
        .ok_or_else(|| Error::new(ErrorKind::InvalidOperation, "money without `minor`"))?;
    let currency = value
        .get_attr("currency")
        .ok()
        .and_then(|currency| currency.as_str().map(str::to_owned))
        .unwrap_or_default();
    Ok(format_money(minor, &currency))
}

/// Minor units and a currency, as a price a person reads.
pub fn format_money(minor: i64, currency: &str) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let (units, cents) = (minor.abs() / 100, minor.abs() % 100);
    match currency {
        "EUR" => format!("{sign}€{units}.{cents:02}"),
        "USD" => format!("{sign}${units}.{cents:02}"),
        "GBP" => format!("{sign}£{units}.{cents:02}"),
        other => format!("{sign}{units}.{cents:02} {other}"),
    }
}

/// Text for a URL's path segment or query value.
pub fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// An RFC 3339 time as `2026-12-07 14:03 UTC`.
fn when(value: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(value).map_or_else(
        |_| value.to_owned(),
        |at| at.format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

/// An order's status, in words.
pub fn status_words(status: &str) -> &'static str {
    match status {
        "PENDING" => "Placed: checking stock",
        "STOCK_RESERVED" => "Items reserved: taking payment",
        "PAID" => "Paid: confirming",
        "CONFIRMED" => "Confirmed",
        "CANCELLING" => "Cancelling: refunding and restocking",
        "CANCELLED" => "Cancelled",
        _ => "Unknown",
    }
}

/// Whether an order's status can still change without the customer.
pub fn in_progress(status: &str) -> bool {
    matches!(status, "PENDING" | "STOCK_RESERVED" | "PAID" | "CANCELLING")
}

/// Why an order was cancelled, in words.
pub fn reason_words(reason: &str) -> &'static str {
    match reason {
        "out_of_stock" => {
            "Some of the items were out of stock, so the order was cancelled. You were not charged."
        }
        "payment_declined" => {
            "Your card was declined, so the order was cancelled. You were not charged."
        }
        "payment_timeout" => {
            "The payment could not be confirmed in time, so the order was cancelled. Any charge is refunded."
        }
        "reservation_expired" => {
            "The items could not be held while the payment went through, so the order was cancelled. Any charge is refunded."
        }
        "customer_request" => "You cancelled this order.",
        _ => "The order could not be completed, so it was cancelled. Any charge is refunded.",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles() {
        Views::new().unwrap();
    }

    /// Renders every template with data shaped like the pages' (the filters and attributes a
    /// template uses are only checked when it renders).
    #[test]
    fn every_template_renders_with_the_pages_data() {
        let views = Views::new().unwrap();
        let money = serde_json::json!({"minor": 1250, "currency": "EUR"});
        let product = serde_json::json!({
            "id": "0190a000-0000-7000-8000-000000000001", "sku": "KIT-MUG", "name": "Mug <b>",
            "description": "d", "price": money, "category": "kitchen",
            "stock": {"available": 3, "reserved": 1},
        });
        let order = serde_json::json!({
            "id": "0190a000-0000-7000-8000-000000000002", "status": "CANCELLED",
            "items": [{"sku": "KIT-MUG", "name": "Mug", "quantity": 2, "unit_price": money, "line_total": money}],
            "total": money, "refunded": money,
            "cancellation": {"reason": "payment_declined", "detail": "declined"},
            "created_at": "2026-12-07T01:00:00Z",
        });
        let context = serde_json::json!({
            "title": "t",
            "chrome": {
                "shop": "Shop", "csrf": "token", "cart_count": 2, "css": "/a.css", "js": "/a.js",
                "refresh": true, "flash": [{"kind": "error", "text": "bad"}, {"kind": "info", "text": "ok"}],
                "customer": {"email": "a@example.com", "admin": true},
            },
            "products": [product], "product": product, "total": 1, "page": 1, "pages": 2,
            "prev_url": null, "next_url": "/?page=2", "categories": ["kitchen", "camp fire"],
            "category": "kitchen", "q": "mug & co", "sort": "name",
            "sorts": [{"value": "name", "label": "Name"}], "max_quantity": 99,
            "lines": [{"sku": "KIT-MUG", "name": "Mug", "quantity": 2, "unit_price": money,
                       "total": money, "available": 1, "short": true}],
            "cards": [{"id": "0190a000-0000-7000-8000-000000000003", "brand": "visa",
                       "last4": "4242", "exp_month": 12, "exp_year": 2030}],
            "attempt": "0190a000-0000-7000-8000-000000000004", "next": "/cart",
            "form": {"email": "a@example.com"}, "errors": {"email": "taken", "price": "bad"},
            "adding": true, "order": order, "orders": [order], "live": true,
            "notifications": [{"subject": "Your order", "status": "sent", "created_at": "2026-12-07T01:00:00Z"}],
            "heading": "Not found", "detail": "none",
        });
        for (name, _) in TEMPLATES {
            let mut context = context.clone();
            if name == "cart.html" {
                // The cart's total is money; the catalogue's is a count.
                context["total"] = money.clone();
            }
            let html = views
                .render(name, &context)
                .unwrap_or_else(|error| panic!("{name}: {error:#}"));
            assert!(!html.contains("Mug <b>"), "{name} does not escape");
        }
        let catalogue = views.render("catalogue.html", &context).unwrap();
        assert!(catalogue.contains("category=camp%20fire"), "{catalogue}");
        assert!(catalogue.contains("Mug &lt;b&gt;"));
        assert!(
            catalogue.contains("href=\"/products/KIT-MUG\""),
            "{catalogue}"
        );
        let hostile = serde_json::json!({"q": "\"><script>x</script>'", "chrome": {"flash": []}});
        let page = views.render("catalogue.html", &hostile).unwrap();
        assert!(!page.contains("<script>x"), "{page}");
        assert!(
            page.contains("&quot;&gt;&lt;script&gt;x&lt;/script&gt;&#x27;"),
            "{page}"
        );
    }

    #[test]
    fn money_reads_as_a_price() {
        assert_eq!(format_money(1250, "EUR"), "€12.50");
        assert_eq!(format_money(5, "USD"), "$0.05");
        assert_eq!(format_money(-100, "CHF"), "-1.00 CHF");
    }

    #[test]
    fn every_cancellation_reason_has_its_own_words() {
        let reasons = [
            "out_of_stock",
            "payment_declined",
            "payment_timeout",
            "reservation_expired",
            "customer_request",
        ];
        for reason in reasons {
            assert_ne!(reason_words(reason), reason_words("other"), "{reason}");
        }
        assert!(reason_words("payment_declined").contains("declined"));
        assert!(reason_words("out_of_stock").contains("out of stock"));
    }

    #[test]
    fn asset_urls_change_with_their_content() {
        let a = Asset::new("/a.css", "a{}", "text/css");
        let b = Asset::new("/a.css", "b{}", "text/css");
        assert_ne!(a.url, b.url);
        let fresh = a.respond(Some(&a.etag));
        assert_eq!(fresh.status(), StatusCode::NOT_MODIFIED);
    }
}
