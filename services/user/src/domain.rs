//! Input parsed into types that cannot hold an invalid value.

use std::fmt;

use platform_http::FieldError;

/// A normalised email address: trimmed, lower case, shaped like `local@domain.tld`, and one
/// the notification service's mail sender can deliver to. That sender speaks plain SMTP (no
/// SMTPUTF8), so the part before the `@` must be ASCII (RFC 5322's dot-atom: letters, digits,
/// ``!#$%&'*+/=?^_`{|}~-`` and single dots between them); an internationalised domain is kept
/// in its ASCII (punycode) form, `bücher.example` as `xn--bcher-kva.example`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Parses and normalises an address; the error says what is wrong with it.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let invalid = |why: &str| FieldError::new("email", why);
        let email = raw.trim().to_lowercase();
        if email.is_empty() {
            return Err(invalid("must not be empty"));
        }
        if email.chars().count() > 254 {
            return Err(invalid("must be at most 254 characters"));
        }
        if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid("must not contain spaces or control characters"));
        }
        let Some((local, domain)) = email.split_once('@') else {
            return Err(invalid("must be an email address such as ada@example.com"));
        };
        if local.is_empty() || local.len() > 64 || domain.contains('@') {
            return Err(invalid("must be an email address such as ada@example.com"));
        }
        if !local.is_ascii() {
            return Err(invalid(
                "must have only ASCII letters, digits and punctuation before the @ \
                 (mail to other characters cannot be delivered)",
            ));
        }
        let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~-".contains(c);
        if !local
            .split('.')
            .all(|atom| !atom.is_empty() && atom.chars().all(atext))
        {
            return Err(invalid(
                "must have letters, digits or ``!#$%&'*+/=?^_`{|}~-`` before the @, with \
                 single dots only between them",
            ));
        }
        let domain_error = "must have a domain such as example.com after the @";
        // UTS 46: `Bücher.Example` -> `xn--bcher-kva.example`; an ASCII domain is unchanged.
        let domain = idna::domain_to_ascii(domain).map_err(|_| invalid(domain_error))?;
        let labels: Vec<&str> = domain.split('.').collect();
        let label_ok = |label: &&str| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        };
        if labels.len() < 2 || domain.len() > 253 || !labels.iter().all(label_ok) {
            return Err(invalid(domain_error));
        }
        let email = format!("{local}@{domain}");
        if email.len() > 254 {
            return Err(invalid("must be at most 254 characters"));
        }
        Ok(Self(email))
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the `@`.
    pub fn local_part(&self) -> &str {
        self.0
            .split_once('@')
            .map_or(self.0.as_str(), |(local, _)| local)
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// The longest password accepted (hashing cost grows with length).
pub const MAX_PASSWORD_CHARS: usize = 128;

/// Passwords that attackers try first; refused however long they are.
const COMMON_PASSWORDS: &[&str] = &[
    "123456789012",
    "1234567890123",
    "password1234",
    "password12345",
    "passwordpassword",
    "qwertyuiopasdf",
    "qwerty123456",
    "iloveyou1234",
    "letmein12345",
    "welcome12345",
    "administrator",
    "changeme1234",
];

/// A new password that satisfies the policy. Never printed.
#[derive(Clone)]
pub struct NewPassword(String);

impl NewPassword {
    /// Checks `raw` against the policy for an account with `email`: 12 to 128 characters, not
    /// one character repeated, not a well-known password, not containing the email's name.
    pub fn parse(raw: &str, email: &Email, field: &str) -> Result<Self, FieldError> {
        let invalid = |why: String| FieldError::new(field, why);
        let length = raw.chars().count();
        if length < MIN_PASSWORD_CHARS {
            return Err(invalid(format!(
                "must be at least {MIN_PASSWORD_CHARS} characters long (it has {length})"
            )));
        }
        if length > MAX_PASSWORD_CHARS {
            return Err(invalid(format!(
                "must be at most {MAX_PASSWORD_CHARS} characters long"
            )));
        }
        if raw.trim().is_empty() {
            return Err(invalid("must not be only spaces".to_owned()));
        }
        let mut chars = raw.chars();
        let first = chars.next();
        if chars.all(|c| Some(c) == first) {
            return Err(invalid("must not be one character repeated".to_owned()));
        }
        let lowered = raw.to_lowercase();
        if COMMON_PASSWORDS.contains(&lowered.as_str()) {
            return Err(invalid(
                "is one of the most common passwords; choose another".to_owned(),
            ));
        }
        let name = email.local_part();
        if name.chars().count() >= 4 && lowered.contains(name) {
            return Err(invalid("must not contain your email address".to_owned()));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The password, for hashing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewPassword([REDACTED])")
    }
}

/// The name shown to the user and in messages: 1 to 100 characters, no control characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    /// Parses a display name (surrounding spaces are trimmed).
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let invalid = |why: &str| FieldError::new("display_name", why);
        let name = raw.trim();
        if name.is_empty() {
            return Err(invalid("must not be empty"));
        }
        if name.chars().count() > 100 {
            return Err(invalid("must be at most 100 characters"));
        }
        platform_http::text::single_line("display_name", name)?;
        Ok(Self(name.to_owned()))
    }

    /// A default name for an account registered without one: its email's name.
    pub fn from_email(email: &Email) -> Self {
        Self(email.local_part().chars().take(100).collect())
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A customer account to create: an email, a password that satisfies the policy for it, and
/// a display name (the email's name when none was given).
#[derive(Clone, Debug)]
pub struct NewAccount {
    /// The email.
    pub email: Email,
    /// The password.
    pub password: NewPassword,
    /// The display name.
    pub display_name: DisplayName,
}

/// Changes to an account, parsed as far as they can be without it: a new password is judged
/// against the account's email, and the current one against its hash, by the operation.
#[derive(Clone, Default)]
pub struct ProfileChanges {
    /// A new display name.
    pub display_name: Option<DisplayName>,
    /// The current password, as sent.
    pub current_password: Option<String>,
    /// A new password, as sent.
    pub new_password: Option<String>,
}

impl fmt::Debug for ProfileChanges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProfileChanges")
            .field("display_name", &self.display_name)
            .field(
                "current_password",
                &self.current_password.as_ref().map(|_| "[REDACTED]"),
            )
            .field(
                "new_password",
                &self.new_password.as_ref().map(|_| "[REDACTED]"),
            )
            .finish()
    }
}

