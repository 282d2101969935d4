//! The module's exports: the proxy-wasm callbacks the host enters the VM with, each routed
//! to its root context (one per plugin configuration) or request context (one per request).
//!
//! Only the callbacks the filter uses are exported. The host skips a callback the module
//! does not export (proxy-wasm-cpp-host: a missing `proxy_on_done` counts as done,
//! `proxy_on_log` and `proxy_on_vm_start` as nothing to do), while every exported one is
//! an entry into the VM, most of them on every request. The SDK's dispatcher exports all
//! of them; not entering the VM for `proxy_on_log` and `proxy_on_done` (and not looking the
//! context up in the SDK's SipHash map) saves 2.5–3.5 µs per request (docs/performance.md).
//!
//! Nothing here panics on what the host sends. A request context this module does not know
//! (its root was never configured) is refused with a 500 at its headers, never let through;
//! a callback that arrives while another one is running (proxy-wasm hosts defer what could
//! re-enter the VM, so it would be a host defect) holds its stream and says so in the log.

use super::abi::{self, Action, LogLevel};
use super::filter::Filter;
use super::host::{Host, ProxyWasmHost};
use super::plugin::send_error;
use super::root::Root;
use std::cell::RefCell;
use std::collections::HashMap;

/// Every context of this VM: the roots (one per plugin configuration sharing the VM, so a
/// handful, scanned) and the requests in flight (as many as the worker has streams).
pub(crate) struct Contexts<H: Host> {
    host: H,
    roots: Vec<(u32, Root<H>)>,
    /// Keyed by the host's context ids (small integers the host counts up, not attacker
    /// input), so a fixed-seed fast hash.
    requests: HashMap<u32, Filter<H>, foldhash::fast::FixedState>,
}

impl<H: Host + Clone + 'static> Contexts<H> {
    pub(crate) fn new(host: H) -> Contexts<H> {
        Contexts {
            host,
            roots: Vec::new(),
            requests: HashMap::default(),
        }
    }

    /// `parent_id` 0: a new root context; otherwise a request under that root.
    pub(crate) fn on_context_create(&mut self, context_id: u32, parent_id: u32) {
        if parent_id == 0 {
            // An id the host reuses names a new root: the old one is gone.
            self.roots.retain(|(id, _)| *id != context_id);
            self.roots
                .push((context_id, Root::new(context_id, self.host.clone())));
            return;
        }
        // A root that is not configured makes no filter: the request is refused at its
        // headers (`on_request_headers`). A filter left under a reused id is not this
        // request's.
        match self
            .root(parent_id)
            .and_then(|root| root.filter(context_id))
        {
            Some(filter) => self.requests.insert(context_id, filter),
            None => self.requests.remove(&context_id),
        };
    }

    pub(crate) fn on_configure(&mut self, root_id: u32, size: usize) -> bool {
        self.root_mut(root_id)
            .is_some_and(|root| root.on_configure(size))
    }

    pub(crate) fn on_tick(&mut self, root_id: u32) {
        if let Some(root) = self.root_mut(root_id) {
            root.on_tick();
        }
    }

    pub(crate) fn on_http_call_response(
        &mut self,
        root_id: u32,
        token: u32,
        headers: usize,
        body_size: usize,
        trailers: usize,
    ) {
        if let Some(root) = self.root_mut(root_id) {
            root.on_http_call_response(token, headers, body_size, trailers);
        }
    }

    pub(crate) fn on_request_headers(&mut self, id: u32, headers: usize, end: bool) -> Action {
        match self.requests.get_mut(&id) {
            Some(filter) => filter.on_http_request_headers(headers, end),
            None => self.refuse_unknown(id),
        }
    }

    // A request with no filter was refused at its headers: what follows them is held
    // (`Pause`), and the refusal's own response goes out (`Continue`).

    pub(crate) fn on_request_body(&mut self, id: u32, size: usize, end: bool) -> Action {
        match self.requests.get_mut(&id) {
            Some(filter) => filter.on_http_request_body(size, end),
            None => Action::Pause,
        }
    }

    pub(crate) fn on_request_trailers(&mut self, id: u32, trailers: usize) -> Action {
        match self.requests.get_mut(&id) {
            Some(filter) => filter.on_http_request_trailers(trailers),
            None => Action::Pause,
        }
    }

    pub(crate) fn on_response_headers(&mut self, id: u32, headers: usize, end: bool) -> Action {
        match self.requests.get_mut(&id) {
            Some(filter) => filter.on_http_response_headers(headers, end),
            None => Action::Continue,
        }
    }

    pub(crate) fn on_response_body(&mut self, id: u32, size: usize, end: bool) -> Action {
        match self.requests.get_mut(&id) {
            Some(filter) => filter.on_http_response_body(size, end),
            None => Action::Continue,
        }
    }

    /// The context is gone: a request's filter is dropped (which forgets whatever it was
    /// waiting for), a root with its plugin once no request holds it.
    pub(crate) fn on_delete(&mut self, id: u32) {
        if self.requests.remove(&id).is_none() {
            self.roots.retain(|(root_id, _)| *root_id != id);
        }
    }

    /// A request with no filter (its root has no configuration): a 500, never a pass.
    fn refuse_unknown(&self, id: u32) -> Action {
        self.host.log(
            LogLevel::Error,
            &format!("actwarden: request context {id} has no configured plugin: refused"),
        );
        send_error(&self.host, 500);
        Action::Pause
    }

    fn root(&self, id: u32) -> Option<&Root<H>> {
        self.roots
            .iter()
            .find(|(root_id, _)| *root_id == id)
            .map(|(_, root)| root)
    }

    fn root_mut(&mut self, id: u32) -> Option<&mut Root<H>> {
        self.roots
            .iter_mut()
            .find(|(root_id, _)| *root_id == id)
            .map(|(_, root)| root)
    }
}

