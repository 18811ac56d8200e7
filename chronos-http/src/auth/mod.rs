//! Authentication: [`password`] hashing (argon2id), [`token`]s (HS256 JWT), the
//! [`middleware`] that authenticates and rate-limits requests, and the email rules.
//!
//! What a `401` means is only ever "not authenticated": `UNAUTHORIZED` (no or an
//! ill-formed `Authorization` header), `INVALID_TOKEN`, `TOKEN_EXPIRED`,
//! `TOKEN_REVOKED`, and at login `INVALID_CREDENTIALS`. Tokens, passwords and hashes
//! are never logged.

pub mod middleware;
pub mod password;
pub mod token;

use email_address::{EmailAddress, Options};

pub use middleware::Session;
pub use password::Passwords;
pub use token::{Claims, Tokens};

/// The longest email address stored (the column is `varchar(255)`; RFC 5321 allows 254).
pub const MAX_EMAIL_CHARS: usize = 254;

/// An email address as the API takes it: trimmed and lower-cased, then checked
/// (`local@domain.tld`, no display name, no IP literal, at most 254 characters).
/// Returns the normalized address, or why it is refused.
pub fn validate_email(email: &str) -> Result<String, &'static str> {
    let email = crate::ports::normalize_email(email);
    if email.is_empty() {
        return Err("is required");
    }
    if email.chars().count() > MAX_EMAIL_CHARS {
        return Err("must be at most 254 characters long");
    }
    let options = Options::default()
        .with_required_tld()
        .without_domain_literal()
        .without_display_text();
    EmailAddress::parse_with_options(&email, options)
        .map(|_| email)
        .map_err(|_| "must be a valid email address")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalized_and_checked() {
        assert_eq!(
            validate_email("  Alice@Example.COM "),
            Ok("alice@example.com".to_owned())
        );
        assert_eq!(
            validate_email("a.b+tag@sub.example.co.uk"),
            Ok("a.b+tag@sub.example.co.uk".to_owned())
        );
        for bad in [
            "",
            "   ",
            "plain",
            "a@b",
            "@example.com",
            "a@",
            "Alice <a@example.com>",
            "a@[127.0.0.1]",
            "a b@example.com",
        ] {
            assert!(validate_email(bad).is_err(), "{bad}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(validate_email(&long).is_err());
    }
}
