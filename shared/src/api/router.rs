//! The axum router: one route per entry of [`ROUTES`], each answering only its method (`HEAD`
//! included: axum would otherwise answer it with the `GET` handler) and 405 with `Allow` to any
//! other; 404 for any other path. One middleware gives every request its id, gives every answer
//! the API's headers, and logs each request.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequestParts, Path, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{MethodFilter, MethodRouter, on};
use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use http::request::Parts;

use super::{Api, ApiError, REQUEST_ID_HEADER, ROUTES, RequestId, Route, handlers, new_request_id};

type ApiState = State<Arc<Api>>;

/// The API's router over `api`, built once per process and cloned cheaply per connection. An
/// adapter may set a [`RequestId`] extension (the Lambda request id) in a layer around it.
pub fn router(api: Api) -> Router {
    ROUTES
        .iter()
        .fold(Router::new(), |router, route| {
            router.route(route.path, endpoint(route))
        })
        .fallback(unknown_route)
        .layer(middleware::from_fn(request_scope))
        .with_state(Arc::new(api))
}

fn endpoint(route: &'static Route) -> MethodRouter<Arc<Api>> {
    // ROUTES holds only standard methods, so this cannot fail for any table that compiles and
    // passes the route tests.
    let filter = MethodFilter::try_from(route.method.clone())
        .unwrap_or_else(|_| panic!("{} {} is not a routable method", route.method, route.path));
    let allow = route.method.as_str();
    let not_allowed =
        move |id: RequestId| async move { respond(Err(ApiError::MethodNotAllowed { allow }), &id) };
    let endpoint = match route.path {
        "/health" => on(filter, health),
        "/prediction" => on(filter, prediction),
        "/scoring" => on(filter, scoring),
        "/summarystats" => on(filter, summarystats),
        "/diagnostics" => on(filter, diagnostics),
        "/drift" => on(filter, drift),
        "/risk" => on(filter, risk),
        "/clients/{corporation}" => on(filter, client),
        "/report" => on(filter, report),
        other => panic!("no handler for the route {other}"),
    };
    let endpoint = if route.method == http::Method::HEAD {
        endpoint
    } else {
        endpoint.on(MethodFilter::HEAD, not_allowed)
    };
    endpoint.fallback(not_allowed)
}

async fn health(State(api): ApiState, id: RequestId) -> Response {
    respond(handlers::health(&api, &id.0).await, &id)
}

async fn prediction(State(api): ApiState, id: RequestId, request: Request) -> Response {
    respond(handlers::prediction(&api, request, &id.0).await, &id)
}

async fn scoring(State(api): ApiState, id: RequestId) -> Response {
    respond(handlers::scoring(&api, &id.0).await, &id)
}

async fn summarystats(State(api): ApiState, id: RequestId) -> Response {
    respond(handlers::summarystats(&api, &id.0).await, &id)
}

async fn diagnostics(State(api): ApiState, id: RequestId) -> Response {
    respond(handlers::diagnostics(&api, &id.0).await, &id)
}

async fn drift(State(api): ApiState, id: RequestId) -> Response {
    respond(handlers::drift(&api, &id.0).await, &id)
}

async fn risk(State(api): ApiState, id: RequestId, request: Request) -> Response {
    let query = request.uri().query().map(str::to_string);
    respond(super::risk::risk(&api, query.as_deref(), &id.0).await, &id)
}

/// The corporation code arrives percent-decoded by axum; one that does not decode to UTF-8 is a 400.
async fn client(
    State(api): ApiState,
    id: RequestId,
    corporation: Result<Path<String>, PathRejection>,
) -> Response {
    let answer = match corporation {
        Ok(Path(corporation)) => super::risk::client(&api, &corporation, &id.0).await,
        Err(rejection) => Err(ApiError::BadRequest(format!(
            "the corporation code in the path is not usable: {}",
            rejection.body_text()
        ))),
    };
    respond(answer, &id)
}

async fn report(State(api): ApiState, id: RequestId) -> Response {
    respond(super::report::report(&api, &id.0).await, &id)
}

async fn unknown_route(id: RequestId) -> Response {
    respond(Err(ApiError::UnknownRoute), &id)
}

fn respond(answer: Result<http::Response<Bytes>, ApiError>, id: &RequestId) -> Response {
    answer
        .unwrap_or_else(|error| error.into_response(&id.0))
        .map(Body::from)
}

/// The id [`request_scope`] gave the request; never fails (a fresh id if there is none).
impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<RequestId>()
            .cloned()
            .unwrap_or_else(|| RequestId(new_request_id())))
    }
}

/// Gives the request its id (the adapter's, else a fresh one; never one the client sends), and
/// every answer the content-type (JSON unless set), no-store and request-id headers; logs the
/// request.
async fn request_scope(mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = match request.extensions().get::<RequestId>() {
        Some(id) => id.0.clone(),
        None => {
            let id = new_request_id();
            request.extensions_mut().insert(RequestId(id.clone()));
            id
        }
    };
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    // JSON unless the handler said otherwise (`/report` answers HTML).
    headers
        .entry(CONTENT_TYPE)
        .or_insert(HeaderValue::from_static("application/json"));
    // Answers describe live state; a cache in between must not serve yesterday's model.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        headers.insert(REQUEST_ID_HEADER, value);
    }
    // The path is logged, never the query string or body: they may hold client data.
    tracing::info!(
        request_id = %request_id,
        method = %method,
        path = %path,
        status = response.status().as_u16(),
        ms = crate::steps::millis(started.elapsed()),
        "request"
    );
    response
}
