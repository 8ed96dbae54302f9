//! Fixed-size bit sets for interned features and roles.
//!
//! Features are interned to dense ids at compile time, so "does plan P grant
//! feature F" is one load and one mask, whatever the number of features.

/// A set of small integers with a size fixed at creation.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub(crate) struct BitSet(Box<[u64]>);

impl BitSet {
    pub fn with_capacity(bits: usize) -> Self {
        BitSet(vec![0; bits.div_ceil(64)].into_boxed_slice())
    }

    pub fn insert(&mut self, i: u32) {
        let i = i as usize;
        if let Some(w) = self.0.get_mut(i / 64) {
            *w |= 1 << (i % 64);
        }
    }

    #[inline]
    pub fn contains(&self, i: u32) -> bool {
        let i = i as usize;
        self.0.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().enumerate().flat_map(|(wi, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let bit = w.trailing_zeros();
                w &= w.wrapping_sub(1); // clears the lowest set bit (w != 0 here)
                // A role id, so it fits the u32 that ids are.
                Some((wi as u32).wrapping_mul(64).wrapping_add(bit))
            })
        })
    }
}

/// The roles a caller holds: inline for the first 128 roles a policy declares, so
/// building it from a token allocates nothing for any realistic policy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RoleSet {
    inline: u128,
    spill: Option<BitSet>,
}

/// The features a token grants by name: the same small set, of feature ids.
pub(crate) type FeatureSet = RoleSet;

/// No granted features: what conditions under `not` are evaluated with (see
/// `Compiled::eval`).
pub(crate) static NO_FEATURES: FeatureSet = RoleSet::EMPTY;

impl RoleSet {
    /// The empty set, as a constant.
    pub const EMPTY: RoleSet = RoleSet {
        inline: 0,
        spill: None,
    };

    pub fn insert(&mut self, role: u32, total_roles: usize) {
        if role < 128 {
            self.inline |= 1 << role;
        } else {
            self.spill
                .get_or_insert_with(|| BitSet::with_capacity(total_roles))
                .insert(role);
        }
    }

    #[inline]
    pub fn contains(&self, role: u32) -> bool {
        if role < 128 {
            self.inline & (1 << role) != 0
        } else {
            self.spill.as_ref().is_some_and(|s| s.contains(role))
        }
    }

    /// Whether `f` holds for any role in the set; a plain bit loop, because this
    /// runs for every feature check.
    #[inline]
    pub fn any(&self, mut f: impl FnMut(u32) -> bool) -> bool {
        let mut w = self.inline;
        while w != 0 {
            if f(w.trailing_zeros()) {
                return true;
            }
            w &= w.wrapping_sub(1); // clears the lowest set bit (w != 0 here)
        }
        match &self.spill {
            None => false,
            Some(s) => s.iter().any(|r| r >= 128 && f(r)),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        let mut w = self.inline;
        let inline = std::iter::from_fn(move || {
            if w == 0 {
                return None;
            }
            let bit = w.trailing_zeros();
            w &= w.wrapping_sub(1); // clears the lowest set bit (w != 0 here)
            Some(bit)
        });
        inline.chain(
            self.spill
                .iter()
                .flat_map(|s| s.iter().filter(|&r| r >= 128)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitset_insert_contains_iter() {
        let mut s = BitSet::with_capacity(130);
        for i in [0, 63, 64, 129] {
            s.insert(i);
        }
        assert!(s.contains(63) && s.contains(64) && !s.contains(65));
        assert!(!s.contains(1000), "out of range is simply absent");
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![0, 63, 64, 129]);
    }

    #[test]
    fn roleset_spills_past_128() {
        let mut r = RoleSet::default();
        r.insert(2, 200);
        r.insert(150, 200);
        assert!(r.contains(2) && r.contains(150) && !r.contains(3));
        assert_eq!(r.iter().collect::<Vec<_>>(), vec![2, 150]);
        assert!(r.any(|x| x == 150) && r.any(|x| x == 2) && !r.any(|x| x == 3));
    }
}
