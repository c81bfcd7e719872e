//! Who may ask. A request is answered only when its `Host` is the address the server was bound
//! to, `localhost` on a loopback address, or a name given with `--allow-host`: a web page that
//! rebinds its own name to this machine's address (DNS rebinding) still sends its own name, and
//! is refused. With a token (`--token`, or `LENET_SERVE_TOKEN`), every API request must carry
//! it, as `Authorization: Bearer <token>` or `?token=<token>` (which the pages add).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::state::AppState;

/// Lets through the requests this server answers (see the module's page).
pub async fn guard(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()))
        .unwrap_or_default()
        .to_string();
    if !host_allowed(&host, state.bound, &state.allowed_hosts) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "requests to {host:?} are not for this server (it answers {}); start it with \
                 --allow-host NAME to accept a name",
                state.bound
            ),
        )
        .into_response();
    }
    if let Some(token) = &state.token
        && request.uri().path().starts_with("/api/")
        && !carries(&request, token)
    {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "this server needs its token: send Authorization: Bearer <token>, or open the page \
             at the address it printed (with ?token=)",
        )
        .into_response();
    }
    next.run(request).await
}

/// Whether `host` (a `Host` header: a name or an address, with or without a port) names this
/// server, bound to `bound`.
pub fn host_allowed(host: &str, bound: SocketAddr, allowed: &[String]) -> bool {
    let name = strip_port(host).to_ascii_lowercase();
    if allowed
        .iter()
        .any(|a| strip_port(a).eq_ignore_ascii_case(&name))
    {
        return true;
    }
    let address = name.trim_start_matches('[').trim_end_matches(']');
    match address.parse::<IpAddr>() {
        // An address is no name a page can rebind; one of this machine's is this server.
        Ok(ip) => {
            bound.ip().is_unspecified()
                || ip == bound.ip()
                || (ip.is_loopback() && bound.ip().is_loopback())
        }
        Err(_) => name == "localhost" && bound.ip().is_loopback(),
    }
}

/// `host` without its `:port`, an IPv6 address keeping its brackets.
fn strip_port(host: &str) -> &str {
    if let Some(end) = host.find(']') {
        return &host[..=end];
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// Whether `request` carries `token`, in its `Authorization` header or its query.
fn carries(request: &Request, token: &str) -> bool {
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| given.trim() == token);
    let query = request
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .any(|pair| {
            pair.strip_prefix("token=")
                .is_some_and(|given| given == token)
        });
    bearer || query
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_this_servers_addresses_or_names_allowed() {
        let loopback: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let everywhere: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let allowed = ["lab.example.org".to_string()];
        for (host, bound, expected) in [
            ("127.0.0.1:8080", loopback, true),
            ("localhost:8080", loopback, true),
            ("LOCALHOST", loopback, true),
            ("[::1]:8080", loopback, true),
            ("evil.example.com:8080", loopback, false),
            ("localhost.evil.example.com", loopback, false),
            ("", loopback, false),
            ("lab.example.org:8080", loopback, true),
            ("192.168.1.20:8080", everywhere, true),
            ("localhost:8080", everywhere, false),
            ("evil.example.com", everywhere, false),
            ("10.0.0.1:8080", loopback, false),
        ] {
            assert_eq!(
                host_allowed(host, bound, &allowed),
                expected,
                "{host} on {bound}"
            );
        }
    }
}
