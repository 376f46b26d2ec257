//! Money: integer minor units and a currency, checked in one place.

use serde::{Deserialize, Serialize};

/// An amount of money: integer minor units (cents) and an ISO 4217 currency code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    /// Minor units, e.g. 1999 for 19.99.
    pub minor: i64,
    /// ISO 4217 code, e.g. `EUR`.
    pub currency: String,
}

/// Currencies the platform sells and charges in (ISO 4217).
pub const CURRENCIES: &[&str] = &[
    "EUR", "USD", "GBP", "CHF", "SEK", "NOK", "DKK", "PLN", "CZK", "CAD", "AUD", "JPY",
];

/// The largest amount a price or a charge may have, in minor units (ten million units of the
/// currency).
pub const MAX_MINOR: i64 = 1_000_000_000;

impl Money {
    /// An amount in minor units of `currency`.
    pub fn new(minor: i64, currency: &str) -> Self {
        Self {
            minor,
            currency: currency.to_owned(),
        }
    }

    /// Checks an amount that comes from outside: positive, at most [`MAX_MINOR`], in one of
    /// [`CURRENCIES`]. Each error is a (field, message) pair naming `{field}.minor` or
    /// `{field}.currency`, e.g. `price.minor`.
    pub fn parse(field: &str, minor: i64, currency: &str) -> Result<Self, Vec<(String, String)>> {
        let mut errors = Vec::new();
        if minor <= 0 {
            errors.push((
                format!("{field}.minor"),
                "must be a positive number of minor units".to_owned(),
            ));
        } else if minor > MAX_MINOR {
            errors.push((
                format!("{field}.minor"),
                format!("must be at most {MAX_MINOR} minor units"),
            ));
        }
        if !CURRENCIES.contains(&currency) {
            errors.push((
                format!("{field}.currency"),
                format!("must be one of {}", CURRENCIES.join(", ")),
            ));
        }
        if errors.is_empty() {
            Ok(Self::new(minor, currency))
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_positive_bounded_and_in_a_known_currency() {
        let field = |errors: Vec<(String, String)>| errors[0].0.clone();
        assert_eq!(
            Money::parse("price", 1999, "EUR"),
            Ok(Money::new(1999, "EUR"))
        );
        assert_eq!(
            field(Money::parse("price", 0, "EUR").unwrap_err()),
            "price.minor"
        );
        assert_eq!(
            field(Money::parse("amount", -5, "EUR").unwrap_err()),
            "amount.minor"
        );
        assert_eq!(
            Money::parse("price", MAX_MINOR + 1, "EUR").unwrap_err()[0],
            (
                "price.minor".to_owned(),
                "must be at most 1000000000 minor units".to_owned()
            )
        );
        assert!(Money::parse("price", MAX_MINOR, "JPY").is_ok());
        assert_eq!(
            field(Money::parse("price", 100, "eur").unwrap_err()),
            "price.currency"
        );
        assert_eq!(Money::parse("amount", -1, "XXX").unwrap_err().len(), 2);
    }
}
