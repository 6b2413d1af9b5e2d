//! Orders after checkout: the order (`order`), its status machine (`status`), the words of its
//! parcels (`parcels`), expiry, cancel and capture (`lifecycle`), refunds and shipments.

pub mod lifecycle;
pub mod order;
pub mod parcels;
pub mod refunds;
pub mod shipments;
pub mod status;
