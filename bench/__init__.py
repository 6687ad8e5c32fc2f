# SPDX-License-Identifier: Apache-2.0
"""pristine's benchmark: what it measures and the targets (figures), how it runs (runner) and how
its results become documentation (markdown). `scripts/bench` is the command; docs/performance.md
describes the figures."""
