// The page builder compiled: a line-by-line twin of gc/build.ts (PageBuilder), which stays
// the readable reference, with two departures that write the same words in the end: reference
// slots are forwarded at the end of each page rather than as they are met (Slot, Flush), and
// small objects are copied in fixed 64-byte blocks that may run past their end into words
// written again later (CopyObject, bits.h). It reads the
// same shared tables (live-words and object-start bitmaps, chunkNew, pageFirst, pageKind,
// segments, types) and from-space, and writes only the destination pages. It decides
// nothing: claims, buffers and installs stay in TypeScript; one call builds a run of
// contiguous to-space pages into contiguous buffers.
//
// Tables are SharedArrayBuffers: Node-API has no SharedArrayBuffer type in Node 20, but
// napi_get_typedarray_info on a typed array over one gives its data pointer. The builder
// keeps references to those typed arrays (so the memory outlives it) and caches pointers.
// From-space and the destination are views over mappings that can be detached when the
// heap closes: they are looked up at every call, never cached.
//
// Every read is bounds-checked where a corrupt header could send it astray; writes stay
// inside the destination pages by construction (as in build.ts) and the run is checked once.
#include <cstdint>
#include <cstring>
#include <string>

#include "addon.h"
#include "bits.h"
#include "errors.h"

namespace movegc {
namespace {

// Constants shared with gc/layout.ts, gc/shared.ts, gc/plan.ts, gc/forward.ts and gc/build.ts.
// The TypeScript side passes its values by name at construction (build-native.ts) and every
// one is checked against these there.
constexpr int64_t PAGE_WORDS = 512;
constexpr int64_t CHUNK_WORDS = 64;
constexpr int64_t HEAP_START_WORD = 1;
constexpr uint32_t NONE = 0xffffffffu;
constexpr uint32_t IN_PLACE = 0xffffffffu;
constexpr uint32_t FORWARDED = 0x80000000u;  // forward.ts: a to-space word the mutator stored in from-space
constexpr int64_t STRIDE_WORDS = 32;  // build.ts: runs this long are copied in one block
constexpr int SEG_FIELDS = 8;
constexpr int TYPE_ROW = 4;
enum Kind : int32_t { FILLER = 0, FIXED = 1, REF_ARRAY = 2, BYTE_ARRAY = 3 };
enum PageKind : uint8_t { IDENTITY = 2, GAP = 4 };
enum Seg { END = 1, IDENT_END = 2, NEW_END = 3, FILLER_END = 4, FIRST_PAGE = 5, END_PAGE = 6, END_EXT = 7 };
constexpr uint32_t FILLER_TYPE = 0;

struct BuildError {
  std::string message;
};

[[noreturn]] void Fail(const char* what, int64_t at) { throw BuildError{std::string(what) + " (at " + std::to_string(at) + ")"}; }

class Kernel {
 public:
  Table<uint32_t> live, starts, chunkNew, pageFirst;
  Table<uint8_t> pageKind;
  Table<double> segments;
  Table<int32_t> types, ctl;
  int ctlSegments = 0;
  // Malformed objects met since the last take (build.ts MalformedTally), and the first one.
  int64_t malformed = 0, malformedFirst = 0;

  // Builds to-space pages [q0, q0+n) into dst pages starting at dst (1024 u32 each).
  void Run(int64_t q0, int64_t n, const Table<uint32_t>& from, uint32_t* dst) {
    src_ = from;
    Prefetch(dst);
    for (int64_t i = 0; i < n; i++) {
      if (i + 1 < n) Prefetch(dst + (i + 1) * PAGE_WORDS * 2);
      Build(q0 + i, dst + i * PAGE_WORDS * 2);
    }
  }

  // In move mode the destination is a recycled from-space page, long out of the caches: each
  // of its lines is read before it is written. Asking for the next page's lines while this one
  // builds overlaps those reads with the build.
  static void Prefetch(uint32_t* page) {
    for (int64_t b = 0; b < PAGE_WORDS * 8; b += 64) __builtin_prefetch(reinterpret_cast<char*>(page) + b, 1, 3);
  }

