// SPDX-License-Identifier: Apache-2.0
// The dimensions of per-thread kernel state that pristine compares with the
// baseline (PRODUCT.md, "Dimensions and the default policy"), and sets of them.
#ifndef PRISTINE_SHIM_DIMENSION_H_
#define PRISTINE_SHIM_DIMENSION_H_

#include <cstdint>

namespace pristine {

enum class Dim : uint8_t {
  kNet,
  kUts,
  kIpc,
  kMnt,
  kCgroup,
  kPid,       // pid_for_children
  kTime,      // time_for_children
  kFs,        // a private cwd/root/umask (unshare(CLONE_FS))
  kFiles,     // a private fd table (unshare(CLONE_FILES))
  kAffinity,
  kSigmask,
  kSched,     // policy, priority and nice
  kName,
  kCaps,      // every capability set, bounding and ambient included
  kNnp,       // no_new_privs
  kSeccomp,
  kLandlock,
  kCreds,     // per-thread uid/gid/groups set with raw syscalls
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

constexpr DimSet kNamespaceDims =
    DimSet(Dim::kNet) | Dim::kUts | Dim::kIpc | Dim::kMnt | Dim::kCgroup |
    Dim::kPid | Dim::kTime;

// Privileges and restrictions: never escalated, whatever the options say.
constexpr DimSet kSecurityDims = DimSet(Dim::kCaps) | Dim::kNnp | Dim::kSeccomp |
                                 Dim::kLandlock | Dim::kCreds;

// How a new thread gets the baseline's value of an isolated dimension (create.h):
//  - carried in the attributes the caller passes to glibc, which applies them
//    before the thread runs;
constexpr DimSet kCarriedDims = DimSet(Dim::kAffinity) | Dim::kSigmask;
//  - repaired by the new thread itself, before any program code, from
//    descriptors of the baseline's namespaces: what Linux lets a thread
//    re-enter while the process is multi-threaded;
constexpr DimSet kRepairableDims = DimSet(Dim::kNet) | Dim::kUts | Dim::kIpc | Dim::kCgroup;
//  - forwarded: created by a thread in the baseline state (the template or a
//    spare), for what no thread can undo on itself: a private fs_struct or fd
//    table cannot be shared again, a mount namespace cannot be entered by a
//    thread sharing its fs_struct, and the kernel refuses a thread whose
//    pid_for_children or time_for_children differ from its own.
constexpr DimSet kForwardedDims =
    DimSet(Dim::kFs) | Dim::kFiles | Dim::kMnt | Dim::kPid | Dim::kTime;

// What another thread of the process can change on a thread (by tid).
constexpr DimSet kCrossThreadDims = DimSet(Dim::kAffinity) | Dim::kSched | Dim::kName;

// The option key of a dimension ("net", "affinity", ...).
const char* DimName(Dim d);

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
