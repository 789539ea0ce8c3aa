//! Where a debtor is, as far as the calling window cares: their time zone, from the customer's
//! own zone or their billing address. A country with one zone gives it; in a few large
//! countries the state or province does; otherwise every zone of the country is possible and a
//! call must suit all of them. Without a country nothing is known and nobody is called.

use chrono_tz::Tz;

use super::country_zones::COUNTRY_ZONES;

/// The time zones a debtor may be in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DebtorZone {
    /// Exactly one zone.
    Known(Tz),
    /// The address names a country (and perhaps a region) spanning several zones: a call must
    /// fall inside the window in each of them.
    AnyOf { place: String, zones: Vec<Tz> },
}

impl DebtorZone {
    pub fn zones(&self) -> &[Tz] {
        match self {
            Self::Known(tz) => std::slice::from_ref(tz),
            Self::AnyOf { zones, .. } => zones,
        }
    }

    /// How the zone was found, for the reasons shown next to a reminder.
    pub fn describe(&self) -> String {
        match self {
            Self::Known(tz) => tz.name().to_owned(),
            Self::AnyOf { place, zones } => format!(
                "one of {} time zones of {place} (called only when the window is open in all)",
                zones.len()
            ),
        }
    }
}

/// Why a debtor's time zone is unknown (they are not called).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZoneError {
    #[error("the customer's time zone {0:?} is not a known IANA time zone")]
    InvalidZone(String),
    #[error("the billing address has no country, so the customer's local time is unknown")]
    NoCountry,
    #[error("the billing country {0:?} is not a known country code")]
    UnknownCountry(String),
}

/// The debtor's zone: the customer's explicit zone wins; then the region (state, province) in
/// the countries where it decides; then the country.
pub fn debtor_zone(explicit: &str, country: &str, region: &str) -> Result<DebtorZone, ZoneError> {
    let explicit = explicit.trim();
    if !explicit.is_empty() {
        return explicit
            .parse::<Tz>()
            .map(DebtorZone::Known)
            .map_err(|_| ZoneError::InvalidZone(explicit.to_owned()));
    }
    let country = country.trim().to_ascii_uppercase();
    if country.is_empty() {
        return Err(ZoneError::NoCountry);
    }
    let (names, place) = match region_zones(&country, region) {
        Some(names) => (names, format!("{}, {country}", region.trim())),
        None => (
            country_zones(&country).ok_or_else(|| ZoneError::UnknownCountry(country.clone()))?,
            country.clone(),
        ),
    };
    let zones: Vec<Tz> = names.iter().filter_map(|n| n.parse().ok()).collect();
    match zones.as_slice() {
        [] => Err(ZoneError::UnknownCountry(country)),
        [one] => Ok(DebtorZone::Known(*one)),
        _ => Ok(DebtorZone::AnyOf { place, zones }),
    }
}

/// Every zone of a country (ISO 3166-1 alpha-2, upper case).
pub fn country_zones(country: &str) -> Option<&'static [&'static str]> {
    COUNTRY_ZONES
        .binary_search_by(|(code, _)| (*code).cmp(country))
        .ok()
        .map(|at| COUNTRY_ZONES[at].1)
}

/// The zones of a state or province (by code or name) where the country's zones differ by
/// region: the United States, Canada and Australia. States split between zones list each.
pub fn region_zones(country: &str, region: &str) -> Option<&'static [&'static str]> {
    let table: &[(&str, &str, &[&str])] = match country {
        "US" => US_STATES,
        "CA" => CA_PROVINCES,
        "AU" => AU_STATES,
        _ => return None,
    };
    let region = region.trim();
    if region.is_empty() {
        return None;
    }
    table
        .iter()
        .find(|(code, name, _)| {
            code.eq_ignore_ascii_case(region) || name.eq_ignore_ascii_case(region)
        })
        .map(|(_, _, zones)| *zones)
}

