//! Runs evaluations on their own threads, waits at most until the deadline, and counts the
//! programs left running after it (see the module docs of `jsonnet` for why).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use super::{Inputs, JsonnetError, Limits, Program, engine, evaluate_inputs};

/// Native stack of an evaluation thread: the parser recurses on nested brackets.
const THREAD_STACK_BYTES: usize = 64 * 1024 * 1024;

/// Starts evaluation threads and refuses new ones while too many timed-out ones still run.
#[derive(Debug)]
pub(super) struct Runner {
    runaway: Arc<AtomicUsize>,
    max_runaway: usize,
}

/// What became of one evaluation, decided under a lock by whichever side gets there first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Running,
    /// The caller gave up waiting; the thread must give back its runaway place.
    Detached,
    Finished,
}

impl Runner {
    pub(super) fn new(max_runaway: usize) -> Self {
        Self {
            runaway: Arc::new(AtomicUsize::new(0)),
            max_runaway,
        }
    }

    /// The process-wide runner, sized by [`super::max_runaway`].
    pub(super) fn shared() -> &'static Runner {
        static SHARED: OnceLock<Runner> = OnceLock::new();
        SHARED.get_or_init(|| Runner::new(super::max_runaway()))
    }

    /// Programs that timed out and are still running.
    pub(super) fn runaway(&self) -> usize {
        self.runaway.load(Ordering::SeqCst)
    }

    pub(super) async fn run(
        &self,
        program: &Program,
        inputs: Inputs,
        limits: Limits,
    ) -> Result<serde_json::Value, JsonnetError> {
        let timeout = || JsonnetError::Timeout {
            origin: program.origin.clone(),
        };
        if self.runaway() >= self.max_runaway {
            tracing::warn!(origin = %program.origin, running = self.runaway(),
                "Jsonnet refused: too many timed-out programs are still running");
            return Err(timeout());
        }
        let fate = Arc::new(Mutex::new(Fate::Running));
        let (tx, rx) = tokio::sync::oneshot::channel();
        let owned = program.clone();
        let (thread_fate, runaway) = (fate.clone(), self.runaway.clone());
        let spawned = std::thread::Builder::new()
            .name("latch-jsonnet".to_owned())
            .stack_size(THREAD_STACK_BYTES)
            .spawn(move || {
                let result = evaluate_inputs(&owned, &inputs, &limits);
                let mut fate = thread_fate.lock().unwrap_or_else(|e| e.into_inner());
                if *fate == Fate::Detached {
                    runaway.fetch_sub(1, Ordering::SeqCst);
                }
                // Sent under the lock, so a caller that sees `Finished` finds the answer.
                let _ = tx.send(result);
                *fate = Fate::Finished;
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start a Jsonnet evaluation thread");
            return Err(engine::crashed(program));
        }
        let mut rx = rx;
        match tokio::time::timeout(limits.timeout, &mut rx).await {
            Ok(result) => result.unwrap_or_else(|_| Err(engine::crashed(program))),
            Err(_) => {
                let mut state = fate.lock().unwrap_or_else(|e| e.into_inner());
                if *state == Fate::Finished {
                    // It finished as the deadline passed: the answer is there, use it.
                    drop(state);
                    return rx.try_recv().unwrap_or_else(|_| Err(engine::crashed(program)));
                }
                *state = Fate::Detached;
                self.runaway.fetch_add(1, Ordering::SeqCst);
                drop(state);
                tracing::warn!(origin = %program.origin, timeout = ?limits.timeout,
                    "Jsonnet evaluation timed out; its thread is left to finish on its own");
                Err(timeout())
            }
        }
    }
}
