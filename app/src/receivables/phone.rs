//! Phone numbers: every stored number is parsed to E.164 with libphonenumber's rules (the
//! `phonenumber` crate), using the customer's billing country as the default region for
//! numbers written without a country code. The raw text is kept; unusable numbers carry the
//! reason. This is the one place that decides which number to call.

use std::collections::HashMap;

use phonenumber::country::Id as Region;
use phonenumber::{Mode, PhoneNumber};

use super::model::PhoneStatus;

/// One stored number: what was written, and what it means.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParsedPhone {
    pub raw: String,
    /// Normalized `+<country><number>`, when usable.
    pub e164: String,
    /// Why the number cannot be used (empty when it can, or when there is none).
    pub error: String,
}

impl ParsedPhone {
    pub fn is_present(&self) -> bool {
        !self.raw.trim().is_empty()
    }

    pub fn is_valid(&self) -> bool {
        !self.e164.is_empty()
    }
}

/// The region for an ISO 3166-1 alpha-2 country code, if it is one.
pub fn region(country: &str) -> Option<Region> {
    country.trim().to_ascii_uppercase().parse().ok()
}

/// Parses `raw` as written by a person, with `default_country` for national numbers.
pub fn parse(raw: &str, default_country: &str) -> ParsedPhone {
    let raw = raw.trim().to_owned();
    if raw.is_empty() {
        return ParsedPhone::default();
    }
    let result = parse_number(&raw, region(default_country));
    match result {
        Ok(number) => ParsedPhone {
            e164: number.format().mode(Mode::E164).to_string(),
            raw,
            error: String::new(),
        },
        Err(error) => ParsedPhone {
            raw,
            e164: String::new(),
            error,
        },
    }
}

fn parse_number(raw: &str, region: Option<Region>) -> Result<PhoneNumber, String> {
    if raw.chars().filter(char::is_ascii_digit).count() < 5 {
        return Err("too few digits".into());
    }
    let international = raw.starts_with('+') || raw.starts_with("00");
    if !international && region.is_none() {
        return Err("no country code and no billing country to infer it from".into());
    }
    let number =
        phonenumber::parse(region, raw).map_err(|err| format!("not a phone number ({err})"))?;
    if !phonenumber::is_valid(&number) {
        return Err("not a valid number for its country".into());
    }
    Ok(number)
}

/// Parses many numbers at once. libphonenumber's rules are regular expressions compiled on
/// demand into a small shared cache; parsing country by country keeps each country's
/// expressions warm instead of recompiling them for every number (a 50× difference for a
/// mixed-country import).
pub fn parse_many<'a>(
    numbers: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> HashMap<(String, String), ParsedPhone> {
    let mut unique: Vec<(&str, &str)> = numbers
        .into_iter()
        .filter(|(raw, _)| !raw.trim().is_empty())
        .map(|(raw, country)| (country, raw))
        .collect();
    unique.sort_unstable();
    unique.dedup();
    unique
        .into_iter()
        .map(|(country, raw)| ((raw.to_owned(), country.to_owned()), parse(raw, country)))
        .collect()
}

/// The numbers of one contact person, in the order the source lists them.
#[derive(Debug, Clone, Default)]
pub struct ContactNumbers {
    pub name: String,
    pub is_primary: bool,
    pub mobile: ParsedPhone,
    pub phone: ParsedPhone,
}

/// The number to call for a customer, and why it was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BestPhone {
    pub e164: String,
    pub reason: String,
    pub status: PhoneStatus,
}

