//! A panic inside a simulated run is a verdict, not a harness failure (TigerBeetle's
//! VOPR habit): the node core's paired `debug_assert!`s fire in the `sim` profile,
//! and the run that tripped one must be stored and replayable like any invalid run.
//! [`catching`] turns a panic into a [`Crash`] with its message and location, and
//! [`Crash::result`] into the invalid `crash` checker result.

use rollcall_checkers::{CheckResult, Validity};
use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    /// Where the last panic on this thread happened (set by the hook).
    static LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// A panic caught inside a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crash {
    /// The panic message.
    pub message: String,
    /// `file:line:column`, when the hook saw it.
    pub location: Option<String>,
}

impl Crash {
    /// The invalid `crash` checker result that stands for the run.
    pub fn result(&self) -> CheckResult {
        let at = self.location.as_deref().unwrap_or("unknown location");
        CheckResult {
            checker: "crash".into(),
            validity: Validity::Invalid,
            summary: format!("the simulated run panicked at {at}: {}", self.message),
            anomalies: Vec::new(),
            details: serde_json::json!({ "message": self.message, "location": self.location }),
            elapsed_ms: 0.0,
        }
    }
}

/// Runs `f`, turning a panic into a [`Crash`]. The previous panic hook still runs
/// (the message reaches stderr as usual); ours only remembers the location.
pub fn catching<T>(f: impl FnOnce() -> T) -> Result<T, Crash> {
    install_hook();
    LOCATION.with(|l| l.borrow_mut().take());
    panic::catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic with a non-string payload".into());
        Crash {
            message,
            location: LOCATION.with(|l| l.borrow_mut().take()),
        }
    })
}

fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if let Some(loc) = info.location() {
                let at = format!("{}:{}:{}", loc.file(), loc.line(), loc.column());
                LOCATION.with(|l| *l.borrow_mut() = Some(at));
            }
            previous(info);
        }));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_invalid_crash_with_its_location() {
        let c = catching(|| -> u32 { panic!("sign state moved backwards") }).unwrap_err();
        assert_eq!(c.message, "sign state moved backwards");
        assert!(c.location.as_deref().unwrap().contains("crash.rs"));
        let r = c.result();
        assert_eq!(r.checker, "crash");
        assert_eq!(r.validity, Validity::Invalid);
        assert!(r.summary.contains("sign state moved backwards"));
    }

    #[test]
    fn no_panic_passes_the_value_through() {
        assert_eq!(catching(|| 7), Ok(7));
        let owned = catching(|| -> () { panic!("{}", String::from("formatted")) }).unwrap_err();
        assert_eq!(owned.message, "formatted");
    }
}
