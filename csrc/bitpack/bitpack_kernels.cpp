// Bit-packed binary convolution kernels (see bitpack_kernels.h for encoding and layouts).
//
// Instruction sets are chosen at run time: the generic code is compiled for baseline x86-64, and
// target-attributed clones (popcnt, avx2, avx512f+avx512vpopcntdq) are only called when the CPU reports
// the feature, so one binary runs everywhere. Build with -ffp-contract=off so that the float epilogue
// (dot * scale + bias, two roundings) is bit-identical to the pure-torch reference path.
#include "bitpack_kernels.h"

#include <algorithm>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#define MMDYNBNN_X86 1
#include <immintrin.h>
#else
#define MMDYNBNN_X86 0
#endif

#define MMDYNBNN_INLINE inline __attribute__((always_inline))

namespace mmdynbnn_bitpack {

int best_isa() {
#if MMDYNBNN_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vpopcntdq")) return kAvx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt")) return kAvx2;
  if (__builtin_cpu_supports("popcnt")) return kPopcnt;
#endif
  return kScalar;
}

const char* isa_name(int isa) {
  switch (isa) {
    case kAvx512: return "avx512-vpopcntdq";
    case kAvx2: return "avx2";
    case kPopcnt: return "popcnt";
    default: return "scalar";
  }
}

namespace {

// ------------------------------------------------------------------------------------------------
// Packing float activations into bits: bit = !(x + t >= 0) (1 encodes -1; NaN -> -1 like training).

MMDYNBNN_INLINE uint64_t neg_bit(float v, float t) { return static_cast<uint64_t>(!(v + t >= 0.f)); }

// One interior row, generic strides. Dispatch on layout for the two common cases.
MMDYNBNN_INLINE void pack_row_generic(const PackArgs& a, int64_t n, int64_t h, uint64_t* row) {
  const int64_t GW = a.G * a.Wg;
  const float* xb = a.x + n * a.sn + h * a.sh;
  if (a.sw == 1) {
    // NCHW-like: channel rows contiguous. Build up to 64 pixel words at a time, channel by channel.
    constexpr int64_t kPix = 64;
    uint64_t acc[kPix];
    for (int64_t g = 0; g < a.G; ++g) {
      for (int64_t j = 0; j < a.Wg; ++j) {
        const int64_t c0 = g * a.Cg + 64 * j;
        const int64_t nc = std::min<int64_t>(64, a.Cg - 64 * j);
        for (int64_t w0 = 0; w0 < a.W; w0 += kPix) {
          const int64_t nw = std::min<int64_t>(kPix, a.W - w0);
          for (int64_t w = 0; w < nw; ++w) acc[w] = 0;
          for (int64_t cc = 0; cc < nc; ++cc) {
            const float* xr = xb + (c0 + cc) * a.sc + w0;
            const float t = a.thr ? a.thr[c0 + cc] : 0.f;
            for (int64_t w = 0; w < nw; ++w) acc[w] |= neg_bit(xr[w], t) << cc;
          }
          uint64_t* o = row + (a.pad_w + w0) * GW + g * a.Wg + j;
          for (int64_t w = 0; w < nw; ++w) o[w * GW] = acc[w];
        }
      }
    }
    return;
  }
  // Channels contiguous (NHWC) or arbitrary strides: per pixel, per word.
  for (int64_t w = 0; w < a.W; ++w) {
    const float* xp = xb + w * a.sw;
    uint64_t* o = row + (a.pad_w + w) * GW;
    for (int64_t g = 0; g < a.G; ++g) {
      for (int64_t j = 0; j < a.Wg; ++j) {
        const int64_t c0 = g * a.Cg + 64 * j;
        const int64_t nc = std::min<int64_t>(64, a.Cg - 64 * j);
        uint64_t word = 0;
        for (int64_t cc = 0; cc < nc; ++cc) {
          const float t = a.thr ? a.thr[c0 + cc] : 0.f;
          word |= neg_bit(xp[(c0 + cc) * a.sc], t) << cc;
        }
        o[g * a.Wg + j] = word;
      }
    }
  }
}

#if MMDYNBNN_X86
// NHWC with AVX2: 8 channels per compare + movemask.
__attribute__((target("avx2"))) void pack_row_nhwc_avx2(const PackArgs& a, int64_t n, int64_t h, uint64_t* row) {
  const int64_t GW = a.G * a.Wg;
  const float* xb = a.x + n * a.sn + h * a.sh;
  const __m256 zero = _mm256_setzero_ps();
  for (int64_t w = 0; w < a.W; ++w) {
    const float* xp = xb + w * a.sw;
    uint64_t* o = row + (a.pad_w + w) * GW;
    for (int64_t g = 0; g < a.G; ++g) {
      for (int64_t j = 0; j < a.Wg; ++j) {
        const int64_t c0 = g * a.Cg + 64 * j;
        const int64_t nc = std::min<int64_t>(64, a.Cg - 64 * j);
        uint64_t word = 0;
        int64_t cc = 0;
        for (; cc + 8 <= nc; cc += 8) {
          __m256 v = _mm256_loadu_ps(xp + c0 + cc);
          if (a.thr) v = _mm256_add_ps(v, _mm256_loadu_ps(a.thr + c0 + cc));
          const int m = _mm256_movemask_ps(_mm256_cmp_ps(v, zero, _CMP_NGE_UQ));
          word |= static_cast<uint64_t>(m) << cc;
        }
        for (; cc < nc; ++cc) word |= neg_bit(xp[c0 + cc], a.thr ? a.thr[c0 + cc] : 0.f) << cc;
        o[g * a.Wg + j] = word;
      }
    }
  }
}

// NCHW with AVX2: 8 pixels per compare, the 8 sign masks widened to 64-bit lanes and OR-ed at bit cc.
__attribute__((target("avx2"))) void pack_row_nchw_avx2(const PackArgs& a, int64_t n, int64_t h, uint64_t* row) {
  const int64_t GW = a.G * a.Wg;
  const float* xb = a.x + n * a.sn + h * a.sh;
  const __m256 zero = _mm256_setzero_ps();
  alignas(32) uint64_t tmp[8];
  for (int64_t g = 0; g < a.G; ++g) {
    for (int64_t j = 0; j < a.Wg; ++j) {
      const int64_t c0 = g * a.Cg + 64 * j;
      const int64_t nc = std::min<int64_t>(64, a.Cg - 64 * j);
      int64_t w0 = 0;
      for (; w0 + 8 <= a.W; w0 += 8) {
        __m256i lo = _mm256_setzero_si256(), hi = _mm256_setzero_si256();
        for (int64_t cc = 0; cc < nc; ++cc) {
          __m256 v = _mm256_loadu_ps(xb + (c0 + cc) * a.sc + w0);
          v = _mm256_add_ps(v, _mm256_set1_ps(a.thr ? a.thr[c0 + cc] : 0.f));
          const __m256i m = _mm256_castps_si256(_mm256_cmp_ps(v, zero, _CMP_NGE_UQ));
          const __m256i bit = _mm256_set1_epi64x(static_cast<long long>(uint64_t{1} << cc));
          lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(m)), bit));
          hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_cvtepi32_epi64(_mm256_extracti128_si256(m, 1)), bit));
        }
        _mm256_store_si256(reinterpret_cast<__m256i*>(tmp), lo);
        _mm256_store_si256(reinterpret_cast<__m256i*>(tmp + 4), hi);
        uint64_t* o = row + (a.pad_w + w0) * GW + g * a.Wg + j;
        for (int p = 0; p < 8; ++p) o[p * GW] = tmp[p];
      }
      for (; w0 < a.W; ++w0) {
        uint64_t word = 0;
        for (int64_t cc = 0; cc < nc; ++cc)
          word |= neg_bit(xb[(c0 + cc) * a.sc + w0], a.thr ? a.thr[c0 + cc] : 0.f) << cc;
        row[(a.pad_w + w0) * GW + g * a.Wg + j] = word;
      }
    }
  }
}

