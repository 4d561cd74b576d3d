#include "pins.h"

#include <bpf/bpf.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stddef.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include <type_traits>

#include "flowscope.skel.h"

namespace flowscope {

#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif

using Bss = std::remove_pointer_t<decltype(flowscope_bpf::bss)>;

static const char* kSubdirs[] = {"maps", "links", "filters"};

PinDir::~PinDir() { Release(); }

static int MakeDirs(const std::string& path) {
  for (size_t at = 1; at <= path.size(); at++) {
    if (at != path.size() && path[at] != '/') continue;
    std::string part = path.substr(0, at);
    if (mkdir(part.c_str(), 0700) != 0 && errno != EEXIST) return -errno;
  }
  return 0;
}

SysError PinDir::Open(const std::string& dir) {
  Release();
  const std::string hint = "mount bpffs (`mount -t bpf bpf /sys/fs/bpf`; in Kubernetes a hostPath volume of /sys/fs/bpf) "
                           "and give an absolute --pin-path under it";
  int err = MakeDirs(dir);
  if (err) return SysErrorOf(err, "mkdir", dir, err == -EROFS || err == -EACCES || err == -EPERM ? hint : "");
  for (const char* sub : kSubdirs) {
    std::string p = dir + "/" + sub;
    if (mkdir(p.c_str(), 0700) != 0 && errno != EEXIST) return SysErrorOf(-errno, "mkdir", p, hint);
  }
  struct statfs fs;
  if (statfs(dir.c_str(), &fs) != 0) return SysErrorOf(-errno, "statfs", dir);
  if (static_cast<unsigned long>(fs.f_type) != BPF_FS_MAGIC) return SysErrorOf(ENOTSUP, "statfs (not bpffs)", dir, hint);
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return SysErrorOf(-errno, "open", dir);
  // The lock dies with the process, so a SIGKILLed agent never blocks the next one.
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    close(fd);
    return SysErrorOf(e, "flock", dir);
  }
  dir_ = dir;
  lock_fd_ = fd;
  return SysError{};
}

void PinDir::Release() {
  if (lock_fd_ >= 0) close(lock_fd_);
  lock_fd_ = -1;
}

static std::string HookFile(Hook hook, int ifindex) { return std::string(HookName(hook)) + "-" + std::to_string(ifindex); }

std::string PinDir::LinkPath(Hook hook, int ifindex) const { return dir_ + "/links/" + HookFile(hook, ifindex); }
std::string PinDir::FilterPath(Hook hook, int ifindex) const { return dir_ + "/filters/" + HookFile(hook, ifindex); }
std::string PinDir::QdiscMarkerPath(int ifindex) const { return dir_ + "/filters/qdisc-" + std::to_string(ifindex); }

// "tc-ingress-7" -> hook, ifindex
static bool ParseHookFile(const std::string& name, Hook* hook, int* ifindex) {
  for (Hook h : {Hook::TcIngress, Hook::TcEgress, Hook::Xdp}) {
    std::string prefix = std::string(HookName(h)) + "-";
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    std::string digits = name.substr(prefix.size());
    if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos || digits.size() > 9) return false;
    *hook = h;
    *ifindex = std::stoi(digits);
    return *ifindex > 0;
  }
  return false;
}

static std::vector<std::string> ListDir(const std::string& path) {
  std::vector<std::string> names;
  DIR* d = opendir(path.c_str());
  if (!d) return names;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    names.emplace_back(e->d_name);
  }
  closedir(d);
  return names;
}

std::vector<PinnedAttachment> PinDir::List() const {
  std::vector<PinnedAttachment> out;
  for (const std::string& name : ListDir(dir_ + "/links")) {
    PinnedAttachment a;
    if (!ParseHookFile(name, &a.hook, &a.ifindex)) continue;
    a.is_link = true;
    out.push_back(a);
  }
  for (const std::string& name : ListDir(dir_ + "/filters")) {
    PinnedAttachment a;
    if (!ParseHookFile(name, &a.hook, &a.ifindex)) continue;
    a.created_qdisc = access(QdiscMarkerPath(a.ifindex).c_str(), F_OK) == 0;
    out.push_back(a);
  }
  return out;
}

SysError PinDir::Pin(int fd, const std::string& path) const {
  Unpin(path);
  int err = bpf_obj_pin(fd, path.c_str());
  if (err) return SysErrorOf(err, "bpf_obj_pin", path);
  return SysError{};
}

void PinDir::Unpin(const std::string& path) { unlink(path.c_str()); }

SysError PinDir::RemoveAll() {
  SysError first;
  for (const char* sub : kSubdirs) {
    std::string p = dir_ + "/" + sub;
    for (const std::string& name : ListDir(p)) {
      std::string f = p + "/" + name;
      if (unlink(f.c_str()) != 0 && errno != ENOENT && !first.failed()) first = SysErrorOf(-errno, "unlink", f);
    }
    if (rmdir(p.c_str()) != 0 && errno != ENOENT && !first.failed()) first = SysErrorOf(-errno, "rmdir", p);
  }
  if (rmdir(dir_.c_str()) != 0 && errno != ENOENT && !first.failed()) first = SysErrorOf(-errno, "rmdir", dir_);
  // The parent (e.g. /sys/fs/bpf/flowscope) goes too once no node uses it.
  size_t slash = dir_.find_last_of('/');
  if (slash != std::string::npos && slash > 0) rmdir(dir_.substr(0, slash).c_str());
  Release();
  return first;
}

std::string DescribePinnedOwner(const std::string& dir) {
  int fd = bpf_obj_get((dir + "/maps/bss").c_str());
  if (fd < 0) return "";
  std::string out;
  bpf_map_info info;
  memset(&info, 0, sizeof(info));
  unsigned len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0 && info.value_size == sizeof(Bss)) {
    Bss bss;
    uint32_t key = 0;
    if (bpf_map_lookup_elem(fd, &key, &bss) == 0 && bss.owner_pid != 0) {
      out = "pid " + std::to_string(bss.owner_pid);
      time_t t = static_cast<time_t>(bss.owner_started_ns / 1000000000ull);
      char when[32];
      tm utc;
      if (gmtime_r(&t, &utc) && strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &utc)) out += ", started " + std::string(when);
      bss.owner_api[sizeof(bss.owner_api) - 1] = 0;
      if (bss.owner_api[0]) out += ", API " + std::string(bss.owner_api);
    }
  }
  close(fd);
  return out;
}

}  // namespace flowscope
