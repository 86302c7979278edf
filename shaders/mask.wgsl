// mask: y[a, s, k] (+)= x[a, s, k] · mask[a, k] (dropout; its own backward). CPU twin:
// src/backend/cpu/mask.rs.
// Threads: one per element of x, index = gid.x + gid.y * row.
// Layout: x and y (A, S, K) row-major, mask (A, K).
// Bindings: 0 x, 1 mask (read), 2 y (read_write), 3 uniform MaskParams.

// The uniform MaskParams is declared in Rust (src/backend/gpu/ops/) and prepended by the host.

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> m: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> p: MaskParams;

@compute @workgroup_size(256)
fn mask(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x + gid.y * p.row;
    if (i >= p.len) {
        return;
    }
    let v = x[i] * m[(i / p.block) * p.inner + i % p.inner];
    if ((p.flags & 1u) != 0u) {
        y[i] += v;
    } else {
        y[i] = v;
    }
}
