//! HTTP plumbing around the app: health probes and the security layers every response passes.

pub mod body_limit;
pub mod health;
pub mod security;
pub mod server_fn_status;
