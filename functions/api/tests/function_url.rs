//! The Lambda handler fed real Function URL payloads (`tests/fixtures/`, see its README), one
//! test per route and per error status, over local versioned stores in a temporary directory
//! with a deployment bootstrapped by the full process. Every answer is checked for the API's
//! invariants: JSON, the invocation's request id, and no path of the machine in the body.

use std::path::Path;

use base64::Engine;
use http::StatusCode;
use lambda_http::{Body, IntoResponse};
use serde_json::{Value, json};
use shared::api::fixture::{deployed_pipeline, local_config, open_pipeline};
use shared::api::types::{
    DiagnosticsAnswer, ErrorBody, HealthAnswer, PredictionAnswer, ScoringAnswer, SummaryStatsAnswer,
};
use shared::api::{Api, ApiLimits};
use shared::records::{DiagnosticsRecord, names};
use shared::steps::deployment::deployed_model;
use shared::steps::diagnostics::{deployed_predictions, summarize_compiled_data};
use shared::steps::scoring::{evaluate, load_test_data};
use tower::ServiceExt;

const FUNCTION_URL: &str = include_str!("fixtures/function-url-request.json");
const IAM_REQUEST: &str = include_str!("fixtures/apigw-v2-request-iam.json");
/// `requestContext.requestId` of each fixture.
const FUNCTION_URL_REQUEST_ID: &str = "MIZRNhJtIAMEMDw=";
const IAM_REQUEST_ID: &str = "id";

fn seed_data() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data")
}

/// An API over a freshly bootstrapped deployment in `dir`.
async fn deployed_api(dir: &Path, limits: ApiLimits) -> Api {
    let (_, pipeline) = deployed_pipeline(dir, &seed_data()).await.unwrap();
    Api::new(pipeline, limits)
}

/// An API over configured but empty locations (nothing ingested, nothing deployed).
async fn empty_api(dir: &Path) -> Api {
    let config = local_config(dir, &seed_data()).unwrap();
    Api::new(open_pipeline(&config).await.unwrap(), ApiLimits::default())
}

/// A request: the fixture with its method, path, query, headers and body replaced.
struct Event {
    fixture: &'static str,
    method: &'static str,
    path: String,
    query: String,
    headers: Vec<(&'static str, String)>,
    body: Option<Vec<u8>>,
    base64: bool,
}

impl Event {
    fn new(method: &'static str, path: &str) -> Self {
        Event {
            fixture: FUNCTION_URL,
            method,
            path: path.to_string(),
            query: String::new(),
            headers: Vec::new(),
            body: None,
            base64: false,
        }
    }

    fn json(mut self, body: Value) -> Self {
        self.headers
            .push(("content-type", "application/json".to_string()));
        self.body = Some(body.to_string().into_bytes());
        self
    }

    fn csv(mut self, body: &str) -> Self {
        self.headers.push(("content-type", "text/csv".to_string()));
        self.body = Some(body.as_bytes().to_vec());
        self
    }

    fn to_request(&self) -> lambda_http::Request {
        let mut event: Value = serde_json::from_str(self.fixture).unwrap();
        event["rawPath"] = json!(self.path);
        event["rawQueryString"] = json!(self.query);
        event
            .as_object_mut()
            .unwrap()
            .remove("queryStringParameters");
        event["requestContext"]["http"]["method"] = json!(self.method);
        event["requestContext"]["http"]["path"] = json!(self.path);
        for (name, value) in &self.headers {
            event["headers"][*name] = json!(value);
        }
        match &self.body {
            Some(body) if self.base64 => {
                event["body"] = json!(base64::engine::general_purpose::STANDARD.encode(body));
                event["isBase64Encoded"] = json!(true);
            }
            Some(body) => {
                event["body"] = json!(String::from_utf8(body.clone()).unwrap());
                event["isBase64Encoded"] = json!(false);
            }
            None => {
                event.as_object_mut().unwrap().remove("body");
            }
        }
        lambda_http::request::from_str(&event.to_string()).unwrap()
    }
}

/// What the handler answered.
struct Answered {
    status: StatusCode,
    headers: http::HeaderMap,
    body: Value,
}

impl Answered {
    fn error(&self) -> ErrorBody {
        serde_json::from_value(self.body.clone()).unwrap()
    }

