//! TEMPORARY STUB (replaced by the i19-conn branch before commit).
use std::str::FromStr;

pub fn is_url(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}
pub fn redact(url: &str) -> String {
    url.to_owned()
}
pub fn without_password(url: &str) -> String {
    url.to_owned()
}
pub struct ConnInfo(postgres::Config);
pub struct ConnectError(postgres::Error);
impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}
impl ConnectError {
    pub fn hint(&self) -> Option<String> {
        None
    }
}
impl ConnInfo {
    pub fn resolve(url: &str, _env: &dyn Fn(&str) -> Option<String>) -> Result<ConnInfo, String> {
        postgres::Config::from_str(url)
            .map(ConnInfo)
            .map_err(|e| e.to_string())
    }
    pub fn connect(&self) -> Result<postgres::Client, ConnectError> {
        self.0.connect(postgres::NoTls).map_err(ConnectError)
    }
}
