//! Identifiers. Each is a newtype with a private field: the only ways to get one are parsing
//! untrusted text or minting from an injected [`IdSource`].

use std::fmt;

use serde::{Deserialize, Serialize};

/// Randomness is injected: production passes a CSPRNG-backed source, tests a counter.
pub trait IdSource {
    /// 128 unpredictable bits (in production; tests may be predictable).
    fn next_u128(&self) -> u128;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidId {
    pub kind: &'static str,
}

impl fmt::Display for InvalidId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not a valid {} id", self.kind)
    }
}

impl std::error::Error for InvalidId {}

/// `as_str`, `TryFrom<String>` (through `parse`), `Into<String>` and `Display` for an id
/// newtype over `String`.
macro_rules! text_id_conversions {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                $name::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

/// Ids minted by us: `<prefix>_<32 lowercase hex digits>`; the 128 random bits make guest
/// resources (carts) unguessable capabilities.
macro_rules! random_id {
    ($name:ident, $prefix:literal, $kind:literal) => {
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn mint(ids: &dyn IdSource) -> Self {
                $name(format!(concat!($prefix, "_{:032x}"), ids.next_u128()))
            }

            pub fn parse(text: &str) -> Result<Self, InvalidId> {
                let hex = text
                    .strip_prefix(concat!($prefix, "_"))
                    .ok_or(InvalidId { kind: $kind })?;
                if hex.len() == 32
                    && hex
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                {
                    Ok($name(text.to_owned()))
                } else {
                    Err(InvalidId { kind: $kind })
                }
            }
        }

        text_id_conversions!($name);
    };
}

random_id!(CartId, "cart", "cart");
random_id!(LineId, "line", "cart line");
random_id!(OrderId, "ord", "order");
random_id!(EventId, "evt", "event");
random_id!(RefundId, "rfd", "refund");
random_id!(ShipmentId, "shp", "shipment");
random_id!(TicketId, "tkt", "ticket");
random_id!(CustomerId, "cus", "customer");
random_id!(AddressId, "adr", "address");
random_id!(ReviewId, "rev", "review");

/// A product id from the catalog: `prod_` followed by 1–64 of `[a-z0-9-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProductId(String);

impl ProductId {
    /// A product id for a product made through the admin API: `prod_` and 32 hex digits.
    pub fn mint(ids: &dyn IdSource) -> Self {
        ProductId(format!("prod_{:032x}", ids.next_u128()))
    }

    pub fn parse(text: &str) -> Result<Self, InvalidId> {
        let rest = text
            .strip_prefix("prod_")
            .ok_or(InvalidId { kind: "product" })?;
        if (1..=64).contains(&rest.len())
            && rest
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            Ok(ProductId(text.to_owned()))
        } else {
            Err(InvalidId { kind: "product" })
        }
    }
}

text_id_conversions!(ProductId);

/// A category id: `cat_` followed by 1–64 of `[a-z0-9-]` (minted: 32 hex digits; migrated
/// categories: their old handle).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CategoryId(String);

impl CategoryId {
    pub fn mint(ids: &dyn IdSource) -> Self {
        CategoryId(format!("cat_{:032x}", ids.next_u128()))
    }

    pub fn parse(text: &str) -> Result<Self, InvalidId> {
        let rest = text
            .strip_prefix("cat_")
            .ok_or(InvalidId { kind: "category" })?;
        if (1..=64).contains(&rest.len())
            && rest
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            Ok(CategoryId(text.to_owned()))
        } else {
            Err(InvalidId { kind: "category" })
        }
    }
}

text_id_conversions!(CategoryId);

/// A stock keeping unit: 1–64 of `[A-Z0-9-]`, starting with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sku(String);

impl Sku {
    pub fn parse(text: &str) -> Result<Self, InvalidId> {
        let ok = (1..=64).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
            && !text.starts_with('-');
        if ok {
            Ok(Sku(text.to_owned()))
        } else {
            Err(InvalidId { kind: "SKU" })
        }
    }
}

text_id_conversions!(Sku);

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(u128);
    impl IdSource for Fixed {
        fn next_u128(&self) -> u128 {
            self.0
        }
    }

    #[test]
    fn minted_ids_parse_back() {
        let id = CartId::mint(&Fixed(0xabc));
        assert_eq!(id.as_str(), "cart_00000000000000000000000000000abc");
        assert_eq!(CartId::parse(id.as_str()), Ok(id));
    }

    #[test]
    fn rejects_malformed_ids() {
        for bad in [
            "",
            "cart_",
            "cart_xyz",
            "line_00000000000000000000000000000abc",
            "cart_00000000000000000000000000000ABC",
            "cart_00000000000000000000000000000abc0",
        ] {
            assert!(CartId::parse(bad).is_err(), "{bad}");
        }
        assert!(Sku::parse("TEE-BLK-M").is_ok());
        for bad in ["", "-A", "tee", "A B", &"A".repeat(65)] {
            assert!(Sku::parse(bad).is_err(), "{bad}");
        }
        assert!(ProductId::parse("prod_classic-tee").is_ok());
        assert!(ProductId::parse("prod_").is_err());
        assert!(ProductId::parse("prod_Tee").is_err());
    }
}