 private:
  Table<uint32_t> src_;
  int64_t top_ = 0;  // PlanTop() of the page being built

  // New word index of the live object at w (forward.ts).
  inline uint32_t Forward(uint32_t w) const {
    const uint32_t c = w >> 6;
    if (c >= chunkNew.n) Fail("reference outside the heap", w);
    const uint32_t base = chunkNew.p[c];
    if (base == IN_PLACE) return w;
    const uint32_t off = w & 63;
    const uint32_t* l = live.p + (static_cast<size_t>(c) << 1);
    if (off < 32) return off == 0 ? base : base + Popcount(l[0] & ((1u << off) - 1u));
    return base + Popcount(l[0]) + (off == 32 ? 0 : Popcount(l[1] & ((1u << (off - 32)) - 1u)));
  }

  // Reference slots are forwarded after the page's walk, not as they are met: each forward
  // reads chunkNew and the live bitmap at a target anywhere in the heap (a cache and TLB
  // miss on a cold page), and prefetching them all first overlaps those misses. The words
  // written are the same.
  struct Pending {
    uint32_t* at;
    uint32_t v;
    int64_t o;  // the object whose slot it is (counted if malformed: build.ts forwardSlot)
  };
  static constexpr int64_t kMaxPending = PAGE_WORDS * 2;
  Pending pending_[kMaxPending];
  int64_t npending_ = 0;
  // Slot `at` of object o holds reference v (not null): forwarded at the page's end (Flush).
  inline void Slot(uint32_t* at, uint32_t v, int64_t o) {
    if (v >= FORWARDED && static_cast<size_t>(v - FORWARDED) < live.n * 32) {  // forward.ts storedWord: stored since the flip, a to-space word
      *at = v - FORWARDED;
      return;
    }
    const uint32_t c = v >> 6;
    if (static_cast<int64_t>(v) < top_) {
      if (c >= chunkNew.n) Fail("reference outside the heap", v);
      __builtin_prefetch(chunkNew.p + c);
      __builtin_prefetch(live.p + (static_cast<size_t>(c) << 1));
    }
    if (npending_ == kMaxPending) Flush();  // (a page has fewer slots than that)
    pending_[npending_++] = Pending{at, v, o};
  }

  // build.ts forwardSlot, in the walk's order (so the first malformed object is the same): a
  // reference at or above the plan's top, or to a word marking did not mark, is left as it is
  // and counted.
  inline void Flush() {
    for (int64_t i = 0; i < npending_; i++) {
      const Pending& p = pending_[i];
      if (static_cast<int64_t>(p.v) < top_ && TestBit(live, p.v)) {
        *p.at = Forward(p.v);
      } else {
        CountMalformed(p.o);
        *p.at = p.v;
      }
    }
    npending_ = 0;
  }

  inline uint32_t Src(int64_t i) const {
    if (static_cast<uint64_t>(i) >= src_.n) Fail("read outside from-space", i);
    return src_.p[i];
  }
  inline void CheckSrc(int64_t from, int64_t to) const {
    if (from < 0 || to < from || static_cast<uint64_t>(to) > src_.n) Fail("read outside from-space", from);
  }
  // A type id past the table reads as a filler's row: malformed (Shape).
  static constexpr int32_t kNoRow[TYPE_ROW] = {FILLER, 0, 0, 0};

  // build.ts planTop: the last segment's end, within the heap (its bounds are checked).
  int64_t PlanTop() const {
    const int64_t count = __atomic_load_n(ctl.p + ctlSegments, __ATOMIC_SEQ_CST);
    CheckSegment((count - 1) * SEG_FIELDS);
    const int64_t end = static_cast<int64_t>(segments.p[(count - 1) * SEG_FIELDS + END]);
    const int64_t heap = static_cast<int64_t>(chunkNew.n) * CHUNK_WORDS;
    return end < heap ? end : heap;
  }

