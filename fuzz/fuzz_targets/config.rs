//! The TOML configuration: parsing, `${VAR}` expansion, validation and error reporting
//! with key paths and lines, and the `check` table of a config that passed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard::config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for env in [&|_: &str| None as Option<String>, &|name: &str| {
        Some(format!("v-{name}")) as Option<String>
    }] as [&dyn Fn(&str) -> Option<String>; 2]
    {
        match config::parse(text, env) {
            Ok(cfg) => {
                let _ = config::render_table(&cfg);
            }
            Err(errors) => {
                assert!(!errors.is_empty(), "failed without saying why");
                for e in errors.iter() {
                    let _ = e.to_string();
                }
            }
        }
    }
});
