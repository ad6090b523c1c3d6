# Makefile — builds linattn, runs its tests, benchmarks and figures.  `make help` lists targets.
# Read top to bottom: variables, dependencies (pkg-config), sources, the two stages (install
# missing packages, then build), rules, targets.  Tested by `make check` itself and on a fresh
# Debian 12 root by scripts/fresh-debian.sh (run by .ci/run).

# ---- variables ----------------------------------------------------------------------------
CC       ?= cc
ifeq ($(CC),cc)
CC       := gcc
endif
# MPI=1: an MPI-enabled build (mpicc, Open MPI) for `mpirun -np N linattn run ...`; its
# objects go to build-mpi/ so the serial and MPI builds do not mix.
ifeq ($(MPI),1)
CC       := mpicc
BUILD    ?= build-mpi
CPPFLAGS += -DLA_MPI
endif
# BLAS (see below): a BLAS other than OpenBLAS builds into build-BLAS/, binary build-BLAS/linattn.
BLAS     ?= openblas
ifneq ($(BLAS),openblas)
BUILD    ?= build-$(BLAS)
BIN      ?= $(BUILD)/linattn
endif
OPT      ?= -O3 -march=native
# Strict warnings as errors.  No fast-math optimisation flags: they change the error measured.
WARN     := -std=c11 -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wno-unused-parameter -Werror
CFLAGS   ?=
CFLAGS   += $(OPT) $(WARN) -fopenmp -D_GNU_SOURCE -fno-math-errno $(SANFLAGS)
LDFLAGS  += $(SANFLAGS)
BUILD    ?= build
# OpenBLAS on these AMD EPYC VMs (Zen 4 and Zen 5 hosts) is run with its Haswell (AVX2) kernels for safety; keep the
# caller's choice when set.  See README "BLAS" for AVX-512 kernels on newer CPUs.
export OPENBLAS_CORETYPE ?= Haswell
# The data directory (stories260K); tests skip with a message when it is absent.
export LINATTN_DATA ?= $(abspath ../shared/data)

# ---- dependencies (pkg-config) ------------------------------------------------------------
# BLAS=openblas (default) | blis | netlib: the CBLAS linked for GEMMs, chosen at build time and
# recorded by `bench` and in results files (blas, blas_core).  BLIS: Debian's libblis-dev (on
# Zen 5 it needs BLIS_ARCH_TYPE set, see README); netlib: the reference BLAS (slow, a baseline).
ifeq ($(BLAS),openblas)
BLAS_PC   := openblas
BLAS_DEF  := -DLA_BLAS_OPENBLAS
else ifeq ($(BLAS),blis)
BLAS_PC   :=
BLAS_DEF  := -DLA_BLAS_BLIS
BLAS_LIBS := -L/usr/lib/x86_64-linux-gnu/blis-openmp -Wl,-rpath,/usr/lib/x86_64-linux-gnu/blis-openmp -lblis
else ifeq ($(BLAS),netlib)
BLAS_PC   :=
BLAS_DEF  := -DLA_BLAS_NETLIB
BLAS_LIBS := -L/usr/lib/x86_64-linux-gnu/blas -Wl,-rpath,/usr/lib/x86_64-linux-gnu/blas -l:libblas.so.3
else
$(error BLAS must be openblas, blis or netlib, not '$(BLAS)')
endif
PKGS     := gsl hdf5-serial $(BLAS_PC) libfyaml nettle
# Evaluated when make parses this file: the packages must be installed before that, which is
# why the targets below run in two stages.
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# GSL's .pc pulls in its own reference CBLAS; OpenBLAS provides cblas_* for GSL as well.
PKG_LIBS := $(filter-out -lgslcblas,$(shell pkg-config --libs $(PKGS) 2>/dev/null)) $(BLAS_LIBS)
TEST_LIBS := $(shell pkg-config --libs cmocka 2>/dev/null)
GIT_COMMIT := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)$(shell git diff --quiet HEAD 2>/dev/null || echo -dirty)
CPPFLAGS += $(PKG_CFLAGS) -I$(BUILD)/gen $(BLAS_DEF)
LDLIBS   += $(PKG_LIBS) -lm

# ---- sources: one list per folder, lowest layer first (docs/HACKING.md "Layers") ----------
CORE_SRC       := harness/core/status.c harness/core/timing.c harness/core/sysinfo.c \
                  harness/core/h5util.c harness/core/util.c
KERNEL_SRC     := kernels/softmax_ref.c kernels/softmax_flash.c kernels/linear_ref.c \
                  kernels/linear.c kernels/registry.c kernels/vmath.c kernels/simd.c \
                  kernels/seed_baseline.c kernels/linear_decode.c \
                  kernels/softmax_decode.c kernels/kv_cache.c kernels/backward_ref.c \
                  kernels/softmax_backward.c kernels/linear_backward.c kernels/recurrence.c \
                  kernels/recurrence_ref.c kernels/fused_map.c
