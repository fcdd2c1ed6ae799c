//! The `switchyard` command line: parse arguments, set up logging, call the library.

fn main() {}
