// SPDX-License-Identifier: Apache-2.0
// pristine-empty-preload: a shared library with nothing in it. scripts/bench
// preloads it into the same exec jobs as the library: what any LD_PRELOAD
// library costs a process start (one more object mapped, relocated and
// faulted in) is the floor of the exec figures.