/// Picks the primary contact's mobile, then their phone, then the other contacts' mobiles
/// and phones in order. Without a usable number, says why.
pub fn best_number(contacts: &[ContactNumbers]) -> BestPhone {
    let primary = contacts.iter().filter(|c| c.is_primary);
    let others = contacts.iter().filter(|c| !c.is_primary);
    for contact in primary.chain(others) {
        let who = if contact.name.trim().is_empty() {
            if contact.is_primary {
                "primary contact".to_owned()
            } else {
                "another contact".to_owned()
            }
        } else if contact.is_primary {
            format!("primary contact {}", contact.name.trim())
        } else {
            contact.name.trim().to_owned()
        };
        for (kind, number) in [("mobile", &contact.mobile), ("phone", &contact.phone)] {
            if number.is_valid() {
                return BestPhone {
                    e164: number.e164.clone(),
                    reason: format!("{who}'s {kind}"),
                    status: PhoneStatus::Valid,
                };
            }
        }
    }
    let invalid: Vec<String> = contacts
        .iter()
        .flat_map(|c| [&c.mobile, &c.phone])
        .filter(|n| n.is_present())
        .map(|n| format!("{}: {}", n.raw, n.error))
        .collect();
    if invalid.is_empty() {
        BestPhone {
            e164: String::new(),
            reason: "no phone number on file".into(),
            status: PhoneStatus::Missing,
        }
    } else {
        BestPhone {
            e164: String::new(),
            reason: format!("no usable number ({})", invalid.join("; ")),
            status: PhoneStatus::Invalid,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn national_numbers_use_the_billing_country() {
        assert_eq!(parse("020 7946 0018", "GB").e164, "+442079460018");
        assert_eq!(parse("(415) 555-2671", "us").e164, "+14155552671");
        assert_eq!(
            parse("+49 30 901820", "GB").e164,
            "+4930901820",
            "an explicit country code wins"
        );
        assert_eq!(
            parse("0044 20 7946 0018", "US").e164,
            "",
            "00 is not the US exit code"
        );
        assert_eq!(parse("98765 43210", "IN").e164, "+919876543210");
    }

    #[test]
    fn unusable_numbers_say_why() {
        let missing_country = parse("020 7946 0018", "");
        assert!(
            missing_country.e164.is_empty() && missing_country.error.contains("no country code")
        );
        assert!(parse("12", "GB").error.contains("too few digits"));
        assert!(
            parse("call me maybe", "GB")
                .error
                .contains("too few digits")
        );
        assert!(
            parse("+44 20 1234", "GB")
                .error
                .contains("not a valid number")
        );
        assert_eq!(parse("  ", "GB"), ParsedPhone::default());
        assert_eq!(parse(" 020 7946 0018 ", "GB").raw, "020 7946 0018");
    }

    fn contact(name: &str, primary: bool, mobile: &str, phone: &str) -> ContactNumbers {
        ContactNumbers {
            name: name.into(),
            is_primary: primary,
            mobile: parse(mobile, "GB"),
            phone: parse(phone, "GB"),
        }
    }

    #[test]
    fn the_primary_contacts_mobile_comes_first() {
        let contacts = [
            contact("Ann", false, "07911 123456", ""),
            contact("Bob", true, "", "020 7946 0018"),
        ];
        let best = best_number(&contacts);
        assert_eq!(best.e164, "+442079460018");
        assert_eq!(best.reason, "primary contact Bob's phone");

        let contacts = [contact("Bob", true, "07911 123456", "020 7946 0018")];
        assert_eq!(
            best_number(&contacts).reason,
            "primary contact Bob's mobile"
        );

        let contacts = [
            contact("Bob", true, "bad", ""),
            contact("Ann", false, "", "07911 123456"),
        ];
        let best = best_number(&contacts);
        assert_eq!(
            (best.e164.as_str(), best.reason.as_str()),
            ("+447911123456", "Ann's phone")
        );
    }

    #[test]
    fn batch_parsing_matches_one_by_one() {
        let numbers = [
            ("07911 123456", "GB"),
            ("(415) 555-2671", "US"),
            ("07911 123456", "GB"),
            ("bad", "DE"),
            ("", "GB"),
        ];
        let parsed = parse_many(numbers);
        assert_eq!(parsed.len(), 3, "duplicates and blanks are skipped");
        for (raw, country) in numbers.into_iter().filter(|(raw, _)| !raw.is_empty()) {
            assert_eq!(
                parsed[&(raw.to_owned(), country.to_owned())],
                parse(raw, country)
            );
        }
    }

    #[test]
    fn no_usable_number_is_explained() {
        assert_eq!(best_number(&[]).status, PhoneStatus::Missing);
        let best = best_number(&[contact("Bob", true, "12", "")]);
        assert_eq!(best.status, PhoneStatus::Invalid);
        assert!(
            best.reason.contains("12: too few digits"),
            "{}",
            best.reason
        );
    }
}
