//! The threat model's world is here: the hostile tests of other files run in it, and this one
//! fails on a machine where it cannot be made, rather than letting them pass without it.

use crate::support;

#[test]
fn the_hostile_world_can_be_made_here() {
    // Root, a new pid namespace, and processes as `nobody` and `daemon`.
    let _ = support::hostile::available("the_hostile_world_can_be_made_here");
}
