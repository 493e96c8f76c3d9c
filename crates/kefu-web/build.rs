// rust-embed reads web/dist when the crate compiles; a rebuild of the front
// end adds and removes hashed files, so any change there recompiles.
fn main() {
    println!("cargo:rerun-if-changed=../../web/dist");
    println!("cargo:rerun-if-changed=../../web/dist/assets");
}
