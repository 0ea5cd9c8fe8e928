//! What a call cost: [`Cost`], the [`PriceTable`] it is computed from, and
//! [`ChatResponseCostExt::cost`] so every [`ChatResponse`] can say its own cost.
//!
//! # Billing semantics
//!
//! [`Usage::input_tokens`] counts every prompt token, cached or not (see [`Usage`]). A call
//! is billed as:
//!
//! | tokens | price |
//! | --- | --- |
//! | `input − cache_read − cache_write` (uncached prompt) | `input` |
//! | `cache_read` | `cache_read` (defaults to `input`) |
//! | `cache_write` | `cache_write` (defaults to `input`; Anthropic's 5-minute writes are 1.25× input) |
//! | `output − reasoning` | `output` |
//! | `reasoning` | `reasoning` (defaults to `output`: every provider we know bills it as output) |
//!
//! That one rule covers the providers' different reports because each protocol normalises
//! usage first: Anthropic reports cache tokens beside its input tokens and its protocol adds
//! them back; OpenAI, Gemini, xAI and DeepSeek report them inside.
//!
//! # Where the cost lives
//!
//! `types` stays free of pricing: the cost of a response is an extension trait,
//! [`ChatResponseCostExt`], priced from the embedded table. Use [`PriceTable::cost_of_response`]
//! for a table with your own overrides.

mod listing;
mod pricing;

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign};

pub use listing::{ModelListing, PricePerMillion};
pub use pricing::{ModelPrice, PriceTable};

use crate::types::{ChatResponse, Usage};

/// An amount of US dollars, held exactly as a whole number of nano-dollars (10⁻⁹ USD).
///
/// Integers, not floats, so that budgets add and subtract reservations without drift: a
/// thousand settlements of $0.0001 make exactly $0.1. Line items are rounded up to the next
/// nano-dollar, so a computed cost is never below the provider's bill. The largest amount
/// is about $18 billion; arithmetic saturates there.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cost {
    nanos: u64,
}

impl Cost {
    /// No money.
    pub const ZERO: Cost = Cost { nanos: 0 };

    /// Creates a cost from nano-dollars.
    pub const fn from_nanos(nanos: u64) -> Cost {
        Cost { nanos }
    }

    /// Creates a cost from dollars, rounded to the nearest nano-dollar; negative and NaN
    /// amounts become zero.
    pub fn from_usd(usd: f64) -> Cost {
        if usd.is_nan() || usd <= 0.0 {
            return Cost::ZERO;
        }
        // `as` saturates at u64::MAX for huge values.
        Cost {
            nanos: (usd * 1e9).round() as u64,
        }
    }

    /// Returns the amount in nano-dollars.
    pub const fn nanos(self) -> u64 {
        self.nanos
    }

    /// Returns the amount in dollars.
    pub fn usd(self) -> f64 {
        self.nanos as f64 / 1e9
    }

    /// Returns `self − other`, or zero if `other` is larger.
    #[must_use]
    pub fn saturating_sub(self, other: Cost) -> Cost {
        Cost {
            nanos: self.nanos.saturating_sub(other.nanos),
        }
    }
}

impl Add for Cost {
    type Output = Cost;

    fn add(self, other: Cost) -> Cost {
        Cost {
            nanos: self.nanos.saturating_add(other.nanos),
        }
    }
}

impl AddAssign for Cost {
    fn add_assign(&mut self, other: Cost) {
        *self = *self + other;
    }
}

impl Sum for Cost {
    fn sum<I: Iterator<Item = Cost>>(iter: I) -> Cost {
        iter.fold(Cost::ZERO, Add::add)
    }
}

impl fmt::Display for Cost {
    /// Prints dollars with six decimals (`$0.001250`), enough for one small call.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "${:.6}", self.usd())
    }
}

/// Prices `usage` for `provider`'s `model` from the embedded table; `None` when the model
/// has no price.
///
/// # Examples
/// ```
/// use switchboard::{cost_of, Usage};
///
/// // 1,000 prompt tokens and 500 output tokens on Claude Haiku 4.5 ($1 in, $5 out per million).
/// let cost = cost_of(&Usage::new(1_000, 500), "anthropic", "claude-haiku-4-5").unwrap();
/// assert_eq!(cost.nanos(), 3_500_000); // $0.0035
/// ```
pub fn cost_of(usage: &Usage, provider: &str, model: &str) -> Option<Cost> {
    PriceTable::embedded().cost_of(usage, provider, model)
}

/// Lets a [`ChatResponse`] say what it cost.
///
/// A trait here rather than a method in `types`, so responses do not depend on pricing.
pub trait ChatResponseCostExt {
    /// Returns what this call spent, priced from the embedded [`PriceTable`]: zero for an
    /// answer served by a [`CachedClient`](crate::CachedClient), `None` when the model has no
    /// price.
    ///
    /// # Examples
    /// ```
    /// use switchboard::{ChatResponse, ChatResponseCostExt, Usage};
    ///
    /// let mut response = ChatResponse::from_text("hi").with_usage(Usage::new(2_000, 1_000));
    /// response.provider = "openai".into();
    /// response.model = "gpt-4o-mini".into();
    /// // 2,000 × $0.15/M + 1,000 × $0.60/M
    /// assert_eq!(response.cost().unwrap().usd(), 0.0009);
    /// ```
    fn cost(&self) -> Option<Cost>;
}

impl ChatResponseCostExt for ChatResponse {
    fn cost(&self) -> Option<Cost> {
        PriceTable::embedded().cost_of_response(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_adds_exactly_where_floats_drift() {
        let step = Cost::from_usd(0.0001);
        let total: Cost = std::iter::repeat_n(step, 1000).sum();
        assert_eq!(total, Cost::from_usd(0.1));
    }

    #[test]
    fn cost_from_negative_or_nan_is_zero() {
        assert_eq!(Cost::from_usd(-1.0), Cost::ZERO);
        assert_eq!(Cost::from_usd(f64::NAN), Cost::ZERO);
    }

    #[test]
    fn cost_displays_dollars_with_six_decimals() {
        assert_eq!(Cost::from_nanos(1_250_000).to_string(), "$0.001250");
    }
}
