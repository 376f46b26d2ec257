//! Products and reservations, parsed at the edge into types that cannot hold an invalid value.

use std::fmt;

use platform_http::FieldError;

/// A stock-keeping unit: 1 to 64 characters of `A-Z`, `0-9` and `-`, stored in upper case
/// (input in any case is accepted).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sku(String);

/// The longest SKU.
pub const MAX_SKU_LEN: usize = 64;

impl Sku {
    /// Parses a SKU; `field` names it in the error.
    pub fn parse(raw: &str, field: &str) -> Result<Self, FieldError> {
        let sku = raw.trim().to_ascii_uppercase();
        if sku.is_empty() {
            return Err(FieldError::new(field, "must not be empty"));
        }
        if sku.len() > MAX_SKU_LEN {
            return Err(FieldError::new(
                field,
                format!("must be at most {MAX_SKU_LEN} characters"),
            ));
        }
        if !sku.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(FieldError::new(
                field,
                format!("`{raw}` may contain only letters A-Z, digits and `-`"),
            ));
        }
        Ok(Self(sku))
    }

    /// The upper-case SKU.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Sku {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A product name: 1 to 200 characters once trimmed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProductName(String);

impl ProductName {
    /// Parses a name (trimmed).
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(FieldError::new("name", "must not be empty"));
        }
        if name.chars().count() > 200 {
            return Err(FieldError::new("name", "must be at most 200 characters"));
        }
        // One line: it is copied into orders, mail subjects and logs.
        platform_http::text::single_line("name", name)?;
        Ok(Self(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key names sort by: lower case, so that `apple` and `Banana` sort as a shopper
    /// expects.
    pub fn sort_key(&self) -> String {
        self.0.to_lowercase()
    }
}

/// A product description: up to 2,000 characters (may be empty).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Description(String);

impl Description {
    /// Parses a description (trimmed).
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let description = raw.trim();
        if description.chars().count() > 2000 {
            return Err(FieldError::new(
                "description",
                "must be at most 2000 characters",
            ));
        }
        Ok(Self(description.to_owned()))
    }

    /// The description.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A category: 1 to 50 characters of `a-z`, `0-9` and `-`, stored in lower case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Category(String);

impl Category {
    /// Parses a category; `field` names it in the error.
    pub fn parse(raw: &str, field: &str) -> Result<Self, FieldError> {
        let category = raw.trim().to_ascii_lowercase();
        if category.is_empty() || category.len() > 50 {
            return Err(FieldError::new(field, "must be 1 to 50 characters"));
        }
        if !category
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(FieldError::new(
                field,
                "may contain only letters a-z, digits and `-`",
            ));
        }
        Ok(Self(category))
    }

    /// The lower-case category.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub use platform_contracts::Money;

/// A product's price, checked; errors name `price.minor` and `price.currency`.
pub fn parse_price(minor: i64, currency: &str) -> Result<Money, Vec<FieldError>> {
    Money::parse("price", minor, currency)
        .map_err(|errors| errors.into_iter().map(FieldError::from).collect())
}

/// The most units one request may move (a reservation line, a restock, an initial stock).
pub const MAX_QUANTITY: i64 = 1_000_000;

/// A positive number of units, at most [`MAX_QUANTITY`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Quantity(i64);

impl Quantity {
    /// Parses a quantity; `field` names it in the error.
    pub fn parse(raw: i64, field: &str) -> Result<Self, FieldError> {
        if raw <= 0 {
            return Err(FieldError::new(field, "must be positive"));
        }
        if raw > MAX_QUANTITY {
            return Err(FieldError::new(
                field,
                format!("must be at most {MAX_QUANTITY}"),
            ));
        }
        Ok(Self(raw))
    }

    /// The number of units.
    pub fn get(self) -> i64 {
        self.0
    }
}

/// A count that may be zero (an initial stock, a low-stock threshold), at most
/// [`MAX_QUANTITY`].
pub fn parse_count(raw: i64, field: &str) -> Result<i64, FieldError> {
    if raw < 0 {
        return Err(FieldError::new(field, "must not be negative"));
    }
    if raw > MAX_QUANTITY {
        return Err(FieldError::new(
            field,
            format!("must be at most {MAX_QUANTITY}"),
        ));
    }
    Ok(raw)
}

/// The most lines a reservation may have.
pub const MAX_RESERVATION_ITEMS: usize = 100;

/// One line of a reservation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReservationLine {
    /// What.
    pub sku: Sku,
    /// How many.
    pub quantity: Quantity,
}

