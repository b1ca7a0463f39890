//! Fuzz target: the SGL reader on arbitrary bytes, in every region; never panics, and a file is returned iff no error.
#![no_main]

use egme_ord_core::region::Region;
use egme_ord_core::sgl::{self, Dialect, ReadOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dialect = Dialect::default();
    for region in Region::ALL {
        let report = sgl::read(data, &ReadOptions::new(region, &dialect));
        assert_eq!(report.file.is_some(), !report.has_errors());
        if let Some(file) = report.file {
            // What was read can be written back.
            let _ = sgl::write(&file, region, &dialect);
        }
    }
});
