//! The permutation-only baselines (SPEC §5): NPLinear (every neuron permutable, optional io
//! embedding) and HNPLinear (hidden neurons only). Each map "Lin(concatenation)" is lowered to one
//! GEMM per concatenated piece, accumulated; row/column/global means and the broadcast of a term
//! over an axis are strided sums (`plan::ReduceOp`).

use rand::Rng;

use crate::error::{Error, Result};
use crate::nn::params::ParamSet;
use crate::nn::{pack, SpaceBufs};
use crate::plan::{BufId, PlanBuilder, ReduceOp};
use crate::spec::NetworkSpec;

/// Which baseline layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PermKind {
    /// NPLinear (SPEC §5.1); `io_embed` adds learned position embeddings to the input and output
    /// neurons (the paper's NP-PosEmb).
    Np {
        /// Add the io embeddings.
        io_embed: bool,
    },
    /// HNPLinear (SPEC §5.2).
    Hnp,
}

/// An NP or HNP equivariant linear layer between features with `c_in` and `c_out` channels.
///
/// Parameters use the reference's state-dict names (SPEC A.2 T2) with weights stored (out, in):
/// NP `layer_ℓ`, `layer_ℓ_rc`, `layer_ℓ_r`, `layer_ℓ_c`, `bias_ℓ`, `bias_ℓ_rc` (`.weight`,
/// `.bias`) per layer ℓ, plus `in_embed` (f₁c, n₀), `out_embed` (f_Lc, n_L), `out_bias_embed` (c, n_L);
/// HNP `w0_rpt`, `w0_rbdcst`, `bias_0`, `bias_0_rc`, the NP names for middle layers, and
/// `wfin_cpt`, `wfin_cbdcst`, `bias_fin_rc`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PermLinear {
    /// The input networks' spec.
    pub spec: NetworkSpec,
    /// Input channels c.
    pub c_in: usize,
    /// Output channels c'.
    pub c_out: usize,
    /// NP or HNP.
    pub kind: PermKind,
    /// Coefficients.
    #[serde(skip)]
    pub params: ParamSet,
}

/// Order of a piece's values relative to the reference's flattening.
#[derive(Clone, Copy, Debug)]
enum Order {
    /// Same order.
    Same,
    /// Ours is (outer, inner) row-major, the reference's (inner, outer): index a·inner + b is
    /// the reference's b·outer + a.
    Swap { outer: usize, inner: usize },
}

impl Order {
    fn map(self, i: usize) -> usize {
        match self {
            Order::Same => i,
            Order::Swap { outer, inner } => (i % inner) * outer + i / inner,
        }
    }
}

/// One concatenated input of a map: `rows` × `width` values in `buf`.
#[derive(Clone, Copy, Debug)]
struct Piece {
    buf: BufId,
    width: usize,
    order: Order,
}

fn piece(buf: BufId, width: usize) -> Piece {
    Piece {
        buf,
        width,
        order: Order::Same,
    }
}

fn swapped(buf: BufId, outer: usize, inner: usize) -> Piece {
    Piece {
        buf,
        width: outer * inner,
        order: Order::Swap { outer, inner },
    }
}

/// How a term t is broadcast into a feature y of shape (B, P, Q, E).
#[derive(Clone, Copy, Debug)]
enum Bcast {
    /// t is (B, Q, E): repeated over P.
    OverP,
    /// t is (B, P, E): repeated over Q.
    OverQ,
    /// t is (B, E): repeated over P and Q.
    OverPQ,
    /// t is (Q, E): repeated over B and P.
    OverBP,
}

