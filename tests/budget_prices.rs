//! A budget with a cost cap over the real OpenAI-compatible clients of providers whose
//! prices are easy to get wrong: Together (per-token prices), Ollama and vLLM (self-hosted,
//! priced at zero on purpose) and a generic `openai-compatible` endpoint (no price, refused).

use switchboard::{
    create_client_with, Budget, BudgetClient, ChatClient, ChatRequest, ClientOptions, Cost,
    DynClient, ErrorKind, PriceTable,
};
use switchboard_testkit::fixture;
use switchboard_testkit::wiremock::matchers::{method, path};
use switchboard_testkit::wiremock::{Mock, MockServer, ResponseTemplate};

/// The fixture's usage: 1,117 prompt tokens (1,024 of them cached) and 22 completion tokens.
const FIXTURE_TOKENS: u64 = 1117 + 22;

async fn upstream() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(fixture("openai/chat_text.json"), "application/json"),
        )
        .mount(&server)
        .await;
    server
}

fn client(spec: &str, server: &MockServer) -> DynClient {
    let options = ClientOptions::new()
        .retry(None)
        .env(|_| None)
        .api_key("test-key-not-real")
        .base_url(format!("{}/v1", server.uri()));
    create_client_with(spec, &options).unwrap_or_else(|e| panic!("{spec}: {e}"))
}

/// A budget capped at one US cent, priced from the embedded table.
fn one_cent() -> Budget {
    Budget::builder().max_cost_usd(0.01).build().unwrap()
}

fn hello() -> ChatRequest {
    ChatRequest::user("hello").with_max_tokens(100)
}

#[tokio::test]
async fn a_cost_cap_accepts_and_meters_each_priced_together_model() {
    let models: Vec<String> = PriceTable::embedded()
        .listing(&["together".to_owned()])
        .into_iter()
        .map(|m| m.model)
        .collect();
    assert!(models.len() >= 3, "{models:?}");
    for model in &models {
        let server = upstream().await;
        let budget = one_cent();
        let spec = format!("together:{model}");
        let client = BudgetClient::new(client(&spec, &server), budget.clone());
        let r = client
            .chat(&hello())
            .await
            .unwrap_or_else(|e| panic!("{spec}: {e}"));
        assert!(!r.text().is_empty(), "{spec}");
        let price = PriceTable::embedded().price("together", model).unwrap();
        assert!(price.input > 0.0 && price.output > 0.0, "{spec}");
        assert_eq!(budget.spent(), price.cost(&r.usage), "{spec}");
        assert!(budget.spent() > Cost::ZERO, "{spec}: metered as free");
        assert_eq!(server.received_requests().await.unwrap().len(), 1, "{spec}");
    }
}

#[tokio::test]
async fn llama_3_3_70b_turbo_on_together_costs_its_listed_price() {
    let server = upstream().await;
    let budget = one_cent();
    let client = BudgetClient::new(
        client("together:meta-llama/Llama-3.3-70B-Instruct-Turbo", &server),
        budget.clone(),
    );
    client.chat(&hello()).await.unwrap();
    // $1.04 per million tokens, in and out: 1,139 tokens.
    assert_eq!(budget.spent(), Cost::from_nanos(FIXTURE_TOKENS * 1040));
}

#[tokio::test]
async fn self_hosted_servers_are_metered_at_zero_under_a_cost_cap() {
    for spec in ["ollama:llama3.2:3b", "vllm:Qwen/Qwen2.5-7B-Instruct"] {
        let server = upstream().await;
        let budget = Budget::builder()
            .max_cost_usd(0.0)
            .max_tokens(10_000)
            .build()
            .unwrap();
        let client = BudgetClient::new(client(spec, &server), budget.clone());
        client
            .chat(&hello())
            .await
            .unwrap_or_else(|e| panic!("{spec}: {e}"));
        assert_eq!(budget.spent(), Cost::ZERO, "{spec}");
        // The other limits still count the call.
        assert_eq!(budget.tokens(), FIXTURE_TOKENS, "{spec}");
        let provider = spec.split(':').next().unwrap();
        let price = PriceTable::embedded().price(provider, "any-model").unwrap();
        assert_eq!(
            price.note.as_deref(),
            Some("self-hosted: no per-token charge"),
            "{spec}"
        );
        assert_eq!(server.received_requests().await.unwrap().len(), 1, "{spec}");
    }
}

#[tokio::test]
async fn an_openai_compatible_endpoint_is_refused_with_how_to_price_it() {
    let server = upstream().await;
    let client = BudgetClient::new(client("openai-compatible:my-model", &server), one_cent());
    let err = client.chat(&hello()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.message().contains("can be any server"), "{err}");
    assert!(
        err.fix().unwrap().contains("with_overrides_file"),
        "{:?}",
        err.fix()
    );
    assert!(
        server.received_requests().await.unwrap().is_empty(),
        "a refused call sends nothing"
    );
}
