//! The active policy, swapped atomically when its file changes; never fails open.
//!
//! A [`PolicyStore`] holds the compiled policy behind an `ArcSwap`: a request takes
//! one snapshot ([`PolicyStore::policy`]) and uses it throughout, so it never sees
//! half of one policy and half of another, and no lock is taken on the request path.
//! A reload that fails — bad YAML, an unknown feature, a deleted file — changes
//! nothing: the last good policy keeps serving, and the located error is logged at
//! `error` level and kept in [`PolicyStore::status`].
//!
//! ```
//! use tiergate::reload::PolicyStore;
//!
//! let dir = std::env::temp_dir().join(format!("tiergate-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let path = dir.join("policy.yaml");
//! std::fs::write(&path, "version: 1\nplans: { free: {} }\n")?;
//!
//! let store = PolicyStore::open(&path)?;           // a bad file here is an error: refuse to start
//! let first = store.policy().revision();
//!
//! std::fs::write(&path, "version: 1\nplans: { free: {}, pro: {} }\n")?;
//! store.reload()?;                                 // or store.watch(..) to follow the file
//! assert_ne!(store.policy().revision(), first);
//!
//! std::fs::write(&path, "version: 1\nplans: { free: { features: [nope] } }\n")?;
//! assert!(store.reload().is_err());                // rejected: the last good policy stays
//! assert_eq!(store.policy().plans().count(), 2);
//! assert_eq!(store.status().last_error.unwrap().line, Some(2));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod store;
mod watcher;

pub use store::{LastError, PolicyStore, ReloadOutcome, StoreStatus};
pub use watcher::{WatchHandle, WatchOptions};