/// y += t broadcast as `how`, with y of shape `[b, p, q, e]`.
fn broadcast_add(pb: &mut PlanBuilder, t: BufId, y: BufId, [b, p, q, e]: [usize; 4], how: Bcast) {
    let (outer, mid, inner, xa, y_strides) = match how {
        Bcast::OverP => (b, p, q * e, q * e, [p * q * e, q * e]),
        Bcast::OverQ => (b * p, q, e, e, [q * e, e]),
        Bcast::OverPQ => (b, p * q, e, e, [p * q * e, e]),
        Bcast::OverBP => (b * p, 1, q * e, 0, [q * e, 0]),
    };
    pb.reduce(ReduceOp {
        x: t,
        y,
        outer,
        mid,
        inner,
        r: 1,
        x_strides: [xa, 0, 0],
        y_strides,
        alpha: 1.0,
        accumulate: true,
    });
}

/// Mean over the middle axis of x viewed as (outer, r, inner), into a new (outer, inner) buffer.
fn mean(pb: &mut PlanBuilder, x: BufId, outer: usize, r: usize, inner: usize) -> BufId {
    let y = pb.scratch(outer * inner);
    pb.reduce(ReduceOp {
        x,
        y,
        outer,
        mid: 1,
        inner,
        r,
        x_strides: [r * inner, 0, inner],
        y_strides: [inner, 0],
        alpha: 1.0 / r as f64,
        accumulate: false,
    });
    y
}

/// Per-layer means of a feature (SPEC §5): R (B, n_in, C·f), K (B, n_out, C·f), M (B, C·f),
/// β (B, C).
struct Stats {
    r: Vec<BufId>,
    k: Vec<BufId>,
    m: Vec<BufId>,
    beta: Vec<BufId>,
}

impl Stats {
    fn new(pb: &mut PlanBuilder, spec: &NetworkSpec, x: &SpaceBufs, batch: usize) -> Self {
        let c = x.channels;
        let l = spec.num_layers();
        let mut st = Stats {
            r: vec![],
            k: vec![],
            m: vec![],
            beta: vec![],
        };
        for (i, s) in spec.layers.iter().enumerate() {
            let e = s.f() * c;
            let (no, ni) = (s.n_out, s.n_in);
            // The last layer is stored (B, n_in, n_out, E) (space::InternalLayout).
            let (rows, cols) = if i + 1 == l { (ni, no) } else { (no, ni) };
            let over_rows = mean(pb, x.w[i], batch, rows, cols * e);
            let over_cols = mean(pb, x.w[i], batch * rows, cols, e);
            let (r, k) = if i + 1 == l {
                (over_cols, over_rows)
            } else {
                (over_rows, over_cols)
            };
            st.r.push(r);
            st.k.push(k);
            st.m.push(mean(pb, x.w[i], batch, no * ni, e));
            st.beta.push(mean(pb, x.b[i], batch, no, c));
        }
        st
    }
}

impl PermLinear {
    /// A zero-initialised layer.
    pub fn zeros(spec: &NetworkSpec, c_in: usize, c_out: usize, kind: PermKind) -> Result<Self> {
        spec.require_hidden()?;
        if c_in == 0 || c_out == 0 {
            return Err(Error::Spec(format!(
                "channel counts must be positive, got {c_in} -> {c_out}"
            )));
        }
        let mut layer = PermLinear {
            spec: spec.clone(),
            c_in,
            c_out,
            kind,
            params: ParamSet::default(),
        };
        for (name, out, input) in layer.maps() {
            layer
                .params
                .add_zeros(format!("{name}.weight"), vec![out, input]);
            layer.params.add_zeros(format!("{name}.bias"), vec![out]);
        }
        if kind == (PermKind::Np { io_embed: true }) {
            let (c, l) = (c_in, spec.num_layers());
            let (n0, nl) = (spec.n_in(), spec.n_out());
            let p = &mut layer.params;
            p.add_zeros("in_embed", vec![spec.layers[0].f() * c, n0]);
            p.add_zeros("out_embed", vec![spec.layers[l - 1].f() * c, nl]);
            p.add_zeros("out_bias_embed", vec![c, nl]);
        }
        Ok(layer)
    }

