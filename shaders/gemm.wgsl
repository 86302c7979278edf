// gemm: C = op(A)·op(B) (+ C if flags & 1) (+ bias broadcast over rows if flags & 2), where op
// transposes A if flags & 4 (A stored k×m) and B if flags & 8 (B stored n×k). CPU twin:
// src/backend/cpu/gemm.rs.
// Threads: a 16×16 workgroup computes a 64×64 tile of C; thread (x, y) owns rows y + 16i and
// columns x + 16j (i, j < 4). Layout: op(A) m×k, op(B) k×n, C m×n, all row-major, contiguous.
// Bindings: 0 A (read), 1 B (read), 2 bias (read, length n; any buffer when unused),
// 3 C (read_write), 4 uniform GemmParams.

// The uniform GemmParams is declared in Rust (src/backend/gpu/ops/) and prepended by the host.

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<uniform> p: GemmParams;

const TILE: u32 = 64u;
const KT: u32 = 16u;

// Both tiles are stored k-major: ta[kk * TILE + row], tb[kk * TILE + col].
var<workgroup> ta: array<f32, 1024>;
var<workgroup> tb: array<f32, 1024>;

@compute @workgroup_size(16, 16)
fn gemm(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let row0 = wid.y * TILE;
    let col0 = wid.x * TILE;
    let tid = lid.y * 16u + lid.x;
    var acc: array<f32, 16>;
    for (var i = 0u; i < 16u; i++) {
        acc[i] = 0.0;
    }
    for (var k0 = p.k_begin; k0 < p.k_end; k0 += KT) {
        for (var i = 0u; i < 4u; i++) {
            let idx = tid + i * 256u;
            let r = idx / KT;
            let kk = idx % KT;
            var av = 0.0;
            if (row0 + r < p.m && k0 + kk < p.k_end) {
                if ((p.flags & 4u) != 0u) {
                    av = a[(k0 + kk) * p.m + row0 + r];
                } else {
                    av = a[(row0 + r) * p.k + k0 + kk];
                }
            }
            ta[kk * TILE + r] = av;
            let kb = idx / TILE;
            let cb = idx % TILE;
            var bv = 0.0;
            if (k0 + kb < p.k_end && col0 + cb < p.n) {
                if ((p.flags & 8u) != 0u) {
                    bv = b[(col0 + cb) * p.k + k0 + kb];
                } else {
                    bv = b[(k0 + kb) * p.n + col0 + cb];
                }
            }
            tb[kb * TILE + cb] = bv;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < KT; kk++) {
            var ar: array<f32, 4>;
            var br: array<f32, 4>;
            for (var i = 0u; i < 4u; i++) {
                ar[i] = ta[kk * TILE + lid.y + 16u * i];
                br[i] = tb[kk * TILE + lid.x + 16u * i];
            }
            for (var i = 0u; i < 4u; i++) {
                for (var j = 0u; j < 4u; j++) {
                    acc[i * 4u + j] = fma(ar[i], br[j], acc[i * 4u + j]);
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        let row = row0 + lid.y + 16u * i;
        for (var j = 0u; j < 4u; j++) {
            let col = col0 + lid.x + 16u * j;
            if (row < p.m && col < p.n) {
                let at = p.c_base + row * p.n + col;
                var v = acc[i * 4u + j];
                if ((p.flags & 1u) != 0u) {
                    v = v + c[at];
                }
                if ((p.flags & 2u) != 0u) {
                    v = v + bias[col];
                }
                c[at] = v;
            }
        }
    }
}
