//! Compiles every `.proto` of the platform with the vendored `protoc`, so a fresh machine needs
//! no system protobuf compiler.

const PROTOS: [&str; 4] = [
    "common/v1/money.proto",
    "user/v1/user.proto",
    "inventory/v1/inventory.proto",
    "payment/v1/payment.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure().compile_with_config(config, &PROTOS, &["."])?;
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    Ok(())
}
