//! OpenAI Chat Completions streams.
//!
//! Any body, in any chunking, decodes to the same answer or typed error; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard::fuzzing::{self, Outcome};

fuzz_target!(|data: &[u8]| {
    let (seed, body) = fuzzing::split_input(data);
    let split = Outcome::of(&fuzzing::openai_chat_stream(seed, body));
    let whole = Outcome::of(&fuzzing::openai_chat_stream(0, body));
    assert_eq!(split, whole);
});
