//! Password hashing with argon2id (the crate's default parameters: 19 MiB, 2 passes).
//! Each hash takes tens of milliseconds and 19 MiB by design, so the server never runs them on
//! a pool that grows with demand: [`Hasher`] runs them on a fixed set of threads behind a
//! bounded queue, and refuses at once (`overloaded`) when the queue is full. Memory for
//! hashing is then bounded by the thread count (each thread's allocator arena keeps at most
//! one hash's blocks), however many clients log in at once.

use std::sync::{Arc, Mutex, mpsc};

use std::cell::RefCell;

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand_core::OsRng;

/// Fewer characters than this is `weak_password`.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// More is refused too: hashing unbounded input is a denial-of-service vector.
pub const MAX_PASSWORD_CHARS: usize = 256;

thread_local! {
    /// This thread's argon2 working memory (19 MiB at the default parameters), allocated by
    /// its first hash and reused by every later one. Allocating it per hash let the allocator
    /// keep a copy in each of its arenas (hundreds of MiB that never went back to the OS).
    static BLOCKS: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// argon2 of `password` and `salt` into `out`, on this thread's reused working memory.
fn compute(
    params: &Params,
    algorithm: Algorithm,
    version: Version,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), argon2::Error> {
    let argon2 = Argon2::new(algorithm, version, params.clone());
    BLOCKS.with(|cell| {
        let mut blocks = cell.borrow_mut();
        let count = params.block_count();
        if blocks.len() < count {
            blocks.resize(count, Block::default());
        }
        argon2.hash_password_into_with_memory(password, salt, out, &mut blocks[..count])
    })
}

/// A new argon2id hash of `password` in the PHC string format, with a fresh salt.
pub fn hash(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    let params = Params::default();
    let mut salt_bytes = [0_u8; 64];
    let salt_bytes = salt
        .decode_b64(&mut salt_bytes)
        .map_err(|e| e.to_string())?;
    let output = Output::init_with(Params::DEFAULT_OUTPUT_LEN, |out| {
        compute(
            &params,
            Algorithm::Argon2id,
            Version::V0x13,
            password.as_bytes(),
            salt_bytes,
            out,
        )
        .map_err(Into::into)
    })
    .map_err(|e| e.to_string())?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| e.to_string())?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(phc.to_string())
}

/// True when `password` matches the stored hash (compared in constant time).
pub fn verify(stored_hash: &str, password: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored_hash) else {
        return false;
    };
    let (Ok(algorithm), Some(Ok(version)), Ok(params), Some(salt), Some(expected)) = (
        Algorithm::try_from(parsed.algorithm),
        Some(
            parsed
                .version
                .map_or(Ok(Version::default()), Version::try_from),
        ),
        Params::try_from(&parsed),
        parsed.salt,
        parsed.hash,
    ) else {
        return false;
    };
    let mut salt_bytes = [0_u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    Output::init_with(expected.len(), |out| {
        compute(
            &params,
            algorithm,
            version,
            password.as_bytes(),
            salt_bytes,
            out,
        )
        .map_err(Into::into)
    })
    .is_ok_and(|computed| computed == expected)
}

/// Spends the same time as a real verification, so a login for an unknown handle cannot be
/// told apart from a wrong password by its timing.
pub fn verify_against_nothing(password: &str) {
    if let Ok(dummy) = dummy_hash() {
        let _ = verify(dummy, password);
    }
}

/// A real hash of a password nobody has, made once.
fn dummy_hash() -> Result<&'static str, String> {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    if let Some(dummy) = DUMMY.get() {
        return Ok(dummy);
    }
    let made = hash("not-a-real-password")?;
    Ok(DUMMY.get_or_init(|| made))
}

/// Why the [`Hasher`] did not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    /// Every hashing thread is busy and the queue is full: retry shortly.
    #[error("too many logins and sign-ups at once; try again in a moment")]
    Overloaded,
    #[error("password hashing failed: {0}")]
    Failed(String),
}