__attribute__((target("avx2,popcnt"), flatten)) void pack_row_generic_avx2(const PackArgs& a, int64_t n, int64_t h,
                                                                           uint64_t* row) {
  pack_row_generic(a, n, h, row);
}

__attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,popcnt"), flatten)) void pack_row_generic_avx512(
    const PackArgs& a, int64_t n, int64_t h, uint64_t* row) {
  pack_row_generic(a, n, h, row);
}
#endif

}  // namespace

void pack_rows(const PackArgs& a, int isa, int64_t begin, int64_t end) {
  const int64_t Hp = a.H + 2 * a.pad_h, Wp = a.W + 2 * a.pad_w;
  const int64_t GW = a.G * a.Wg;
  for (int64_t r = begin; r < end; ++r) {
    const int64_t n = r / Hp, hp = r % Hp;
    uint64_t* row = a.out + r * Wp * GW;
    const int64_t h = hp - a.pad_h;
    if (h < 0 || h >= a.H) {
      std::memset(row, 0, sizeof(uint64_t) * Wp * GW);
      continue;
    }
    if (a.pad_w > 0) {
      std::memset(row, 0, sizeof(uint64_t) * a.pad_w * GW);
      std::memset(row + (a.pad_w + a.W) * GW, 0, sizeof(uint64_t) * a.pad_w * GW);
    }
#if MMDYNBNN_X86
    if (isa >= kAvx2 && a.sc == 1 && a.sw != 1) {
      pack_row_nhwc_avx2(a, n, h, row);
      continue;
    }
    if (isa >= kAvx2 && a.sw == 1) {
      pack_row_nchw_avx2(a, n, h, row);
      continue;
    }
    if (isa >= kAvx512) {
      pack_row_generic_avx512(a, n, h, row);
      continue;
    }
    if (isa >= kAvx2) {
      pack_row_generic_avx2(a, n, h, row);
      continue;
    }
#endif
    pack_row_generic(a, n, h, row);
  }
}

