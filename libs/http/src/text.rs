//! What no text a service accepts may hold: control characters.
//!
//! A NUL byte is refused by PostgreSQL (a value stored in MongoDB by one service would break
//! every service that copies it into PostgreSQL), and the other control characters corrupt
//! logs, mail headers and terminals. Every request is held to this at the edge, by the
//! extractors of [`crate::extract`]: no string in a JSON body, path parameter or query
//! parameter may contain a control character other than a line break or a tab (U+0009,
//! U+000A, U+000D), which a free text such as a description may hold. Fields that are one line
//! (names, SKUs, emails) refuse those too, with [`single_line`].

use crate::problem::FieldError;

/// The first control character in `text` (`char::is_control`: U+0000 to U+001F, U+007F to
/// U+009F), line breaks and tabs included.
pub fn control_character(text: &str) -> Option<char> {
    text.chars().find(|c| c.is_control())
}

/// The first control character in `text` that a free text may not hold: any but U+0009,
/// U+000A and U+000D.
pub fn forbidden_control_character(text: &str) -> Option<char> {
    text.chars().find(|&c| is_forbidden(c))
}

fn is_forbidden(c: char) -> bool {
    c.is_control() && !matches!(c, '\t' | '\n' | '\r')
}

/// The message of a field that holds control character `c`.
pub fn control_character_message(c: char) -> String {
    format!(
        "must not contain control characters (found U+{:04X})",
        u32::from(c)
    )
}

/// Refuses a one-line field (a name) with any control character, line breaks included.
pub fn single_line(field: &str, text: &str) -> Result<(), FieldError> {
    match control_character(text) {
        Some(c) => Err(FieldError::new(field, control_character_message(c))),
        None => Ok(()),
    }
}

/// `text` with each control character replaced by U+FFFD, for a one-line value another service
/// stored (before it refused them, or written around its API) that this one copies: a NUL in
/// a product name must not make every order for the product fail.
pub fn without_control_characters(text: &str) -> std::borrow::Cow<'_, str> {
    if control_character(text).is_none() {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(
        text.chars()
            .map(|c| if c.is_control() { '\u{fffd}' } else { c })
            .collect(),
    )
}

/// Whether a JSON document (as sent, escapes and all) holds a string with a control character
/// a free text may not hold. Cheap enough to run on every body: control characters can only
/// be in a JSON string as escapes (`\u0000`, `\b`, `\f`), or raw as DEL (U+007F) and the C1
/// controls (U+0080 to U+009F, two bytes in UTF-8); everything else is a syntax error.
pub(crate) fn json_has_forbidden_control(document: &[u8]) -> bool {
    let mut bytes = document.iter().copied().enumerate();
    while let Some((at, byte)) = bytes.next() {
        match byte {
            0x7f => return true,
            0xc2 if document
                .get(at + 1)
                .is_some_and(|next| (0x80..=0x9f).contains(next)) =>
            {
                return true;
            }
            b'\\' => match bytes.next() {
                Some((_, b'b' | b'f')) => return true,
                Some((start, b'u')) => {
                    let code = document
                        .get(start + 1..start + 5)
                        .and_then(|hex| std::str::from_utf8(hex).ok())
                        .and_then(|hex| u32::from_str_radix(hex, 16).ok());
                    if code.and_then(char::from_u32).is_some_and(is_forbidden) {
                        return true;
                    }
                }
                // `\\`, `\"`, `\n`...: the escaped character is consumed, so `\\u0000` is a
                // backslash followed by text, not an escape.
                _ => {}
            },
            _ => {}
        }
    }
    false
}

/// The first string (or object key) in `value` with a forbidden control character, as a field
/// error named by its path (`items[1].name`, as serde names fields).
pub(crate) fn forbidden_control_in_json(value: &serde_json::Value) -> Option<FieldError> {
    fn walk(value: &serde_json::Value, path: &str) -> Option<FieldError> {
        match value {
            serde_json::Value::String(text) => forbidden_control_character(text)
                .map(|c| FieldError::new(path, control_character_message(c))),
            serde_json::Value::Array(items) => items
                .iter()
                .enumerate()
                .find_map(|(index, item)| walk(item, &format!("{path}[{index}]"))),
            serde_json::Value::Object(fields) => fields.iter().find_map(|(key, item)| {
                let field = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                if let Some(c) = forbidden_control_character(key) {
                    let name = if path.is_empty() { "(a key)" } else { path };
                    return Some(FieldError::new(
                        name,
                        format!("keys {}", control_character_message(c)),
                    ));
                }
                walk(item, &field)
            }),
            _ => None,
        }
    }
    walk(value, "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_and_raw_controls_are_found_and_line_breaks_are_not() {
        for bad in [
            r#"{"name":"a\u0000b"}"#,
            r#"{"name":"\u001B[31m"}"#,
            r#"{"name":"bell\u0007"}"#,
            r#"{"name":"back\b"}"#,
            r#"{"name":"feed\f"}"#,
            "{\"name\":\"del\u{7f}\"}",
            "{\"name\":\"next line\u{85}\"}",
            r#"{"name":"\u009f"}"#,
            r#"{"\u0000":1}"#,
        ] {
            assert!(json_has_forbidden_control(bad.as_bytes()), "{bad}");
        }
        for good in [
            r#"{"description":"two\nlines\r\n\tindented"}"#,
            r#"{"name":"a backslash then text: \\u0000"}"#,
            r#"{"name":"caf\u00e9 é ü"}"#,
            r#"{"name":"\u00a0 no-break space"}"#,
        ] {
            assert!(!json_has_forbidden_control(good.as_bytes()), "{good}");
        }
    }

    #[test]
    fn the_field_holding_the_control_is_named_by_its_path() {
        let value = serde_json::json!({"items": [{"sku": "A"}, {"sku": "B\u{0}"}]});
        let error = forbidden_control_in_json(&value).unwrap();
        assert_eq!(error.field, "items[1].sku");
        assert_eq!(
            error.message,
            "must not contain control characters (found U+0000)"
        );
    }

    #[test]
    fn copied_values_lose_their_controls() {
        assert_eq!(
            without_control_characters("Mug\u{0}\n"),
            "Mug\u{fffd}\u{fffd}"
        );
        assert!(matches!(
            without_control_characters("Mug"),
            std::borrow::Cow::Borrowed("Mug")
        ));
    }

    #[test]
    fn one_line_fields_refuse_line_breaks_too() {
        assert!(single_line("name", "Blue\nMug").is_err());
        assert!(single_line("name", "Blue Mug").is_ok());
    }
}
