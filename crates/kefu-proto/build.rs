//! Compiles `proto/` with protox, so building needs no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../proto");
    let file = format!("{root}/kefu/v1/cluster.proto");
    println!("cargo:rerun-if-changed={file}");
    let fds = protox::compile([&file], [root])?;
    tonic_prost_build::configure().bytes(".").compile_fds(fds)?;
    Ok(())
}
