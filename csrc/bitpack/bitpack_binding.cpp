// torch binding of the bit-packed kernels: tensor checks, allocation, threading (at::parallel_for, so the
// process's torch.set_num_threads / OMP_NUM_THREADS applies).
#include <ATen/Parallel.h>
#include <torch/extension.h>

#include "bitpack_kernels.h"

namespace bp = mmdynbnn_bitpack;

namespace {

int resolve_isa(int64_t isa) {
  const int best = bp::best_isa();
  if (isa < 0) return best;
  TORCH_CHECK(isa <= best, "bitpack: instruction set ", bp::isa_name(static_cast<int>(isa)),
              " requested but this CPU only supports up to ", bp::isa_name(best));
  return static_cast<int>(isa);
}

const float* opt_float_ptr(const c10::optional<at::Tensor>& t, int64_t numel, const char* name) {
  if (!t.has_value() || !t->defined()) return nullptr;
  TORCH_CHECK(t->scalar_type() == at::kFloat && t->is_contiguous() && t->numel() == numel, "bitpack: ", name,
              " must be a contiguous float32 tensor with ", numel, " elements");
  return t->data_ptr<float>();
}

}  // namespace

// x: float (N, C, H, W) with any strides (NCHW and channels_last are fast). Returns int64
// (N, H + 2 pad_h, W + 2 pad_w, groups, ceil(C / groups / 64)).
at::Tensor pack_activations(const at::Tensor& x, const c10::optional<at::Tensor>& threshold, int64_t groups,
                            int64_t pad_h, int64_t pad_w, int64_t isa) {
  TORCH_CHECK(x.dim() == 4 && x.scalar_type() == at::kFloat && x.device().is_cpu(),
              "bitpack: pack expects a 4-D float32 CPU tensor, got ", x.sizes(), " ", x.scalar_type());
  TORCH_CHECK(groups >= 1 && x.size(1) % groups == 0, "bitpack: channels ", x.size(1), " not divisible by groups ",
              groups);
  TORCH_CHECK(pad_h >= 0 && pad_w >= 0, "bitpack: negative padding");
  const int use = resolve_isa(isa);
  bp::PackArgs a;
  a.x = x.data_ptr<float>();
  a.N = x.size(0);
  a.C = x.size(1);
  a.H = x.size(2);
  a.W = x.size(3);
  a.sn = x.stride(0);
  a.sc = x.stride(1);
  a.sh = x.stride(2);
  a.sw = x.stride(3);
  a.thr = opt_float_ptr(threshold, a.C, "threshold");
  a.G = groups;
  a.Cg = a.C / groups;
  a.Wg = (a.Cg + 63) / 64;
  a.pad_h = pad_h;
  a.pad_w = pad_w;
  const int64_t Hp = a.H + 2 * pad_h, Wp = a.W + 2 * pad_w;
  at::Tensor out = at::empty({a.N, Hp, Wp, a.G, a.Wg}, x.options().dtype(at::kLong));
  a.out = reinterpret_cast<uint64_t*>(out.data_ptr<int64_t>());
  const int64_t rows = a.N * Hp;
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, a.W * a.C));
  at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) { bp::pack_rows(a, use, begin, end); });
  return out;
}

