//! A fault-injecting `ObjectStore`: failing, slow and partial writes, lost replies and listing errors on
//! chosen operations and paths, so the fault tests drive the real ingest, commit, compaction and migration
//! code through the storage failures blob storage produces.
//!
//! It wraps every client a location opens (see [`StoreLayer`]), the project's own view and Iceberg's, so a
//! fault reaches staging, the catalog's metadata files, the writers and the scans alike. Which requests fail
//! is decided by [`FaultRule`]s drawn from a seeded generator: a failing run is reproducible from its seed.
//! Every request and every injected fault is counted, for the reliability figures and for tests that
//! assert what a path read (a cached answer must not read metadata files, for one).

use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult,
    RenameOptions, UploadPart,
};

type Wrap = dyn Fn(Arc<dyn ObjectStore>) -> Arc<dyn ObjectStore> + Send + Sync;

/// Wraps each store a location opens; with none, stores are used as opened.
#[derive(Clone)]
pub struct StoreLayer(Arc<Wrap>);

impl StoreLayer {
    pub fn new(wrap: impl Fn(Arc<dyn ObjectStore>) -> Arc<dyn ObjectStore> + Send + Sync + 'static) -> Self {
        Self(Arc::new(wrap))
    }

    /// Every store wrapped in a [`FaultyStore`] following `plan`.
    pub fn faults(plan: Arc<FaultPlan>) -> Self {
        Self::new(move |inner| Arc::new(FaultyStore { inner, plan: plan.clone() }))
    }

    pub fn apply(&self, store: Arc<dyn ObjectStore>) -> Arc<dyn ObjectStore> {
        (self.0)(store)
    }
}

impl fmt::Debug for StoreLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoreLayer")
    }
}

/// Which kind of request a rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Put,
    Get,
    Head,
    List,
    Delete,
    /// Copies and renames (staging's atomic moves, the catalog's metadata commits on disk).
    Move,
}

impl Op {
    const ALL: [Op; 6] = [Op::Put, Op::Get, Op::Head, Op::List, Op::Delete, Op::Move];

    fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            Op::Put => "put",
            Op::Get => "get",
            Op::Head => "head",
            Op::List => "list",
            Op::Delete => "delete",
            Op::Move => "move",
        }
    }
}

/// What a matched request suffers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// Refused before it reaches the store (an outage, a throttle).
    Fail,
    /// Reaches the store after a pause (a slow disk or link); then succeeds or fails as the store does.
    Slow(Duration),
    /// A write that stops half-way: the first half of the bytes lands under the name, then an error. Blob
    /// storage never shows a torn object, but a crashed non-atomic writer on a file share does, so readers
    /// must refuse what they cannot parse rather than trust a name.
    PartialWrite,
    /// The store carries the request out, but the reply is lost: the caller sees an error for a write that
    /// happened (the unknown outcome every commit must survive).
    LostReply,
}

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::Fail => "fail",
            Fault::Slow(_) => "slow",
            Fault::PartialWrite => "partial_write",
            Fault::LostReply => "lost_reply",
        }
    }
}

/// One way requests fail: `fault` for a share of the requests of kind `op` whose path contains `path`.
#[derive(Debug, Clone)]
pub struct FaultRule {
    pub op: Op,
    /// Only paths containing this text; empty: every path.
    pub path: String,
    pub fault: Fault,
    /// Share of matching requests hit, from 0 to 1.
    pub probability: f64,
    /// Stop after this many faults; `None`: no limit.
    pub limit: Option<u64>,
}

impl FaultRule {
    pub fn new(op: Op, fault: Fault, probability: f64) -> Self {
        Self { op, path: String::new(), fault, probability, limit: None }
    }

    pub fn on_paths(mut self, containing: &str) -> Self {
        self.path = containing.to_string();
        self
    }

    pub fn at_most(mut self, faults: u64) -> Self {
        self.limit = Some(faults);
        self
    }
}

struct Armed {
    rule: FaultRule,
    fired: u64,
}

