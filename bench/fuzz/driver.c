/*
 * A stand-in for libFuzzer where clang is missing (gcc has no -fsanitize=fuzzer):
 * runs fuzz_khttp.c's LLVMFuzzerTestOneInput on every file of the given folders,
 * then on random mutations of them (byte flips, inserts, deletes, splices, the two
 * control bytes) until the time is up.  No coverage guidance: it finds what the
 * sanitizers and the harness's checks catch near the seeds.  The input that fails
 * is written to ARTIFACT_PREFIX "crash-input" before the process dies.
 *
 *   fuzz_khttp_gcc -max_total_time=SECONDS -artifact_prefix=DIR/ DIR...
 */
#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sanitizer/common_interface_defs.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_LEN 512
#define MAX_SEEDS 20000

static uint8_t *seeds[MAX_SEEDS];
static size_t seed_len[MAX_SEEDS], nseeds;
static uint8_t cur[MAX_LEN];
static size_t cur_len;
static char artifact[4096] = "./crash-input";

static void save_current(void)
{
    FILE *f = fopen(artifact, "wb");
    if (f) {
        fwrite(cur, 1, cur_len, f);
        fclose(f);
    }
    fprintf(stderr, "==%d==ERROR: the harness failed on the input saved in %s\n", (int)getpid(), artifact);
}

static void on_abort(int sig)
{
    save_current();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void load_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[4096];
    if (!d)
        return;
    while ((e = readdir(d)) != NULL && nseeds < MAX_SEEDS) {
        FILE *f;
        size_t n;
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (!(f = fopen(path, "rb")))
            continue;
        seeds[nseeds] = malloc(MAX_LEN);
        n = fread(seeds[nseeds], 1, MAX_LEN, f);
        fclose(f);
        seed_len[nseeds++] = n;
    }
    closedir(d);
}

static void run(void)
{
    uint8_t *copy = malloc(cur_len ? cur_len : 1); /* exact size: ASan sees overreads */
    memcpy(copy, cur, cur_len);
    LLVMFuzzerTestOneInput(copy, cur_len);
    free(copy);
}

static void mutate(void)
{
    int k, ops = 1 + rand() % 4;
    for (k = 0; k < ops; k++) {
        size_t i = cur_len ? (size_t)rand() % cur_len : 0;
        static const char interesting[] = "\r\n\t :;,=\"\\\x00\x7f\x80\xff" "0123456789abcdefxX-";
        switch (rand() % 13) { /* 6 to 11: flips and interesting bytes again */
        case 0: /* flip */
            if (cur_len)
                cur[i] ^= (uint8_t)(1u << (rand() % 8));
            break;
        case 1: /* an interesting byte */
            if (cur_len)
                cur[i] = (uint8_t)interesting[rand() % (sizeof interesting - 1)];
            break;
        case 2: /* insert */
            if (cur_len < MAX_LEN) {
                memmove(cur + i + 1, cur + i, cur_len - i);
                cur[i] = (uint8_t)interesting[rand() % (sizeof interesting - 1)];
                cur_len++;
            }
            break;
        case 3: /* delete */
            if (cur_len) {
                memmove(cur + i, cur + i + 1, cur_len - i - 1);
                cur_len--;
            }
            break;
        case 4: /* the control bytes: mode and split point */
            if (cur_len >= 2)
                cur[rand() % 2] = (uint8_t)rand();
            break;
        case 5: { /* splice in a piece of another seed */
            size_t s = (size_t)rand() % nseeds, from, n;
            if (seed_len[s] <= 2)
                break;
            from = 2 + (size_t)rand() % (seed_len[s] - 2);
            n = 1 + (size_t)rand() % (seed_len[s] - from);
            if (n > MAX_LEN - i)
                n = MAX_LEN - i;
            memcpy(cur + i, seeds[s] + from, n);
            if (i + n > cur_len)
                cur_len = i + n;
            break;
        }
        case 12: /* truncate */
            cur_len = i;
            break;
        default:
            if (cur_len)
                cur[i] = (rand() & 1) ? (uint8_t)(cur[i] ^ (1u << (rand() % 8)))
                                      : (uint8_t)interesting[rand() % (sizeof interesting - 1)];
        }
    }
}

int main(int argc, char **argv)
{
    long seconds = 60, execs = 0;
    time_t end;
    size_t s;
    int i;
    for (i = 1; i < argc; i++) {
        if (strncmp(argv[i], "-max_total_time=", 16) == 0)
            seconds = atol(argv[i] + 16);
        else if (strncmp(argv[i], "-artifact_prefix=", 17) == 0)
            snprintf(artifact, sizeof artifact, "%scrash-input", argv[i] + 17);
        else if (argv[i][0] != '-')
            load_dir(argv[i]);
    }
    if (!nseeds) {
        fprintf(stderr, "no seed inputs\n");
        return 2;
    }
    signal(SIGABRT, on_abort);
    __sanitizer_set_death_callback(save_current);
    srand((unsigned)time(NULL));
    for (s = 0; s < nseeds; s++) {
        cur_len = seed_len[s];
        memcpy(cur, seeds[s], cur_len);
        run();
        execs++;
    }
    end = time(NULL) + seconds;
    while (time(NULL) < end) {
        for (i = 0; i < 1000; i++) {
            s = (size_t)rand() % nseeds;
            cur_len = seed_len[s];
            memcpy(cur, seeds[s], cur_len);
            mutate();
            run();
            execs++;
        }
    }
    printf("#%ld DONE: %zu seeds, %ld inputs run in %ld s, no failure\n", execs, nseeds, execs, seconds);
    return 0;
}
