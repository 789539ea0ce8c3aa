//! What the voice agent is told about one call: the job metadata Duecall attaches to the agent
//! dispatch (LiveKit hands it to the worker registered under the agent name as the job's
//! `metadata` string, JSON-encoded).
//!
//! It carries everything the conversation needs (who calls, about which invoice, what to say
//! first) and everything the agent needs to report back (the reminder and attempt ids, where
//! to post call-status events, which events are expected, and the secret that signs them). That
//! secret is the attempt's own: it signs reports about this call only, so a job payload that
//! leaks cannot touch any other call, reminder or organization.
//!
//! The struct is plain serde so agent builders in Rust (and the WASM build) can share it. It is
//! personal data (a name, a phone number, a debt): never log it whole.

use serde::{Deserialize, Serialize};

/// The job metadata of one call attempt, as the agent receives it.
///
/// ```json
/// {"reminder_id": 42, "attempt_id": 7, "attempt_no": 1, "org_id": 3,
///  "business_name": "Acme Supplies", "caller_identity": "Acme Supplies accounts team",
///  "opening": "Hello, this is an automated assistant calling for Acme Supplies…",
///  "language": "en", "customer_name": "Jane Smith", "invoice_number": "INV-1042",
///  "amount": "£1,234.50", "balance_minor": 123450, "currency": "GBP",
///  "due_date": "2026-02-01", "payment_link": "https://pay.example/acme",
///  "script": "…", "phone_e164": "+442079460001",
///  "callback_url": "https://duecall.example/api/webhooks/call-status?attempt=7",
///  "signing_secret": "whsec_…",
///  "events": ["call_answered", "call_completed", "call_failed"]}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentMetadata {
    pub reminder_id: i64,
    /// The attempt this job belongs to; echo it in every report.
    pub attempt_id: i64,
    /// 1 for the first call about this reminder, 2 for the first retry, ...
    pub attempt_no: i64,
    pub org_id: i64,
    pub business_name: String,
    pub caller_identity: String,
    /// Said first, word for word: the business identity, that the caller is an AI, that the
    /// call is recorded, and how to opt out of further calls.
    pub opening: String,
    /// The language to speak (BCP 47, e.g. "en", "en-GB", "hi").
    pub language: String,
    pub customer_name: String,
    pub invoice_number: String,
    /// The balance, formatted for speech and display (e.g. "£1,234.50").
    pub amount: String,
    /// The balance in the currency's minor units, for exact handling.
    pub balance_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// YYYY-MM-DD.
    pub due_date: String,
    pub payment_link: String,
    /// The business's script with its placeholders filled.
    pub script: String,
    /// The number dialled, E.164.
    pub phone_e164: String,
    /// Where to post call-status events about this call (it names the attempt).
    pub callback_url: String,
    /// The Standard Webhooks secret (`whsec_…`) that signs reports about this call, and
    /// nothing else: it cannot touch any other call, reminder or organization.
    pub signing_secret: String,
    /// The call-status event types the agent must post, by their wire names.
    pub events: Vec<String>,
}

#[cfg(feature = "ssr")]
impl AgentMetadata {
    /// The metadata for a call about to be placed; `callback_url` is Duecall's call-status
    /// endpoint.
    pub fn new(
        call: &crate::reminders::dispatch::CallRequest,
        callback_url: &str,
        signing_secret: &str,
    ) -> Self {
        use crate::calls::report::EventType;
        let context = &call.context;
        Self {
            reminder_id: call.reminder_id,
            attempt_id: call.attempt_id,
            attempt_no: call.attempt_no,
            org_id: call.org_id,
            business_name: context.business_name.clone(),
            caller_identity: context.caller_identity.clone(),
            opening: context.opening.clone(),
            language: context.language.clone(),
            customer_name: context.customer_name.clone(),
            invoice_number: context.invoice_number.clone(),
            amount: context.amount.clone(),
            balance_minor: context.balance_minor,
            currency: context.currency.clone(),
            due_date: context.due_date.clone(),
            payment_link: context.payment_link.clone(),
            script: context.script.clone(),
            phone_e164: call.phone_e164.clone(),
            callback_url: callback_url.to_owned(),
            signing_secret: signing_secret.to_owned(),
            events: [
                EventType::CallAnswered,
                EventType::CallCompleted,
                EventType::CallFailed,
            ]
            .into_iter()
            .map(|event| event.as_str().to_owned())
            .collect(),
        }
    }
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::reminders::dispatch::{CallContext, CallRequest};

    fn call() -> CallRequest {
        CallRequest {
            org_id: 3,
            reminder_id: 42,
            attempt_id: 7,
            attempt_no: 2,
            phone_e164: "+442079460001".into(),
            context: CallContext {
                business_name: "Acme Supplies".into(),
                caller_identity: "Acme Supplies accounts team".into(),
                opening: "Hello, this is an AI assistant calling for Acme Supplies. \
                          This call is recorded. Say stop at any time to opt out."
                    .into(),
                language: "en-GB".into(),
                customer_name: "Jane Smith".into(),
                invoice_number: "INV-1042".into(),
                amount: "£1,234.50".into(),
                balance_minor: 123_450,
                currency: "GBP".into(),
                due_date: "2026-02-01".into(),
                payment_link: "https://pay.example/acme".into(),
                script: "Remind Jane Smith about INV-1042.".into(),
            },
        }
    }

    #[test]
    fn the_json_shape_is_the_agents_contract() {
        let metadata = AgentMetadata::new(
            &call(),
            "https://duecall.example/api/webhooks/call-status?attempt=7",
            "whsec_c2VjcmV0",
        );
        let value = serde_json::to_value(&metadata).unwrap();
        assert_eq!(
            value,
            json!({
                "reminder_id": 42,
                "attempt_id": 7,
                "attempt_no": 2,
                "org_id": 3,
                "business_name": "Acme Supplies",
                "caller_identity": "Acme Supplies accounts team",
                "opening": "Hello, this is an AI assistant calling for Acme Supplies. \
                            This call is recorded. Say stop at any time to opt out.",
                "language": "en-GB",
                "customer_name": "Jane Smith",
                "invoice_number": "INV-1042",
                "amount": "£1,234.50",
                "balance_minor": 123450,
                "currency": "GBP",
                "due_date": "2026-02-01",
                "payment_link": "https://pay.example/acme",
                "script": "Remind Jane Smith about INV-1042.",
                "phone_e164": "+442079460001",
                "callback_url": "https://duecall.example/api/webhooks/call-status?attempt=7",
                "signing_secret": "whsec_c2VjcmV0",
                "events": ["call_answered", "call_completed", "call_failed"],
            })
        );
        let back: AgentMetadata = serde_json::from_value(value).unwrap();
        assert_eq!(back, metadata);
    }
}
