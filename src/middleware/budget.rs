//! [`BudgetClient`]: refuses a call before it is sent when its worst case could cross a
//! spending, token, trial or time limit.
//!
//! The failure it prevents: a loop, a retry storm or a thousand concurrent tasks spending
//! past the cap because each checked "spent so far" before any of them had finished. Here
//! every attempt first **reserves** its worst case — the estimated prompt
//! ([`ChatRequest::estimated_input_tokens`] for its text, and for each image, document and
//! audio part the most its provider can bill for it, see [Media](#media)) plus the
//! request's `max_tokens` of output
//! (or [`BudgetBuilder::default_max_output_tokens`] when it has none), priced at the target's
//! prices — and is refused with [`ErrorKind::BudgetExceeded`] if spent + reserved + this
//! reservation would cross a limit. When the answer arrives the reservation settles to the
//! real usage; when the call fails it is released (a failed call is still a trial).
//!
//! The check and the reservation happen under one lock, so concurrent calls can never
//! together reserve more than the cap.
//!
//! # Spent, or only held
//!
//! A refusal says which of two things stood in the way. When what was already spent (or
//! the tokens, trials or time already used) leaves no room for the call, it is
//! [`ErrorKind::BudgetExceeded`]: waiting does not help. When only the reservations of
//! calls still in flight stand in the way — a burst of concurrent calls each holding its
//! worst case, most of which will settle far below it — the call is *held by in-flight
//! reservations*: it waits up to [`BudgetBuilder::max_wait`] (2 s by default, and never
//! past the call's deadline) for reservations to settle, and if it still does not fit it
//! fails with [`ErrorKind::BudgetHeld`] and a `retry_after` hint
//! ([`HELD_RETRY_AFTER`]). The gateway answers that as a retryable 429 `budget_held`,
//! and a spent budget as a final 429 `budget_exceeded`. The guarantee is exact as long as real usage stays
//! within the reservation: output cannot exceed `max_tokens`, but the prompt estimate
//! (about four bytes a token) can undercount; such an overrun is recorded truthfully and
//! refuses the calls after it.
//!
//! A cost cap needs prices: a call to a model that has no price in the budget's
//! [`PriceTable`] is refused with [`ErrorKind::Config`] rather than let through unmetered.
//! Self-hosted servers (`ollama`, `vllm`) have explicit zero-price rows in the embedded
//! table, noted "self-hosted: no per-token charge", so a cost cap meters them at $0 while
//! the token, trial and time limits still count them; an `openai-compatible` endpoint has
//! no price (it may be anyone's server) and is refused until an overrides file gives it one.
//!
//! # Media
//!
//! Images, documents (PDFs) and audio are reserved at an upper bound of what the target's
//! provider bills for them, following each provider's published rule: image tiles or
//! pixels (read from the image's header), PDF pages as text plus a page image (the pages
//! counted in the file, else bounded by its byte size and the provider's page limit), and
//! audio by its length (read from a WAV header, else bounded by its byte size). The whole
//! prompt is never reserved past the model's context window when the price table knows it.
//! The rules and their sources are listed in `src/middleware/budget/media.rs`.
//!
//! # Fallback chains
//!
//! One [`Budget`] can span a whole chain: wrap each target in its own [`BudgetClient`]
//! with clones of the same budget, so each attempt is priced at its own target's prices.
//!
//! # Cancellation
//!
//! A call dropped before it finished keeps its reservation as spent: the provider may
//! have billed for it and we cannot know how much.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::deadline::current_deadline;

use crate::client::{BoxFuture, ChatClient, ClientInfo, Readiness};
use crate::cost::{Cost, PriceTable};
use crate::error::{Error, ErrorKind, Result};
use crate::middleware::CACHE_PROVIDER;
use crate::types::{
    ChatRequest, ChatResponse, ChatStream, EmbedRequest, EmbedResponse, StreamEvent, Usage,
};

mod media;

/// The error for a call a cost cap cannot meter: `info`'s model has no price.
fn unpriced(info: &ClientInfo) -> Error {
    let message = format!("{info} has no price, so a budget with a cost cap cannot meter it");
    let fix =
        "add a price for it with `PriceTable::with_overrides_file` and `BudgetBuilder::prices`";
    if info.provider() == OPENAI_COMPATIBLE {
        return Error::config(
            format!("{message}: an `openai-compatible` endpoint can be any server, free or not, so no price ships for it"),
            format!("{fix} (input = 0.0 and output = 0.0 for a server of your own)"),
        );
    }
    Error::config(message, fix)
}

/// The provider name of a generic OpenAI-compatible endpoint, which no price row covers.
const OPENAI_COMPATIBLE: &str = "openai-compatible";

/// The output reserved for a request without `max_tokens`, unless the builder sets another.
pub const DEFAULT_MAX_OUTPUT_TOKENS: u64 = 4096;

/// How long a call held only by in-flight reservations waits for room, unless the builder
/// sets another wait.
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(2);

