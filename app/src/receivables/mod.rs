//! Receivables: customers, their contact persons and invoices.

pub mod model;

#[cfg(feature = "ssr")]
pub mod phone;
