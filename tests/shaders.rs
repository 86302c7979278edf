//! Every WGSL file parses and validates with naga, with no GPU needed (DESIGN §7).

mod common;

use monomial_nfn::backend::gpu::Kernel;

#[test]
fn every_shader_validates_with_naga() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .expect("shaders/ exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "wgsl"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    // One file per kernel, plus the preludes: shared functions prepended to the shaders using them.
    let preludes = [
        ("math", include_str!("../shaders/math.wgsl")),
        ("workgroup", include_str!("../shaders/workgroup.wgsl")),
    ];
    let mut compiled: Vec<String> = Kernel::ALL
        .iter()
        .map(|k| k.shader().name.to_string())
        .chain(preludes.iter().map(|(name, _)| name.to_string()))
        .collect();
    compiled.sort();
    assert_eq!(
        on_disk, compiled,
        "every file in shaders/ is compiled by the GPU backend"
    );
    for (name, text) in preludes {
        assert!(
            Kernel::ALL
                .iter()
                .any(|k| k.shader().prelude.contains(text)),
            "{name}.wgsl is prepended to some shader"
        );
    }
    for kernel in Kernel::ALL {
        let (name, src) = (kernel.shader().name, kernel.shader().source());
        let src = src.as_str();
        let module = naga::front::wgsl::parse_str(src)
            .unwrap_or_else(|e| panic!("{name}.wgsl: {}", e.emit_to_string(src)));
        let mut v = naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::empty(),
        );
        let info = v
            .validate(&module)
            .unwrap_or_else(|e| panic!("{name}.wgsl: {e:?}"));
        // Each pipeline's constants resolve every override (workgroup sizes and workgroup
        // array lengths included) to a module that validates, as the device compiles it, within
        // WebGPU's minimum limits: 256 threads and 16 KiB of workgroup memory.
        for constants in kernel.shader().variants {
            let constants: naga::back::PipelineConstants =
                constants.iter().map(|&(k, x)| (k.to_string(), x)).collect();
            let (resolved, _) = naga::back::pipeline_constants::process_overrides(
                &module,
                &info,
                Some((naga::ShaderStage::Compute, name)),
                &constants,
            )
            .unwrap_or_else(|e| panic!("{name}.wgsl with {constants:?}: {e:?}"));
            let ep = resolved.entry_points.iter().find(|ep| ep.name == name);
            let threads: u32 = ep.map_or(0, |ep| ep.workgroup_size.iter().product());
            let shared: u32 = resolved
                .global_variables
                .iter()
                .filter(|(_, g)| g.space == naga::AddressSpace::WorkGroup)
                .map(|(_, g)| resolved.types[g.ty].inner.size(resolved.to_ctx()))
                .sum();
            assert!(
                (1..=256).contains(&threads) && shared <= 16_384,
                "{name}.wgsl with {constants:?}: {threads} threads, {shared} bytes shared"
            );
        }
        assert!(
            module.entry_points.iter().any(|ep| ep.name == name),
            "{name}.wgsl has an entry point named {name}"
        );
        // WebGPU's minimum limit of storage buffers per shader stage (the GEMM's epilogue
        // brings it to the limit).
        let storage = module
            .global_variables
            .iter()
            .filter(|(_, g)| matches!(g.space, naga::AddressSpace::Storage { .. }))
            .count();
        assert!(storage <= 8, "{name}.wgsl binds {storage} storage buffers");
    }
}

/// Every pipeline (each kernel's every variant, compiled on first use in normal runs) compiles
/// on the GPU, the driver included.
#[test]
fn every_pipeline_compiles_on_the_gpu() {
    let Some(gpu) = common::gpu_or_skip() else {
        return;
    };
    let expected: usize = Kernel::ALL.iter().map(|k| k.shader().variants.len()).sum();
    assert_eq!(gpu.compile_all().unwrap(), expected);
    assert!(
        expected > Kernel::ALL.len(),
        "the GEMM has several pipelines"
    );
}
