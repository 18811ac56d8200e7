//! The OpenAPI document of the service (`GET /openapi.json`, rendered at `/docs`).
//!
//! Generated with utoipa from the code: each route is described by the
//! `#[utoipa::path]` on its handler in [`crate::routes`] (the handler's doc comment is
//! the operation's summary and description), each body by the type the handler
//! writes ([`crate::json`], [`crate::respond::Envelope`], [`crate::error::ErrorBody`],
//! the routes' data types) or, for a body the handler reads field by field, by the
//! request type next to it. This module assembles them and adds what no single
//! handler owns:
//! - the enumerations of [`crate::json::schema`], built from the core's enums, and
//!   the statuses of the error codes, from [`Code::status`];
//! - the bearer security scheme;
//! - the answers of the layers around the handlers: 500 `INTERNAL_ERROR` on every
//!   route, 503 `SERVICE_UNAVAILABLE` on every `/api/v1` one (a backend is down, the
//!   revocation list cannot be asked, or the service is shutting down), and the `X-RateLimit-*` and
//!   `Retry-After` headers of the rate-limited routes;
//! - `GET /docs`, which utoipa-scalar serves.

use std::collections::BTreeMap;

use utoipa::openapi::path::{HttpMethod, Operation, OperationBuilder, PathItem};
use utoipa::openapi::schema::{Object, ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, Header, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

use crate::error::Code;
use crate::routes;
use crate::routes::jobs::{SortBySchema, SortOrderSchema};

/// Where the interactive documentation is served.
pub const DOCS_PATH: &str = "/docs";

/// The 401 of every authenticated route.
pub const UNAUTHENTICATED: &str = "Not authenticated: `UNAUTHORIZED` (no or an ill-formed \
`Authorization` header), `INVALID_TOKEN` (bad signature, algorithm or claims, or the user is \
gone), `TOKEN_EXPIRED` or `TOKEN_REVOKED`";

/// The 429 of every route under the per-user rate limit.
pub const RATE_LIMITED: &str = "`RATE_LIMIT_EXCEEDED`: over the per-user limit (100 per hour \
by default); `Retry-After` says when to retry";

/// The `{id}` of the job routes.
pub const JOB_ID: &str = "The job's id (a UUID; a malformed one is 400 `VALIDATION_ERROR`)";

/// The `{id}` of the execution routes.
pub const EXECUTION_ID: &str =
    "The execution's id (a UUID; a malformed one is 400 `VALIDATION_ERROR`)";

/// The name of the bearer security scheme.
const BEARER: &str = "bearer";

/// The OpenAPI document of the service.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Chronos",
        description = "A job scheduler: run jobs now, at a time, or on a cron schedule in any \
time zone, with retries, history and logs.\n\n\
Every route under `/api/v1` answers JSON. Success bodies are `{success: true, message?, data}`; \
error bodies `{error: true, message, code, timestamp, errors?}`, where `code` fixes the status \
(see `ErrorCode`) and `errors` lists the invalid fields of a `VALIDATION_ERROR`. Malformed JSON \
is 400 `INVALID_JSON`, a body over the limit (1 MiB by default) 413 `PAYLOAD_TOO_LARGE`, an \
unknown route 404 `ROUTE_NOT_FOUND`, a wrong method 405 `METHOD_NOT_ALLOWED`, and a bug 500 \
`INTERNAL_ERROR` (logged with the request id, echoed in `X-Request-Id`). Routes without a body \
accept any body and `Content-Type` and ignore them.\n\n\
Authenticated routes take `Authorization: Bearer <token>` from register or login; the jobs, \
executions, dashboard and refresh routes are rate-limited per user, register and login per \
client IP (`X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` on their answers; \
429 `RATE_LIMIT_EXCEEDED` with `Retry-After`). Another user's job or execution answers exactly \
like a missing one (404).\n\n\
Instants are written RFC 3339 UTC with milliseconds and `Z`, and read RFC 3339 with `Z` or an \
offset.",
        license(name = "MIT OR Apache-2.0"),
    ),
    paths(
        routes::auth::register,
        routes::auth::login,
        routes::auth::logout,
        routes::auth::me,
        routes::auth::refresh,
        routes::jobs::create,
        routes::jobs::list,
        routes::jobs::upcoming,
        routes::jobs::get,
        routes::jobs::update,
        routes::jobs::delete,
        routes::jobs::pause,
        routes::jobs::resume,
        routes::jobs::execute,
        routes::jobs::executions,
        routes::executions::get,
        routes::executions::logs,
        routes::dashboard::stats,
        routes::system::dashboard_health,
        routes::cron::preview,
        routes::health::handler,
        routes::system::metrics,
        routes::system::openapi,
    ),
    modifiers(&Assemble),
    tags(
        (name = "auth", description = "Accounts and tokens"),
        (name = "jobs", description = "Creating, changing and running jobs"),
        (name = "executions", description = "Attempts and their logs"),
        (name = "dashboard", description = "Figures and health for signed-in users"),
        (name = "cron", description = "Cron expression tools"),
        (name = "system", description = "Health, metrics and this document"),
    )
)]
struct ApiDoc;