/// Collects the errors of several field parsers: all fields are checked, not just the first.
#[derive(Default)]
pub struct FieldErrors(Vec<FieldError>);

impl FieldErrors {
    /// The parsed value, or `None` with the error recorded.
    pub fn check<T>(&mut self, parsed: Result<T, FieldError>) -> Option<T> {
        parsed.map_err(|error| self.0.push(error)).ok()
    }

    /// `Ok` if no field failed.
    pub fn finish(self) -> Result<(), Vec<FieldError>> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(raw: &str) -> Email {
        Email::parse(raw).unwrap()
    }

    #[test]
    fn emails_are_trimmed_and_lower_cased() {
        assert_eq!(
            email("  Ada.Lovelace@Example.COM ").as_str(),
            "ada.lovelace@example.com"
        );
        assert_eq!(email("a+tag@mail.example.co.uk").local_part(), "a+tag");
    }

    #[test]
    fn malformed_emails_are_refused_with_a_reason() {
        for raw in [
            "",
            "   ",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "ada@@example.com",
            "ada@exa mple.com",
            "ada@-example.com",
            "ada@example..com",
        ] {
            let error = Email::parse(raw).unwrap_err();
            assert_eq!(error.field, "email", "{raw:?}");
            assert!(!error.message.is_empty());
        }
        assert!(Email::parse(&format!("{}@example.com", "a".repeat(65))).is_err());
    }

    /// The notification service's sender speaks plain SMTP: an address it cannot send to is
    /// refused at registration, not accepted and then dead-lettered.
    #[test]
    fn addresses_the_mail_sender_cannot_deliver_to_are_refused() {
        for raw in [
            "josé@example.com",
            "пользователь@example.com",
            "ada\u{0}@example.com",
            "ada\u{7}@example.com",
            "\"ada lovelace\"@example.com",
            "ada(comment)@example.com",
            ".ada@example.com",
            "ada.@example.com",
            "ada..lovelace@example.com",
            "ada@exa_mple.com",
        ] {
            let error = Email::parse(raw).unwrap_err();
            assert_eq!(error.field, "email", "{raw:?}");
        }
        assert!(
            Email::parse("josé@example.com")
                .unwrap_err()
                .message
                .contains("ASCII")
        );
        for raw in ["o'brien@example.com", "a!#$%&*+/=?^_`{|}~-z@example.com"] {
            assert_eq!(email(raw).as_str(), raw);
        }
        // Mail to an internationalised domain goes to its ASCII form.
        assert_eq!(
            email("Ada@Bücher.Example").as_str(),
            "ada@xn--bcher-kva.example"
        );
    }

    #[test]
    fn the_password_policy_explains_each_refusal() {
        let ada = email("ada@example.com");
        let refused = |raw: &str| {
            NewPassword::parse(raw, &ada, "password")
                .unwrap_err()
                .message
        };
        assert_eq!(
            refused("short"),
            "must be at least 12 characters long (it has 5)"
        );
        assert!(refused(&"x".repeat(129)).contains("at most 128"));
        assert_eq!(
            refused("aaaaaaaaaaaaaaa"),
            "must not be one character repeated"
        );
        assert!(refused("Password1234").contains("most common"));
        let grace = email("grace.hopper@example.com");
        let message = NewPassword::parse("my name is grace.hopper!", &grace, "password")
            .unwrap_err()
            .message;
        assert_eq!(message, "must not contain your email address");
    }

    #[test]
    fn a_good_password_is_accepted_and_never_printed() {
        let ada = email("ada.lovelace@example.com");
        let password =
            NewPassword::parse("correct horse battery staple", &ada, "password").unwrap();
        assert_eq!(password.expose(), "correct horse battery staple");
        assert_eq!(format!("{password:?}"), "NewPassword([REDACTED])");
        // A short email name is too common a substring to forbid.
        assert!(
            NewPassword::parse("ada-lovelace-1815", &email("ada@example.com"), "password").is_ok()
        );
        assert!(NewPassword::parse("ADA.LOVELACE rules 1815", &ada, "password").is_err());
    }

    #[test]
    fn display_names_are_trimmed_and_bounded() {
        assert_eq!(DisplayName::parse("  Ada  ").unwrap().as_str(), "Ada");
        assert!(DisplayName::parse(" ").is_err());
        assert!(DisplayName::parse(&"x".repeat(101)).is_err());
        assert!(DisplayName::parse("Ada\u{7}").is_err());
        assert_eq!(
            DisplayName::from_email(&email("grace@example.com")).as_str(),
            "grace"
        );
    }
}
