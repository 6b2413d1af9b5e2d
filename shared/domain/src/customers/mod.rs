//! Customers: accounts and their credentials (`accounts`), membership points and tiers
//! (`membership`), product reviews (`reviews`).

pub mod accounts;
pub mod membership;
pub mod reviews;
