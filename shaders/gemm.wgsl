// gemm: C = op(A)·op(B) (+ C if flags & 1) (+ bias broadcast over rows if flags & 2), where op
// transposes A if flags & 4 (A stored k×m) and B if flags & 8 (B stored n×k). CPU twin:
// src/backend/cpu/gemm.rs.
// Threads: a 16×16 workgroup computes a (16·RM)×(16·RN) tile of C; thread (x, y) owns rows
// y + 16i (i < RM) and columns x + 16j (j < RN). RM and RN are pipeline constants: the host
// compiles one pipeline per tile shape and picks one per GEMM shape (src/backend/gpu/ops/gemm.rs;
// this model's GEMMs are tall and narrow, n from 5 to 144).
// Layout: op(A) m×k, op(B) k×n, C m×n, all row-major, contiguous.
// Bindings: 0 A (read), 1 B (read), 2 bias (read, length n; any buffer when unused),
// 3 C (read_write), 4 A and 5 B again as vec4 arrays (read; used when flags & 16, flags & 32:
// the host sets them when the operand's contiguous dimension is a multiple of 4, so every
// vec4 is 16-byte aligned and inside the tile's k range or matrix), 6 uniform GemmParams.

// The uniform GemmParams is declared in Rust (src/backend/gpu/ops/) and prepended by the host.

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> b4: array<vec4<f32>>;
@group(0) @binding(6) var<uniform> p: GemmParams;

// Rows (RM) and columns (RN) of C per thread; RM ≤ 8, RN ≤ 4.
override RM: u32 = 4u;
override RN: u32 = 4u;
// k per shared tile.
const KT: u32 = 16u;
// Both shared tiles are k-major, each k row padded by 2 floats. Where a warp's 32 stores run
// along k (16 values of k for two rows or columns), a row stride ≡ 2 (mod 32) puts them in 32
// different banks; elsewhere they are consecutive. The inner loop's loads are broadcasts (A) or
// consecutive (B).
const PAD: u32 = 2u;
var<workgroup> ta: array<f32, KT * (128u + PAD)>;
var<workgroup> tb: array<f32, KT * (64u + PAD)>;

// Loads the tm×KT tile of op(A) at (row0, k0) into ta, 256 threads together. Neighbouring
// threads read neighbouring addresses: along k when A is stored m×k, along m when it is stored
// transposed; four at a time where aligned.
fn load_a(k0: u32, k_end: u32, tid: u32, tm: u32, sa: u32, row0: u32) {
    let trans = (p.flags & 4u) != 0u;
    if ((p.flags & 16u) != 0u) {
        for (var q = tid; q < tm * KT / 4u; q += 256u) {
            var r = q / (KT / 4u);
            var kk = 4u * (q % (KT / 4u));
            if (trans) {
                r = 4u * (q % (tm / 4u));
                kk = q / (tm / 4u);
            }
            var v = vec4<f32>(0.0);
            if (row0 + r < p.m && k0 + kk < k_end) {
                if (trans) {
                    v = a4[((k0 + kk) * p.m + row0 + r) / 4u];
                } else {
                    v = a4[((row0 + r) * p.k + k0 + kk) / 4u];
                }
            }
            for (var c = 0u; c < 4u; c++) {
                if (trans) {
                    ta[kk * sa + r + c] = v[c];
                } else {
                    ta[(kk + c) * sa + r] = v[c];
                }
            }
        }
        return;
    }
    for (var idx = tid; idx < tm * KT; idx += 256u) {
        var r = idx / KT;
        var kk = idx % KT;
        if (trans) {
            r = idx % tm;
            kk = idx / tm;
        }
        var v = 0.0;
        if (row0 + r < p.m && k0 + kk < k_end) {
            if (trans) {
                v = a[(k0 + kk) * p.m + row0 + r];
            } else {
                v = a[(row0 + r) * p.k + k0 + kk];
            }
        }
        ta[kk * sa + r] = v;
    }
}

// Loads the KT×tn tile of op(B) at (k0, col0) into tb, the same way: along n when B is stored
// k×n, along k when it is stored transposed.
fn load_b(k0: u32, k_end: u32, tid: u32, tn: u32, sb: u32, col0: u32) {
    let trans = (p.flags & 8u) != 0u;
    if ((p.flags & 32u) != 0u) {
        for (var q = tid; q < tn * KT / 4u; q += 256u) {
            var col = 4u * (q % (tn / 4u));
            var kk = q / (tn / 4u);
            if (trans) {
                col = q / (KT / 4u);
                kk = 4u * (q % (KT / 4u));
            }
            var v = vec4<f32>(0.0);
            if (k0 + kk < k_end && col0 + col < p.n) {
                if (trans) {
                    v = b4[((col0 + col) * p.k + k0 + kk) / 4u];
                } else {
                    v = b4[((k0 + kk) * p.n + col0 + col) / 4u];
                }
            }
            for (var c = 0u; c < 4u; c++) {
                if (trans) {
                    tb[(kk + c) * sb + col] = v[c];
                } else {
                    tb[kk * sb + col + c] = v[c];
                }
            }
        }
        return;
    }
    for (var idx = tid; idx < tn * KT; idx += 256u) {
        var col = idx % tn;
        var kk = idx / tn;
        if (trans) {
            col = idx / KT;
            kk = idx % KT;
        }
        var v = 0.0;
        if (k0 + kk < k_end && col0 + col < p.n) {
            if (trans) {
                v = b[(col0 + col) * p.k + k0 + kk];
            } else {
                v = b[(k0 + kk) * p.n + col0 + col];
            }
        }
        tb[kk * sb + col] = v;
    }
}

@compute @workgroup_size(16, 16)
fn gemm(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    // Chunk wid.z of k (one chunk unless the host split k, steps::Split).
    let k_begin = wid.z * p.k_chunk;
    let k_end = min(k_begin + p.k_chunk, p.k);
    let c_base = wid.z * p.c_chunk;
    let tm = 16u * RM;
    let tn = 16u * RN;
    let sa = tm + PAD;
    let sb = tn + PAD;
    let row0 = wid.y * tm;
    let col0 = wid.x * tn;
    let tid = lid.y * 16u + lid.x;
    var acc: array<f32, 32>;
    for (var i = 0u; i < RM * RN; i++) {
        acc[i] = 0.0;
    }
    for (var k0 = k_begin; k0 < k_end; k0 += KT) {
        load_a(k0, k_end, tid, tm, sa, row0);
        load_b(k0, k_end, tid, tn, sb, col0);
        workgroupBarrier();
        for (var kk = 0u; kk < KT; kk++) {
            var ar: array<f32, 8>;
            var br: array<f32, 4>;
            for (var i = 0u; i < RM; i++) {
                ar[i] = ta[kk * sa + lid.y + 16u * i];
            }
            for (var j = 0u; j < RN; j++) {
                br[j] = tb[kk * sb + lid.x + 16u * j];
            }
            for (var i = 0u; i < RM; i++) {
                for (var j = 0u; j < RN; j++) {
                    acc[i * RN + j] = fma(ar[i], br[j], acc[i * RN + j]);
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < RM; i++) {
        let row = row0 + lid.y + 16u * i;
        for (var j = 0u; j < RN; j++) {
            let col = col0 + lid.x + 16u * j;
            if (row < p.m && col < p.n) {
                let at = c_base + row * p.n + col;
                var v = acc[i * RN + j];
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