  int64_t SegmentOf(int64_t q) const {
    const int64_t count = __atomic_load_n(ctl.p + ctlSegments, __ATOMIC_SEQ_CST);
    if (count < 1 || static_cast<uint64_t>(count) * SEG_FIELDS > segments.n) Fail("segment count out of range", count);
    int64_t lo = 0, hi = count - 1;
    while (lo < hi) {
      const int64_t mid = (lo + hi + 1) >> 1;
      if (segments.p[mid * SEG_FIELDS + FIRST_PAGE] <= q) lo = mid;
      else hi = mid - 1;
    }
    CheckSegment(lo * SEG_FIELDS);
    return lo * SEG_FIELDS;
  }

  // Every word bound of a segment lies in the heap (the bitmaps' extent): the bitmap walks
  // run to these limits, and a corrupt one would walk (or spin) far past the tables.
  void CheckSegment(int64_t s) const {
    const double words = static_cast<double>(live.n) * 32;
    for (int f = 0; f < SEG_FIELDS; f++) {
      if (f == FIRST_PAGE || f == END_PAGE) continue;  // page indexes
      const double v = segments.p[s + f];
      if (!(v >= 0 && v <= words) || v != static_cast<double>(static_cast<int64_t>(v))) Fail("segment bound outside the heap", s / SEG_FIELDS);
    }
  }

  void Build(int64_t q, uint32_t* page) {
    if (static_cast<uint64_t>(q) >= pageKind.n || static_cast<uint64_t>(q) >= pageFirst.n) Fail("page outside the heap", q);
    const int64_t s = SegmentOf(q);
    top_ = PlanTop();
    if (pageKind.p[q] == IDENTITY) Identity(q, page, static_cast<int64_t>(segments.p[s + IDENT_END]));
    else if (pageKind.p[q] == GAP) memset(page, 0, PAGE_WORDS * 8);  // inside the filler its gap starts with
    else Slide(q, page, s);
  }

  // Object size in words and reference slots, from its header (layout.ts sizeWords/refCount).
  // Array lengths wrap at 2^32 exactly as the u32 arithmetic of build.ts does. A header that
  // is no object's (a filler's kind, a type id past the table, a size of 0, a size the bitmaps
  // disagree with at its end) takes the extent marking recorded and no slots (build.ts
  // malformedWords): the flip has happened, so a page that cannot be built would leave the
  // mutator waiting for it forever.
  inline void Shape(int64_t o, int64_t limit, int64_t* sz, int64_t* nref) {
    const size_t at = static_cast<size_t>(Src(o * 2)) * TYPE_ROW;
    const int32_t* row = at + TYPE_ROW <= types.n ? types.p + at : kNoRow;
    const int32_t kind = row[0];
    if (kind == FIXED) {
      *sz = row[3];
      *nref = row[1];
    } else {
      const uint32_t len = Src(o * 2 + 1);
      if (kind == REF_ARRAY) {
        *sz = 1 + static_cast<int64_t>(static_cast<uint32_t>(len + 1u) >> 1);
        *nref = len;
      } else {
        *sz = kind == BYTE_ARRAY ? 1 + static_cast<int64_t>(static_cast<uint32_t>(len + 7u) >> 3) : static_cast<int64_t>(len);
        *nref = 0;
      }
    }
    if (kind <= FILLER || *sz < 1 || !EndsMarked(o, *sz)) {
      *sz = Malformed(o, limit);
      *nref = 0;
    }
  }

  // The header's size agrees with the bitmaps at its end (mark.ts endsMarked).
  inline bool EndsMarked(int64_t o, int64_t sz) const {
    const int64_t e = o + sz;
    return TestBit(live, e - 1) && (!TestBit(live, e) || TestBit(starts, e));
  }

  // Counted as build.ts noteMalformed counts: the caller takes the tally after each call.
  void CountMalformed(int64_t o) {
    if (malformed++ == 0) malformedFirst = o;
  }