/// The `retry_after` of an [`ErrorKind::BudgetHeld`] refusal: calls in flight usually
/// settle within seconds.
pub const HELD_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Returns the input tokens a budget reserves for `req` sent to `provider`'s `model`: the
/// text estimate of [`ChatRequest::estimated_input_tokens`] plus, for each image, document
/// and audio part, the most that provider bills for it (see [Media](self#media)), capped at
/// the model's context window when `prices` knows it.
pub fn reserved_input_tokens(
    req: &ChatRequest,
    provider: &str,
    model: &str,
    prices: &PriceTable,
) -> u64 {
    let window = prices.price(provider, model).and_then(|p| p.context_window);
    media::input_upper_bound(req, provider, model, window)
}

/// Which limit of a [`Budget`] refused a call.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BudgetLimit {
    /// `max_cost_usd`.
    Cost,
    /// `max_trials`.
    Trials,
    /// `max_tokens`.
    Tokens,
    /// `max_duration`.
    Duration,
}

impl BudgetLimit {
    /// Returns the limit's setting name.
    pub fn as_str(self) -> &'static str {
        match self {
            BudgetLimit::Cost => "max_cost_usd",
            BudgetLimit::Trials => "max_trials",
            BudgetLimit::Tokens => "max_tokens",
            BudgetLimit::Duration => "max_duration",
        }
    }
}

impl fmt::Display for BudgetLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Limits on money, tokens, attempts and time, and the tracker of what was used.
///
/// # Clone
/// Clones share the limits and the tracker: hand one budget to many clients and tasks.
///
/// # Examples
/// ```
/// use switchboard::Budget;
///
/// let budget = Budget::builder().max_cost_usd(0.10).max_trials(50).build()?;
/// assert_eq!(budget.spent().usd(), 0.0);
/// assert_eq!(budget.remaining().unwrap().usd(), 0.10);
/// # Ok::<_, switchboard::Error>(())
/// ```
#[derive(Clone)]
pub struct Budget {
    inner: Arc<BudgetInner>,
}

struct BudgetInner {
    max_cost: Option<Cost>,
    max_trials: Option<u64>,
    max_tokens: Option<u64>,
    max_duration: Option<Duration>,
    default_max_output: u64,
    max_wait: Duration,
    prices: PriceTable,
    started: Instant,
    state: Mutex<State>,
    /// Woken whenever a reservation closes, for calls waiting for room.
    released: Notify,
}

/// Why a reservation did not fit: the limit, what stood in the way, and whether the
/// reservations of calls in flight were all that did.
struct Refusal {
    limit: BudgetLimit,
    detail: String,
    held: bool,
}

#[derive(Default)]
struct State {
    spent: Cost,
    reserved: Cost,
    tokens: u64,
    tokens_reserved: u64,
    trials: u64,
    trials_reserved: u64,
    stop: Option<BudgetLimit>,
}

impl fmt::Debug for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Budget")
            .field("max_cost", &self.inner.max_cost)
            .field("max_trials", &self.inner.max_trials)
            .field("max_tokens", &self.inner.max_tokens)
            .field("max_duration", &self.inner.max_duration)
            .field("spent", &self.spent())
            .field("reserved", &self.reserved())
            .finish_non_exhaustive()
    }
}