const EASTERN: &str = "America/New_York";
const CENTRAL: &str = "America/Chicago";
const MOUNTAIN: &str = "America/Denver";
const PACIFIC: &str = "America/Los_Angeles";

const US_STATES: &[(&str, &str, &[&str])] = &[
    ("AL", "Alabama", &[CENTRAL]),
    ("AK", "Alaska", &["America/Anchorage", "America/Adak"]),
    ("AZ", "Arizona", &["America/Phoenix", MOUNTAIN]),
    ("AR", "Arkansas", &[CENTRAL]),
    ("CA", "California", &[PACIFIC]),
    ("CO", "Colorado", &[MOUNTAIN]),
    ("CT", "Connecticut", &[EASTERN]),
    ("DE", "Delaware", &[EASTERN]),
    ("DC", "District of Columbia", &[EASTERN]),
    ("FL", "Florida", &[EASTERN, CENTRAL]),
    ("GA", "Georgia", &[EASTERN]),
    ("HI", "Hawaii", &["Pacific/Honolulu"]),
    ("ID", "Idaho", &["America/Boise", PACIFIC]),
    ("IL", "Illinois", &[CENTRAL]),
    ("IN", "Indiana", &["America/Indiana/Indianapolis", CENTRAL]),
    ("IA", "Iowa", &[CENTRAL]),
    ("KS", "Kansas", &[CENTRAL, MOUNTAIN]),
    ("KY", "Kentucky", &[EASTERN, CENTRAL]),
    ("LA", "Louisiana", &[CENTRAL]),
    ("ME", "Maine", &[EASTERN]),
    ("MD", "Maryland", &[EASTERN]),
    ("MA", "Massachusetts", &[EASTERN]),
    ("MI", "Michigan", &["America/Detroit", "America/Menominee"]),
    ("MN", "Minnesota", &[CENTRAL]),
    ("MS", "Mississippi", &[CENTRAL]),
    ("MO", "Missouri", &[CENTRAL]),
    ("MT", "Montana", &[MOUNTAIN]),
    ("NE", "Nebraska", &[CENTRAL, MOUNTAIN]),
    ("NV", "Nevada", &[PACIFIC, MOUNTAIN]),
    ("NH", "New Hampshire", &[EASTERN]),
    ("NJ", "New Jersey", &[EASTERN]),
    ("NM", "New Mexico", &[MOUNTAIN]),
    ("NY", "New York", &[EASTERN]),
    ("NC", "North Carolina", &[EASTERN]),
    ("ND", "North Dakota", &[CENTRAL, MOUNTAIN]),
    ("OH", "Ohio", &[EASTERN]),
    ("OK", "Oklahoma", &[CENTRAL]),
    ("OR", "Oregon", &[PACIFIC, "America/Boise"]),
    ("PA", "Pennsylvania", &[EASTERN]),
    ("RI", "Rhode Island", &[EASTERN]),
    ("SC", "South Carolina", &[EASTERN]),
    ("SD", "South Dakota", &[CENTRAL, MOUNTAIN]),
    ("TN", "Tennessee", &[CENTRAL, EASTERN]),
    ("TX", "Texas", &[CENTRAL, MOUNTAIN]),
    ("UT", "Utah", &[MOUNTAIN]),
    ("VT", "Vermont", &[EASTERN]),
    ("VA", "Virginia", &[EASTERN]),
    ("WA", "Washington", &[PACIFIC]),
    ("WV", "West Virginia", &[EASTERN]),
    ("WI", "Wisconsin", &[CENTRAL]),
    ("WY", "Wyoming", &[MOUNTAIN]),
];

