//! Money: integer minor units and a currency, checked in one place, and its gRPC form.

use std::fmt;

use platform_proto::common::v1 as proto;
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
        Self::check(minor, currency).map_err(|invalid| invalid.in_field(field))
    }

    fn check(minor: i64, currency: &str) -> Result<Self, InvalidMoney> {
        let mut problems = Vec::new();
        if minor <= 0 {
            problems.push((
                "minor",
                "must be a positive number of minor units".to_owned(),
            ));
        } else if minor > MAX_MINOR {
            problems.push(("minor", format!("must be at most {MAX_MINOR} minor units")));
        }
        if !CURRENCIES.contains(&currency) {
            problems.push((
                "currency",
                format!("must be one of {}", CURRENCIES.join(", ")),
            ));
        }
        if problems.is_empty() {
            Ok(Self::new(minor, currency))
        } else {
            Err(InvalidMoney { problems })
        }
    }
}

/// Why an amount was refused: each problem with the part of the amount it concerns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidMoney {
    /// (`minor` or `currency`, what is wrong with it).
    problems: Vec<(&'static str, String)>,
}

impl InvalidMoney {
    /// Each problem as a (field, message) pair naming `{field}.minor` or `{field}.currency`.
    pub fn in_field(&self, field: &str) -> Vec<(String, String)> {
        self.problems
            .iter()
            .map(|(part, message)| (format!("{field}.{part}"), message.clone()))
            .collect()
    }
}

impl fmt::Display for InvalidMoney {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid amount: ")?;
        for (index, (part, message)) in self.problems.iter().enumerate() {
            if index > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{part} {message}")?;
        }
        Ok(())
    }
}

impl std::error::Error for InvalidMoney {}

/// An amount from a gRPC message, checked like [`Money::parse`].
impl TryFrom<proto::Money> for Money {
    type Error = InvalidMoney;

    fn try_from(money: proto::Money) -> Result<Self, InvalidMoney> {
        Self::check(money.minor, &money.currency)
    }
}

impl From<Money> for proto::Money {
    fn from(money: Money) -> Self {
        Self {
            minor: money.minor,
            currency: money.currency,
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

    fn grpc(minor: i64, currency: &str) -> proto::Money {
        proto::Money {
            minor,
            currency: currency.to_owned(),
        }
    }

    #[test]
    fn an_amount_survives_the_round_trip_through_its_grpc_form() {
        let price = Money::new(1999, "EUR");
        let sent = proto::Money::from(price.clone());
        assert_eq!(sent, grpc(1999, "EUR"));
        assert_eq!(Money::try_from(sent), Ok(price));
    }

    #[test]
    fn a_grpc_amount_in_an_unknown_currency_or_out_of_range_is_refused() {
        let invalid = Money::try_from(grpc(100, "XXX")).unwrap_err();
        assert_eq!(
            invalid.in_field("amount"),
            [(
                "amount.currency".to_owned(),
                format!("must be one of {}", CURRENCIES.join(", "))
            )]
        );
        let invalid = Money::try_from(grpc(MAX_MINOR + 1, "EUR")).unwrap_err();
        assert_eq!(
            invalid.to_string(),
            "invalid amount: minor must be at most 1000000000 minor units"
        );
        let invalid = Money::try_from(grpc(0, "eur")).unwrap_err();
        assert_eq!(
            invalid.in_field("price"),
            Money::parse("price", 0, "eur").unwrap_err()
        );
        assert_eq!(invalid.in_field("price").len(), 2);
    }
}