FEATUREMAP_SRC := featuremaps/registry.c featuremaps/elu1.c featuremaps/draws.c \
                  featuremaps/rff.c featuremaps/prf.c featuremaps/hyp.c featuremaps/gerf.c \
                  featuremaps/taylor2.c featuremaps/relu.c featuremaps/learned.c \
                  featuremaps/dpfp.c featuremaps/grad.c
MODEL_SRC      := harness/model/llama.c harness/model/generate.c harness/model/fit.c
EXPERIMENT_SRC := harness/experiment/experiment.c harness/experiment/experiment_yaml.c \
                  harness/experiment/params.c
STORE_SRC      := harness/store/columns.c harness/store/attrs.c harness/store/h5io.c \
                  harness/store/journal.c harness/store/resume.c harness/store/results.c
ENGINE_SRC     := harness/engine/data.c harness/engine/fidelity_cell.c harness/engine/metrics.c \
                  harness/engine/runner.c harness/engine/progress.c harness/engine/mpi_run.c \
                  harness/engine/train.c harness/engine/capacity.c
FIGURES_SRC    := harness/figures/figure.c harness/figures/fields.c harness/figures/curves.c \
                  harness/figures/crossover.c harness/figures/speedup.c \
                  harness/figures/realheads.c harness/figures/theory.c \
                  harness/figures/summary.c harness/figures/decode.c \
                  harness/figures/fidelity.c harness/figures/capacity.c harness/figures/fitsweep.c
CLI_SRC        := harness/cli/options.c harness/cli/check.c harness/cli/check_backward.c \
                  harness/cli/peak.c harness/cli/bench_suite.c harness/cli/bench_decode.c \
                  harness/cli/bench_backward.c harness/cli/bench_recur.c harness/cli/cmd_list.c \
                  harness/cli/bench_maps.c \
                  harness/cli/cmd_check.c harness/cli/cmd_bench.c harness/cli/cmd_capture.c \
                  harness/cli/cmd_fit.c harness/cli/cmd_generate.c harness/cli/cmd_featuremap.c \
                  harness/cli/cmd_run.c harness/cli/cmd_export.c harness/cli/cmd_info.c \
                  harness/cli/cmd_plot.c harness/cli/cmd_capacity.c harness/cli/param_options.c
HARNESS_SRC    := $(CORE_SRC) $(MODEL_SRC) $(EXPERIMENT_SRC) $(STORE_SRC) $(ENGINE_SRC) \
                  $(FIGURES_SRC) $(CLI_SRC)
LIB_SRC  := $(HARNESS_SRC) $(KERNEL_SRC) $(FEATUREMAP_SRC)
MAIN_SRC := harness/cli/main.c
TESTS    := $(patsubst tests/%.c,%,$(wildcard tests/test_*.c))

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
LIB      := $(BUILD)/liblinattn.a
BIN      ?= linattn

# ---- rules -------------------------------------------------------------------------------
.PHONY: all check check-mpi test asan bench figures docs-figures clean help deps

# ---- two stages ---------------------------------------------------------------------------
# A fresh machine lacks pkg-config and the -dev packages when make parses this file, so the
# flags above come out empty.  Stage 1 (the make a user runs) installs what the goals need
# (scripts/install-deps.sh: as root it runs apt-get, otherwise it prints the apt-get line and
# make stops), then stage 2, a second make with LA_STAGE=2, parses the file afresh and builds.
# Targets not listed in STAGED (a single object, a test binary, clean) run in stage 1 as is.
STAGED := all check test bench figures docs-figures asan check-mpi
ifneq ($(LA_STAGE),2)
STAGE2_GOALS := $(or $(filter $(STAGED),$(MAKECMDGOALS)),all)
DEP_GROUPS := build $(if $(filter 1,$(MPI)),mpi) $(filter blis netlib,$(BLAS)) \
              $(if $(filter check test asan,$(STAGE2_GOALS)),check) \
              $(if $(filter figures docs-figures,$(STAGE2_GOALS)),figures) \
              $(if $(filter check-mpi,$(STAGE2_GOALS)),mpi)

all:  ## build ./linattn (installs missing Debian packages when root); BLAS=blis|netlib, MPI=1
# Every staged goal depends on one stage-2 run that makes all of them, in the order given.
$(STAGED): la-stage2
	@:
.PHONY: la-stage2
la-stage2:
	@scripts/install-deps.sh $(sort $(DEP_GROUPS))
	@$(MAKE) --no-print-directory LA_STAGE=2 $(STAGE2_GOALS)
else
all: $(BIN)
endif

deps:  ## install every Debian package of check and figures (as root)
	scripts/install-deps.sh

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(LIB_OBJ)
	@rm -f $@
	@echo "  AR      $@"
	@ar rcs $@ $^

