//! Runtime state: the validated config and what is built from it, behind ArcSwap.
