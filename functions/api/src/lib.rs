//! The API as a Lambda function behind a Function URL: `lambda_http` turns each invocation (a
//! Function URL payload, the API Gateway HTTP API v2 format) into an `http` request for the
//! shared axum router and its answer back into a response payload. All routing, validation and
//! error handling live in `shared::api`; this crate only adds the request id — the Lambda
//! request id, which is also what CloudWatch logs carry, so a client quoting the `x-request-id`
//! of an answer points straight at the log lines of its invocation.

use axum::Router;
use axum::extract::Request;
use axum::middleware::map_request;
use lambda_http::RequestExt;
use lambda_http::request::RequestContext;
use shared::api::{Api, RequestId, new_request_id};

/// The router `lambda_http::run` serves: the shared API router, with each request's id taken
/// from its invocation.
pub fn router(api: Api) -> Router {
    shared::api::router(api).layer(map_request(with_invocation_id))
}

async fn with_invocation_id(mut request: Request) -> Request {
    let id = invocation_id(&request);
    request.extensions_mut().insert(RequestId(id));
    request
}

/// The Lambda request id when running under Lambda; the Function URL's own request id when a
/// payload is handed over without a Lambda context (tests); otherwise a fresh one.
fn invocation_id(request: &Request) -> String {
    if let Some(context) = request.lambda_context_ref()
        && !context.request_id.is_empty()
    {
        return context.request_id.clone();
    }
    #[allow(irrefutable_let_patterns)] // only the HTTP API v2 (Function URL) format is enabled
    if let Some(RequestContext::ApiGatewayV2(context)) = request.request_context_ref()
        && let Some(id) = &context.request_id
    {
        return id.clone();
    }
    new_request_id()
}
