# patchscope.h - build everything into build/, test with `make test`.
# Every program is one translation unit that defines PATCHSCOPE_IMPLEMENTATION.

CC      ?= cc
CXX     ?= c++
ARCH    ?= -march=native
CFLAGS  ?= -std=c99 -O2 $(ARCH) -g -Wall -Wextra -Wpedantic
LDLIBS  ?= -lm -lpthread
PYTHON  ?= /usr/bin/python3
B       := build

TOOLS    := $(B)/patchscope $(B)/gen_models $(B)/bench
EXAMPLES := $(patsubst examples/%.c,$(B)/%,$(wildcard examples/*.c))
TESTS    := $(patsubst tests/%.c,$(B)/%,$(wildcard tests/test_*.c)) $(B)/test_core_nothreads \
            $(B)/test_core_nosimd $(B)/test_cpp
MODELS   := $(B)/models/.stamp

.PHONY: all test bench goldens clean
all: $(TOOLS) $(EXAMPLES) $(TESTS)

$(B):
	mkdir -p $(B)

$(B)/%: tools/%.c patchscope.h | $(B)
	$(CC) $(CFLAGS) $< -o $@ $(LDLIBS)
$(B)/%: examples/%.c examples/example.h patchscope.h | $(B)
	$(CC) $(CFLAGS) $< -o $@ $(LDLIBS)
$(B)/test_%: tests/test_%.c tests/testutil.h tests/golden.h patchscope.h | $(B)
	$(CC) $(CFLAGS) $< -o $@ $(LDLIBS)

# the same core tests without pthreads, with the portable C kernels, and the header
# compiled as C++
$(B)/test_core_nothreads: tests/test_core.c tests/testutil.h tests/golden.h patchscope.h | $(B)
	$(CC) $(CFLAGS) -DPS_NO_THREADS $< -o $@ -lm
$(B)/test_core_nosimd: tests/test_core.c tests/testutil.h tests/golden.h patchscope.h | $(B)
	$(CC) $(CFLAGS) -DPS_NO_SIMD $< -o $@ $(LDLIBS)
$(B)/test_cpp: tests/cpp_build.cpp patchscope.h | $(B)
	$(CXX) -std=c++11 -O1 -Wall -Wextra -Wpedantic $< -o $@ $(LDLIBS)

# tiny random checkpoints in the Hugging Face layout, regenerated bit for bit
$(MODELS): $(B)/gen_models
	$(B)/gen_models $(B)/models
	touch $@

test: all $(MODELS)
	@set -e; for t in $(TESTS); do echo "== $$t"; $$t; done

# speed, measured (never asserted by tests); tiktoken side by side when node has it
bench: $(B)/bench
	$(B)/bench
	-@node -e 'require("tiktoken")' 2>/dev/null && node tools/bench_tiktoken.js || echo "tiktoken (node) not installed: skipped"

# needs torch (Debian's python3-torch); the results are committed
goldens: $(MODELS)
	$(PYTHON) tools/reference/make_goldens.py $(B)/models tests/data/golden

clean:
	rm -rf $(B)