impl Budget {
    /// Starts a builder with no limits.
    pub fn builder() -> BudgetBuilder {
        BudgetBuilder {
            max_cost_usd: None,
            max_trials: None,
            max_tokens: None,
            max_duration: None,
            default_max_output: DEFAULT_MAX_OUTPUT_TOKENS,
            max_wait: DEFAULT_MAX_WAIT,
            prices: None,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Returns the money spent by settled calls.
    pub fn spent(&self) -> Cost {
        self.state().spent
    }

    /// Returns the money reserved by calls in flight.
    pub fn reserved(&self) -> Cost {
        self.state().reserved
    }

    /// Returns the cap minus spent and reserved, or `None` without a cost cap.
    pub fn remaining(&self) -> Option<Cost> {
        let cap = self.inner.max_cost?;
        let st = self.state();
        Some(cap.saturating_sub(st.spent + st.reserved))
    }

    /// Returns the attempts made so far (answered or failed, not refused).
    pub fn trials(&self) -> u64 {
        self.state().trials
    }

    /// Returns the tokens used by settled calls (input plus output).
    pub fn tokens(&self) -> u64 {
        self.state().tokens
    }

    /// Returns the limit that refused the latest refused call, or `None` if none was refused.
    pub fn stop_reason(&self) -> Option<BudgetLimit> {
        self.state().stop
    }

    /// Returns the price table reservations and settlements use.
    pub fn prices(&self) -> &PriceTable {
        &self.inner.prices
    }

    /// Reserves the worst case of `req` sent to `info`'s model, waiting for room when only
    /// reservations of calls in flight stand in the way.
    async fn reserve_chat(&self, req: &ChatRequest, info: &ClientInfo) -> Result<Reservation> {
        let price = self.inner.prices.price(info.provider(), info.model());
        let input = reserved_input_tokens(req, info.provider(), info.model(), &self.inner.prices);
        let output = req
            .max_tokens
            .map_or(self.inner.default_max_output, u64::from);
        let cost = price.map(|price| price.worst_case(input, output));
        self.reserve(cost, input + output, info).await
    }

    /// Reserves `cost` and `tokens` for one call to `info`. A call held only by in-flight
    /// reservations waits for them to settle, up to `max_wait` and never past the call's
    /// deadline; see the [module docs](self#spent-or-only-held).
    async fn reserve(
        &self,
        cost: Option<Cost>,
        tokens: u64,
        info: &ClientInfo,
    ) -> Result<Reservation> {
        let mut until = Instant::now() + self.inner.max_wait;
        if let Some(deadline) = current_deadline() {
            until = until.min(deadline);
        }
        loop {
            // Registered before the check, so a release between the check and the wait
            // is not missed.
            let released = self.inner.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            let refusal = match self.try_reserve(cost, tokens, info)? {
                Ok(reservation) => return Ok(reservation),
                Err(refusal) => refusal,
            };
            let waited = refusal.held
                && Instant::now() < until
                && tokio::time::timeout_at(until, released).await.is_ok();
            if !waited {
                return Err(self.refuse(refusal, info));
            }
        }
    }

    /// Records `refusal` as the stop reason and builds its error.
    fn refuse(&self, refusal: Refusal, info: &ClientInfo) -> Error {
        let Refusal {
            limit,
            detail,
            held,
        } = refusal;
        self.state().stop = Some(limit);
        if held {
            return Error::new(
                ErrorKind::BudgetHeld,
                format!(
                    "{limit} is held by calls in flight: a call to {info} does not fit until some of them settle ({detail})"
                ),
            )
            .with_retry_after(HELD_RETRY_AFTER)
            .with_fix("send it again in a moment; fewer concurrent calls or a lower max_tokens reserve less");
        }
        Error::new(
            ErrorKind::BudgetExceeded,
            format!("{limit} would be crossed by a call to {info}: {detail}"),
        )
        .with_fix("raise the limit, lower the request's max_tokens, or start a new budget")
    }

    /// Reserves at once if the call fits; otherwise says what stood in the way.
    fn try_reserve(
        &self,
        cost: Option<Cost>,
        tokens: u64,
        info: &ClientInfo,
    ) -> Result<std::result::Result<Reservation, Refusal>> {
        let inner = &self.inner;
        let mut st = self.state();
        let refusal = if let Some(max) = inner
            .max_duration
            .filter(|max| inner.started.elapsed() >= *max)
        {
            Some(Refusal {
                limit: BudgetLimit::Duration,
                detail: format!(
                    "{:.1}s have passed since the budget started, cap {:.1}s",
                    inner.started.elapsed().as_secs_f64(),
                    max.as_secs_f64()
                ),
                held: false,
            })
        } else if let Some(max) = inner
            .max_trials
            .filter(|max| st.trials + st.trials_reserved + 1 > *max)
        {
            Some(Refusal {
                limit: BudgetLimit::Trials,
                detail: format!(
                    "{} trials made, {} in flight, this call needs 1, cap {max}",
                    st.trials, st.trials_reserved
                ),
                held: st.trials < max,
            })
        } else if let Some(max) = inner
            .max_tokens
            .filter(|max| st.tokens + st.tokens_reserved + tokens > *max)
        {
            Some(Refusal {
                limit: BudgetLimit::Tokens,
                detail: format!(
                    "spent {} tokens, reserved {}, this call needs up to {tokens}, cap {max}",
                    st.tokens, st.tokens_reserved
                ),
                held: st.tokens + tokens <= max,
            })
        } else if let Some(max) = inner.max_cost {
            match cost {
                None => return Err(unpriced(info)),
                Some(need) if st.spent + st.reserved + need > max => Some(Refusal {
                    limit: BudgetLimit::Cost,
                    detail: format!(
                        "spent {}, reserved {}, this call needs up to {need}, cap {max}",
                        st.spent, st.reserved
                    ),
                    held: st.spent + need <= max,
                }),
                Some(_) => None,
            }
        } else {
            None
        };
        if let Some(refusal) = refusal {
            return Ok(Err(refusal));
        }
        let cost = cost.unwrap_or(Cost::ZERO);
        st.reserved += cost;
        st.tokens_reserved += tokens;
        st.trials_reserved += 1;
        Ok(Ok(Reservation {
            budget: self.clone(),
            cost,
            tokens,
            open: true,
        }))
    }
}

/// A call's hold on the budget; settles (or keeps the worst case, if dropped) exactly once.
struct Reservation {
    budget: Budget,
    cost: Cost,
    tokens: u64,
    open: bool,
}

impl Reservation {
    fn close(&mut self, cost: Cost, tokens: u64) {
        if !self.open {
            return;
        }
        self.open = false;
        {
            let mut st = self.budget.state();
            st.reserved = st.reserved.saturating_sub(self.cost);
            st.tokens_reserved = st.tokens_reserved.saturating_sub(self.tokens);
            st.trials_reserved = st.trials_reserved.saturating_sub(1);
            st.spent += cost;
            st.tokens += tokens;
            st.trials += 1;
        }
        self.budget.inner.released.notify_waiters();
    }

    /// Settles to what the response really used (a cache hit used nothing); a response
    /// whose usage is unknown keeps the whole reservation as spent.
    fn settle(mut self, response: &ChatResponse) {
        let cached = response
            .attempts
            .last()
            .is_some_and(|a| a.provider == CACHE_PROVIDER);
        if response.usage_unknown && !cached {
            let (cost, tokens) = (self.cost, self.tokens);
            return self.close(cost, tokens);
        }
        let tokens = if cached {
            0
        } else {
            response
                .usage
                .input_tokens
                .saturating_add(response.usage.output_tokens)
        };
        let cost = self
            .budget
            .inner
            .prices
            .cost_of_response(response)
            .unwrap_or(self.cost);
        self.close(cost, tokens);
    }

    /// Releases the reservation after a failure, keeping what a broken stream had used.
    fn fail(mut self, err: &Error) {
        match err.partial() {
            Some(partial) => self.settle_partial(partial),
            None => self.close(Cost::ZERO, 0),
        }
    }

    fn settle_partial(mut self, partial: &ChatResponse) {
        if partial.usage_unknown {
            let (cost, tokens) = (self.cost, self.tokens);
            return self.close(cost, tokens);
        }
        let u = &partial.usage;
        let cost = self
            .budget
            .inner
            .prices
            .cost_of_response(partial)
            .unwrap_or(Cost::ZERO);
        self.close(cost, u.input_tokens.saturating_add(u.output_tokens));
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let (cost, tokens) = (self.cost, self.tokens);
        self.close(cost, tokens);
    }
}

/// Builds a [`Budget`].
#[must_use]
#[derive(Debug)]
pub struct BudgetBuilder {
    max_cost_usd: Option<f64>,
    max_trials: Option<u64>,
    max_tokens: Option<u64>,
    max_duration: Option<Duration>,
    default_max_output: u64,
    max_wait: Duration,
    prices: Option<PriceTable>,
}

impl BudgetBuilder {
    /// Caps the money spent, in US dollars.
    pub fn max_cost_usd(mut self, usd: f64) -> BudgetBuilder {
        self.max_cost_usd = Some(usd);
        self
    }

    /// Caps the attempts made (answered or failed).
    pub fn max_trials(mut self, trials: u64) -> BudgetBuilder {
        self.max_trials = Some(trials);
        self
    }

    /// Caps the tokens used (input plus output).
    pub fn max_tokens(mut self, tokens: u64) -> BudgetBuilder {
        self.max_tokens = Some(tokens);
        self
    }

    /// Refuses calls that start more than `duration` after the budget was built.
    pub fn max_duration(mut self, duration: Duration) -> BudgetBuilder {
        self.max_duration = Some(duration);
        self
    }

    /// Sets the output reserved for requests without `max_tokens` (default
    /// [`DEFAULT_MAX_OUTPUT_TOKENS`]).
    pub fn default_max_output_tokens(mut self, tokens: u64) -> BudgetBuilder {
        self.default_max_output = tokens;
        self
    }

    /// Sets how long a call held only by the reservations of calls in flight waits for
    /// them to settle before failing with [`ErrorKind::BudgetHeld`] (default
    /// [`DEFAULT_MAX_WAIT`]; zero refuses at once). The wait never crosses the call's
    /// deadline.
    pub fn max_wait(mut self, wait: Duration) -> BudgetBuilder {
        self.max_wait = wait;
        self
    }

    /// Prices calls from `prices` instead of [`PriceTable::embedded`].
    pub fn prices(mut self, prices: PriceTable) -> BudgetBuilder {
        self.prices = Some(prices);
        self
    }

    /// Builds the budget; its `max_duration` clock starts now.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] when the cost cap is negative or not a number.
    pub fn build(self) -> Result<Budget> {
        let max_cost = match self.max_cost_usd {
            Some(usd) if !usd.is_finite() || usd < 0.0 => {
                return Err(Error::config(
                    format!("budget max_cost_usd is {usd}"),
                    "give a cap of zero or more US dollars",
                ))
            }
            Some(usd) => Some(Cost::from_usd(usd)),
            None => None,
        };
        Ok(Budget {
            inner: Arc::new(BudgetInner {
                max_cost,
                max_trials: self.max_trials,
                max_tokens: self.max_tokens,
                max_duration: self.max_duration,
                default_max_output: self.default_max_output,
                max_wait: self.max_wait,
                prices: self
                    .prices
                    .unwrap_or_else(|| PriceTable::embedded().clone()),
                started: Instant::now(),
                state: Mutex::new(State::default()),
                released: Notify::new(),
            }),
        })
    }
}

/// Enforces a [`Budget`] on every call through it.
///
/// # Clone
/// Clones share the budget (and the inner client, if its clones share state).
///
/// # Examples
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use switchboard::{Budget, ChatClient, ChatClientExt, ChatRequest, ChatResponse, ErrorKind, FunctionClient, Usage};
///
/// let model = FunctionClient::builder("gpt-4o-mini")
///     .provider("openai")
///     .respond(|_req: &ChatRequest| Ok(ChatResponse::from_text("ok").with_usage(Usage::new(10, 1_000))))
///     .build();
/// // A call uses about $0.0006 (1,000 output tokens at $0.60/M): a $0.001 cap fits one.
/// let budget = Budget::builder().max_cost_usd(0.001).build()?;
/// let client = model.with_budget(budget.clone());
/// let req = ChatRequest::user("hi").with_max_tokens(1_000);
/// client.chat(&req).await?;
/// let err = client.chat(&req).await.unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::BudgetExceeded);
/// # Ok::<_, switchboard::Error>(()) }).unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct BudgetClient<C> {
    inner: C,
    budget: Budget,
}

impl<C: ChatClient> BudgetClient<C> {
    /// Wraps `inner` so every call through it is held to `budget`.
    pub fn new(inner: C, budget: Budget) -> BudgetClient<C> {
        BudgetClient { inner, budget }
    }

