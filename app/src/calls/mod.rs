//! Calls: what the voice agent reports about each call (the call-status report), what Duecall
//! does with it (the reminder's transition and the outcome's follow-up), and the pages that
//! show calls as they happen.

pub mod agent;
#[cfg(feature = "ssr")]
pub mod apply;
#[cfg(feature = "ssr")]
pub mod report;
#[cfg(feature = "ssr")]
pub mod live;
#[cfg(feature = "ssr")]
pub mod queries;
pub mod views;
pub mod api;
pub mod pages;
