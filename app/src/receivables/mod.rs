//! Receivables: customers, their contact persons and invoices.

pub mod api;
pub mod model;
pub mod pages;
pub mod views;

#[cfg(feature = "ssr")]
pub mod csv_import;
#[cfg(feature = "ssr")]
pub mod demo_books;
#[cfg(feature = "ssr")]
pub mod import;
#[cfg(feature = "ssr")]
pub mod phone;
#[cfg(feature = "ssr")]
pub mod queries;
#[cfg(feature = "ssr")]
pub mod upsert;
