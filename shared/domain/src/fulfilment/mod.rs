//! Getting parcels to people: shipping zones and rates (`shipping`), logistics partners'
//! tracking callbacks (`tracking`).

pub mod shipping;
pub mod tracking;