    /// A layer initialised as the reference does (SPEC §7, A.1.8): maps in a group share
    /// U(±1/√in_group) over their summed input widths; the others keep PyTorch's U(±1/√in);
    /// the io embeddings are N(0, 1).
    pub fn new(
        spec: &NetworkSpec,
        c_in: usize,
        c_out: usize,
        kind: PermKind,
        rng: &mut impl Rng,
    ) -> Result<Self> {
        let mut layer = Self::zeros(spec, c_in, c_out, kind)?;
        let width: std::collections::HashMap<String, usize> =
            layer.maps().into_iter().map(|(n, _, i)| (n, i)).collect();
        for group in layer.init_groups() {
            let fan: usize = group.iter().map(|n| width[n]).sum();
            let bound = 1.0 / (fan.max(1) as f64).sqrt();
            for n in group {
                layer
                    .params
                    .init_uniform(&format!("{n}.weight"), bound, rng);
                layer.params.init_uniform(&format!("{n}.bias"), bound, rng);
            }
        }
        if kind == (PermKind::Np { io_embed: true }) {
            for n in ["in_embed", "out_embed", "out_bias_embed"] {
                layer.params.init_standard_normal(n, rng);
            }
        }
        Ok(layer)
    }

    /// Number of scalar coefficients.
    pub fn num_params(&self) -> usize {
        self.params.count()
    }

    /// f·c of layer `i` for `c` channels.
    fn fc(&self, i: usize, c: usize) -> usize {
        self.spec.layers[i].f() * c
    }

    /// Width of the global vector: N_g·c (NP) or N_H (HNP).
    fn global_width(&self) -> usize {
        let s = &self.spec;
        let c = self.c_in;
        let l = s.num_layers();
        let base: usize = (0..l).map(|i| self.fc(i, c) + c).sum();
        match self.kind {
            PermKind::Np { .. } => base,
            PermKind::Hnp => {
                base + s.n_in() * self.fc(0, c) + s.n_out() * self.fc(l - 1, c) + s.n_out() * c
            }
        }
    }

    /// Input widths of the row term r_k and column term s_j of NP-style layer `i`.
    fn row_col_in(&self, i: usize) -> (usize, usize) {
        let (c, l) = (self.c_in, self.spec.num_layers());
        let hnp = self.kind == PermKind::Hnp;
        let mut row = self.fc(i, c);
        if i > 0 {
            row += self.fc(i - 1, c) + c;
        }
        if hnp && i == 1 {
            row += self.spec.n_in() * self.fc(0, c);
        }
        let mut col = self.fc(i, c) + c;
        if i + 1 < l {
            col += self.fc(i + 1, c);
        }
        if hnp && i + 2 == l {
            col += self.spec.n_out() * self.fc(l - 1, c);
        }
        (row, col)
    }

    /// Widths of HNP's first-layer row input e_j and last-layer column input e'_k (SPEC §5.2).
    fn hnp_end_widths(&self) -> (usize, usize) {
        let (c, l) = (self.c_in, self.spec.num_layers());
        let (n0, nl) = (self.spec.n_in(), self.spec.n_out());
        let mut first = n0 * self.fc(0, c) + self.fc(1, c) + c;
        let mut last = nl * self.fc(l - 1, c) + self.fc(l - 2, c);
        if l == 2 {
            first += nl * self.fc(1, c);
            last += n0 * self.fc(0, c);
        }
        (first, last)
    }

