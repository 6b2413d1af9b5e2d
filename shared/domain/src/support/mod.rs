//! Customer support: the help desk's tickets.

pub mod tickets;