/// Adds what no single handler owns (see the [module docs](self)).
struct Assemble;

impl Modify for Assemble {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "The token of `POST /api/v1/auth/register` or `POST /api/v1/auth/login` \
                         (HS256, 24 h by default).",
                    ))
                    .build(),
            ),
        );
        let enums = crate::json::schema::all().into_iter().chain([
            (SortBySchema::name(), SortBySchema::schema()),
            (SortOrderSchema::name(), SortOrderSchema::schema()),
        ]);
        for (name, schema) in enums {
            components.schemas.insert(name.into_owned(), schema);
        }
        if let Some(RefOr::T(Schema::Object(codes))) = components.schemas.get_mut("ErrorCode") {
            describe_codes(codes);
        }
        refer_to_data(&mut components.schemas);

        for (path, item) in openapi.paths.paths.iter_mut() {
            let backed = path.starts_with("/api/v1/");
            for operation in operations(item) {
                add_layer_answers(operation, backed);
            }
        }
        openapi.paths.paths.insert(
            DOCS_PATH.to_owned(),
            PathItem::new(HttpMethod::Get, docs_operation()),
        );
    }
}

/// The operations of a path item.
fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
        &mut item.query,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

/// The codes with their statuses, in the description of the `ErrorCode` schema.
fn describe_codes(codes: &mut Object) {
    let list: Vec<String> = Code::ALL
        .iter()
        .map(|code| {
            let name = serde_json::to_value(code)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            format!("- `{name}`: {}", code.status().as_u16())
        })
        .collect();
    codes.description = Some(format!(
        "What went wrong, for programs. Each code has one HTTP status:\n\n{}",
        list.join("\n")
    ));
}

/// utoipa inlines the `data` of each `Envelope_<T>` (a generic argument); `<T>` is a
/// component of its own, so refer to it instead.
fn refer_to_data(schemas: &mut BTreeMap<String, RefOr<Schema>>) {
    let names: Vec<String> = schemas.keys().cloned().collect();
    for (name, schema) in schemas.iter_mut() {
        let Some(data) = name.strip_prefix("Envelope_") else {
            continue;
        };
        if let (true, RefOr::T(Schema::Object(envelope))) =
            (names.iter().any(|n| n == data), schema)
            && let Some(property) = envelope.properties.get_mut("data")
        {
            *property = Ref::from_schema_name(data).into();
        }
    }
}

/// An error answer with the documented error body.
fn error_response(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            Content::new(Some(Ref::from_schema_name("ErrorBody"))),
        )
        .build()
}

/// An integer header.
fn header(description: &str) -> Header {
    let mut header = Header::new(ObjectBuilder::new().schema_type(Type::Integer));
    header.description = Some(description.to_owned());
    header
}

/// The answers the layers around a handler give (see the [module docs](self)); a
/// `backed` operation needs the store, the user store or the revocation list.
fn add_layer_answers(operation: &mut Operation, backed: bool) {
    let responses = &mut operation.responses.responses;
    responses.entry("500".to_owned()).or_insert_with(|| {
        error_response("`INTERNAL_ERROR`: a bug, logged with the request id; the message never leaks internals")
            .into()
    });
    if backed {
        responses.entry("503".to_owned()).or_insert_with(|| {
            error_response(
                "`SERVICE_UNAVAILABLE`: a backend the request needs (the database, Redis) is \
                 unavailable, the token's revocation cannot be checked (a revoked token must \
                 never pass), or the service is shutting down",
            )
            .into()
        });
    }
    if !responses.contains_key("429") {
        return;
    }
    let limited = "The limit of the window (absent when the limiter is unavailable: requests \
                   then pass unlimited)";
    for (status, response) in responses.iter_mut() {
        let RefOr::T(response) = response else {
            continue;
        };
        // Authentication runs before the limiter; a panic unwinds through it.
        if status == "401" || status == "500" {
            continue;
        }
        response
            .headers
            .insert("X-RateLimit-Limit".to_owned(), header(limited).into());
        response.headers.insert(
            "X-RateLimit-Remaining".to_owned(),
            header("Requests left in the window").into(),
        );
        response.headers.insert(
            "X-RateLimit-Reset".to_owned(),
            header("When the window ends (epoch seconds)").into(),
        );
        if status == "429" {
            response.headers.insert(
                "Retry-After".to_owned(),
                header("Seconds until a request is allowed again").into(),
            );
        }
    }
}

/// `GET /docs`: served by utoipa-scalar, not by a handler of this crate.
fn docs_operation() -> Operation {
    let mut operation = OperationBuilder::new()
        .tags(Some(["system"]))
        .operation_id(Some("docs"))
        .summary(Some("Interactive documentation (public)"))
        .description(Some(
            "`GET /docs`: this document rendered by Scalar (an HTML page that loads its \
             script from a CDN).",
        ))
        .response(
            "200",
            ResponseBuilder::new()
                .description("An HTML page")
                .content(
                    "text/html",
                    Content::new(Some(ObjectBuilder::new().schema_type(Type::String))),
                )
                .build(),
        )
        .build();
    add_layer_answers(&mut operation, false);
    operation
}
