// gemm: C = op(A)·op(B) (+ C if flags & 1) (+ bias broadcast over rows if flags & 2), where op
// transposes A if flags & 4 (A stored k×m) and B if flags & 8 (B stored n×k). CPU twin:
// src/backend/cpu/gemm.rs.
// Threads: TX·TY per workgroup (at most 256), TX along columns and TY along rows; thread
// (tx, ty) owns rows ty + TY·i (i < RM) and the four columns 4·tx .. 4·tx + 3 of a (RM·TY)×(4·TX)
// tile of C, accumulated in RM named vec4 registers (no arrays indexed at run time, which GPUs
// keep in slow local memory). TX, TY and RM are pipeline constants: the host compiles one
// pipeline per tile shape and picks one per GEMM (src/backend/gpu/ops/gemm.rs and
// steps::gemm_split: tall products, n from 5 to 144 in this model, by n; parameter gradients
// split along k, m and n from 1 to 160, by least padding: tiles of 144×48, 16×144 and 144×16
// cover 144 exactly), and the tall tiles again with each EPILOGUE (below). Both tiles fit in
// 16 KiB of workgroup memory, WebGPU's minimum.
// Workgroup z sums chunk z of k (the host splits long inner dimensions: steps::Split).
// Layout: op(A) m×k, op(B) k×n, C m×n, all row-major, contiguous.
// Bindings: 0 A (read), 1 B (read), 2 bias (read, length n; any buffer when unused),
// 3 C (read_write), 4 A and 5 B again as vec4 arrays (read; used when flags & 16, flags & 32:
// the host sets them when the operand's contiguous dimension is a multiple of 4, so every
// vec4 is 16-byte aligned and inside the tile's k range or matrix), 6 e_out (read_write) and
// 7 e_in (read) of the elementwise epilogue (any buffers when unused), 8 uniform GemmParams.
// Epilogue (src/backend/gpu/epilogue.rs: the activation or activation gradient that reads
// this C next, folded in), by the pipeline constant EPILOGUE: 1, e_out = act(C); 2, e_out
// (+ e_out if flags & 64) = C ⊙ act'(e_in); with act = p.act: the expressions of
// activation.wgsl and activation_grad.wgsl, applied to the value stored in C.

// The uniform GemmParams is declared in Rust (src/backend/gpu/ops/) and prepended by the host,
// with shaders/math.wgsl (activate, activation_derivative).

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> b4: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> e_out: array<f32>;
@group(0) @binding(7) var<storage, read> e_in: array<f32>;
@group(0) @binding(8) var<uniform> p: GemmParams;

// Threads along columns and rows, and rows per thread (1 to 9; tm = RM·TY a multiple of 4).
override TX: u32 = 16u;
override TY: u32 = 16u;
override RM: u32 = 8u;
// 0 none, 1 activation, 2 activation gradient (a constant, so the other pipelines carry none).
override EPILOGUE: u32 = 0u;
// Derived from the three above (WGSL makes them overrides because they depend on overrides);
// the host never sets them: a workgroup size other than TX·TY would write other tiles' rows.
override WG: u32 = TX * TY;
// k per shared tile (steps::Split makes k chunks multiples of it).
const KT: u32 = 16u;
// Shared tiles, k-major. ta holds the tile's RM·TY rows of op(A) per k, its row stride ≡ 2
// (mod 32) so that a warp's stores along k (16 values of k for two rows) hit 32 different
// banks; reads are broadcasts (threads of one ty) or consecutive. tb holds TX vec4 of op(B) per
// k, padded by one vec4: reads are consecutive vec4, stores of whole vec4s.
override SA: u32 = (TY * RM + 29u) / 32u * 32u + 2u;
override SB: u32 = TX + 1u;
var<workgroup> ta: array<f32, KT * SA>;
var<workgroup> tb: array<vec4<f32>, KT * SB>;

// Loads the tm×KT tile of op(A) at (row0, k0) into ta, the workgroup's threads together. Neighbouring
// threads read neighbouring addresses: along k when A is stored m×k, along m when it is stored
// transposed; four at a time where aligned.
fn load_a(k0: u32, k_end: u32, tid: u32, tm: u32, row0: u32) {
    let trans = (p.flags & 4u) != 0u;
    if ((p.flags & 16u) != 0u) {
        for (var q = tid; q < tm * KT / 4u; q += WG) {
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
            if (trans) {
                ta[kk * SA + r] = v.x;
                ta[kk * SA + r + 1u] = v.y;
                ta[kk * SA + r + 2u] = v.z;
                ta[kk * SA + r + 3u] = v.w;
            } else {
                ta[kk * SA + r] = v.x;
                ta[(kk + 1u) * SA + r] = v.y;
                ta[(kk + 2u) * SA + r] = v.z;
                ta[(kk + 3u) * SA + r] = v.w;
            }
        }
        return;
    }
    for (var idx = tid; idx < tm * KT; idx += WG) {
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
        ta[kk * SA + r] = v;
    }
}

