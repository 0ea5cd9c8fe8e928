//! Embeddings: [`EmbedRequest`] and [`EmbedResponse`].

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::response::{Attempt, Usage};

/// Texts to turn into vectors.
#[non_exhaustive]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EmbedRequest {
    /// The texts, one vector each.
    pub inputs: Vec<String>,
    /// Asks models that can shorten their vectors for this many dimensions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<u32>,
}

impl EmbedRequest {
    /// Creates a request for the given texts.
    pub fn new<I, S>(inputs: I) -> EmbedRequest
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        EmbedRequest {
            inputs: inputs.into_iter().map(Into::into).collect(),
            dimensions: None,
        }
    }

    /// Sets the number of dimensions.
    #[must_use]
    pub fn with_dimensions(mut self, dimensions: u32) -> EmbedRequest {
        self.dimensions = Some(dimensions);
        self
    }
}

/// Vectors for an [`EmbedRequest`], in input order.
#[non_exhaustive]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EmbedResponse {
    /// The provider that answered.
    pub provider: String,
    /// The model used.
    pub model: String,
    /// One vector per input, in input order.
    pub embeddings: Vec<Vec<f32>>,
    /// Token counts (input only).
    pub usage: Usage,
    /// Wall time of the call.
    #[serde(with = "super::response::duration_ms")]
    pub latency: Duration,
    /// Every attempt the call made, in order, ending with the one that answered: a
    /// provider's own answer lists its one attempt, and wrappers that retry or fall back
    /// put the failed and skipped attempts before it, as for chat.
    #[serde(default)]
    pub attempts: Vec<Attempt>,
}

impl EmbedResponse {
    /// Creates a response from vectors; the client fills in the rest.
    pub fn new(embeddings: Vec<Vec<f32>>) -> EmbedResponse {
        EmbedResponse {
            embeddings,
            ..EmbedResponse::default()
        }
    }

    /// Returns every attempt the call made, in order, ending with the one that answered.
    pub fn attempts(&self) -> &[Attempt] {
        &self.attempts
    }
}
