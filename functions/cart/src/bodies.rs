//! The request bodies of the cart routes, as received.

use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateCart {
    pub(crate) currency: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddItem {
    pub(crate) sku: String,
    pub(crate) quantity: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetQuantity {
    pub(crate) quantity: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChooseShipping {
    pub(crate) country: String,
    #[serde(default)]
    pub(crate) postal_code: String,
    pub(crate) method: String,
}
