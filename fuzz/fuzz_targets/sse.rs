//! The SSE decoder.
//!
//! Any bytes, in any chunking, give the same events; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard::fuzzing;

fuzz_target!(|data: &[u8]| {
    let (seed, body) = fuzzing::split_input(data);
    assert_eq!(fuzzing::sse(seed, body), fuzzing::sse(0, body));
});
