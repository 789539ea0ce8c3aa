//! Account types shared by the browser and the server, with the validation both apply.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What a member may do in an organization, from least to most powerful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything, changes nothing.
    Viewer,
    /// Works the receivables: imports, reminders, calls.
    Member,
    /// Also manages members and organization settings.
    Admin,
    /// Also manages owners; every organization keeps at least one.
    Owner,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Owner, Role::Admin, Role::Member, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Member => "member",
            Self::Admin => "admin",
            Self::Owner => "owner",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Viewer => "Viewer",
            Self::Member => "Member",
            Self::Admin => "Admin",
            Self::Owner => "Owner",
        }
    }

    pub fn parse(value: &str) -> Result<Self, &'static str> {
        match value {
            "viewer" => Ok(Self::Viewer),
            "member" => Ok(Self::Member),
            "admin" => Ok(Self::Admin),
            "owner" => Ok(Self::Owner),
            _ => Err("Choose owner, admin, member or viewer."),
        }
    }

    /// Anything that changes the organization's data.
    pub fn can_write(self) -> bool {
        self >= Self::Member
    }

    /// Membership and organization settings.
    pub fn can_administer(self) -> bool {
        self >= Self::Admin
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A normalized email address: trimmed and lower-cased.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let email = raw.trim().to_lowercase();
        if email.is_empty() {
            return Err("Enter your email address.");
        }
        if email.len() > 254 {
            return Err("That email address is too long.");
        }
        let Some((local, domain)) = email.split_once('@') else {
            return Err("Enter a valid email address, like name@example.com.");
        };
        let valid = !local.is_empty()
            && local.len() <= 64
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains('@')
            && !email.chars().any(|c| c.is_whitespace() || c.is_control());
        if valid {
            Ok(Self(email))
        } else {
            Err("Enter a valid email address, like name@example.com.")
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub const PASSWORD_MIN_CHARS: usize = 10;
/// Bounds the work one sign-in can cause; argon2 hashes every byte.
pub const PASSWORD_MAX_CHARS: usize = 128;

/// Checks a new password's length. Any characters are allowed.
pub fn validate_new_password(password: &str) -> Result<(), &'static str> {
    let chars = password.chars().count();
    if chars < PASSWORD_MIN_CHARS {
        Err("Use at least 10 characters.")
    } else if chars > PASSWORD_MAX_CHARS {
        Err("Use at most 128 characters.")
    } else {
        Ok(())
    }
}

/// A trimmed single-line name (a person's or an organization's) of 1 to 80 characters.
pub fn parse_name(raw: &str, what: &'static str) -> Result<String, String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(format!("Enter {what}."));
    }
    if name.chars().count() > 80 {
        return Err("Use at most 80 characters.".to_owned());
    }
    if name.chars().any(char::is_control) {
        return Err("Use letters, numbers and punctuation only.".to_owned());
    }
    Ok(name.to_owned())
}

/// Number formats an organization can choose: BCP 47 locale and how it looks.
pub const LOCALES: [(&str, &str); 8] = [
    ("en-GB", "English (UK) — £1,234.56"),
    ("en-US", "English (US) — $1,234.56"),
    ("en-IN", "English (India) — ₹12,34,567.89"),
    ("de-DE", "Deutsch — 1.234,56 €"),
    ("fr-FR", "Français — 1 234,56 €"),
    ("es-ES", "Español — 1.234,56 €"),
    ("nl-NL", "Nederlands — 1.234,56 €"),
    ("sv-SE", "Svenska — 1 234,56 kr"),
];

/// The signed-in person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentUser {
    pub id: i64,
    pub email: String,
    pub display_name: String,
}

/// An organization the signed-in person belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgSummary {
    pub id: i64,
    pub name: String,
    pub role: Role,
}

/// The organization being worked on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveOrg {
    pub id: i64,
    pub name: String,
    pub timezone: String,
    pub default_currency: String,
    /// BCP 47 locale for numbers and money, e.g. en-GB.
    pub locale: String,
    pub is_demo: bool,
    pub role: Role,
}

/// Everything the app shell needs about who is signed in and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionView {
    pub user: CurrentUser,
    pub org: ActiveOrg,
    pub orgs: Vec<OrgSummary>,
}

/// One member of the active organization, as listed on the settings page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberView {
    pub user_id: i64,
    pub display_name: String,
    pub email: String,
    pub role: Role,
    /// Joined date, ISO 8601 (YYYY-MM-DD) in the organization's time zone.
    pub joined_on: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_by_power() {
        assert!(
            Role::Owner > Role::Admin && Role::Admin > Role::Member && Role::Member > Role::Viewer
        );
        assert!(!Role::Viewer.can_write());
        assert!(Role::Member.can_write() && !Role::Member.can_administer());
        assert!(Role::Admin.can_administer());
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Ok(role));
        }
        assert!(Role::parse("root").is_err());
    }

    #[test]
    fn emails_are_normalized_and_checked() {
        assert_eq!(
            Email::parse("  Ana@Example.COM ").unwrap().as_str(),
            "ana@example.com"
        );
        for bad in [
            "",
            "ana",
            "ana@",
            "@example.com",
            "ana@example",
            "a na@example.com",
            "ana@.com",
            "a@b@c.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(Email::parse(&format!("{}@example.com", "a".repeat(250))).is_err());
    }

    #[test]
    fn passwords_have_bounds() {
        assert!(validate_new_password("short").is_err());
        assert!(validate_new_password("long enough!").is_ok());
        assert!(validate_new_password(&"x".repeat(129)).is_err());
        // Characters, not bytes.
        assert!(validate_new_password("ééééééééé").is_err());
        assert!(validate_new_password("éééééééééé").is_ok());
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(parse_name("  Acme Ltd ", "a name").unwrap(), "Acme Ltd");
        assert!(parse_name("   ", "a name").is_err());
        assert!(parse_name(&"x".repeat(81), "a name").is_err());
        assert!(parse_name("a\u{0}b", "a name").is_err());
        assert_eq!(
            parse_name("Robert'); DROP TABLE users;--", "a name").unwrap(),
            "Robert'); DROP TABLE users;--"
        );
    }
}
