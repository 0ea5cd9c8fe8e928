//! Front doors besides Chat Completions: each speaks one API's dialect over the same routes,
//! turning its request into a [`switchboard::ChatRequest`] and the answer back into its own
//! shapes (JSON, stream events, errors).

pub(crate) mod messages;
pub(crate) mod responses;