namespace {

// ------------------------------------------------------------------------------------------------
// Convolution micro-kernels: raw XOR counts S[p][c] = sum over all taps and words of
// popcount(a XOR w) for P consecutive output pixels of one row and one block of 16 output channels.

struct Tile {
  const uint64_t* a0;  // activation word 0 of the first pixel's first tap (group offset applied)
  int64_t pix;         // words between consecutive output pixels (stride_w * G * Wg)
  int64_t ti, tj;      // words between taps along kernel rows / columns
  const uint64_t* w;   // weight block (KH, KW, Wg, 16)
  int64_t KH, KW, Wg;
};

template <int P>
MMDYNBNN_INLINE void mk_generic(const Tile& t, int32_t* S) {
  int64_t acc[P][kBlock] = {};
  for (int64_t i = 0; i < t.KH; ++i)
    for (int64_t j = 0; j < t.KW; ++j) {
      const uint64_t* ab = t.a0 + i * t.ti + j * t.tj;
      const uint64_t* wb = t.w + (i * t.KW + j) * t.Wg * kBlock;
      for (int64_t k = 0; k < t.Wg; ++k) {
        const uint64_t* wk = wb + k * kBlock;
        for (int p = 0; p < P; ++p) {
          const uint64_t av = ab[p * t.pix + k];
          for (int c = 0; c < kBlock; ++c) acc[p][c] += __builtin_popcountll(av ^ wk[c]);
        }
      }
    }
  for (int p = 0; p < P; ++p)
    for (int c = 0; c < kBlock; ++c) S[p * kBlock + c] = static_cast<int32_t>(acc[p][c]);
}

constexpr int kPixGeneric = 2;

void mk_row_scalar(const Tile& t, int64_t npix, int32_t* S) {
  int64_t p = 0;
  for (; p + kPixGeneric <= npix; p += kPixGeneric) {
    Tile u = t;
    u.a0 = t.a0 + p * t.pix;
    mk_generic<kPixGeneric>(u, S + p * kBlock);
  }
  for (; p < npix; ++p) {
    Tile u = t;
    u.a0 = t.a0 + p * t.pix;
    mk_generic<1>(u, S + p * kBlock);
  }
}

#if MMDYNBNN_X86
__attribute__((target("popcnt"), flatten)) void mk_row_popcnt(const Tile& t, int64_t npix, int32_t* S) {
  mk_row_scalar(t, npix, S);
}

// AVX2: no vector popcount; nibble lookup (vpshufb) into byte counters, widened with vpsadbw at most
// every 31 steps (31 * 8 = 248 fits a byte). 8 output channels (two ymm) x P pixels per pass.
template <int P>
__attribute__((target("avx2"))) MMDYNBNN_INLINE void mk_avx2_half(const Tile& t, int half, int32_t* S) {
  const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2,
                                       3, 2, 3, 3, 4);
  const __m256i low = _mm256_set1_epi8(0x0f);
  const __m256i zero = _mm256_setzero_si256();
  __m256i acc8[P][2], acc64[P][2];
  for (int p = 0; p < P; ++p) {
    acc8[p][0] = acc8[p][1] = zero;
    acc64[p][0] = acc64[p][1] = zero;
  }
  int steps = 0;
  for (int64_t i = 0; i < t.KH; ++i)
    for (int64_t j = 0; j < t.KW; ++j) {
      const uint64_t* ab = t.a0 + i * t.ti + j * t.tj;
      const uint64_t* wb = t.w + (i * t.KW + j) * t.Wg * kBlock + 8 * half;
      for (int64_t k = 0; k < t.Wg; ++k) {
        const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb + k * kBlock));
        const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb + k * kBlock + 4));
