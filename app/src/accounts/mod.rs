//! Accounts and tenancy: people, organizations, roles and sessions.

pub mod api;
pub mod model;
pub mod pages;

#[cfg(feature = "ssr")]
pub mod password;
#[cfg(feature = "ssr")]
pub mod service;
#[cfg(feature = "ssr")]
pub mod session;
