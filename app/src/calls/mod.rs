//! Calls: what the voice agent reports about each call (the call-status report), what Duecall
//! does with it (the reminder's transition and the outcome's follow-up), and the pages that
//! show calls as they happen.

pub mod agent;
pub mod api;
#[cfg(feature = "ssr")]
pub mod apply;
#[cfg(feature = "ssr")]
pub mod live;
pub mod pages;
#[cfg(feature = "ssr")]
pub mod queries;
#[cfg(feature = "ssr")]
pub mod report;
pub mod views;
