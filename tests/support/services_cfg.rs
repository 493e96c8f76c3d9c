//! Shared by the build scripts of the crates whose tests need a real
//! service. Turns `KEFU_TEST_<SERVICE>_URL` into `cfg(kefu_test_<service>)`,
//! so a test whose service is not named is reported as *ignored*, with the
//! variable to set, instead of passing without running. Under `CI` the cfg
//! is always on: a missing URL there fails the tests that need it.

pub fn emit() {
    println!("cargo::rerun-if-env-changed=CI");
    let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
    for service in ["mysql", "postgres", "redis"] {
        let var = format!("KEFU_TEST_{}_URL", service.to_uppercase());
        println!("cargo::rerun-if-env-changed={var}");
        println!("cargo::rustc-check-cfg=cfg(kefu_test_{service})");
        let named = std::env::var(&var).is_ok_and(|v| !v.trim().is_empty());
        if named || ci {
            println!("cargo::rustc-cfg=kefu_test_{service}");
        }
    }
}
