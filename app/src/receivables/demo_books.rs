//! Demo books: a believable set of customers and invoices for the demo organization and for
//! benchmarks. Deterministic for a given seed and day, so a demo looks the same every time.
//!
//! The mix: customers in ten countries and their time zones and currencies; invoices issued
//! over the last ~200 days on 14–60 day terms, so they spread across current and the 1–30,
//! 31–60, 61–90 and 90+ day buckets; about a third paid, some partially paid; most customers
//! reachable on a valid number, some with an unusable one, a few with none.

use chrono::{Duration, NaiveDate};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

use super::model::{Currency, InvoiceStatus};
use super::phone;
use super::upsert::{ContactRecord, CustomerRecord, InvoiceRecord};

/// The source name of generated records.
pub const SOURCE: &str = "demo";

struct Country {
    code: &'static str,
    currency: &'static str,
    timezones: &'static [&'static str],
    cities: &'static [&'static str],
    suffix: &'static str,
    /// National mobile and landline patterns; `#` is a random digit.
    mobile: &'static str,
    landline: &'static str,
}

const COUNTRIES: [Country; 10] = [
    Country {
        code: "GB",
        currency: "GBP",
        timezones: &["Europe/London"],
        cities: &["London", "Manchester", "Leeds", "Bristol"],
        suffix: "Ltd",
        mobile: "07911 1#####",
        landline: "020 7946 0###",
    },
    Country {
        code: "US",
        currency: "USD",
        timezones: &[
            "America/New_York",
            "America/Chicago",
            "America/Denver",
            "America/Los_Angeles",
        ],
        cities: &["New York", "Chicago", "Denver", "San Francisco"],
        suffix: "Inc",
        mobile: "(415) 555-2###",
        landline: "(212) 555-01##",
    },
    Country {
        code: "DE",
        currency: "EUR",
        timezones: &["Europe/Berlin"],
        cities: &["Berlin", "Hamburg", "Munich"],
        suffix: "GmbH",
        mobile: "0151 2345####",
        landline: "030 901820##",
    },
    Country {
        code: "FR",
        currency: "EUR",
        timezones: &["Europe/Paris"],
        cities: &["Paris", "Lyon", "Lille"],
        suffix: "SARL",
        mobile: "06 12 34 ## ##",
        landline: "01 42 68 ## ##",
    },
    Country {
        code: "IN",
        currency: "INR",
        timezones: &["Asia/Kolkata"],
        cities: &["Mumbai", "Bengaluru", "Pune"],
        suffix: "Pvt Ltd",
        mobile: "98765 4####",
        landline: "022 2345 ####",
    },
    Country {
        code: "AU",
        currency: "AUD",
        timezones: &["Australia/Sydney", "Australia/Perth"],
        cities: &["Sydney", "Melbourne", "Perth"],
        suffix: "Pty Ltd",
        mobile: "0412 345 ###",
        landline: "02 9374 4###",
    },
    Country {
        code: "CA",
        currency: "CAD",
        timezones: &["America/Toronto", "America/Vancouver"],
        cities: &["Toronto", "Vancouver", "Ottawa"],
        suffix: "Ltd",
        mobile: "(416) 555-0###",
        landline: "(604) 555-01##",
    },
    Country {
        code: "NL",
        currency: "EUR",
        timezones: &["Europe/Amsterdam"],
        cities: &["Amsterdam", "Rotterdam", "Utrecht"],
        suffix: "B.V.",
        mobile: "06 1234 ####",
        landline: "020 123 ####",
    },
    Country {
        code: "ES",
        currency: "EUR",
        timezones: &["Europe/Madrid"],
        cities: &["Madrid", "Barcelona", "Valencia"],
        suffix: "S.L.",
        mobile: "612 34 ## ##",
        landline: "91 123 ## ##",
    },
    Country {
        code: "IE",
        currency: "EUR",
        timezones: &["Europe/Dublin"],
        cities: &["Dublin", "Cork", "Galway"],
        suffix: "Ltd",
        mobile: "085 123 ####",
        landline: "01 234 ####",
    },
];

const FIRST: [&str; 24] = [
    "Olivia", "Liam", "Amelia", "Noah", "Priya", "Arjun", "Sofia", "Mateo", "Hannah", "Lukas",
    "Chloé", "Hugo", "Aoife", "Conor", "Emma", "Daan", "Lucía", "Pablo", "Grace", "Ethan",
    "Ananya", "Rohan", "Isla", "Jack",
];
const LAST: [&str; 24] = [
    "Smith", "Johnson", "Patel", "Müller", "Martin", "García", "Murphy", "de Vries", "Brown",
    "Singh", "Wilson", "Schmidt", "Dubois", "Kelly", "Taylor", "Jansen", "López", "Nair", "Clarke",
    "Fischer", "Moreau", "Walsh", "Evans", "Bakker",
];
const NAME_A: [&str; 20] = [
    "Northwind",
    "Bluebird",
    "Cedar",
    "Harbor",
    "Summit",
    "Riverside",
    "Granite",
    "Maple",
    "Silverline",
    "Oakridge",
    "Lighthouse",
    "Evergreen",
    "Copper",
    "Meadow",
    "Pinnacle",
    "Atlas",
    "Sterling",
    "Brightwater",
    "Kestrel",
    "Juniper",
];
const NAME_B: [&str; 16] = [
    "Traders",
    "Supplies",
    "Logistics",
    "Foods",
    "Builders",
    "Interiors",
    "Textiles",
    "Print",
    "Electrical",
    "Garden Centre",
    "Motors",
    "Pharmacy",
    "Studios",
    "Bakery",
    "Engineering",
    "Outfitters",
];