    /// Returns the budget.
    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    /// Returns the wrapped client.
    pub fn inner(&self) -> &C {
        &self.inner
    }

    /// Returns the wrapped client, consuming the wrapper.
    pub fn into_inner(self) -> C {
        self.inner
    }
}

impl<C: ChatClient> ChatClient for BudgetClient<C> {
    fn chat<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatResponse>> {
        Box::pin(async move {
            let reservation = self.budget.reserve_chat(req, self.inner.info()).await?;
            match self.inner.chat(req).await {
                Ok(response) => {
                    reservation.settle(&response);
                    Ok(response)
                }
                Err(err) => {
                    reservation.fail(&err);
                    Err(err)
                }
            }
        })
    }

    fn chat_stream<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<ChatStream>> {
        Box::pin(async move {
            let reservation = self.budget.reserve_chat(req, self.inner.info()).await?;
            let stream = match self.inner.chat_stream(req).await {
                Ok(stream) => stream,
                Err(err) => {
                    reservation.fail(&err);
                    return Err(err);
                }
            };
            let mut slot = Some(reservation);
            Ok(ChatStream::new(stream.into_inner().map(move |item| {
                match &item {
                    Ok(StreamEvent::Done { response }) => {
                        if let Some(r) = slot.take() {
                            r.settle(response);
                        }
                    }
                    Err(err) => {
                        if let Some(r) = slot.take() {
                            r.fail(err);
                        }
                    }
                    Ok(_) => {}
                }
                item
            })))
        })
    }

