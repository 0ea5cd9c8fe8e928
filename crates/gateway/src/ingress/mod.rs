//! Front doors: each API dialect the gateway speaks besides Chat Completions, decoding its
//! requests into the library's neutral request and encoding answers, streams and errors in
//! its own shape, over the same routes.

pub(crate) mod responses;
