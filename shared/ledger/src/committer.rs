//! Group commit for single transfers. Callers on many threads (or async tasks) each submit
//! one transfer; one writer thread takes whatever is queued, applies it as one set-based
//! batch in one transaction, and answers each caller. Under load a commit (and its fsync) is
//! shared by many transfers; with one caller it is a plain transaction with no added wait,
//! because the writer never sleeps waiting for a batch to fill.

use std::sync::mpsc;
use std::thread;

use tokio::sync::oneshot;

use crate::{Ledger, LedgerError, Transfer, TransferRequest, transfer_many};

/// Most transfers applied in one transaction: bounds the transaction's size and the time a
/// caller waits behind others.
pub const MAX_BATCH: usize = 256;
/// Most transfers waiting for the writer; submitters block beyond this (back-pressure).
const QUEUE_DEPTH: usize = 4_096;

struct Job {
    request: TransferRequest,
    reply: oneshot::Sender<Result<Transfer, LedgerError>>,
}

/// Handle for submitting transfers to the writer thread. Cloneable; the writer stops when the
/// last handle is dropped.
#[derive(Clone, Debug)]
pub struct Committer {
    queue: mpsc::SyncSender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.request.fmt(f)
    }
}

impl Committer {
    pub fn start(ledger: Ledger) -> Self {
        let (queue, jobs) = mpsc::sync_channel::<Job>(QUEUE_DEPTH);
        thread::Builder::new()
            .name("ledger-committer".into())
            .spawn(move || run(&ledger, &jobs))
            .map(|_| ())
            .unwrap_or_else(|e| tracing::error!(error = %e, "cannot start the ledger committer"));
        Self { queue }
    }

    /// Submits and waits: for callers on ordinary threads. Waits for room in the queue.
    pub fn transfer(&self, request: TransferRequest) -> Result<Transfer, LedgerError> {
        let (reply, answer) = oneshot::channel();
        if self.queue.send(Job { request, reply }).is_err() {
            return Err(stopped());
        }
        answer.blocking_recv().unwrap_or_else(|_| Err(stopped()))
    }

    /// Submits and awaits: for async callers. Never blocks the executor: when the queue is
    /// full the writer is saturated and the answer is `Unavailable` (a 503 the client may
    /// retry) instead of a wait.
    pub async fn transfer_async(&self, request: TransferRequest) -> Result<Transfer, LedgerError> {
        let (reply, answer) = oneshot::channel();
        match self.queue.try_send(Job { request, reply }) {
            Ok(()) => answer.await.unwrap_or_else(|_| Err(stopped())),
            Err(mpsc::TrySendError::Full(_)) => Err(LedgerError::Unavailable(
                "the ledger writer is saturated; retry shortly".into(),
            )),
            Err(mpsc::TrySendError::Disconnected(_)) => Err(stopped()),
        }
    }
}

fn stopped() -> LedgerError {
    LedgerError::Unavailable("the ledger writer has stopped".into())
}

fn run(ledger: &Ledger, jobs: &mpsc::Receiver<Job>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    let mut requests: Vec<TransferRequest> = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = jobs.recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        requests.clear();
        requests.extend(batch.iter().map(|job| job.request.clone()));
        match ledger.write(|conn| transfer_many(conn, &requests)) {
            Ok(results) => {
                for (job, result) in batch.drain(..).zip(results) {
                    let _ = job.reply.send(result);
                }
            }
            Err(error) => {
                tracing::error!(%error, transfers = batch.len(), "a transfer batch failed");
                let reason = error.to_string();
                for job in batch.drain(..) {
                    let _ = job
                        .reply
                        .send(Err(LedgerError::Unavailable(reason.clone())));
                }
            }
        }
    }
}
