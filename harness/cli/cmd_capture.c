/* cmd_capture.c — `linattn capture`: runs a small trained Llama-2 (llama.c) from BOS and writes
 * the attention inputs it saw, Q, K, V and each head's attention output, to HDF5 for the experiment
 * engine's `h5` data source.  The file layout is documented in docs/data-layout.md.
 *
 * Not here: the model itself (llama.c), reading the file back (the engine's data source).
 * The HDF5 file is written under a temporary name beside the output and renamed at the end, so a
 * failed or interrupted capture never leaves a partial file at the output path.
 *
 * Tests: tests/test_capture.c.  By hand:
 *   ./linattn capture ../shared/data/stories260K/stories260K.bin --steps 512 -o data/s.h5
 */
#include <errno.h>
#include <hdf5.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/status.h"
#include "../core/sysinfo.h"
#include "../core/timing.h"
#include "../model/llama.h"
#include "commands.h"
#include "options.h"

#define DEFAULT_STEPS 256
#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x) /* STRINGIFY(DEFAULT_STEPS): "256", for the help */

/* ---- HDF5 writer ------------------------------------------------------------------------ */

static int attr_write(hid_t obj, const char *name, hid_t file_type, hid_t mem_type,
                      const void *value)
{
    hid_t space = H5Screate(H5S_SCALAR);
    if (space < 0)
        return -1;
    hid_t a = H5Acreate2(obj, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT);
    herr_t st = a < 0 ? -1 : H5Awrite(a, mem_type, value);
    if (a >= 0 && H5Aclose(a) < 0)
        st = -1;
    H5Sclose(space);
    return st < 0 ? -1 : 0;
}

/* A variable-length UTF-8 string: h5py reads it as str. */
static int attr_str(hid_t obj, const char *name, const char *value)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0)
        return -1;
    int rc = -1;
    if (H5Tset_size(t, H5T_VARIABLE) >= 0 && H5Tset_cset(t, H5T_CSET_UTF8) >= 0)
        rc = attr_write(obj, name, t, t, &value);
    H5Tclose(t);
    return rc;
}

static int attr_i32(hid_t obj, const char *name, int value)
{
    int32_t v = value;
    return attr_write(obj, name, H5T_STD_I32LE, H5T_NATIVE_INT32, &v);
}

