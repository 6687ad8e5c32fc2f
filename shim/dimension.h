// SPDX-License-Identifier: Apache-2.0
// The dimensions of per-thread kernel state the library compares with the
// baseline, and sets of them: everything here is generated from the one
// table, dimensions.inc.
#ifndef PRISTINE_SHIM_DIMENSION_H_
#define PRISTINE_SHIM_DIMENSION_H_

#include <sched.h>

#include <cstdint>

namespace pristine {

enum class Dim : uint8_t {
#define PRISTINE_DIMENSION(Enum, key, kind, leaf, flag, policy, how) Enum,
#include "dimensions.inc"
#undef PRISTINE_DIMENSION
  kCount,
};

constexpr int kDimCount = static_cast<int>(Dim::kCount);

// A set of dimensions, one bit each. Plain value type; the empty set is 0.
class DimSet {
 public:
  constexpr DimSet() = default;
  constexpr explicit DimSet(uint32_t bits) : bits_(bits) {}
  constexpr DimSet(Dim d) : bits_(1u << static_cast<int>(d)) {}  // NOLINT

  static constexpr DimSet All() { return DimSet((1u << kDimCount) - 1); }

  constexpr uint32_t bits() const { return bits_; }
  constexpr bool empty() const { return bits_ == 0; }
  constexpr bool has(Dim d) const { return (bits_ & DimSet(d).bits_) != 0; }
  constexpr bool intersects(DimSet o) const { return (bits_ & o.bits_) != 0; }

  constexpr DimSet operator|(DimSet o) const { return DimSet(bits_ | o.bits_); }
  constexpr DimSet operator&(DimSet o) const { return DimSet(bits_ & o.bits_); }
  constexpr DimSet operator-(DimSet o) const { return DimSet(bits_ & ~o.bits_); }
  DimSet& operator|=(DimSet o) { bits_ |= o.bits_; return *this; }
  DimSet& operator&=(DimSet o) { bits_ &= o.bits_; return *this; }
  constexpr bool operator==(DimSet o) const { return bits_ == o.bits_; }
  constexpr bool operator!=(DimSet o) const { return bits_ != o.bits_; }

 private:
  uint32_t bits_ = 0;
};

namespace dimension_internal {
enum class Kind : uint8_t { Namespace, Shared, Value, Security };
enum class Policy : uint8_t { Isolate, Inherit, Never };
enum class How : uint8_t { Carried, Repaired, Forwarded, None };
struct Row {
  const char* key;
  Kind kind;
  const char* proc_leaf;
  int clone_flag;
  Policy policy;
  How how;
};
inline constexpr Row kTable[kDimCount] = {
#define PRISTINE_DIMENSION(Enum, key, kind, leaf, flag, policy, how) \
  {key, Kind::kind, leaf, flag, Policy::policy, How::how},
#include "dimensions.inc"
#undef PRISTINE_DIMENSION
};
template <typename Pred>
constexpr DimSet Where(Pred pred) {
  DimSet s;
  for (int i = 0; i < kDimCount; ++i) {
    if (pred(kTable[i])) s = s | DimSet(static_cast<Dim>(i));
  }
  return s;
}
}  // namespace dimension_internal

// Namespaces entered with setns or unshare (pid and time: for children).
constexpr DimSet kNamespaceDims = dimension_internal::Where(
    [](const dimension_internal::Row& r) { return r.kind == dimension_internal::Kind::Namespace; });

// Privileges and restrictions: never escalated, whatever the options say.
constexpr DimSet kSecurityDims = dimension_internal::Where(
    [](const dimension_internal::Row& r) { return r.policy == dimension_internal::Policy::Never; });

// The default policy: what a new thread gets from the baseline.
constexpr DimSet kDefaultIsolated = dimension_internal::Where(
    [](const dimension_internal::Row& r) { return r.policy == dimension_internal::Policy::Isolate; });

// How a new thread gets the baseline's value of an isolated dimension (policy.h):
//  - carried in the attributes the caller passes to glibc, which applies them
//    before the thread runs;
constexpr DimSet kCarriedDims = dimension_internal::Where(
    [](const dimension_internal::Row& r) { return r.how == dimension_internal::How::Carried; });
//  - repaired by the new thread itself, before any program code, from
//    descriptors of the baseline's namespaces: what Linux lets a thread
//    re-enter while the process is multi-threaded;
constexpr DimSet kRepairableDims = dimension_internal::Where(
    [](const dimension_internal::Row& r) { return r.how == dimension_internal::How::Repaired; });
//  - forwarded: created by a thread in the baseline state (the template or a
//    spare), for what no thread can undo on itself: a private fs_struct or fd
//    table cannot be shared again, a mount namespace cannot be entered by a
//    thread sharing its fs_struct, and the kernel refuses a thread whose
//    pid_for_children or time_for_children differ from its own.
constexpr DimSet kForwardedDims = dimension_internal::Where(
    [](const dimension_internal::Row& r) { return r.how == dimension_internal::How::Forwarded; });

// What another thread of the process can change on a thread (by tid).
constexpr DimSet kCrossThreadDims = DimSet(Dim::kAffinity) | Dim::kSched | Dim::kName;

// The option key of a dimension ("net", "affinity", ...); "?" for none.
constexpr const char* DimName(Dim d) {
  return static_cast<int>(d) < kDimCount ? dimension_internal::kTable[static_cast<int>(d)].key
                                         : "?";
}

// The leaf under /proc/<pid>/task/<tid>/ of a namespace dimension ("ns/net",
// ..., "ns/pid_for_children"); null for other dimensions.
constexpr const char* NamespaceLeaf(Dim d) {
  return kNamespaceDims.has(d) ? dimension_internal::kTable[static_cast<int>(d)].proc_leaf
                               : nullptr;
}

// The CLONE_NEW* flag of a namespace dimension (CLONE_NEWPID for kPid, ...);
// 0 for other dimensions.
constexpr int NamespaceCloneFlag(Dim d) {
  return kNamespaceDims.has(d) ? dimension_internal::kTable[static_cast<int>(d)].clone_flag : 0;
}

// Parses an option key; returns false if `name` (of length `len`) is none.
bool DimFromName(const char* name, unsigned len, Dim* out);

// Calls f(Dim) for each member, in enum order.
template <typename F>
void ForEachDim(DimSet s, F f) {
  for (int i = 0; i < kDimCount; ++i) {
    if (s.has(static_cast<Dim>(i))) f(static_cast<Dim>(i));
  }
}

}  // namespace pristine

#endif  // PRISTINE_SHIM_DIMENSION_H_
