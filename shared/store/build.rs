//! The migrations are embedded at compile time (`embed_migrations!`): rebuild this crate when
//! one is added or edited, or a binary would silently carry the old set.
fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
