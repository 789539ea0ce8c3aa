//! Answering the local Zoho's consent page as a browser would (shared by the tests and the
//! sync benchmark).

/// The consent form of `html`: where it posts, and its fields with `decision` pressed.
pub fn consent_form(html: &str, decision: &str) -> (String, Vec<(String, String)>) {
    let action = regex::Regex::new(r#"<form method="post" action="([^"]+)">"#)
        .unwrap()
        .captures(html)
        .expect("the consent form")[1]
        .to_owned();
    let inputs =
        regex::Regex::new(r#"<input type="hidden" name="(\w+)" value="([^"]*)">"#).unwrap();
    let mut fields: Vec<(String, String)> = inputs
        .captures_iter(html)
        .map(|c| (c[1].to_owned(), c[2].replace("&amp;", "&")))
        .collect();
    fields.push(("decision".to_owned(), decision.to_owned()));
    (action, fields)
}