// act: packed activations from pack_activations (padding ring included). Returns float (N, Cout, Ho, Wo)
// in channels_last memory format, or, with out_packed, the next layer's packed activations
// (N, Ho + 2 opad_h, Wo + 2 opad_w, 1, ceil(Cout / 64)).
at::Tensor binary_conv(const at::Tensor& act, int64_t H, int64_t W, int64_t pad_h, int64_t pad_w, int64_t Cg,
                       const at::Tensor& wpk, const at::Tensor& pcw, int64_t Cout, int64_t KH, int64_t KW,
                       int64_t sh, int64_t sw, int64_t dh, int64_t dw, const at::Tensor& scale,
                       const c10::optional<at::Tensor>& bias, bool out_packed,
                       const c10::optional<at::Tensor>& next_threshold, int64_t opad_h, int64_t opad_w, int64_t isa) {
  TORCH_CHECK(act.dim() == 5 && act.scalar_type() == at::kLong && act.is_contiguous(),
              "bitpack: packed activations must be a contiguous int64 (N, Hp, Wp, G, Wg) tensor");
  TORCH_CHECK(wpk.dim() == 6 && wpk.scalar_type() == at::kLong && wpk.is_contiguous() && wpk.size(5) == bp::kBlock,
              "bitpack: packed weights must be a contiguous int64 (G, nCB, KH, KW, Wg, 16) tensor");
  const int use = resolve_isa(isa);
  bp::ConvArgs a;
  a.N = act.size(0);
  a.Hp = act.size(1);
  a.Wp = act.size(2);
  a.G = act.size(3);
  a.Wg = act.size(4);
  a.H = H;
  a.W = W;
  a.pad_h = pad_h;
  a.pad_w = pad_w;
  a.Cg = Cg;
  TORCH_CHECK(a.Hp == H + 2 * pad_h && a.Wp == W + 2 * pad_w, "bitpack: packed activation spatial size ",
              act.sizes(), " does not match H=", H, " W=", W, " padding (", pad_h, ", ", pad_w, ")");
  TORCH_CHECK(a.Wg == (Cg + 63) / 64, "bitpack: packed activations have ", a.Wg, " words per group, expected ",
              (Cg + 63) / 64, " for ", Cg, " channels per group");
  TORCH_CHECK(wpk.size(0) == a.G && wpk.size(2) == KH && wpk.size(3) == KW && wpk.size(4) == a.Wg,
              "bitpack: packed weights ", wpk.sizes(), " do not match groups=", a.G, " kernel ", KH, "x", KW,
              " words=", a.Wg);
  TORCH_CHECK(Cout % a.G == 0, "bitpack: Cout not divisible by groups");
  a.nCB = wpk.size(1);
  a.CoutG = Cout / a.G;
  TORCH_CHECK(a.nCB == (a.CoutG + bp::kBlock - 1) / bp::kBlock, "bitpack: weight blocks do not match Cout");
  TORCH_CHECK(pcw.scalar_type() == at::kInt && pcw.is_contiguous() && pcw.numel() == a.G * KH * KW * a.nCB * bp::kBlock,
              "bitpack: weight popcounts must be a contiguous int32 (G, KH*KW, nCB*16) tensor");
  a.KH = KH;
  a.KW = KW;
  a.sh = sh;
  a.sw = sw;
  a.dh = dh;
  a.dw = dw;
  a.Cout = Cout;
  TORCH_CHECK(sh >= 1 && sw >= 1 && dh >= 1 && dw >= 1, "bitpack: stride and dilation must be >= 1");
  a.Ho = (H + 2 * pad_h - dh * (KH - 1) - 1) / sh + 1;
  a.Wo = (W + 2 * pad_w - dw * (KW - 1) - 1) / sw + 1;
  TORCH_CHECK(a.Ho >= 1 && a.Wo >= 1, "bitpack: empty output for input ", H, "x", W);
  a.act = reinterpret_cast<const uint64_t*>(act.data_ptr<int64_t>());
  a.wpk = reinterpret_cast<const uint64_t*>(wpk.data_ptr<int64_t>());
  a.pcw = pcw.data_ptr<int32_t>();
  a.scale = opt_float_ptr(scale, Cout, "scale");
  TORCH_CHECK(a.scale != nullptr, "bitpack: scale is required");
  a.bias = opt_float_ptr(bias, Cout, "bias");
  a.next_thr = nullptr;
  a.out = nullptr;
  a.out_bits = nullptr;
  a.opad_h = opad_h;
  a.opad_w = opad_w;
  at::Tensor out;
  if (out_packed) {
    TORCH_CHECK(a.G == 1 || a.CoutG % bp::kBlock == 0,
                "bitpack: packed output needs groups == 1 or output channels per group divisible by 16");
    a.next_thr = opt_float_ptr(next_threshold, Cout, "next_threshold");
    out = at::zeros({a.N, a.Ho + 2 * opad_h, a.Wo + 2 * opad_w, 1, (Cout + 63) / 64}, act.options());
    a.out_bits = reinterpret_cast<uint64_t*>(out.data_ptr<int64_t>());
  } else {
    out = at::empty({a.N, a.Cout, a.Ho, a.Wo}, act.options().dtype(at::kFloat), at::MemoryFormat::ChannelsLast);
    a.out = out.data_ptr<float>();
  }
  const int64_t items = a.N * a.G * a.nCB * a.Ho;
  at::parallel_for(0, items, 1, [&](int64_t begin, int64_t end) { bp::conv_items(a, use, begin, end); });
  return out;
}

