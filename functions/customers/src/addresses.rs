//! The customer's own record and saved addresses: `PATCH /v1/me`, `GET/POST /v1/me/addresses`,
//! `PATCH/DELETE /v1/me/addresses/{id}`. Addresses are checked as a checkout checks a shipping
//! address (`shop_domain::checkout::Address::parse`); glue over `shop_edge::store::addresses`.

use serde::Deserialize;
use shop_domain::checkout::{Address, AddressInput};
use shop_domain::customers::accounts::DisplayName;
use shop_domain::kernel::ids::AddressId;
use shop_edge::http::refusals::customers as refusals;
use shop_edge::http::runtime::CryptoIds;
use shop_edge::store::addresses::{self as store, SaveOutcome};
use shop_edge::{Call, Problem, Reply};

use crate::me::customer;
use crate::Endpoint;

/// Address fields as sent; on `PATCH`, absent fields keep their value.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AddressBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    line1: Option<String>,
    #[serde(default)]
    line2: Option<String>,
    #[serde(default)]
    city: Option<String>,
    #[serde(default)]
    postal_code: Option<String>,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    country: Option<String>,
    #[serde(default)]
    phone: Option<String>,
    /// Make it the default shipping address.
    #[serde(default)]
    default: Option<bool>,
}

impl AddressBody {
    /// The address these fields make over `base` (an existing address, or nothing), checked.
    fn address(self, base: Option<Address>) -> Result<Address, Problem> {
        let base = base.map_or_else(AddressInput::default, AddressInput::from);
        let input = AddressInput {
            name: self.name.unwrap_or(base.name),
            line1: self.line1.unwrap_or(base.line1),
            line2: self.line2.or(base.line2),
            city: self.city.unwrap_or(base.city),
            postal_code: self.postal_code.unwrap_or(base.postal_code),
            region: self.region.or(base.region),
            country: self.country.unwrap_or(base.country),
            phone: self.phone.or(base.phone),
        };
        let mut issues = Vec::new();
        Address::parse(input, "", &mut issues).ok_or_else(|| Problem::invalid_inputs(issues))
    }
}

fn address_not_found() -> Problem {
    Problem::not_found("address_not_found", "No such address of this customer")
}

fn address_id(call: &Call<Endpoint>) -> Result<AddressId, Problem> {
    call.path_param(0, AddressId::parse, address_not_found)
}

/// `GET /v1/me/addresses`.
pub async fn list(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let id = customer(call)?;
    let db = call.db()?;
    let data = store::list(&db, &id).await?;
    Ok(Reply::json(200, &serde_json::json!({ "data": data }))?
        .header("Cache-Control", "private, no-store"))
}

/// `POST /v1/me/addresses`: 201 with the saved address; the first becomes the default.
pub async fn create(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let customer = customer(call)?;
    let mut body: AddressBody = call.json()?;
    let default = body.default.take().unwrap_or(false);
    let address = body.address(None)?;
    let id = AddressId::mint(&CryptoIds);
    let db = call.db()?;
    match store::insert(&db, &customer, &id, &address, default, call.now).await? {
        SaveOutcome::TooMany => Err(refusals::too_many_addresses()),
        SaveOutcome::NotFound => Err(address_not_found()),
        SaveOutcome::Saved => {
            let saved = store::get(&db, &customer, &id)
                .await?
                .ok_or_else(address_not_found)?;
            Ok(Reply::json(201, &saved)?.header("Location", format!("/v1/me/addresses/{id}")))
        }
    }
}

/// `PATCH /v1/me/addresses/{id}`: the fields sent replace theirs; `default: true` makes it the
/// default.
pub async fn update(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let customer = customer(call)?;
    let id = address_id(call)?;
    let mut body: AddressBody = call.json()?;
    let default = body.default.take().unwrap_or(false);
    let db = call.db()?;
    let current = store::get(&db, &customer, &id)
        .await?
        .ok_or_else(address_not_found)?;
    let address = body.address(Some(current.address))?;
    match store::update(&db, &customer, &id, &address, default, call.now).await? {
        SaveOutcome::Saved => {
            let saved = store::get(&db, &customer, &id)
                .await?
                .ok_or_else(address_not_found)?;
            Ok(Reply::json(200, &saved)?)
        }
        SaveOutcome::NotFound | SaveOutcome::TooMany => Err(address_not_found()),
    }
}

/// `DELETE /v1/me/addresses/{id}`: 204; the oldest remaining address becomes the default when
/// the default goes.
pub async fn delete(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let customer = customer(call)?;
    let id = address_id(call)?;
    let db = call.db()?;
    match store::delete(&db, &customer, &id).await? {
        SaveOutcome::Saved => Ok(Reply::empty(204)),
        SaveOutcome::NotFound | SaveOutcome::TooMany => Err(address_not_found()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MeBody {
    /// Absent: unchanged; `null` or empty: cleared.
    #[serde(default, deserialize_with = "present")]
    name: Option<Option<String>>,
}

/// A member that is present, `null` included (so `null` and absent differ).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// `PATCH /v1/me` `{name}`: the customer's name (`null` or empty clears it; absent keeps it).
pub async fn patch_me(call: &Call<Endpoint>) -> Result<Reply, Problem> {
    let customer = customer(call)?;
    let body: MeBody = call.json()?;
    let Some(name) = body.name else {
        return crate::me::me(call).await;
    };
    let name = DisplayName::parse(name.as_deref())
        .map_err(|issue| Problem::invalid_field("/name", "invalid_name", issue.message()))?;
    let db = call.db()?;
    store::set_name(
        &db,
        &customer,
        name.as_ref().map(DisplayName::as_str),
        call.now,
    )
    .await?;
    crate::me::me(call).await
}
