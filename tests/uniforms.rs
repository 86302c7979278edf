//! Every shader's uniform struct is declared once, in Rust, and its WGSL text generated from that
//! declaration: naga (no GPU needed) must lay the generated struct out with the Rust struct's
//! size and member offsets, and no shader file may declare the struct itself.

use monomial_nfn::backend::gpu::Kernel;

/// The uniform struct of `src`: name, span in bytes and (member, offset) in order.
fn wgsl_uniform(name: &str, src: &str) -> (String, usize, Vec<(String, usize)>) {
    let module = naga::front::wgsl::parse_str(src)
        .unwrap_or_else(|e| panic!("{name}.wgsl: {}", e.emit_to_string(src)));
    let mut uniforms = module
        .global_variables
        .iter()
        .filter(|(_, g)| g.space == naga::AddressSpace::Uniform);
    let (_, var) = uniforms
        .next()
        .unwrap_or_else(|| panic!("{name}.wgsl declares a uniform"));
    assert!(
        uniforms.next().is_none(),
        "{name}.wgsl declares one uniform"
    );
    let ty = &module.types[var.ty];
    let naga::TypeInner::Struct { members, span } = &ty.inner else {
        panic!("{name}.wgsl's uniform is a struct");
    };
    let fields = members
        .iter()
        .map(|m| (m.name.clone().unwrap_or_default(), m.offset as usize))
        .collect();
    (ty.name.clone().unwrap_or_default(), *span as usize, fields)
}

#[test]
fn every_uniform_matches_its_wgsl_struct() {
    for kernel in Kernel::ALL {
        let shader = kernel.shader();
        let rust = shader.uniform;
        assert!(
            !shader.body.contains(&format!("struct {} ", rust.name)),
            "{}.wgsl declares {} itself; it is generated from the Rust declaration",
            shader.name,
            rust.name
        );
        let (name, span, fields) = wgsl_uniform(shader.name, &shader.source());
        assert_eq!(name, rust.name, "{}.wgsl: uniform struct name", shader.name);
        assert_eq!(span, rust.size, "{}.wgsl: {name} size", shader.name);
        let rust_fields: Vec<(String, usize)> = rust
            .fields
            .iter()
            .map(|f| (f.name.to_string(), f.offset))
            .collect();
        assert_eq!(
            fields, rust_fields,
            "{}.wgsl: {name} members and offsets",
            shader.name
        );
    }
}
