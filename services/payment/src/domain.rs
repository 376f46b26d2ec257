//! Card details and money, parsed at the edge into types that cannot hold an invalid value.

use std::fmt;

use chrono::{Datelike as _, NaiveDate};
use platform_http::FieldError;
use serde::{Deserialize, Serialize};

/// A card number that passed the Luhn check. `Debug` shows only the last four digits, so it
/// cannot reach a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct CardNumber(String);

impl CardNumber {
    /// Parses a number written with or without spaces or dashes.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let invalid = |why: &str| FieldError::new("card_number", why);
        let digits: String = raw.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        if digits.is_empty() {
            return Err(invalid("must not be empty"));
        }
        if !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(invalid(
                "must contain only digits (spaces and dashes are ignored)",
            ));
        }
        if !(12..=19).contains(&digits.len()) {
            return Err(invalid("must have 12 to 19 digits"));
        }
        if !luhn(&digits) {
            return Err(invalid(
                "is not a valid card number (the check digit does not match)",
            ));
        }
        Ok(Self(digits))
    }

    /// The digits, for the provider only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The last four digits.
    pub fn last4(&self) -> &str {
        &self.0[self.0.len() - 4..]
    }

    /// The card network, from the number's prefix.
    pub fn brand(&self) -> Brand {
        let prefix = |n: usize| self.0[..n].parse::<u32>().unwrap_or(0);
        match () {
            () if self.0.starts_with('4') => Brand::Visa,
            () if (51..=55).contains(&prefix(2)) || (2221..=2720).contains(&prefix(4)) => {
                Brand::Mastercard
            }
            () if matches!(prefix(2), 34 | 37) => Brand::Amex,
            () if self.0.starts_with("6011") || self.0.starts_with("65") => Brand::Discover,
            () => Brand::Unknown,
        }
    }
}

impl fmt::Debug for CardNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CardNumber(**** {})", self.last4())
    }
}

/// The Luhn (mod 10) check.
fn luhn(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, byte)| {
            let digit = u32::from(byte - b'0');
            if i % 2 == 1 {
                let doubled = digit * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                digit
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// A card network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Brand {
    /// Visa.
    Visa,
    /// Mastercard.
    Mastercard,
    /// American Express.
    Amex,
    /// Discover.
    Discover,
    /// A network the prefix does not tell.
    Unknown,
}

impl Brand {
    /// The lower-case name stored and returned.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Visa => "visa",
            Self::Mastercard => "mastercard",
            Self::Amex => "amex",
            Self::Discover => "discover",
            Self::Unknown => "unknown",
        }
    }
}

/// Where a charge stands.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, sqlx::Type, Serialize, Deserialize, utoipa::ToSchema,
)]
// `payments.status` is text with a check, and the API has always said these same names: one
// spelling for both, so rows decode straight into the enum and the JSON stays as it was.
#[sqlx(type_name = "text", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum PaymentStatus {
    /// Being charged: a worker holds it while it talks to the provider.
    Pending,
    /// The money was taken (some of it may have been refunded since).
    Captured,
    /// The provider declined the charge. Final.
    Failed,
}

impl PaymentStatus {
    /// The stored and returned name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Captured => "captured",
            Self::Failed => "failed",
        }
    }
}

impl fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A card's expiry: valid through the last day of its month.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expiry {
    /// 1 to 12.
    pub month: u8,
    /// Four digits.
    pub year: u16,
}

impl Expiry {
    /// Parses month and year (two or four digits) and refuses an expiry in the past, as of
    /// `today`.
    pub fn parse(month: i64, year: i64, today: NaiveDate) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        if !(1..=12).contains(&month) {
            errors.push(FieldError::new("exp_month", "must be a month from 1 to 12"));
        }
        let year = if (0..100).contains(&year) {
            year + 2000
        } else {
            year
        };
        if !(2000..=2100).contains(&year) {
            errors.push(FieldError::new(
                "exp_year",
                "must be a year such as 2030 (or 30)",
            ));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let (month, year) = (month as u8, year as u16);
        let this_month = (today.year(), today.month());
        if (i32::from(year), u32::from(month)) < this_month {
            return Err(vec![FieldError::new(
                "exp_year",
                format!("the card expired at the end of {month:02}/{year}"),
            )]);
        }
        Ok(Self { month, year })
    }
}

