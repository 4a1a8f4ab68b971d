//! The pooled upstream client against a loopback server that counts connections: the correct
//! client holds both invariants, each mutant breaks the one it was kept for.

mod pool;
