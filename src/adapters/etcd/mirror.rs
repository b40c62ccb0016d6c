//! A mirror of every key under a prefix, kept by the watch stream: read once, then followed
//! from the next revision, so that a reader at rest costs the store no read at all.
//!
//! The mirror is trusted only while three things hold: its watch stream is up (a stream the
//! member ends when it loses its leader), the store answered this client's last call within
//! a third of the lease and one deadline (the lease keep-alives prove it alive that often),
//! and it shows this client's own last write. Otherwise the prefix is read from the store
//! again, which fails when the store does not answer, and the watch is started anew from that
//! read; a compacted or broken stream is read and watched again the same way.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::watch::Change;
use super::{Etcd, EtcdError, Kv};

/// The keys under a prefix as this client knows them.
pub struct Mirror {
    etcd: Arc<Etcd>,
    prefix: String,
    state: Arc<watch::Sender<State>>,
    /// The task that follows the watch stream, if one was started.
    follower: Mutex<Option<JoinHandle<()>>>,
    /// How many times the prefix was read: a client that reads once (a command) starts no
    /// watch.
    reads: AtomicUsize,
}

#[derive(Debug, Default)]
struct State {
    kvs: BTreeMap<String, Kv>,
    /// The store's revision the keys are as of.
    revision: i64,
    /// Whether the watch stream is up.
    up: bool,
}

impl State {
    /// Applies the changes of one message of the stream; those of a revision the keys are
    /// already as of (a watch started before a later read) are passed over. One transaction's
    /// changes share a revision and come in one message.
    fn apply(&mut self, changes: Vec<Change>) {
        let seen = self.revision;
        for change in changes {
            let revision = change.revision();
            if revision <= seen {
                continue;
            }
            match change {
                Change::Put(kv) => {
                    self.kvs.insert(kv.key.clone(), kv);
                }
                Change::Delete { key, .. } => {
                    self.kvs.remove(&key);
                }
            }
            self.revision = self.revision.max(revision);
        }
    }

    /// Takes the keys of a read at `revision`, unless the mirror is already past it.
    fn read(&mut self, kvs: &[Kv], revision: i64) {
        if revision >= self.revision {
            self.kvs = kvs.iter().map(|kv| (kv.key.clone(), kv.clone())).collect();
            self.revision = revision;
        }
    }
}

impl Mirror {
    pub fn new(etcd: Arc<Etcd>, prefix: String) -> Mirror {
        Mirror {
            etcd,
            prefix,
            state: Arc::new(watch::Sender::new(State::default())),
            follower: Mutex::new(None),
            reads: AtomicUsize::new(0),
        }
    }

    /// Every key under the prefix as the store holds it now: the mirror's while it is
    /// trusted, else a read (an error when the store does not answer).
    pub async fn current(&self) -> Result<Vec<Kv>, EtcdError> {
        if let Some(kvs) = self.mirrored().await {
            return Ok(kvs);
        }
        let before = self.state.borrow().revision;
        let (kvs, revision) = self.etcd.range_prefix(&self.prefix).await?;
        if revision < before {
            // The store went back (wiped, or restored from an older snapshot): the mirror and
            // its watch follow a history that is gone. Start again from this read.
            self.start_over(&kvs, revision);
        } else {
            self.state.send_modify(|s| s.read(&kvs, revision));
        }
        if self.reads.fetch_add(1, Ordering::Relaxed) >= 1 {
            self.follow();
        }
        Ok(kvs)
    }

    /// The mirror's keys if it is trusted; it is given one deadline to show this client's
    /// last write.
    async fn mirrored(&self) -> Option<Vec<Kv>> {
        if !self.etcd.answered_lately() {
            return None;
        }
        let written = self.etcd.written.load(Ordering::Relaxed);
        let mut state = self.state.subscribe();
        let shown = state.wait_for(|s| !s.up || s.revision >= written);
        let s = tokio::time::timeout(self.etcd.timeout, shown)
            .await
            .ok()?
            .ok()?;
        (s.up && s.revision >= written).then(|| s.kvs.values().cloned().collect())
    }

    /// Forgets the mirror, its follower and this client's last write, and takes the keys of a
    /// read at `revision` of a store whose history went back.
    fn start_over(&self, kvs: &[Kv], revision: i64) {
        if let Ok(mut follower) = self.follower.lock()
            && let Some(f) = follower.take()
        {
            f.abort();
        }
        self.state.send_modify(|s| {
            *s = State::default();
            s.read(kvs, revision);
        });
        self.etcd.written.store(revision, Ordering::Relaxed);
    }

    /// Starts following the stream from the mirror's revision, unless a follower runs.
    fn follow(&self) {
        let Ok(mut follower) = self.follower.lock() else {
            return;
        };
        if follower.as_ref().is_some_and(|f| !f.is_finished()) {
            return;
        }
        let start = self.state.borrow().revision + 1;
        *follower = Some(tokio::spawn(follow(
            self.etcd.clone(),
            self.prefix.clone(),
            self.state.clone(),
            start,
        )));
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        if let Ok(mut follower) = self.follower.lock()
            && let Some(f) = follower.take()
        {
            f.abort();
        }
    }
}

/// Applies the stream's changes to the mirror until the stream ends.
async fn follow(etcd: Arc<Etcd>, prefix: String, state: Arc<watch::Sender<State>>, start: i64) {
    let Ok(mut stream) = etcd.watch(&prefix, start).await else {
        return;
    };
    state.send_modify(|s| s.up = true);
    while let Ok(changes) = stream.next().await {
        state.send_modify(|s| s.apply(changes));
    }
    state.send_modify(|s| s.up = false);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, value: &str, revision: i64) -> Kv {
        Kv {
            key: key.into(),
            value: value.into(),
            create_revision: revision,
            mod_revision: revision,
            lease: 0,
        }
    }

    fn values(s: &State) -> Vec<(&str, &str)> {
        s.kvs
            .values()
            .map(|kv| (kv.key.as_str(), kv.value.as_str()))
            .collect()
    }

    #[test]
    fn changes_apply_once_in_order_and_a_transaction_whole() {
        let mut s = State::default();
        s.read(&[kv("/p/a", "1", 3), kv("/p/b", "1", 5)], 7);
        // A watch started before the read replays revisions 6 and 7: passed over.
        s.apply(vec![Change::Delete {
            key: "/p/b".into(),
            revision: 6,
        }]);
        s.apply(vec![Change::Put(kv("/p/c", "old", 7))]);
        assert_eq!(values(&s), [("/p/a", "1"), ("/p/b", "1")]);
        // One transaction: two changes at revision 8.
        s.apply(vec![
            Change::Put(kv("/p/a", "2", 8)),
            Change::Delete {
                key: "/p/b".into(),
                revision: 8,
            },
        ]);
        assert_eq!(values(&s), [("/p/a", "2")]);
        assert_eq!(s.revision, 8);
        // A read older than the mirror changes nothing.
        s.read(&[], 6);
        assert_eq!(values(&s), [("/p/a", "2")]);
    }
}