  // A malformed header's extent, as build.ts malformedWords takes it.
  int64_t Malformed(int64_t o, int64_t limit) {
    CountMalformed(o);
    const int64_t s = NextSet(starts, o + 1, limit);
    const int64_t e = NextClear(live, o + 1, limit);
    return (s < e ? s : e) - o;
  }

  inline uint32_t ChunkNew(int64_t c) const {
    if (static_cast<uint64_t>(c) >= chunkNew.n) Fail("chunk outside the heap", c);
    return chunkNew.p[c];
  }

  // Words [from, to) hold no object: the reserved null word stays zero, the rest is the gap
  // before a page-aligned large object, a filler to `end` (build.ts #gap).
  static void Gap(uint32_t* at_from, int64_t from, int64_t to, int64_t end) {
    memset(at_from, 0, (to - from) * 8);
    const int64_t g = from > HEAP_START_WORD ? from : HEAP_START_WORD;
    if (to > g) {
      at_from[(g - from) * 2] = FILLER_TYPE;
      at_from[(g - from) * 2 + 1] = static_cast<uint32_t>(end - g);
    }
  }

  void Slide(int64_t q, uint32_t* page, int64_t s) {
    const double* seg = segments.p;
    const int64_t segEnd = static_cast<int64_t>(seg[s + END]);
    const int64_t segEndExt = static_cast<int64_t>(seg[s + END_EXT]);
    const int64_t qw = q * PAGE_WORDS;
    const int64_t qEnd = qw + PAGE_WORDS;
    // to-space word t lives at page[(t - qw) * 2]
    auto at = [&](int64_t t) { return page + (t - qw) * 2; };
    npending_ = 0;  // (a page that failed mid-walk left its own)
    // Every word below this is written again after an object is copied (by the next object,
    // a gap, or the segment's free tail): CopyObject may copy past an object's end up to it.
    const int64_t newEnd = static_cast<int64_t>(seg[s + NEW_END]);
    const int64_t writable = newEnd > qw && newEnd < qEnd ? newEnd : qEnd;
    int64_t filled = qw;
    int64_t o = pageFirst.p[q];
    if (static_cast<uint32_t>(o) != NONE) {
      int64_t t = Forward(static_cast<uint32_t>(o));
      int64_t runEnd = -1;
      int64_t copiedTo = qw;  // to-space words below this are already copied by a stride copy
      while (t < qEnd) {
        if (o >= runEnd) {
          // Only this page's part of the run is scanned (see build.ts): O(page), not O(object).
          const int64_t from = t < qw ? o + (qw - t) : o;
          const int64_t span = qEnd - t > STRIDE_WORDS ? qEnd - t : STRIDE_WORDS;
          runEnd = NextClear(live, from, o + span < segEndExt ? o + span : segEndExt);
          if (runEnd - o >= STRIDE_WORDS) {
            const int64_t ra = t > qw ? t : qw;
            const int64_t re = t + (runEnd - o);
            const int64_t rb = re < qEnd ? re : qEnd;
            if (ra > filled) Gap(at(filled), filled, ra, ra);
            CheckSrc((o + ra - t) * 2, (o + rb - t) * 2);
            memmove(at(ra), src_.p + (o + ra - t) * 2, (rb - ra) * 8);
            copiedTo = rb;
          }
        }
        int64_t sz, nref;
        Shape(o, segEndExt, &sz, &nref);
        const int64_t a = t > qw ? t : qw;
        const int64_t end = t + sz;
        const int64_t b = end < qEnd ? end : qEnd;
        if (a > filled) Gap(at(filled), filled, a, a);
        const int64_t n = (b - a) * 2;
        const int64_t si = (o + a - t) * 2;
        uint32_t* d = at(a);
        CheckSrc(si, si + n);
        const uint32_t* sp = src_.p + si;
        // Every branch of build.ts writes the same words: the object's part on this page,
        // its reference slots forwarded (null stays null).
        if (a >= copiedTo) CopyObject(d, sp, n, (writable - a) * 2, static_cast<int64_t>(src_.n) - si);
        const int64_t r0 = t * 2 + 2 - a * 2;
        const int64_t r1 = r0 + nref;
        const int64_t k1 = r1 < n ? r1 : n;
        for (int64_t k = r0 > 0 ? r0 : 0; k < k1; k++) {
          const uint32_t v = sp[k];
          if (v != 0) Slot(d + k, v, o);
        }
        filled = b;
        if (end >= qEnd) break;
        t = end;
        o = NextSet(starts, o + sz, segEnd);
        if (o >= segEnd) break;
        // An object first in its chunk may be a large one landing past a gap.
        if ((o & (CHUNK_WORDS - 1)) == 0) {
          const uint32_t next = ChunkNew(o >> 6);
          if (next != IN_PLACE && next > t) t = next;
        }
      }
      Flush();
      // The next object lands on a later page: the rest of this one is its gap, and the
      // filler runs to that object (over the GAP pages between).
      if (t >= qEnd && filled < qEnd) Gap(at(filled), filled, qEnd, t);
    }
    // The segment's free tail starts on this page: a filler keeps the heap parseable.
    if (newEnd >= qw && newEnd < qEnd) {
      if (newEnd > filled) memset(at(filled), 0, (newEnd - filled) * 8);
      const int64_t fillerEnd = static_cast<int64_t>(seg[s + FILLER_END]);
      if (fillerEnd > newEnd) {
        at(newEnd)[0] = FILLER_TYPE;
        at(newEnd)[1] = static_cast<uint32_t>(fillerEnd - newEnd);
      }
    }
  }