    fn parse<T: serde::de::DeserializeOwned>(&self) -> T {
        serde_json::from_value(self.body.clone()).unwrap()
    }
}

/// What `lambda_http::run` does with one invocation: the function's router answers the request,
/// and the answer becomes a response payload body (text for JSON).
async fn invoke(api: &Api, request: lambda_http::Request) -> lambda_http::Response<Body> {
    let response = api::router(api.clone()).oneshot(request).await.unwrap();
    response.into_response().await
}

async fn call(api: &Api, root: &Path, event: Event) -> Answered {
    let expected_id = if event.fixture == IAM_REQUEST {
        IAM_REQUEST_ID
    } else {
        FUNCTION_URL_REQUEST_ID
    };
    // An answer may quote what the client sent; only a path the client did not send is a leak.
    let root = root.to_str().unwrap();
    let sent_root = event
        .body
        .as_ref()
        .is_some_and(|b| String::from_utf8_lossy(b).contains(root));
    let response = invoke(api, event.to_request()).await;
    let (parts, body) = response.into_parts();
    let Body::Text(text) = body else {
        panic!("answer body is not text: {body:?}")
    };
    assert_eq!(parts.headers["content-type"], "application/json");
    assert_eq!(parts.headers["cache-control"], "no-store");
    assert_eq!(parts.headers["x-request-id"], expected_id);
    assert!(
        sent_root || !text.contains(root),
        "the answer shows a path of the machine: {text}"
    );
    let body: Value = serde_json::from_str(&text).unwrap();
    if !parts.status.is_success() {
        let error: ErrorBody = serde_json::from_value(body.clone()).unwrap();
        assert_eq!(error.request_id, expected_id);
        assert!(!error.message.is_empty());
    } else {
        assert_eq!(body["request_id"], expected_id);
    }
    Answered {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

#[test]
fn the_fixtures_are_function_url_requests() {
    let request = Event::new("GET", "/health").to_request();
    assert_eq!(
        request.uri().to_string(),
        "https://id.lambda-url.eu-west-2.on.aws/health"
    );
    let mut iam = Event::new("GET", "/health");
    iam.fixture = IAM_REQUEST;
    assert_eq!(iam.to_request().uri().path(), "/health");
}

#[tokio::test]
async fn health_reports_the_deployed_model() {
    let dir = tempfile::tempdir().unwrap();
    let api = deployed_api(dir.path(), ApiLimits::default()).await;
    let answer = call(&api, dir.path(), Event::new("GET", "/health")).await;
    assert_eq!(answer.status, StatusCode::OK);
    let health: HealthAnswer = answer.parse();
    let (deployment, _) = deployed_model(api.pipeline()).await.unwrap();
    assert_eq!(health.status, "ok");
    assert!(health.model_deployed);
    assert_eq!(
        health.model.unwrap().version_id,
        deployment.model.version_id
    );

    // The IAM-authorised form of the payload routes the same way.
    let mut iam = Event::new("GET", "/health");
    iam.fixture = IAM_REQUEST;
    assert_eq!(call(&api, dir.path(), iam).await.status, StatusCode::OK);
}

#[tokio::test]
async fn prediction_of_a_stored_data_set_matches_the_deployed_model() {
    let dir = tempfile::tempdir().unwrap();
    let api = deployed_api(dir.path(), ApiLimits::default()).await;
    let expected = deployed_predictions(api.pipeline(), None).await.unwrap();
    for request in [
        json!({"dataset": "testdata.csv"}),
        json!({"location": "test_data", "key": "testdata.csv"}),
        json!({"location": "test_data"}),
        json!({}),
    ] {
        let answer = call(
            &api,
            dir.path(),
            Event::new("POST", "/prediction").json(request.clone()),
        )
        .await;
        assert_eq!(answer.status, StatusCode::OK, "{request}: {}", answer.body);
        let prediction: PredictionAnswer = answer.parse();
        assert_eq!(prediction.rows_predicted, 5);
        assert_eq!(prediction.rows_rejected, 0);
        assert_eq!(prediction.model.version_id, expected.model.version_id);
        assert_eq!(prediction.data.len(), 1);
        assert_eq!(prediction.data[0].location, "test_data");
        assert_eq!(prediction.data[0].key, "testdata.csv");
        let got: Vec<_> = prediction
            .predictions
            .iter()
            .map(|p| (p.corporation.clone(), p.predicted, p.probability, p.actual))
            .collect();
        let want: Vec<_> = expected
            .rows
            .iter()
            .map(|r| (r.corporation.clone(), r.predicted, r.probability, r.actual))
            .collect();
        assert_eq!(got, want);
    }

    // A source file, by location and key.
    let answer = call(
        &api,
        dir.path(),
        Event::new("POST", "/prediction")
            .json(json!({"location": "source_data", "key": "dataset3.csv"})),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let prediction: PredictionAnswer = answer.parse();
    assert_eq!(prediction.data[0].location, "source_data");
    assert!(prediction.rows_predicted > 0);
}

#[tokio::test]
async fn prediction_of_csv_in_the_body_reports_bad_rows_and_predicts_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let api = deployed_api(dir.path(), ApiLimits::default()).await;
    let csv = "corporation,lastmonth_activity,lastyear_activity,number_of_employees,exited\n\
               abcd,10,200,5,\n\
               efgh,ten,200,5,0\n\
               ijkl,3000,9000,40,1\n";
    for base64 in [false, true] {
        let mut event = Event::new("POST", "/prediction").csv(csv);
        event.base64 = base64;
        let answer = call(&api, dir.path(), event).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        let prediction: PredictionAnswer = answer.parse();
        assert_eq!(prediction.rows_predicted, 2);
        assert_eq!(prediction.rows_rejected, 1);
        let corporations: Vec<_> = prediction
            .predictions
            .iter()
            .map(|p| p.corporation.as_deref().unwrap())
            .collect();
        assert_eq!(corporations, ["abcd", "ijkl"]);
        assert_eq!(prediction.predictions[0].actual, None);
        assert_eq!(prediction.predictions[1].actual, Some(1));
        let rejected = &prediction.rejected_rows[0];
        assert_eq!(rejected.line, 3);
        assert_eq!(rejected.column.as_deref(), Some("lastmonth_activity"));
        assert_eq!(rejected.kind, "not_a_number");
        assert_eq!(prediction.data[0].location, "request_body");
        for p in &prediction.predictions {
            assert!((0.0..=1.0).contains(&p.probability));
            assert_eq!(p.predicted, u8::from(p.probability >= prediction.threshold));
        }
    }
}

#[tokio::test]
async fn scoring_summarystats_and_diagnostics_match_the_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let api = deployed_api(dir.path(), ApiLimits::default()).await;
    let pipeline = api.pipeline();

    let answer = call(&api, dir.path(), Event::new("GET", "/scoring")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let scoring: ScoringAnswer = answer.parse();
    let (_, model) = deployed_model(pipeline).await.unwrap();
    let test = load_test_data(pipeline).await.unwrap();
    let evaluation = evaluate(&model, test.batches).await.unwrap();
    assert_eq!(scoring.metrics, evaluation.metrics);
    assert_eq!(scoring.f1, evaluation.metrics.f1);
    assert_eq!(scoring.data[0].key, "testdata.csv");

    let answer = call(&api, dir.path(), Event::new("GET", "/summarystats")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let stats: SummaryStatsAnswer = answer.parse();
    let (_, summary) = summarize_compiled_data(pipeline).await.unwrap();
    assert_eq!(stats.rows, summary.rows);
    let columns: Vec<_> = stats.columns.iter().map(|c| c.column.as_str()).collect();
    assert_eq!(
        columns,
        [
            "lastmonth_activity",
            "lastyear_activity",
            "number_of_employees",
            "exited"
        ]
    );
    for column in &stats.columns {
        assert_eq!(Some(column), summary.column(&column.column));
    }
    assert_eq!(stats.data.location, "compiled_data");
    // The compiled data's version is its newest part.
    assert!(
        stats.data.key.starts_with("parts/ingested_month="),
        "{}",
        stats.data.key
    );

    let answer = call(&api, dir.path(), Event::new("GET", "/diagnostics")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let diagnostics: DiagnosticsAnswer = answer.parse();
    let (_, record) = pipeline
        .locations
        .reports
        .get_json::<DiagnosticsRecord>(names::DIAGNOSTICS, "diagnostics", None)
        .await
        .unwrap();
    assert_eq!(diagnostics.generated_at, record.generated_at);
    assert!(diagnostics.current);
    assert!(diagnostics.age_seconds >= 0.0);
    assert_eq!(diagnostics.missing_values, record.missing_values);
    assert_eq!(diagnostics.dependencies, record.dependencies);
    let timings = diagnostics.timings.unwrap();
    assert_eq!(
        timings.ingestion_ms,
        record.timings.as_ref().unwrap().ingestion_ms
    );
    assert!(!diagnostics.timing_failed);
}

#[tokio::test]
async fn every_escape_from_the_data_locations_is_a_400() {
    let dir = tempfile::tempdir().unwrap();
    let api = deployed_api(dir.path(), ApiLimits::default()).await;
    let escapes = [
        json!({"dataset": "../store/production/deployment.json"}),
        json!({"dataset": "../source/dataset3.csv"}),
        json!({"location": "test_data", "key": "../../etc/passwd.csv"}),
        json!({"location": "test_data", "key": "/etc/passwd.csv"}),
        json!({"location": "test_data", "key": dir.path().join("testdata/testdata.csv")}),
        json!({"location": "s3://other-bucket", "key": "data.csv"}),
        json!({"dataset": "s3://other-bucket/data.csv"}),
        json!({"dataset": "..%2Fstore%2Fproduction%2Fx.csv"}),
        json!({"dataset": "%2e%2e/source/dataset3.csv"}),
        json!({"location": "file:///etc", "key": "passwd.csv"}),
        json!({"dataset": "file:///etc/passwd.csv"}),
        json!({"location": "production"}),
        json!({"dataset": ".versions/testdata.csv"}),
    ];
    for request in escapes {
        let answer = call(
            &api,
            dir.path(),
            Event::new("POST", "/prediction").json(request.clone()),
        )
        .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{request}");
        let error = answer.error();
        assert_eq!(error.error, "bad_request");
        assert!(
            error.message.contains("refused") || error.message.contains("unknown location"),
            "{request}: {}",
            error.message
        );
    }
    // Malformed requests are 400s too.
    for body in [json!({"datset": "testdata.csv"}), json!([1, 2])] {
        let answer = call(
            &api,
            dir.path(),
            Event::new("POST", "/prediction").json(body),
        )
        .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405_with_allow() {
    let dir = tempfile::tempdir().unwrap();
    let api = empty_api(dir.path()).await;
    for path in [
        "/",
        "/predictions",
        "/prediction/extra",
        "/admin",
        "/%2e%2e/etc/passwd",
    ] {
        let answer = call(&api, dir.path(), Event::new("GET", path)).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(answer.error().error, "not_found");
    }
    for (method, path, allow) in [
        ("GET", "/prediction", "POST"),
        ("POST", "/scoring", "GET"),
        ("DELETE", "/summarystats", "GET"),
        ("PUT", "/diagnostics", "GET"),
        ("POST", "/health", "GET"),
    ] {
        let answer = call(&api, dir.path(), Event::new(method, path)).await;
        assert_eq!(
            answer.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        assert_eq!(answer.headers["allow"], allow);
        assert_eq!(answer.error().error, "method_not_allowed");
    }
}

#[tokio::test]
async fn a_missing_data_set_is_404() {
    let dir = tempfile::tempdir().unwrap();
    let api = deployed_api(dir.path(), ApiLimits::default()).await;
    let answer = call(
        &api,
        dir.path(),
        Event::new("POST", "/prediction").json(json!({"dataset": "nosuchfile.csv"})),
    )
    .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    let error = answer.error();
    assert_eq!(error.error, "dataset_not_found");
    assert!(error.message.contains("nosuchfile.csv") && error.message.contains("test_data"));
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let dir = tempfile::tempdir().unwrap();
    let limits = ApiLimits {
        max_body_bytes: 64,
        ..ApiLimits::default()
    };
    let api = deployed_api(dir.path(), limits).await;
    let big = format!(
        "corporation,lastmonth_activity,lastyear_activity,number_of_employees,exited\n{}",
        "abcd,1,2,3,0\n".repeat(10)
    );
    let answer = call(
        &api,
        dir.path(),
        Event::new("POST", "/prediction").csv(&big),
    )
    .await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(answer.error().error, "payload_too_large");
    assert!(answer.error().message.contains("64 bytes"));
}

#[tokio::test]
async fn a_body_that_is_neither_json_nor_csv_is_415() {
    let dir = tempfile::tempdir().unwrap();
    let api = deployed_api(dir.path(), ApiLimits::default()).await;
    let mut event = Event::new("POST", "/prediction");
    event.headers.push((
        "content-type",
        "application/x-www-form-urlencoded".to_string(),
    ));
    event.body = Some(b"dataset=testdata.csv".to_vec());
    let answer = call(&api, dir.path(), event).await;
    assert_eq!(answer.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(answer.error().error, "unsupported_media_type");
}

#[tokio::test]
async fn data_that_is_not_client_csv_is_422() {
    let dir = tempfile::tempdir().unwrap();
    let api = deployed_api(dir.path(), ApiLimits::default()).await;
    let answer = call(
        &api,
        dir.path(),
        Event::new("POST", "/prediction").csv("a;b;c\n1;2;3\n"),
    )
    .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    let error = answer.error();
    assert_eq!(error.error, "unreadable_data");
    assert!(error.message.contains("';'"), "{}", error.message);

    let limits = ApiLimits {
        max_prediction_rows: 3,
        ..ApiLimits::default()
    };
    let api = Api::new(api.pipeline().clone(), limits);
    let answer = call(
        &api,
        dir.path(),
        Event::new("POST", "/prediction").json(json!({"dataset": "testdata.csv"})),
    )
    .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer.error().error, "too_many_rows");

    let limits = ApiLimits {
        max_answer_bytes: 500,
        ..ApiLimits::default()
    };
    let api = Api::new(api.pipeline().clone(), limits);
    let answer = call(
        &api,
        dir.path(),
        Event::new("POST", "/prediction").json(json!({"dataset": "testdata.csv"})),
    )
    .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer.error().error, "answer_too_large");
}

#[tokio::test]
async fn nothing_deployed_yet_is_503_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let api = empty_api(dir.path()).await;
    for (event, code) in [
        (
            Event::new("POST", "/prediction").json(json!({"dataset": "testdata.csv"})),
            "no_deployment",
        ),
        (Event::new("GET", "/scoring"), "no_deployment"),
        (Event::new("GET", "/summarystats"), "no_compiled_data"),
        (Event::new("GET", "/diagnostics"), "no_diagnostics"),
    ] {
        let path = event.path.clone();
        let answer = call(&api, dir.path(), event).await;
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
        let error = answer.error();
        assert_eq!(error.error, code, "{path}");
        assert!(error.message.contains("run"), "{path}: {}", error.message);
    }
    // Health answers: the service is up, nothing is deployed.
    let answer = call(&api, dir.path(), Event::new("GET", "/health")).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(!answer.parse::<HealthAnswer>().model_deployed);
}

#[tokio::test]
async fn a_broken_deployment_is_500_without_internals() {
    let dir = tempfile::tempdir().unwrap();
    let api = deployed_api(dir.path(), ApiLimits::default()).await;
    std::fs::write(
        dir.path().join("store/production/deployment.json"),
        b"{ not json",
    )
    .unwrap();
    for event in [
        Event::new("GET", "/scoring"),
        Event::new("POST", "/prediction").json(json!({})),
    ] {
        let answer = call(&api, dir.path(), event).await;
        assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
        let error = answer.error();
        assert_eq!(error.error, "internal");
        assert!(
            !error.message.contains("deployment.json") && !error.message.contains("file://"),
            "{}",
            error.message
        );
    }
    // Health cannot read the deployment either: 503, also without internals.
    let answer = call(&api, dir.path(), Event::new("GET", "/health")).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.error().error, "unavailable");
}

#[tokio::test]
async fn the_example_events_for_cargo_lambda_invoke_all_answer_200() {
    let dir = tempfile::tempdir().unwrap();
    let api = deployed_api(dir.path(), ApiLimits::default()).await;
    let events = Path::new(env!("CARGO_MANIFEST_DIR")).join("events");
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(&events).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let request = lambda_http::request::from_str(&text).unwrap();
        let route = request.uri().path().to_string();
        let response = invoke(&api, request).await;
        assert_eq!(response.status(), StatusCode::OK, "{}", path.display());
        seen.push(route);
    }
    seen.sort();
    seen.dedup();
    assert_eq!(
        seen,
        [
            "/diagnostics",
            "/health",
            "/prediction",
            "/scoring",
            "/summarystats"
        ]
    );
}

#[tokio::test]
async fn under_lambda_the_request_id_is_the_invocations_not_the_clients() {
    use lambda_http::RequestExt;

    let dir = tempfile::tempdir().unwrap();
    let api = empty_api(dir.path()).await;
    let mut event = Event::new("GET", "/health");
    event
        .headers
        .push(("x-request-id", "chosen-by-the-client".to_string()));
    let mut context = lambda_http::Context::default();
    context.request_id = "lambda-invocation-1".to_string();
    let request = event.to_request().with_lambda_context(context);
    let response = invoke(&api, request).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-request-id"], "lambda-invocation-1");
    let Body::Text(text) = response.body() else {
        panic!("answer body is not text")
    };
    let health: HealthAnswer = serde_json::from_str(text).unwrap();
    assert_eq!(health.request_id, "lambda-invocation-1");

    // Without a Lambda context (the other tests), a client's header is ignored just the same.
    let answer = call(&api, dir.path(), {
        let mut event = Event::new("GET", "/health");
        event
            .headers
            .push(("x-request-id", "chosen-by-the-client".to_string()));
        event
    })
    .await;
    assert_eq!(answer.status, StatusCode::OK);
}

#[tokio::test]
async fn head_and_other_methods_on_a_get_route_are_405_with_allow() {
    let dir = tempfile::tempdir().unwrap();
    let api = empty_api(dir.path()).await;
    for (method, path, allow) in [
        ("HEAD", "/health", "GET"),
        ("HEAD", "/scoring", "GET"),
        ("OPTIONS", "/health", "GET"),
        ("HEAD", "/prediction", "POST"),
        ("PATCH", "/prediction", "POST"),
    ] {
        let response = invoke(&api, Event::new(method, path).to_request()).await;
        assert_eq!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        assert_eq!(response.headers()["allow"], allow, "{method} {path}");
        assert_eq!(response.headers()["x-request-id"], FUNCTION_URL_REQUEST_ID);
    }
}

/// The latest risk list the deployment's full process wrote.
async fn latest_list(api: &Api) -> shared::risklist::RiskList {
    shared::risklist::load_latest(&api.pipeline().locations.reports)
        .await
        .unwrap()
        .expect("the bootstrap writes a risk list")
}

fn query(path: &str, query: &str) -> Event {
    let mut event = Event::new("GET", path);
    event.query = query.to_string();
    event
}

#[tokio::test]
async fn risk_pages_through_the_latest_list_most_at_risk_first() {
    use shared::api::risk::RiskAnswer;
    let dir = tempfile::tempdir().unwrap();
    let api = deployed_api(dir.path(), ApiLimits::default()).await;
    let list = latest_list(&api).await;
    let ranked: Vec<_> = list.ranked().cloned().collect();
    assert!(ranked.len() > 3, "the seed has more than 3 active clients");

    let answer = call(&api, dir.path(), query("/risk", "top=3")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let first: RiskAnswer = answer.parse();
    assert_eq!(first.clients, ranked[..3]);
    assert_eq!(first.total, ranked.len() as u64);
    assert_eq!(first.next_offset, Some(3));
    assert_eq!(first.list.run_id, list.meta.run_id);
    let (deployment, model) = deployed_model(api.pipeline()).await.unwrap();
    assert_eq!(first.list.model_version, deployment.model.version_id);
    assert_eq!(first.list.threshold, model.threshold());

    let answer = call(&api, dir.path(), query("/risk", "top=500&offset=3")).await;
    let rest: RiskAnswer = answer.parse();
    assert_eq!(rest.clients, ranked[3..]);
    assert_eq!(rest.next_offset, None);

    for band in ["high", "watch", "low"] {
        let answer = call(&api, dir.path(), query("/risk", &format!("band={band}"))).await;
        assert_eq!(answer.status, StatusCode::OK);
        let page: RiskAnswer = answer.parse();
        let expected: Vec<_> = ranked
            .iter()
            .filter(|e| e.band.map(|b| b.name()) == Some(band))
            .take(20)
            .cloned()
            .collect();
        assert_eq!(page.clients, expected, "{band}");
    }
}

#[tokio::test]
async fn a_client_answers_with_its_drivers_and_its_earlier_lists() {
    use shared::api::risk::ClientAnswer;
    let dir = tempfile::tempdir().unwrap();
    let api = deployed_api(dir.path(), ApiLimits::default()).await;
    let first = latest_list(&api).await;
    // A second list, written on demand, so the first is an earlier one.
    shared::risklist::write_risk_list(
        api.pipeline(),
        "run-on-demand",
        &shared::risklist::RiskBands::default(),
    )
    .await
    .unwrap();
    let top = first.ranked().next().unwrap().clone();
    let answer = call(
        &api,
        dir.path(),
        Event::new("GET", &format!("/clients/{}", top.corporation)),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let client: ClientAnswer = answer.parse();
    assert_eq!(client.list.run_id, "run-on-demand");
    assert_eq!(client.client.corporation, top.corporation);
    assert_eq!(client.client.probability, top.probability);
    assert_eq!(client.client.drivers, top.drivers);
    assert_eq!(client.client.probability_change, Some(0.0));
    assert_eq!(client.history.len(), 1);
    assert_eq!(client.history[0].run_id, first.meta.run_id);
    assert_eq!(client.history[0].rank, Some(1));

    // A client that already left is marked, not ranked.
    let gone = first
        .entries
        .iter()
        .find(|e| e.rank.is_none())
        .expect("the seed has clients that left");
    let answer = call(
        &api,
        dir.path(),
        Event::new("GET", &format!("/clients/{}", gone.corporation)),
    )
    .await;
    let client: ClientAnswer = answer.parse();
    assert_eq!(client.client.status, shared::risklist::ClientStatus::Exited);
    assert_eq!(client.client.rank, None);
}

#[tokio::test]
async fn unknown_clients_are_404_and_bad_parameters_400() {
    let dir = tempfile::tempdir().unwrap();
    let api = deployed_api(dir.path(), ApiLimits::default()).await;
    // A code that looks like a path is only ever compared with the list's codes.
    for path in [
        "/clients/nosuchclient",
        "/clients/..%2F..%2Fproduction%2Fdeployment.json",
        "/clients/s3:%2F%2Fother-bucket%2Fx",
    ] {
        let answer = call(&api, dir.path(), Event::new("GET", path)).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(answer.error().error, "client_not_found", "{path}");
    }
    for path in ["/clients/%00", "/clients/a%0Ab", "/clients/%FF%FE"] {
        let answer = call(&api, dir.path(), Event::new("GET", path)).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(answer.error().error, "bad_request");
    }
    let long = format!("/clients/{}", "x".repeat(300));
    let answer = call(&api, dir.path(), Event::new("GET", &long)).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    for bad in [
        "top=0",
        "top=501",
        "top=-3",
        "top=many",
        "offset=x",
        "band=severe",
        "limit=5",
        "top=5&top=6",
    ] {
        let answer = call(&api, dir.path(), query("/risk", bad)).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{bad}");
        let error = answer.error();
        assert_eq!(error.error, "bad_request", "{bad}");
        assert!(!error.message.is_empty());
    }
    // Nothing written yet: 503 with what to do.
    let empty_dir = tempfile::tempdir().unwrap();
    let empty = empty_api(empty_dir.path()).await;
    for path in ["/risk", "/clients/abcd"] {
        let answer = call(&empty, empty_dir.path(), Event::new("GET", path)).await;
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert_eq!(answer.error().error, "no_risk_list");
    }
}