static int write_tensor(hid_t file, const char *name, const float *data, const hsize_t dims[4])
{
    hid_t space = H5Screate_simple(4, dims, NULL);
    if (space < 0)
        return -1;
    hid_t d = H5Dcreate2(file, name, H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int rc = -1;
    if (d >= 0 && H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0 &&
        attr_str(d, "axes", "layer, head, position, channel") == 0)
        rc = 0;
    if (d >= 0 && H5Dclose(d) < 0)
        rc = -1;
    H5Sclose(space);
    return rc;
}

static int write_tokens(hid_t file, const int32_t *tokens, int T)
{
    hsize_t dims[1] = {(hsize_t)T};
    hid_t space = H5Screate_simple(1, dims, NULL);
    if (space < 0)
        return -1;
    hid_t d =
        H5Dcreate2(file, "tokens", H5T_STD_I32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int rc = -1;
    if (d >= 0 && H5Dwrite(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, tokens) >= 0 &&
        attr_str(d, "axes", "position") == 0)
        rc = 0;
    if (d >= 0 && H5Dclose(d) < 0)
        rc = -1;
    H5Sclose(space);
    return rc;
}

static int write_contents(hid_t f, const struct la_capture *c, const struct la_capture_meta *m)
{
    hsize_t dims[4] = {(hsize_t)c->n_layers, (hsize_t)c->n_heads, (hsize_t)c->T,
                       (hsize_t)c->head_size};
    if (write_tensor(f, "Q", c->q, dims) || write_tensor(f, "K", c->k, dims) ||
        write_tensor(f, "V", c->v, dims) || write_tensor(f, "attn_out", c->att, dims) ||
        write_tokens(f, c->tokens, c->T))
        return -1;
    char utc[64];
    la_utc_now(utc, sizeof utc);
    uint64_t seed = m->opts->greedy ? 0 : m->opts->seed;
    double temp = m->opts->temperature;
    if (attr_str(f, "text", c->text) || attr_str(f, "checkpoint", m->checkpoint) ||
        attr_str(f, "checkpoint_sha256", m->checkpoint_sha256) ||
        attr_str(f, "tokenizer", m->tokenizer) ||
        attr_str(f, "tokenizer_sha256", m->tokenizer_sha256) ||
        attr_write(f, "seed", H5T_STD_U64LE, H5T_NATIVE_UINT64, &seed) ||
        attr_i32(f, "greedy", m->opts->greedy) ||
        attr_i32(f, "through_bos", m->opts->through_bos) ||
        attr_write(f, "temperature", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &temp) ||
        attr_i32(f, "steps", m->opts->steps) || attr_i32(f, "n_positions", c->T) ||
        attr_i32(f, "next_token", c->next_token) || attr_i32(f, "n_layers", c->n_layers) ||
        attr_i32(f, "n_heads", c->n_heads) || attr_i32(f, "n_kv_heads", c->n_kv_heads) ||
        attr_i32(f, "head_size", c->head_size) || attr_i32(f, "dim", c->dim) ||
        attr_i32(f, "vocab_size", c->vocab_size) || attr_str(f, "tool_version", la_version()) ||
        attr_str(f, "git_commit", la_git_commit()) || attr_str(f, "created_utc", utc))
        return -1;
    return 0;
}

int la_capture_write_h5(const struct la_capture *c, const struct la_capture_meta *meta,
                        const char *path, struct la_error *err)
{
    char tmp[PATH_MAX];
    int w = snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid());
    if (w < 0 || (size_t)w >= sizeof tmp)
        return LA_FAIL(err, LA_EINVAL, "output path too long: %s", path);
    /* EXCL: never write into a file someone else is creating at the same time. */
    hid_t f = H5Fcreate(tmp, H5F_ACC_EXCL, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0)
        return LA_FAIL(err, LA_EIO,
                       "cannot create output '%s' (as temporary '%s'): is its directory "
                       "writable?",
                       path, tmp);
    int bad = write_contents(f, c, meta);
    if (H5Fclose(f) < 0)
        bad = 1;
    if (bad) {
        unlink(tmp);
        return LA_FAIL(err, LA_EIO, "cannot write HDF5 output '%s' (disk full?)", tmp);
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return LA_FAIL(err, LA_EIO, "cannot rename '%s' to '%s': %s", tmp, path, strerror(e));
    }
    return LA_OK;
}

/* ---- command line ----------------------------------------------------------------------- */

/* Creates the missing directories above path (mkdir -p of its dirname). */
static int make_parents(const char *path, struct la_error *err)
{
    char dir[PATH_MAX];
    if (snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir)
        return LA_FAIL(err, LA_EINVAL, "output path too long: %s", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return LA_OK;
    *slash = '\0';
    for (char *p = dir + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char keep = *p;
            *p = '\0';
            if (mkdir(dir, 0777) != 0 && errno != EEXIST)
                return LA_FAIL(err, LA_EIO, "cannot create directory '%s': %s", dir,
                               strerror(errno));
            *p = keep;
            if (!keep)
                break;
        }
    }
    return LA_OK;
}

int cmd_capture(int argc, char **argv)
{
    const char *ckpt = NULL, *tok_path = NULL, *out_path = NULL;
    long long steps = -1, seed = -1;
    int greedy_flag = 0, through_bos = 0;
    double temperature = NAN; /* NaN: not given, 1.0 */
    const struct la_option options[] = {
        LA_OPT_STRING("tokenizer", 0, &tok_path, "PATH",
                      "tokenizer file (default: tok512.bin beside the checkpoint)"),
        LA_OPT_INT64("steps", 0, &steps, "N", 1, INT_MAX,
                     "positions to capture, 1..seq_len (default " STRINGIFY(DEFAULT_STEPS)
                     " or seq_len if smaller); fewer if the model starts a new story (emits BOS)"),
        LA_OPT_FLAG("greedy", 0, &greedy_flag,
                    "next token = argmax of the logits (the default without --seed)"),
        LA_OPT_INT64("seed", 0, &seed, "S", 0, 4294967295LL,
                     "sample from softmax(logits / temperature) with GSL's mt19937 seeded by S "
                     "(0..4294967295: mt19937 uses a 32-bit seed)"),
        {.name = "temperature", .kind = LA_OPTK_REAL, .flags = LA_OPT_ABOVE_MIN,
         .target = &temperature, .argname = "X", .min = 0.0, .max = HUGE_VAL,
         .help = "sampling temperature > 0 (default 1.0; needs --seed; --greedy for argmax "
                 "decoding)"},
        LA_OPT_FLAG("through-bos", 0, &through_bos,
                    "when the model starts a new story (emits BOS), feed BOS and go on, so that "
                    "exactly N positions are captured"),
        {.name = "output", .short_name = 'o', .kind = LA_OPTK_STRING, .flags = LA_OPT_REQUIRED,
         .target = &out_path, .argname = "OUT.h5",
         .help = "output HDF5 file (required; missing directories are created); written to a "
                 "temporary name and renamed when complete"},
        LA_OPT_END,
    };
    const struct la_command cmd = {
        .prog = "linattn capture",
        .args = "CHECKPOINT.bin",
        .intro = "Runs a Llama-2 checkpoint (llama2.c legacy v0 format, e.g. stories260K.bin) "
                 "from the BOS token and writes the attention inputs it computed, per layer and "
                 "query head, to HDF5: /Q and /K (after RoPE), /V, /attn_out (L, H, T, "
                 "head_size) and /tokens (T), with the decoded text and provenance as attributes "
                 "(docs/data-layout.md).",
        .opts = options,
        .outro = "Exit status: 0 ok, 2 bad arguments or a malformed checkpoint/tokenizer, 1 other.",
    };
    int nargs;
    const int prc = la_opt_parse(&cmd, argc, argv, &nargs);
    if (prc != LA_OPT_GO)
        return prc;
    if (nargs > 1) {
        fprintf(stderr, "linattn capture: one checkpoint expected, got '%s' and '%s'\n", argv[0],
                argv[1]);
        return 2;
    }
    if (nargs == 0) {
        fprintf(stderr, "linattn capture: no checkpoint given (linattn capture --help)\n");
        return 2;
    }
    ckpt = argv[0];
    const int have_temp = !isnan(temperature);
    if (!have_temp)
        temperature = 1.0;
    if (greedy_flag && seed >= 0) {
        fprintf(stderr, "linattn capture: --greedy and --seed exclude each other\n");
        return 2;
    }
    if (have_temp && seed < 0) {
        fprintf(stderr, "linattn capture: --temperature applies to sampling: add --seed S\n");
        return 2;
    }

    /* The default tokenizer lives beside the checkpoint. */
    char tok_default[PATH_MAX];
    if (!tok_path) {
        const char *slash = strrchr(ckpt, '/');
        int w = slash ? snprintf(tok_default, sizeof tok_default, "%.*s/tok512.bin",
                                 (int)(slash - ckpt), ckpt)
                      : snprintf(tok_default, sizeof tok_default, "tok512.bin");
        if (w < 0 || (size_t)w >= sizeof tok_default) {
            fprintf(stderr, "linattn capture: checkpoint path too long\n");
            return 2;
        }
        tok_path = tok_default;
    }

    struct la_error err;
    la_error_clear(&err);
    struct la_llama *model = NULL;
    struct la_tokenizer *tok = NULL;
    struct la_capture *cap = NULL;
    char ck_sha[65] = "", tok_sha[65] = "";
    int rc = la_llama_load(ckpt, &model, ck_sha, &err);
    if (rc)
        goto fail;
    const struct la_llama_config *cfg = la_llama_config(model);
    rc = la_tokenizer_load(tok_path, cfg->vocab_size, &tok, tok_sha, &err);
    if (rc)
        goto fail;
    if (steps < 0)
        steps = cfg->seq_len < DEFAULT_STEPS ? cfg->seq_len : DEFAULT_STEPS;
    if (steps > cfg->seq_len) {
        rc = LA_FAIL(&err, LA_EINVAL, "--steps %lld exceeds the model's seq_len %d", steps,
                     cfg->seq_len);
        goto fail;
    }
    struct la_gen_opts opts = {
        .steps = (int)steps,
        .greedy = seed < 0,
        .temperature = temperature,
        .seed = seed < 0 ? 0 : (uint64_t)seed,
        .through_bos = through_bos,
    };
    double t0 = la_now();
    rc = la_llama_generate(model, tok, &opts, &cap, &err);
    if (rc)
        goto fail;
    double t_gen = la_now() - t0;
    rc = make_parents(out_path, &err);
    if (rc)
        goto fail;
    struct la_capture_meta meta = {
        .checkpoint = ckpt,
        .checkpoint_sha256 = ck_sha,
        .tokenizer = tok_path,
        .tokenizer_sha256 = tok_sha,
        .opts = &opts,
    };
    rc = la_capture_write_h5(cap, &meta, out_path, &err);
    if (rc)
        goto fail;
    printf("captured %d position%s (%d layer%s x %d head%s x head_size %d, %s) in %.3f s -> %s\n",
           cap->T, cap->T == 1 ? "" : "s", cap->n_layers, cap->n_layers == 1 ? "" : "s",
           cap->n_heads, cap->n_heads == 1 ? "" : "s", cap->head_size,
           opts.greedy ? "greedy" : "sampled", t_gen, out_path);
    la_capture_free(cap);
    la_tokenizer_free(tok);
    la_llama_free(model);
    return 0;
fail:
    fprintf(stderr, "linattn capture: %s\n", err.msg);
    la_capture_free(cap);
    la_tokenizer_free(tok);
    la_llama_free(model);
    return la_exit_code(rc);
}
