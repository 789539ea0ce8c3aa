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

impl ZohoConfig {
    /// The origins of the accounts servers, space-separated, for the CSP's `form-action`
    /// (connecting is a form post redirected to Zoho, then on to the user's data centre).
    pub fn form_targets(&self) -> String {
        let mut origins: Vec<String> = std::iter::once(self.accounts_start.as_str())
            .chain(
                self.data_centres
                    .iter()
                    .map(|dc| dc.accounts_server.as_str()),
            )
            .filter_map(origin)
            .collect();
        origins.sort();
        origins.dedup();
        origins.join(" ")
    }
}

/// `https://accounts.zoho.eu` of `https://accounts.zoho.eu/some/path`.
fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split('/').next()?;
    (!host.is_empty()).then(|| format!("{scheme}://{host}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_targets_are_the_accounts_origins() {
        let config = ZohoConfig {
            client_id: "x".into(),
            client_secret: "y".to_owned().into(),
            redirect_url: "http://localhost/cb".into(),
            accounts_start: "https://accounts.zoho.com".into(),
            data_centres: zoho_data_centres(),
        };
        let targets = config.form_targets();
        assert!(targets.contains("https://accounts.zoho.eu"));
        assert!(targets.contains("https://accounts.zohocloud.ca"));
        assert_eq!(
            targets
                .split(' ')
                .filter(|o| *o == "https://accounts.zoho.com")
                .count(),
            1,
            "the start server once"
        );
        let local = ZohoConfig {
            data_centres: local_data_centres("http://127.0.0.1:3000/fake-zoho"),
            accounts_start: "http://127.0.0.1:3000/fake-zoho/accounts/us".into(),
            ..config
        };
        assert_eq!(local.form_targets(), "http://127.0.0.1:3000");
    }
}
