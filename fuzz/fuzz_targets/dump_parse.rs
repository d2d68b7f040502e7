//! Fuzz the composefs dump parser (strict and lenient), and for every dump it accepts check
//! dump → image → dump: the writer's image must be readable, read back to the parsed tree,
//! rewrite to the same bytes, and dump back to a text that parses to the same tree.
#![no_main]

use std::io::BufReader;

use cfsgate_fuzz::{
    assert_same_tree, check_image_round_trip, normalise, read_own_image, settled, write_or_refuse,
};
use cfsgate_image::dump::{self, ParseMode};
use cfsgate_image::erofs::writer::WriteOptions;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let strict = dump::parse(BufReader::new(data), ParseMode::Strict);
    let lenient = dump::parse(BufReader::new(data), ParseMode::Lenient);
    let Some(tree) = strict.ok().or(lenient.ok()) else {
        return;
    };
    let Some(image) = write_or_refuse(&tree, &WriteOptions::default()) else {
        return;
    };
    let read = read_own_image(&image, "written from a parsed dump");
    let expected = normalise(tree);
    assert_same_tree(
        &expected,
        &settled(read.tree.clone()),
        "the image read back differs from the parsed dump",
    );
    check_image_round_trip(&read);
    let mut text = Vec::new();
    dump::write(&read.tree, &mut text).expect("writing a dump to memory");
    let reparsed = match dump::parse(BufReader::new(&text[..]), ParseMode::Strict) {
        Ok(t) => t,
        Err(e) => panic!(
            "the dump written from a read image does not parse: {e}\n{}",
            String::from_utf8_lossy(&text)
        ),
    };
    assert_same_tree(
        &expected,
        &normalise(reparsed),
        "dump → image → dump does not give the same tree",
    );
});
