//! [`Few`]: a small map for the handful of entries one customer has.

/// A map of the few entries one customer has (products, enrollments) as a vector
/// searched in order: a hash table per customer would cost far more memory than the one
/// or two entries it holds, and the store keeps one per customer and index. A customer
/// with thousands of enrollments makes lookups linear, which a workload of such
/// customers would notice before anything else here.
pub(super) struct Few<K, V>(pub(super) Vec<(K, V)>);

impl<K, V> Default for Few<K, V> {
    fn default() -> Self {
        Few(Vec::new())
    }
}

impl<K: PartialEq, V> Few<K, V> {
    pub(super) fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: std::borrow::Borrow<Q>,
        Q: PartialEq + ?Sized,
    {
        self.0
            .iter()
            .find(|(k, _)| k.borrow() == key)
            .map(|(_, v)| v)
    }

    pub(super) fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: std::borrow::Borrow<Q>,
        Q: PartialEq + ?Sized,
    {
        self.0
            .iter_mut()
            .find(|(k, _)| k.borrow() == key)
            .map(|(_, v)| v)
    }

    /// The value of `key`, inserted by `make` if absent.
    pub(super) fn get_or_insert_with<Q>(&mut self, key: &Q, make: impl FnOnce() -> (K, V)) -> &mut V
    where
        K: std::borrow::Borrow<Q>,
        Q: PartialEq + ?Sized,
    {
        let at = match self.0.iter().position(|(k, _)| k.borrow() == key) {
            Some(at) => at,
            None => {
                self.0.push(make());
                self.0.len() - 1
            }
        };
        &mut self.0[at].1
    }

    pub(super) fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => Some(std::mem::replace(v, value)),
            None => {
                self.0.push((key, value));
                None
            }
        }
    }

    pub(super) fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: PartialEq + ?Sized,
    {
        let at = self.0.iter().position(|(k, _)| k.borrow() == key)?;
        Some(self.0.swap_remove(at).1)
    }

    pub(super) fn keys(&self) -> impl Iterator<Item = &K> {
        self.0.iter().map(|(k, _)| k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_behaves_as_a_map() {
        let mut few: Few<Box<str>, u32> = Few::default();
        assert_eq!(few.insert("a".into(), 1), None);
        assert_eq!(few.insert("b".into(), 2), None);
        assert_eq!(few.insert("a".into(), 3), Some(1), "a key is there once");
        *few.get_or_insert_with("c", || ("c".into(), 0)) += 5;
        *few.get_or_insert_with("a", || ("a".into(), 0)) += 10;
        assert_eq!(few.get("a"), Some(&13));
        assert_eq!(few.get("c"), Some(&5));
        if let Some(b) = few.get_mut("b") {
            *b = 20;
        }
        assert_eq!(few.remove("b"), Some(20));
        assert_eq!(few.remove("b"), None);
        let mut keys: Vec<&str> = few.keys().map(|k| &**k).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["a", "c"]);
    }
}
