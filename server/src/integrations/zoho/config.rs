//! Where Zoho is and who Duecall is to it.

use secrecy::SecretString;

/// One Zoho data centre: its `location` code, accounts server and API domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataCentre {
    pub location: String,
    pub accounts_server: String,
    pub api_domain: String,
}

impl DataCentre {
    fn new(location: &str, accounts_server: &str, api_domain: &str) -> Self {
        Self {
            location: location.to_owned(),
            accounts_server: accounts_server.to_owned(),
            api_domain: api_domain.to_owned(),
        }
    }
}

/// Zoho's data centres (the only accounts servers a callback may name).
pub fn zoho_data_centres() -> Vec<DataCentre> {
    vec![
        DataCentre::new(
            "us",
            "https://accounts.zoho.com",
            "https://www.zohoapis.com",
        ),
        DataCentre::new("eu", "https://accounts.zoho.eu", "https://www.zohoapis.eu"),
        DataCentre::new("in", "https://accounts.zoho.in", "https://www.zohoapis.in"),
        DataCentre::new(
            "au",
            "https://accounts.zoho.com.au",
            "https://www.zohoapis.com.au",
        ),
        DataCentre::new("jp", "https://accounts.zoho.jp", "https://www.zohoapis.jp"),
        DataCentre::new(
            "ca",
            "https://accounts.zohocloud.ca",
            "https://www.zohoapis.ca",
        ),
        DataCentre::new("sa", "https://accounts.zoho.sa", "https://www.zohoapis.sa"),
        DataCentre::new(
            "cn",
            "https://accounts.zoho.com.cn",
            "https://www.zohoapis.com.cn",
        ),
    ]
}

/// The same data centres served by the local Zoho under `base` (e.g.
/// `http://127.0.0.1:3000/fake-zoho`).
pub fn local_data_centres(base: &str) -> Vec<DataCentre> {
    let base = base.trim_end_matches('/');
    zoho_data_centres()
        .into_iter()
        .map(|dc| DataCentre {
            accounts_server: format!("{base}/accounts/{}", dc.location),
            api_domain: format!("{base}/api/{}", dc.location),
            location: dc.location,
        })
        .collect()
}

/// Duecall's registration with Zoho and the data centres it talks to.
#[derive(Debug, Clone)]
pub struct ZohoConfig {
    pub client_id: String,
    pub client_secret: SecretString,
    /// Where Zoho sends users back: `{public URL}/integrations/zoho/callback`.
    pub redirect_url: String,
    /// Where the authorize request starts (Zoho forwards users to their own data centre).
    pub accounts_start: String,
    pub data_centres: Vec<DataCentre>,
}
