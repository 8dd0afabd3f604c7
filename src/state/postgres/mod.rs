//! The state in a PostgreSQL database: shared state for teams.

pub mod conninfo;
pub mod tls;
