//! ch10's signal-demo checks on our binary, and the twins that prove they can fail.

use harness::testing::assert_reference_passes;

#[test]
fn reference_passes_every_check() {
    assert_reference_passes("ch10", "ch10-signals", env!("CARGO_BIN_EXE_ch10-signals"));
}
