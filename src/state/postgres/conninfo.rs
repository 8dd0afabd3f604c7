//! How to reach the server: the URL, libpq's environment and password file.
