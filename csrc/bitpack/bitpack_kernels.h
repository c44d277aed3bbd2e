// Bit-packed binary convolution kernels for x86 CPUs (mmdynbnn.deploy).
//
// This header and bitpack_kernels.cpp do not include any torch header: they compile fast and are
// driven by bitpack_binding.cpp, which owns tensors and threading (at::parallel_for).
//
// Encoding: a +-1 value is one bit, 0 for +1 and 1 for -1 (sign(0) = +1, NaN -> -1 as in training).
// For two bit vectors a, w of K valid bits: dot(a, w) = K - 2 * popcount(a XOR w). Unused bits of the
// last word of a channel group are 0 in activations and weights, so they never count.
//
// Layouts (all little-endian 64-bit words):
//   packed activations: (N, Hp, Wp, G, Wg) with Hp = H + 2 pad_h, Wp = W + 2 pad_w, Wg = ceil(Cg / 64);
//                       the spatial padding ring is all-zero words (see edge correction below).
//   packed weights:     (G, nCB, KH, KW, Wg, 16): output channels of a group in blocks of 16 (zero
//                       padded), the 16 channels' words for one (tap, word) contiguous.
//   weight popcounts:   (G, KH*KW, nCB*16) int32: popcount of each output channel's bits at each tap.
//
// Edge correction: training pads the +-1 activations with 0, i.e. padded taps contribute nothing. The
// kernel reads the zero words of the padding ring, which contribute popcount(0 XOR w) = popcount(w) to
// the XOR count, so for an output pixel with n_valid in-image taps:
//   dot = n_valid * Cg - 2 * (sum_all_taps popcount(a XOR w) - sum_invalid_taps popcount(w)).
#pragma once
#include <cstdint>

namespace mmdynbnn_bitpack {

enum Isa : int { kScalar = 0, kPopcnt = 1, kAvx2 = 2, kAvx512 = 3 };

// Best instruction set this CPU supports (runtime detection).
int best_isa();
const char* isa_name(int isa);

constexpr int64_t kBlock = 16;  // output channels per weight block

struct PackArgs {
  const float* x;    // input, element (n, c, h, w) at x[n*sn + c*sc + h*sh + w*sw]
  const float* thr;  // per-channel threshold added before the sign (nullptr: 0)
  int64_t N, C, H, W;
  int64_t sn, sc, sh, sw;
  int64_t G, Cg, Wg;
  int64_t pad_h, pad_w;
  uint64_t* out;  // (N, H + 2 pad_h, W + 2 pad_w, G, Wg)
};

// Packs rows [begin, end) of the N * Hp padded rows (padding rows/columns are written as zeros).
void pack_rows(const PackArgs& a, int isa, int64_t begin, int64_t end);

struct ConvArgs {
  const uint64_t* act;  // packed activations (N, Hp, Wp, G, Wg)
  int64_t N, H, W, Hp, Wp, G, Cg, Wg, pad_h, pad_w;
  const uint64_t* wpk;  // packed weights (G, nCB, KH, KW, Wg, 16)
  const int32_t* pcw;   // (G, KH*KW, nCB*16)
  int64_t KH, KW, sh, sw, dh, dw;
  int64_t Cout, CoutG, nCB, Ho, Wo;
  const float* scale;  // (Cout,)
  const float* bias;   // (Cout,) or nullptr
  // Output: float (N, Ho, Wo, Cout) when out_bits == nullptr; otherwise the next layer's packed
  // activations sign(y + next_thr) as (N, Ho + 2 opad_h, Wo + 2 opad_w, 1, ceil(Cout / 64)) words, which
  // the caller zero-initialises (padding ring, unused tail bits). Each work item stores one 16-bit
  // quarter of a word, so packed output needs G == 1 or CoutG % 16 == 0 (checked by the binding).
  float* out;
  const float* next_thr;  // nullptr: threshold 0
  uint64_t* out_bits;
  int64_t opad_h, opad_w;
};

// Computes work items [begin, end) of N * G * nCB * Ho (one output row x 16 output channels each).
void conv_items(const ConvArgs& a, int isa, int64_t begin, int64_t end);

}  // namespace mmdynbnn_bitpack

namespace mmdynbnn_bitpack {

// RPReLU in one pass: y = prelu(x - shift_in, slope) + shift_out (per channel), same float operations
// and order as torch (sub, then x > 0 ? x : slope * x, then add). Elements [begin, end) of a contiguous
// tensor whose channel of element e is (e / inner) % C (NCHW: inner = H*W; channels_last: inner = 1).
// ``isa`` as for conv_items (AVX2 and above use the 8-lane path).
void rprelu_range(const float* x, float* y, const float* shift_in, const float* slope, const float* shift_out,
                  int64_t C, int64_t inner, int64_t begin, int64_t end, int isa);

}  // namespace mmdynbnn_bitpack
