//! OpenAI Responses replies and error bodies.
//!
//! Any 2xx body decodes to an answer or a typed error, and any error body maps to a typed
//! error with its status; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard::fuzzing;

fuzz_target!(|data: &[u8]| {
    let _ = fuzzing::responses_reply(data);
    let err = fuzzing::openai_chat_error(data);
    assert!(err.status().is_some());
});
