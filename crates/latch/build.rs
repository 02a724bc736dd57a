//! Declares the `latch_pg` cfg: set when `LATCH_TEST_POSTGRES_URL` is present at build time,
//! so the PostgreSQL variants of the API tests run instead of being reported as ignored.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(latch_pg)");
    println!("cargo::rerun-if-env-changed=LATCH_TEST_POSTGRES_URL");
    if std::env::var("LATCH_TEST_POSTGRES_URL").is_ok_and(|v| !v.trim().is_empty()) {
        println!("cargo::rustc-cfg=latch_pg");
    }
}