    /// Every map as (name, output width, input width), in the reference's order.
    fn maps(&self) -> Vec<(String, usize, usize)> {
        let (c, o, l) = (self.c_in, self.c_out, self.spec.num_layers());
        let (n0, nl) = (self.spec.n_in(), self.spec.n_out());
        let ng = self.global_width();
        let mut v = Vec::new();
        let np_layer = |v: &mut Vec<(String, usize, usize)>, i: usize| {
            let (fi, fo) = (self.fc(i, c), self.fc(i, o));
            let (row, col) = self.row_col_in(i);
            v.push((format!("layer_{i}"), fo, fi));
            v.push((format!("layer_{i}_rc"), fo, ng));
            v.push((format!("layer_{i}_r"), fo, row));
            v.push((format!("layer_{i}_c"), fo, col));
            v.push((format!("bias_{i}"), o, col));
            v.push((format!("bias_{i}_rc"), o, ng));
        };
        match self.kind {
            PermKind::Np { .. } => (0..l).for_each(|i| np_layer(&mut v, i)),
            PermKind::Hnp => {
                let (first, last) = self.hnp_end_widths();
                let w0 = self.fc(0, o) * n0;
                v.push(("w0_rpt".into(), w0, first));
                v.push(("w0_rbdcst".into(), w0, ng));
                v.push(("bias_0".into(), o, first));
                v.push(("bias_0_rc".into(), o, ng));
                (1..l - 1).for_each(|i| np_layer(&mut v, i));
                let wl = self.fc(l - 1, o) * nl;
                v.push(("wfin_cpt".into(), wl, last));
                v.push(("wfin_cbdcst".into(), wl, ng));
                v.push(("bias_fin_rc".into(), o * nl, ng));
            }
        }
        v
    }

    /// Initialisation groups (SPEC §7, A.1.8).
    fn init_groups(&self) -> Vec<Vec<String>> {
        let l = self.spec.num_layers();
        let np_groups = |i: usize| {
            vec![
                ["", "_rc", "_r", "_c"]
                    .iter()
                    .map(|s| format!("layer_{i}{s}"))
                    .collect(),
                vec![format!("bias_{i}"), format!("bias_{i}_rc")],
            ]
        };
        match self.kind {
            PermKind::Np { .. } => (0..l).flat_map(np_groups).collect(),
            PermKind::Hnp => {
                let mut g = vec![
                    vec!["w0_rpt".to_string()],
                    vec!["w0_rbdcst".to_string()],
                    vec!["bias_0".to_string(), "bias_0_rc".to_string()],
                ];
                g.extend((1..l - 1).flat_map(np_groups));
                g.push(vec!["wfin_cpt".to_string(), "wfin_cbdcst".to_string()]);
                g.push(vec!["bias_fin_rc".to_string()]);
                g
            }
        }
    }

    /// target = Lin_name(concatenation of `pieces`) for `rows` rows; `out` maps our output
    /// column to the reference's. The bias rides on the first piece's GEMM.
    fn linear(
        &self,
        pb: &mut PlanBuilder,
        name: &str,
        pieces: &[Piece],
        rows: usize,
        out: Order,
        target: BufId,
    ) {
        let (wname, bname) = (format!("{name}.weight"), format!("{name}.bias"));
        let n = self.params.data(&bname).len();
        let in_width = self.params.data(&wname).len() / n;
        let mut offset = 0;
        for (i, p) in pieces.iter().enumerate() {
            let b = pb.coef(
                &self.params,
                &wname,
                pack(p.width, n, |r, col| {
                    out.map(col) * in_width + offset + p.order.map(r)
                }),
            );
            let bias =
                (i == 0).then(|| pb.coef(&self.params, &bname, pack(1, n, |_, col| out.map(col))));
            pb.gemm(p.buf, b, bias, target, rows, p.width, n, i > 0);
            offset += p.width;
        }
        debug_assert_eq!(offset, in_width, "{name}: pieces cover the map's input");
    }

    /// y += Lin_name(pieces) computed for `rows` rows and broadcast into y (B, P, Q, E).
    #[allow(clippy::too_many_arguments)]
    fn linear_broadcast(
        &self,
        pb: &mut PlanBuilder,
        name: &str,
        pieces: &[Piece],
        rows: usize,
        out: Order,
        y: BufId,
        dims: [usize; 4],
        how: Bcast,
    ) {
        let n = self.params.data(&format!("{name}.bias")).len();
        let t = pb.scratch(rows * n);
        self.linear(pb, name, pieces, rows, out, t);
        broadcast_add(pb, t, y, dims, how);
    }

