//! A request's query (`?q=bob&sort=until`), read strictly: a parameter the
//! page does not take, one given twice, or one that does not decode is a
//! mistake the page answers with `400`, never a guess.

use super::html::decode;

/// The parameters of a query, decoded, in order; empty values left out.
#[derive(Debug, Default)]
pub struct Query(Vec<(String, String)>);

impl Query {
    /// Reads `raw` (without its `?`), taking only the parameters `allowed`.
    pub fn parse(raw: &str, allowed: &[&str]) -> Result<Query, String> {
        let mut params: Vec<(String, String)> = Vec::new();
        for pair in raw.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name =
                decode(name, true).ok_or_else(|| "the query is not well encoded".to_string())?;
            let value = decode(value, true).ok_or_else(|| {
                format!("the value of `{name}` is not well encoded (percent-escapes of UTF-8)")
            })?;
            if !allowed.contains(&name.as_str()) {
                return Err(if allowed.is_empty() {
                    format!("this page takes no query parameter, and was given `{name}`")
                } else {
                    format!(
                        "unknown query parameter `{name}`; this page takes {}",
                        allowed
                            .iter()
                            .map(|a| format!("`{a}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                });
            }
            if params.iter().any(|(n, _)| *n == name) {
                return Err(format!("query parameter `{name}` is given twice"));
            }
            let value = value.trim().to_string();
            if !value.is_empty() {
                params.push((name, value));
            }
        }
        Ok(Query(params))
    }

    /// The value of `name`, when given and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `name` as a whole number from 1, when given.
    pub fn number(&self, name: &str) -> Result<Option<usize>, String> {
        match self.get(name) {
            None => Ok(None),
            Some(text) => match text.parse::<usize>() {
                Ok(n) if n >= 1 && text.bytes().all(|b| b.is_ascii_digit()) => Ok(Some(n)),
                _ => Err(format!(
                    "`{name}` must be a whole number from 1, not `{}`",
                    crate::diag::escape_control(text)
                )),
            },
        }
    }
}
