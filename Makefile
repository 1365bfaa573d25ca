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
README_EXAMPLE := $(B)/readme_example
MODELS   := $(B)/models/.stamp

.PHONY: all test test-isa test-real demo bench goldens clean
all: $(TOOLS) $(EXAMPLES) $(TESTS) $(README_EXAMPLE)

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
	$(CXX) -std=c++11 -O1 $(ARCH) -Wall -Wextra -Wpedantic $< -o $@ $(LDLIBS)

# the README's first C block, compiled as it stands
$(README_EXAMPLE): README.md patchscope.h | $(B)
	awk '/^```c$$/ { n++; on = n == 1; next } /^```$$/ { on = 0 } on' README.md > $@.c
	$(CC) $(CFLAGS) -I. $@.c -o $@ $(LDLIBS)

# tiny random checkpoints in the Hugging Face layout, regenerated bit for bit
$(MODELS): $(B)/gen_models
	$(B)/gen_models $(B)/models
	touch $@

test: all $(MODELS)
	@set -e; for t in $(TESTS); do echo "== $$t"; $$t; done
	@echo "== README example (on the random full-vocabulary test model)"; $(README_EXAMPLE) $(B)/models/mid

# the seed's three experiments on the real checkpoints (skips without weights/gpt2*)
test-real: $(B)/test_real
	$(B)/test_real

# the examples on gpt2 (fetched first where the network allows), else on weights/tiny
demo: $(B)/ceo_demo $(B)/word2vec_stages $(B)/ovector
	@[ -f weights/gpt2/model.safetensors ] || weights/download.sh gpt2 || \
	    echo "could not download gpt2: the demo runs on the tiny model in weights/tiny"
	$(B)/ceo_demo --progress
	$(B)/word2vec_stages
	$(B)/ovector

# the kernels of the other SIMD targets: AVX2+FMA where this CPU has it, NEON under
# qemu-aarch64 where Debian's gcc-aarch64-linux-gnu and qemu-user are installed
ISA_CFLAGS := -std=c99 -O2 -Wall -Wextra -Wpedantic
test-isa: $(MODELS)
	@set -e; if grep -q avx2 /proc/cpuinfo 2>/dev/null; then for t in core kernels; do \
	    $(CC) $(ISA_CFLAGS) -march=haswell tests/test_$$t.c -o $(B)/test_$${t}_avx2 $(LDLIBS); \
	    echo "== $(B)/test_$${t}_avx2"; $(B)/test_$${t}_avx2; done; else echo "no AVX2 here: skipped"; fi
	@set -e; if command -v aarch64-linux-gnu-gcc >/dev/null && command -v qemu-aarch64 >/dev/null; then \
	  for t in core kernels; do aarch64-linux-gnu-gcc $(ISA_CFLAGS) tests/test_$$t.c -o $(B)/test_$${t}_neon $(LDLIBS); \
	    echo "== $(B)/test_$${t}_neon (qemu)"; qemu-aarch64 -L /usr/aarch64-linux-gnu $(B)/test_$${t}_neon; done; \
	else echo "no aarch64 cross compiler or qemu-aarch64: NEON skipped"; fi

# the README's figures, from the shipped tiny model (committed in examples/figures)
figures: $(B)/ceo_demo $(B)/word2vec_stages
	mkdir -p examples/figures
	$(B)/ceo_demo --model weights/tiny --svg examples/figures/ceo_grid_tiny.svg --csv examples/figures/ceo_grid_tiny.csv
	$(B)/word2vec_stages --model weights/tiny --out examples/figures/w2v_tiny

# speed, measured (never asserted by tests); tiktoken side by side when node has it
bench: $(B)/bench
	$(B)/bench
	-@node -e 'require("tiktoken")' 2>/dev/null && node tools/bench_tiktoken.js || echo "tiktoken (node) not installed: skipped"

# needs torch (Debian's python3-torch); the results are committed
goldens: $(MODELS)
	$(PYTHON) tools/reference/make_goldens.py $(B)/models tests/data/golden

clean:
	rm -rf $(B)
