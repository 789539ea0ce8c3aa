//! Reminders: the calling rules the engine enforces (where the debtor is, when they may be
//! called, how often), the business profile and a reminder's state machine, shared by the scheduler, the pre-call
//! check and the dry-run calendar.

pub mod api;
#[cfg(feature = "ssr")]
pub mod calendar;
#[cfg(feature = "ssr")]
mod country_zones;
#[cfg(feature = "ssr")]
pub mod dispatch;
#[cfg(feature = "ssr")]
pub mod generate;
#[cfg(feature = "ssr")]
pub mod machine;
pub mod pages;
pub mod profile;
#[cfg(feature = "ssr")]
pub mod queries;
#[cfg(feature = "ssr")]
pub mod rules;
#[cfg(feature = "ssr")]
pub mod service;
#[cfg(feature = "ssr")]
pub mod store;
#[cfg(feature = "ssr")]
pub mod verify;
pub mod views;
#[cfg(feature = "ssr")]
pub mod zones;
