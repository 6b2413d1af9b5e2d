//! Who and where: an email address, a postal address, the plain-text rule every person's text is
//! held to, and the one shape of a field's problem. Words every context shares (checkout,
//! accounts, tickets, reviews, inventory, refunds), so none of them imports another for them.

use serde::{Deserialize, Serialize};

/// An email address: trimmed, at most 254 characters, one `@` with a dotted domain. (Deliverability
/// is the mail system's business; this only refuses what cannot be an address.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let (local, domain) = text.split_once('@')?;
        let ok = text.len() <= 254
            && !local.is_empty()
            && local.len() <= 64
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains('@')
            && !text.chars().any(char::is_whitespace)
            && !has_unsafe_characters(text);
        ok.then(|| Email(format!("{local}@{}", domain.to_ascii_lowercase())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The one key an address is stored and found by: the whole address in Unicode lowercase,
    /// computed here and bound as a parameter (never by SQLite's ASCII-only `lower()`), so
    /// `Émile@example.com` and `émile@example.com` are one account.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

impl TryFrom<String> for Email {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Email::parse(&value).ok_or_else(|| "not an email address".to_owned())
    }
}

impl From<Email> for String {
    fn from(e: Email) -> String {
        e.0
    }
}

/// A postal address. Fields are trimmed; `country` is an ISO 3166-1 alpha-2 code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    pub name: String,
    pub line1: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line2: Option<String>,
    pub city: String,
    pub postal_code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub country: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

/// One invalid field: its path below the checked object (e.g. `shipping_address/postal_code`)
/// and a stable code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldIssue {
    pub path: String,
    pub code: &'static str,
    pub message: String,
}

impl FieldIssue {
    pub(crate) fn new(
        path: impl Into<String>,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        FieldIssue {
            path: path.into(),
            code,
            message: message.into(),
        }
    }
}

/// Address fields as received, before checking.
#[derive(Debug, Clone, Default)]
pub struct AddressInput {
    pub name: String,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub postal_code: String,
    pub region: Option<String>,
    pub country: String,
    pub phone: Option<String>,
}

/// An address as input again (to change some of its fields and check it anew).
impl From<Address> for AddressInput {
    fn from(a: Address) -> Self {
        AddressInput {
            name: a.name,
            line1: a.line1,
            line2: a.line2,
            city: a.city,
            postal_code: a.postal_code,
            region: a.region,
            country: a.country,
            phone: a.phone,
        }
    }
}

/// Characters no name or address line may hold: control characters (line breaks, NUL, escape
/// sequences), the Unicode line and paragraph separators, the byte-order mark, and the
/// bidirectional formatting characters that make text display in another
/// order than it is stored (overrides, embeddings, isolates and marks), which can disguise a
/// label, an invoice or a packing slip.
pub fn has_unsafe_characters(text: &str) -> bool {
    text.chars().any(|c| {
        c.is_control()
            || matches!(
                c,
                '\u{061C}'
                    | '\u{200E}'
                    | '\u{200F}'
                    | '\u{2028}'
                    | '\u{2029}'
                    | '\u{202A}'..='\u{202E}'
                    | '\u{2066}'..='\u{2069}'
                    | '\u{FEFF}'
            )
    })
}

fn unsafe_characters(path: String, field: &str) -> FieldIssue {
    FieldIssue::new(
        path,
        "invalid_characters",
        format!("{field} contains control or bidirectional formatting characters"),
    )
}

impl Address {
    pub fn parse(input: AddressInput, at: &str, issues: &mut Vec<FieldIssue>) -> Option<Address> {
        let before = issues.len();
        let mut required = |field: &str, value: String, max: usize| -> String {
            let value = value.trim().to_owned();
            if value.is_empty() || value.chars().count() > max {
                issues.push(FieldIssue::new(
                    format!("{at}/{field}"),
                    "invalid_value",
                    format!("{field} is required, at most {max} characters"),
                ));
            } else if has_unsafe_characters(&value) {
                issues.push(unsafe_characters(format!("{at}/{field}"), field));
            }
            value
        };
        let name = required("name", input.name, 200);
        let line1 = required("line1", input.line1, 200);
        let city = required("city", input.city, 100);
        let postal_code = required("postal_code", input.postal_code, 20);
        let country = input.country.trim().to_owned();
        if !(country.len() == 2 && country.bytes().all(|b| b.is_ascii_uppercase())) {
            issues.push(FieldIssue::new(
                format!("{at}/country"),
                "invalid_country",
                "country is an ISO 3166-1 alpha-2 code such as DE or US",
            ));
        }
        let mut optional = |field: &str, value: Option<String>, max: usize| -> Option<String> {
            let value = value
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())?;
            if value.chars().count() > max {
                issues.push(FieldIssue::new(
                    format!("{at}/{field}"),
                    "invalid_value",
                    format!("{field} has at most {max} characters"),
                ));
            } else if has_unsafe_characters(&value) {
                issues.push(unsafe_characters(format!("{at}/{field}"), field));
            }
            Some(value)
        };
        let line2 = optional("line2", input.line2, 200);
        let region = optional("region", input.region, 100);
        let phone = optional("phone", input.phone, 32);
        (issues.len() == before).then_some(Address {
            name,
            line1,
            line2,
            city,
            postal_code,
            region,
            country,
            phone,
        })
    }
}