// Loads the KT×tn tile of op(B) at (k0, col0) into tb, the workgroup's threads together, each storing
// whole vec4s (no component writes, which WGSL may implement as writes of the whole vector).
// Stored k×n with n a multiple of 4, a thread reads four columns as one vec4; otherwise it
// reads its four columns one by one, neighbouring threads taking neighbouring addresses: along
// n when B is stored k×n, along k when it is stored transposed.
fn load_b(k0: u32, k_end: u32, tid: u32, tn: u32, col0: u32) {
    let trans = (p.flags & 8u) != 0u;
    let groups = tn / 4u;
    for (var q = tid; q < groups * KT; q += WG) {
        var g = q % groups;
        var kk = q / groups;
        if (trans) {
            g = q / KT;
            kk = q % KT;
        }
        let col = col0 + 4u * g;
        var v = vec4<f32>(0.0);
        if (k0 + kk < k_end) {
            if ((p.flags & 32u) != 0u && !trans) {
                if (col < p.n) {
                    v = b4[((k0 + kk) * p.n + col) / 4u];
                }
            } else {
                for (var j = 0u; j < 4u; j++) {
                    if (col + j < p.n) {
                        if (trans) {
                            v[j] = b[(col + j) * p.k + k0 + kk];
                        } else {
                            v[j] = b[(k0 + kk) * p.n + col + j];
                        }
                    }
                }
            }
        }
        tb[kk * SB + g] = v;
    }
}

// Writes one value of C at (row, col) of chunk c_base: plus C (flags & 1), plus the bias; then
// the epilogue's value.
fn put(row: u32, col: u32, c_base: u32, v: f32) {
    if (col >= p.n) {
        return;
    }
    let at = c_base + row * p.n + col;
    var x = v;
    if ((p.flags & 1u) != 0u) {
        x = x + c[at];
    }
    if ((p.flags & 2u) != 0u) {
        x = x + bias[col];
    }
    c[at] = x;
    if (EPILOGUE == 1u) {
        e_out[at] = activate(x, p.act);
    }
    if (EPILOGUE == 2u) {
        let v = x * activation_derivative(e_in[at], p.act);
        if ((p.flags & 64u) != 0u) {
            e_out[at] = e_out[at] + v;
        } else {
            e_out[at] = v;
        }
    }
}

// Writes a thread's four columns of one row.
fn put_row(row: u32, col: u32, c_base: u32, v: vec4<f32>) {
    if (row >= p.m) {
        return;
    }
    put(row, col, c_base, v.x);
    put(row, col + 1u, c_base, v.y);
    put(row, col + 2u, c_base, v.z);
    put(row, col + 3u, c_base, v.w);
}

@compute @workgroup_size(WG)
fn gemm(@builtin(local_invocation_index) tid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let tm = RM * TY;
    let tn = 4u * TX;
    let tx = tid % TX;
    let ty = tid / TX;
    let row0 = wid.y * tm;
    let col0 = wid.x * tn;
    // Chunk wid.z of k (one chunk unless the host split k).
    let k_begin = wid.z * p.k_chunk;
    let k_end = min(k_begin + p.k_chunk, p.k);
    let c_base = wid.z * p.c_chunk;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    var acc4 = vec4<f32>(0.0);
    var acc5 = vec4<f32>(0.0);
    var acc6 = vec4<f32>(0.0);
    var acc7 = vec4<f32>(0.0);
    var acc8 = vec4<f32>(0.0);
    for (var k0 = k_begin; k0 < k_end; k0 += KT) {
        load_a(k0, k_end, tid, tm, row0);
        load_b(k0, k_end, tid, tn, col0);
        workgroupBarrier();
        for (var kk = 0u; kk < KT; kk++) {
            let bv = tb[kk * SB + tx];
            let at = kk * SA + ty;
            // RM is a pipeline constant: the untaken branches compile away.
            acc0 = fma(vec4<f32>(ta[at]), bv, acc0);
            if (RM > 1u) {
                acc1 = fma(vec4<f32>(ta[at + TY]), bv, acc1);
            }
            if (RM > 2u) {
                acc2 = fma(vec4<f32>(ta[at + 2u * TY]), bv, acc2);
            }
            if (RM > 3u) {
                acc3 = fma(vec4<f32>(ta[at + 3u * TY]), bv, acc3);
            }
            if (RM > 4u) {
                acc4 = fma(vec4<f32>(ta[at + 4u * TY]), bv, acc4);
            }
            if (RM > 5u) {
                acc5 = fma(vec4<f32>(ta[at + 5u * TY]), bv, acc5);
            }
            if (RM > 6u) {
                acc6 = fma(vec4<f32>(ta[at + 6u * TY]), bv, acc6);
            }
            if (RM > 7u) {
                acc7 = fma(vec4<f32>(ta[at + 7u * TY]), bv, acc7);
            }
            if (RM > 8u) {
                acc8 = fma(vec4<f32>(ta[at + 8u * TY]), bv, acc8);
            }
        }
        workgroupBarrier();
    }
    let row = row0 + ty;
    let col = col0 + 4u * tx;
    put_row(row, col, c_base, acc0);
    if (RM > 1u) {
        put_row(row + TY, col, c_base, acc1);
    }
    if (RM > 2u) {
        put_row(row + 2u * TY, col, c_base, acc2);
    }
    if (RM > 3u) {
        put_row(row + 3u * TY, col, c_base, acc3);
    }
    if (RM > 4u) {
        put_row(row + 4u * TY, col, c_base, acc4);
    }
    if (RM > 5u) {
        put_row(row + 5u * TY, col, c_base, acc5);
    }
    if (RM > 6u) {
        put_row(row + 6u * TY, col, c_base, acc6);
    }
    if (RM > 7u) {
        put_row(row + 7u * TY, col, c_base, acc7);
    }
    if (RM > 8u) {
        put_row(row + 8u * TY, col, c_base, acc8);
    }
}
