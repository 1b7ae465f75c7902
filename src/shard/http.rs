//! The plain HTTP endpoints served on the WebSocket port.

use crate::metrics::{render_prometheus, render_stats_json};
use crate::protocol::handshake::{http_response, json_error_response, Request, Route};
use crate::settings::Dashboard;

use super::Shard;

impl Shard {
    /// The full HTTP response for a non-WebSocket route.
    pub fn http_response(&self, req: &Request, route: Route) -> Vec<u8> {
        if !req.method_is_get {
            return json_error_response(405, "method_not_allowed", "only GET is served here");
        }
        let instance = &self.instance;
        let server_id = &instance.settings.server_id;
        match route {
            Route::Health => http_response(200, "application/json", br#"{"status":"ok"}"#),
            Route::Ready if instance.is_ready() => {
                http_response(200, "application/json", br#"{"status":"ready"}"#)
            }
            Route::Ready => http_response(503, "application/json", br#"{"status":"not_ready"}"#),
            Route::Metrics => {
                let body = render_prometheus(&instance.metrics.snapshot(), server_id);
                http_response(
                    200,
                    "text/plain; version=0.0.4; charset=utf-8",
                    body.as_bytes(),
                )
            }
            Route::Stats if instance.settings.dashboard != Dashboard::Off => {
                let body = render_stats_json(&instance.metrics.snapshot(), server_id);
                http_response(200, "application/json", body.as_bytes())
            }
            Route::Index if instance.settings.dashboard != Dashboard::Off => {
                crate::web::index_response(instance.settings.dashboard)
            }
            // Served in every DASHBOARD mode: apps depend on it, not the demo.
            Route::ClientLibrary => crate::web::client_library_response(&req.path),
            _ => json_error_response(404, "not_found", "no such endpoint"),
        }
    }
}