// One-pass RPReLU for contiguous NCHW or channels_last float tensors; returns a tensor of the same layout.
at::Tensor rprelu(const at::Tensor& x, const at::Tensor& shift_in, const at::Tensor& slope,
                  const at::Tensor& shift_out, int64_t isa) {
  TORCH_CHECK(x.dim() == 4 && x.scalar_type() == at::kFloat && x.device().is_cpu(),
              "bitpack: rprelu expects a 4-D float32 CPU tensor");
  const int use = resolve_isa(isa);
  const int64_t C = x.size(1);
  const float* a = opt_float_ptr(shift_in, C, "shift_in");
  const float* s = opt_float_ptr(slope, C, "slope");
  const float* b = opt_float_ptr(shift_out, C, "shift_out");
  int64_t inner;
  at::Tensor y;
  if (x.is_contiguous()) {
    inner = x.size(2) * x.size(3);
    y = at::empty_like(x, at::MemoryFormat::Contiguous);
  } else if (x.is_contiguous(at::MemoryFormat::ChannelsLast)) {
    inner = 1;
    y = at::empty_like(x, at::MemoryFormat::ChannelsLast);
  } else {
    TORCH_CHECK(false, "bitpack: rprelu needs a contiguous or channels_last tensor");
  }
  const float* xp = x.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  at::parallel_for(0, x.numel(), 32768, [&](int64_t begin, int64_t end) {
    bp::rprelu_range(xp, yp, a, s, b, C, inner, begin, end, use);
  });
  return y;
}

int64_t best_isa() { return bp::best_isa(); }
std::string isa_name(int64_t isa) { return bp::isa_name(static_cast<int>(isa)); }

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "mmdynbnn bit-packed binary convolution kernels (x86: scalar / popcnt / AVX2 / AVX-512 VPOPCNTDQ)";
  m.def("pack_activations", &pack_activations, "sign(x + threshold) packed along channels", py::arg("x"),
        py::arg("threshold"), py::arg("groups"), py::arg("pad_h"), py::arg("pad_w"), py::arg("isa") = -1);
  m.def("binary_conv", &binary_conv, "XOR/popcount convolution with fused scale, bias and optional next sign",
        py::arg("act"), py::arg("H"), py::arg("W"), py::arg("pad_h"), py::arg("pad_w"), py::arg("Cg"), py::arg("wpk"),
        py::arg("pcw"), py::arg("Cout"), py::arg("KH"), py::arg("KW"), py::arg("sh"), py::arg("sw"), py::arg("dh"),
        py::arg("dw"), py::arg("scale"), py::arg("bias"), py::arg("out_packed") = false,
        py::arg("next_threshold") = py::none(), py::arg("opad_h") = 0, py::arg("opad_w") = 0, py::arg("isa") = -1);
  m.def("rprelu", &rprelu, "RPReLU (shift, PReLU, shift) in one pass", py::arg("x"), py::arg("shift_in"),
        py::arg("slope"), py::arg("shift_out"), py::arg("isa") = -1);
  m.def("best_isa", &best_isa, "best instruction set of this CPU (0 scalar, 1 popcnt, 2 avx2, 3 avx512)");
  m.def("isa_name", &isa_name);
  m.attr("KBLOCK") = bp::kBlock;
}
