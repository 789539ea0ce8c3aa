//! Connections to accounting systems (Zoho Books first): OAuth, encrypted tokens, sync.

#[cfg(feature = "ssr")]
pub mod crypto;
