//! `embed`: texts to vectors through the chosen stack.

use std::sync::Arc;

use serde_json::{json, Value};
use switchboard::{cost_of, ChatClient, EmbedRequest, Error, ErrorKind, Result};

use crate::params::{EmbedInput, EmbedParams};
use crate::render;
use crate::State;

/// Runs `embed`.
pub(crate) async fn embed(state: &Arc<State>, p: EmbedParams) -> Result<Value> {
    let inputs = match p.input {
        EmbedInput::One(text) => vec![text],
        EmbedInput::Many(texts) => texts,
    };
    if inputs.is_empty() || inputs.iter().any(|t| t.is_empty()) {
        return Err(Error::new(
            ErrorKind::InvalidRequest,
            "`input` is empty or holds an empty text",
        )
        .with_fix("give one non-empty text or a list of non-empty texts"));
    }
    if p.dimensions == Some(0) {
        return Err(Error::new(ErrorKind::InvalidRequest, "`dimensions` is 0")
            .with_fix("ask for a positive number of dimensions, or leave it out"));
    }
    let mut req = EmbedRequest::new(inputs);
    req.dimensions = p.dimensions;
    let chosen = state
        .targets
        .client(p.model.as_deref(), p.route.as_deref())?;
    let response = chosen.client.embed(&req).await?;
    let dimensions = response.embeddings.first().map_or(0, Vec::len);
    Ok(json!({
        "route": chosen.asked,
        "provider": response.provider,
        "model": response.model,
        "count": response.embeddings.len(),
        "dimensions": dimensions,
        "embeddings": response.embeddings,
        "usage": render::usage(&response.usage),
        "cost_usd": render::cost(cost_of(&response.usage, &response.provider, &response.model)),
        "latency_ms": render::millis(response.latency),
        "attempts": render::attempts(response.attempts()),
    }))
}