#pragma GCC unroll 4
        for (int p = 0; p < P; ++p) {
          const __m256i av = _mm256_set1_epi64x(static_cast<long long>(ab[p * t.pix + k]));
          const __m256i x0 = _mm256_xor_si256(av, w0);
          const __m256i x1 = _mm256_xor_si256(av, w1);
          const __m256i c0 = _mm256_add_epi8(_mm256_shuffle_epi8(lut, _mm256_and_si256(x0, low)),
                                             _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(x0, 4), low)));
          const __m256i c1 = _mm256_add_epi8(_mm256_shuffle_epi8(lut, _mm256_and_si256(x1, low)),
                                             _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(x1, 4), low)));
          acc8[p][0] = _mm256_add_epi8(acc8[p][0], c0);
          acc8[p][1] = _mm256_add_epi8(acc8[p][1], c1);
        }
        if (++steps == 31) {
          for (int p = 0; p < P; ++p) {
            acc64[p][0] = _mm256_add_epi64(acc64[p][0], _mm256_sad_epu8(acc8[p][0], zero));
            acc64[p][1] = _mm256_add_epi64(acc64[p][1], _mm256_sad_epu8(acc8[p][1], zero));
            acc8[p][0] = acc8[p][1] = zero;
          }
          steps = 0;
        }
      }
    }
  for (int p = 0; p < P; ++p) {
    acc64[p][0] = _mm256_add_epi64(acc64[p][0], _mm256_sad_epu8(acc8[p][0], zero));
    acc64[p][1] = _mm256_add_epi64(acc64[p][1], _mm256_sad_epu8(acc8[p][1], zero));
    alignas(32) int64_t tmp[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(tmp), acc64[p][0]);
    _mm256_store_si256(reinterpret_cast<__m256i*>(tmp + 4), acc64[p][1]);
    for (int c = 0; c < 8; ++c) S[p * kBlock + 8 * half + c] = static_cast<int32_t>(tmp[c]);
  }
}

__attribute__((target("avx2"))) void mk_row_avx2(const Tile& t, int64_t npix, int32_t* S) {
  constexpr int P = 2;
  int64_t p = 0;
  for (; p + P <= npix; p += P) {
    Tile u = t;
    u.a0 = t.a0 + p * t.pix;
    mk_avx2_half<P>(u, 0, S + p * kBlock);
    mk_avx2_half<P>(u, 1, S + p * kBlock);
  }
  for (; p < npix; ++p) {
    Tile u = t;
    u.a0 = t.a0 + p * t.pix;
    mk_avx2_half<1>(u, 0, S + p * kBlock);
    mk_avx2_half<1>(u, 1, S + p * kBlock);
  }
}

// AVX-512 with VPOPCNTDQ: 16 output channels (two zmm) x P pixels, 64-bit lane counters.
template <int P>
__attribute__((target("avx512f,avx512vpopcntdq"))) MMDYNBNN_INLINE void mk_avx512(const Tile& t, int32_t* S) {
  __m512i acc[P][2];
#pragma GCC unroll 8
  for (int p = 0; p < P; ++p) acc[p][0] = acc[p][1] = _mm512_setzero_si512();
  for (int64_t i = 0; i < t.KH; ++i)
    for (int64_t j = 0; j < t.KW; ++j) {
      const uint64_t* ab = t.a0 + i * t.ti + j * t.tj;
      const uint64_t* wb = t.w + (i * t.KW + j) * t.Wg * kBlock;
      for (int64_t k = 0; k < t.Wg; ++k) {
        const __m512i w0 = _mm512_loadu_si512(wb + k * kBlock);
        const __m512i w1 = _mm512_loadu_si512(wb + k * kBlock + 8);
#pragma GCC unroll 8
        for (int p = 0; p < P; ++p) {
          const __m512i av = _mm512_set1_epi64(static_cast<long long>(ab[p * t.pix + k]));
          acc[p][0] = _mm512_add_epi64(acc[p][0], _mm512_popcnt_epi64(_mm512_xor_si512(av, w0)));
          acc[p][1] = _mm512_add_epi64(acc[p][1], _mm512_popcnt_epi64(_mm512_xor_si512(av, w1)));
        }
      }
    }
#pragma GCC unroll 8
  for (int p = 0; p < P; ++p) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(S + p * kBlock), _mm512_cvtepi64_epi32(acc[p][0]));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(S + p * kBlock + 8), _mm512_cvtepi64_epi32(acc[p][1]));
  }
}