  void Identity(int64_t q, uint32_t* page, int64_t identEnd) {
    npending_ = 0;
    const int64_t qw = q * PAGE_WORDS;
    const int64_t qEnd = qw + PAGE_WORDS;
    CheckSrc(qw * 2, qEnd * 2);
    memmove(page, src_.p + qw * 2, PAGE_WORDS * 8);
    // Dead objects that stay in place become fillers: their stale references must not survive.
    for (int64_t d = NextClear(live, qw > HEAP_START_WORD ? qw : HEAP_START_WORD, qEnd); d < qEnd;) {
      const int64_t e = NextSet(live, d, identEnd);
      if (d > qw || TestBit(live, qw - 1)) {
        page[(d - qw) * 2] = FILLER_TYPE;
        page[(d - qw) * 2 + 1] = static_cast<uint32_t>(e - d);
      }
      d = NextClear(live, e, qEnd);
    }
    for (int64_t o = pageFirst.p[q]; static_cast<uint32_t>(o) != NONE && o < qEnd;) {
      int64_t sz, nref;
      Shape(o, qEnd, &sz, &nref);
      if (nref > 0) {
        // build.ts #refs(o, o, ...): the slots of o that lie on this page, forwarded.
        const int64_t first = o * 2 + 2;
        const int64_t i0 = qw * 2 - first > 0 ? qw * 2 - first : 0;
        const int64_t i1 = nref < qEnd * 2 - first ? nref : qEnd * 2 - first;
        for (int64_t i = i0; i < i1; i++) {
          const uint32_t r = Src(first + i);
          if (r == 0) page[first + i - qw * 2] = 0;
          else Slot(page + first + i - qw * 2, r, o);
        }
      }
      o = NextSet(starts, o + sz, qEnd);
    }
    Flush();
  }
};

template <typename T>
Table<T> TableOf(Napi::Env env, Napi::Value v, napi_typedarray_type type, const char* name) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type)
    ThrowArg(env, "ERR_INVALID_ARG_TYPE", std::string(name) + " has the wrong typed-array type");
  Napi::TypedArrayOf<T> a = v.As<Napi::TypedArrayOf<T>>();
  return Table<T>{a.Data(), a.ElementLength()};
}