#[cfg(test)]
impl<H: Host> Contexts<H> {
    pub(crate) fn request_count(&self) -> usize {
        self.requests.len()
    }

    pub(crate) fn root_count(&self) -> usize {
        self.roots.len()
    }
}

thread_local! {
    /// The VM's contexts. A proxy-wasm VM runs on one worker thread, so this is the one
    /// global state the filter has: the host addresses every callback by context id.
    static CONTEXTS: RefCell<Contexts<ProxyWasmHost>> = RefCell::new(Contexts::new(ProxyWasmHost));
}

/// Runs a callback on the VM's contexts; `busy` when they are in use already (a callback
/// that re-entered the VM: said at critical, and answered with `busy`, which holds a
/// stream rather than let it through).
fn with_contexts<T>(busy: T, callback: impl FnOnce(&mut Contexts<ProxyWasmHost>) -> T) -> T {
    CONTEXTS.with(|cell| match cell.try_borrow_mut() {
        Ok(mut contexts) => callback(&mut contexts),
        Err(_) => {
            ProxyWasmHost.log(
                LogLevel::Critical,
                "actwarden: the host re-entered the VM during a callback: held",
            );
            busy
        }
    })
}

// The exports. proxy-wasm passes booleans as 32-bit words: read as `u32 != 0`, since a
// Rust `bool` parameter holding anything but 0 or 1 would be undefined behaviour.

#[no_mangle]
extern "C" fn _initialize() {
    abi::call_constructors();
    // A panic is a defect: say so at critical before the VM aborts (release builds abort
    // on panic), so the operator sees it in Envoy's log next to the failing request.
    std::panic::set_hook(Box::new(|info| {
        ProxyWasmHost.log(LogLevel::Critical, &format!("actwarden: panic: {info}"));
    }));
}

#[no_mangle]
extern "C" fn proxy_abi_version_0_2_1() {}

#[no_mangle]
extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
    abi::allocate(size)
}

#[no_mangle]
extern "C" fn proxy_on_context_create(context_id: u32, parent_id: u32) {
    with_contexts((), |c| c.on_context_create(context_id, parent_id));
}

#[no_mangle]
extern "C" fn proxy_on_configure(root_id: u32, size: usize) -> bool {
    with_contexts(false, |c| c.on_configure(root_id, size))
}

#[no_mangle]
extern "C" fn proxy_on_tick(root_id: u32) {
    with_contexts((), |c| c.on_tick(root_id));
}

#[no_mangle]
extern "C" fn proxy_on_http_call_response(
    root_id: u32,
    token: u32,
    headers: usize,
    body_size: usize,
    trailers: usize,
) {
    with_contexts((), |c| {
        c.on_http_call_response(root_id, token, headers, body_size, trailers)
    });
}

#[no_mangle]
extern "C" fn proxy_on_request_headers(id: u32, headers: usize, end: u32) -> Action {
    with_contexts(Action::Pause, |c| {
        c.on_request_headers(id, headers, end != 0)
    })
}

#[no_mangle]
extern "C" fn proxy_on_request_body(id: u32, size: usize, end: u32) -> Action {
    with_contexts(Action::Pause, |c| c.on_request_body(id, size, end != 0))
}

#[no_mangle]
extern "C" fn proxy_on_request_trailers(id: u32, trailers: usize) -> Action {
    with_contexts(Action::Pause, |c| c.on_request_trailers(id, trailers))
}

#[no_mangle]
extern "C" fn proxy_on_response_headers(id: u32, headers: usize, end: u32) -> Action {
    with_contexts(Action::Pause, |c| {
        c.on_response_headers(id, headers, end != 0)
    })
}

#[no_mangle]
extern "C" fn proxy_on_response_body(id: u32, size: usize, end: u32) -> Action {
    with_contexts(Action::Pause, |c| c.on_response_body(id, size, end != 0))
}

#[no_mangle]
extern "C" fn proxy_on_delete(id: u32) {
    with_contexts((), |c| c.on_delete(id));
}
