//! Entries by user id: found by hashing, walked in id order.

use foldhash::{HashMap, HashMapExt as _};

/// Entries by user id, first one wins: found by hashing, walked in id
/// order (which the model and the order of findings follow). Filled by
/// `insert`, then `finish`ed before it is walked.
pub(super) struct Keyed<'a, V> {
    index: HashMap<&'a str, V>,
    sorted: Vec<(&'a str, V)>,
}

impl<V> Default for Keyed<'_, V> {
    fn default() -> Self {
        Keyed {
            index: HashMap::default(),
            sorted: Vec::new(),
        }
    }
}

impl<'a, V: Copy> Keyed<'a, V> {
    pub(super) fn with_capacity(capacity: usize) -> Self {
        Keyed {
            index: HashMap::with_capacity(capacity),
            sorted: Vec::with_capacity(capacity),
        }
    }

    /// Adds `id` unless it is there already.
    pub(super) fn insert(&mut self, id: &'a str, value: V) {
        if let std::collections::hash_map::Entry::Vacant(slot) = self.index.entry(id) {
            slot.insert(value);
            self.sorted.push((id, value));
        }
    }

    /// Puts the entries in id order (linear when they came in order).
    pub(super) fn finish(&mut self) {
        self.sorted.sort_by(|a, b| a.0.cmp(b.0));
    }

    pub(super) fn get(&self, id: &str) -> Option<&V> {
        self.index.get(id)
    }

    pub(super) fn contains_key(&self, id: &str) -> bool {
        self.index.contains_key(id)
    }

    pub(super) fn len(&self) -> usize {
        self.sorted.len()
    }

    pub(super) fn keys(&self) -> impl Iterator<Item = &&'a str> {
        self.sorted.iter().map(|(k, _)| k)
    }

    pub(super) fn values(&self) -> impl Iterator<Item = &V> {
        self.sorted.iter().map(|(_, v)| v)
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&&'a str, &V)> {
        self.sorted.iter().map(|(k, v)| (k, v))
    }
}

impl<V> std::ops::Index<&str> for Keyed<'_, V> {
    type Output = V;
    fn index(&self, id: &str) -> &V {
        &self.index[id]
    }
}