$(BIN): $(BUILD)/harness/cli/main.o $(LIB)
	@echo "  LD      $@"
	@$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

$(BUILD)/tests/%: tests/%.c tests/testutil.h $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -Wno-missing-prototypes -o $@ $< $(LIB) $(LDFLAGS) $(LDLIBS) $(TEST_LIBS)

# Provenance compiled into sysinfo.o: rewritten only when the commit or flags change, so a
# results file never records a stale commit.
$(BUILD)/gen/la_build_info.h: FORCE
	@mkdir -p $(dir $@)
	@printf '#define LA_GIT_COMMIT "%s"\n#define LA_CFLAGS "%s"\n' "$(GIT_COMMIT)" \
	    "$(strip $(OPT) -fopenmp -fno-math-errno $(SANFLAGS))" > $@.tmp
	@cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@
$(BUILD)/harness/core/sysinfo.o: $(BUILD)/gen/la_build_info.h
.PHONY: FORCE
FORCE:

-include $(LIB_OBJ:.o=.d) $(BUILD)/harness/cli/main.d

# ---- targets (stage 2: the packages are installed and the flags above are complete) --------
ifeq ($(LA_STAGE),2)
check: all $(TESTS:%=$(BUILD)/tests/%)  ## build and run every test (cmocka + CLI tests)
	@scripts/run-tests.sh $(BUILD) $(TESTS)

test: check

asan:  ## build with AddressSanitizer + UBSan into build-asan/ and run the same tests
	$(MAKE) BUILD=build-asan BIN=build-asan/linattn OPT="-O1 -g -march=native" \
	    SANFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
	    LINATTN_BIN=build-asan/linattn check

check-mpi:  ## build with MPI into build-mpi/ and run the MPI tests (mpirun -np 2)
	$(MAKE) MPI=1 BUILD=build-mpi BIN=build-mpi/linattn build-mpi/linattn
	LINATTN_BIN=build-mpi/linattn bash tests/mpi/e2e.sh

bench: all  ## the benchmark table (1 thread): kernels against the same-run fp32 core peak and SGEMM, d in {32,64,128}
	./$(BIN) bench --suite

figures: all  ## run the quick experiments (resuming) and draw every figure into plots/out/; PAPER=1: paper sizes
	scripts/figures.sh $(if $(PAPER),--paper)

.PHONY: docs-figures
docs-figures: all  ## run the quick experiments and refresh docs/figures/ (small PNGs, committed)
	scripts/figures.sh --docs
endif

clean:  ## remove build outputs
	rm -rf $(BUILD) build-asan build-mpi build-blis build-netlib $(BIN)

help:  ## this list
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s "	"

# ---- fuzzing (optional: clang + libFuzzer, `scripts/install-deps.sh --fuzz`) ----------------
# `make fuzz` builds the library with clang, ASan, UBSan and libFuzzer's coverage into
# $(BUILD)/fuzz/ and fuzzes the experiment loader (tests/fuzz_experiment.c) on one core for
# FUZZ_SECONDS.  Seeds: experiments/*.yaml; new inputs go to $(BUILD)/fuzz/corpus (kept between
# runs); a crashing input is saved as $(BUILD)/fuzz/crash-* and the run stops with its report.
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
FUZZ_BUILD   := $(BUILD)/fuzz
FUZZ_SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
.PHONY: fuzz fuzz-build

fuzz-build:  ## build the experiment-loader fuzzer ($(BUILD)/fuzz/fuzz_experiment), needs clang
	$(MAKE) BUILD=$(FUZZ_BUILD) CC=$(FUZZ_CC) OPT="-O1 -g -march=native" \
	    WARN="-std=c11 -Wall -Wno-unused-parameter" \
	    SANFLAGS="-fsanitize=fuzzer-no-link $(FUZZ_SAN)" $(FUZZ_BUILD)/liblinattn.a
	$(FUZZ_CC) $(CPPFLAGS) -O1 -g -march=native -std=c11 -D_GNU_SOURCE -fopenmp \
	    -fsanitize=fuzzer $(FUZZ_SAN) -o $(FUZZ_BUILD)/fuzz_experiment \
	    tests/fuzz_experiment.c $(FUZZ_BUILD)/liblinattn.a $(LDLIBS)

fuzz: fuzz-build  ## fuzz the experiment loader for FUZZ_SECONDS (default 60) on one core
	@mkdir -p $(FUZZ_BUILD)/corpus $(FUZZ_BUILD)/seed
	cp experiments/*.yaml $(FUZZ_BUILD)/seed/
	$(FUZZ_BUILD)/fuzz_experiment -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 \
	    -timeout=30 -max_len=8192 -dict=tests/fuzz_experiment.dict \
	    -artifact_prefix=$(FUZZ_BUILD)/ $(FUZZ_BUILD)/corpus $(FUZZ_BUILD)/seed