__attribute__((target("avx512f,avx512vpopcntdq"))) void mk_row_avx512(const Tile& t, int64_t npix, int32_t* S) {
  constexpr int P = 8;
  int64_t p = 0;
  for (; p + P <= npix; p += P) {
    Tile u = t;
    u.a0 = t.a0 + p * t.pix;
    mk_avx512<P>(u, S + p * kBlock);
  }
  const int64_t rest = npix - p;
  Tile u = t;
  u.a0 = t.a0 + p * t.pix;
  int32_t* s = S + p * kBlock;
  switch (rest) {
    case 7: mk_avx512<7>(u, s); break;
    case 6: mk_avx512<6>(u, s); break;
    case 5: mk_avx512<5>(u, s); break;
    case 4: mk_avx512<4>(u, s); break;
    case 3: mk_avx512<3>(u, s); break;
    case 2: mk_avx512<2>(u, s); break;
    case 1: mk_avx512<1>(u, s); break;
    default: break;
  }
}
#endif

typedef void (*RowKernel)(const Tile&, int64_t, int32_t*);

// One output row x 16 channels: micro-kernel, then the epilogue (edge correction, scale, bias, store or
// fused next sign). Inlined into per-ISA wrappers so the epilogue is vectorised for that ISA too.
template <RowKernel MK>
MMDYNBNN_INLINE void conv_items_impl(const ConvArgs& a, int64_t begin, int64_t end) {
  const int64_t GW = a.G * a.Wg;
  const int64_t taps = a.KH * a.KW;
  const int64_t Wo = a.Wo;
  const int64_t obits_words = (a.Cout + 63) / 64;
  const int64_t oHp = a.Ho + 2 * a.opad_h, oWp = a.Wo + 2 * a.opad_w;
  // Output columns whose taps all lie inside the image: [wo_lo, wo_hi).
  int64_t wo_lo = 0, wo_hi = 0;
  {
    const int64_t lo = (a.pad_w + a.sw - 1) / a.sw;  // wo * sw - pad_w >= 0
    const int64_t last = a.W - 1 - (a.KW - 1) * a.dw + a.pad_w;  // wo * sw <= last
    const int64_t hi = last >= 0 ? last / a.sw + 1 : 0;
    wo_lo = std::min<int64_t>(lo, Wo);
    wo_hi = std::max<int64_t>(wo_lo, std::min<int64_t>(hi, Wo));
  }
  int32_t* S = new int32_t[Wo * kBlock];
  for (int64_t item = begin; item < end; ++item) {
    int64_t rem = item;
    const int64_t ho = rem % a.Ho;
    rem /= a.Ho;
    const int64_t cb = rem % a.nCB;
    rem /= a.nCB;
    const int64_t g = rem % a.G;
    const int64_t n = rem / a.G;

    Tile t;
    t.a0 = a.act + ((n * a.Hp + ho * a.sh) * a.Wp) * GW + g * a.Wg;
    t.pix = a.sw * GW;
    t.ti = a.dh * a.Wp * GW;
    t.tj = a.dw * GW;
    t.w = a.wpk + (g * a.nCB + cb) * taps * a.Wg * kBlock;
    t.KH = a.KH;
    t.KW = a.KW;
    t.Wg = a.Wg;
    MK(t, Wo, S);

    const int64_t hbase = ho * a.sh - a.pad_h;
    int64_t rows_valid = 0;
    for (int64_t i = 0; i < a.KH; ++i) {
      const int64_t hi = hbase + i * a.dh;
      rows_valid += (hi >= 0 && hi < a.H);
    }
    const bool row_full = rows_valid == a.KH;
    const int64_t nc = std::min<int64_t>(kBlock, a.CoutG - cb * kBlock);
    const int64_t co0 = g * a.CoutG + cb * kBlock;
    const int32_t* pcw_g = a.pcw + g * taps * a.nCB * kBlock + cb * kBlock;
    float sc[kBlock], bi[kBlock], th[kBlock];
    for (int64_t c = 0; c < kBlock; ++c) {
      sc[c] = c < nc ? a.scale[co0 + c] : 0.f;
      bi[c] = (c < nc && a.bias) ? a.bias[co0 + c] : 0.f;
      th[c] = (c < nc && a.next_thr) ? a.next_thr[co0 + c] : 0.f;
    }
    const bool has_bias = a.bias != nullptr;
    const int32_t full_all = static_cast<int32_t>(taps * a.Cg);
    for (int64_t wo = 0; wo < Wo; ++wo) {
      int32_t* s = S + wo * kBlock;
      int32_t full = full_all;
      if (!(row_full && wo >= wo_lo && wo < wo_hi)) {
        // Border pixel: remove the padded taps' popcount(w) and count only in-image taps.
        const int64_t wbase = wo * a.sw - a.pad_w;
        int32_t n_valid = 0;
        for (int64_t i = 0; i < a.KH; ++i) {
          const int64_t hi = hbase + i * a.dh;
          const bool row_ok = hi >= 0 && hi < a.H;
          for (int64_t j = 0; j < a.KW; ++j) {
            const int64_t wi = wbase + j * a.dw;
            if (row_ok && wi >= 0 && wi < a.W) {
              ++n_valid;
            } else {
              const int32_t* pc = pcw_g + (i * a.KW + j) * a.nCB * kBlock;
              for (int c = 0; c < kBlock; ++c) s[c] -= pc[c];
            }
          }
        }
        full = static_cast<int32_t>(n_valid * a.Cg);
      }
      float y[kBlock];
      for (int c = 0; c < kBlock; ++c) {
        const float d = static_cast<float>(full - 2 * s[c]);
        y[c] = d * sc[c];
      }
      if (has_bias)
        for (int c = 0; c < kBlock; ++c) y[c] = y[c] + bi[c];
      if (a.out_bits == nullptr) {
        float* o = a.out + ((n * a.Ho + ho) * Wo + wo) * a.Cout + co0;
        if (nc == kBlock) {
          for (int c = 0; c < kBlock; ++c) o[c] = y[c];
        } else {
          for (int64_t c = 0; c < nc; ++c) o[c] = y[c];
        }
      } else {
        // Fused next sign: 16 bits of the next layer's packed word (co0 is a multiple of 16).
        uint32_t bits = 0;
        for (int c = 0; c < kBlock; ++c) bits |= static_cast<uint32_t>(neg_bit(y[c], th[c])) << c;
        if (nc < kBlock) bits &= (1u << nc) - 1u;
        uint64_t* word = a.out_bits + ((n * oHp + ho + a.opad_h) * oWp + wo + a.opad_w) * obits_words + co0 / 64;
        reinterpret_cast<uint16_t*>(word)[(co0 % 64) / 16] = static_cast<uint16_t>(bits);
      }
    }
  }
  delete[] S;
}

