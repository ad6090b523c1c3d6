# Makefile — builds linattn, runs its tests, benchmarks and figures.  `make help` lists targets.
# Read top to bottom: variables, dependencies (pkg-config), sources, rules, targets.

# ---- variables ----------------------------------------------------------------------------
CC       ?= cc
ifeq ($(CC),cc)
CC       := gcc
endif
OPT      ?= -O3 -march=native
# Strict warnings as errors.  Never -ffast-math or -Ofast: they change the error being measured.
WARN     := -std=c11 -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wno-unused-parameter -Werror
CFLAGS   ?=
CFLAGS   += $(OPT) $(WARN) -fopenmp -D_GNU_SOURCE -fno-math-errno $(SANFLAGS)
LDFLAGS  += $(SANFLAGS)
BUILD    ?= build
# OpenBLAS on these Zen 5 VMs is run with its Haswell (AVX2) kernels for safety; keep the
# caller's choice when set.  See README "BLAS" for AVX-512 kernels on newer CPUs.
export OPENBLAS_CORETYPE ?= Haswell
# The data directory (stories260K); tests skip with a message when it is absent.
export LINATTN_DATA ?= $(abspath ../shared/data)

# ---- dependencies (pkg-config) ------------------------------------------------------------
PKGS     := gsl hdf5-serial openblas libfyaml nettle
DEPS_OK  := $(shell pkg-config --exists $(PKGS) cmocka 2>/dev/null && echo yes)
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# GSL's .pc pulls in its own reference CBLAS; OpenBLAS provides cblas_* for GSL as well.
PKG_LIBS := $(filter-out -lgslcblas,$(shell pkg-config --libs $(PKGS) 2>/dev/null))
TEST_LIBS := $(shell pkg-config --libs cmocka 2>/dev/null)
GIT_COMMIT := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)$(shell git diff --quiet HEAD 2>/dev/null || echo -dirty)
CPPFLAGS += $(PKG_CFLAGS) -DLA_GIT_COMMIT='"$(GIT_COMMIT)"' -DLA_CFLAGS='"$(OPT) -fopenmp -fno-math-errno"'
LDLIBS   += $(PKG_LIBS) -lm

# ---- sources: one list per module (add a file here when it compiles cleanly) --------------
HARNESS_SRC   := harness/status.c harness/timing.c harness/sysinfo.c harness/check.c \
                 harness/cli_bench.c harness/cli_bench_one.c
HARNESS_SRC   += harness/llama.c harness/capture.c
HARNESS_SRC   += harness/crossover.c
HARNESS_SRC   += harness/results.c
KERNEL_SRC    := kernels/softmax_ref.c kernels/softmax_flash.c kernels/linear_ref.c \
                 kernels/linear.c kernels/registry.c kernels/vmath.c
FEATUREMAP_SRC := featuremaps/registry.c featuremaps/elu1.c
FEATUREMAP_SRC += featuremaps/draws.c featuremaps/rff.c featuremaps/prf.c featuremaps/hyp.c \
                  featuremaps/gerf.c featuremaps/taylor2.c featuremaps/relu.c featuremaps/learned.c
HARNESS_SRC   += harness/cli_featuremap.c
HARNESS_SRC   += harness/data.c harness/metrics.c harness/runner.c harness/progress.c \
                 harness/cli_run.c
LIB_SRC  := $(HARNESS_SRC) $(KERNEL_SRC) $(FEATUREMAP_SRC)
MAIN_SRC := harness/main.c
TESTS    := $(patsubst tests/%.c,%,$(wildcard tests/test_*.c))

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
LIB      := $(BUILD)/liblinattn.a
BIN      := linattn

# ---- rules -------------------------------------------------------------------------------
.PHONY: all check test asan bench figures clean help deps

all: deps-ok $(BIN)

deps-ok:
	@if [ "$(DEPS_OK)" != yes ]; then scripts/install-deps.sh || exit 1; fi
.PHONY: deps-ok

deps:
	scripts/install-deps.sh

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BIN): $(BUILD)/harness/main.o $(LIB)
	$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

$(BUILD)/tests/%: tests/%.c tests/testutil.h $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -Wno-missing-prototypes -o $@ $< $(LIB) $(LDFLAGS) $(LDLIBS) $(TEST_LIBS)

-include $(LIB_OBJ:.o=.d) $(BUILD)/harness/main.d

# ---- targets -----------------------------------------------------------------------------
check: all $(TESTS:%=$(BUILD)/tests/%)  ## build and run every test (cmocka + CLI tests)
	@scripts/run-tests.sh $(BUILD) $(TESTS)

test: check

asan:  ## build with AddressSanitizer + UBSan into build-asan/ and run the same tests
	$(MAKE) BUILD=build-asan BIN=build-asan/linattn OPT="-O1 -g -march=native" \
	    SANFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
	    LINATTN_BIN=build-asan/linattn check

bench: all  ## the benchmark table (1 thread): kernels against SGEMM peak, d in {32,64,128}
	./$(BIN) bench --suite

figures: all  ## run the quick experiments and draw every figure into plots/out/
	@echo "make figures: the experiment engine and figures are not built yet (issues 4 and 5)."

clean:  ## remove build outputs
	rm -rf $(BUILD) build-asan $(BIN)

help:  ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s "	"