/// Parses a reservation's lines, given as `(sku, quantity)`: at least one, at most
/// [`MAX_RESERVATION_ITEMS`], each SKU once. Errors name the field, e.g. `items[1].quantity`.
/// The lines come back sorted by SKU, the order in which stock is taken (so that two
/// reservations never wait on each other's products in opposite orders).
pub fn parse_reservation_lines(
    items: &[(String, i64)],
) -> Result<Vec<ReservationLine>, Vec<FieldError>> {
    if items.is_empty() {
        return Err(vec![FieldError::new("items", "must not be empty")]);
    }
    if items.len() > MAX_RESERVATION_ITEMS {
        return Err(vec![FieldError::new(
            "items",
            format!("must have at most {MAX_RESERVATION_ITEMS} lines"),
        )]);
    }
    let mut errors = Vec::new();
    let mut lines: Vec<(usize, ReservationLine)> = Vec::with_capacity(items.len());
    for (index, (sku, quantity)) in items.iter().enumerate() {
        let sku = Sku::parse(sku, &format!("items[{index}].sku"));
        let quantity = Quantity::parse(*quantity, &format!("items[{index}].quantity"));
        match (sku, quantity) {
            (Ok(sku), Ok(quantity)) => {
                if let Some((first, _)) = lines.iter().find(|(_, line)| line.sku == sku) {
                    errors.push(FieldError::new(
                        format!("items[{index}].sku"),
                        format!("`{sku}` is already in items[{first}]; give each SKU once"),
                    ));
                } else {
                    lines.push((index, ReservationLine { sku, quantity }));
                }
            }
            (sku, quantity) => errors.extend(sku.err().into_iter().chain(quantity.err())),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut lines: Vec<ReservationLine> = lines.into_iter().map(|(_, line)| line).collect();
    lines.sort_by(|a, b| a.sku.cmp(&b.sku));
    Ok(lines)
}

/// Whether a change of available stock from `before` to `after` crosses below `threshold`:
/// the moment a low-stock alert is due (once, not on every change below it).
pub fn falls_below(before: i64, after: i64, threshold: i64) -> bool {
    before >= threshold && after < threshold
}

/// Escapes the regular expression metacharacters of a search term, so that it matches
/// literally.
pub fn escape_regex(term: &str) -> String {
    let mut escaped = String::with_capacity(term.len() * 2);
    for c in term.chars() {
        if matches!(
            c,
            '\\' | '^'
                | '$'
                | '.'
                | '|'
                | '?'
                | '*'
                | '+'
                | '('
                | ')'
                | '['
                | ']'
                | '{'
                | '}'
                | '-'
        ) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skus_are_upper_cased_and_limited_to_letters_digits_and_dashes() {
        assert_eq!(Sku::parse(" mug-001 ", "sku").unwrap().as_str(), "MUG-001");
        assert_eq!(
            Sku::parse("mug 001", "sku").unwrap_err().message,
            "`mug 001` may contain only letters A-Z, digits and `-`"
        );
        assert!(Sku::parse("", "sku").is_err());
        assert!(Sku::parse(&"A".repeat(64), "sku").is_ok());
        assert!(Sku::parse(&"A".repeat(65), "sku").is_err());
        assert!(Sku::parse("ÄPFEL", "sku").is_err());
    }

    #[test]
    fn prices_are_checked_with_errors_naming_the_price() {
        assert_eq!(parse_price(1999, "EUR"), Ok(Money::new(1999, "EUR")));
        assert_eq!(parse_price(0, "EUR").unwrap_err()[0].field, "price.minor");
        assert_eq!(
            parse_price(100, "eur").unwrap_err()[0].field,
            "price.currency"
        );
        assert_eq!(parse_price(-1, "XXX").unwrap_err().len(), 2);
    }

    #[test]
    fn reservation_lines_name_the_bad_field_and_come_back_sorted_by_sku() {
        let lines =
            parse_reservation_lines(&[("tent-2".to_owned(), 1), ("MUG-1".to_owned(), 3)]).unwrap();
        assert_eq!(lines[0].sku.as_str(), "MUG-1");
        assert_eq!(lines[1].sku.as_str(), "TENT-2");

        let errors = parse_reservation_lines(&[("MUG-1".to_owned(), 1), ("TENT-2".to_owned(), -2)])
            .unwrap_err();
        assert_eq!(errors[0].field, "items[1].quantity");
        assert_eq!(errors[0].message, "must be positive");

        let errors = parse_reservation_lines(&[("MUG-1".to_owned(), 1), ("mug-1".to_owned(), 2)])
            .unwrap_err();
        assert_eq!(errors[0].field, "items[1].sku");
        assert_eq!(parse_reservation_lines(&[]).unwrap_err()[0].field, "items");
    }

    #[test]
    fn low_stock_is_due_only_when_the_threshold_is_crossed() {
        assert!(falls_below(5, 4, 5));
        assert!(falls_below(10, 0, 5));
        assert!(!falls_below(4, 3, 5), "already below: no second alert");
        assert!(!falls_below(9, 5, 5), "at the threshold is not below it");
        assert!(!falls_below(0, 0, 0));
    }

    #[test]
    fn search_terms_match_literally() {
        assert_eq!(escape_regex("a.b*c"), r"a\.b\*c");
        assert_eq!(
            escape_regex("(x)[y]{z}^$|?+\\-"),
            r"\(x\)\[y\]\{z\}\^\$\|\?\+\\\-"
        );
        assert_eq!(escape_regex("mug"), "mug");
    }
}
