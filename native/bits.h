// The page builder's bitmap helpers (native/build.cc), twins of gc/bits.ts: bounds-checked
// reads of shared tables, next set / clear bit, popcount, and the small-object copy.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace movegc {

template <typename T>
struct Table {
  const T* p = nullptr;
  size_t n = 0;
};

// One bitmap word; words past the table read as 0, as an out-of-range typed array read does.
inline uint32_t BitWord(const Table<uint32_t>& b, int64_t i) { return static_cast<size_t>(i) < b.n ? b.p[i] : 0; }

// First set bit in [from, limit), or limit (bits.ts nextSet).
inline int64_t NextSet(const Table<uint32_t>& bits, int64_t from, int64_t limit) {
  if (from >= limit) return limit;
  int64_t w = from >> 5;
  uint32_t v = BitWord(bits, w) & ~((1u << (from & 31)) - 1u);
  const int64_t last = (limit - 1) >> 5;
  while (v == 0) {
    if (++w > last) return limit;
    v = BitWord(bits, w);
  }
  const int64_t i = (w << 5) + __builtin_ctz(v);
  return i < limit ? i : limit;
}

// First clear bit in [from, limit), or limit (bits.ts nextClear).
inline int64_t NextClear(const Table<uint32_t>& bits, int64_t from, int64_t limit) {
  if (from >= limit) return limit;
  int64_t w = from >> 5;
  uint32_t v = ~BitWord(bits, w) & ~((1u << (from & 31)) - 1u);
  const int64_t last = (limit - 1) >> 5;
  while (v == 0) {
    if (++w > last) return limit;
    v = ~BitWord(bits, w);
  }
  const int64_t i = (w << 5) + __builtin_ctz(v);
  return i < limit ? i : limit;
}

inline bool TestBit(const Table<uint32_t>& bits, int64_t i) { return (BitWord(bits, i >> 5) >> (i & 31)) & 1u; }

// Without -mpopcnt, __builtin_popcount is a libgcc call; this is a few inline ALU operations.
inline uint32_t Popcount(uint32_t x) {
  x = x - ((x >> 1) & 0x55555555u);
  x = (x & 0x33333333u) + ((x >> 2) & 0x33333333u);
  x = (x + (x >> 4)) & 0x0f0f0f0fu;
  return (x * 0x01010101u) >> 24;
}

// Copies n u32 words. Objects are small: a libc call per object cost more than the copy.
// Forward order, as build.ts copies small objects (source and destination never overlap).
inline void CopyWords(uint32_t* d, const uint32_t* s, int64_t n) {
  if (n > 32) {
    memmove(d, s, n * 4);
    return;
  }
  for (int64_t i = 0; i < n; i++) d[i] = s[i];
}

// Copies an object of n u32 words from s to d, where `room` words from d may be written (the
// rest of the object's space is written again later: build.cc Slide) and `avail` read from s.
// Small objects go in one or two fixed 64-byte copies, past their end where there is room: a
// loop as long as the object mispredicted its exit once an object (sizes vary), a third of the
// build's time for small objects. The read past the end stays in from-space; a page there that
// a WHOLE install moved away (out of order, by a thread other than the compactor) reads as
// zeros, as the copied words past the end are never kept.
inline void CopyObject(uint32_t* d, const uint32_t* s, int64_t n, int64_t room, int64_t avail) {
  const int64_t lim = room < avail ? room : avail;
  if (n <= 16 && lim >= 16) {
    memcpy(d, s, 64);
  } else if (n <= 32 && lim >= 32) {
    memcpy(d, s, 64);
    memcpy(d + 16, s + 16, 64);
  } else {
    CopyWords(d, s, n);
  }
}

}  // namespace movegc
