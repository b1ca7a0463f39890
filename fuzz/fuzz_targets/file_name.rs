//! Fuzz target: the file-name parser; never panics, and parse ∘ format is the identity on what it accepts.
#![no_main]

use egme_ord_core::filename::OrdFileName;
use egme_ord_core::region::Region;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(name) = std::str::from_utf8(data) else { return };
    for region in Region::ALL {
        if let Ok(parsed) = OrdFileName::parse_any(name, region) {
            assert_eq!(parsed.to_string(), name);
        }
    }
});