    /// Adds the io embeddings to copies of the first weight, last weight and last bias.
    fn embed(&self, pb: &mut PlanBuilder, x: &SpaceBufs, batch: usize) -> SpaceBufs {
        let mut x = x.clone();
        let (c, l) = (self.c_in, self.spec.num_layers());
        let (n0, nl) = (self.spec.n_in(), self.spec.n_out());
        let n1 = self.spec.layers[0].n_out;
        let nh = self.spec.layers[l - 1].n_in;
        let (e0, el) = (self.fc(0, c), self.fc(l - 1, c));
        let targets = [
            (x.w[0], "in_embed", [batch, n1, n0, e0]),
            (x.w[l - 1], "out_embed", [batch, nh, nl, el]),
            (x.b[l - 1], "out_bias_embed", [batch, 1, nl, c]),
        ];
        let embedded = targets.map(|(buf, name, dims)| {
            let [_, _, q, e] = dims;
            // Reference (E, Q) -> ours (Q, E).
            let t = pb.coef(&self.params, name, pack(q, e, |qi, ei| ei * q + qi));
            let len = pb.len_of(buf);
            let copy = pb.scratch(len);
            pb.reduce(ReduceOp::sum_rows(buf, copy, 1, len, false));
            broadcast_add(pb, t, copy, dims, Bcast::OverBP);
            copy
        });
        [x.w[0], x.w[l - 1], x.b[l - 1]] = embedded;
        x
    }

