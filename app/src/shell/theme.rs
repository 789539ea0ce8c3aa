//! Light, dark, or follow the system.
//!
//! The choice lives in a cookie so the server renders `<html data-theme=…>` correctly on the
//! very first byte: no flash of the wrong theme and no inline script. With JavaScript the
//! switch applies at once in the browser; without it, a form post sets the cookie.

use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

pub const COOKIE: &str = "duecall_theme";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Theme {
    Light,
    Dark,
    #[default]
    System,
}

impl Theme {
    pub const ALL: [Theme; 3] = [Theme::Light, Theme::Dark, Theme::System];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Light => "light",
            Self::Dark => "dark",
            Self::System => "system",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Light => "Light",
            Self::Dark => "Dark",
            Self::System => "System",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "light" => Some(Self::Light),
            "dark" => Some(Self::Dark),
            "system" => Some(Self::System),
            _ => None,
        }
    }

    /// The theme named in a `Cookie` header, if any.
    pub fn from_cookie_header(header: &str) -> Self {
        header
            .split(';')
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == COOKIE)
            .and_then(|(_, value)| Self::parse(value))
            .unwrap_or_default()
    }

    fn cookie(self) -> String {
        format!(
            "{COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax",
            self.as_str()
        )
    }
}

/// The theme of the page being rendered: the request's cookie on the server, the `<html>`
/// attribute in the browser.
pub fn current_theme() -> Theme {
    #[cfg(feature = "ssr")]
    {
        use_context::<http::request::Parts>()
            .and_then(|parts| {
                parts
                    .headers
                    .get(http::header::COOKIE)
                    .and_then(|v| v.to_str().ok())
                    .map(Theme::from_cookie_header)
            })
            .unwrap_or_default()
    }
    #[cfg(not(feature = "ssr"))]
    {
        document()
            .document_element()
            .and_then(|html| html.get_attribute("data-theme"))
            .and_then(|value| Theme::parse(&value))
            .unwrap_or_default()
    }
}

/// Applies a theme in the browser and remembers it.
#[cfg(feature = "hydrate")]
fn apply(theme: Theme) {
    use wasm_bindgen::JsCast;
    let document = document();
    if let Some(html) = document.document_element() {
        let _ = html.set_attribute("data-theme", theme.as_str());
    }
    if let Ok(html_document) = document.dyn_into::<web_sys::HtmlDocument>() {
        let _ = html_document.set_cookie(&theme.cookie());
    }
}

/// Remembers the theme for browsers without JavaScript and goes back to the page.
#[server(endpoint = "preferences/theme")]
pub async fn set_theme(theme: Theme) -> Result<(), AppError> {
    let response = expect_context::<leptos_axum::ResponseOptions>();
    let cookie = http::HeaderValue::from_str(&theme.cookie())
        .map_err(|err| AppError::internal("theme cookie", err))?;
    response.append_header(http::header::SET_COOKIE, cookie);
    let back = use_context::<http::request::Parts>()
        .and_then(|parts| {
            parts
                .headers
                .get(http::header::REFERER)?
                .to_str()
                .ok()
                .map(str::to_owned)
        })
        .and_then(|referer| {
            let after_scheme = referer
                .split_once("://")
                .map_or(referer.as_str(), |(_, rest)| rest);
            after_scheme.find('/').map(|i| after_scheme[i..].to_owned())
        });
    leptos_axum::redirect(&crate::server::safe_next(back.as_deref()));
    Ok(())
}

/// Three buttons: light, dark, system. A plain form without JavaScript.
#[component]
pub fn ThemeSwitcher() -> impl IntoView {
    let (theme, set_theme_signal) = signal(current_theme());
    view! {
        <form class="theme-switcher" method="post" action={<SetTheme as ServerFn>::PATH} aria-label="Theme">
            {Theme::ALL
                .into_iter()
                .map(|option| {
                    view! {
                        <button
                            type="submit"
                            name="theme"
                            value=option.as_str()
                            class="theme-option"
                            data-theme-option=option.as_str()
                            aria-pressed=move || (theme.get() == option).to_string()
                            title=format!("{} theme", option.label())
                            on:click=move |ev| {
                                ev.prevent_default();
                                #[cfg(feature = "hydrate")]
                                apply(option);
                                set_theme_signal.set(option);
                            }
                        >
                            {option.label()}
                        </button>
                    }
                })
                .collect_view()}
        </form>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_theme_cookie() {
        assert_eq!(
            Theme::from_cookie_header("a=1; duecall_theme=dark; b=2"),
            Theme::Dark
        );
        assert_eq!(
            Theme::from_cookie_header("duecall_theme=purple"),
            Theme::System
        );
        assert_eq!(Theme::from_cookie_header(""), Theme::System);
    }
}