void conv_items_scalar(const ConvArgs& a, int64_t begin, int64_t end) {
  conv_items_impl<mk_row_scalar>(a, begin, end);
}

#if MMDYNBNN_X86
__attribute__((target("popcnt"), flatten)) void conv_items_popcnt(const ConvArgs& a, int64_t begin, int64_t end) {
  conv_items_impl<mk_row_popcnt>(a, begin, end);
}
__attribute__((target("avx2,popcnt"), flatten)) void conv_items_avx2(const ConvArgs& a, int64_t begin, int64_t end) {
  conv_items_impl<mk_row_avx2>(a, begin, end);
}
__attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx512vpopcntdq,avx2,popcnt"), flatten)) void
conv_items_avx512(const ConvArgs& a, int64_t begin, int64_t end) {
  conv_items_impl<mk_row_avx512>(a, begin, end);
}
#endif

}  // namespace

namespace {

MMDYNBNN_INLINE float rprelu_one(float v, float a, float s, float b) {
  // Both branches computed unconditionally so that the compiler can vectorise (select, no branch).
  const float t = v - a;
  const float m = s * t;
  const float p = t > 0.f ? t : m;
  return p + b;
}

MMDYNBNN_INLINE void rprelu_impl(const float* __restrict x, float* __restrict y, const float* shift_in,
                                 const float* slope, const float* shift_out, int64_t C, int64_t inner,
                                 int64_t begin, int64_t end) {
  int64_t e = begin;
  if (inner == 1) {  // channels_last: channel runs contiguous
    while (e < end) {
      const int64_t c0 = e % C;
      const int64_t n = std::min<int64_t>(C - c0, end - e);
      const float* xa = x + e;
      float* ya = y + e;
      for (int64_t c = 0; c < n; ++c) ya[c] = rprelu_one(xa[c], shift_in[c0 + c], slope[c0 + c], shift_out[c0 + c]);
      e += n;
    }
    return;
  }
  while (e < end) {  // NCHW: one channel per plane
    const int64_t c = (e / inner) % C;
    const int64_t n = std::min<int64_t>(inner - e % inner, end - e);
    const float a = shift_in[c], s = slope[c], b = shift_out[c];
    const float* xa = x + e;
    float* ya = y + e;
    for (int64_t i = 0; i < n; ++i) ya[i] = rprelu_one(xa[i], a, s, b);
    e += n;
  }
}

#if MMDYNBNN_X86
// Same operations as rprelu_one, 8 lanes at a time: sub, mul, compare (t > 0, ordered), blend, add.
__attribute__((target("avx2"))) MMDYNBNN_INLINE void rprelu8(const float* x, float* y, __m256 a, __m256 s, __m256 b) {
  const __m256 t = _mm256_sub_ps(_mm256_loadu_ps(x), a);
  const __m256 m = _mm256_mul_ps(s, t);
  const __m256 p = _mm256_blendv_ps(m, t, _mm256_cmp_ps(t, _mm256_setzero_ps(), _CMP_GT_OQ));
  _mm256_storeu_ps(y, _mm256_add_ps(p, b));
}

__attribute__((target("avx2"))) void rprelu_avx2(const float* x, float* y, const float* shift_in, const float* slope,
                                                 const float* shift_out, int64_t C, int64_t inner, int64_t begin,
                                                 int64_t end) {
  int64_t e = begin;
  if (inner == 1) {
    while (e < end) {
      const int64_t c0 = e % C;
      const int64_t n = std::min<int64_t>(C - c0, end - e);
      int64_t c = 0;
      for (; c + 8 <= n; c += 8)
        rprelu8(x + e + c, y + e + c, _mm256_loadu_ps(shift_in + c0 + c), _mm256_loadu_ps(slope + c0 + c),
                _mm256_loadu_ps(shift_out + c0 + c));
      for (; c < n; ++c) y[e + c] = rprelu_one(x[e + c], shift_in[c0 + c], slope[c0 + c], shift_out[c0 + c]);
      e += n;
    }
    return;
  }
  while (e < end) {
    const int64_t ch = (e / inner) % C;
    const int64_t n = std::min<int64_t>(inner - e % inner, end - e);
    const __m256 a = _mm256_set1_ps(shift_in[ch]), s = _mm256_set1_ps(slope[ch]), b = _mm256_set1_ps(shift_out[ch]);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) rprelu8(x + e + i, y + e + i, a, s, b);
    for (; i < n; ++i) y[e + i] = rprelu_one(x[e + i], shift_in[ch], slope[ch], shift_out[ch]);
    e += n;
  }
}
#endif

}  // namespace

void rprelu_range(const float* x, float* y, const float* shift_in, const float* slope, const float* shift_out,
                  int64_t C, int64_t inner, int64_t begin, int64_t end, int isa) {
#if MMDYNBNN_X86
  if (isa >= kAvx2) return rprelu_avx2(x, y, shift_in, slope, shift_out, C, inner, begin, end);
#endif
  rprelu_impl(x, y, shift_in, slope, shift_out, C, inner, begin, end);
}

void conv_items(const ConvArgs& a, int isa, int64_t begin, int64_t end) {
#if MMDYNBNN_X86
  if (isa >= kAvx512) return conv_items_avx512(a, begin, end);
  if (isa >= kAvx2) return conv_items_avx2(a, begin, end);
  if (isa >= kPopcnt) return conv_items_popcnt(a, begin, end);
#endif
  conv_items_scalar(a, begin, end);
}

}  // namespace mmdynbnn_bitpack
