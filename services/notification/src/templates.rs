//! Messages rendered from the template files in `templates/` (a subject, a text and an HTML
//! part per message), compiled into the binary so a deployment needs no extra files.
//!
//! Money is passed to templates as `{minor, currency}` and printed with the `money` filter,
//! from integers (never floating point): `{"minor": 2500, "currency": "EUR"}` prints `€25.00`.

use minijinja::{Environment, Value, value::ValueKind};
use serde::Serialize;

/// A message, rendered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    /// One line.
    pub subject: String,
    /// The plain-text part.
    pub text: String,
    /// The HTML part.
    pub html: String,
}

/// The compiled templates.
pub struct Templates {
    environment: Environment<'static>,
}

macro_rules! template_files {
    ($($name:literal),*) => {
        [$(
            (concat!($name, ".subject.txt"), include_str!(concat!("../templates/", $name, ".subject.txt"))),
            (concat!($name, ".txt"), include_str!(concat!("../templates/", $name, ".txt"))),
            (concat!($name, ".html"), include_str!(concat!("../templates/", $name, ".html"))),
        )*]
    };
}

impl Templates {
    /// Compiles every template; a syntax error is a start-up failure that names the file.
    pub fn load() -> Result<Self, minijinja::Error> {
        let mut environment = Environment::new();
        // HTML parts escape what they print; text parts and subjects do not.
        environment.set_auto_escape_callback(|name| {
            // Our own template names, always lower case.
            if std::path::Path::new(name)
                .extension()
                .is_some_and(|extension| extension == "html")
            {
                minijinja::AutoEscape::Html
            } else {
                minijinja::AutoEscape::None
            }
        });
        environment.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        environment.add_filter("money", money_filter);
        let files = template_files!(
            "welcome",
            "order_confirmed",
            "order_cancelled",
            "payment_failed",
            "low_stock"
        );
        for (name, source) in files {
            environment.add_template(name, source)?;
        }
        Ok(Self { environment })
    }

    /// Renders the three parts of `template` with `context`.
    pub fn render(
        &self,
        template: &str,
        context: &impl Serialize,
    ) -> Result<Rendered, minijinja::Error> {
        let context = Value::from_serialize(context);
        let part = |suffix: &str| {
            self.environment
                .get_template(&format!("{template}{suffix}"))?
                .render(&context)
        };
        Ok(Rendered {
            subject: part(".subject.txt")?.trim().to_owned(),
            text: part(".txt")?,
            html: part(".html")?,
        })
    }
}

/// `{{ amount | money }}`: formats `{minor, currency}` as money.
fn money_filter(value: &Value) -> Result<String, minijinja::Error> {
    let invalid = || {
        minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            "money expects {minor, currency}",
        )
    };
    if value.kind() != ValueKind::Map {
        return Err(invalid());
    }
    let minor = value.get_attr("minor")?;
    let currency = value.get_attr("currency")?;
    let minor = i64::try_from(minor).map_err(|_| invalid())?;
    let currency = currency.as_str().ok_or_else(invalid)?;
    Ok(format_money(minor, currency))
}

/// Formats an amount of minor units: `€25.00`, `$3.50`, `£0.99`, `¥500`, `12.00 CHF`.
pub fn format_money(minor: i64, currency: &str) -> String {
    let decimals = match currency {
        "JPY" | "KRW" | "ISK" => 0,
        _ => 2,
    };
    let sign = if minor < 0 { "-" } else { "" };
    let absolute = minor.unsigned_abs();
    let number = if decimals == 0 {
        absolute.to_string()
    } else {
        format!("{}.{:02}", absolute / 100, absolute % 100)
    };
    match currency {
        "EUR" => format!("{sign}€{number}"),
        "USD" => format!("{sign}${number}"),
        "GBP" => format!("{sign}£{number}"),
        "JPY" => format!("{sign}¥{number}"),
        other => format!("{sign}{number} {other}"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn money_is_printed_from_integers() {
        assert_eq!(format_money(2500, "EUR"), "€25.00");
        assert_eq!(format_money(5, "USD"), "$0.05");
        assert_eq!(format_money(199_999, "GBP"), "£1999.99");
        assert_eq!(format_money(500, "JPY"), "¥500");
        assert_eq!(format_money(1200, "CHF"), "12.00 CHF");
        assert_eq!(format_money(-150, "EUR"), "-€1.50");
    }

    #[test]
    fn every_template_renders_and_html_escapes_what_it_prints() {
        let templates = Templates::load().unwrap();
        let line = json!({
            "sku": "MUG-001", "name": "Mug <b>", "quantity": 2,
            "unit_price": {"minor": 1250, "currency": "EUR"},
            "line_total": {"minor": 2500, "currency": "EUR"}
        });
        let rendered = templates
            .render(
                "order_confirmed",
                &json!({
                    "display_name": "Ada <script>",
                    "order_ref": "0193AB",
                    "items": [line],
                    "total": {"minor": 2500, "currency": "EUR"}
                }),
            )
            .unwrap();
        assert_eq!(rendered.subject, "Your order 0193AB is confirmed: €25.00");
        assert!(
            rendered
                .text
                .contains("2 x Mug <b> (MUG-001)   €12.50 each   €25.00"),
            "{}",
            rendered.text
        );
        assert!(
            rendered.html.contains("Ada &lt;script&gt;"),
            "{}",
            rendered.html
        );
        assert!(!rendered.html.contains("<script>"));
    }

    #[test]
    fn a_missing_value_is_an_error_not_an_empty_string() {
        let templates = Templates::load().unwrap();
        assert!(
            templates
                .render("welcome", &json!({"email": "a@example.com"}))
                .is_err()
        );
    }
}