    /// Appends this layer's ops to a plan; `x` has `c_in` channels, the result `c_out`.
    pub fn emit(&self, pb: &mut PlanBuilder, x: &SpaceBufs, batch: usize) -> Result<SpaceBufs> {
        if x.channels != self.c_in {
            return Err(Error::shape(
                "NP/HNP layer input channels",
                &[self.c_in],
                &[x.channels],
            ));
        }
        let x = if self.kind == (PermKind::Np { io_embed: true }) {
            self.embed(pb, x, batch)
        } else {
            x.clone()
        };
        let spec = &self.spec;
        let (c, o, l) = (self.c_in, self.c_out, spec.num_layers());
        let (n0, nl) = (spec.n_in(), spec.n_out());
        let hnp = self.kind == PermKind::Hnp;
        let st = Stats::new(pb, spec, &x, batch);

        // Global vector g (NP) or g_H (HNP): [M; β; (HNP) flat R¹, flat K^L, flat v^L].
        let mut g: Vec<Piece> = (0..l).map(|i| piece(st.m[i], self.fc(i, c))).collect();
        g.extend(st.beta.iter().map(|&b| piece(b, c)));
        if hnp {
            g.push(swapped(st.r[0], n0, self.fc(0, c)));
            g.push(swapped(st.k[l - 1], nl, self.fc(l - 1, c)));
            g.push(swapped(x.b[l - 1], nl, c));
        }

        let mut w = Vec::with_capacity(l);
        let mut b = Vec::with_capacity(l);
        for (i, s) in spec.layers.iter().enumerate() {
            let (no, ni) = (s.n_out, s.n_in);
            let (fi, fo) = (self.fc(i, c), self.fc(i, o));
            let last = i + 1 == l;
            let wi = pb.scratch(batch * no * ni * fo);
            let bi = pb.scratch(batch * no * o);
            // Internal layout (B, P, Q, E): the last layer is stored transposed.
            let dims = if last {
                [batch, ni, no, fo]
            } else {
                [batch, no, ni, fo]
            };
            let z_dims = [batch, no, 1, o];
            if hnp && i == 0 {
                // e_j = [X¹[·,j,·] (n,q); R²[·,j]; v¹[·,j]; (L = 2) X²[·,·,j] (n,p)].
                let mut e = vec![
                    swapped(x.w[0], n0, fi),
                    piece(st.r[1], self.fc(1, c)),
                    piece(x.b[0], c),
                ];
                if l == 2 {
                    e.push(swapped(x.w[1], nl, self.fc(1, c)));
                }
                let out = Order::Swap {
                    outer: n0,
                    inner: fo,
                };
                let rows = batch * no;
                self.linear(pb, "w0_rpt", &e, rows, out, wi);
                self.linear_broadcast(pb, "w0_rbdcst", &g, batch, out, wi, dims, Bcast::OverP);
                self.linear(pb, "bias_0", &e, rows, Order::Same, bi);
                let same = Order::Same;
                self.linear_broadcast(pb, "bias_0_rc", &g, batch, same, bi, z_dims, Bcast::OverPQ);
            } else if hnp && last {
                // e'_k = [X^L[·,·,k] (n,p); K^{L-1}[·,k]; (L = 2) X¹[·,k,·] (n,q)].
                let mut e = vec![
                    swapped(x.w[i], nl, fi),
                    piece(st.k[i - 1], self.fc(i - 1, c)),
                ];
                if l == 2 {
                    e.push(swapped(x.w[0], n0, self.fc(0, c)));
                }
                let out = Order::Swap {
                    outer: nl,
                    inner: fo,
                };
                self.linear(pb, "wfin_cpt", &e, batch * ni, out, wi);
                self.linear_broadcast(pb, "wfin_cbdcst", &g, batch, out, wi, dims, Bcast::OverP);
                let out = Order::Swap {
                    outer: nl,
                    inner: o,
                };
                self.linear(pb, "bias_fin_rc", &g, batch, out, bi);
            } else {
                // r_k = [R^i; K^{i-1}; v^{i-1}; (HNP, i = 2) X¹[·,k,·]],
                // s_j = [K^i; v^i; R^{i+1}; (HNP, i = L-1) X^L[·,·,j]] (SPEC §5.1, §5.2).
                let mut r = vec![piece(st.r[i], fi)];
                if i > 0 {
                    r.push(piece(st.k[i - 1], self.fc(i - 1, c)));
                    r.push(piece(x.b[i - 1], c));
                }
                if hnp && i == 1 {
                    r.push(swapped(x.w[0], n0, self.fc(0, c)));
                }
                let mut sj = vec![piece(st.k[i], fi), piece(x.b[i], c)];
                if !last {
                    sj.push(piece(st.r[i + 1], self.fc(i + 1, c)));
                }
                if hnp && i + 2 == l {
                    sj.push(swapped(x.w[l - 1], nl, self.fc(l - 1, c)));
                }
                let same = Order::Same;
                // Rows of the transposed last layer are the columns k.
                let (over_j, over_k) = if last {
                    (Bcast::OverQ, Bcast::OverP)
                } else {
                    (Bcast::OverP, Bcast::OverQ)
                };
                let entries = batch * no * ni;
                let lin = |n: &str| format!("layer_{i}{n}");
                self.linear(pb, &lin(""), &[piece(x.w[i], fi)], entries, same, wi);
                self.linear_broadcast(pb, &lin("_rc"), &g, batch, same, wi, dims, Bcast::OverPQ);
                self.linear_broadcast(pb, &lin("_r"), &r, batch * ni, same, wi, dims, over_j);
                self.linear_broadcast(pb, &lin("_c"), &sj, batch * no, same, wi, dims, over_k);
                self.linear(pb, &format!("bias_{i}"), &sj, batch * no, same, bi);
                let rc = format!("bias_{i}_rc");
                self.linear_broadcast(pb, &rc, &g, batch, same, bi, z_dims, Bcast::OverPQ);
            }
            w.push(wi);
            b.push(bi);
        }
        Ok(SpaceBufs { w, b, channels: o })
    }
}
