//! The root context: one per plugin configuration per worker VM.

use super::abi::LogLevel;
use super::filter::Filter;
use super::host::Host;
use super::jwks::{self, Callout, TICK_MS};
use super::plugin::Plugin;
use crate::core::config::Policy;
use std::rc::Rc;
use std::time::Duration;

/// Tick period of a root context with MCP and no remote JWKS: only `mcp::check_held`
/// runs on it, and only until the host has shown that it passes bodies on.
const MCP_TICK_MS: u64 = 1000;

pub(crate) struct Root<H> {
    context_id: u32,
    /// Given to the plugin once configured (a copy: `ProxyWasmHost` is zero-sized).
    host: H,
    plugin: Option<Rc<Plugin<H>>>,
    callouts: Vec<Callout>,
}

impl<H: Host + Clone + 'static> Root<H> {
    pub(crate) fn new(context_id: u32, host: H) -> Root<H> {
        Root {
            context_id,
            host,
            plugin: None,
            callouts: Vec::new(),
        }
    }

    /// The request context for `context_id`; `None` while unconfigured (`exports` then
    /// refuses the request).
    pub(crate) fn filter(&self, context_id: u32) -> Option<Filter<H>> {
        let plugin = self.plugin.as_ref()?;
        Some(Filter::new(context_id, Rc::clone(plugin)))
    }

    /// The answer to one of this root's HTTP calls (a JWKS fetch).
    pub(crate) fn on_http_call_response(
        &mut self,
        token_id: u32,
        _num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        if let Some(plugin) = &self.plugin {
            jwks::on_response(
                plugin,
                &mut self.callouts,
                token_id,
                body_size,
                self.context_id,
            );
        }
    }

    /// Loads the plugin configuration; `false` refuses the plugin (fail closed).
    pub(crate) fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let host = &self.host;
        let Some(bytes) = host.plugin_configuration() else {
            host.log(
                LogLevel::Critical,
                "actwarden: configuration: missing (set the filter's `configuration` / the WasmPlugin's `pluginConfig`)",
            );
            return false;
        };
        let policy = match Policy::from_plugin_config(&bytes) {
            Ok(policy) => policy,
            Err(message) => {
                // Fail closed: Envoy refuses the plugin, so no request passes unchecked.
                host.log(
                    LogLevel::Critical,
                    &format!("actwarden: configuration: {message}"),
                );
                return false;
            }
        };
        for note in policy.notes() {
            host.log(LogLevel::Warn, &format!("actwarden: configuration: {note}"));
        }
        let plugin = Plugin::new(policy, host.clone(), &bytes);
        for remote in &plugin.remotes {
            jwks::ensure_shared(host, remote);
        }
        super::replay::ensure_shards(host, &plugin.policy);
        host.log(
            LogLevel::Info,
            &format!(
                "actwarden: configured ({} providers, {} rules, {} remote jwks)",
                plugin.policy.providers.len(),
                plugin.policy.rules.len(),
                plugin.remotes.len()
            ),
        );
        // Ticks: JWKS fetches start on them (not here: Envoy cannot dispatch calls while
        // the plugin is being configured); MCP messages held for a body that never comes
        // are answered on them (`mcp::check_held`).
        let tick_ms = if !plugin.remotes.is_empty() {
            Some(TICK_MS)
        } else if plugin.policy.mcp.is_some() {
            Some(MCP_TICK_MS)
        } else {
            None
        };
        if let Some(tick_ms) = tick_ms {
            if !host.set_tick_period(Duration::from_millis(tick_ms)) {
                // Without ticks no JWKS is ever fetched: refuse the plugin, loudly.
                host.log(
                    LogLevel::Critical,
                    "actwarden: configuration: envoy refused the tick period",
                );
                return false;
            }
        }
        self.plugin = Some(Rc::new(plugin));
        true
    }

    pub(crate) fn on_tick(&mut self) {
        if let Some(plugin) = &self.plugin {
            jwks::tick(plugin, &mut self.callouts, self.context_id);
            super::mcp::check_held(plugin, plugin.host.now_millis(), self.context_id);
        }
    }
}

#[cfg(test)]
impl<H> Root<H> {
    pub(crate) fn plugin(&self) -> Option<&Rc<Plugin<H>>> {
        self.plugin.as_ref()
    }
}
