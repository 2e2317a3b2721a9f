//! The one integration-test binary: in-process apps (`harness`), split-role clusters on the real
//! backends, and process-level smoke tests of the built executable.

mod foundation;
mod harness;
mod smoke;
