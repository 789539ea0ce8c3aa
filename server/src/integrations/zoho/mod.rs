//! Zoho Books: data centres, Zoho Accounts (OAuth), the Books API client and its JSON.

pub mod api;
pub mod config;
pub mod oauth;
pub mod wire;
