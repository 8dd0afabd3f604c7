//! TLS for the connection, by `sslmode`.
