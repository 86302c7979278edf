//! Every WGSL file parses and validates with naga, with no GPU needed (DESIGN §7).

use monomial_nfn::backend::gpu::Kernel;

#[test]
fn every_shader_validates_with_naga() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let on_disk = std::fs::read_dir(&dir)
        .expect("shaders/ exists")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "wgsl"))
        })
        .count();
    assert_eq!(
        on_disk,
        Kernel::ALL.len(),
        "every file in shaders/ is compiled by the GPU backend"
    );
    for kernel in Kernel::ALL {
        let (name, src) = (kernel.shader().name, kernel.shader().source());
        let src = src.as_str();
        let module = naga::front::wgsl::parse_str(src)
            .unwrap_or_else(|e| panic!("{name}.wgsl: {}", e.emit_to_string(src)));
        let mut v = naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::empty(),
        );
        v.validate(&module)
            .unwrap_or_else(|e| panic!("{name}.wgsl: {e:?}"));
        assert!(
            module.entry_points.iter().any(|ep| ep.name == name),
            "{name}.wgsl has an entry point named {name}"
        );
    }
}
