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

.PHONY: all test test-isa test-real demo bench goldens clean fuzz fuzz-seeds valgrind install uninstall experiments
all: $(TOOLS) $(EXAMPLES) $(TESTS) $(README_EXAMPLE)

$(B):
	mkdir -p $(B)

$(B)/%: tools/%.c patchscope.h | $(B)
	$(CC) $(CFLAGS) $< -o $@ $(LDLIBS)
# the CLI: main.c holds the implementation, each other file a group of commands
CLI_SRC := $(wildcard tools/cli/*.c)
$(B)/patchscope: $(CLI_SRC) tools/cli/cli.h examples/example.h patchscope.h | $(B)
	$(CC) $(CFLAGS) $(CLI_SRC) -o $@ $(LDLIBS)
# gen_models shares no code with the header: editing the header leaves the models alone
$(B)/gen_models: tools/gen_models.c | $(B)
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

# the same suite under AddressSanitizer, LeakSanitizer and UndefinedBehaviorSanitizer
# (gcc or clang); any report fails the run. -O0: the tests are short, the compiles are not.
SAN      ?= -fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all
SAN_ENV  := ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
SAN_TESTS := $(patsubst $(B)/%,$(B)/san/%,$(filter-out $(B)/test_core_nothreads,$(TESTS)))

$(B)/san:
	mkdir -p $(B)/san
$(B)/san/test_%: tests/test_%.c tests/testutil.h tests/golden.h patchscope.h | $(B)/san
	$(CC) $(CFLAGS) -O0 $(SAN) $< -o $@ $(LDLIBS)
$(B)/san/test_core_nosimd: tests/test_core.c tests/testutil.h tests/golden.h patchscope.h | $(B)/san
	$(CC) $(CFLAGS) -O0 $(SAN) -DPS_NO_SIMD $< -o $@ $(LDLIBS)
$(B)/san/test_cpp: tests/cpp_build.cpp patchscope.h | $(B)/san
	$(CXX) -std=c++11 -O0 $(ARCH) -g -Wall -Wextra -Wpedantic $(SAN) $< -o $@ $(LDLIBS)

# contexts in several threads on one model, under ThreadSanitizer
$(B)/tsan/test_concurrency: tests/test_concurrency.c tests/testutil.h patchscope.h
	mkdir -p $(B)/tsan
	$(CC) $(CFLAGS) -O0 -fsanitize=thread $< -o $@ $(LDLIBS)

TEST_LOG := $(B)/test.log
RUN_SUITE := sh tests/suite.sh run $(TEST_LOG)
test: all $(SAN_TESTS) $(B)/tsan/test_concurrency $(MODELS)
	@rm -f $(TEST_LOG)
	@for t in $(TESTS); do $(RUN_SUITE) $$t $$t; done
	@$(RUN_SUITE) "README example (on the random full-vocabulary test model)" $(README_EXAMPLE) $(B)/models/mid
	@$(RUN_SUITE) tests/test_download.sh sh tests/test_download.sh
	@$(RUN_SUITE) tests/test_install.sh sh tests/test_install.sh
	@for t in $(SAN_TESTS); do $(RUN_SUITE) $$t $(SAN_ENV) $$t; done
	@$(RUN_SUITE) $(B)/tsan/test_concurrency TSAN_OPTIONS=halt_on_error=1 $(B)/tsan/test_concurrency $(B)/models/tiny
	@sh tests/suite.sh summary $(TEST_LOG)

# make install PREFIX=/usr/local [DESTDIR=...]: the header, the CLI, a shared library
# built from the header (every public ps_ function exported, nothing else) and a
# pkg-config file, so that `cc prog.c $(pkg-config --cflags --libs patchscope)` works
PREFIX  ?= /usr/local
VERSION := $(shell sed -n 's/^\#define PS_VERSION "\(.*\)"/\1/p' patchscope.h)
SONAME  := libpatchscope.so.$(firstword $(subst ., ,$(VERSION)))
EXPORT  := -fvisibility=hidden '-DPSDEF=extern __attribute__((visibility("default")))'
$(B)/libpatchscope.so: patchscope.h | $(B)
	$(CC) $(CFLAGS) -fPIC -shared $(EXPORT) -DPATCHSCOPE_IMPLEMENTATION -x c patchscope.h \
	    -Wl,-soname,$(SONAME) -o $@ $(LDLIBS)
install: $(B)/patchscope $(B)/libpatchscope.so
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 patchscope.h $(DESTDIR)$(PREFIX)/include/patchscope.h
	install -m 755 $(B)/patchscope $(DESTDIR)$(PREFIX)/bin/patchscope
	install -m 755 $(B)/libpatchscope.so $(DESTDIR)$(PREFIX)/lib/libpatchscope.so.$(VERSION)
	ln -sf libpatchscope.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(PREFIX)/lib/libpatchscope.so
	printf '%s\n' 'prefix=$(PREFIX)' 'includedir=$${prefix}/include' 'libdir=$${prefix}/lib' '' \
	    'Name: patchscope' 'Description: Patchscopes and hooks on Hugging Face transformer checkpoints' \
	    'Version: $(VERSION)' 'Cflags: -I$${includedir}' 'Libs: -L$${libdir} -lpatchscope' \
	    'Libs.private: $(LDLIBS)' > $(DESTDIR)$(PREFIX)/lib/pkgconfig/patchscope.pc
uninstall:
	rm -f $(DESTDIR)$(PREFIX)/include/patchscope.h $(DESTDIR)$(PREFIX)/bin/patchscope \
	    $(DESTDIR)$(PREFIX)/lib/libpatchscope.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/$(SONAME) \
	    $(DESTDIR)$(PREFIX)/lib/libpatchscope.so $(DESTDIR)$(PREFIX)/lib/pkgconfig/patchscope.pc

# the seed's three experiments on the real checkpoints (skips without weights/gpt2*)
test-real: $(B)/test_real
	$(B)/test_real

# the examples on gpt2 (fetched first where the network allows), else on weights/tiny
demo: $(B)/ceo_demo $(B)/word2vec_stages $(B)/ovector $(B)/cross_family
	@[ -f weights/gpt2/model.safetensors ] || weights/download.sh gpt2 || \
	    echo "could not download gpt2: the demo runs on the tiny model in weights/tiny"
	$(B)/ceo_demo --progress
	$(B)/word2vec_stages
	$(B)/ovector
	@echo "== the same three on weights/tiny-llama (Llama architecture, Mistral's tokenizer; prompts with its BOS)"
	$(B)/ceo_demo --model weights/tiny-llama --svg $(B)/ceo_grid_tiny_llama.svg --csv $(B)/ceo_grid_tiny_llama.csv
	$(B)/word2vec_stages --model weights/tiny-llama --out $(B)/w2v_tiny_llama
	$(B)/ovector --model weights/tiny-llama
	@echo "== the tiny GPT-2's states read through the tiny Llama"
	$(B)/cross_family --svg $(B)/cross_family.svg

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
figures: $(B)/ceo_demo $(B)/word2vec_stages $(B)/patchscope $(B)/cross_family
	mkdir -p examples/figures
	$(B)/ceo_demo --model weights/tiny --svg examples/figures/ceo_grid_tiny.svg --csv examples/figures/ceo_grid_tiny.csv
	$(B)/ceo_demo --model weights/tiny-llama --svg examples/figures/ceo_grid_tiny_llama.svg \
	    --csv examples/figures/ceo_grid_tiny_llama.csv
	$(B)/cross_family --svg examples/figures/cross_family_tiny.svg
	$(B)/word2vec_stages --model weights/tiny --out examples/figures/w2v_tiny
	$(B)/patchscope patch --model weights/tiny --clean-prompt "The capital of Poland is" \
	    --corrupted-prompt "The capital of France is" --answer " Warsaw" --wrong " Paris" \
	    --svg examples/figures/patching_tiny.svg
	rm -f $(B)/sweep_identity.jsonl
	$(B)/patchscope sweep --model weights/tiny --jobs examples/data/sweep_identity.jsonl --out $(B)/sweep_identity.jsonl
	$(B)/patchscope summarize $(B)/sweep_identity.jsonl --by kind --metric reciprocal_rank \
	    --title "Token identity on weights/tiny: reciprocal rank of the source token at target layer 5" \
	    --lines examples/figures/sweep_identity_tiny.svg
	$(MAKE) experiments
	cp $(B)/experiments/attribute-extraction/accuracy_heatmap.svg examples/figures/attribute_extraction_tiny.svg
	cp $(B)/experiments/next-token/precision_lines.svg examples/figures/next_token_tiny.svg

# the paper's experiments on the shipped tiny model, into build/experiments/NAME (about a minute):
# attribute extraction on the relations the tiny model was taught, every source x target layer
AE_DATA := examples/data/patchscopes/factual/country_capital_city.tsv,examples/data/patchscopes/factual/company_ceo.tsv,examples/data/patchscopes/factual/country_largest_city.tsv
experiments: $(B)/patchscope
	mkdir -p $(B)/experiments
	$(B)/patchscope experiment attribute-extraction --model weights/tiny --out $(B)/experiments/attribute-extraction \
	    --data $(AE_DATA) --per-relation 0 --target-layers all
	$(B)/patchscope experiment entity-description --model weights/tiny --out $(B)/experiments/entity-description
	$(B)/patchscope experiment next-token --model weights/tiny --out $(B)/experiments/next-token
	$(B)/patchscope experiment multi-hop --model weights/tiny --out $(B)/experiments/multi-hop

# speed, measured (never asserted by tests); tiktoken side by side when node has it
bench: $(B)/bench $(B)/patchscope
	$(B)/bench
	-@node -e 'require("tiktoken")' 2>/dev/null && node tools/bench_tiktoken.js || echo "tiktoken (node) not installed: skipped"

# needs torch (Debian's python3-torch); the results are committed
goldens: $(MODELS)
	$(PYTHON) tools/reference/make_goldens.py $(B)/models tests/data/golden
	$(PYTHON) tools/reference/make_interv_goldens.py $(B)/models tests/data/golden
	$(PYTHON) tools/reference/families_ref.py tests/data/families tests/data/golden
	$(PYTHON) tools/reference/make_sae_goldens.py $(B)/models tests/data/sae tests/data/golden

# the CLI tokenizing a prompt and running it (with a hook at every layer) under
# valgrind's memcheck: no errors, no leaks. Built without -march=native, since valgrind
# does not decode every vector instruction.
$(B)/valgrind/patchscope: $(CLI_SRC) tools/cli/cli.h examples/example.h patchscope.h
	mkdir -p $(B)/valgrind
	$(CC) -std=c99 -O1 -g -Wall -Wextra -Wpedantic $(CLI_SRC) -o $@ $(LDLIBS)
valgrind: $(B)/valgrind/patchscope $(MODELS)
	valgrind --error-exitcode=1 --leak-check=full --show-leak-kinds=all --errors-for-leak-kinds=all \
	    $(B)/valgrind/patchscope run --model $(B)/models/mid --prompt "The capital of Poland is" \
	    --threads 2 --dump pattern

# libFuzzer harnesses (clang): each runs FUZZ_SECONDS on its corpus in tests/fuzz/corpus-NAME
# (kept between runs, not committed), seeded from tests/fuzz/seeds/NAME. Findings land in
# $(B)/fuzz/NAME-crash-* and fail the run.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_FLAGS   ?= -std=c99 -O1 $(ARCH) -g -fsanitize=fuzzer,address,undefined,float-cast-overflow -fno-sanitize-recover=all
FUZZERS      := $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/*.c))

$(B)/fuzz/%: tests/fuzz/%.c tests/fuzz/fuzz.h patchscope.h
	mkdir -p $(B)/fuzz
	$(FUZZ_CC) $(FUZZ_FLAGS) $< -o $@ $(LDLIBS)

# the committed seeds, from the micro models (regress-* files are findings: kept)
fuzz-seeds: $(MODELS)
	tests/fuzz/make_seeds.sh

fuzz: $(addprefix $(B)/fuzz/,$(FUZZERS)) $(MODELS)
	@set -e; for f in $(FUZZERS); do \
	    echo "== fuzz $$f for $(FUZZ_SECONDS) s"; mkdir -p tests/fuzz/corpus-$$f; \
	    $(B)/fuzz/$$f -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	        -artifact_prefix=$(B)/fuzz/$$f- tests/fuzz/corpus-$$f tests/fuzz/seeds/$$f >$(B)/fuzz/$$f.log 2>&1 || \
	        { tail -40 $(B)/fuzz/$$f.log; echo "fuzz $$f: a finding, see $(B)/fuzz/$$f.log"; exit 1; }; \
	    grep -E '^stat::(number_of_executed_units|new_units_added)' $(B)/fuzz/$$f.log; \
	done

clean:
	rm -rf $(B)