// A table the builder keeps (its pointer is cached for its life): shared memory only.
template <typename T>
Table<T> SharedTableOf(Napi::Env env, Napi::Value v, napi_typedarray_type type, const char* name) {
  Table<T> t = TableOf<T>(env, v, type, name);
  RequireShared(env, v.As<Napi::TypedArray>(), name);
  return t;
}

class NativePageBuilder : public Napi::ObjectWrap<NativePageBuilder> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "PageBuilder", {InstanceMethod<&NativePageBuilder::BuildRun>("build")});
  }

  // new PageBuilder({ live, starts, chunkNew, pageFirst, pageKind, segments, types, ctl,
  //                   ctlSegments, layout: { pageWords, chunkWords, heapStartWord, none, inPlace,
  //                   strideWords, segFields, typeRow, fillerType, kind, pageKind, seg } })
  explicit NativePageBuilder(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativePageBuilder>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject()) ThrowArg(env, "ERR_INVALID_ARG_TYPE", "expected the shared tables");
    Napi::Object t = info[0].As<Napi::Object>();
    Napi::Object layout = t.Get("layout").IsObject() ? t.Get("layout").As<Napi::Object>() : Napi::Object::New(env);
    auto num = [&](Napi::Object o, const char* k) { return o.Get(k).IsNumber() ? o.Get(k).As<Napi::Number>().Int64Value() : -1; };
    // Every constant this file shares with the TypeScript side, by name: a value changed on
    // one side only fails here, at construction, instead of building wrong pages.
    auto sub = [&](const char* k) { return layout.Get(k).IsObject() ? layout.Get(k).As<Napi::Object>() : Napi::Object::New(env); };
    const Napi::Object kind = sub("kind"), pageKind = sub("pageKind"), seg = sub("seg");
    const struct {
      int64_t ts, cc;
      const char* name;
    } shared[] = {
        {num(layout, "pageWords"), PAGE_WORDS, "pageWords"},
        {num(layout, "chunkWords"), CHUNK_WORDS, "chunkWords"},
        {num(layout, "heapStartWord"), HEAP_START_WORD, "heapStartWord"},
        {num(layout, "none"), NONE, "none"},
        {num(layout, "inPlace"), IN_PLACE, "inPlace"},
        {num(layout, "forwarded"), FORWARDED, "forwarded"},
        {num(layout, "strideWords"), STRIDE_WORDS, "strideWords"},
        {num(layout, "segFields"), SEG_FIELDS, "segFields"},
        {num(layout, "typeRow"), TYPE_ROW, "typeRow"},
        {num(layout, "fillerType"), FILLER_TYPE, "fillerType"},
        {num(kind, "FILLER"), FILLER, "kind.FILLER"},
        {num(kind, "FIXED"), FIXED, "kind.FIXED"},
        {num(kind, "REF_ARRAY"), REF_ARRAY, "kind.REF_ARRAY"},
        {num(kind, "BYTE_ARRAY"), BYTE_ARRAY, "kind.BYTE_ARRAY"},
        {num(pageKind, "IDENTITY"), IDENTITY, "pageKind.IDENTITY"},
        {num(pageKind, "GAP"), GAP, "pageKind.GAP"},
        {num(seg, "END"), END, "seg.END"},
        {num(seg, "IDENT_END"), IDENT_END, "seg.IDENT_END"},
        {num(seg, "NEW_END"), NEW_END, "seg.NEW_END"},
        {num(seg, "FILLER_END"), FILLER_END, "seg.FILLER_END"},
        {num(seg, "FIRST_PAGE"), FIRST_PAGE, "seg.FIRST_PAGE"},
        {num(seg, "END_PAGE"), END_PAGE, "seg.END_PAGE"},
        {num(seg, "END_EXT"), END_EXT, "seg.END_EXT"},
    };
    for (const auto& c : shared)
      if (c.ts != c.cc)
        ThrowArg(env, "ERR_OUT_OF_RANGE", std::string("native page builder: ") + c.name + " is " + std::to_string(c.ts) + " in TypeScript, " + std::to_string(c.cc) + " in build.cc (rebuild the addon)");
    k_.live = SharedTableOf<uint32_t>(env, t.Get("live"), napi_uint32_array, "live");
    k_.starts = SharedTableOf<uint32_t>(env, t.Get("starts"), napi_uint32_array, "starts");
    k_.chunkNew = SharedTableOf<uint32_t>(env, t.Get("chunkNew"), napi_uint32_array, "chunkNew");
    k_.pageFirst = SharedTableOf<uint32_t>(env, t.Get("pageFirst"), napi_uint32_array, "pageFirst");
    k_.pageKind = SharedTableOf<uint8_t>(env, t.Get("pageKind"), napi_uint8_array, "pageKind");
    k_.segments = SharedTableOf<double>(env, t.Get("segments"), napi_float64_array, "segments");
    k_.types = SharedTableOf<int32_t>(env, t.Get("types"), napi_int32_array, "types");
    k_.ctl = SharedTableOf<int32_t>(env, t.Get("ctl"), napi_int32_array, "ctl");
    k_.ctlSegments = static_cast<int>(num(t, "ctlSegments"));
    if (k_.ctlSegments < 0 || static_cast<size_t>(k_.ctlSegments) >= k_.ctl.n) ThrowArg(env, "ERR_OUT_OF_RANGE", "ctlSegments out of range");
    // forward() reads live[2c + 1] for every chunk c of chunkNew.
    if (k_.live.n < k_.chunkNew.n * 2) ThrowArg(env, "ERR_OUT_OF_RANGE", "live bitmap shorter than chunkNew");
    tables_ = Napi::Persistent(t);
  }

 private:
  Kernel k_;
  Napi::ObjectReference tables_;  // keeps the typed arrays (and their memory) alive

  // build(q, n, from: Uint32Array, dst: Uint32Array, dstU32): pages [q, q+n) into dst from
  // u32 index dstU32 on, one page (1024 u32) after another. Returns undefined, or the
  // malformed objects met as [count, first word] (build.ts MalformedTally).
  Napi::Value BuildRun(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const int64_t q = ArgInt(info, 0, "q");
    const int64_t n = ArgInt(info, 1, "n");
    Table<uint32_t> from = TableOf<uint32_t>(env, info[2], napi_uint32_array, "from");
    Table<uint32_t> dst = TableOf<uint32_t>(env, info[3], napi_uint32_array, "dst");
    const int64_t dstU32 = ArgInt(info, 4, "dstU32");
    if (q < 0 || n < 0 || static_cast<uint64_t>(q + n) > k_.pageKind.n) ThrowArg(env, "ERR_OUT_OF_RANGE", "pages outside the heap");
    if (dstU32 < 0 || static_cast<uint64_t>(dstU32 + n * PAGE_WORDS * 2) > dst.n) ThrowArg(env, "ERR_OUT_OF_RANGE", "destination pages outside dst");
    k_.malformed = 0;  // (a call that failed left its own)
    try {
      k_.Run(q, n, from, const_cast<uint32_t*>(dst.p) + dstU32);
    } catch (const BuildError& e) {
      ThrowArg(env, "ERR_OUT_OF_RANGE", "native page builder: " + e.message);
    }
    if (k_.malformed == 0) return env.Undefined();
    // [count, first word]: rare, so the common call allocates nothing.
    Napi::Array met = Napi::Array::New(env, 2);
    met.Set(0u, Napi::Number::New(env, static_cast<double>(k_.malformed)));
    met.Set(1u, Napi::Number::New(env, static_cast<double>(k_.malformedFirst)));
    return met;
  }
};

}  // namespace

void InitBuild(Napi::Env env, Napi::Object exports) { exports.Set("PageBuilder", NativePageBuilder::Define(env)); }

}  // namespace movegc
