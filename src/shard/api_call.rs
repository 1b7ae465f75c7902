//! Server API commands from the shard's HTTP side: hand a command to the
//! core and await its answer. Each call holds one slot in the shard's table
//! until the core answers (`Action::ApiReply`) or the caller gives up (a
//! timeout drops the future, which frees the slot).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::SystemTime;

use super::core::{unix_micros, ApiCommand, ApiOutcome};
use super::Shard;

/// One call's state.
enum Slot {
    /// Not answered yet; the waiting task's waker.
    Waiting(Option<Waker>),
    /// Answered.
    Done(ApiOutcome),
}

/// The shard's API calls in flight.
#[derive(Default)]
pub struct ApiCalls {
    /// Next token.
    next: Cell<u64>,
    /// Token → call.
    slots: RefCell<HashMap<u64, Slot>>,
}

impl ApiCalls {
    /// Records the core's answer and wakes the caller (an abandoned call's
    /// answer is dropped).
    pub fn answer(&self, token: u64, outcome: ApiOutcome) {
        let mut slots = self.slots.borrow_mut();
        if let Some(slot) = slots.get_mut(&token) {
            if let Slot::Waiting(Some(w)) = std::mem::replace(slot, Slot::Done(outcome)) {
                w.wake();
            }
        }
    }

    /// Calls in flight.
    pub fn len(&self) -> usize {
        self.slots.borrow().len()
    }

    /// True when none is in flight.
    pub fn is_empty(&self) -> bool {
        self.slots.borrow().is_empty()
    }
}

/// Frees a call's slot when its future ends or is dropped.
struct SlotGuard<'a> {
    calls: &'a ApiCalls,
    token: u64,
}

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        self.calls.slots.borrow_mut().remove(&self.token);
    }
}

impl Shard {
    /// Carries out a server API command on the cluster and returns its answer.
    pub async fn api_call(self: &Rc<Self>, cmd: ApiCommand) -> ApiOutcome {
        let calls = &self.api_calls;
        let token = calls.next.get().wrapping_add(1).max(1);
        calls.next.set(token);
        calls.slots.borrow_mut().insert(token, Slot::Waiting(None));
        let _guard = SlotGuard { calls, token };
        let sent_at_us = unix_micros(SystemTime::now());
        let now_ms = self.now_ms();
        self.with_core(|core| core.api(token, cmd, sent_at_us, now_ms));
        poll_fn(|cx| {
            let mut slots = calls.slots.borrow_mut();
            match slots.remove(&token) {
                Some(Slot::Done(outcome)) => Poll::Ready(outcome),
                Some(Slot::Waiting(_)) | None => {
                    slots.insert(token, Slot::Waiting(Some(cx.waker().clone())));
                    Poll::Pending
                }
            }
        })
        .await
    }
}