    fn embed<'a>(&'a self, req: &'a EmbedRequest) -> BoxFuture<'a, Result<EmbedResponse>> {
        Box::pin(async move {
            let info = self.inner.info();
            let bytes: usize = req.inputs.iter().map(String::len).sum();
            let tokens = (bytes as u64).div_ceil(4);
            let cost =
                self.budget
                    .prices()
                    .cost_of(&Usage::new(tokens, 0), info.provider(), info.model());
            let mut reservation = self.budget.reserve(cost, tokens, info).await?;
            match self.inner.embed(req).await {
                Ok(response) => {
                    let used = self
                        .budget
                        .prices()
                        .cost_of(&response.usage, &response.provider, &response.model)
                        .unwrap_or(reservation.cost);
                    reservation.close(used, response.usage.input_tokens);
                    Ok(response)
                }
                Err(err) => {
                    reservation.close(Cost::ZERO, 0);
                    Err(err)
                }
            }
        })
    }

    fn count_tokens<'a>(&'a self, req: &'a ChatRequest) -> BoxFuture<'a, Result<Option<u64>>> {
        self.inner.count_tokens(req)
    }

    fn info(&self) -> &ClientInfo {
        self.inner.info()
    }

    fn readiness(&self) -> Readiness {
        self.inner.readiness()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ChatClientExt;
    use crate::cost::ModelPrice;
    use crate::providers::FunctionClient;

    #[allow(dead_code)]
    fn _assert_impls() {
        fn send_sync_clone<T: Send + Sync + Clone>() {}
        send_sync_clone::<Budget>();
        send_sync_clone::<BudgetClient<FunctionClient>>();
    }

    /// A table where the test model costs $1 per million input and $1 per million output
    /// tokens: one token is one micro-dollar.
    fn prices() -> PriceTable {
        let mut table = PriceTable::default();
        table.insert("test", "m", ModelPrice::new(1.0, 1.0));
        table
    }

    fn model(usage: Usage) -> FunctionClient {
        FunctionClient::builder("m")
            .provider("test")
            .respond(move |_r: &ChatRequest| Ok(ChatResponse::from_text("ok").with_usage(usage)))
            .build()
    }

    /// A request whose estimate is exactly 100 input tokens (4 + 396 bytes).
    fn request(max_tokens: u32) -> ChatRequest {
        ChatRequest::user("x".repeat(396)).with_max_tokens(max_tokens)
    }

    #[tokio::test]
    async fn refusal_names_limit_spent_reserved_and_cap() {
        let budget = Budget::builder()
            .max_cost_usd(0.000_250)
            .prices(prices())
            .build()
            .unwrap();
        let client = BudgetClient::new(model(Usage::new(100, 50)), budget.clone());
        // Each call reserves 100 + 50 = 150 µ$ and settles to 150 µ$.
        client.chat(&request(50)).await.unwrap();
        let err = client.chat(&request(50)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BudgetExceeded);
        let msg = err.message();
        assert!(msg.contains("max_cost_usd"), "{msg}");
        assert!(msg.contains("spent $0.000150"), "{msg}");
        assert!(msg.contains("reserved $0.000000"), "{msg}");
        assert!(msg.contains("needs up to $0.000150"), "{msg}");
        assert!(msg.contains("cap $0.000250"), "{msg}");
        assert_eq!(budget.stop_reason(), Some(BudgetLimit::Cost));
        assert!(!err.is_recoverable());
    }

    #[tokio::test]
    async fn reservation_settles_to_real_usage() {
        let budget = Budget::builder()
            .max_cost_usd(1.0)
            .prices(prices())
            .build()
            .unwrap();
        let client = BudgetClient::new(model(Usage::new(100, 10)), budget.clone());
        client.chat(&request(1_000)).await.unwrap();
        assert_eq!(budget.spent(), Cost::from_nanos(110_000));
        assert_eq!(budget.reserved(), Cost::ZERO);
        assert_eq!(budget.tokens(), 110);
        assert_eq!(budget.trials(), 1);
        assert_eq!(
            budget.remaining(),
            Some(Cost::from_usd(1.0).saturating_sub(Cost::from_nanos(110_000)))
        );
    }

    #[tokio::test]
    async fn failed_call_releases_its_reservation_but_counts_a_trial() {
        let budget = Budget::builder()
            .max_cost_usd(1.0)
            .prices(prices())
            .build()
            .unwrap();
        let failing = FunctionClient::builder("m")
            .provider("test")
            .respond(|_r: &ChatRequest| Err(Error::from_status("test", 503, "down")))
            .build();
        let client = BudgetClient::new(failing, budget.clone());
        client.chat(&request(10)).await.unwrap_err();
        assert_eq!(budget.spent(), Cost::ZERO);
        assert_eq!(budget.reserved(), Cost::ZERO);
        assert_eq!(budget.trials(), 1);
    }

    #[tokio::test]
    async fn trial_limit_stops_the_third_call() {
        let budget = Budget::builder().max_trials(2).build().unwrap();
        let client = model(Usage::new(1, 1)).with_budget(budget.clone());
        client.chat(&request(1)).await.unwrap();
        client.chat(&request(1)).await.unwrap();
        let err = client.chat(&request(1)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BudgetExceeded);
        assert!(err.message().contains("max_trials"));
        assert_eq!(budget.stop_reason(), Some(BudgetLimit::Trials));
    }

    #[tokio::test]
    async fn token_limit_counts_the_worst_case_before_sending() {
        let budget = Budget::builder().max_tokens(1_000).build().unwrap();
        let inner = model(Usage::new(100, 10));
        let client = BudgetClient::new(inner.clone(), budget.clone());
        // 100 estimated + 901 max output = 1,001 > 1,000: refused before the model is asked.
        let err = client.chat(&request(901)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BudgetExceeded);
        assert_eq!(inner.calls(), 0);
        assert_eq!(budget.stop_reason(), Some(BudgetLimit::Tokens));
    }

    #[tokio::test]
    async fn request_without_max_tokens_reserves_the_default_output() {
        let budget = Budget::builder()
            .max_tokens(1_000)
            .default_max_output_tokens(2_000)
            .build()
            .unwrap();
        let client = model(Usage::new(1, 1)).with_budget(budget);
        let err = client.chat(&ChatRequest::user("hi")).await.unwrap_err();
        assert!(
            err.message().contains("needs up to 2002"),
            "{}",
            err.message()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn duration_limit_refuses_calls_after_the_deadline() {
        let budget = Budget::builder()
            .max_duration(Duration::from_secs(60))
            .build()
            .unwrap();
        let client = model(Usage::new(1, 1)).with_budget(budget.clone());
        client.chat(&request(1)).await.unwrap();
        tokio::time::advance(Duration::from_secs(61)).await;
        let err = client.chat(&request(1)).await.unwrap_err();
        assert!(err.message().contains("max_duration"), "{}", err.message());
        assert_eq!(budget.stop_reason(), Some(BudgetLimit::Duration));
    }

    #[tokio::test]
    async fn unpriced_model_under_a_cost_cap_is_a_config_error() {
        let budget = Budget::builder()
            .max_cost_usd(1.0)
            .prices(PriceTable::default())
            .build()
            .unwrap();
        let client = model(Usage::new(1, 1)).with_budget(budget);
        let err = client.chat(&request(1)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
    }

    #[test]
    fn negative_cap_is_refused_at_build() {
        let err = Budget::builder().max_cost_usd(-1.0).build().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
    }

    #[tokio::test]
    async fn stream_settles_on_done() {
        let budget = Budget::builder()
            .max_cost_usd(1.0)
            .prices(prices())
            .build()
            .unwrap();
        let client = model(Usage::new(100, 20)).with_budget(budget.clone());
        let stream = client.chat_stream(&request(500)).await.unwrap();
        assert_eq!(budget.reserved(), Cost::from_nanos(600_000));
        stream.collect_response().await.unwrap();
        assert_eq!(budget.reserved(), Cost::ZERO);
        assert_eq!(budget.spent(), Cost::from_nanos(120_000));
    }

    #[tokio::test]
    async fn stream_error_before_content_releases_the_reservation() {
        let budget = Budget::builder()
            .max_cost_usd(1.0)
            .prices(prices())
            .build()
            .unwrap();
        let inner = FunctionClient::builder("m")
            .provider("test")
            .stream(|_r: &ChatRequest| Ok(vec![Err(Error::from_status("test", 529, "busy"))]))
            .build();
        let client = inner.with_budget(budget.clone());
        let stream = client.chat_stream(&request(500)).await.unwrap();
        stream.collect_response().await.unwrap_err();
        assert_eq!(budget.reserved(), Cost::ZERO);
        assert_eq!(budget.spent(), Cost::ZERO);
    }

    #[tokio::test]
    async fn dropped_stream_keeps_its_worst_case_as_spent() {
        let budget = Budget::builder()
            .max_cost_usd(1.0)
            .prices(prices())
            .build()
            .unwrap();
        let client = model(Usage::new(100, 20)).with_budget(budget.clone());
        drop(client.chat_stream(&request(500)).await.unwrap());
        assert_eq!(budget.reserved(), Cost::ZERO);
        assert_eq!(budget.spent(), Cost::from_nanos(600_000));
    }

    #[test]
    fn thousand_concurrent_calls_never_overrun_the_cap() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            // Each call reserves 100 + 50 = 150 µ$ and really uses 150 µ$; the cap fits 66.
            let budget = Budget::builder()
                .max_cost_usd(0.01)
                .prices(prices())
                .build()
                .unwrap();
            let inner = FunctionClient::builder("m")
                .provider("test")
                .respond_async(|_r: ChatRequest| async {
                    tokio::task::yield_now().await;
                    Ok(ChatResponse::from_text("ok").with_usage(Usage::new(100, 50)))
                })
                .build();
            let client = Arc::new(BudgetClient::new(inner, budget.clone()));
            let tasks: Vec<_> = (0..1000)
                .map(|_| {
                    let client = client.clone();
                    tokio::spawn(async move { client.chat(&request(50)).await })
                })
                .collect();
            let (mut answered, mut refused) = (0, 0);
            for task in tasks {
                match task.await.unwrap() {
                    Ok(_) => answered += 1,
                    Err(e)
                        if matches!(
                            e.kind(),
                            ErrorKind::BudgetExceeded | ErrorKind::BudgetHeld
                        ) =>
                    {
                        refused += 1
                    }
                    Err(e) => panic!("unexpected error {e}"),
                }
            }
            assert_eq!(answered + refused, 1000);
            assert!(
                budget.spent() <= Cost::from_usd(0.01),
                "spent {}",
                budget.spent()
            );
            assert_eq!(budget.reserved(), Cost::ZERO);
            assert_eq!(answered, 66);
            assert_eq!(budget.spent(), Cost::from_nanos(66 * 150_000));
        });
    }

    /// A client whose calls take 10 ms (of paused time) and use 100 + 10 tokens.
    fn slow_model() -> FunctionClient {
        FunctionClient::builder("m")
            .provider("test")
            .respond_async(|_r: ChatRequest| async {
                tokio::time::sleep(Duration::from_millis(10)).await;
                Ok(ChatResponse::from_text("ok").with_usage(Usage::new(100, 10)))
            })
            .build()
    }

    /// Sends `n` concurrent calls that each reserve 1,100 µ$ and use 110 µ$, under a cap
    /// that fits 10 reservations; returns the kinds of the refusals.
    async fn burst(budget: &Budget, n: usize) -> (usize, Vec<ErrorKind>) {
        let client = Arc::new(BudgetClient::new(slow_model(), budget.clone()));
        let tasks: Vec<_> = (0..n)
            .map(|_| {
                let client = client.clone();
                tokio::spawn(async move { client.chat(&request(1_000)).await })
            })
            .collect();
        let (mut answered, mut refused) = (0, Vec::new());
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => answered += 1,
                Err(e) => refused.push(e.kind()),
            }
        }
        (answered, refused)
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_held_only_by_calls_in_flight_is_not_budget_exceeded() {
        let budget = Budget::builder()
            .max_cost_usd(0.011)
            .prices(prices())
            .max_wait(Duration::ZERO)
            .build()
            .unwrap();
        let (answered, refused) = burst(&budget, 50).await;
        // Ten reservations fit at once; the other forty found the cap held, not spent.
        assert_eq!(answered, 10);
        assert_eq!(refused.len(), 40);
        assert!(
            refused.iter().all(|k| *k == ErrorKind::BudgetHeld),
            "{refused:?}"
        );
        assert_eq!(budget.spent(), Cost::from_nanos(10 * 110_000));
        assert_eq!(budget.stop_reason(), Some(BudgetLimit::Cost));
        // The refusal says why, and when to come back.
        let client = BudgetClient::new(slow_model(), budget.clone());
        // Spent 1,100 µ$: nine more reservations fill the cap.
        let holders: Vec<_> = (0..9)
            .map(|_| {
                let b = budget.clone();
                tokio::spawn(async move {
                    BudgetClient::new(slow_model(), b)
                        .chat(&request(1_000))
                        .await
                })
            })
            .collect();
        tokio::task::yield_now().await;
        let err = client.chat(&request(1_000)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BudgetHeld);
        assert_eq!(err.retry_after(), Some(HELD_RETRY_AFTER));
        assert!(err.message().contains("held by calls in flight"), "{err}");
        assert!(!err.is_recoverable() && !err.is_retryable());
        for h in holders {
            h.await.unwrap().unwrap();
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_held_call_waits_for_room_and_then_goes_through() {
        let budget = Budget::builder()
            .max_cost_usd(0.011)
            .prices(prices())
            .build()
            .unwrap();
        let (answered, refused) = burst(&budget, 50).await;
        // Every call fits once earlier ones settle at their real cost: 50 × 110 µ$ is half
        // the cap.
        assert_eq!(answered, 50, "{refused:?}");
        assert_eq!(budget.spent(), Cost::from_nanos(50 * 110_000));
        assert_eq!(budget.reserved(), Cost::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_spent_budget_is_exceeded_even_while_calls_are_in_flight() {
        // Spent 10,001 µ$ of 11,000: a call needing 1,100 can never fit, whatever settles.
        let budget = Budget::builder()
            .max_cost_usd(0.011)
            .prices(prices())
            .build()
            .unwrap();
        let spender = BudgetClient::new(model(Usage::new(9_901, 100)), budget.clone());
        spender.chat(&request(1_000)).await.unwrap();
        let started = Instant::now();
        let err = BudgetClient::new(slow_model(), budget.clone())
            .chat(&request(1_000))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BudgetExceeded);
        assert_eq!(
            started.elapsed(),
            Duration::ZERO,
            "a spent budget never waits"
        );
    }

    #[tokio::test]
    async fn a_hundred_page_pdf_is_reserved_at_its_pages_not_at_two_thousand_tokens() {
        use crate::types::{Media, Message, Part, Role};
        let mut text = String::from("%PDF-1.7\n");
        for i in 0..100 {
            text.push_str(&format!(
                "{i} 0 obj << /Type /Page /Parent 1 0 R >> endobj\n"
            ));
        }
        let req = ChatRequest::new(vec![Message::new(
            Role::User,
            vec![
                Part::Text {
                    text: "Summarise this report.".into(),
                },
                Part::Document(Media::bytes("application/pdf", text.into_bytes())),
            ],
        )])
        .with_max_tokens(1_000);
        let mut table = PriceTable::default();
        table.insert("anthropic", "claude-test", ModelPrice::new(3.0, 15.0));
        // 100 pages of Anthropic PDF input cost far more than 50,000 tokens.
        let budget = Budget::builder()
            .max_tokens(50_000)
            .prices(table)
            .build()
            .unwrap();
        let inner = FunctionClient::builder("claude-test")
            .provider("anthropic")
            .respond(|_r: &ChatRequest| Ok(ChatResponse::from_text("ok")))
            .build();
        let err = BudgetClient::new(inner.clone(), budget)
            .chat(&req)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BudgetExceeded, "{err}");
        assert_eq!(inner.calls(), 0);
        let needs: u64 = err
            .message()
            .split("needs up to ")
            .nth(1)
            .and_then(|rest| rest.split(',').next())
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("{err}"));
        assert!(needs >= 100 * 4_600, "{err}");
    }
}
