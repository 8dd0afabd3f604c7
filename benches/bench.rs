//! The benchmark (work in progress): see README "Performance".
fn main() {}