/// A card security code: 3 digits, 4 for American Express.
#[derive(Clone, PartialEq, Eq)]
pub struct Cvc(String);

impl Cvc {
    /// Parses a code for a card of `brand`.
    pub fn parse(raw: &str, brand: Brand) -> Result<Self, FieldError> {
        let expected = if brand == Brand::Amex { 4 } else { 3 };
        if raw.len() != expected || !raw.chars().all(|c| c.is_ascii_digit()) {
            return Err(FieldError::new(
                "cvc",
                format!("must be {expected} digits for this card"),
            ));
        }
        Ok(Self(raw.to_owned()))
    }
}

impl fmt::Debug for Cvc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cvc(***)")
    }
}

/// A card to add as a payment method: a valid number, an expiry not in the past and a
/// security code of the card's brand.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewCard {
    /// The number.
    pub number: CardNumber,
    /// The expiry.
    pub expiry: Expiry,
    /// The security code.
    pub cvc: Cvc,
}

pub use platform_contracts::Money;

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 22).unwrap()
    }

    #[test]
    fn card_numbers_pass_the_luhn_check_with_spaces_or_dashes() {
        let card = CardNumber::parse("4242 4242-4242 4242").unwrap();
        assert_eq!(card.expose(), "4242424242424242");
        assert_eq!(card.last4(), "4242");
        assert_eq!(card.brand(), Brand::Visa);
        assert_eq!(format!("{card:?}"), "CardNumber(**** 4242)");
        assert_eq!(
            CardNumber::parse("5555555555554444").unwrap().brand(),
            Brand::Mastercard
        );
        assert_eq!(
            CardNumber::parse("378282246310005").unwrap().brand(),
            Brand::Amex
        );
    }

    #[test]
    fn bad_card_numbers_say_why() {
        let message = |raw: &str| CardNumber::parse(raw).unwrap_err().message;
        assert!(message("4242424242424241").contains("check digit"));
        assert!(message("4242abcd42424242").contains("only digits"));
        assert!(message("4242").contains("12 to 19"));
        assert!(message("").contains("empty"));
    }

    #[test]
    fn an_expiry_is_valid_through_its_month() {
        assert!(
            Expiry::parse(11, 2026, today()).is_ok(),
            "this month is still valid"
        );
        assert_eq!(Expiry::parse(12, 30, today()).unwrap().year, 2030);
        let past = Expiry::parse(10, 2026, today()).unwrap_err();
        assert_eq!(past[0].message, "the card expired at the end of 10/2026");
        let nonsense = Expiry::parse(13, 1999, today()).unwrap_err();
        assert_eq!(nonsense.len(), 2);
    }

    #[test]
    fn cvcs_have_the_length_of_their_brand() {
        assert!(Cvc::parse("123", Brand::Visa).is_ok());
        assert!(Cvc::parse("1234", Brand::Amex).is_ok());
        assert_eq!(
            Cvc::parse("12a", Brand::Visa).unwrap_err().message,
            "must be 3 digits for this card"
        );
        assert!(Cvc::parse("123", Brand::Amex).is_err());
        assert_eq!(
            format!("{:?}", Cvc::parse("123", Brand::Visa).unwrap()),
            "Cvc(***)"
        );
    }

    #[test]
    fn payment_statuses_keep_their_lower_case_wire_names() {
        for status in [
            PaymentStatus::Pending,
            PaymentStatus::Captured,
            PaymentStatus::Failed,
        ] {
            let json = serde_json::to_value(status).unwrap();
            assert_eq!(json, status.as_str());
            assert_eq!(
                serde_json::from_value::<PaymentStatus>(json).unwrap(),
                status
            );
        }
    }
}
