// The baseline of the drain benchmark: a bare C loop of
// bpf_map_lookup_and_delete_batch over an existing map, with the same batch
// size as the addon, and nothing else (no summing, no copying out).
// Usage: drain-baseline MAP_ID  ->  {"entries":N,"ns":T}
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static unsigned long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: drain-baseline MAP_ID\n");
    return 2;
  }
  int fd = bpf_map_get_fd_by_id(atoi(argv[1]));
  if (fd < 0) {
    perror("bpf_map_get_fd_by_id");
    return 1;
  }
  struct bpf_map_info info;
  memset(&info, 0, sizeof(info));
  unsigned len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
    perror("bpf_obj_get_info_by_fd");
    return 1;
  }
  int ncpus = libbpf_num_possible_cpus();
  size_t value_size = ((info.value_size + 7) & ~7u) * (size_t)ncpus;
  unsigned batch = 8192;
  char* keys = malloc((size_t)batch * info.key_size);
  char* values = malloc((size_t)batch * value_size);
  unsigned long long in = 0, out = 0, total = 0;
  int first = 1;
  LIBBPF_OPTS(bpf_map_batch_opts, opts);

  unsigned long long t0 = now_ns();
  for (;;) {
    __u32 count = batch;
    int err = bpf_map_lookup_and_delete_batch(fd, first ? NULL : &in, &out, keys, values, &count, &opts);
    if (err && err != -ENOENT) {
      fprintf(stderr, "lookup_and_delete_batch: %s\n", strerror(-err));
      return 1;
    }
    total += count;
    if (err == -ENOENT) break;
    in = out;
    first = 0;
  }
  unsigned long long t1 = now_ns();
  printf("{\"entries\":%llu,\"ns\":%llu}\n", total, t1 - t0);
  return 0;
}
