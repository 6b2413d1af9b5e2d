//! Orders after checkout: the order and its status machine (`order`), expiry, cancel and capture
//! (`lifecycle`), refunds and shipments.

pub mod lifecycle;
pub mod order;
pub mod parcels;
pub mod refunds;
pub mod shipments;
pub mod status;