impl From<HashError> for scrip_http::ApiError {
    fn from(error: HashError) -> Self {
        match error {
            HashError::Overloaded => Self::Overloaded {
                detail: error.to_string(),
                retry_after_s: 1,
            },
            HashError::Failed(why) => Self::Internal(why),
        }
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// A fixed pool of hashing threads behind a bounded queue (see the module documentation).
/// Cloning shares the pool.
#[derive(Clone, Debug)]
pub struct Hasher {
    queue: mpsc::SyncSender<Job>,
}

impl Hasher {
    /// `threads` hashing threads (at least one) and room for `queue_depth` waiting requests.
    pub fn start(threads: usize, queue_depth: usize) -> Result<Self, String> {
        // The stand-in hash that unknown handles are checked against, made now: made lazily,
        // the first unknown handle would cost two hashes, and a failure would make unknown
        // handles answer faster than wrong passwords.
        dummy_hash()?;
        let (queue, jobs) = mpsc::sync_channel::<Job>(queue_depth);
        let jobs = Arc::new(Mutex::new(jobs));
        for index in 0..threads.max(1) {
            let jobs = Arc::clone(&jobs);
            std::thread::Builder::new()
                .name(format!("password-hash-{index}"))
                .spawn(move || {
                    loop {
                        // The lock is held only to take the next job, never while hashing.
                        let next = jobs
                            .lock()
                            .map_err(drop)
                            .and_then(|r| r.recv().map_err(drop));
                        match next {
                            // A job that panics loses its answer (its caller is told the
                            // hashing failed), never this thread: the pool keeps its size.
                            Ok(job) => {
                                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job))
                                    .is_err()
                                {
                                    tracing::error!("a password hashing job panicked");
                                }
                            }
                            Err(()) => return,
                        }
                    }
                })
                .map_err(|e| format!("cannot start a hashing thread: {e}"))?;
        }
        Ok(Self { queue })
    }

    /// One thread per core, and a queue of eight per thread.
    pub fn for_this_machine() -> Result<Self, String> {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self::start(cores, 8 * cores)
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = reply.send(work());
        });
        match self.queue.try_send(job) {
            Ok(()) => answer
                .await
                .map_err(|_| HashError::Failed("the hashing thread stopped".into())),
            Err(mpsc::TrySendError::Full(_)) => Err(HashError::Overloaded),
            Err(mpsc::TrySendError::Disconnected(_)) => {
                Err(HashError::Failed("the hashing threads stopped".into()))
            }
        }
    }

    /// Hashes a new password.
    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        self.run(move || hash(&password))
            .await?
            .map_err(HashError::Failed)
    }

    /// Checks `password` against `stored`; with no stored hash (an unknown handle) it spends
    /// the same time and answers false, so the two cannot be told apart.
    pub async fn verify(
        &self,
        stored: Option<String>,
        password: String,
    ) -> Result<bool, HashError> {
        self.run(move || match stored {
            Some(stored) => verify(&stored, &password),
            None => {
                verify_against_nothing(&password);
                false
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn hashes_verify_and_differ_by_salt() {
        let a = super::hash("correct horse battery").expect("hash");
        let b = super::hash("correct horse battery").expect("hash");
        assert_ne!(a, b);
        assert!(a.starts_with("$argon2id$"));
        assert!(super::verify(&a, "correct horse battery"));
        assert!(!super::verify(&a, "wrong horse battery"));
        assert!(!super::verify("garbage", "x"));
    }

    #[test]
    fn hashes_made_by_the_argon2_crate_verify_and_ours_verify_there() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier, SaltString};
        let salt = SaltString::generate(&mut rand_core::OsRng);
        let theirs = argon2::Argon2::default()
            .hash_password(b"correct horse battery", &salt)
            .expect("hash")
            .to_string();
        assert!(super::verify(&theirs, "correct horse battery"));
        assert!(!super::verify(&theirs, "correct horse batter"));
        let ours = super::hash("correct horse battery").expect("hash");
        let parsed = argon2::password_hash::PasswordHash::new(&ours).expect("PHC string");
        assert!(
            argon2::Argon2::default()
                .verify_password(b"correct horse battery", &parsed)
                .is_ok()
        );
    }

    #[test]
    fn a_full_hasher_refuses_at_once_instead_of_queueing() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        // One thread, room for one waiting request: the third of three at once is refused.
        let hasher = super::Hasher::start(1, 1).expect("hasher");
        let (release, blocked) = std::sync::mpsc::channel::<()>();
        let (started, running) = std::sync::mpsc::channel::<()>();
        let busy = hasher.clone();
        let first = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("runtime")
                .block_on(busy.run(move || {
                    let _ = started.send(());
                    blocked.recv().is_ok()
                }))
        });
        // The first job occupies the only thread; a second fills the queue.
        running.recv().expect("the first job runs");
        let (drained, queue_empty) = std::sync::mpsc::channel::<()>();
        assert!(
            hasher
                .queue
                .try_send(Box::new(move || {
                    let _ = drained.send(());
                }))
                .is_ok()
        );
        let refused = runtime.block_on(hasher.verify(None, "password123".into()));
        assert_eq!(refused, Err(super::HashError::Overloaded));
        release.send(()).expect("release");
        assert_eq!(first.join().expect("first"), Ok(true));
        // Once the queued job has run, the queue has room again (deterministically: waiting
        // for the first job alone raced the worker taking the second).
        queue_empty.recv().expect("the queued job runs");
        let hashed = runtime
            .block_on(hasher.hash("correct horse battery".into()))
            .expect("a free hasher hashes");
        assert!(super::verify(&hashed, "correct horse battery"));
    }
}
