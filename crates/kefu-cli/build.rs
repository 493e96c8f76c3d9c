//! Tests that need MySQL, PostgreSQL or Redis: ignored unless their URL is set.

#[path = "../../tests/support/services_cfg.rs"]
mod services_cfg;

fn main() {
    services_cfg::emit();
}