fn fill(pattern: &str, rng: &mut StdRng) -> String {
    pattern
        .chars()
        .map(|c| {
            if c == '#' {
                char::from(b'0' + rng.random_range(0..10u8))
            } else {
                c
            }
        })
        .collect()
}

/// A number from `pattern` that is valid in `country` (the patterns sit in allocated ranges,
/// so a few tries suffice); the last try if none was.
fn valid_number(pattern: &str, country: &str, rng: &mut StdRng) -> String {
    let mut candidate = fill(pattern, rng);
    for _ in 0..50 {
        if phone::parse(&candidate, country).is_valid() {
            break;
        }
        candidate = fill(pattern, rng);
    }
    candidate
}

/// Generates `customers` customers and about `invoices` invoices as of `today`.
pub fn generate(
    customers: usize,
    invoices: usize,
    today: NaiveDate,
    seed: u64,
) -> (Vec<CustomerRecord>, Vec<InvoiceRecord>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut customer_records = Vec::with_capacity(customers);
    let mut used_names = std::collections::HashSet::new();
    for i in 0..customers {
        let country = &COUNTRIES[if i % 3 == 0 {
            0
        } else {
            rng.random_range(0..COUNTRIES.len())
        }];
        let company = format!(
            "{} {} {}",
            NAME_A.choose(&mut rng).copied().unwrap_or("Acme"),
            NAME_B.choose(&mut rng).copied().unwrap_or("Traders"),
            country.suffix
        );
        // Names repeat in larger books: tell them apart by city, then by number.
        let city = country.cities.choose(&mut rng).copied().unwrap_or_default();
        let display_name = [
            company.clone(),
            format!("{company} ({city})"),
            format!("{company} #{}", i + 1),
        ]
        .into_iter()
        .find(|name| used_names.insert(name.clone()))
        .unwrap_or_else(|| format!("{company} #{}", i + 1));
        let first = FIRST.choose(&mut rng).copied().unwrap_or("Alex");
        let last = LAST.choose(&mut rng).copied().unwrap_or("Smith");
        let domain: String = company
            .to_lowercase()
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(20)
            .collect();
        let roll = rng.random_range(0..100);
        let (mobile, landline) = match roll {
            0..=59 => (
                valid_number(country.mobile, country.code, &mut rng),
                String::new(),
            ),
            60..=79 => (
                String::new(),
                valid_number(country.landline, country.code, &mut rng),
            ),
            80..=86 => (
                valid_number(country.mobile, country.code, &mut rng),
                valid_number(country.landline, country.code, &mut rng),
            ),
            87..=92 => (
                ["12345", "n/a", "000", "call office"]
                    .choose(&mut rng)
                    .copied()
                    .unwrap_or("n/a")
                    .to_owned(),
                String::new(),
            ),
            _ => (String::new(), String::new()),
        };
        let mut contacts = vec![ContactRecord {
            name: format!("{first} {last}"),
            email: format!(
                "{}.{}@{domain}.example",
                first.to_lowercase(),
                last.to_lowercase().replace(' ', "")
            ),
            phone: landline,
            mobile,
            is_primary: true,
        }];
        if rng.random_bool(0.25) {
            let first = FIRST.choose(&mut rng).copied().unwrap_or("Sam");
            contacts.push(ContactRecord {
                name: format!("{first} {last}"),
                email: format!("accounts@{domain}.example"),
                phone: valid_number(country.landline, country.code, &mut rng),
                mobile: String::new(),
                is_primary: false,
            });
        }
        customer_records.push(CustomerRecord {
            external_id: format!("DEMO-C{:05}", i + 1),
            display_name,
            company_name: company,
            email: format!("billing@{domain}.example"),
            currency: Currency::parse(country.currency)
                .expect("the country table holds ISO currency codes"),
            active: rng.random_bool(0.95),
            billing_street: format!(
                "{} {} Street",
                rng.random_range(1..200),
                LAST.choose(&mut rng).copied().unwrap_or("High")
            ),
            billing_city: country
                .cities
                .choose(&mut rng)
                .copied()
                .unwrap_or_default()
                .to_owned(),
            billing_state: String::new(),
            billing_postcode: format!("{:05}", rng.random_range(10000..99999)),
            billing_country: country.code.to_owned(),
            timezone: if rng.random_bool(0.9) {
                country
                    .timezones
                    .choose(&mut rng)
                    .copied()
                    .unwrap_or_default()
                    .to_owned()
            } else {
                String::new()
            },
            notes: String::new(),
            opted_out: rng.random_bool(0.03),
            contacts,
            source_updated_at: None,
        });
    }

    let mut invoice_records = Vec::with_capacity(invoices);
    for n in 0..invoices {
        let customer = &customer_records[if n < customers {
            n
        } else {
            rng.random_range(0..customers.max(1))
        }];
        let terms = [14, 30, 30, 30, 45, 60]
            .choose(&mut rng)
            .copied()
            .unwrap_or(30);
        let age = rng.random_range(0..220);
        let issue = today - Duration::days(age);
        let due = issue + Duration::days(terms);
        let days_overdue = (today - due).num_days();
        let scale = 10_i64.pow(customer.currency.minor_digits());
        let units = (rng.random_range(4.0_f64..10.2).exp()).round() as i64;
        let total = units * scale + rng.random_range(0..scale.max(1));
        let (status, balance) = if days_overdue <= 0 {
            if rng.random_bool(0.2) {
                (InvoiceStatus::Paid, 0)
            } else if rng.random_bool(0.03) {
                (InvoiceStatus::Draft, total)
            } else {
                (InvoiceStatus::Sent, total)
            }
        } else {
            // Older invoices are more likely to have been paid.
            let paid_chance = (0.25 + days_overdue as f64 / 400.0).min(0.7);
            if rng.random_bool(paid_chance) {
                (InvoiceStatus::Paid, 0)
            } else if rng.random_bool(0.2) {
                (
                    InvoiceStatus::PartiallyPaid,
                    total * rng.random_range(20..80) / 100,
                )
            } else if rng.random_bool(0.02) {
                (InvoiceStatus::Void, 0)
            } else {
                (InvoiceStatus::Overdue, total)
            }
        };
        invoice_records.push(InvoiceRecord {
            external_id: format!("DEMO-I{:06}", n + 1),
            customer_external_id: customer.external_id.clone(),
            number: format!("INV-{}-{:05}", issue.format("%Y"), n + 1),
            status,
            issue_date: issue.format("%Y-%m-%d").to_string(),
            due_date: due.format("%Y-%m-%d").to_string(),
            currency: customer.currency.clone(),
            total_minor: total,
            balance_minor: balance,
            payment_expected_date: if status.is_open() && rng.random_bool(0.08) {
                (today + Duration::days(rng.random_range(1..21)))
                    .format("%Y-%m-%d")
                    .to_string()
            } else {
                String::new()
            },
            source_updated_at: None,
        });
    }
    (customer_records, invoice_records)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::receivables::model::{AgingBucket, PhoneStatus};

    #[test]
    fn the_demo_has_a_believable_mix() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 21).unwrap();
        let (customers, invoices) = generate(200, 1_000, today, 7);
        assert_eq!((customers.len(), invoices.len()), (200, 1_000));
        let countries: HashSet<_> = customers
            .iter()
            .map(|c| c.billing_country.as_str())
            .collect();
        assert!(countries.len() >= 8, "{countries:?}");
        let zones: HashSet<_> = customers.iter().map(|c| c.timezone.as_str()).collect();
        assert!(zones.len() >= 10);

        let numbers: Vec<_> = customers
            .iter()
            .map(|c| {
                let contacts: Vec<_> = c
                    .contacts
                    .iter()
                    .map(|k| phone::ContactNumbers {
                        name: k.name.clone(),
                        is_primary: k.is_primary,
                        mobile: phone::parse(&k.mobile, &c.billing_country),
                        phone: phone::parse(&k.phone, &c.billing_country),
                    })
                    .collect();
                phone::best_number(&contacts).status
            })
            .collect();
        let valid = numbers.iter().filter(|s| **s == PhoneStatus::Valid).count();
        assert!((150..=190).contains(&valid), "{valid} valid numbers");
        assert!(numbers.contains(&PhoneStatus::Invalid));
        assert!(numbers.contains(&PhoneStatus::Missing));

        let mut buckets = std::collections::HashMap::new();
        for invoice in invoices.iter().filter(|i| i.status.is_open()) {
            let due = NaiveDate::parse_from_str(&invoice.due_date, "%Y-%m-%d").unwrap();
            *buckets
                .entry(AgingBucket::from_days_overdue((today - due).num_days()))
                .or_insert(0) += 1;
        }
        for bucket in AgingBucket::ALL {
            assert!(
                buckets.get(&bucket).copied().unwrap_or(0) >= 30,
                "{bucket:?}: {buckets:?}"
            );
        }
        let paid = invoices
            .iter()
            .filter(|i| i.status == InvoiceStatus::Paid)
            .count();
        let partial = invoices
            .iter()
            .filter(|i| i.status == InvoiceStatus::PartiallyPaid)
            .count();
        assert!((200..=550).contains(&paid), "{paid} paid");
        assert!(partial >= 30, "{partial} partially paid");
        assert!(invoices.iter().all(|i| i.balance_minor >= 0
            && i.balance_minor <= i.total_minor
            && i.due_date >= i.issue_date));
    }

    #[test]
    fn the_same_seed_gives_the_same_books() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 21).unwrap();
        assert_eq!(generate(20, 50, today, 1), generate(20, 50, today, 1));
    }
}