const CA_PROVINCES: &[(&str, &str, &[&str])] = &[
    ("AB", "Alberta", &["America/Edmonton"]),
    (
        "BC",
        "British Columbia",
        &["America/Vancouver", "America/Edmonton"],
    ),
    ("MB", "Manitoba", &["America/Winnipeg"]),
    ("NB", "New Brunswick", &["America/Moncton"]),
    (
        "NL",
        "Newfoundland and Labrador",
        &["America/St_Johns", "America/Goose_Bay"],
    ),
    ("NS", "Nova Scotia", &["America/Halifax"]),
    ("NT", "Northwest Territories", &["America/Edmonton"]),
    (
        "NU",
        "Nunavut",
        &["America/Iqaluit", "America/Winnipeg", "America/Edmonton"],
    ),
    ("ON", "Ontario", &["America/Toronto", "America/Winnipeg"]),
    ("PE", "Prince Edward Island", &["America/Halifax"]),
    ("QC", "Quebec", &["America/Toronto", "America/Blanc-Sablon"]),
    ("SK", "Saskatchewan", &["America/Regina"]),
    ("YT", "Yukon", &["America/Whitehorse"]),
];

const AU_STATES: &[(&str, &str, &[&str])] = &[
    ("ACT", "Australian Capital Territory", &["Australia/Sydney"]),
    (
        "NSW",
        "New South Wales",
        &["Australia/Sydney", "Australia/Broken_Hill"],
    ),
    ("NT", "Northern Territory", &["Australia/Darwin"]),
    ("QLD", "Queensland", &["Australia/Brisbane"]),
    ("SA", "South Australia", &["Australia/Adelaide"]),
    ("TAS", "Tasmania", &["Australia/Hobart"]),
    ("VIC", "Victoria", &["Australia/Melbourne"]),
    ("WA", "Western Australia", &["Australia/Perth"]),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_zone_in_the_tables_is_known() {
        for (country, zones) in COUNTRY_ZONES {
            for zone in *zones {
                assert!(zone.parse::<Tz>().is_ok(), "{country}: {zone}");
            }
        }
        for table in [US_STATES, CA_PROVINCES, AU_STATES] {
            for (code, _, zones) in table {
                for zone in *zones {
                    assert!(zone.parse::<Tz>().is_ok(), "{code}: {zone}");
                }
            }
        }
        assert!(
            COUNTRY_ZONES.windows(2).all(|w| w[0].0 < w[1].0),
            "sorted for binary search"
        );
    }

    #[test]
    fn the_explicit_zone_wins_then_region_then_country() {
        let zone = |tz: &str, country: &str, region: &str| debtor_zone(tz, country, region);
        assert_eq!(
            zone("Asia/Tokyo", "GB", ""),
            Ok(DebtorZone::Known(Tz::Asia__Tokyo))
        );
        assert_eq!(
            zone("", "gb", ""),
            Ok(DebtorZone::Known(Tz::Europe__London))
        );
        assert_eq!(zone("", "IN", ""), Ok(DebtorZone::Known(Tz::Asia__Kolkata)));
        assert_eq!(
            zone("", "US", "California"),
            Ok(DebtorZone::Known(Tz::America__Los_Angeles))
        );
        assert_eq!(
            zone("", "US", "ny"),
            Ok(DebtorZone::Known(Tz::America__New_York))
        );
        // A split state: both of its zones.
        match zone("", "US", "TX") {
            Ok(DebtorZone::AnyOf { place, zones }) => {
                assert_eq!(place, "TX, US");
                assert_eq!(zones, [Tz::America__Chicago, Tz::America__Denver]);
            }
            other => panic!("{other:?}"),
        }
        // No state: every zone of the country.
        match zone("", "US", "") {
            Ok(DebtorZone::AnyOf { place, zones }) => {
                assert_eq!(place, "US");
                assert!(zones.contains(&Tz::Pacific__Honolulu) && zones.len() > 10);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_places_fail_closed() {
        assert_eq!(debtor_zone("", "", "Texas"), Err(ZoneError::NoCountry));
        assert_eq!(
            debtor_zone("", "XX", ""),
            Err(ZoneError::UnknownCountry("XX".into()))
        );
        assert_eq!(
            debtor_zone("Mars/Olympus", "US", "CA"),
            Err(ZoneError::InvalidZone("Mars/Olympus".into()))
        );
    }
}