/// The rules in force, the generator that draws from them, and what happened. Shared by every store of a
/// layer; rules can change while the stores are in use (a test heals the store before checking).
pub struct FaultPlan {
    rules: Mutex<Vec<Armed>>,
    /// xorshift64* state: seeded, so a run's faults repeat with its seed.
    rng: Mutex<u64>,
    requests: [AtomicU64; 6],
    injected: [AtomicU64; 6],
    recorder: Mutex<Vec<(Op, String)>>,
    recording: std::sync::atomic::AtomicBool,
}

impl fmt::Debug for FaultPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultPlan").field("requests", &self.requests_total()).field("injected", &self.injected_total()).finish_non_exhaustive()
    }
}

impl FaultPlan {
    pub fn new(seed: u64) -> Arc<Self> {
        Arc::new(Self {
            rules: Mutex::new(Vec::new()),
            rng: Mutex::new(seed.max(1)),
            requests: Default::default(),
            injected: Default::default(),
            recorder: Mutex::new(Vec::new()),
            recording: Default::default(),
        })
    }

    pub fn add(&self, rule: FaultRule) {
        self.rules.lock().unwrap_or_else(|e| e.into_inner()).push(Armed { rule, fired: 0 });
    }

    /// No more faults from now on (counts are kept).
    pub fn heal(&self) {
        self.rules.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Requests of kind `op` seen so far.
    pub fn requests(&self, op: Op) -> u64 {
        self.requests[op.index()].load(Ordering::Relaxed)
    }

    pub fn requests_total(&self) -> u64 {
        Op::ALL.iter().map(|op| self.requests(*op)).sum()
    }

    /// Faults injected into requests of kind `op` so far.
    pub fn injected(&self, op: Op) -> u64 {
        self.injected[op.index()].load(Ordering::Relaxed)
    }

    pub fn injected_total(&self) -> u64 {
        Op::ALL.iter().map(|op| self.injected(*op)).sum()
    }

    /// Starts recording which paths are requested (cleared), until [`FaultPlan::recorded`] takes them.
    pub fn record(&self) {
        self.recorder.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.recording.store(true, Ordering::SeqCst);
    }

    /// The requests since [`FaultPlan::record`], and stops recording.
    pub fn recorded(&self) -> Vec<(Op, String)> {
        self.recording.store(false, Ordering::SeqCst);
        std::mem::take(&mut *self.recorder.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn draw(&self) -> f64 {
        let mut state = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        *state ^= *state >> 12;
        *state ^= *state << 25;
        *state ^= *state >> 27;
        (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Counts the request and picks the fault it suffers, if any.
    fn decide(&self, op: Op, path: &Path) -> Option<Fault> {
        self.requests[op.index()].fetch_add(1, Ordering::Relaxed);
        if self.recording.load(Ordering::Relaxed) {
            self.recorder.lock().unwrap_or_else(|e| e.into_inner()).push((op, path.to_string()));
        }
        let mut rules = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        for armed in rules.iter_mut() {
            let rule = &armed.rule;
            if rule.op != op || !path.as_ref().contains(rule.path.as_str()) || rule.limit.is_some_and(|limit| armed.fired >= limit) {
                continue;
            }
            if self.draw() < rule.probability {
                armed.fired += 1;
                self.injected[op.index()].fetch_add(1, Ordering::Relaxed);
                metrics::counter!("sentiment_lake_storage_faults_injected_total", "op" => op.name(), "fault" => rule.fault.name()).increment(1);
                return Some(rule.fault);
            }
        }
        None
    }
}

/// An `ObjectStore` that injects its plan's faults into the requests it passes on.
#[derive(Debug)]
pub struct FaultyStore {
    inner: Arc<dyn ObjectStore>,
    plan: Arc<FaultPlan>,
}

impl fmt::Display for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultyStore({})", self.inner)
    }
}

fn injected(op: Op, fault: Fault, path: &Path) -> object_store::Error {
    object_store::Error::Generic { store: "FaultyStore", source: format!("injected {} on {} {path}", fault.name(), op.name()).into() }
}

impl FaultyStore {
    /// Applies a fault that acts before the request (`Fail`, `Slow`); returns the one left for after it.
    async fn before(&self, op: Op, path: &Path) -> object_store::Result<Option<Fault>> {
        match self.plan.decide(op, path) {
            Some(Fault::Fail) => Err(injected(op, Fault::Fail, path)),
            Some(Fault::Slow(pause)) => {
                tokio::time::sleep(pause).await;
                Ok(None)
            }
            other => Ok(other),
        }
    }

    /// The request's own result, unless its reply is lost.
    fn after<T>(op: Op, path: &Path, fault: Option<Fault>, result: object_store::Result<T>) -> object_store::Result<T> {
        match (fault, result) {
            (Some(fault @ (Fault::LostReply | Fault::PartialWrite)), Ok(_)) => Err(injected(op, fault, path)),
            (_, result) => result,
        }
    }
}

#[async_trait]
impl ObjectStore for FaultyStore {
    async fn put_opts(&self, location: &Path, payload: PutPayload, opts: PutOptions) -> object_store::Result<PutResult> {
        let fault = self.before(Op::Put, location).await?;
        if fault == Some(Fault::PartialWrite) {
            let bytes = Bytes::from(payload);
            let torn = PutPayload::from(bytes.slice(..bytes.len() / 2));
            let written = self.inner.put_opts(location, torn, PutOptions::default()).await;
            return Self::after(Op::Put, location, fault, written);
        }
        let result = self.inner.put_opts(location, payload, opts).await;
        Self::after(Op::Put, location, fault, result)
    }

    async fn put_multipart_opts(&self, location: &Path, opts: PutMultipartOptions) -> object_store::Result<Box<dyn MultipartUpload>> {
        // The fault is drawn when the upload completes, where a streamed write lands or fails as a whole.
        let upload = self.inner.put_multipart_opts(location, opts).await?;
        Ok(Box::new(FaultyUpload { inner: upload, plan: self.plan.clone(), location: location.clone() }))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> object_store::Result<GetResult> {
        let op = if options.head { Op::Head } else { Op::Get };
        let fault = self.before(op, location).await?;
        let result = self.inner.get_opts(location, options).await;
        Self::after(op, location, fault, result)
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> object_store::Result<Vec<Bytes>> {
        let fault = self.before(Op::Get, location).await?;
        let result = self.inner.get_ranges(location, ranges).await;
        Self::after(Op::Get, location, fault, result)
    }

    fn delete_stream(&self, locations: BoxStream<'static, object_store::Result<Path>>) -> BoxStream<'static, object_store::Result<Path>> {
        let plan = self.plan.clone();
        let inner = self.inner.clone();
        // Each path is decided on its own: a lost reply deletes it and reports an error for it.
        locations
            .then(move |location| {
                let (plan, inner) = (plan.clone(), inner.clone());
                async move {
                    let location = location?;
                    let store = FaultyStore { inner: inner.clone(), plan };
                    let fault = store.before(Op::Delete, &location).await?;
                    let one = futures::stream::iter([Ok(location.clone())]).boxed();
                    let result = inner.delete_stream(one).next().await.unwrap_or_else(|| Ok(location.clone()));
                    FaultyStore::after(Op::Delete, &location, fault, result)
                }
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let path = prefix.cloned().unwrap_or_default();
        match self.plan.decide(Op::List, &path) {
            Some(Fault::Fail | Fault::LostReply | Fault::PartialWrite) => {
                // A listing that breaks off after its first page: some entries, then the error.
                let inner = self.inner.list(prefix).take(1);
                let failure = futures::stream::once(async move { Err(injected(Op::List, Fault::Fail, &path)) });
                inner.chain(failure).boxed()
            }
            Some(Fault::Slow(pause)) => {
                let listed = self.inner.list(prefix);
                futures::stream::once(tokio::time::sleep(pause)).flat_map(move |()| futures::stream::empty()).chain(listed).boxed()
            }
            None => self.inner.list(prefix),
        }
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        let path = prefix.cloned().unwrap_or_default();
        let fault = self.before(Op::List, &path).await?;
        let result = self.inner.list_with_delimiter(prefix).await;
        Self::after(Op::List, &path, fault, result)
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> object_store::Result<()> {
        let fault = self.before(Op::Move, to).await?;
        let result = self.inner.copy_opts(from, to, options).await;
        Self::after(Op::Move, to, fault, result)
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> object_store::Result<()> {
        let fault = self.before(Op::Move, to).await?;
        let result = self.inner.rename_opts(from, to, options).await;
        Self::after(Op::Move, to, fault, result)
    }
}

#[derive(Debug)]
struct FaultyUpload {
    inner: Box<dyn MultipartUpload>,
    plan: Arc<FaultPlan>,
    location: Path,
}

#[async_trait]
impl MultipartUpload for FaultyUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        self.inner.put_part(data)
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        match self.plan.decide(Op::Put, &self.location) {
            Some(Fault::Fail | Fault::PartialWrite) => {
                // Parts uploaded but never committed: nothing becomes visible under the name.
                let _ = self.inner.abort().await;
                Err(injected(Op::Put, Fault::Fail, &self.location))
            }
            Some(Fault::Slow(pause)) => {
                tokio::time::sleep(pause).await;
                self.inner.complete().await
            }
            Some(Fault::LostReply) => {
                self.inner.complete().await?;
                Err(injected(Op::Put, Fault::LostReply, &self.location))
            }
            None => self.inner.complete().await,
        }
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        self.inner.abort().await
    }
}

#[cfg(test)]
mod tests {
    use object_store::memory::InMemory;
    use object_store::ObjectStoreExt;

    use super::*;

    fn store(plan: &Arc<FaultPlan>) -> Arc<dyn ObjectStore> {
        StoreLayer::faults(plan.clone()).apply(Arc::new(InMemory::new()))
    }

    #[tokio::test]
    async fn lost_replies_happen_and_failures_do_not() {
        let plan = FaultPlan::new(7);
        let store = store(&plan);
        plan.add(FaultRule::new(Op::Put, Fault::LostReply, 1.0).on_paths("lost").at_most(1));
        plan.add(FaultRule::new(Op::Put, Fault::Fail, 1.0).on_paths("refused"));
        assert!(store.put(&Path::from("lost/a"), PutPayload::from_static(b"abc")).await.is_err());
        assert_eq!(store.get(&Path::from("lost/a")).await.unwrap().bytes().await.unwrap().as_ref(), b"abc");
        assert!(store.put(&Path::from("lost/b"), PutPayload::from_static(b"abc")).await.is_ok(), "the limit holds");
        assert!(store.put(&Path::from("refused/a"), PutPayload::from_static(b"abc")).await.is_err());
        assert!(store.head(&Path::from("refused/a")).await.is_err(), "nothing landed");
        assert_eq!((plan.injected(Op::Put), plan.requests(Op::Put)), (2, 3));
    }

    #[tokio::test]
    async fn partial_writes_leave_half_and_report_an_error() {
        let plan = FaultPlan::new(7);
        let store = store(&plan);
        plan.add(FaultRule::new(Op::Put, Fault::PartialWrite, 1.0));
        assert!(store.put(&Path::from("torn"), PutPayload::from_static(b"abcdef")).await.is_err());
        plan.heal();
        assert_eq!(store.get(&Path::from("torn")).await.unwrap().bytes().await.unwrap().as_ref(), b"abc");
    }

    #[tokio::test]
    async fn listings_break_off_with_an_error() {
        let plan = FaultPlan::new(7);
        let store = store(&plan);
        for name in ["d/a", "d/b", "d/c"] {
            store.put(&Path::from(name), PutPayload::from_static(b"x")).await.unwrap();
        }
        plan.add(FaultRule::new(Op::List, Fault::Fail, 1.0));
        let listed: Vec<_> = store.list(Some(&Path::from("d"))).collect().await;
        assert!(listed.last().unwrap().is_err());
        assert!(listed.len() <= 2);
    }

    #[test]
    fn the_same_seed_draws_the_same_faults() {
        let draws = |seed| {
            let plan = FaultPlan::new(seed);
            plan.add(FaultRule::new(Op::Get, Fault::Fail, 0.5));
            (0..64).map(|_| plan.decide(Op::Get, &Path::from("x")).is_some()).collect::<Vec<_>>()
        };
        assert_eq!(draws(3), draws(3));
        assert_ne!(draws(3), draws(4));
        let hits = draws(3).iter().filter(|hit| **hit).count();
        assert!((16..=48).contains(&hits), "{hits} of 64 at p=0.5");
    }
}
