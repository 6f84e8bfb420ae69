//! Only for the `etcd` feature: etcd-client's build script needs protoc, which
//! `.cargo/protoc` finds in the `protoc-bin-vendored` crate. Depending on that crate here is
//! what makes cargo download and unpack it before any build script runs; this script only
//! says so when it has no binary for this platform.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    #[cfg(feature = "etcd")]
    if let Err(err) = protoc_bin_vendored::protoc_bin_path() {
        println!(
            "cargo::warning=protoc-bin-vendored has no protoc for this platform ({err}): \
             building etcd-client needs protoc on PATH or in PROTOC"
        );
    }
}
