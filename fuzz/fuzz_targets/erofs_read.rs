//! Fuzz the hardened EROFS/composefs reader; for every image it accepts, writing the tree
//! it read must give an image that reads back to the same tree and rewrites to the same bytes.
#![no_main]

use cfsgate_fuzz::check_image_round_trip;
use cfsgate_image::erofs::reader::read_image;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(read) = read_image(data) {
        let _ = read.objects();
        check_image_round_trip(&read);
    }
});
